//! PiT, the pooling-based vision transformer (Heo et al., *Rethinking Spatial Dimensions of
//! Vision Transformers*, ICCV 2021), as Auto-Prox searches it (`configs/auto/search/pit-all.yaml`
//! of `lliai/Auto-Prox-AAAI24`): three stages of transformer blocks with a pooling layer
//! (strided depthwise convolution, channels widened) between them. Searched: the per-head
//! base dimension (16 / 24 / 32 / 40), one MLP ratio for the whole network (2 / 4 / 6 / 8),
//! the depth of each stage (1-3, 4-8 and 2-6 blocks: {1, 2, 3}, {4, 6, 8}, {2, 4, 6}) and the
//! heads of each stage (2 / 4 / 8, never fewer than the stage before: every sampled network
//! of the Auto-Prox table keeps that rule, so the space does too). A stage's width is the base
//! dimension times its heads.
//!
//! Canonical form `b=32;mlp=4;L=2,6,4;h=2,4,8` (base dimension, MLP ratio, stage depths,
//! stage heads); the data's column names (`base_dim`, `mlp_ratio`, `depth`, `num_heads`) are
//! accepted as keys and the fields may come in any order.

use std::fmt;

use rand::{Rng, RngCore};

use super::vit::{
    BlockTypes, ProxyBlock, chain_graphs, key_values, list, parse_count, push_proxy_head,
    transformer_block, type_index,
};
use super::{ArchError, SearchSpace};
use crate::encoding::{CellGraph, GlobalEncoding};
use crate::target::{Layer, ProxyConfig, ProxyProgram, Slot};

pub const STAGES: usize = 3;
pub const BASE_DIMS: [usize; 4] = [16, 24, 32, 40];
pub const MLP_RATIOS: [usize; 4] = [2, 4, 6, 8];
pub const STAGE_DEPTHS: [[usize; 3]; STAGES] = [[1, 2, 3], [4, 6, 8], [2, 4, 6]];
pub const HEADS: [usize; 3] = [2, 4, 8];
/// Side of the proxy network's patches: 2x2 patches of a 16x16 image are 64 tokens, pooled to
/// 16 and 4 by the two pooling layers.
const PATCH: usize = 2;

/// A PiT sub-network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PitArch {
    pub base_dim: usize,
    pub mlp_ratio: usize,
    pub depths: [usize; STAGES],
    pub heads: [usize; STAGES],
}

impl PitArch {
    /// Check every value against the space.
    pub fn new(
        base_dim: usize,
        mlp_ratio: usize,
        depths: &[usize],
        heads: &[usize],
    ) -> Result<Self, ArchError> {
        if !BASE_DIMS.contains(&base_dim) {
            return Err(ArchError::new(format!(
                "base dim {base_dim} is not in the PiT space ({})",
                list(&BASE_DIMS)
            )));
        }
        if !MLP_RATIOS.contains(&mlp_ratio) {
            return Err(ArchError::new(format!(
                "MLP ratio {mlp_ratio} is not in the PiT space ({})",
                list(&MLP_RATIOS)
            )));
        }
        for (what, len) in [("depths", depths.len()), ("head counts", heads.len())] {
            if len != STAGES {
                return Err(ArchError::new(format!(
                    "{len} stage {what}: PiT has {STAGES} stages"
                )));
            }
        }
        for s in 0..STAGES {
            if !STAGE_DEPTHS[s].contains(&depths[s]) {
                return Err(ArchError::new(format!(
                    "depth {} of stage {s} is not in the PiT space ({})",
                    depths[s],
                    list(&STAGE_DEPTHS[s])
                )));
            }
            if !HEADS.contains(&heads[s]) {
                return Err(ArchError::new(format!(
                    "{} heads in stage {s} is not in the PiT space ({})",
                    heads[s],
                    list(&HEADS)
                )));
            }
            if s > 0 && heads[s] < heads[s - 1] {
                return Err(ArchError::new(format!(
                    "stage {s} has fewer heads ({}) than stage {} ({}): heads never decrease",
                    heads[s],
                    s - 1,
                    heads[s - 1]
                )));
            }
        }
        Ok(Self {
            base_dim,
            mlp_ratio,
            depths: [depths[0], depths[1], depths[2]],
            heads: [heads[0], heads[1], heads[2]],
        })
    }

    fn parse(text: &str) -> Result<Self, ArchError> {
        const FORM: &str = "b=BASE;mlp=R;L=D,D,D;h=H,H,H";
        let (mut base, mut mlp, mut depths, mut heads) = (None, None, None, None);
        for (key, value) in key_values(text, FORM)? {
            let numbers = || {
                value
                    .split(',')
                    .map(|v| parse_count(key, v))
                    .collect::<Result<Vec<_>, _>>()
            };
            let previous = match key {
                "b" | "base_dim" => base.replace(parse_count(key, value)?).map(drop),
                "mlp" | "mlp_ratio" => mlp.replace(parse_count(key, value)?).map(drop),
                "L" | "depth" => depths.replace(numbers()?).map(drop),
                "h" | "num_heads" => heads.replace(numbers()?).map(drop),
                other => {
                    return Err(ArchError::new(format!(
                        "unknown field '{other}' (known: b, mlp, L, h)"
                    )));
                }
            };
            if previous.is_some() {
                return Err(ArchError::new(format!("field '{key}' given twice")));
            }
        }
        let missing =
            |key: &str| ArchError::new(format!("missing field '{key}' (expected {FORM})"));
        Self::new(
            base.ok_or_else(|| missing("b"))?,
            mlp.ok_or_else(|| missing("mlp"))?,
            &depths.ok_or_else(|| missing("L"))?,
            &heads.ok_or_else(|| missing("h"))?,
        )
    }
}

/// `b=32;mlp=4;L=2,6,4;h=2,4,8`.
impl fmt::Display for PitArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = |v: &[usize]| list(v).replace(", ", ",");
        write!(
            f,
            "b={};mlp={};L={};h={}",
            self.base_dim,
            self.mlp_ratio,
            joined(&self.depths),
            joined(&self.heads)
        )
    }
}

// Node vocabulary: the block's nodes, the fixed blocks, then one type per value of each
// decision.
const VOCAB: &[&str] = &[
    "input",
    "output",
    "layernorm",
    "add",
    "head_token_pool",
    "head_linear",
    "pool_dwconv_s2",
    "patch_embed_b16",
    "patch_embed_b24",
    "patch_embed_b32",
    "patch_embed_b40",
    "tokens_b16",
    "tokens_b24",
    "tokens_b32",
    "tokens_b40",
    "attn_h2",
    "attn_h4",
    "attn_h8",
    "mlp_2",
    "mlp_4",
    "mlp_6",
    "mlp_8",
    "stage_depth_1",
    "stage_depth_2",
    "stage_depth_3",
    "stage_depth_4",
    "stage_depth_5",
    "stage_depth_6",
    "stage_depth_7",
    "stage_depth_8",
];
const INPUT: u16 = 0;
const OUTPUT: u16 = 1;
const LAYERNORM: u16 = 2;
const ADD: u16 = 3;
const HEAD_POOL: u16 = 4;
const HEAD_LINEAR: u16 = 5;
const POOL: u16 = 6;

fn node_type(name: &str) -> u16 {
    type_index(VOCAB, name)
}

fn pick(values: &[usize], rng: &mut dyn RngCore) -> usize {
    values[rng.random_range(0..values.len())]
}

/// The PiT space of Auto-Prox.
#[derive(Debug, Clone, Default)]
pub struct PitSpace;

impl PitSpace {
    /// The graph a stage's depth ends in: the pooling layer after stage 0 and 1, the head
    /// after stage 2. Its input node is typed by that stage's depth, for the reason the ViT
    /// head carries the depth: the mean pooling over cells hardly sees one block more.
    fn stage_end(arch: &PitArch, stage: usize) -> CellGraph {
        let depth = node_type(&format!("stage_depth_{}", arch.depths[stage]));
        if stage + 1 < STAGES {
            CellGraph::chain(vec![depth, POOL, OUTPUT])
        } else {
            CellGraph::chain(vec![depth, LAYERNORM, HEAD_POOL, HEAD_LINEAR, OUTPUT])
        }
    }
}

impl SearchSpace for PitSpace {
    type Arch = PitArch;

    fn name(&self) -> &'static str {
        "pit"
    }

    fn parse(&self, text: &str) -> Result<PitArch, ArchError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ArchError::new("empty PiT architecture string"));
        }
        PitArch::parse(text)
    }

    fn format(&self, arch: &PitArch) -> String {
        arch.to_string()
    }

    /// Uniform over the base dimension, the ratio and each stage's depth, and over the ten
    /// non-decreasing head triples (the Auto-Prox sample's stage-0 heads, 2 / 4 / 8 in 58 /
    /// 30 / 12 of 100 rows, fit that and not independent draws).
    fn sample(&self, rng: &mut dyn RngCore) -> PitArch {
        let heads = loop {
            let h = [pick(&HEADS, rng), pick(&HEADS, rng), pick(&HEADS, rng)];
            if h[0] <= h[1] && h[1] <= h[2] {
                break h;
            }
        };
        PitArch {
            base_dim: pick(&BASE_DIMS, rng),
            mlp_ratio: pick(&MLP_RATIOS, rng),
            depths: std::array::from_fn(|s| pick(&STAGE_DEPTHS[s], rng)),
            heads,
        }
    }

    /// Another value for one decision: the base dimension, the ratio, one stage's depth or
    /// one stage's heads (kept non-decreasing).
    fn mutate(&self, arch: &PitArch, rng: &mut dyn RngCore) -> PitArch {
        loop {
            let mut next = *arch;
            match rng.random_range(0..2 + 2 * STAGES) {
                0 => next.base_dim = pick(&BASE_DIMS, rng),
                1 => next.mlp_ratio = pick(&MLP_RATIOS, rng),
                k if k < 2 + STAGES => {
                    let s = k - 2;
                    next.depths[s] = pick(&STAGE_DEPTHS[s], rng);
                }
                k => next.heads[k - 2 - STAGES] = pick(&HEADS, rng),
            }
            let sorted = next.heads.windows(2).all(|w| w[0] <= w[1]);
            if next != *arch && sorted {
                return next;
            }
        }
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        VOCAB
    }

    /// The whole network as one graph (stem, blocks, pooling layers, head in a chain), as for
    /// the ViT space: no cell repeats.
    fn cell_graph(&self, arch: &PitArch) -> CellGraph {
        chain_graphs(&self.global_encoding(arch).cells)
    }

    /// Stem (patch embedding, typed by the base dimension), then per stage its blocks (token
    /// nodes typed by the base dimension, attention by the stage's heads, MLP by the ratio)
    /// and the graph the stage ends in (pooling layer or head, input typed by the stage's
    /// depth).
    fn global_encoding(&self, arch: &PitArch) -> GlobalEncoding {
        let b = arch.base_dim;
        let mut cells = vec![CellGraph::chain(vec![
            INPUT,
            node_type(&format!("patch_embed_b{b}")),
            OUTPUT,
        ])];
        for s in 0..STAGES {
            let block = transformer_block(BlockTypes {
                tokens: node_type(&format!("tokens_b{b}")),
                layernorm: LAYERNORM,
                attn: node_type(&format!("attn_h{}", arch.heads[s])),
                add: ADD,
                mlp: node_type(&format!("mlp_{}", arch.mlp_ratio)),
                output: OUTPUT,
            });
            cells.extend(std::iter::repeat_n(block, arch.depths[s]));
            cells.push(Self::stage_end(arch, s));
        }
        GlobalEncoding { cells }
    }

    fn proxy_kernel_sizes(&self) -> Vec<usize> {
        vec![1, PATCH, 3]
    }

    /// PiT at proxy size: a PATCH x PATCH patch embedding (64 tokens on 16x16 images, no
    /// position embedding), the blocks of each stage (as in the ViT proxy: pre-norm,
    /// generated `qkv` / output projection / MLP maps, the stage's heads of
    /// `base_dim * width / 64` channels each, so a stage is `heads * head_dim` wide as PiT's is
    /// `heads * base_dim`), between stages PiT's pooling layer (a stride-2 depthwise 3x3
    /// convolution widening the channels to the next stage's, which needs the heads never to
    /// decrease), then layernorm, mean over the tokens and the classifier. The pooling
    /// convolution is generated from the `pool_dwconv_s2` node.
    fn proxy_program(&self, arch: &PitArch, config: &ProxyConfig) -> Option<ProxyProgram> {
        let head_dim = (arch.base_dim * config.width).div_ceil(64);
        let dims: [usize; STAGES] = std::array::from_fn(|s| head_dim * arch.heads[s]);
        let mut p = ProxyProgram::default();
        let image = p.push(Layer::Image, vec![], None);
        let embed = Layer::PatchEmbed {
            patch: PATCH.min(config.image_size),
            c_in: 3,
            c_out: dims[0],
        };
        let mut x = p.push(embed, vec![image], Some(Slot { cell: 0, node: 1 }));
        let mut cell = 1;
        for s in 0..STAGES {
            for _ in 0..arch.depths[s] {
                let block = ProxyBlock {
                    cell,
                    dim: dims[s],
                    heads: arch.heads[s],
                    head_dim,
                    hidden: dims[s] * arch.mlp_ratio,
                };
                x = block.push(&mut p, x);
                cell += 1;
            }
            if s + 1 < STAGES {
                let pool = Layer::conv_norm(3, 2, dims[s], dims[s + 1])
                    .with_relu_norm(false, false)
                    .depthwise(1);
                x = p.push(pool, vec![x], Some(Slot { cell, node: 1 }));
                cell += 1;
            }
        }
        push_proxy_head(&mut p, x, dims[STAGES - 1], cell);
        Some(p)
    }

    /// One-hot base dimension, one-hot ratio, then per stage one-hot depth and one-hot heads.
    fn flat_dim(&self) -> usize {
        BASE_DIMS.len() + MLP_RATIOS.len() + STAGES * (3 + HEADS.len())
    }

    fn flat_features(&self, arch: &PitArch) -> Vec<f32> {
        let mut f = Vec::with_capacity(self.flat_dim());
        let mut one_hot = |values: &[usize], v: usize| {
            f.extend(values.iter().map(|&x| f32::from(u8::from(x == v))));
        };
        one_hot(&BASE_DIMS, arch.base_dim);
        one_hot(&MLP_RATIOS, arch.mlp_ratio);
        for ((depths, &depth), &heads) in STAGE_DEPTHS.iter().zip(&arch.depths).zip(&arch.heads) {
            one_hot(depths, depth);
            one_hot(&HEADS, heads);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The first row of the Auto-Prox table.
    const EXAMPLE: &str = "b=16;mlp=6;L=2,8,4;h=2,4,4";

    #[test]
    fn canonical_and_column_forms_agree() {
        let a = PitSpace.parse(EXAMPLE).unwrap();
        assert_eq!(PitSpace.format(&a), EXAMPLE);
        assert_eq!(a.depths, [2, 8, 4]);
        let columns = "num_heads=2,4,4; depth=2,8,4; mlp_ratio=6; base_dim=16";
        assert_eq!(PitSpace.parse(columns).unwrap(), a);
    }

    #[test]
    fn errors_are_precise() {
        let err = |s: &str| PitSpace.parse(s).unwrap_err().to_string();
        let with = |from: &str, to: &str| EXAMPLE.replacen(from, to, 1);
        assert!(err(&with("b=16", "b=20")).contains("base dim 20 is not in the PiT space"));
        assert!(err(&with("mlp=6", "mlp=3")).contains("MLP ratio 3 is not in"));
        assert!(
            err(&with("L=2,8", "L=2,5"))
                .contains("depth 5 of stage 1 is not in the PiT space (4, 6, 8)")
        );
        assert!(err(&with("L=2,8,4", "L=2,8")).contains("2 stage depths"));
        assert!(err(&with("h=2,4,4", "h=2,4,3")).contains("3 heads in stage 2"));
        assert!(
            err(&with("h=2,4,4", "h=4,2,4"))
                .contains("stage 1 has fewer heads (2) than stage 0 (4)")
        );
        assert!(err(&with("b=16;", "")).contains("missing field 'b'"));
        assert!(err(&format!("{EXAMPLE};b=16")).contains("field 'b' given twice"));
        assert!(err(&with("b=16", "x=16")).contains("unknown field 'x'"));
        assert!(err("16").contains("not KEY=VALUE"));
    }

    #[test]
    fn sampled_and_mutated_archs_are_valid_and_one_decision_apart() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..300 {
            let a = PitSpace.sample(&mut rng);
            assert_eq!(PitSpace.parse(&PitSpace.format(&a)).unwrap(), a);
            let m = PitSpace.mutate(&a, &mut rng);
            assert_eq!(PitSpace.parse(&PitSpace.format(&m)).unwrap(), m);
            let changes = usize::from(a.base_dim != m.base_dim)
                + usize::from(a.mlp_ratio != m.mlp_ratio)
                + (0..STAGES)
                    .map(|s| {
                        usize::from(a.depths[s] != m.depths[s])
                            + usize::from(a.heads[s] != m.heads[s])
                    })
                    .sum::<usize>();
            assert_eq!(changes, 1, "{a} -> {m}");
            assert_eq!(PitSpace.flat_features(&m).len(), PitSpace.flat_dim());
            assert_eq!(PitSpace.flat_features(&m).iter().sum::<f32>(), 8.0);
        }
    }

    #[test]
    fn encodings_have_the_documented_shapes() {
        let a = PitSpace.parse(EXAMPLE).unwrap();
        let enc = PitSpace.global_encoding(&a);
        // stem, 2 blocks, pool, 8 blocks, pool, 4 blocks, head
        assert_eq!(enc.cells.len(), 1 + 2 + 1 + 8 + 1 + 4 + 1);
        let name = |cell: usize, node: usize| VOCAB[enc.cells[cell].ops()[node] as usize];
        assert_eq!(name(0, 1), "patch_embed_b16");
        assert_eq!(
            (name(1, 0), name(1, 2), name(1, 5)),
            ("tokens_b16", "attn_h2", "mlp_6")
        );
        assert_eq!(
            (name(3, 0), name(3, 1)),
            ("stage_depth_2", "pool_dwconv_s2")
        );
        assert_eq!(name(4, 2), "attn_h4");
        assert_eq!((name(17, 0), name(17, 3)), ("stage_depth_4", "head_linear"));
        let single = PitSpace.cell_graph(&a);
        assert_eq!(single.num_nodes(), 3 + 14 * 8 + 3 + 3 + 5);
    }

    #[test]
    fn every_embedded_row_round_trips_and_is_distinct() {
        let table = crate::data::Table::load("pit").unwrap();
        let mut seen = std::collections::HashSet::new();
        for text in table.column("arch").unwrap() {
            let arch = PitSpace.parse(text).unwrap();
            assert_eq!(PitSpace.format(&arch), text);
            assert!(seen.insert(arch), "duplicate {text}");
        }
        assert_eq!(seen.len(), 100);
    }

    /// The vocabulary names a weighted proxy layer may be generated from.
    fn allowed_node_types(layer: &Layer) -> &'static [&'static str] {
        match layer {
            Layer::PatchEmbed { .. } => &[
                "patch_embed_b16",
                "patch_embed_b24",
                "patch_embed_b32",
                "patch_embed_b40",
            ],
            Layer::Conv { kernel: 1, .. } => &[
                "attn_h2", "attn_h4", "attn_h8", "add", "mlp_2", "mlp_4", "mlp_6", "mlp_8",
            ],
            Layer::Conv { kernel: 3, .. } => &["pool_dwconv_s2"],
            Layer::Linear { .. } => &["head_linear"],
            _ => &[],
        }
    }

    #[test]
    fn proxy_networks_run_from_their_own_nodes() {
        let table = crate::data::Table::load("pit").unwrap();
        for text in table.column("arch").unwrap().into_iter().step_by(10) {
            let arch = PitSpace.parse(text).unwrap();
            let program = PitSpace
                .proxy_program(&arch, &ProxyConfig::default())
                .unwrap();
            let global = PitSpace.global_encoding(&arch);
            crate::target::testing::check_program(
                &program,
                &global,
                VOCAB,
                allowed_node_types,
                16,
                text,
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,60}") {
            let _ = PitSpace.parse(&s);
        }
    }
}
