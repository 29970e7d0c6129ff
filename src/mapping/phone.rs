//! E.164 normalisation for the `phone_e164` transform: a small, explainable rule set rather
//! than a full numbering-plan library.
//!
//! The rules: drop spaces, dashes, dots, slashes and parentheses; `+` or `00` starts an
//! international number; a leading `0` is a national trunk prefix replaced by the default
//! country's calling code; a number that already starts with that calling code and is long
//! enough to hold one is taken as international without its `+`; anything else gets the
//! calling code prepended. `+44 (0)20 ...` loses its bracketed 0. The result must have
//! 8 to 15 digits. Numbering-plan validity
//! (which area codes exist) is out of scope; countries that keep their leading 0
//! internationally (Italy) should store numbers with `+`.

/// ISO 3166-1 alpha-2 code → calling code.
#[rustfmt::skip]
const CALLING_CODES: &[(&str, &str)] = &[
    ("AD", "376"), ("AE", "971"), ("AF", "93"), ("AG", "1"), ("AL", "355"), ("AM", "374"),
    ("AO", "244"), ("AR", "54"), ("AT", "43"), ("AU", "61"), ("AW", "297"), ("AZ", "994"),
    ("BA", "387"), ("BB", "1"), ("BD", "880"), ("BE", "32"), ("BF", "226"), ("BG", "359"),
    ("BH", "973"), ("BI", "257"), ("BJ", "229"), ("BM", "1"), ("BN", "673"), ("BO", "591"),
    ("BR", "55"), ("BS", "1"), ("BT", "975"), ("BW", "267"), ("BY", "375"), ("BZ", "501"),
    ("CA", "1"), ("CD", "243"), ("CF", "236"), ("CG", "242"), ("CH", "41"), ("CI", "225"),
    ("CL", "56"), ("CM", "237"), ("CN", "86"), ("CO", "57"), ("CR", "506"), ("CU", "53"),
    ("CV", "238"), ("CY", "357"), ("CZ", "420"), ("DE", "49"), ("DJ", "253"), ("DK", "45"),
    ("DM", "1"), ("DO", "1"), ("DZ", "213"), ("EC", "593"), ("EE", "372"), ("EG", "20"),
    ("ER", "291"), ("ES", "34"), ("ET", "251"), ("FI", "358"), ("FJ", "679"), ("FO", "298"),
    ("FR", "33"), ("GA", "241"), ("GB", "44"), ("GD", "1"), ("GE", "995"), ("GG", "44"),
    ("GH", "233"), ("GI", "350"), ("GL", "299"), ("GM", "220"), ("GN", "224"), ("GQ", "240"),
    ("GR", "30"), ("GT", "502"), ("GU", "1"), ("GY", "592"), ("HK", "852"), ("HN", "504"),
    ("HR", "385"), ("HT", "509"), ("HU", "36"), ("ID", "62"), ("IE", "353"), ("IL", "972"),
    ("IM", "44"), ("IN", "91"), ("IQ", "964"), ("IR", "98"), ("IS", "354"), ("IT", "39"),
    ("JE", "44"), ("JM", "1"), ("JO", "962"), ("JP", "81"), ("KE", "254"), ("KG", "996"),
    ("KH", "855"), ("KR", "82"), ("KW", "965"), ("KY", "1"), ("KZ", "7"), ("LA", "856"),
    ("LB", "961"), ("LC", "1"), ("LI", "423"), ("LK", "94"), ("LR", "231"), ("LS", "266"),
    ("LT", "370"), ("LU", "352"), ("LV", "371"), ("LY", "218"), ("MA", "212"), ("MC", "377"),
    ("MD", "373"), ("ME", "382"), ("MG", "261"), ("MK", "389"), ("ML", "223"), ("MM", "95"),
    ("MN", "976"), ("MO", "853"), ("MT", "356"), ("MU", "230"), ("MV", "960"), ("MW", "265"),
    ("MX", "52"), ("MY", "60"), ("MZ", "258"), ("NA", "264"), ("NE", "227"), ("NG", "234"),
    ("NI", "505"), ("NL", "31"), ("NO", "47"), ("NP", "977"), ("NZ", "64"), ("OM", "968"),
    ("PA", "507"), ("PE", "51"), ("PG", "675"), ("PH", "63"), ("PK", "92"), ("PL", "48"),
    ("PR", "1"), ("PS", "970"), ("PT", "351"), ("PY", "595"), ("QA", "974"), ("RO", "40"),
    ("RS", "381"), ("RU", "7"), ("RW", "250"), ("SA", "966"), ("SC", "248"), ("SD", "249"),
    ("SE", "46"), ("SG", "65"), ("SI", "386"), ("SK", "421"), ("SL", "232"), ("SM", "378"),
    ("SN", "221"), ("SO", "252"), ("SR", "597"), ("SV", "503"), ("SY", "963"), ("SZ", "268"),
    ("TG", "228"), ("TH", "66"), ("TJ", "992"), ("TM", "993"), ("TN", "216"), ("TR", "90"),
    ("TT", "1"), ("TW", "886"), ("TZ", "255"), ("UA", "380"), ("UG", "256"), ("US", "1"),
    ("UY", "598"), ("UZ", "998"), ("VA", "39"), ("VE", "58"), ("VN", "84"), ("YE", "967"),
    ("ZA", "27"), ("ZM", "260"), ("ZW", "263"),
];

/// The calling code for an ISO country code (`GB`), or a calling code given directly
/// (`44`, `+44`).
pub(crate) fn calling_code(country: &str) -> Option<&'static str> {
    let digits = country.strip_prefix('+').unwrap_or(country);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return CALLING_CODES
            .iter()
            .map(|(_, code)| *code)
            .find(|code| *code == digits);
    }
    // `UK` is not ISO 3166 but is what people write for GB.
    let iso = if country.eq_ignore_ascii_case("UK") {
        "GB"
    } else {
        country
    };
    CALLING_CODES
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(iso))
        .map(|(_, code)| *code)
}

/// Normalise `raw` to `+<digits>`, or say why it cannot be.
pub(crate) fn to_e164(raw: &str, calling_code: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    // `+44 (0)20 ...`: the bracketed trunk 0 is for national dialling only.
    let without_trunk;
    let s = if trimmed.starts_with('+') && trimmed.contains("(0)") {
        without_trunk = trimmed.replace("(0)", "");
        without_trunk.as_str()
    } else {
        trimmed
    };
    let mut digits = String::with_capacity(s.len() + 4);
    let mut plus = false;
    for (i, c) in s.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => plus = true,
            ' ' | '-' | '.' | '/' | '(' | ')' | '\u{a0}' => {}
            _ => return Err(format!("{} is not a phone number", super::cell::quote(raw))),
        }
    }
    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("{calling_code}{rest}")
    } else if digits.starts_with(calling_code) && digits.len() >= 10 + calling_code.len() - 1 {
        digits
    } else {
        format!("{calling_code}{digits}")
    };
    if !(8..=15).contains(&international.len()) || international.starts_with('0') {
        return Err(format!(
            "{} cannot be made an E.164 number",
            super::cell::quote(raw)
        ));
    }
    Ok(format!("+{international}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_and_codes() {
        assert_eq!(calling_code("GB"), Some("44"));
        assert_eq!(calling_code("us"), Some("1"));
        assert_eq!(calling_code("UK"), Some("44"));
        assert_eq!(calling_code("+49"), Some("49"));
        assert_eq!(calling_code("XX"), None);
        assert_eq!(calling_code("999"), None);
    }

    #[test]
    fn normalises_common_shapes() {
        let gb = "44";
        for (raw, want) in [
            ("07911 123456", "+447911123456"),
            ("+44 (0)7911 123456", "+447911123456"),
            ("0044 7911-123456", "+447911123456"),
            ("+44 7911 123456", "+447911123456"),
            ("447911123456", "+447911123456"),
            ("7911123456", "+447911123456"),
        ] {
            assert_eq!(to_e164(raw, gb).as_deref(), Ok(want), "{raw}");
        }
        let us = "1";
        assert_eq!(to_e164("(555) 123-4567", us).as_deref(), Ok("+15551234567"));
        assert_eq!(to_e164("1-555-123-4567", us).as_deref(), Ok("+15551234567"));
        assert_eq!(to_e164("555.123.4567", us).as_deref(), Ok("+15551234567"));
    }

    #[test]
    fn impossible_numbers_are_errors() {
        assert!(to_e164("call me", "44").is_err());
        assert!(to_e164("123", "44").is_err());
        assert!(to_e164("+1234567890123456", "44").is_err());
        assert!(to_e164("555 1234 ext 5", "1").is_err());
        assert!(to_e164("12+34", "1").is_err());
        assert!(to_e164("+0123456789", "1").is_err());
    }
}
