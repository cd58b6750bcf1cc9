//! The predictors: one [`Regressor`] module (a graph encoder or an MLP, plus a regression head)
//! selected by [`PredictorKind`], and the batch inputs each kind consumes.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::gcn::{GraphTensors, SequenceGcn};
use super::hyper::{HyperConfig, HyperNet};
use super::layers::{Dense, dropout};
use super::loss::TaskWeights;
use crate::encoding::{CellGraph, PackedGraphs};
use crate::space::EncodedArch;

/// Which predictor to train. The names are the `--predictor` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PredictorKind {
    /// Full HyperNAS: the hypernetwork-predictor trained jointly with the shared hypernetwork's
    /// auxiliary task (generated candidate networks classifying CIFAR-10) under the dynamic
    /// adaptive multi-task loss.
    Hypernas,
    /// The hypernetwork task alone trains the encoder; a regressor is then fitted on the frozen
    /// embedding.
    #[value(name = "hypernas-h")]
    HypernasH,
    /// Global encoding (the whole network as a sequence of cells) through the shared
    /// bidirectional GCN with z-passing, then an MLP regressor. HyperNAS without hypernetwork.
    #[value(name = "hypernas-p")]
    HypernasP,
    /// The NP baseline: the same GCN on the searchable cell alone.
    Np,
    /// Non-graph baseline: an MLP on the one-hot encoding of the architecture's decisions.
    Mlp,
}

impl PredictorKind {
    /// Whether the kind trains the hypernetwork on images.
    pub fn uses_hypernetwork(self) -> bool {
        matches!(self, PredictorKind::Hypernas | PredictorKind::HypernasH)
    }

    /// Whether the kind reads the global encoding (the whole network as a sequence of cells).
    pub fn uses_global_encoding(self) -> bool {
        matches!(
            self,
            PredictorKind::Hypernas | PredictorKind::HypernasH | PredictorKind::HypernasP
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            PredictorKind::Hypernas => "hypernas",
            PredictorKind::HypernasH => "hypernas-h",
            PredictorKind::HypernasP => "hypernas-p",
            PredictorKind::Np => "np",
            PredictorKind::Mlp => "mlp",
        }
    }
}

impl std::fmt::Display for PredictorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Shape of the network; stored in the model file so it can be rebuilt before loading weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub kind: PredictorKind,
    /// Node vocabulary size of the space (graph predictors).
    pub vocab: usize,
    /// Length of the flat encoding (MLP baseline).
    pub flat_dim: usize,
    pub hidden: usize,
    pub gcn_layers: usize,
    pub head_hidden: usize,
    pub dropout: f64,
    /// The hypernetwork and its proxy networks (`hypernas`, `hypernas-h`).
    #[serde(default)]
    pub hyper: Option<HyperConfig>,
    /// How many previous cells' pooled features a cell receives (see [`SequenceGcn`]).
    #[serde(default = "one")]
    pub z_span: usize,
}

fn one() -> usize {
    1
}

/// What one batch of architectures looks like to a predictor.
// One value per batch, so the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum BatchInput {
    Graphs(GraphTensors),
    Flat(Tensor<2>),
}

impl BatchInput {
    pub fn new(kind: PredictorKind, archs: &[&EncodedArch], vocab: usize, device: &Device) -> Self {
        match kind {
            _ if kind.uses_global_encoding() => {
                let seqs: Vec<&[CellGraph]> =
                    archs.iter().map(|a| a.global.cells.as_slice()).collect();
                Self::Graphs(GraphTensors::new(&PackedGraphs::pack(&seqs, vocab), device))
            }
            PredictorKind::Np => {
                let seqs: Vec<&[CellGraph]> = archs
                    .iter()
                    .map(|a| std::slice::from_ref(&a.cell))
                    .collect();
                Self::Graphs(GraphTensors::new(&PackedGraphs::pack(&seqs, vocab), device))
            }
            _ => {
                let dim = archs.first().map_or(0, |a| a.flat.len());
                let data: Vec<f32> = archs.iter().flat_map(|a| a.flat.iter().copied()).collect();
                Self::Flat(Tensor::from_data(
                    TensorData::new(data, [archs.len(), dim]),
                    device,
                ))
            }
        }
    }
}

/// A graph encoder followed by `H -> head_hidden -> 1`.
#[derive(Module, Debug)]
pub struct GraphRegressor {
    pub encoder: SequenceGcn,
    pub head_in: Dense,
    pub head_out: Dense,
    dropout: f64,
    /// The shared hypernetwork (`hypernas`, `hypernas-h`); unused at prediction time.
    pub hyper: Option<HyperNet>,
    /// `u_t` of the adaptive multi-task loss (`hypernas`).
    pub tasks: Option<TaskWeights>,
}

impl GraphRegressor {
    /// The regression head on a batch of embeddings.
    pub fn head(&self, h: Tensor<2>, rng: Option<&mut ChaCha8Rng>) -> Tensor<1> {
        let h = dropout(relu(self.head_in.forward(h)), self.dropout, rng);
        let out = self.head_out.forward(h);
        let b = out.dims()[0];
        out.reshape([b])
    }
}

/// `flat -> head_hidden -> head_hidden -> 1`.
#[derive(Module, Debug)]
pub struct MlpRegressor {
    l1: Dense,
    l2: Dense,
    out: Dense,
    dropout: f64,
}

// One value per model, so the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Regressor {
    Graph(GraphRegressor),
    Mlp(MlpRegressor),
}

impl Regressor {
    pub fn new(config: &ModelConfig, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        match config.kind {
            PredictorKind::HypernasP
            | PredictorKind::Np
            | PredictorKind::Hypernas
            | PredictorKind::HypernasH => {
                let encoder = SequenceGcn::new(
                    config.vocab,
                    config.hidden,
                    config.gcn_layers,
                    config.dropout,
                    rng,
                    device,
                )
                .with_z_span(config.z_span);
                let head_in = Dense::new(config.hidden, config.head_hidden, rng, device);
                let head_out = Dense::new(config.head_hidden, 1, rng, device);
                // Drawn after the predictor's own weights so hypernas-p initialises as before.
                let hyper = match (config.kind.uses_hypernetwork(), &config.hyper) {
                    (true, Some(h)) => Some(HyperNet::new(config.hidden, h, rng, device)),
                    (true, None) => panic!("{} needs a hypernetwork configuration", config.kind),
                    (false, _) => None,
                };
                let tasks =
                    (config.kind == PredictorKind::Hypernas).then(|| TaskWeights::new(2, device));
                Regressor::Graph(GraphRegressor {
                    encoder,
                    head_in,
                    head_out,
                    dropout: config.dropout,
                    hyper,
                    tasks,
                })
            }
            PredictorKind::Mlp => Regressor::Mlp(MlpRegressor {
                l1: Dense::new(config.flat_dim, config.head_hidden, rng, device),
                l2: Dense::new(config.head_hidden, config.head_hidden, rng, device),
                out: Dense::new(config.head_hidden, 1, rng, device),
                dropout: config.dropout,
            }),
        }
    }

    /// Predicted (standardised) targets, `[B]`. `rng` turns dropout on.
    pub fn forward(&self, input: &BatchInput, mut rng: Option<&mut ChaCha8Rng>) -> Tensor<1> {
        let out = match (self, input) {
            (Regressor::Graph(g), BatchInput::Graphs(graphs)) => {
                let h = g.encoder.forward(graphs, rng.as_deref_mut());
                return g.head(h, rng);
            }
            (Regressor::Mlp(m), BatchInput::Flat(x)) => {
                let h = relu(m.l1.forward(x.clone()));
                let h = dropout(relu(m.l2.forward(h)), m.dropout, rng);
                m.out.forward(h)
            }
            _ => unreachable!("batch input built for another predictor kind"),
        };
        let b = out.dims()[0];
        out.reshape([b])
    }
}
