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
            // The limit as it is written (100 per 10 s): a short run may take a whole window's
            // requests at once and so average above `max / interval`, within the limit.
            Some(r) if req_rate > r.per_second() * 1.001 => format!(
                "  request rate  {req_rate:>9.1}/s on average, within the limit of {} per {} s per location (a run of few windows averages above {:.1}/s: each window allows its {} at once)",
                r.max,
                fmt_secs(r.interval.as_secs_f64()),
                r.per_second(),
                r.max
            ),
            Some(r) => format!(
                "  request rate  {req_rate:>9.1}/s on average; the limit is {} per {} s per location",
                r.max,
                fmt_secs(r.interval.as_secs_f64())
            ),
            None => format!("  request rate  {req_rate:>9.1}/s on average"),
        });
        if let Some(mb) = self.peak_rss_mb {
            lines.push(format!("  peak memory   {mb:>9.0} MiB"));
        }
        lines
    }
}

/// `10` for 10.0, `0.5` for 0.5.
fn fmt_secs(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

/// A dry run's write requests and the time they take at the rate limit:
/// `  requests          120 writes, about 12 s at 100/10s`.
pub fn planned_requests_line(planned: u64, rate: Option<RateSpec>) -> String {
    let secs = rate.map_or(0.0, |r| planned as f64 / r.per_second());
    format!(
        "  requests      {planned:>9} writes, about {secs:.0} s at {}",
        rate.map_or("no limit".to_string(), |r| r.to_string())
    )
}

/// The lines every row job (load, tag, bulk) ends its summary with: the rows an earlier run
/// settled, then what this run cost per row it worked on.
pub fn row_job_tail(resumed: u64, rows: u64, cost: &Cost, rate: Option<RateSpec>) -> Vec<String> {
    let mut lines = Vec::new();
    if resumed > 0 {
        lines.push(format!(
            "  resumed       {resumed:>9} rows settled by an earlier run"
        ));
    }
    lines.extend(cost.lines("row", rows.saturating_sub(resumed), rate));
    lines
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
        assert!(
            lines[1].contains("103.0/s on average, within the limit of 100 per 10 s"),
            "{lines:?}"
        );
        assert!(lines[2].contains("12 MiB"), "{lines:?}");
    }

    #[test]
    fn row_job_tails_count_only_the_rows_this_run_worked_on() {
        let c = Cost {
            requests: 30,
            ..Cost::default()
        };
        let lines = row_job_tail(40, 100, &c, None);
        assert!(
            lines[0].contains("40 rows settled by an earlier run"),
            "{lines:?}"
        );
        assert!(lines[1].contains("0.500 per row"), "{lines:?}");
        assert_eq!(row_job_tail(0, 10, &c, None).len(), 2);
        let planned = planned_requests_line(50, Some(RateSpec::GHL_BURST));
        assert!(
            planned.contains("50 writes, about 5 s at 100/10s"),
            "{planned}"
        );
    }
}
