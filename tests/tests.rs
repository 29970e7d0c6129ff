//! The one integration-test binary: one module per topic. Every test talks HTTP to the
//! sandbox over 127.0.0.1 and uses real files and a real SQLite database.

mod util;

mod agency;
mod bulk;
mod cli;
mod client;
mod collide;
mod deleted;
mod docs;
mod export;
mod flag_checks;
mod flags;
mod flags_sandbox;
mod hardening_inputs;
mod hardening_server;
mod incremental;
mod kills;
mod listen;
mod load;
mod mapping;
mod migrate;
mod object_store;
mod row_jobs;
mod sandbox;
mod secrets;
mod signals;
mod sinks;
mod spec;
mod tag;
mod tag_cost;
mod traffic;
mod users_day;
