//! The mapping parser and compiler: any text gives a mapping or errors with a place, never a
//! panic; an error's line and column are inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(errs) = ghl_etl::mapping::Mapping::from_str(text, "fuzz.toml") {
        let lines = text.lines().count().max(1) + 1;
        for e in errs.iter() {
            assert!(e.line <= lines, "line {} of {lines}: {e}", e.line);
        }
        let _ = errs.to_string();
    }
});
