//! The CSV row reader on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "rows.rs"]
mod rows;

fuzz_target!(|data: &[u8]| {
    rows::read_all(data, "csv", ghl_etl::input::InputFormat::Csv { delimiter: b',' });
});
