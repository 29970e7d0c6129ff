//! How GHL recognises a contact by its email or phone, on the client's side: the keys two
//! values match on. The tag job looks contacts up by them, and the load makes upserts that
//! could match the same contact take turns. (The sandbox keeps its own copy of the rule.)

/// The key an email (if given) or else a phone matches on, or why the value cannot name a
/// contact.
pub fn key_of(email: Option<&str>, phone: Option<&str>) -> std::result::Result<String, String> {
    if let Some(e) = email {
        if !e.contains('@') || e.contains(char::is_whitespace) {
            return Err(format!("malformed email `{e}`"));
        }
        return Ok(format!("email:{}", e.to_lowercase()));
    }
    let p = phone.unwrap_or("");
    match phone_key(p) {
        Some(k) if !p.chars().any(char::is_alphabetic) => Ok(format!("phone:{k}")),
        _ => Err(format!("malformed phone `{p}`")),
    }
}

/// The digits two phones match on: no `00` prefix, and the North American `1` added to a
/// bare ten-digit number (GHL's default country is the US). Fewer than seven digits: none.
/// The sandbox keeps its own copy of GHL's rule on purpose: a server that shared the client's
/// code would agree with it by construction.
pub fn phone_key(p: &str) -> Option<String> {
    let d: String = p.chars().filter(char::is_ascii_digit).collect();
    let d = match d.strip_prefix("00") {
        Some(rest) if !p.trim_start().starts_with('+') => rest.to_string(),
        _ => d,
    };
    if d.len() < 7 {
        return None;
    }
    Some(if d.len() == 10 && !d.starts_with(['0', '1']) {
        format!("1{d}")
    } else {
        d
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_match_whatever_their_punctuation() {
        let k = |p: &str| key_of(None, Some(p));
        assert_eq!(k("+1 888-555-0101"), k("(888) 555-0101"));
        assert_eq!(k("0018885550101"), k("+1 888 555 0101"));
        assert!(k("555-01").unwrap_err().contains("malformed phone"));
        assert!(k("call me").is_err());
        assert!(k("88855501O1").is_err(), "a letter O is not a digit");
    }

    #[test]
    fn emails_match_case_insensitively_and_must_look_like_one() {
        assert_eq!(
            key_of(Some("Ann@Example.com"), None),
            key_of(Some("ann@example.com"), None)
        );
        assert!(key_of(Some("ann.example.com"), None).is_err());
        assert!(key_of(Some("ann @x.com"), None).is_err());
    }
}
