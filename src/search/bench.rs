//! The search bench: many seeded searches per strategy against a benchmark table, best-found
//! accuracy at several query budgets.
//!
//! Each (strategy, seed) runs once with the largest budget; the best found within the first
//! `b` queries is what a search with budget `b` finds, because a search's proposals never
//! depend on its budget (the budget only stops it).

use std::path::Path;

use anyhow::Result;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::journal::{Journal, Record};
use super::oracle::TableOracle;
use super::{Candidates, Progress, SearchSettings, Strategy, Surrogate, run};
use crate::model::PredictorKind;

/// One row of the search bench: a strategy, and for predictor-guided search the predictor
/// that guides it (e.g. `hypernas-p`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contender {
    pub label: String,
    pub strategy: Strategy,
    /// The guiding predictor, exactly for [`Strategy::Predictor`].
    pub predictor: Option<PredictorKind>,
}

/// The best-found curve of one search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRun {
    pub contender: String,
    pub seed: u64,
    /// Best accuracy within the first `budgets[i]` queries.
    pub best_at: Vec<f64>,
    /// The query at which the optimum was first evaluated, if it was.
    pub optimum_at: Option<usize>,
    pub seconds: f64,
}

/// Mean, std and optimum hits of one contender at one budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BudgetSummary {
    pub contender: String,
    pub budget: usize,
    pub runs: usize,
    pub best_mean: f64,
    pub best_std: f64,
    /// Runs that evaluated the table's optimum within the budget.
    pub optimum_found: usize,
}

struct Silent;
impl Progress for Silent {
    fn evaluated(&mut self, _: &Record, _: Option<&Record>) {}
}

/// Everything the bench needs per search.
pub struct SearchBench<'a> {
    pub candidates: &'a Candidates<'a>,
    pub oracle: &'a TableOracle,
    pub optimum: f64,
    pub budgets: Vec<usize>,
    pub contenders: Vec<Contender>,
    pub seeds: Vec<u64>,
    /// Settings of a search, with strategy and seed filled in per run.
    pub settings: SearchSettings,
    /// A fresh surrogate for a predictor-guided contender (by label).
    pub surrogate: &'a (dyn Fn(&Contender) -> Option<Box<dyn Surrogate + 'a>> + Sync),
    /// Journals go here, one per search.
    pub journal_dir: &'a Path,
}

impl SearchBench<'_> {
    /// Run every (contender, seed) search on `jobs` threads; results in (contender, seed) order.
    pub fn run(&self, jobs: usize, progress: Option<&ProgressBar>) -> Result<Vec<SearchRun>> {
        let tasks: Vec<(&Contender, u64)> = self
            .contenders
            .iter()
            .flat_map(|c| self.seeds.iter().map(move |&s| (c, s)))
            .collect();
        crate::bench::parallel_map(&tasks, jobs, progress, |&(contender, seed)| {
            self.one(contender, seed)
        })
        .into_iter()
        .map(|(_, r)| r)
        .collect()
    }

    fn one(&self, contender: &Contender, seed: u64) -> Result<SearchRun> {
        let start = std::time::Instant::now();
        let budget = self.budgets.iter().copied().max().unwrap_or(0);
        let settings = SearchSettings {
            strategy: contender.strategy,
            budget,
            seed,
            ..self.settings.clone()
        };
        let path = self
            .journal_dir
            .join(format!("{}-seed{seed}.jsonl", contender.label));
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
        let mut journal = Journal::create(&path)?;
        let mut surrogate = (self.surrogate)(contender);
        let records = run(
            &settings,
            self.candidates,
            self.oracle,
            surrogate.as_deref_mut(),
            &mut journal,
            Vec::new(),
            &mut Silent,
        )?;
        let best_at = self
            .budgets
            .iter()
            .map(|&b| {
                records[..b.min(records.len())]
                    .iter()
                    .filter_map(Record::ok_accuracy)
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        let optimum_at = records
            .iter()
            .find(|r| r.ok_accuracy().is_some_and(|a| a >= self.optimum - 1e-9))
            .map(|r| r.query);
        Ok(SearchRun {
            contender: contender.label.clone(),
            seed,
            best_at,
            optimum_at,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// Mean ± sample std of the best found and the optimum hits, per contender and budget.
pub fn summarize(
    runs: &[SearchRun],
    budgets: &[usize],
    contenders: &[Contender],
) -> Vec<BudgetSummary> {
    let mut out = Vec::new();
    for c in contenders {
        let mine: Vec<&SearchRun> = runs.iter().filter(|r| r.contender == c.label).collect();
        for (i, &budget) in budgets.iter().enumerate() {
            let values: Vec<f64> = mine.iter().map(|r| r.best_at[i]).collect();
            let n = values.len();
            let mean = values.iter().sum::<f64>() / n.max(1) as f64;
            let var = if n > 1 {
                values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
            } else {
                0.0
            };
            out.push(BudgetSummary {
                contender: c.label.clone(),
                budget,
                runs: n,
                best_mean: mean,
                best_std: var.sqrt(),
                optimum_found: mine
                    .iter()
                    .filter(|r| r.optimum_at.is_some_and(|q| q <= budget))
                    .count(),
            });
        }
    }
    out
}

/// Markdown table: one row per contender, `mean ± std (hits/runs)` per budget.
pub fn table(summary: &[BudgetSummary], budgets: &[usize], contenders: &[Contender]) -> String {
    let mut s = String::from("| strategy |");
    for b in budgets {
        s.push_str(&format!(" {b} queries |"));
    }
    s.push_str("\n|---|");
    s.push_str(&"---|".repeat(budgets.len()));
    s.push('\n');
    for c in contenders {
        s.push_str(&format!("| {} |", c.label));
        for &b in budgets {
            if let Some(x) = summary
                .iter()
                .find(|x| x.contender == c.label && x.budget == b)
            {
                s.push_str(&format!(
                    " {:.2} ± {:.2} ({}/{}) |",
                    x.best_mean, x.best_std, x.optimum_found, x.runs
                ));
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_optimum_hits_within_each_budget() {
        let runs = vec![
            SearchRun {
                contender: "random".into(),
                seed: 0,
                best_at: vec![90.0, 94.0],
                optimum_at: Some(40),
                seconds: 0.0,
            },
            SearchRun {
                contender: "random".into(),
                seed: 1,
                best_at: vec![92.0, 93.0],
                optimum_at: None,
                seconds: 0.0,
            },
        ];
        let contenders = vec![Contender {
            label: "random".into(),
            strategy: Strategy::Random,
            predictor: None,
        }];
        let s = summarize(&runs, &[25, 50], &contenders);
        assert_eq!(s[0].optimum_found, 0);
        assert_eq!(s[1].optimum_found, 1);
        assert!((s[0].best_mean - 91.0).abs() < 1e-12);
        assert!((s[1].best_std - 0.5f64.sqrt()).abs() < 1e-12);
        let t = table(&s, &[25, 50], &contenders);
        assert!(
            t.contains("| random | 91.00 ± 1.41 (0/2) | 93.50 ± 0.71 (1/2) |"),
            "{t}"
        );
    }
}
