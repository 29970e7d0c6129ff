//! Every request-body table the handlers check bodies against, with its route: what the
//! sandbox accepts, listed so that a test can hold it against the official spec's schemas
//! (a property the spec does not have must not be accepted silently).

use super::actions::{BULK_BUSINESS, BULK_TAGS, CAMPAIGN, FOLLOWERS, WORKFLOW};
use super::fields::CREATE_FIELD;
use super::handlers::{
    CONTACT_COMMON, CONTACT_CREATE, CONTACT_UPDATE, CONTACT_UPSERT, NOTE_PROPS, TAGS_PROPS,
    TASK_PROPS, TASK_SEARCH_PROPS,
};
pub use super::validate::{Dto, P};

/// The body a route takes: the union of `dtos`, and the properties it requires.
#[derive(Debug, Clone)]
pub struct BodyTable {
    pub method: &'static str,
    /// As the spec (and the router) write it: `/contacts/{contactId}/tasks`.
    pub route: &'static str,
    pub dtos: Vec<Dto>,
    pub required: &'static [&'static str],
}

/// The completion body `PUT …/tasks/{taskId}/completed` takes.
pub(crate) const COMPLETED: Dto = &[("completed", P::Bool)];

/// Every table, one per route and method that reads a JSON body.
pub fn body_tables() -> Vec<BodyTable> {
    let t = |method, route, dtos: &[Dto], required| BodyTable {
        method,
        route,
        dtos: dtos.to_vec(),
        required,
    };
    let contact = "/contacts/{contactId}";
    vec![
        t(
            "POST",
            "/contacts/",
            &[CONTACT_COMMON, CONTACT_CREATE],
            &["locationId"],
        ),
        t("PUT", contact, &[CONTACT_COMMON, CONTACT_UPDATE], &[]),
        t(
            "POST",
            "/contacts/upsert",
            &[CONTACT_COMMON, CONTACT_CREATE, CONTACT_UPSERT],
            &["locationId"],
        ),
        t(
            "POST",
            "/contacts/{contactId}/tags",
            &[TAGS_PROPS],
            &["tags"],
        ),
        t(
            "DELETE",
            "/contacts/{contactId}/tags",
            &[TAGS_PROPS],
            &["tags"],
        ),
        t(
            "POST",
            "/contacts/{contactId}/tasks",
            &[TASK_PROPS],
            &["title", "dueDate", "completed"],
        ),
        t(
            "PUT",
            "/contacts/{contactId}/tasks/{taskId}",
            &[TASK_PROPS],
            &[],
        ),
        t(
            "PUT",
            "/contacts/{contactId}/tasks/{taskId}/completed",
            &[COMPLETED],
            &["completed"],
        ),
        t(
            "POST",
            "/contacts/{contactId}/notes",
            &[NOTE_PROPS],
            &["body"],
        ),
        t(
            "PUT",
            "/contacts/{contactId}/notes/{id}",
            &[NOTE_PROPS],
            &[],
        ),
        t(
            "POST",
            "/locations/{locationId}/tasks/search",
            &[TASK_SEARCH_PROPS],
            &[],
        ),
        t(
            "POST",
            "/contacts/bulk/tags/update/{type}",
            &[BULK_TAGS],
            &["contacts", "tags", "locationId"],
        ),
        t(
            "POST",
            "/contacts/bulk/business",
            &[BULK_BUSINESS],
            // `businessId` too, which may be null (to clear): the handler checks it is there.
            &["locationId", "ids", "businessId"],
        ),
        t(
            "POST",
            "/contacts/{contactId}/workflow/{workflowId}",
            &[WORKFLOW],
            &[],
        ),
        t(
            "DELETE",
            "/contacts/{contactId}/workflow/{workflowId}",
            &[WORKFLOW],
            &[],
        ),
        t(
            "POST",
            "/contacts/{contactId}/campaigns/{campaignId}",
            &[CAMPAIGN],
            &[],
        ),
        t(
            "DELETE",
            "/contacts/{contactId}/campaigns/{campaignId}",
            &[CAMPAIGN],
            &[],
        ),
        t(
            "DELETE",
            "/contacts/{contactId}/campaigns/removeAll",
            &[CAMPAIGN],
            &[],
        ),
        t(
            "POST",
            "/contacts/{contactId}/followers",
            &[FOLLOWERS],
            &["followers"],
        ),
        t(
            "DELETE",
            "/contacts/{contactId}/followers",
            &[FOLLOWERS],
            &["followers"],
        ),
        t(
            "POST",
            "/locations/{locationId}/customFields",
            &[CREATE_FIELD],
            &["name", "dataType"],
        ),
    ]
}
