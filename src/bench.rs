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

use crate::data::cifar::CifarData;
use crate::metrics::Metrics;
use crate::model::{ModelConfig, PredictorKind};
use crate::space::{DynSpace, EncodedArch};
use crate::target::ProxyProgram;
use crate::train::aux::PreparedAux;
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

/// One row of a bench table: a predictor kind under a label, so that one kind can appear with
/// different settings (e.g. `hypernas q=2`).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub label: String,
    pub kind: PredictorKind,
    /// Preference exponent `p` of the multi-task loss, if this row overrides it.
    pub preference_p: Option<f64>,
}

impl Variant {
    pub fn plain(kind: PredictorKind) -> Self {
        Self {
            label: kind.to_string(),
            kind,
            preference_p: None,
        }
    }
}

/// What the hypernetwork's aux task needs in a bench: the space's candidate networks and images.
pub struct AuxSource<'a> {
    pub space: &'a dyn DynSpace,
    pub images: &'a CifarData,
    /// Held-out architectures (from the test rows) whose generated networks are evaluated on
    /// the held-out images after training.
    pub val_archs: usize,
}

/// One training run of the protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// Row label (the predictor name, or the name with its setting).
    pub variant: String,
    pub predictor: PredictorKind,
    pub train_size: usize,
    pub seed: u64,
    pub metrics: Metrics,
    pub train_seconds: f64,
    pub epochs: usize,
    pub predict_seconds: f64,
    /// Mean top-1 accuracy (%) of generated proxy networks of held-out architectures on
    /// held-out images (hypernetwork predictors only).
    pub hyper_val_acc: Option<f64>,
}

/// What to run: every (size, seed, predictor) combination.
pub struct Protocol<'a> {
    pub archs: &'a [EncodedArch],
    pub targets: &'a [f64],
    pub sizes: Vec<usize>,
    pub seeds: Vec<u64>,
    pub variants: Vec<Variant>,
    /// Builds the configuration of one run from its variant and seed.
    pub configure: &'a (dyn Fn(&Variant, u64) -> (ModelConfig, TrainConfig) + Sync),
    /// Needed when a variant trains the hypernetwork.
    pub aux: Option<&'a AuxSource<'a>>,
}

/// Run the protocol on `jobs` threads; results come back in (size, seed, predictor) order.
pub fn run(protocol: &Protocol, jobs: usize, progress: Option<&ProgressBar>) -> Vec<RunResult> {
    let mut tasks = Vec::new();
    for &size in &protocol.sizes {
        for &seed in &protocol.seeds {
            for variant in &protocol.variants {
                tasks.push((size, seed, variant));
            }
        }
    }
    // Biggest runs first, so no thread is left alone with a long one at the end.
    let mut schedule: Vec<usize> = (0..tasks.len()).collect();
    schedule.sort_by_key(|&i| {
        let (size, _, variant) = tasks[i];
        let cost = match variant.kind {
            PredictorKind::Hypernas | PredictorKind::HypernasH => 100,
            PredictorKind::HypernasP => 20,
            _ => 1,
        };
        std::cmp::Reverse(size * cost)
    });
    let mut results: Vec<Option<RunResult>> = vec![None; tasks.len()];
    for (i, result) in parallel_map(&schedule, jobs, progress, |&i| {
        let (size, seed, variant) = tasks[i];
        run_one(protocol, size, seed, variant)
    }) {
        results[schedule[i]] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.expect("every task ran"))
        .collect()
}

/// Apply `f` to every task on `jobs` threads, taking tasks in order as threads free up;
/// returns `(task index, result)` for every task, in index order. `progress` ticks per task.
pub fn parallel_map<T: Sync, R: Send>(
    tasks: &[T],
    jobs: usize,
    progress: Option<&ProgressBar>,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<(usize, R)> {
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(tasks.len()));
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(task) = tasks.get(k) else { break };
                    let result = f(task);
                    results
                        .lock()
                        .expect("no worker panicked")
                        .push((k, result));
                    if let Some(pb) = progress {
                        pb.inc(1);
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().expect("no worker panicked");
    results.sort_by_key(|&(k, _)| k);
    results
}

fn run_one(protocol: &Protocol, size: usize, seed: u64, variant: &Variant) -> RunResult {
    let kind = variant.kind;
    let (train_idx, test_idx) = split(protocol.archs.len(), size, seed);
    let pick_archs = |idx: &[usize]| {
        idx.iter()
            .map(|&i| protocol.archs[i].clone())
            .collect::<Vec<_>>()
    };
    let pick_targets = |idx: &[usize]| idx.iter().map(|&i| protocol.targets[i]).collect::<Vec<_>>();
    let (model_config, train_config) = (protocol.configure)(variant, seed);
    let train_archs = pick_archs(&train_idx);
    let test_archs = pick_archs(&test_idx);
    let start = Instant::now();
    let prepared = kind.uses_hypernetwork().then(|| {
        let source = protocol
            .aux
            .expect("aux source for a hypernetwork predictor");
        let proxy = model_config.hyper.as_ref().expect("hyper config").proxy;
        let unlabelled = train_config.aux.as_ref().map_or(0, |a| a.unlabelled);
        let prepared = PreparedAux::new(source.space, &train_archs, &proxy, unlabelled, seed)
            .expect("space checked for a candidate network before the bench");
        (source, proxy, prepared)
    });
    let aux_data = prepared.as_ref().map(|(s, _, p)| p.data(&s.images.train));
    let fitted = train::fit(
        &model_config,
        &train_config,
        &train_archs,
        &pick_targets(&train_idx),
        aux_data.as_ref(),
        None,
    );
    let train_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    // One thread: the other cores are busy with other runs.
    let pred = fitted.predict_with_threads(&test_archs, 1);
    let predict_seconds = start.elapsed().as_secs_f64();
    let hyper_val_acc = prepared.as_ref().map(|(source, proxy, _)| {
        let val: Vec<(EncodedArch, ProxyProgram)> = test_archs
            .iter()
            .take(source.val_archs.max(1))
            .map(|a| {
                let p = source
                    .space
                    .proxy_program(&a.canonical, proxy)
                    .ok()
                    .flatten()
                    .expect("program for a test architecture");
                (a.clone(), p)
            })
            .collect();
        let pairs: Vec<(&EncodedArch, &ProxyProgram)> = val.iter().map(|(a, p)| (a, p)).collect();
        let accs = fitted.generated_accuracy(&pairs, &source.images.test);
        accs.iter().sum::<f64>() / accs.len().max(1) as f64
    });
    RunResult {
        variant: variant.label.clone(),
        predictor: kind,
        train_size: size,
        seed,
        metrics: Metrics::compute(&pred, &pick_targets(&test_idx)),
        train_seconds,
        epochs: train_config.effective_epochs(size),
        predict_seconds,
        hyper_val_acc,
    }
}

/// Mean and sample standard deviation of Kendall's tau for one (predictor, size) cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellSummary {
    /// The variant label.
    pub predictor: String,
    pub train_size: usize,
    pub runs: usize,
    pub tau_mean: f64,
    pub tau_std: f64,
    pub spearman_mean: f64,
    pub precision_at_10_mean: f64,
    pub train_seconds_mean: f64,
    /// Mean over runs of [`RunResult::hyper_val_acc`].
    pub hyper_val_acc_mean: Option<f64>,
}

pub fn summarize(results: &[RunResult]) -> Vec<CellSummary> {
    let mut cells: Vec<(&str, usize)> = Vec::new();
    for r in results {
        if !cells.contains(&(r.variant.as_str(), r.train_size)) {
            cells.push((r.variant.as_str(), r.train_size));
        }
    }
    cells
        .into_iter()
        .map(|(predictor, train_size)| {
            let runs: Vec<&RunResult> = results
                .iter()
                .filter(|r| r.variant == predictor && r.train_size == train_size)
                .collect();
            let taus: Vec<f64> = runs.iter().map(|r| r.metrics.kendall_tau).collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let (tau_mean, tau_std) = mean_std(&taus);
            let accs: Vec<f64> = runs.iter().filter_map(|r| r.hyper_val_acc).collect();
            CellSummary {
                predictor: predictor.to_string(),
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
                hyper_val_acc_mean: (!accs.is_empty()).then(|| mean(&accs)),
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
