//! Input rows in chunks, read on a blocking thread and handed over a bounded channel: memory
//! stays flat however large the file, and the writers of a job work on one chunk at a time.

use std::path::Path;

use tokio::sync::mpsc;

use super::{open, InputError, InputFormat, InputOptions, RowResult};

/// Input rows in chunks, read on a blocking thread.
pub struct Chunked {
    rx: mpsc::Receiver<Vec<RowResult>>,
    reader: tokio::task::JoinHandle<Result<(), InputError>>,
    format: InputFormat,
}

impl Chunked {
    /// Open `path` (a file or a folder of parts); fails now if its first file cannot be read.
    pub fn open(
        path: &Path,
        format: Option<InputFormat>,
        rows: usize,
    ) -> Result<Chunked, InputError> {
        let reader = open(path, format, &InputOptions::default())?;
        let format = reader.format();
        let (tx, rx) = mpsc::channel(2);
        let reader = tokio::task::spawn_blocking(move || {
            let mut chunk = Vec::with_capacity(rows);
            for item in reader {
                chunk.push(item?);
                if chunk.len() == rows && tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
                    return Ok(()); // the load stopped
                }
            }
            if !chunk.is_empty() {
                let _ = tx.blocking_send(chunk);
            }
            Ok(())
        });
        Ok(Chunked { rx, reader, format })
    }

    /// The format the input is read as (given, or told by its extension).
    pub fn format(&self) -> InputFormat {
        self.format
    }

    pub async fn next(&mut self) -> Option<Vec<RowResult>> {
        self.rx.recv().await
    }

    /// Wait for the reader: a file that broke off mid-way (a fatal read error) says so here.
    pub async fn finish(self) -> Result<(), InputError> {
        drop(self.rx);
        match self.reader.await {
            Ok(r) => r,
            Err(e) => Err(InputError::Path {
                path: Default::default(),
                reason: format!("the input reader failed: {e}"),
            }),
        }
    }
}
