//! The per-contact actions `ghl-etl bulk` runs from a list: workflows, campaigns, followers,
//! the business of many contacts at once. (Tags are in `endpoints`, deletes in `writes`.)
//!
//! Enrolling in a workflow or a campaign is sent at most once ([`Call::not_idempotent`]): GHL
//! may start the workflow again for a contact enrolled twice, so a lost answer is reported
//! rather than resent. Leaving one, followers and the business are idempotent and retried.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{Call, Client};
use super::error::Result;

/// Something a contact can be enrolled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Workflow,
    Campaign,
}

impl Program {
    fn path(self) -> &'static str {
        match self {
            Program::Workflow => "workflow",
            Program::Campaign => "campaigns",
        }
    }
}

/// `POST /contacts/bulk/business` answers the contacts it changed.
#[derive(Debug, Deserialize)]
pub struct BulkBusinessAnswer {
    #[serde(default)]
    pub ids: Vec<String>,
}

impl Client {
    /// `POST|DELETE /contacts/{id}/workflow/{workflowId}` or `.../campaigns/{campaignId}`.
    pub async fn enrol(
        &self,
        location: &str,
        contact_id: &str,
        program: Program,
        program_id: &str,
        remove: bool,
    ) -> Result<()> {
        let method = if remove { Method::DELETE } else { Method::POST };
        let path = format!("/contacts/{contact_id}/{}/{program_id}", program.path());
        let call = Call::with_body(location, method, path, json!({}));
        let call = if remove { call } else { call.not_idempotent() };
        let what = match program {
            Program::Workflow => "workflow",
            Program::Campaign => "campaign",
        };
        self.call::<Value>(&call)
            .await
            .map(drop)
            .map_err(|e| e.naming_run_wide_id(what))
    }

    /// `POST|DELETE /contacts/{id}/followers` with these user ids.
    pub async fn update_followers(
        &self,
        location: &str,
        contact_id: &str,
        users: &[String],
        remove: bool,
    ) -> Result<()> {
        let method = if remove { Method::DELETE } else { Method::POST };
        let path = format!("/contacts/{contact_id}/followers");
        let call = Call::with_body(location, method, path, json!({ "followers": users }));
        self.call::<Value>(&call)
            .await
            .map(drop)
            .map_err(|e| e.naming_run_wide_id("user"))
    }

    /// `POST /contacts/bulk/business`: set (or with `None`, clear) the business of many
    /// contacts; answers the ids it changed.
    pub async fn bulk_business(
        &self,
        location: &str,
        contact_ids: &[String],
        business: Option<&str>,
    ) -> Result<BulkBusinessAnswer> {
        let body = json!({ "locationId": location, "ids": contact_ids, "businessId": business });
        let call = Call::with_body(location, Method::POST, "/contacts/bulk/business", body);
        self.call(&call)
            .await
            .map_err(|e| e.naming_run_wide_id("business"))
    }
}
