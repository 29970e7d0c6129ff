//! The end-of-run summary's shared part: what the run cost (requests, retries, 429s, rate,
//! memory) in the same words for every job. Each job adds its own lines (rows per table,
//! succeeded and failed rows).

use crate::api::RateSpec;

/// Peak resident set size of this process in MiB (`VmHWM` in /proc/self/status).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// What a run spent.
#[derive(Debug, Default, Clone)]
pub struct Cost {
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub elapsed_s: f64,
    pub peak_rss_mb: Option<f64>,
}

impl Cost {
    /// The lines of the summary about cost; `per` names the unit requests are counted per
    /// (`contact`, `row`) and `units` how many there were.
    pub fn lines(&self, per: &str, units: u64, rate: Option<RateSpec>) -> Vec<String> {
        let per_unit = if units > 0 {
            self.requests as f64 / units as f64
        } else {
            0.0
        };
        let req_rate = if self.elapsed_s > 0.0 {
            self.requests as f64 / self.elapsed_s
        } else {
            0.0
        };
        let mut lines = vec![format!(
            "  requests      {:>9} ({per_unit:.3} per {per}), {} retries, {} answered 429",
            self.requests, self.retries, self.throttled
        )];
        lines.push(match rate {
            Some(r) => format!(
                "  request rate  {req_rate:>9.1}/s (budget {:.1}/s per location)",
                r.per_second()
            ),
            None => format!("  request rate  {req_rate:>9.1}/s"),
        });
        if let Some(mb) = self.peak_rss_mb {
            lines.push(format!("  peak memory   {mb:>9.0} MiB"));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_lines_divide_by_the_unit() {
        let c = Cost {
            requests: 206,
            retries: 1,
            throttled: 0,
            elapsed_s: 2.0,
            peak_rss_mb: Some(12.0),
        };
        let lines = c.lines("contact", 200, Some(RateSpec::GHL_BURST));
        assert!(lines[0].contains("1.030 per contact"), "{lines:?}");
        assert!(lines[1].contains("103.0/s (budget 10.0/s"), "{lines:?}");
        assert!(lines[2].contains("12 MiB"), "{lines:?}");
    }
}
