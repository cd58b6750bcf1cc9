//! Fitting a predictor: seeded, deterministic mini-batch training with Adam/AdamW, a cosine
//! learning-rate schedule and MSE (+ optional pairwise ranking) on standardised targets.

use burn::module::Module;
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, decay::WeightDecayConfig,
};
use burn::prelude::*;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::model::hyper::HyperConfig;
use crate::model::loss::{RankLoss, mse, pairwise_rank};
use crate::model::{BatchInput, ModelConfig, PredictorKind, Regressor};
use crate::target::ProxyConfig;
use std::collections::HashMap;

use crate::encoding::{CellGraph, GlobalEncoding};
use crate::model::loss::{TASK_HYPER, TASK_PREDICT};
use crate::model::predictor::GraphRegressor;
use crate::space::EncodedArch;
use crate::target::ProxyProgram;

pub mod aux;
pub use aux::{AuxConfig, AuxData};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Adam with L2 weight decay added to the gradient (PyTorch `Adam(weight_decay=..)`).
    Adam,
    /// AdamW, decoupled weight decay.
    Adamw,
}

/// Everything that shapes one training run besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Final learning rate of the cosine schedule, as a fraction of `lr`.
    pub lr_min_ratio: f64,
    pub weight_decay: f64,
    pub optimizer: OptimizerKind,
    pub rank_loss: Option<RankLoss>,
    pub rank_weight: f64,
    /// Cap on optimiser steps: large training sets get fewer epochs, so the cost of a run stops
    /// growing with N once the data set is large (epochs actually run = min(epochs, cap)).
    pub max_steps: usize,
    pub seed: u64,
    /// The hypernetwork's aux task (`hypernas`, `hypernas-h`).
    #[serde(default)]
    pub aux: Option<AuxConfig>,
}

impl TrainConfig {
    /// Epochs actually run on `n` training architectures.
    pub fn effective_epochs(&self, n: usize) -> usize {
        let steps_per_epoch = n.div_ceil(self.batch_size.max(1)).max(1);
        self.epochs
            .min(self.max_steps.div_ceil(steps_per_epoch))
            .max(1)
    }
}

/// Per-predictor defaults, chosen on a validation split carved from training architectures
/// (see README, "How the defaults were chosen").
pub fn default_configs(
    kind: PredictorKind,
    vocab: usize,
    flat_dim: usize,
    seed: u64,
) -> (ModelConfig, TrainConfig) {
    let model = ModelConfig {
        kind,
        vocab,
        flat_dim,
        hidden: 64,
        gcn_layers: 3,
        head_hidden: 128,
        dropout: 0.1,
        hyper: kind
            .uses_hypernetwork()
            .then(|| HyperConfig::for_proxy(ProxyConfig::default())),
        z_span: 1,
    };
    let train = TrainConfig {
        epochs: 300,
        batch_size: 16,
        lr: 3e-3,
        lr_min_ratio: 0.01,
        weight_decay: 1e-3,
        optimizer: OptimizerKind::Adamw,
        rank_loss: Some(RankLoss::Logistic),
        rank_weight: 1.0,
        max_steps: 6000,
        seed,
        aux: kind.uses_hypernetwork().then(AuxConfig::default),
    };
    (model, train)
}

/// Mean and standard deviation used to standardise the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: f64,
    pub std: f64,
}

impl Standardizer {
    pub fn fit(values: &[f64]) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
        Self { mean, std }
    }

    pub fn forward(&self, v: f64) -> f64 {
        (v - self.mean) / self.std
    }

    pub fn inverse(&self, z: f64) -> f64 {
        z * self.std + self.mean
    }
}

/// A fitted predictor, ready for inference (no autodiff).
#[derive(Debug, Clone)]
pub struct Fitted {
    pub model_config: ModelConfig,
    pub train_config: TrainConfig,
    pub standardizer: Standardizer,
    pub regressor: Regressor,
    /// Mean training loss of each epoch (the predictor's task).
    pub epoch_losses: Vec<f64>,
    /// Per-epoch task losses and `u_t` of the multi-task training (empty without aux task).
    pub aux_log: Vec<AuxEpoch>,
}

/// One epoch of multi-task training, for the training log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuxEpoch {
    pub epoch: usize,
    /// `hyper` (hypernas-h's first phase), `joint` or `predict`.
    pub phase: String,
    pub predict_loss: Option<f64>,
    pub hyper_loss: Option<f64>,
    /// Training accuracy (%) of the generated networks on their aux batches.
    pub hyper_train_acc: Option<f64>,
    /// `u_t` (predict, hyper) at the end of the epoch.
    pub u: Vec<f64>,
}

/// Epochs of progress a training run reports (hypernas-h trains twice: hyper task, then head).
pub fn progress_epochs(kind: PredictorKind, config: &TrainConfig, n: usize) -> usize {
    let epochs = config.effective_epochs(n);
    if kind == PredictorKind::HypernasH {
        2 * epochs
    } else {
        epochs
    }
}

/// The node count a graph predictor pads this architecture's cells to.
fn padded_size(arch: &EncodedArch, kind: PredictorKind) -> usize {
    match kind {
        _ if kind.uses_global_encoding() => arch
            .global
            .cells
            .iter()
            .map(CellGraph::num_nodes)
            .max()
            .unwrap_or(0),
        PredictorKind::Np => arch.cell.num_nodes(),
        _ => 0,
    }
}

/// Number of architectures scored per forward pass at inference.
pub const INFERENCE_BATCH: usize = 64;

/// Train a regressor on `archs` with `targets` (raw units). `progress` ticks once per epoch
/// ([`progress_epochs`] in all). Kinds with a hypernetwork need `aux`.
///
/// # Panics
/// If a hypernetwork kind gets no `aux` data: callers check that the space has a proxy network.
pub fn fit(
    model_config: &ModelConfig,
    config: &TrainConfig,
    archs: &[EncodedArch],
    targets: &[f64],
    aux: Option<&AuxData>,
    progress: Option<&ProgressBar>,
) -> Fitted {
    assert_eq!(archs.len(), targets.len());
    let kind = model_config.kind;
    let device = Device::flex().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut model = Regressor::new(model_config, &mut rng, &device);
    let standardizer = Standardizer::fit(targets);
    let z: Vec<f32> = targets
        .iter()
        .map(|&t| standardizer.forward(t) as f32)
        .collect();

    let batch_size = config.batch_size.clamp(1, archs.len().max(1));
    let steps_per_epoch = archs.len().div_ceil(batch_size);
    let epochs = config.effective_epochs(archs.len());
    let total_steps = (epochs * steps_per_epoch).max(1);

    let aux_task = kind.uses_hypernetwork().then(|| {
        let data = aux.expect("a hypernetwork predictor needs aux data");
        let aux_config = config.aux.clone().unwrap_or_default();
        aux::AuxTask::new(model_config, aux_config, archs, data)
    });
    let mut aux_log = Vec::new();

    if kind == PredictorKind::HypernasH {
        let task = aux_task.as_ref().expect("aux task");
        model = train_hyper_only(
            model,
            config,
            task,
            epochs,
            steps_per_epoch,
            &mut rng,
            &mut aux_log,
            progress,
        );
    }

    let mut optimizer = new_optimizer(config);
    let mut order: Vec<usize> = (0..archs.len()).collect();
    let mut epoch_losses = Vec::with_capacity(epochs);
    let mut step = 0usize;
    let joint = kind == PredictorKind::Hypernas;
    for epoch in 0..epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        let mut hyper = HyperTally::default();
        for chunk in order.chunks(batch_size) {
            let batch_archs: Vec<&EncodedArch> = chunk.iter().map(|&i| &archs[i]).collect();
            let batch_z: Vec<f32> = chunk.iter().map(|&i| z[i]).collect();
            let input =
                BatchInput::new(model_config.kind, &batch_archs, model_config.vocab, &device);
            let target =
                Tensor::<1>::from_data(TensorData::new(batch_z.clone(), [chunk.len()]), &device);
            let pred = model.forward(&input, Some(&mut rng));
            let mut loss = mse(pred.clone(), target);
            if let Some(kind) = config.rank_loss
                && let Some(rank) = pairwise_rank(pred, &batch_z, kind)
            {
                loss = loss + rank.mul_scalar(config.rank_weight);
            }
            loss_sum += loss.clone().into_scalar::<f32>() as f64 * chunk.len() as f64;
            if joint {
                let task = aux_task.as_ref().expect("aux task");
                let graph = graph_part(&model);
                let mut terms = vec![(TASK_PREDICT, loss)];
                if step.is_multiple_of(task.config.every.max(1)) {
                    let out = task.step(graph, &mut rng, &device);
                    hyper.add(&out);
                    terms.push((TASK_HYPER, out.loss));
                }
                let weights = graph.tasks.as_ref().expect("task weights");
                loss = weights.combine(&terms, task.config.preference_p);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let lr = cosine_lr(config, step, total_steps);
            model = optimizer.step(lr, model, grads);
            step += 1;
        }
        let predict_loss = loss_sum / archs.len().max(1) as f64;
        epoch_losses.push(predict_loss);
        if aux_task.is_some() {
            let u = graph_part(&model)
                .tasks
                .as_ref()
                .map_or(Vec::new(), |t| t.values());
            aux_log.push(hyper.epoch(
                epoch,
                if joint { "joint" } else { "predict" },
                Some(predict_loss),
                u,
            ));
        }
        if let Some(pb) = progress {
            pb.inc(1);
        }
    }
    Fitted {
        model_config: model_config.clone(),
        train_config: config.clone(),
        standardizer,
        regressor: model.valid(),
        epoch_losses,
        aux_log,
    }
}

fn new_optimizer(config: &TrainConfig) -> ModuleOptimizer {
    match config.optimizer {
        OptimizerKind::Adam => AdamConfig::new()
            .with_weight_decay(Some(WeightDecayConfig::new(config.weight_decay as f32)))
            .init(),
        OptimizerKind::Adamw => AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .init(),
    }
}

fn graph_part(model: &Regressor) -> &GraphRegressor {
    match model {
        Regressor::Graph(g) => g,
        Regressor::Mlp(_) => panic!("the aux task needs a graph predictor"),
    }
}

/// Running sums of the aux task over an epoch.
#[derive(Default)]
struct HyperTally {
    loss: f64,
    steps: usize,
    correct: usize,
    seen: usize,
}

impl HyperTally {
    fn add(&mut self, out: &aux::AuxOutcome) {
        self.loss += out.loss.clone().into_scalar::<f32>() as f64;
        self.steps += 1;
        self.correct += out.correct;
        self.seen += out.seen;
    }

    fn epoch(&self, epoch: usize, phase: &str, predict_loss: Option<f64>, u: Vec<f64>) -> AuxEpoch {
        AuxEpoch {
            epoch,
            phase: phase.into(),
            predict_loss,
            hyper_loss: (self.steps > 0).then(|| self.loss / self.steps as f64),
            hyper_train_acc: (self.seen > 0)
                .then(|| 100.0 * self.correct as f64 / self.seen as f64),
            u,
        }
    }
}

/// hypernas-h's first phase: the encoder and hypernetwork learn from the aux task alone, for as
/// many steps as the predictor will take; then both are frozen for the regressor's phase.
#[allow(clippy::too_many_arguments)]
fn train_hyper_only(
    mut model: Regressor,
    config: &TrainConfig,
    task: &aux::AuxTask,
    epochs: usize,
    steps_per_epoch: usize,
    rng: &mut ChaCha8Rng,
    log: &mut Vec<AuxEpoch>,
    progress: Option<&ProgressBar>,
) -> Regressor {
    let device = Device::flex().autodiff();
    let mut optimizer = new_optimizer(config);
    let total_steps = (epochs * steps_per_epoch).max(1);
    let mut step = 0;
    for epoch in 0..epochs {
        let mut tally = HyperTally::default();
        for _ in 0..steps_per_epoch {
            let out = task.step(graph_part(&model), rng, &device);
            tally.add(&out);
            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
            model = optimizer.step(cosine_lr(config, step, total_steps), model, grads);
            step += 1;
        }
        log.push(tally.epoch(epoch, "hyper", None, Vec::new()));
        if let Some(pb) = progress {
            pb.inc(1);
        }
    }
    freeze_encoder(model)
}

/// Stop gradients into the encoder and hypernetwork; only the regression head trains on.
fn freeze_encoder(model: Regressor) -> Regressor {
    match model {
        Regressor::Graph(mut g) => {
            g.encoder = g.encoder.no_grad();
            g.hyper = g.hyper.map(|h| h.no_grad());
            Regressor::Graph(g)
        }
        mlp => mlp,
    }
}

fn cosine_lr(config: &TrainConfig, step: usize, total: usize) -> f64 {
    let min = config.lr * config.lr_min_ratio;
    let t = step as f64 / total as f64;
    min + 0.5 * (config.lr - min) * (1.0 + (std::f64::consts::PI * t).cos())
}

impl Fitted {
    /// Top-1 accuracy (%) on `images` of each architecture's proxy network run with generated
    /// weights. Empty for models without a hypernetwork.
    pub fn generated_accuracy(
        &self,
        archs: &[(&EncodedArch, &ProxyProgram)],
        images: &crate::data::cifar::CifarSet,
    ) -> Vec<f64> {
        match (&self.regressor, &self.model_config.hyper) {
            (Regressor::Graph(g), Some(h)) if g.hyper.is_some() => {
                aux::generated_accuracy(g, archs, &h.proxy, images, self.model_config.vocab)
            }
            _ => Vec::new(),
        }
    }

    /// The generated weight of every weighted layer of `program` (the proxy network of `arch`),
    /// in program order: `(node index, tensor)`. `None` without a hypernetwork.
    pub fn generated_weights(
        &self,
        arch: &EncodedArch,
        program: &ProxyProgram,
    ) -> Option<Vec<(usize, Tensor<4>)>> {
        let Regressor::Graph(g @ GraphRegressor { hyper: Some(_), .. }) = &self.regressor else {
            return None;
        };
        let weights = aux::generate_for(g, arch, program, self.model_config.vocab);
        Some(
            weights
                .into_iter()
                .enumerate()
                .filter_map(|(i, w)| w.map(|w| (i, w)))
                .collect(),
        )
    }

    /// Predictions in the target's own units, one per architecture, in order, using every core.
    pub fn predict(&self, archs: &[EncodedArch]) -> Vec<f64> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.predict_with_threads(archs, threads)
    }

    /// Like [`Fitted::predict`] on at most `threads` threads (whole batches per thread).
    /// Architectures with the same encoding (e.g. NB201 cells equal after pruning) are scored
    /// once.
    pub fn predict_with_threads(&self, archs: &[EncodedArch], threads: usize) -> Vec<f64> {
        let (unique, slot_of) = self.distinct_inputs(archs);
        let batches = unique.len().div_ceil(INFERENCE_BATCH).max(1);
        let threads = threads.clamp(1, batches);
        let scores: Vec<f64> = if threads == 1 {
            self.predict_serial(&unique)
        } else {
            let per_thread = batches.div_ceil(threads) * INFERENCE_BATCH;
            std::thread::scope(|scope| {
                let handles: Vec<_> = unique
                    .chunks(per_thread)
                    .map(|part| scope.spawn(move || self.predict_serial(part)))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("inference thread panicked"))
                    .collect()
            })
        };
        slot_of.iter().map(|&s| scores[s]).collect()
    }

    /// The architectures whose model input differs, smallest graphs first, and for each input
    /// architecture the index of its representative. Batches pad every graph to the largest in
    /// the batch, so sorting by size keeps small (pruned) cells in small batches; rows are
    /// independent, so the order changes no score.
    fn distinct_inputs<'a>(&self, archs: &'a [EncodedArch]) -> (Vec<&'a EncodedArch>, Vec<usize>) {
        let mut unique: Vec<&EncodedArch> = Vec::new();
        let mut slot_of = Vec::with_capacity(archs.len());
        let mut seen_global: HashMap<&GlobalEncoding, usize> = HashMap::new();
        let mut seen_cell: HashMap<&CellGraph, usize> = HashMap::new();
        for arch in archs {
            let kind = self.model_config.kind;
            let slot = match kind {
                _ if kind.uses_global_encoding() => {
                    *seen_global.entry(&arch.global).or_insert(unique.len())
                }
                PredictorKind::Np => *seen_cell.entry(&arch.cell).or_insert(unique.len()),
                _ => unique.len(),
            };
            if slot == unique.len() {
                unique.push(arch);
            }
            slot_of.push(slot);
        }
        let mut order: Vec<usize> = (0..unique.len()).collect();
        order.sort_by_key(|&i| padded_size(unique[i], self.model_config.kind));
        let mut position = vec![0; order.len()];
        for (pos, &old) in order.iter().enumerate() {
            position[old] = pos;
        }
        let unique = order.iter().map(|&i| unique[i]).collect();
        let slot_of = slot_of.iter().map(|&s| position[s]).collect();
        (unique, slot_of)
    }

    fn predict_serial(&self, archs: &[&EncodedArch]) -> Vec<f64> {
        let device = Device::flex();
        let mut out = Vec::with_capacity(archs.len());
        for chunk in archs.chunks(INFERENCE_BATCH) {
            let input = BatchInput::new(
                self.model_config.kind,
                chunk,
                self.model_config.vocab,
                &device,
            );
            let pred = self.regressor.forward(&input, None);
            let values: Vec<f32> = pred.into_data().try_into_vec().expect("f32 predictions");
            out.extend(
                values
                    .into_iter()
                    .map(|v| self.standardizer.inverse(v as f64)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::kendall_tau_b;
    use crate::space;

    /// A target the graph predictors can learn from few samples: conv3x3 count minus nones.
    fn toy_problem(n: usize) -> (Vec<EncodedArch>, Vec<f64>) {
        let nb201 = space::by_name("nb201").unwrap();
        let all = nb201.enumerate_strings().unwrap();
        let archs: Vec<EncodedArch> = all
            .iter()
            .step_by(37)
            .take(n)
            .map(|s| nb201.encode(s).unwrap())
            .collect();
        let targets = archs
            .iter()
            .map(|a| {
                let digits: Vec<char> = crate::space::nb201::digits_of(&a.canonical);
                digits.iter().filter(|&&d| d == '3').count() as f64
                    - digits.iter().filter(|&&d| d == '0').count() as f64
            })
            .collect();
        (archs, targets)
    }

    fn configs(kind: PredictorKind) -> (ModelConfig, TrainConfig) {
        let nb201 = space::by_name("nb201").unwrap();
        let (m, mut t) = default_configs(kind, nb201.node_vocabulary().len(), nb201.flat_dim(), 5);
        t.epochs = 40;
        (m, t)
    }

    #[test]
    fn graph_predictor_learns_a_simple_target() {
        let (archs, targets) = toy_problem(300);
        let (m, t) = configs(PredictorKind::Np);
        let fitted = fit(&m, &t, &archs[..150], &targets[..150], None, None);
        let pred = fitted.predict(&archs[150..]);
        let tau = kendall_tau_b(&pred, &targets[150..]);
        assert!(tau > 0.6, "tau {tau}");
        assert!(fitted.epoch_losses.last().unwrap() < fitted.epoch_losses.first().unwrap());
    }

    #[test]
    fn same_seed_same_predictions_across_threads() {
        let (archs, targets) = toy_problem(60);
        let (m, mut t) = configs(PredictorKind::HypernasP);
        t.epochs = 3;
        let run = || {
            fit(&m, &t, &archs[..40], &targets[..40], None, None)
                .predict_with_threads(&archs[40..], 1)
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(run);
            let b = s.spawn(run);
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(a, b);
        let fitted = fit(&m, &t, &archs[..40], &targets[..40], None, None);
        assert_eq!(
            fitted.predict_with_threads(&archs, 1),
            fitted.predict_with_threads(&archs, 3)
        );
    }

    #[test]
    fn deduplicated_scoring_matches_one_by_one() {
        let (archs, targets) = toy_problem(40);
        let (m, mut t) = configs(PredictorKind::HypernasP);
        t.epochs = 2;
        let fitted = fit(&m, &t, &archs[..20], &targets[..20], None, None);
        // the same architectures twice, in another order
        let mut mixed: Vec<EncodedArch> = archs[20..].to_vec();
        mixed.extend(archs[20..].iter().rev().cloned());
        let batched = fitted.predict_with_threads(&mixed, 2);
        for (i, arch) in mixed.iter().enumerate() {
            let alone = fitted.predict_with_threads(std::slice::from_ref(arch), 1)[0];
            assert!(
                (batched[i] - alone).abs() < 1e-4,
                "{i}: {} vs {alone}",
                batched[i]
            );
        }
    }

    fn aux_for(archs: &[EncodedArch], m: &ModelConfig) -> aux::PreparedAux {
        let nb201 = space::by_name("nb201").unwrap();
        let proxy = m.hyper.as_ref().unwrap().proxy;
        aux::PreparedAux::new(nb201.as_ref(), archs, &proxy, 4, 1).unwrap()
    }

    #[test]
    fn hypernetwork_task_learns_to_classify_held_out_images() {
        let images = crate::data::cifar::embedded().unwrap();
        let (archs, targets) = toy_problem(24);
        let (m, mut t) = configs(PredictorKind::HypernasH);
        t.epochs = 60;
        let prepared = aux_for(&archs, &m);
        let fitted = fit(
            &m,
            &t,
            &archs,
            &targets,
            Some(&prepared.data(&images.train)),
            None,
        );
        let hyper: Vec<f64> = fitted
            .aux_log
            .iter()
            .filter(|e| e.phase == "hyper")
            .map(|e| e.hyper_loss.unwrap())
            .collect();
        assert_eq!(hyper.len(), 60);
        let early = hyper[..5].iter().sum::<f64>() / 5.0;
        let late = hyper[55..].iter().sum::<f64>() / 5.0;
        assert!(late < early - 0.05, "aux loss {early} -> {late}");
        // a cell with no input-output path makes a constant network: leave those out
        let pairs: Vec<(&EncodedArch, &ProxyProgram)> = archs
            .iter()
            .zip(&prepared.programs)
            .filter(|(a, _)| a.cell.num_edges() > 0)
            .take(4)
            .collect();
        let acc = fitted.generated_accuracy(&pairs, &images.test);
        let mean = acc.iter().sum::<f64>() / acc.len() as f64;
        // chance is 10 %
        assert!(
            mean > 15.0,
            "held-out accuracy of generated networks {acc:?}"
        );
        // the regressor phase trained the head only: the encoder is frozen
        assert!(fitted.aux_log.iter().any(|e| e.phase == "predict"));
    }

    #[test]
    fn joint_training_is_deterministic_and_moves_the_task_weights() {
        let images = crate::data::cifar::embedded().unwrap();
        let (archs, targets) = toy_problem(30);
        let (m, mut t) = configs(PredictorKind::Hypernas);
        t.epochs = 3;
        let prepared = aux_for(&archs[..20], &m);
        let data = prepared.data(&images.train);
        let run = || fit(&m, &t, &archs[..20], &targets[..20], Some(&data), None);
        let a = run();
        let b = run();
        assert_eq!(a.predict(&archs[20..]), b.predict(&archs[20..]));
        assert_eq!(a.aux_log.len(), 3);
        let last = a.aux_log.last().unwrap();
        assert_eq!(last.phase, "joint");
        assert!(last.hyper_loss.unwrap().is_finite());
        assert!(
            last.u
                .iter()
                .all(|&u| u.is_finite() && (u - 1.0).abs() > 1e-6),
            "{:?}",
            last.u
        );
    }

    #[test]
    fn a_frozen_encoder_gets_no_gradient() {
        let (archs, targets) = toy_problem(8);
        let (m, _) = configs(PredictorKind::HypernasH);
        let device = Device::flex().autodiff();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let refs: Vec<&EncodedArch> = archs.iter().collect();
        let input = BatchInput::new(m.kind, &refs, m.vocab, &device);
        let target: Vec<f32> = targets.iter().map(|&t| t as f32).collect();
        let target = Tensor::<1>::from_data(TensorData::new(target, [8]), &device);
        let count = |model: &Regressor| {
            let loss = mse(model.forward(&input, None), target.clone());
            GradientsParams::from_grads(loss.backward(), model).len()
        };
        let model = Regressor::new(&m, &mut rng, &device);
        // embed + 3 GCN layers (weight and bias each) + head (2 x 2)
        assert_eq!(count(&model), 2 * (1 + m.gcn_layers) + 4);
        assert_eq!(count(&freeze_encoder(model)), 4);
    }

    #[test]
    fn effective_epochs_respects_the_step_cap() {
        let (_, mut t) = configs(PredictorKind::Np);
        t.epochs = 300;
        t.batch_size = 16;
        t.max_steps = 6000;
        assert_eq!(t.effective_epochs(156), 300);
        assert_eq!(t.effective_epochs(1563), 62);
    }

    #[test]
    fn standardizer_inverts() {
        let s = Standardizer::fit(&[1.0, 2.0, 3.0]);
        assert!((s.inverse(s.forward(2.5)) - 2.5).abs() < 1e-12);
        assert_eq!(Standardizer::fit(&[4.0, 4.0]).std, 1.0);
    }
}
