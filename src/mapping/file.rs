//! A mapping file as a job holds it: where it came from, its text (part of the job's identity)
//! and the checked mapping.

use std::path::Path as FsPath;

use super::{Mapping, MappingError, MappingErrors};

/// A mapping file as read: its path, its text (part of a job's identity: a changed mapping is
/// another job) and the checked mapping.
#[derive(Debug, Clone)]
pub struct MappingFile {
    pub path: std::path::PathBuf,
    pub text: String,
    pub mapping: Mapping,
}

impl MappingFile {
    /// Read and check a mapping file.
    pub fn read(path: &FsPath) -> Result<MappingFile, MappingErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            MappingErrors(vec![MappingError {
                file: path.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read the mapping file: {e}"),
                help: None,
            }])
        })?;
        let mapping = Mapping::from_str(&text, &path.display().to_string())?;
        Ok(MappingFile {
            path: path.to_path_buf(),
            text,
            mapping,
        })
    }
}
