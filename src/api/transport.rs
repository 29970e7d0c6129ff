//! Reading what came back over HTTP, shared by the client's calls and the OAuth refresh: a
//! transport error in words (never its URL), the `message` of a GHL error body, and whether an
//! answer is an HTML page where JSON was promised. Deciding what to do about any of it is left
//! to `client` (retries) and `auth` (refresh failures).

/// A transport error in words, without the URL (which could carry a query secret).
pub(crate) fn describe_transport(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer"
    } else if e.is_request() {
        "the request could not be sent"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what} ({detail})")
    }
}

/// The `message` of a GHL error body: a string, or a list of strings for 422s.
pub(crate) fn server_message(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    match v.get("message")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => Some(other.to_string()),
    }
}

/// An HTML page (a proxy's error page) where JSON was promised.
pub(crate) fn is_html(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_single_and_list() {
        assert_eq!(
            server_message(br#"{"message":"Invalid token"}"#).unwrap(),
            "Invalid token"
        );
        assert_eq!(
            server_message(br#"{"message":["email must be an email","x"]}"#).unwrap(),
            "email must be an email; x"
        );
    }
}
