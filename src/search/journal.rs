//! The run journal: one JSON line per evaluation, appended and flushed to disk before the
//! search moves on, so a killed search resumes with no evaluation lost or repeated.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::oracle::{EvalStatus, Evaluation};

/// One evaluated architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1-based position in the journal: the query count once this evaluation is in.
    pub query: usize,
    /// The search round that proposed it.
    pub round: usize,
    /// Canonical architecture string.
    pub arch: String,
    pub accuracy: Option<f64>,
    pub status: EvalStatus,
    pub attempts: u32,
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The predictor's score when a predictor proposed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted: Option<f64>,
}

impl Record {
    pub fn new(query: usize, round: usize, eval: Evaluation, predicted: Option<f64>) -> Self {
        Self {
            query,
            round,
            arch: eval.arch,
            accuracy: eval.accuracy,
            status: eval.status,
            attempts: eval.attempts,
            seconds: eval.seconds,
            message: eval.message,
            predicted,
        }
    }

    /// The accuracy of a successful evaluation.
    pub fn ok_accuracy(&self) -> Option<f64> {
        match self.status {
            EvalStatus::Ok => self.accuracy,
            EvalStatus::Failed => None,
        }
    }
}

/// An append-only JSON-lines file of [`Record`]s.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Start a new journal; refuses to overwrite an existing one.
    pub fn create(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create the journal {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Open an existing journal for appending and return the records it holds. A last line cut
    /// off by a crash mid-write is dropped (its evaluation is redone); any other bad line is an
    /// error.
    pub fn open(path: &Path) -> Result<(Self, Vec<Record>)> {
        let reader = BufReader::new(
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        );
        let lines: Vec<String> = reader
            .lines()
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut records = Vec::with_capacity(lines.len());
        let mut keep_bytes = 0u64;
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                keep_bytes += line.len() as u64 + 1;
                continue;
            }
            match serde_json::from_str::<Record>(line) {
                Ok(r) => {
                    if r.query != records.len() + 1 {
                        bail!(
                            "{}: line {} holds query {}, expected {}",
                            path.display(),
                            i + 1,
                            r.query,
                            records.len() + 1
                        );
                    }
                    records.push(r);
                    keep_bytes += line.len() as u64 + 1;
                }
                Err(_) if i + 1 == lines.len() => break,
                Err(e) => {
                    return Err(anyhow!("{}: line {}: {e}", path.display(), i + 1));
                }
            }
        }
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {} for appending", path.display()))?;
        // Cut a torn last line so the next record starts on a line of its own.
        file.set_len(keep_bytes.min(file.metadata()?.len()))?;
        let mut journal = Self {
            path: path.to_path_buf(),
            file,
        };
        journal.seek_end()?;
        Ok((journal, records))
    }

    fn seek_end(&mut self) -> Result<()> {
        use std::io::Seek;
        self.file.seek(std::io::SeekFrom::End(0))?;
        Ok(())
    }

    /// Append one record and push it to disk before returning.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot write to {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(query: usize, acc: f64) -> Record {
        Record {
            query,
            round: 0,
            arch: format!("a{query}"),
            accuracy: Some(acc),
            status: EvalStatus::Ok,
            attempts: 1,
            seconds: 0.0,
            message: None,
            predicted: None,
        }
    }

    #[test]
    fn records_survive_reopening_and_a_torn_last_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut j = Journal::create(&path).unwrap();
        j.append(&record(1, 90.0)).unwrap();
        j.append(&record(2, 91.0)).unwrap();
        drop(j);
        assert!(Journal::create(&path).is_err(), "must not overwrite");
        // a crash in the middle of writing the third line
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"query\": 3, \"rou").unwrap();
        drop(f);
        let (mut j, records) = Journal::open(&path).unwrap();
        assert_eq!(records, vec![record(1, 90.0), record(2, 91.0)]);
        j.append(&record(3, 92.0)).unwrap();
        drop(j);
        let (_, records) = Journal::open(&path).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2], record(3, 92.0));
    }

    #[test]
    fn a_gap_in_the_queries_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut j = Journal::create(&path).unwrap();
        j.append(&record(1, 90.0)).unwrap();
        j.append(&record(3, 91.0)).unwrap();
        j.append(&record(4, 91.0)).unwrap();
        drop(j);
        let e = Journal::open(&path).err().unwrap().to_string();
        assert!(e.contains("line 2 holds query 3, expected 2"), "{e}");
    }
}
