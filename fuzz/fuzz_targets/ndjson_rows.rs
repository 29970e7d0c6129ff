//! The NDJSON row reader on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "rows.rs"]
mod rows;

fuzz_target!(|data: &[u8]| {
    rows::read_all(data, "ndjson", ghl_etl::input::InputFormat::Ndjson);
});
