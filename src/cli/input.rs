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

    /// CSV field separator.
    #[arg(long, default_value = ",")]
    pub delimiter: char,

    /// State database (each row's outcome), for resume.
    #[arg(long, default_value = ".ghl-etl/state.sqlite")]
    pub state: PathBuf,

    /// Folder of the reports `succeeded.csv` and `failed.csv` (default: `load-report/` or
    /// `tag-report/` beside the state database).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl InputArgs {
    /// The format the flags force, if any.
    pub fn format(&self) -> Result<Option<InputFormat>> {
        let delimiter = u8::try_from(self.delimiter)
            .map_err(|_| JobError::usage("--delimiter must be one ASCII character"))?;
        Ok(self.input_format.map(|f| match f {
            FormatArg::Csv => InputFormat::Csv { delimiter },
            FormatArg::Ndjson => InputFormat::Ndjson,
            FormatArg::Parquet => InputFormat::Parquet,
        }))
    }

    /// `--report`, else `<default>/` beside the state database.
    pub fn report_dir(&self, default: &str) -> PathBuf {
        self.report
            .clone()
            .unwrap_or_else(|| self.state.parent().unwrap_or(Path::new(".")).join(default))
    }
}
