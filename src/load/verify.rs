//! `--verify`: read each written contact back and say which fields did not stick. GHL's upsert
//! drops some fields silently (a `dateOfBirth` in an odd format) and can make a secondary email
//! the primary; a migration that matters reads back what it wrote.

use serde_json::Value as Json;

use super::Load;
use crate::exit::Result;

/// Fields of `sent` that read back differently, as "field: sent X, reads Y"; `None` if all
/// stuck. One `GET /contacts/{id}` per contact.
pub async fn verify(load: &Load, contact: &str, sent: &Json) -> Result<Option<String>> {
    let Some(read) = load.client.contact(&load.plan.location, contact).await? else {
        return Ok(Some("the contact cannot be read back".into()));
    };
    let read = serde_json::to_value(&read).unwrap_or_default();
    let mut differ = Vec::new();
    for (field, value) in sent.as_object().into_iter().flatten() {
        match field.as_str() {
            "customFields" => differ.extend(custom_differences(value, &read["customFields"])),
            "tags" | "locationId" => {}
            f if !same(f, value, &read[f]) => {
                differ.push(format!("{f}: sent {value}, reads {}", read[f]))
            }
            _ => {}
        }
    }
    Ok((!differ.is_empty()).then(|| format!("did not stick: {}", differ.join("; "))))
}

/// Values that mean the same in GHL: emails in any case, phones by their digits, dates by
/// their day.
fn same(field: &str, sent: &Json, read: &Json) -> bool {
    let (Some(a), Some(b)) = (sent.as_str(), read.as_str()) else {
        return sent == read;
    };
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    match field {
        "email" => a.eq_ignore_ascii_case(b),
        "phone" => digits(a).ends_with(&digits(b)) || digits(b).ends_with(&digits(a)),
        "dateOfBirth" => b.starts_with(a) || a.starts_with(b),
        _ => a == b,
    }
}

fn custom_differences(sent: &Json, read: &Json) -> Vec<String> {
    let read: Vec<&Json> = read.as_array().into_iter().flatten().collect();
    sent.as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let id = f["id"].as_str()?;
            let got = read.iter().find(|r| r["id"] == id).map(|r| &r["value"]);
            let want = &f["field_value"];
            let stuck = got.is_some_and(|g| {
                g == want || g.to_string().trim_matches('"') == want.to_string().trim_matches('"')
            });
            (!stuck).then(|| {
                format!(
                    "custom field {id}: sent {want}, reads {}",
                    got.unwrap_or(&Json::Null)
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_meaning_is_not_a_difference() {
        assert!(same("email", &json!("A@B.co"), &json!("a@b.co")));
        assert!(same(
            "phone",
            &json!("+447700900123"),
            &json!("+44 7700 900123")
        ));
        assert!(same(
            "dateOfBirth",
            &json!("1990-02-01"),
            &json!("1990-02-01T00:00:00.000Z")
        ));
        assert!(!same("firstName", &json!("Ada"), &json!("Grace")));
        assert!(!same("email", &json!("a@b.co"), &Json::Null));
        let sent = json!([{"id": "f1", "field_value": 7}, {"id": "f2", "field_value": "x"}]);
        let read = json!([{"id": "f1", "value": "7"}]);
        assert_eq!(
            custom_differences(&sent, &read),
            vec!["custom field f2: sent \"x\", reads null"]
        );
    }
}
