//! Every location's outcome at the end of a run: printed for people (one line a location),
//! logged as one event a location for log shippers, and written as `_locations.json` in the
//! output folder for whatever schedules the runs. A rerun of the same command redoes only the
//! locations that did not finish: the state database knows which did.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::fanout::{FanOut, Outcome};
use crate::job::Ui;

/// Written in the output folder at the end of every run, finished or not.
pub const LOCATIONS_FILE: &str = "_locations.json";

/// One location's line of the summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LocationReport {
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `finished`, `finished earlier` (by a previous run), `failed`, `stopped the run` or
    /// `not finished` (stopped because the whole run stopped).
    pub outcome: &'static str,
    /// The exit code this location's failure alone would give.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Contacts committed for the location, over every run of the job.
    pub contacts: u64,
}

impl LocationReport {
    pub fn finished(&self) -> bool {
        self.outcome.starts_with("finished")
    }
}

/// The reports of a fan-out; `done_before`: locations an earlier run finished.
pub fn location_reports(
    fan: &FanOut,
    done_before: &HashSet<String>,
    names: &HashMap<String, String>,
    contacts: impl Fn(&str) -> u64,
) -> Vec<LocationReport> {
    fan.outcomes
        .iter()
        .map(|(location, outcome)| {
            let (outcome, exit_code, error) = match outcome {
                Outcome::Finished if done_before.contains(location) => {
                    ("finished earlier", None, None)
                }
                Outcome::Finished => ("finished", None, None),
                Outcome::Failed(e) => ("failed", Some(e.exit_code()), Some(e.to_string())),
                Outcome::StoppedRun => ("stopped the run", None, None),
                Outcome::Stopped => ("not finished", None, None),
            };
            LocationReport {
                location: location.clone(),
                name: names.get(location).cloned(),
                outcome,
                exit_code,
                error,
                contacts: contacts(location),
            }
        })
        .collect()
}

/// Print the reports: a count line, then a line a location (for people); an event a location
/// with JSON logs.
pub fn print_location_reports(reports: &[LocationReport], ui: Ui) {
    if ui.quiet || reports.len() < 2 {
        return;
    }
    if ui.json_logs {
        for r in reports {
            tracing::info!(
                location = %r.location,
                name = r.name.as_deref().unwrap_or(""),
                outcome = r.outcome,
                exit_code = r.exit_code.unwrap_or(0),
                error = r.error.as_deref().unwrap_or(""),
                contacts = r.contacts,
                "Location outcome."
            );
        }
        return;
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for r in reports {
        match counts.iter_mut().find(|(o, _)| *o == r.outcome) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.outcome, 1)),
        }
    }
    let counted: Vec<String> = counts.iter().map(|(o, n)| format!("{n} {o}")).collect();
    eprintln!("Locations ({}): {}", reports.len(), counted.join(", "));
    for r in reports {
        let name = r.name.as_deref().unwrap_or("");
        let tail = match (&r.exit_code, &r.error) {
            (Some(code), Some(e)) => format!("  exit {code}: {e}"),
            _ => String::new(),
        };
        eprintln!(
            "  {:<16} {:<22} {:<24} {:>8} contacts{tail}",
            r.outcome,
            r.location,
            truncate(name, 24),
            r.contacts
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
