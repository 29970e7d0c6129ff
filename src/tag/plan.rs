//! What a tag run does, resolved before any request.

use std::path::PathBuf;

use serde::Serialize;

use crate::input::InputFormat;

/// The input columns that name a contact, tried in this order on each row.
#[derive(Debug, Clone, Serialize)]
pub struct KeyColumns {
    pub id: String,
    pub email: String,
    pub phone: String,
}

#[derive(Debug, Clone)]
pub struct TagPlan {
    pub location: String,
    pub input: PathBuf,
    pub input_format: Option<InputFormat>,
    /// Tags added on every row.
    pub add: Vec<String>,
    /// Tags removed on every row.
    pub remove: Vec<String>,
    /// Per-row tags to add / remove (`;`-separated), if the file has the column.
    pub add_column: String,
    pub remove_column: String,
    pub keys: KeyColumns,
    pub dry_run: bool,
    /// Look-ups in flight.
    pub concurrency: usize,
    pub state: PathBuf,
    pub report_dir: PathBuf,
}

#[derive(Serialize)]
struct Identity<'a> {
    location: &'a str,
    input: String,
    add: &'a [String],
    remove: &'a [String],
    add_column: &'a str,
    remove_column: &'a str,
    keys: &'a KeyColumns,
    server: &'a str,
}

impl TagPlan {
    pub fn job_key(&self, server: &str) -> String {
        let input = std::path::absolute(&self.input).unwrap_or_else(|_| self.input.clone());
        crate::job::job_key(&Identity {
            location: &self.location,
            input: input.display().to_string(),
            add: &self.add,
            remove: &self.remove,
            add_column: &self.add_column,
            remove_column: &self.remove_column,
            keys: &self.keys,
            server,
        })
    }
}
