//! [`RowDone`]: one row's account as the load's writers leave it, shared by the row, contact,
//! child and tag steps (a leaf: it imports none of them).

use crate::state::RowRecord;

/// One row's account, and the tags still to add for it.
pub struct RowDone {
    pub record: RowRecord,
    /// The contact's target id and the tags to add (contacts in `--tags add` mode).
    pub tags: Option<(String, Vec<String>)>,
}

impl RowDone {
    pub fn new(record: RowRecord) -> RowDone {
        RowDone { record, tags: None }
    }
}
