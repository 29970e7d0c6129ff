//! The API answer decoders: any body decodes or gives an error naming its JSON path, never a
//! panic.
#![no_main]

use ghl_etl::api::model::{Contact, CustomField, Note, Task};
use ghl_etl::api::{client::decode, Call};
use libfuzzer_sys::fuzz_target;

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Contacts {
    contacts: Vec<Contact>,
}

fuzz_target!(|data: &[u8]| {
    let call = Call::get("L", "/contacts/");
    let _ = decode::<Contacts>(data, &call).map_err(|e| e.to_string());
    let _ = decode::<Vec<Task>>(data, &call).map_err(|e| e.to_string());
    let _ = decode::<Vec<Note>>(data, &call).map_err(|e| e.to_string());
    let _ = decode::<Vec<CustomField>>(data, &call).map_err(|e| e.to_string());
});
