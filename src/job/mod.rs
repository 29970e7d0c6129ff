//! What every job (export, load, tag) shares, one concern a file:
//!
//! - `connect`: the resolved connection ([`ConnectionPlan`]) and what it opens: the client,
//!   and the embedded sandbox for `--sandbox`.
//! - `identity`: a job's key, a hash of its resolved plan, under which the state database
//!   keeps its progress for resume.
//! - `fanout`: one task per location, Ctrl-C, and which failures stop the others.
//! - `progress`: counters and the progress bar; [`Ui`], how a command talks to people.
//! - `summary`: the cost lines of the end-of-run summary, peak memory.
//! - `output`: the output folder: owner marker, part numbering, sweep, manifest.
//! - `store`: where the output goes: `--out` parsed, a local folder or an object store
//!   (`s3://`, `gs://`, `az://`) behind put/get/list/delete.

mod connect;
mod fanout;
mod identity;
mod output;
mod progress;
mod store;
mod summary;

pub use connect::{Connection, ConnectionPlan, Endpoint, RateChoice};
pub use fanout::for_each_location;
pub use identity::job_key;
pub use output::{part_number, Layout, OutputDir, PartFolder, MANIFEST};
pub use progress::{Progress, Ui};
pub use store::{staging_dir, OutTarget, Store, UPLOAD_CHUNK, WRITABLE};
pub use summary::{peak_rss_mb, Cost};
