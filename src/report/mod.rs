//! Human- and machine-readable output: tables, CSV/JSON files written atomically, SVG plots.

pub mod plot;

use std::path::Path;

use anyhow::Result;

use crate::bench::CellSummary;
use crate::model::file::write_atomic;

/// Markdown table: one row per predictor, one column per training size, `mean ± std` of tau.
pub fn tau_table(summary: &[CellSummary]) -> String {
    cell_table(summary, |c| {
        Some(format!("{:.3} ± {:.3}", c.tau_mean, c.tau_std))
    })
}

/// Markdown table of the mean accuracy (%) of generated proxy networks on held-out images, for
/// the rows that have one; `None` when no row has.
pub fn hyper_acc_table(summary: &[CellSummary]) -> Option<String> {
    let rows: Vec<CellSummary> = summary
        .iter()
        .filter(|c| c.hyper_val_acc_mean.is_some())
        .cloned()
        .collect();
    (!rows.is_empty())
        .then(|| cell_table(&rows, |c| c.hyper_val_acc_mean.map(|a| format!("{a:.1}%"))))
}

/// One row per predictor label, one column per training size, cells from `cell`.
fn cell_table(summary: &[CellSummary], cell: impl Fn(&CellSummary) -> Option<String>) -> String {
    let mut sizes: Vec<usize> = summary.iter().map(|c| c.train_size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut predictors: Vec<&str> = Vec::new();
    for c in summary {
        if !predictors.contains(&c.predictor.as_str()) {
            predictors.push(&c.predictor);
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
            let text = summary
                .iter()
                .find(|c| c.predictor == p && c.train_size == *s)
                .and_then(&cell);
            out.push_str(&format!(" {} |", text.as_deref().unwrap_or("–")));
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
