//! Search spaces. Each space is one file implementing [`SearchSpace`]; the rest of the crate
//! sees a space only through that trait (or its type-erased twin [`DynSpace`]), so adding a
//! space never touches the predictor, training or CLI code.

pub mod darts;
pub mod mbconv;
mod mbconv_common;
pub mod nb101;
pub mod nb201;
pub mod nb_graph;
pub mod nb_macro;
pub mod nb_nlp;
pub mod ofa_mbv3;
pub mod pit;
pub mod tnb101;
pub mod vit;

use std::fmt::Debug;
use std::hash::Hash;

use rand::RngCore;

use crate::encoding::{CellGraph, GlobalEncoding};
use crate::target::{ProxyConfig, ProxyProgram};

/// Why an architecture string was rejected. One line, meant for a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArchError(pub String);

impl ArchError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// A search space: how its architectures are written, checked, sampled, varied and encoded.
pub trait SearchSpace: Send + Sync + 'static {
    type Arch: Clone + Eq + Hash + Debug + Send + Sync;

    /// Short name used on the command line (`nb201`).
    fn name(&self) -> &'static str;

    /// Parse any accepted textual form of an architecture.
    fn parse(&self, text: &str) -> Result<Self::Arch, ArchError>;

    /// The canonical string, the form the benchmark itself uses.
    fn format(&self, arch: &Self::Arch) -> String;

    /// A key equal for architectures that compute the same network (isomorphic cells, pairs
    /// listed in another order), used to find duplicates. Defaults to the canonical string.
    fn identity(&self, arch: &Self::Arch) -> String {
        self.format(arch)
    }

    /// A uniformly random architecture.
    fn sample(&self, rng: &mut dyn RngCore) -> Self::Arch;

    /// A random neighbour that differs in one decision.
    fn mutate(&self, arch: &Self::Arch, rng: &mut dyn RngCore) -> Self::Arch;

    /// Every architecture, if the space is small enough to list.
    fn enumerate(&self) -> Option<Vec<Self::Arch>> {
        None
    }

    /// Names of the node types that may appear in any cell graph of this space, searchable
    /// operations and the fixed blocks of the skeleton alike. Node features index this list.
    fn node_vocabulary(&self) -> &[&'static str];

    /// The searchable cell on its own (what the NP baseline sees).
    fn cell_graph(&self, arch: &Self::Arch) -> CellGraph;

    /// The whole network as a sequence of cell graphs (what HyperNAS sees).
    fn global_encoding(&self, arch: &Self::Arch) -> GlobalEncoding;

    /// A fixed-length numeric encoding for non-graph baselines (one-hot of the decisions).
    fn flat_features(&self, arch: &Self::Arch) -> Vec<f32>;

    /// Length of [`SearchSpace::flat_features`], the same for every architecture.
    fn flat_dim(&self) -> usize;

    /// The reduced candidate network the hypernetwork's auxiliary task runs on images, with
    /// its weighted layers pointing into [`SearchSpace::global_encoding`]. `None` for spaces
    /// without an image network (the aux task is then unavailable).
    fn proxy_program(&self, _arch: &Self::Arch, _config: &ProxyConfig) -> Option<ProxyProgram> {
        None
    }

    /// Kernel sizes the proxy networks use (the hypernetwork gets one head per size).
    fn proxy_kernel_sizes(&self) -> Vec<usize> {
        vec![1, 3]
    }

    /// How many previous cells' pooled features the global encoding passes to each cell (the
    /// default `--z-span`): 1, the paper's z-passing, unless the space says otherwise.
    fn z_span(&self) -> usize {
        1
    }
}

/// An architecture after parsing, carried through the space-agnostic core in every form the
/// predictors need.
#[derive(Debug, Clone)]
pub struct EncodedArch {
    pub canonical: String,
    /// [`SearchSpace::identity`]: equal for architectures that are the same network.
    pub identity: String,
    pub cell: CellGraph,
    pub global: GlobalEncoding,
    pub flat: Vec<f32>,
}

/// Object-safe view of a [`SearchSpace`], working on strings, so the CLI can pick a space at
/// run time.
pub trait DynSpace: Send + Sync {
    fn name(&self) -> &'static str;
    fn encode(&self, text: &str) -> Result<EncodedArch, ArchError>;
    fn canonical(&self, text: &str) -> Result<String, ArchError>;
    fn sample_string(&self, rng: &mut dyn RngCore) -> String;
    fn mutate_string(&self, text: &str, rng: &mut dyn RngCore) -> Result<String, ArchError>;
    fn enumerate_strings(&self) -> Option<Vec<String>>;
    fn node_vocabulary(&self) -> &[&'static str];
    fn flat_dim(&self) -> usize;
    fn proxy_program(
        &self,
        text: &str,
        config: &ProxyConfig,
    ) -> Result<Option<ProxyProgram>, ArchError>;
    fn proxy_kernel_sizes(&self) -> Vec<usize>;
    fn z_span(&self) -> usize;
    /// Whether the space builds candidate networks, i.e. supports the hypernetwork task.
    fn has_candidate_networks(&self) -> bool;
}

impl<S: SearchSpace> DynSpace for S {
    fn name(&self) -> &'static str {
        SearchSpace::name(self)
    }

    fn encode(&self, text: &str) -> Result<EncodedArch, ArchError> {
        let arch = self.parse(text)?;
        Ok(EncodedArch {
            canonical: self.format(&arch),
            identity: self.identity(&arch),
            cell: self.cell_graph(&arch),
            global: self.global_encoding(&arch),
            flat: self.flat_features(&arch),
        })
    }

    fn canonical(&self, text: &str) -> Result<String, ArchError> {
        self.parse(text).map(|a| self.format(&a))
    }

    fn sample_string(&self, rng: &mut dyn RngCore) -> String {
        let arch = self.sample(rng);
        self.format(&arch)
    }

    fn mutate_string(&self, text: &str, rng: &mut dyn RngCore) -> Result<String, ArchError> {
        let arch = self.parse(text)?;
        Ok(self.format(&self.mutate(&arch, rng)))
    }

    fn enumerate_strings(&self) -> Option<Vec<String>> {
        self.enumerate()
            .map(|all| all.iter().map(|a| self.format(a)).collect())
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        SearchSpace::node_vocabulary(self)
    }

    fn flat_dim(&self) -> usize {
        SearchSpace::flat_dim(self)
    }

    fn proxy_program(
        &self,
        text: &str,
        config: &ProxyConfig,
    ) -> Result<Option<ProxyProgram>, ArchError> {
        let arch = self.parse(text)?;
        Ok(SearchSpace::proxy_program(self, &arch, config))
    }

    fn proxy_kernel_sizes(&self) -> Vec<usize> {
        SearchSpace::proxy_kernel_sizes(self)
    }

    fn z_span(&self) -> usize {
        SearchSpace::z_span(self)
    }

    fn has_candidate_networks(&self) -> bool {
        // a space builds a candidate network for every architecture or for none
        let probe =
            self.sample(&mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0));
        SearchSpace::proxy_program(self, &probe, &ProxyConfig::default()).is_some()
    }
}

/// Every way to pick one of `choices` options in each of `N` slots, the last slot varying
/// fastest: the row order of the complete benchmark tables (NB201, NAS-Bench-Macro, TransNAS).
pub(crate) fn all_choices<const N: usize>(choices: usize) -> impl Iterator<Item = [usize; N]> {
    (0..choices.pow(N as u32)).map(move |mut code| {
        let mut digits = [0; N];
        for d in digits.iter_mut().rev() {
            *d = code % choices;
            code /= choices;
        }
        digits
    })
}

/// Names accepted by `--space`.
pub const SPACE_NAMES: &[&str] = &[
    "nb201",
    "nb201-unpruned",
    "nb101",
    "darts",
    "darts-search",
    "nb-macro",
    "tnb101-micro",
    "nb-nlp",
    "nb-graph",
    "vit",
    "vit-small",
    "vit-base",
    "pit",
    "ofa-mbv3",
    "anb-mbconv",
];

/// Look a space up by its command-line name.
pub fn by_name(name: &str) -> Result<Box<dyn DynSpace>, ArchError> {
    match name {
        "nb201" | "nasbench201" | "nas-bench-201" => Ok(Box::new(nb201::Nb201Space::default())),
        // The raw op-on-node encoding, kept for the pruning ablation.
        "nb201-unpruned" => Ok(Box::new(nb201::Nb201Space {
            prune: false,
            ..Default::default()
        })),
        "nb101" | "nasbench101" | "nas-bench-101" => Ok(Box::new(nb101::Nb101Space::default())),
        "darts" | "nb301" => Ok(Box::new(darts::DartsSpace::default())),
        // The same cells encoded in DARTS' 8-cell search network instead of the 20-cell one.
        "darts-search" => Ok(Box::new(darts::DartsSpace {
            layers: darts::SEARCH_LAYERS,
        })),
        "nb-macro" | "nas-bench-macro" => Ok(Box::new(nb_macro::NbMacroSpace)),
        "tnb101-micro" | "transnas-micro" => Ok(Box::new(tnb101::Tnb101MicroSpace)),
        "nb-nlp" | "nas-bench-nlp" => Ok(Box::new(nb_nlp::NbNlpSpace)),
        "nb-graph" | "nas-bench-graph" => Ok(Box::new(nb_graph::NbGraphSpace)),
        "vit" | "autoformer" | "autoformer-tiny" => Ok(Box::new(vit::VitSpace::default())),
        // AutoFormer's larger spaces: no table labels them, but search and encoding work.
        "vit-small" | "autoformer-small" => Ok(Box::new(vit::VitSpace::new(vit::VitRanges::SMALL))),
        "vit-base" | "autoformer-base" => Ok(Box::new(vit::VitSpace::new(vit::VitRanges::BASE))),
        "pit" => Ok(Box::new(pit::PitSpace)),
        "ofa-mbv3" | "ofa" | "mobilenetv3" => Ok(Box::new(ofa_mbv3::OfaMbv3Space)),
        "anb-mbconv" | "anb" | "accel-nasbench" => Ok(Box::new(mbconv::AnbMbconvSpace)),
        other => Err(ArchError::new(format!(
            "unknown search space '{other}' (known: {})",
            SPACE_NAMES.join(", ")
        ))),
    }
}
