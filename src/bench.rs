//! The few-shot protocol: for each training size and seed, train on a seeded random sample of
//! the table and score every remaining architecture. Runs are independent and deterministic,
//! so they are spread over worker threads and still give the same numbers in any order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::model::{ModelConfig, PredictorKind};
use crate::space::EncodedArch;
use crate::train::{self, TrainConfig};

/// Mixed into the seed so the data split and the model's own draws are independent streams.
const SPLIT_SALT: u64 = 0x9E37_79B9_7F4A_7C15;

/// Row indices of the training sample and of the rest, for `seed`.
pub fn split(rows: usize, train_size: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ SPLIT_SALT));
    let test = order.split_off(train_size.min(rows));
    (order, test)
}

/// One training run of the protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub predictor: PredictorKind,
    pub train_size: usize,
    pub seed: u64,
    pub metrics: Metrics,
    pub train_seconds: f64,
    pub epochs: usize,
    pub predict_seconds: f64,
}

/// What to run: every (size, seed, predictor) combination.
pub struct Protocol<'a> {
    pub archs: &'a [EncodedArch],
    pub targets: &'a [f64],
    pub sizes: Vec<usize>,
    pub seeds: Vec<u64>,
    pub predictors: Vec<PredictorKind>,
    /// Builds the configuration of one run from its predictor and seed.
    pub configure: &'a (dyn Fn(PredictorKind, u64) -> (ModelConfig, TrainConfig) + Sync),
}

/// Run the protocol on `jobs` threads; results come back in (size, seed, predictor) order.
pub fn run(protocol: &Protocol, jobs: usize, progress: Option<&ProgressBar>) -> Vec<RunResult> {
    let mut tasks = Vec::new();
    for &size in &protocol.sizes {
        for &seed in &protocol.seeds {
            for &kind in &protocol.predictors {
                tasks.push((size, seed, kind));
            }
        }
    }
    // Biggest runs first, so no thread is left alone with a long one at the end.
    let mut schedule: Vec<usize> = (0..tasks.len()).collect();
    schedule.sort_by_key(|&i| {
        let (size, _, kind) = tasks[i];
        std::cmp::Reverse(
            size * if kind == PredictorKind::HypernasP {
                20
            } else {
                1
            },
        )
    });
    let results: Mutex<Vec<Option<RunResult>>> = Mutex::new(vec![None; tasks.len()]);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&i) = schedule.get(k) else { break };
                    let (size, seed, kind) = tasks[i];
                    let result = run_one(protocol, size, seed, kind);
                    results.lock().expect("no worker panicked")[i] = Some(result);
                    if let Some(pb) = progress {
                        pb.inc(1);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|r| r.expect("every task ran"))
        .collect()
}

fn run_one(protocol: &Protocol, size: usize, seed: u64, kind: PredictorKind) -> RunResult {
    let (train_idx, test_idx) = split(protocol.archs.len(), size, seed);
    let pick_archs = |idx: &[usize]| {
        idx.iter()
            .map(|&i| protocol.archs[i].clone())
            .collect::<Vec<_>>()
    };
    let pick_targets = |idx: &[usize]| idx.iter().map(|&i| protocol.targets[i]).collect::<Vec<_>>();
    let (model_config, train_config) = (protocol.configure)(kind, seed);
    let start = Instant::now();
    let fitted = train::fit(
        &model_config,
        &train_config,
        &pick_archs(&train_idx),
        &pick_targets(&train_idx),
        None,
    );
    let train_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    // One thread: the other cores are busy with other runs.
    let pred = fitted.predict_with_threads(&pick_archs(&test_idx), 1);
    let predict_seconds = start.elapsed().as_secs_f64();
    RunResult {
        predictor: kind,
        train_size: size,
        seed,
        metrics: Metrics::compute(&pred, &pick_targets(&test_idx)),
        train_seconds,
        epochs: train_config.effective_epochs(size),
        predict_seconds,
    }
}

/// Mean and sample standard deviation of Kendall's tau for one (predictor, size) cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellSummary {
    pub predictor: PredictorKind,
    pub train_size: usize,
    pub runs: usize,
    pub tau_mean: f64,
    pub tau_std: f64,
    pub spearman_mean: f64,
    pub precision_at_10_mean: f64,
    pub train_seconds_mean: f64,
}

pub fn summarize(results: &[RunResult]) -> Vec<CellSummary> {
    let mut cells: Vec<(PredictorKind, usize)> = Vec::new();
    for r in results {
        if !cells.contains(&(r.predictor, r.train_size)) {
            cells.push((r.predictor, r.train_size));
        }
    }
    cells
        .into_iter()
        .map(|(predictor, train_size)| {
            let runs: Vec<&RunResult> = results
                .iter()
                .filter(|r| r.predictor == predictor && r.train_size == train_size)
                .collect();
            let taus: Vec<f64> = runs.iter().map(|r| r.metrics.kendall_tau).collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let (tau_mean, tau_std) = mean_std(&taus);
            CellSummary {
                predictor,
                train_size,
                runs: runs.len(),
                tau_mean,
                tau_std,
                spearman_mean: mean(&runs.iter().map(|r| r.metrics.spearman).collect::<Vec<_>>()),
                precision_at_10_mean: mean(
                    &runs
                        .iter()
                        .map(|r| r.metrics.precision_at_10)
                        .collect::<Vec<_>>(),
                ),
                train_seconds_mean: mean(&runs.iter().map(|r| r.train_seconds).collect::<Vec<_>>()),
            }
        })
        .collect()
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_and_disjoint() {
        let (a, b) = split(100, 10, 3);
        assert_eq!(a.len(), 10);
        assert_eq!(b.len(), 90);
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(split(100, 10, 3), (a.clone(), b));
        assert_ne!(split(100, 10, 4).0, a);
    }

    #[test]
    fn mean_std_matches_hand_values() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[7.0]), (7.0, 0.0));
    }
}
