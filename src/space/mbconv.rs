//! Accel-NASBench's MBConv space: the EfficientNet-B0 / MnasNet skeleton of 7 stages, each
//! stage with its own expansion ratio (1, 4, 6), depthwise kernel (3, 5), number of layers
//! (1 to 3; 1 to 4 in the sixth stage) and squeeze-excite (on or off), shared by the
//! stage's layers.
//!
//! The skeleton is Accel-NASBench's `configurationspaces/searchspaces.py` (`strides = [1, 2,
//! 2, 2, 1, 2, 1]`, input channels `[32, 16, 24, 40, 80, 112, 192]`, output channels `[16,
//! 24, 40, 80, 112, 192, 320]`) in EfficientNet-B0's frame: a 3x3 stride-2 stem of 32
//! channels, the stages, a 1x1 conv to 1280, global pooling and the classifier. A stage's
//! first layer takes its stride and width change; the others have identity shortcuts.
//! Architectures are written as the benchmark writes them: the 7 stages joined by `-`, each
//! `e<E>k<K>l<L>s<S>` (`e6k3l1s0-e4k5l2s0-...`).

use std::fmt;

use rand::{Rng, RngCore};

use super::mbconv_common::{self, MbBlock, Skeleton, pick, pick_other};
use super::{ArchError, SearchSpace};
use crate::encoding::{CellGraph, GlobalEncoding};
use crate::target::{ProxyConfig, ProxyProgram};

pub const STAGES: usize = 7;
pub const EXPANDS: [u8; 3] = [1, 4, 6];
pub const KERNELS: [u8; 2] = [3, 5];
const LAYERS: [u8; 3] = [1, 2, 3];
/// The sixth stage (EfficientNet-B0's 4-layer stage) may have up to 4 layers.
const LAYERS_SIXTH: [u8; 4] = [1, 2, 3, 4];
const SIXTH: usize = 5;

const STRIDES: [usize; STAGES] = [1, 2, 2, 2, 1, 2, 1];
const C_IN: [usize; STAGES] = [32, 16, 24, 40, 80, 112, 192];
const C_OUT: [usize; STAGES] = [16, 24, 40, 80, 112, 192, 320];
const SKELETON: Skeleton = Skeleton {
    stem: 32,
    head: 1280,
    feature_mix: None,
};

/// The layer counts stage `stage` allows.
fn layer_choices(stage: usize) -> &'static [u8] {
    if stage == SIXTH {
        &LAYERS_SIXTH
    } else {
        &LAYERS
    }
}

/// One stage's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnbStage {
    pub expand: u8,
    pub kernel: u8,
    pub layers: u8,
    pub se: bool,
}

/// An Accel-NASBench architecture: seven stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnbArch {
    stages: [AnbStage; STAGES],
}

fn allowed(values: &[u8]) -> String {
    let names: Vec<String> = values.iter().map(u8::to_string).collect();
    names.join(", ")
}

impl AnbStage {
    /// Parse `e<E>k<K>l<L>s<S>` for stage `stage` (0-based).
    fn parse(text: &str, stage: usize) -> Result<Self, ArchError> {
        let what = || format!("stage {} '{text}'", stage + 1);
        let mut values = [0u8; 4];
        let mut rest = text;
        for (i, key) in ['e', 'k', 'l', 's'].into_iter().enumerate() {
            rest = rest.strip_prefix(key).ok_or_else(|| {
                ArchError::new(format!(
                    "{}: expected '{key}' next (a stage is e<E>k<K>l<L>s<S>, e.g. e6k3l2s1)",
                    what()
                ))
            })?;
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            values[i] = rest[..digits].parse().map_err(|_| {
                ArchError::new(format!("{}: '{key}' is not followed by a number", what()))
            })?;
            rest = &rest[digits..];
        }
        if !rest.is_empty() {
            return Err(ArchError::new(format!(
                "{}: unexpected '{rest}' after the stage",
                what()
            )));
        }
        let [expand, kernel, layers, se] = values;
        let check = |name: &str, v: u8, choices: &[u8]| {
            if choices.contains(&v) {
                Ok(v)
            } else {
                Err(ArchError::new(format!(
                    "{}: {name} {v} is not one of {}",
                    what(),
                    allowed(choices)
                )))
            }
        };
        Ok(Self {
            expand: check("expansion ratio", expand, &EXPANDS)?,
            kernel: check("kernel", kernel, &KERNELS)?,
            layers: check("layer count", layers, layer_choices(stage))?,
            se: check("squeeze-excite", se, &[0, 1])? == 1,
        })
    }
}

impl fmt::Display for AnbStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "e{}k{}l{}s{}",
            self.expand,
            self.kernel,
            self.layers,
            u8::from(self.se)
        )
    }
}

impl AnbArch {
    pub fn parse(text: &str) -> Result<Self, ArchError> {
        let parts: Vec<&str> = text.trim().split('-').map(str::trim).collect();
        if parts.len() != STAGES {
            return Err(ArchError::new(format!(
                "'{text}' has {} stages; an Accel-NASBench architecture is {STAGES} stages e<E>k<K>l<L>s<S> joined by '-'",
                parts.len()
            )));
        }
        let stages: Vec<AnbStage> = parts
            .iter()
            .enumerate()
            .map(|(i, part)| AnbStage::parse(part, i))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            stages: stages.try_into().expect("one stage per part"),
        })
    }

    pub fn stages(&self) -> &[AnbStage; STAGES] {
        &self.stages
    }

    /// Every layer as a block with the benchmark's real channels and strides.
    pub fn blocks(&self) -> Vec<MbBlock> {
        let mut blocks = Vec::new();
        for (i, stage) in self.stages.iter().enumerate() {
            for l in 0..stage.layers as usize {
                let first = l == 0;
                blocks.push(MbBlock {
                    kernel: stage.kernel as usize,
                    expand: stage.expand as usize,
                    se: stage.se,
                    stride: if first { STRIDES[i] } else { 1 },
                    c_in: if first { C_IN[i] } else { C_OUT[i] },
                    c_out: C_OUT[i],
                });
            }
        }
        blocks
    }
}

impl fmt::Display for AnbArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stages: Vec<String> = self.stages.iter().map(AnbStage::to_string).collect();
        write!(f, "{}", stages.join("-"))
    }
}

/// The Accel-NASBench MBConv space.
#[derive(Debug, Clone, Default)]
pub struct AnbMbconvSpace;

impl SearchSpace for AnbMbconvSpace {
    type Arch = AnbArch;

    fn name(&self) -> &'static str {
        "anb-mbconv"
    }

    fn parse(&self, text: &str) -> Result<AnbArch, ArchError> {
        AnbArch::parse(text)
    }

    fn format(&self, arch: &AnbArch) -> String {
        arch.to_string()
    }

    /// Uniform per decision, like the benchmark's ConfigSpace sampler.
    fn sample(&self, rng: &mut dyn RngCore) -> AnbArch {
        AnbArch {
            stages: std::array::from_fn(|i| AnbStage {
                expand: pick(rng, &EXPANDS),
                kernel: pick(rng, &KERNELS),
                layers: pick(rng, layer_choices(i)),
                se: rng.random_bool(0.5),
            }),
        }
    }

    /// One of the 28 decisions (4 per stage) changed to another value.
    fn mutate(&self, arch: &AnbArch, rng: &mut dyn RngCore) -> AnbArch {
        let mut out = *arch;
        let i = rng.random_range(0..STAGES);
        let stage = &mut out.stages[i];
        match rng.random_range(0..4) {
            0 => stage.expand = pick_other(rng, &EXPANDS, stage.expand),
            1 => stage.kernel = pick_other(rng, &KERNELS, stage.kernel),
            2 => stage.layers = pick_other(rng, layer_choices(i), stage.layers),
            _ => stage.se = !stage.se,
        }
        out
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        mbconv_common::VOCAB
    }

    /// Every layer as one chain of block graphs (the stem and head are fixed).
    fn cell_graph(&self, arch: &AnbArch) -> CellGraph {
        mbconv_common::chained_blocks(&arch.blocks())
    }

    /// Stem, one cell per layer, head.
    fn global_encoding(&self, arch: &AnbArch) -> GlobalEncoding {
        mbconv_common::global_encoding(&SKELETON, &arch.blocks())
    }

    /// Per stage: one-hot ratio, one-hot kernel, one-hot layer count, the SE bit.
    fn flat_features(&self, arch: &AnbArch) -> Vec<f32> {
        let mut features = Vec::with_capacity(self.flat_dim());
        let one_hot = |features: &mut Vec<f32>, choices: &[u8], v: u8| {
            features.extend(choices.iter().map(|&c| f32::from(u8::from(c == v))));
        };
        for (i, stage) in arch.stages.iter().enumerate() {
            one_hot(&mut features, &EXPANDS, stage.expand);
            one_hot(&mut features, &KERNELS, stage.kernel);
            one_hot(&mut features, layer_choices(i), stage.layers);
            features.push(f32::from(u8::from(stage.se)));
        }
        features
    }

    fn flat_dim(&self) -> usize {
        (0..STAGES)
            .map(|i| EXPANDS.len() + KERNELS.len() + layer_choices(i).len() + 1)
            .sum()
    }

    fn proxy_kernel_sizes(&self) -> Vec<usize> {
        vec![1, 3, 5]
    }

    /// The network of [`AnbMbconvSpace::global_encoding`] at proxy size; see
    /// [`mbconv_common::proxy_program`] (squeeze-excite is left out of the proxy).
    fn proxy_program(&self, arch: &AnbArch, config: &ProxyConfig) -> Option<ProxyProgram> {
        Some(mbconv_common::proxy_program(
            &SKELETON,
            &arch.blocks(),
            config,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const EXAMPLE: &str = "e6k3l1s0-e4k5l2s0-e6k3l3s0-e6k5l3s0-e6k5l2s0-e1k3l2s0-e1k3l2s0";

    #[test]
    fn the_benchmark_form_round_trips() {
        let space = AnbMbconvSpace;
        let a = space.parse(EXAMPLE).unwrap();
        assert_eq!(space.format(&a), EXAMPLE);
        assert_eq!(a.blocks().len(), 1 + 2 + 3 + 3 + 2 + 2 + 2);
        assert_eq!(a.stages()[1].kernel, 5);
        let four = space
            .parse(&EXAMPLE.replace("e1k3l2s0-e1", "e1k3l4s1-e1"))
            .unwrap();
        assert!(four.stages()[SIXTH].se && four.stages()[SIXTH].layers == 4);
    }

    #[test]
    fn errors_are_precise() {
        let space = AnbMbconvSpace;
        let err = |s: &str| space.parse(s).unwrap_err().to_string();
        assert!(err("e6k3l1s0").contains("has 1 stages"));
        assert!(
            err(&EXAMPLE.replacen("e6k3l1s0", "e5k3l1s0", 1))
                .contains("stage 1 'e5k3l1s0': expansion ratio 5 is not one of 1, 4, 6")
        );
        assert!(
            err(&EXAMPLE.replacen("e4k5l2s0", "e4k7l2s0", 1))
                .contains("stage 2 'e4k7l2s0': kernel 7 is not one of 3, 5")
        );
        assert!(
            err(&EXAMPLE.replacen("e6k3l1s0", "e6k3l4s0", 1))
                .contains("layer count 4 is not one of 1, 2, 3")
        );
        assert!(err(&EXAMPLE.replacen("l1s0", "l1s2", 1)).contains("squeeze-excite 2"));
        assert!(err(&EXAMPLE.replacen("e6k3l1s0", "e6l1s0", 1)).contains("expected 'k' next"));
        assert!(err(&EXAMPLE.replacen("e6k3l1s0", "e6k3l1s0x", 1)).contains("unexpected 'x'"));
        assert!(err(&EXAMPLE.replacen("e6k3l1s0", "ek3l1s0", 1)).contains("'e' is not followed"));
    }

    #[test]
    fn sampled_and_mutated_archs_are_valid_and_differ_by_one_decision() {
        let space = AnbMbconvSpace;
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..300 {
            let a = space.sample(&mut rng);
            assert_eq!(space.parse(&space.format(&a)).unwrap(), a);
            let m = space.mutate(&a, &mut rng);
            assert_eq!(space.parse(&space.format(&m)).unwrap(), m);
            let diff: usize = a
                .stages
                .iter()
                .zip(&m.stages)
                .map(|(x, y)| {
                    usize::from(x.expand != y.expand)
                        + usize::from(x.kernel != y.kernel)
                        + usize::from(x.layers != y.layers)
                        + usize::from(x.se != y.se)
                })
                .sum();
            assert_eq!(diff, 1);
            assert_eq!(space.flat_features(&m).len(), space.flat_dim());
        }
    }

    #[test]
    fn encodings_have_the_documented_shapes() {
        let space = AnbMbconvSpace;
        let a = space.parse(EXAMPLE).unwrap();
        let global = space.global_encoding(&a);
        assert_eq!(global.cells.len(), 1 + 15 + 1);
        let name = |cell: &CellGraph, i: usize| mbconv_common::VOCAB[cell.ops()[i] as usize];
        // stage 6 is e1: input, dw3, project, output for its first (strided) layer
        let sixth_first = &global.cells[1 + 13];
        assert_eq!(sixth_first.num_nodes(), 4);
        assert_eq!(name(sixth_first, 1), "dw3");
        let cell = space.cell_graph(&a);
        let adds = cell.ops().iter().filter(|&&o| o == 10).count();
        assert_eq!(adds, 15 - 7);
        assert_eq!(space.flat_dim(), 6 * 9 + 10);
        assert_eq!(space.flat_features(&a).iter().sum::<f32>(), 21.0);
    }

    #[test]
    fn proxy_networks_run_from_their_own_nodes() {
        let space = AnbMbconvSpace;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut archs = vec![space.parse(EXAMPLE).unwrap()];
        archs.extend((0..2).map(|_| space.sample(&mut rng)));
        mbconv_common::testing::check_proxies(&space, &archs);
    }

    #[test]
    fn every_embedded_row_round_trips_and_is_distinct() {
        mbconv_common::testing::check_embedded_rows(&AnbMbconvSpace, "anb-mbconv", 5125);
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            let _ = AnbMbconvSpace.parse(&s);
        }
    }
}
