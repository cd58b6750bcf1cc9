//! Human- and machine-readable output: tables, CSV/JSON files written atomically, SVG plots.

pub mod plot;

use std::path::Path;

use anyhow::Result;

use crate::bench::CellSummary;
use crate::model::PredictorKind;
use crate::model::file::write_atomic;

/// Markdown table: one row per predictor, one column per training size, `mean ± std` of tau.
pub fn tau_table(summary: &[CellSummary]) -> String {
    let mut sizes: Vec<usize> = summary.iter().map(|c| c.train_size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut predictors: Vec<PredictorKind> = Vec::new();
    for c in summary {
        if !predictors.contains(&c.predictor) {
            predictors.push(c.predictor);
        }
    }
    let mut out = String::from("| predictor |");
    for s in &sizes {
        out.push_str(&format!(" N={s} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(sizes.len()));
    out.push('\n');
    for p in predictors {
        out.push_str(&format!("| {p} |"));
        for s in &sizes {
            match summary
                .iter()
                .find(|c| c.predictor == p && c.train_size == *s)
            {
                Some(c) => out.push_str(&format!(" {:.3} ± {:.3} |", c.tau_mean, c.tau_std)),
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out
}

/// Serialize `value` as pretty JSON to `path`, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Write rows of already-formatted fields as CSV, atomically.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.write_record(row)?;
    }
    let bytes = writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomic(path, &bytes)
}
