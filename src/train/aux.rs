//! The hypernetwork's auxiliary task: generate the weights of a candidate (proxy) network from
//! the encoder's node features, classify a batch of CIFAR-10 images with it, and score it with
//! cross-entropy. The loss reaches the encoder through the generated weights.

use burn::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::cifar::{self, Augment, CifarSet};
use crate::encoding::{CellGraph, PackedGraphs};
use crate::model::gcn::GraphTensors;
use crate::model::predictor::GraphRegressor;
use crate::space::{ArchError, DynSpace, EncodedArch};
use crate::target::{self, ProxyConfig, ProxyProgram};

/// How the aux task is scheduled and weighted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuxConfig {
    /// Exponent `p` on each task loss in the adaptive multi-task loss (`p = q - 1`).
    pub preference_p: f64,
    /// Candidate networks run per aux step (each on its own image batch).
    pub archs_per_step: usize,
    /// Images per candidate network per aux step.
    pub images_per_arch: usize,
    /// An aux step every `every` predictor steps.
    pub every: usize,
    /// Random crop and flip on the aux images.
    pub augment: bool,
    /// Unlabelled architectures sampled from the space and added to the aux pool (recorded
    /// here; the caller draws them).
    pub unlabelled: usize,
}

impl Default for AuxConfig {
    fn default() -> Self {
        Self {
            preference_p: 0.5,
            archs_per_step: 1,
            images_per_arch: 32,
            every: 1,
            augment: true,
            unlabelled: 0,
        }
    }
}

/// What the aux task runs on: the proxy programs of the training architectures (parallel to
/// them), extra unlabelled architectures, and the images.
pub struct AuxData<'a> {
    pub programs: &'a [ProxyProgram],
    pub unlabelled: &'a [(EncodedArch, ProxyProgram)],
    pub images: &'a CifarSet,
}

/// One aux step's outcome.
pub struct AuxOutcome {
    pub loss: Tensor<1>,
    pub correct: usize,
    pub seen: usize,
}

/// The aux task of one training run: the architectures it samples from and its settings.
pub struct AuxTask<'a> {
    pub pool: Vec<(&'a EncodedArch, &'a ProxyProgram)>,
    pub images: &'a CifarSet,
    pub config: AuxConfig,
    pub proxy: ProxyConfig,
    pub vocab: usize,
}

impl<'a> AuxTask<'a> {
    /// The task over `archs` (parallel to `data.programs`) and `data.unlabelled`.
    ///
    /// # Panics
    /// If the programs do not match the architectures or the model has no hypernetwork
    /// configuration: callers build both from the same space.
    pub fn new(
        model_config: &crate::model::ModelConfig,
        config: AuxConfig,
        archs: &'a [EncodedArch],
        data: &AuxData<'a>,
    ) -> Self {
        assert_eq!(data.programs.len(), archs.len());
        let pool = archs
            .iter()
            .zip(data.programs)
            .chain(data.unlabelled.iter().map(|(a, p)| (a, p)))
            .collect();
        Self {
            pool,
            images: data.images,
            config,
            proxy: model_config
                .hyper
                .as_ref()
                .expect("hypernetwork configuration")
                .proxy,
            vocab: model_config.vocab,
        }
    }

    /// Run `archs_per_step` candidates drawn from the pool on fresh image batches with
    /// generated weights. `rng` drives the draw, dropout and augmentation.
    pub fn step(
        &self,
        model: &GraphRegressor,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> AuxOutcome {
        let picks: Vec<usize> = (0..self.config.archs_per_step.max(1))
            .map(|_| rng.random_range(0..self.pool.len()))
            .collect();
        let hyper = model
            .hyper
            .as_ref()
            .expect("aux step without a hypernetwork");
        let seqs: Vec<&[CellGraph]> = picks
            .iter()
            .map(|&i| self.pool[i].0.global.cells.as_slice())
            .collect();
        let graphs = GraphTensors::new(&PackedGraphs::pack(&seqs, self.vocab), device);
        let (_, nodes) = model.encoder.forward_with_nodes(&graphs, Some(rng));
        let augment = self.config.augment.then(Augment::default);
        let s = self.proxy.image_size;
        let mut losses = Vec::with_capacity(picks.len());
        let (mut correct, mut seen) = (0, 0);
        for (b, &i) in picks.iter().enumerate() {
            let program = self.pool[i].1;
            let weights = hyper.generate(&nodes, b, program);
            let idx: Vec<usize> = (0..self.config.images_per_arch)
                .map(|_| rng.random_range(0..self.images.len()))
                .collect();
            let (pixels, labels) = cifar::batch(self.images, &idx, s, augment.as_ref(), rng);
            let x = Tensor::<4>::from_data(TensorData::new(pixels, [idx.len(), 3, s, s]), device);
            let logits = program.forward(x, &weights);
            correct += target::correct(logits.clone().detach(), &labels);
            seen += labels.len();
            losses.push(target::cross_entropy(logits, &labels));
        }
        let n = losses.len();
        let loss = losses
            .into_iter()
            .reduce(|a, b| a + b)
            .expect("at least one candidate")
            .div_scalar(n as f64);
        AuxOutcome {
            loss,
            correct,
            seen,
        }
    }
}

/// The generated weights of one architecture's proxy network, at inference (no dropout):
/// `weights[i]` for program node `i`.
///
/// # Panics
/// If `model` has no hypernetwork.
pub fn generate_for(
    model: &GraphRegressor,
    arch: &EncodedArch,
    program: &ProxyProgram,
    vocab: usize,
) -> Vec<Option<Tensor<4>>> {
    let hyper = model.hyper.as_ref().expect("no hypernetwork in this model");
    let seqs = [arch.global.cells.as_slice()];
    let graphs = GraphTensors::new(&PackedGraphs::pack(&seqs, vocab), &Device::flex());
    let (_, nodes) = model.encoder.forward_with_nodes(&graphs, None);
    hyper.generate(&nodes, 0, program)
}

/// Images per forward pass when evaluating generated networks: normalisation uses batch
/// statistics, so this is also the statistics' sample size.
pub const EVAL_BATCH: usize = 250;

/// Top-1 accuracy (%) of each architecture's generated proxy network on `images` (no
/// augmentation), in order. `model` should be an inference (non-autodiff) module.
pub fn generated_accuracy(
    model: &GraphRegressor,
    archs: &[(&EncodedArch, &ProxyProgram)],
    proxy: &ProxyConfig,
    images: &CifarSet,
    vocab: usize,
) -> Vec<f64> {
    let device = Device::flex();
    let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let s = proxy.image_size;
    let all: Vec<usize> = (0..images.len()).collect();
    archs
        .iter()
        .map(|(arch, program)| {
            let weights = generate_for(model, arch, program, vocab);
            let mut correct = 0;
            for chunk in all.chunks(EVAL_BATCH) {
                let (pixels, labels) = cifar::batch(images, chunk, s, None, &mut rng);
                let x = Tensor::<4>::from_data(
                    TensorData::new(pixels, [chunk.len(), 3, s, s]),
                    &device,
                );
                correct += target::correct(program.forward(x, &weights), &labels);
            }
            100.0 * correct as f64 / images.len().max(1) as f64
        })
        .collect()
}

/// The aux task's inputs prepared for one training set: the proxy programs of the labelled
/// architectures and the extra unlabelled ones.
pub struct PreparedAux {
    pub programs: Vec<ProxyProgram>,
    pub unlabelled: Vec<(EncodedArch, ProxyProgram)>,
}

impl PreparedAux {
    /// Programs for `archs` and `unlabelled` extra architectures drawn from the space with
    /// `seed` (distinct, not among `archs`).
    pub fn new(
        space: &dyn DynSpace,
        archs: &[EncodedArch],
        proxy: &ProxyConfig,
        unlabelled: usize,
        seed: u64,
    ) -> Result<Self, ArchError> {
        let program = |text: &str| -> Result<ProxyProgram, ArchError> {
            space.proxy_program(text, proxy)?.ok_or_else(|| {
                ArchError::new(format!(
                    "space {} has no candidate network, so the hypernetwork task (hypernas, hypernas-h) is unavailable; use hypernas-p",
                    space.name()
                ))
            })
        };
        let programs = archs
            .iter()
            .map(|a| program(&a.canonical))
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen: std::collections::HashSet<String> =
            archs.iter().map(|a| a.canonical.clone()).collect();
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed ^ UNLABELLED_SALT);
        let mut extra = Vec::with_capacity(unlabelled);
        // Bounded: a tiny space may hold fewer distinct architectures than asked for.
        for _ in 0..unlabelled.saturating_mul(20) {
            if extra.len() == unlabelled {
                break;
            }
            let text = space.sample_string(&mut rng);
            if seen.insert(text.clone()) {
                let encoded = space.encode(&text)?;
                let p = program(&text)?;
                extra.push((encoded, p));
            }
        }
        Ok(Self {
            programs,
            unlabelled: extra,
        })
    }

    pub fn data<'a>(&'a self, images: &'a CifarSet) -> AuxData<'a> {
        AuxData {
            programs: &self.programs,
            unlabelled: &self.unlabelled,
            images,
        }
    }
}

/// Keeps the unlabelled draw independent of the training-set split drawn from the same seed.
const UNLABELLED_SALT: u64 = 0x5eed_a11c_e11a_b1ed;

/// Seconds per aux step (forward and backward through encoder, hypernetwork and a candidate
/// network, no optimiser update), averaged over `steps` after one warm-up step, on a freshly
/// initialised model.
pub fn time_aux_steps(
    model_config: &crate::model::ModelConfig,
    config: &AuxConfig,
    data: &AuxData,
    archs: &[EncodedArch],
    steps: usize,
) -> f64 {
    let device = Device::flex().autodiff();
    let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let model = crate::model::Regressor::new(model_config, &mut rng, &device);
    let crate::model::Regressor::Graph(graph) = &model else {
        panic!("the aux task needs a graph predictor");
    };
    let task = AuxTask::new(model_config, config.clone(), archs, data);
    let mut run = || {
        let out = task.step(graph, &mut rng, &device);
        std::hint::black_box(out.loss.backward());
    };
    run();
    let start = std::time::Instant::now();
    for _ in 0..steps.max(1) {
        run();
    }
    start.elapsed().as_secs_f64() / steps.max(1) as f64
}
