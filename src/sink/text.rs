//! Text spellings of typed cells, shared by the CSV and NDJSON encoders: RFC 3339 timestamps
//! in UTC with milliseconds, ISO 8601 dates, decimals with exactly their scale.
//!
//! The calendar arithmetic is done here rather than through chrono because it runs once per
//! cell on the hot path of every text export, and because RFC 3339 can only spell the years
//! 0000-9999: a value outside them is refused with a reason the caller can put in a reject
//! file, instead of being written in a form readers would not parse.

/// Why a cell cannot be spelled as text.
pub(crate) type TextError = String;

const MS_PER_DAY: i64 = 86_400_000;

/// Converts days since 1970-01-01 into a proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days`, which is exact for every `i64` input used here.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn push_digits(out: &mut String, value: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = value;
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend(buf[..width].iter().map(|&b| b as char));
}

fn push_ymd(out: &mut String, days: i64) -> Result<(), TextError> {
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err(format!(
            "year {year} is outside 0000-9999, the years RFC 3339 can write"
        ));
    }
    push_digits(out, year as u32, 4);
    out.push('-');
    push_digits(out, month, 2);
    out.push('-');
    push_digits(out, day, 2);
    Ok(())
}

/// Appends a date (days since 1970-01-01) as `YYYY-MM-DD`.
pub(crate) fn push_date(out: &mut String, days: i32) -> Result<(), TextError> {
    push_ymd(out, i64::from(days))
}

/// Appends a timestamp (ms since the epoch) as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn push_timestamp(out: &mut String, millis: i64) -> Result<(), TextError> {
    let days = millis.div_euclid(MS_PER_DAY);
    let in_day = millis.rem_euclid(MS_PER_DAY) as u32;
    push_ymd(out, days)?;
    out.push('T');
    push_digits(out, in_day / 3_600_000, 2);
    out.push(':');
    push_digits(out, in_day / 60_000 % 60, 2);
    out.push(':');
    push_digits(out, in_day / 1_000 % 60, 2);
    out.push('.');
    push_digits(out, in_day % 1_000, 3);
    out.push('Z');
    Ok(())
}

fn push_zeros(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push('0');
    }
}

/// Appends an unscaled decimal with its scale: `(1250, 2)` is `12.50`, `(-5, 3)` is `-0.005`,
/// `(12, -2)` is `1200`.
pub(crate) fn push_decimal(out: &mut String, unscaled: i128, scale: i8) {
    use std::fmt::Write as _;
    if scale <= 0 {
        // Writing to a String cannot fail.
        let _ = write!(out, "{unscaled}");
        if unscaled != 0 {
            push_zeros(out, usize::from(scale.unsigned_abs()));
        }
        return;
    }
    let scale = usize::from(scale.unsigned_abs());
    if unscaled < 0 {
        out.push('-');
    }
    let digits = unscaled.unsigned_abs().to_string();
    if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str("0.");
        push_zeros(out, scale - digits.len());
        out.push_str(&digits);
    }
}

/// Appends a float in Rust's shortest round-trip spelling. The `Debug` form is used because
/// it always reads as a float (`1.0`, not `1`, so readers that infer types do not guess int)
/// and switches to exponents for huge and tiny magnitudes (`1e300`, not 301 digits);
/// non-finite values come out as `NaN`, `inf` and `-inf`, which DuckDB, pandas and polars parse.
pub(crate) fn push_float(out: &mut String, value: f64) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(out, "{value:?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate, SecondsFormat};

    fn ts(ms: i64) -> Result<String, TextError> {
        let mut s = String::new();
        push_timestamp(&mut s, ms).map(|()| s)
    }

    fn dec(v: i128, scale: i8) -> String {
        let mut s = String::new();
        push_decimal(&mut s, v, scale);
        s
    }

    #[test]
    fn timestamps_match_chrono_across_the_range() {
        // A stride that is prime in ms walks through every hour, minute and leap-year case.
        let lo = -62_167_219_200_000_i64; // 0000-01-01T00:00:00Z
        let hi = 253_402_300_799_999_i64; // 9999-12-31T23:59:59.999Z
        let mut ms = lo;
        let mut checked = 0;
        while ms <= hi {
            let want = DateTime::from_timestamp_millis(ms)
                .expect("in range")
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(ts(ms).expect("in range"), want, "ms = {ms}");
            ms += 1_000_003_017;
            checked += 1;
        }
        assert!(checked > 300_000);
        assert_eq!(ts(hi).unwrap(), "9999-12-31T23:59:59.999Z");
        assert_eq!(ts(lo).unwrap(), "0000-01-01T00:00:00.000Z");
        assert_eq!(ts(-1).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(ts(1_706_702_400_000).unwrap(), "2024-01-31T12:00:00.000Z");
    }

    #[test]
    fn timestamps_outside_rfc3339_years_are_refused() {
        assert!(ts(253_402_300_800_000).unwrap_err().contains("10000"));
        assert!(ts(-62_167_219_200_001).unwrap_err().contains("-1"));
        assert!(ts(i64::MAX).is_err());
        assert!(ts(i64::MIN).is_err());
    }

    #[test]
    fn dates_match_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for days in (-719_528..=2_932_896).step_by(997) {
            let mut s = String::new();
            push_date(&mut s, days).unwrap();
            let want = epoch + chrono::TimeDelta::days(i64::from(days));
            assert_eq!(s, want.format("%Y-%m-%d").to_string());
        }
        let mut s = String::new();
        push_date(&mut s, 19_753).unwrap();
        assert_eq!(s, "2024-01-31");
    }

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(dec(1250, 2), "12.50");
        assert_eq!(dec(-1250, 2), "-12.50");
        assert_eq!(dec(5, 3), "0.005");
        assert_eq!(dec(-5, 3), "-0.005");
        assert_eq!(dec(0, 2), "0.00");
        assert_eq!(dec(100, 2), "1.00");
        assert_eq!(dec(42, 0), "42");
        assert_eq!(dec(12, -2), "1200");
        assert_eq!(dec(0, -2), "0");
        let min = dec(i128::MIN, 2);
        assert!(
            min.starts_with("-1701") && min.ends_with("1057.28"),
            "{min}"
        );
    }

    #[test]
    fn floats_round_trip() {
        for v in [0.1, -2.5, 1e21, 123456.789, f64::MIN_POSITIVE, 1.0] {
            let mut s = String::new();
            push_float(&mut s, v);
            assert_eq!(s.parse::<f64>().unwrap(), v);
        }
        let mut s = String::new();
        push_float(&mut s, 1.0);
        push_float(&mut s, -1e300);
        assert_eq!(s, "1.0-1e300");
    }
}
