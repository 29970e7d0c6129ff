//! `RateSpec`: a request budget such as `100/10s`, shared by the client's limiter and the
//! sandbox's enforcement so both read the same flag syntax.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// `max` requests per `interval`, e.g. `100/10s` (GHL's burst limit per location).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    pub max: u32,
    pub interval: Duration,
}

impl RateSpec {
    /// GHL's documented burst limit: 100 requests per 10 seconds per location.
    pub const GHL_BURST: RateSpec = RateSpec {
        max: 100,
        interval: Duration::from_secs(10),
    };

    /// Requests per second this budget allows on average.
    pub fn per_second(&self) -> f64 {
        self.max as f64 / self.interval.as_secs_f64()
    }
}

impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.interval.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}/{}s", self.max, ms / 1000)
        } else {
            write!(f, "{}/{}ms", self.max, ms)
        }
    }
}

impl FromStr for RateSpec {
    type Err = String;

    /// Accepts `N/10s`, `N/500ms`, `N/1m`, `N/s` (one second).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("invalid rate `{s}`: expected REQUESTS/INTERVAL such as `100/10s`, `20/1s` or `5/500ms`")
        };
        let (n, per) = s.trim().split_once('/').ok_or_else(bad)?;
        let max: u32 = n.trim().parse().map_err(|_| bad())?;
        if max == 0 {
            return Err(format!(
                "invalid rate `{s}`: the number of requests must be at least 1"
            ));
        }
        let per = per.trim();
        let (num, unit) = match per.find(|c: char| !c.is_ascii_digit() && c != '.') {
            Some(i) => per.split_at(i),
            None => return Err(bad()),
        };
        let num: f64 = if num.is_empty() {
            1.0
        } else {
            num.parse().map_err(|_| bad())?
        };
        let secs = match unit {
            "ms" => num / 1000.0,
            "s" => num,
            "m" | "min" => num * 60.0,
            "h" => num * 3600.0,
            _ => return Err(bad()),
        };
        if secs.is_nan() || secs <= 0.0 {
            return Err(bad());
        }
        Ok(RateSpec {
            max,
            interval: Duration::from_secs_f64(secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        assert_eq!("100/10s".parse::<RateSpec>().unwrap(), RateSpec::GHL_BURST);
        assert_eq!(
            "5/500ms".parse::<RateSpec>().unwrap().interval,
            Duration::from_millis(500)
        );
        assert_eq!(
            "20/s".parse::<RateSpec>().unwrap().interval,
            Duration::from_secs(1)
        );
        assert_eq!(
            "100/10s".parse::<RateSpec>().unwrap().to_string(),
            "100/10s"
        );
        assert!("0/10s".parse::<RateSpec>().is_err());
        assert!("100".parse::<RateSpec>().is_err());
        assert!("100/10x"
            .parse::<RateSpec>()
            .unwrap_err()
            .contains("100/10s"));
    }
}
