//! Flags of the jobs that read input files (`load`, `tag`): the format, the CSV separator, the
//! state database and the report folder.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::exit::{JobError, Result};
use crate::input::InputFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Csv,
    Ndjson,
    Parquet,
}

#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Input format (default: from each file's extension).
    #[arg(long, value_enum)]
    pub input_format: Option<FormatArg>,

    /// CSV field separator; given alone it means the input is CSV, whatever its name. Without
    /// it a CSV file's separator is told from its header line (`,` `;` tab `|`).
    #[arg(long)]
    pub delimiter: Option<char>,

    /// State database (each row's outcome), for resume.
    #[arg(long, default_value = ".ghl-etl/state.sqlite")]
    pub state: PathBuf,

    /// Folder of the reports `succeeded.csv` and `failed.csv` (default: `load-report/NAME/`,
    /// `tag-report/NAME/` or `bulk-report/NAME/` beside the state database, NAME the input
    /// file's name, or `search` for `--where`).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl InputArgs {
    /// The format the flags force, if any.
    pub fn format(&self) -> Result<Option<InputFormat>> {
        let delimiter = self
            .delimiter
            .map(|d| {
                u8::try_from(d)
                    .ok()
                    .filter(|b| b.is_ascii() && *b != b'"' && *b != b'\n' && *b != b'\r')
                    .ok_or_else(|| JobError::usage("--delimiter must be one ASCII character other than a quote or a line end"))
            })
            .transpose()?;
        Ok(match (self.input_format, delimiter) {
            (Some(FormatArg::Csv), d) | (None, d @ Some(_)) => Some(InputFormat::Csv {
                delimiter: d.unwrap_or(b','),
            }),
            (Some(FormatArg::Ndjson), None) => Some(InputFormat::Ndjson),
            (Some(FormatArg::Parquet), None) => Some(InputFormat::Parquet),
            (Some(_), Some(_)) => {
                return Err(JobError::usage(
                    "--delimiter is for CSV input; drop it, or say --input-format csv",
                ))
            }
            (None, None) => None,
        })
    }

    /// `--report`, else `<default>/<name>/` beside the state database: one folder per input
    /// (`load-report/ecosend-contacts/`), so one job's run replaces only its own reports, never
    /// another job's.
    pub fn report_dir(&self, default: &str, name: &str) -> PathBuf {
        self.report.clone().unwrap_or_else(|| {
            let name: String = name
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let name = name.trim_start_matches('.');
            let base = self.state.parent().unwrap_or(Path::new(".")).join(default);
            match name.is_empty() {
                true => base,
                false => base.join(name),
            }
        })
    }

    /// The report folder, refused when an input is in it: the run rewrites `succeeded.csv`
    /// and `failed.csv` there, and a `failed.csv` fixed in place and fed back would be
    /// overwritten while it is read.
    pub fn report_dir_apart_from(&self, default: &str, inputs: &[&Path]) -> Result<PathBuf> {
        let name = inputs
            .first()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = self.report_dir(default, &name);
        let Some(dir_real) = real(&dir) else {
            return Ok(dir);
        };
        for input in inputs {
            let Some(input_real) = real(input) else {
                continue;
            };
            if input_real.starts_with(&dir_real) {
                return Err(JobError::usage(format!(
                    "the reports would be written in {}, which holds the input {}: a run rewrites its reports there. Copy the input elsewhere (e.g. fixed.csv beside it, outside the folder), or pass --report with another folder",
                    dir.display(),
                    input.display()
                )));
            }
        }
        Ok(dir)
    }
}

/// A path made absolute with its links resolved; for one that does not exist yet, its
/// nearest existing ancestor's, with the rest appended.
fn real(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(real(parent)?.join(path.file_name()?))
}
