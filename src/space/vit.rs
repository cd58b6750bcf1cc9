//! AutoFormer's ViT space: a vision transformer whose embedding dimension, depth, and per-layer
//! head count and MLP ratio are searched (Chen et al., *AutoFormer: Searching Transformers for
//! Visual Recognition*, ICCV 2021). The value ranges are a parameter ([`VitRanges`]):
//! AutoFormer-Tiny, the space the embedded Auto-Prox table samples, by default, and the Small
//! and Base spaces of the paper.
//!
//! Canonical form: `d=192;L=12;mlp=3.5,4.0,...;h=4,4,3,...`, the embedding dimension, the
//! depth, then the MLP ratio and the head count of every layer (first layer first; ratios with
//! one decimal). The fields may come in any order and the keys may be spelled as the data's
//! columns (`embed_dim`, `depth`, `mlp_ratio`, `num_heads`). AutoFormer's own config dict is
//! accepted as JSON: `{"embed_dim": 192 or [192, ...], "layer_num" or "depth": 12,
//! "mlp_ratio": [...], "num_heads": [...]}`.

use std::fmt;

use rand::{Rng, RngCore};
use serde::Deserialize;

use super::{ArchError, SearchSpace};
use crate::encoding::{CellGraph, GlobalEncoding};
use crate::target::{CLASSES, Layer, ProxyConfig, ProxyProgram, Slot};

/// An MLP ratio (hidden width / embedding width) in tenths, so that it can be hashed and
/// compared exactly: 3.5 is `MlpRatio(35)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MlpRatio(pub u8);

impl MlpRatio {
    pub fn value(self) -> f64 {
        f64::from(self.0) / 10.0
    }

    /// A ratio given as a number; only multiples of 0.1 exist in the spaces.
    fn from_f64(x: f64) -> Option<Self> {
        let tenths = (x * 10.0).round();
        ((x * 10.0 - tenths).abs() < 1e-6 && (1.0..=255.0).contains(&tenths))
            .then_some(MlpRatio(tenths as u8))
    }

    fn parse(text: &str) -> Option<Self> {
        text.trim().parse::<f64>().ok().and_then(Self::from_f64)
    }
}

/// One decimal, as the data writes it: `3.5`, `4.0`.
impl fmt::Display for MlpRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

/// The values each decision of an AutoFormer space may take (the paper's Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VitRanges {
    /// For messages and the space name (`AutoFormer-Tiny`).
    pub label: &'static str,
    embed_dims: &'static [usize],
    min_depth: usize,
    max_depth: usize,
    mlp_ratios: &'static [MlpRatio],
    heads: &'static [usize],
}

impl VitRanges {
    /// AutoFormer-Tiny: embedding 192-240 (step 24), 12-14 layers, MLP ratio 3.5 / 4.0, 3 or 4
    /// heads. The space of the embedded Auto-Prox table.
    pub const TINY: VitRanges = VitRanges {
        label: "AutoFormer-Tiny",
        embed_dims: &[192, 216, 240],
        min_depth: 12,
        max_depth: 14,
        mlp_ratios: &[MlpRatio(35), MlpRatio(40)],
        heads: &[3, 4],
    };

    /// AutoFormer-Small: embedding 320-448 (step 64), 12-14 layers, MLP ratio 3.0-4.0 (step
    /// 0.5), 5-7 heads.
    pub const SMALL: VitRanges = VitRanges {
        label: "AutoFormer-Small",
        embed_dims: &[320, 384, 448],
        min_depth: 12,
        max_depth: 14,
        mlp_ratios: &[MlpRatio(30), MlpRatio(35), MlpRatio(40)],
        heads: &[5, 6, 7],
    };

    /// AutoFormer-Base: embedding 528-624 (step 48), 14-16 layers, MLP ratio 3.0-4.0 (step
    /// 0.5), 8-10 heads.
    pub const BASE: VitRanges = VitRanges {
        label: "AutoFormer-Base",
        embed_dims: &[528, 576, 624],
        min_depth: 14,
        max_depth: 16,
        mlp_ratios: &[MlpRatio(30), MlpRatio(35), MlpRatio(40)],
        heads: &[8, 9, 10],
    };

    pub fn embed_dims(&self) -> &'static [usize] {
        self.embed_dims
    }

    pub fn depths(&self) -> std::ops::RangeInclusive<usize> {
        self.min_depth..=self.max_depth
    }

    pub fn mlp_ratios(&self) -> &'static [MlpRatio] {
        self.mlp_ratios
    }

    pub fn heads(&self) -> &'static [usize] {
        self.heads
    }

    fn depth_count(&self) -> usize {
        self.max_depth - self.min_depth + 1
    }
}

impl Default for VitRanges {
    fn default() -> Self {
        Self::TINY
    }
}

/// One transformer block's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VitLayer {
    pub heads: usize,
    pub mlp_ratio: MlpRatio,
}

/// An AutoFormer sub-network: the embedding dimension shared by all blocks and the blocks in
/// order (depth = `layers.len()`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VitArch {
    pub embed_dim: usize,
    pub layers: Vec<VitLayer>,
}

impl VitArch {
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Check every value against `ranges`; lists must have one entry per layer.
    fn new(
        ranges: &VitRanges,
        embed_dim: usize,
        depth: usize,
        mlp_ratios: &[MlpRatio],
        heads: &[usize],
    ) -> Result<Self, ArchError> {
        let label = ranges.label;
        if !ranges.embed_dims.contains(&embed_dim) {
            return Err(ArchError::new(format!(
                "embed dim {embed_dim} is not in the {label} space ({})",
                list(ranges.embed_dims)
            )));
        }
        if !ranges.depths().contains(&depth) {
            return Err(ArchError::new(format!(
                "depth {depth} is not in the {label} space ({}-{})",
                ranges.min_depth, ranges.max_depth
            )));
        }
        for (what, len) in [
            ("MLP ratios", mlp_ratios.len()),
            ("head counts", heads.len()),
        ] {
            if len != depth {
                return Err(ArchError::new(format!(
                    "{len} {what} for depth {depth}: give one per layer"
                )));
            }
        }
        let mut layers = Vec::with_capacity(depth);
        for (i, (&mlp_ratio, &h)) in mlp_ratios.iter().zip(heads).enumerate() {
            if !ranges.mlp_ratios.contains(&mlp_ratio) {
                return Err(ArchError::new(format!(
                    "MLP ratio {mlp_ratio} of layer {i} is not in the {label} space ({})",
                    list(ranges.mlp_ratios)
                )));
            }
            if !ranges.heads.contains(&h) {
                return Err(ArchError::new(format!(
                    "{h} heads in layer {i} is not in the {label} space ({})",
                    list(ranges.heads)
                )));
            }
            layers.push(VitLayer {
                heads: h,
                mlp_ratio,
            });
        }
        Ok(Self { embed_dim, layers })
    }
}

pub(super) fn list<T: fmt::Display>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `d=192;L=12;mlp=3.5,4.0,...;h=4,4,3,...`.
impl fmt::Display for VitArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mlp: Vec<MlpRatio> = self.layers.iter().map(|l| l.mlp_ratio).collect();
        let heads: Vec<usize> = self.layers.iter().map(|l| l.heads).collect();
        write!(
            f,
            "d={};L={};mlp={};h={}",
            self.embed_dim,
            self.depth(),
            mlp.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            list(&heads).replace(", ", ",")
        )
    }
}

/// The four fields of an architecture as written, before range checks.
#[derive(Default)]
struct Fields {
    embed_dim: Option<usize>,
    depth: Option<usize>,
    mlp_ratios: Option<Vec<MlpRatio>>,
    heads: Option<Vec<usize>>,
}

impl Fields {
    fn finish(self, ranges: &VitRanges) -> Result<VitArch, ArchError> {
        let missing = |key: &str| {
            ArchError::new(format!(
                "missing field '{key}' (expected d=EMBED;L=DEPTH;mlp=R,R,...;h=H,H,...)"
            ))
        };
        let mlp = self.mlp_ratios.ok_or_else(|| missing("mlp"))?;
        let heads = self.heads.ok_or_else(|| missing("h"))?;
        // the depth is implied by the lists when a form leaves it out
        let depth = self.depth.unwrap_or(mlp.len());
        VitArch::new(
            ranges,
            self.embed_dim.ok_or_else(|| missing("d"))?,
            depth,
            &mlp,
            &heads,
        )
    }
}

pub(super) fn parse_count(key: &str, text: &str) -> Result<usize, ArchError> {
    text.trim().parse().map_err(|_| {
        ArchError::new(format!(
            "'{key}' value '{}' is not a whole number",
            text.trim()
        ))
    })
}

/// The `KEY=VALUE` items of a `;`-separated string, keys trimmed; `expected` shows the form in
/// the error for an item without `=`.
pub(super) fn key_values<'a>(
    text: &'a str,
    expected: &str,
) -> Result<Vec<(&'a str, &'a str)>, ArchError> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim(), v))
                .ok_or_else(|| {
                    ArchError::new(format!("'{item}' is not KEY=VALUE (expected {expected})"))
                })
        })
        .collect()
}

fn parse_key_values(text: &str, ranges: &VitRanges) -> Result<VitArch, ArchError> {
    let mut fields = Fields::default();
    for (key, value) in key_values(text, "d=EMBED;L=DEPTH;mlp=R,R,...;h=H,H,...")? {
        let duplicate = || ArchError::new(format!("field '{key}' given twice"));
        match key {
            "d" | "embed_dim" => {
                if fields.embed_dim.replace(parse_count(key, value)?).is_some() {
                    return Err(duplicate());
                }
            }
            "L" | "depth" => {
                if fields.depth.replace(parse_count(key, value)?).is_some() {
                    return Err(duplicate());
                }
            }
            "mlp" | "mlp_ratio" => {
                let ratios = value
                    .split(',')
                    .map(|v| {
                        MlpRatio::parse(v).ok_or_else(|| {
                            ArchError::new(format!(
                                "MLP ratio '{}' is not a number with at most one decimal",
                                v.trim()
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if fields.mlp_ratios.replace(ratios).is_some() {
                    return Err(duplicate());
                }
            }
            "h" | "num_heads" => {
                let heads = value
                    .split(',')
                    .map(|v| parse_count(key, v))
                    .collect::<Result<Vec<_>, _>>()?;
                if fields.heads.replace(heads).is_some() {
                    return Err(duplicate());
                }
            }
            other => {
                return Err(ArchError::new(format!(
                    "unknown field '{other}' (known: d, L, mlp, h)"
                )));
            }
        }
    }
    fields.finish(ranges)
}

/// A number or a list of numbers (AutoFormer's configs repeat `embed_dim` per layer).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(f64),
    Many(Vec<f64>),
}

impl OneOrMany {
    fn values(self) -> Vec<f64> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

/// AutoFormer's sub-network config dict.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonConfig {
    embed_dim: OneOrMany,
    #[serde(alias = "layer_num")]
    depth: Option<usize>,
    mlp_ratio: Vec<f64>,
    num_heads: Vec<f64>,
}

fn parse_json(text: &str, ranges: &VitRanges) -> Result<VitArch, ArchError> {
    let config: JsonConfig = serde_json::from_str(text)
        .map_err(|e| ArchError::new(format!("bad ViT JSON config: {e}")))?;
    let dims = config.embed_dim.values();
    let embed_dim = match dims.as_slice() {
        [first, rest @ ..] if rest.iter().all(|d| d == first) => *first,
        [] => return Err(ArchError::new("'embed_dim' is an empty list")),
        _ => {
            return Err(ArchError::new(
                "'embed_dim' differs between layers; AutoFormer shares one embedding dimension",
            ));
        }
    };
    let whole = |key: &str, v: f64| {
        if v.fract() == 0.0 && v >= 0.0 {
            Ok(v as usize)
        } else {
            Err(ArchError::new(format!(
                "'{key}' value {v} is not a whole number"
            )))
        }
    };
    let mlp_ratios = config
        .mlp_ratio
        .iter()
        .map(|&v| {
            MlpRatio::from_f64(v).ok_or_else(|| {
                ArchError::new(format!(
                    "MLP ratio {v} is not a number with at most one decimal"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let heads = config
        .num_heads
        .iter()
        .map(|&v| whole("num_heads", v))
        .collect::<Result<Vec<_>, _>>()?;
    Fields {
        embed_dim: Some(whole("embed_dim", embed_dim)?),
        depth: config.depth,
        mlp_ratios: Some(mlp_ratios),
        heads: Some(heads),
    }
    .finish(ranges)
}

// Node vocabulary: the block's own nodes, then one type per value of each decision over all
// three preset spaces (so a model file stays readable whichever preset trained it), then the
// fixed blocks of the skeleton.
const VOCAB: &[&str] = &[
    "input",
    "output",
    "layernorm",
    "add",
    "head_token_pool",
    "head_linear",
    "attn_h3",
    "attn_h4",
    "attn_h5",
    "attn_h6",
    "attn_h7",
    "attn_h8",
    "attn_h9",
    "attn_h10",
    "mlp_3.0",
    "mlp_3.5",
    "mlp_4.0",
    "patch_embed_d192",
    "patch_embed_d216",
    "patch_embed_d240",
    "patch_embed_d320",
    "patch_embed_d384",
    "patch_embed_d448",
    "patch_embed_d528",
    "patch_embed_d576",
    "patch_embed_d624",
    "tokens_d192",
    "tokens_d216",
    "tokens_d240",
    "tokens_d320",
    "tokens_d384",
    "tokens_d448",
    "tokens_d528",
    "tokens_d576",
    "tokens_d624",
    "depth_12",
    "depth_13",
    "depth_14",
    "depth_15",
    "depth_16",
];
const INPUT: u16 = 0;
const OUTPUT: u16 = 1;
const LAYERNORM: u16 = 2;
const ADD: u16 = 3;
const HEAD_POOL: u16 = 4;
const HEAD_LINEAR: u16 = 5;

/// The vocabulary index of a node type built from a decision's value. Every preset's values
/// are in [`VOCAB`] (a test checks it), and a [`VitSpace`] only holds presets.
fn node_type(name: &str) -> u16 {
    type_index(VOCAB, name)
}

/// The index of `name` in `vocab`; the spaces build node-type names from values they have
/// validated, so a missing name is a bug in the vocabulary.
pub(super) fn type_index(vocab: &[&str], name: &str) -> u16 {
    vocab
        .iter()
        .position(|&v| v == name)
        .unwrap_or_else(|| panic!("node type '{name}' missing from the vocabulary")) as u16
}

/// Side of the proxy network's patches: 4x4 patches of a 16x16 image are 16 tokens.
const PATCH: usize = 4;

/// Positions of a block graph's nodes (see [`VitSpace::block_graph`]).
mod block {
    #[cfg(test)]
    pub const TOKENS: usize = 0;
    pub const ATTN: usize = 2;
    pub const ATTN_ADD: usize = 3;
    pub const MLP: usize = 5;
    pub const MLP_ADD: usize = 6;
}

/// Node types of a transformer block, indices into a space's vocabulary.
pub(super) struct BlockTypes {
    pub tokens: u16,
    pub layernorm: u16,
    pub attn: u16,
    pub add: u16,
    pub mlp: u16,
    pub output: u16,
}

/// One transformer block, pre-norm as in ViT / AutoFormer / PiT: tokens -> layernorm ->
/// attention -> add (the residual from the tokens) -> layernorm -> MLP -> add (the residual
/// from the first add) -> output; node positions as in [`block`].
pub(super) fn transformer_block(t: BlockTypes) -> CellGraph {
    let ops = vec![
        t.tokens,
        t.layernorm,
        t.attn,
        t.add,
        t.layernorm,
        t.mlp,
        t.add,
        t.output,
    ];
    let edges = [
        (0, 1),
        (1, 2),
        (2, 3),
        (0, 3),
        (3, 4),
        (4, 5),
        (5, 6),
        (3, 6),
        (6, 7),
    ];
    CellGraph::new(ops, &edges)
}

/// Graphs joined into one, each one's last node feeding the next one's first (a network
/// without a repeated cell seen by NP as one graph).
pub(super) fn chain_graphs(parts: &[CellGraph]) -> CellGraph {
    let mut ops = Vec::new();
    let mut edges = Vec::new();
    for part in parts {
        let offset = ops.len();
        if offset > 0 {
            edges.push((offset - 1, offset));
        }
        let n = part.num_nodes();
        for i in 0..n {
            for j in i + 1..n {
                if part.has_edge(i, j) {
                    edges.push((offset + i, offset + j));
                }
            }
        }
        ops.extend_from_slice(part.ops());
    }
    CellGraph::new(ops, &edges)
}

/// One transformer block of a proxy network, generated from the block graph at `cell`.
pub(super) struct ProxyBlock {
    pub cell: usize,
    /// Token width.
    pub dim: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// MLP hidden width.
    pub hidden: usize,
}

impl ProxyBlock {
    /// Append the block after node `x`, pre-norm: layernorm, 1x1 `qkv`, attention, 1x1 output
    /// projection added to `x`; layernorm, 1x1 expansion, GELU, 1x1 projection back added.
    /// Weights come from the node each map computes: `qkv` from the attention node, the output
    /// projection from the add node it writes into, the expansion from the MLP node, the
    /// projection back from the second add node. Returns the block's output node.
    pub fn push(&self, p: &mut ProxyProgram, x: usize) -> usize {
        let slot = |node| {
            Some(Slot {
                cell: self.cell,
                node,
            })
        };
        let linear = |c_in, c_out| Layer::conv_norm(1, 1, c_in, c_out).with_relu_norm(false, false);
        let (dim, inner) = (self.dim, self.heads * self.head_dim);
        let norm = p.push(Layer::LayerNorm, vec![x], None);
        let qkv = p.push(linear(dim, 3 * inner), vec![norm], slot(block::ATTN));
        let heads = Layer::Attention {
            heads: self.heads,
            head_dim: self.head_dim,
        };
        let attended = p.push(heads, vec![qkv], None);
        let proj = p.push(linear(inner, dim), vec![attended], slot(block::ATTN_ADD));
        let x = p.push(Layer::Identity, vec![x, proj], None);
        let norm = p.push(Layer::LayerNorm, vec![x], None);
        let expand = p.push(linear(dim, self.hidden), vec![norm], slot(block::MLP));
        let act = p.push(Layer::Gelu, vec![expand], None);
        let back = p.push(linear(self.hidden, dim), vec![act], slot(block::MLP_ADD));
        p.push(Layer::Identity, vec![x, back], None)
    }
}

/// Layernorm, mean over the tokens, linear classifier generated from node 3 (`head_linear`)
/// of the head graph at `cell`.
pub(super) fn push_proxy_head(p: &mut ProxyProgram, x: usize, dim: usize, cell: usize) -> usize {
    let norm = p.push(Layer::LayerNorm, vec![x], None);
    let pooled = p.push(Layer::GlobalAvgPool, vec![norm], None);
    p.push(
        Layer::Linear {
            c_in: dim,
            c_out: CLASSES,
        },
        vec![pooled],
        Some(Slot { cell, node: 3 }),
    )
}

/// The AutoFormer space over `ranges`.
#[derive(Debug, Clone, Default)]
pub struct VitSpace {
    pub ranges: VitRanges,
}

impl VitSpace {
    pub fn new(ranges: VitRanges) -> Self {
        Self { ranges }
    }

    fn random_layer(&self, rng: &mut dyn RngCore) -> VitLayer {
        let r = &self.ranges;
        VitLayer {
            heads: r.heads[rng.random_range(0..r.heads.len())],
            mlp_ratio: r.mlp_ratios[rng.random_range(0..r.mlp_ratios.len())],
        }
    }

    /// One transformer block (see [`transformer_block`]), its token node typed by the
    /// embedding dimension.
    fn block_graph(embed_dim: usize, layer: &VitLayer) -> CellGraph {
        transformer_block(BlockTypes {
            tokens: node_type(&format!("tokens_d{embed_dim}")),
            layernorm: LAYERNORM,
            attn: node_type(&format!("attn_h{}", layer.heads)),
            add: ADD,
            mlp: node_type(&format!("mlp_{}", layer.mlp_ratio)),
            output: OUTPUT,
        })
    }

    fn stem_graph(embed_dim: usize) -> CellGraph {
        CellGraph::chain(vec![
            INPUT,
            node_type(&format!("patch_embed_d{embed_dim}")),
            OUTPUT,
        ])
    }

    /// The head reads the last block's tokens; its input node is typed by the depth
    /// (`depth_12`...). The depth is otherwise only the number of block graphs, which the
    /// mean pooling over cells hardly sees, yet it is the decision that ranks the embedded
    /// table best (see the README).
    fn head_graph(depth: usize) -> CellGraph {
        CellGraph::chain(vec![
            node_type(&format!("depth_{depth}")),
            LAYERNORM,
            HEAD_POOL,
            HEAD_LINEAR,
            OUTPUT,
        ])
    }

    /// Flat features per layer slot: one-hot heads, one-hot MLP ratio.
    fn per_layer(&self) -> usize {
        self.ranges.heads.len() + self.ranges.mlp_ratios.len()
    }
}

impl SearchSpace for VitSpace {
    type Arch = VitArch;

    fn name(&self) -> &'static str {
        match self.ranges.label {
            "AutoFormer-Small" => "vit-small",
            "AutoFormer-Base" => "vit-base",
            _ => "vit",
        }
    }

    fn parse(&self, text: &str) -> Result<VitArch, ArchError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ArchError::new("empty ViT architecture string"));
        }
        if text.starts_with('{') {
            parse_json(text, &self.ranges)
        } else {
            parse_key_values(text, &self.ranges)
        }
    }

    fn format(&self, arch: &VitArch) -> String {
        arch.to_string()
    }

    /// Every decision uniformly: embedding dimension, depth, then each layer's heads and ratio.
    fn sample(&self, rng: &mut dyn RngCore) -> VitArch {
        let r = &self.ranges;
        let depth = rng.random_range(r.depths());
        VitArch {
            embed_dim: r.embed_dims[rng.random_range(0..r.embed_dims.len())],
            layers: (0..depth).map(|_| self.random_layer(rng)).collect(),
        }
    }

    /// Change one decision to another value: the embedding dimension, the depth (by one: a
    /// random last layer added or the last layer removed), or one layer's heads or MLP ratio.
    fn mutate(&self, arch: &VitArch, rng: &mut dyn RngCore) -> VitArch {
        let r = &self.ranges;
        let other = |values: &[usize], current: usize, rng: &mut dyn RngCore| {
            let rest: Vec<usize> = values.iter().copied().filter(|&v| v != current).collect();
            rest[rng.random_range(0..rest.len())]
        };
        loop {
            let mut next = arch.clone();
            let depth = arch.depth();
            // one draw over the decisions: embed dim, depth, heads of each layer, ratio of each
            match rng.random_range(0..2 + 2 * depth) {
                0 if r.embed_dims.len() > 1 => {
                    next.embed_dim = other(r.embed_dims, arch.embed_dim, rng);
                }
                1 => {
                    let grow = rng.random_bool(0.5);
                    if grow && depth < r.max_depth {
                        next.layers.push(self.random_layer(rng));
                    } else if !grow && depth > r.min_depth {
                        next.layers.pop();
                    }
                }
                k if k >= 2 && k < 2 + depth && r.heads.len() > 1 => {
                    let layer = &mut next.layers[k - 2];
                    layer.heads = other(r.heads, layer.heads, rng);
                }
                k if k >= 2 + depth && r.mlp_ratios.len() > 1 => {
                    let layer = &mut next.layers[k - 2 - depth];
                    let tenths: Vec<usize> = r.mlp_ratios.iter().map(|m| m.0.into()).collect();
                    layer.mlp_ratio = MlpRatio(other(&tenths, layer.mlp_ratio.0.into(), rng) as u8);
                }
                _ => {}
            }
            if next != *arch {
                return next;
            }
        }
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        VOCAB
    }

    /// The whole network as one graph (NP's single-graph view): the stem, the blocks and the
    /// head of [`SearchSpace::global_encoding`] joined output -> input. A ViT has no repeated
    /// searchable cell (every block has its own choices), so the one graph is the chain.
    fn cell_graph(&self, arch: &VitArch) -> CellGraph {
        chain_graphs(&self.global_encoding(arch).cells)
    }

    /// Stem (the patch embedding, typed by the embedding dimension), one graph per block in
    /// order, head (input typed by the depth, layernorm, token pooling, linear). The embedding
    /// dimension is also the type of every block's token node, so each block's graph carries it
    /// and not only the chain through z.
    fn global_encoding(&self, arch: &VitArch) -> GlobalEncoding {
        let mut cells = vec![Self::stem_graph(arch.embed_dim)];
        cells.extend(
            arch.layers
                .iter()
                .map(|layer| Self::block_graph(arch.embed_dim, layer)),
        );
        cells.push(Self::head_graph(arch.depth()));
        GlobalEncoding { cells }
    }

    fn proxy_kernel_sizes(&self) -> Vec<usize> {
        vec![1, PATCH]
    }

    /// A ViT at proxy size on `config.image_size` images: a PATCH x PATCH patch embedding
    /// (16 tokens on 16x16 images, no position embedding: nothing but generated weights
    /// exists), then every block of the architecture, pre-norm: layernorm, a 1x1 `qkv`
    /// projection, multi-head attention with the block's heads of `width / 2` channels each,
    /// a 1x1 output projection added to the tokens; layernorm, a 1x1 expansion by the block's
    /// MLP ratio, GELU, a 1x1 projection back added to the tokens. Then layernorm, mean over
    /// the tokens (not a class token) and the linear classifier. The embedding width is
    /// `embed_dim * width / 96` (16, 18, 20 for Tiny at width 8). Weights come from the node
    /// they compute: the patch embedding from the stem's `patch_embed` node, `qkv` from the
    /// attention node, the output projection from the add node it writes into, the expansion
    /// from the MLP node, the projection back from the second add node, the classifier from
    /// `head_linear`.
    fn proxy_program(&self, arch: &VitArch, config: &ProxyConfig) -> Option<ProxyProgram> {
        let dim = (arch.embed_dim * config.width).div_ceil(96);
        let head_dim = (config.width / 2).max(1);
        let mut p = ProxyProgram::default();
        let image = p.push(Layer::Image, vec![], None);
        let mut x = p.push(
            Layer::PatchEmbed {
                patch: PATCH.min(config.image_size),
                c_in: 3,
                c_out: dim,
            },
            vec![image],
            Some(Slot { cell: 0, node: 1 }),
        );
        for (i, layer) in arch.layers.iter().enumerate() {
            let block = ProxyBlock {
                cell: 1 + i,
                dim,
                heads: layer.heads,
                head_dim,
                hidden: ((dim as f64) * layer.mlp_ratio.value()).round() as usize,
            };
            x = block.push(&mut p, x);
        }
        push_proxy_head(&mut p, x, dim, 1 + arch.depth());
        Some(p)
    }

    /// One-hot embedding dimension, one-hot depth, then per layer slot up to the maximum depth
    /// one-hot heads and one-hot MLP ratio (zeros for slots past the depth).
    fn flat_dim(&self) -> usize {
        let r = &self.ranges;
        r.embed_dims.len() + r.depth_count() + r.max_depth * self.per_layer()
    }

    fn flat_features(&self, arch: &VitArch) -> Vec<f32> {
        let r = &self.ranges;
        let mut f = vec![0.0; self.flat_dim()];
        let one_hot = |values: &[usize], v: usize| values.iter().position(|&x| x == v);
        if let Some(i) = one_hot(r.embed_dims, arch.embed_dim) {
            f[i] = 1.0;
        }
        let base = r.embed_dims.len();
        f[base + arch.depth() - r.min_depth] = 1.0;
        let base = base + r.depth_count();
        for (k, layer) in arch.layers.iter().enumerate() {
            let at = base + k * self.per_layer();
            if let Some(i) = one_hot(r.heads, layer.heads) {
                f[at + i] = 1.0;
            }
            if let Some(i) = r.mlp_ratios.iter().position(|&m| m == layer.mlp_ratio) {
                f[at + r.heads.len() + i] = 1.0;
            }
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
    const EXAMPLE: &str =
        "d=192;L=12;mlp=3.5,4.0,3.5,4.0,3.5,3.5,4.0,3.5,4.0,4.0,4.0,3.5;h=4,4,3,4,3,3,4,4,3,3,3,4";

    #[test]
    fn canonical_column_and_json_forms_agree() {
        let space = VitSpace::default();
        let a = space.parse(EXAMPLE).unwrap();
        assert_eq!(space.format(&a), EXAMPLE);
        assert_eq!((a.embed_dim, a.depth()), (192, 12));
        assert_eq!(a.layers[1].heads, 4);
        assert_eq!(a.layers[1].mlp_ratio, MlpRatio(40));
        // the data's column names, another order, integer ratios, spaces
        let columns = "num_heads=4,4,3,4,3,3,4,4,3,3,3,4; mlp_ratio=3.5,4,3.5,4,3.5,3.5,4,3.5,4,4,4,3.5; depth=12; embed_dim=192";
        assert_eq!(space.parse(columns).unwrap(), a);
        let json = r#"{"embed_dim": [192,192,192,192,192,192,192,192,192,192,192,192], "layer_num": 12,
            "mlp_ratio": [3.5,4.0,3.5,4.0,3.5,3.5,4.0,3.5,4.0,4.0,4.0,3.5],
            "num_heads": [4,4,3,4,3,3,4,4,3,3,3,4]}"#;
        assert_eq!(space.parse(json).unwrap(), a);
        // the depth may be left to the lists
        let no_depth = EXAMPLE.replace("L=12;", "");
        assert_eq!(space.parse(&no_depth).unwrap(), a);
    }

    #[test]
    fn errors_are_precise() {
        let space = VitSpace::default();
        let err = |s: &str| space.parse(s).unwrap_err().to_string();
        let with = |from: &str, to: &str| EXAMPLE.replacen(from, to, 1);
        assert!(
            err(&with("d=192", "d=200"))
                .contains("embed dim 200 is not in the AutoFormer-Tiny space (192, 216, 240)")
        );
        assert!(
            err(&with("L=12", "L=11"))
                .contains("depth 11 is not in the AutoFormer-Tiny space (12-14)")
        );
        assert!(err(&with("L=12", "L=13")).contains("12 MLP ratios for depth 13"));
        assert!(err(&with(";h=4,", ";h=")).contains("11 head counts for depth 12"));
        assert!(
            err(&with("mlp=3.5", "mlp=3.0")).contains(
                "MLP ratio 3.0 of layer 0 is not in the AutoFormer-Tiny space (3.5, 4.0)"
            )
        );
        assert!(err(&with("h=4,4", "h=4,5")).contains("5 heads in layer 1 is not in"));
        assert!(err(&with("mlp=3.5", "mlp=3.55")).contains("'3.55' is not a number"));
        assert!(err(&with("h=4", "h=x")).contains("'h' value 'x' is not a whole number"));
        assert!(err(&with("d=192", "width=192")).contains("unknown field 'width'"));
        assert!(err(&with("d=192;", "")).contains("missing field 'd'"));
        assert!(err(&format!("{EXAMPLE};d=192")).contains("field 'd' given twice"));
        assert!(err("192,12").contains("is not KEY=VALUE"));
        assert!(err("").contains("empty"));
        assert!(
            err(r#"{"embed_dim": [192, 216], "mlp_ratio": [], "num_heads": []}"#)
                .contains("differs between layers")
        );
        assert!(err("{oops").contains("bad ViT JSON config"));
        // the larger spaces have their own ranges
        let small = VitSpace::new(VitRanges::SMALL);
        assert!(
            small
                .parse(EXAMPLE)
                .unwrap_err()
                .to_string()
                .contains("AutoFormer-Small")
        );
    }

    /// Whether `b` differs from `a` in exactly one decision (a depth step adds or removes the
    /// last layer and leaves the others alone).
    fn one_decision_apart(a: &VitArch, b: &VitArch) -> bool {
        let shared = a.depth().min(b.depth());
        let changed_layers = (0..shared)
            .map(|i| {
                usize::from(a.layers[i].heads != b.layers[i].heads)
                    + usize::from(a.layers[i].mlp_ratio != b.layers[i].mlp_ratio)
            })
            .sum::<usize>();
        let changes = usize::from(a.embed_dim != b.embed_dim)
            + usize::from(a.depth() != b.depth())
            + changed_layers;
        changes == 1 && a.depth().abs_diff(b.depth()) <= 1
    }

    #[test]
    fn sampled_and_mutated_archs_are_valid_and_one_decision_apart() {
        for ranges in [VitRanges::TINY, VitRanges::SMALL, VitRanges::BASE] {
            let space = VitSpace::new(ranges);
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let mut depths = std::collections::HashSet::new();
            for _ in 0..200 {
                let a = space.sample(&mut rng);
                assert_eq!(space.parse(&space.format(&a)).unwrap(), a);
                let m = space.mutate(&a, &mut rng);
                assert_eq!(space.parse(&space.format(&m)).unwrap(), m);
                assert!(one_decision_apart(&a, &m), "{a} -> {m}");
                assert_eq!(space.flat_features(&m).len(), space.flat_dim());
                // the global encoding's node types exist for every preset
                space.global_encoding(&m);
                depths.insert(m.depth());
            }
            assert_eq!(depths.len(), 3, "{}", ranges.label);
        }
    }

    #[test]
    fn encodings_have_the_documented_shapes() {
        let space = VitSpace::default();
        let a = space.parse(EXAMPLE).unwrap();
        let enc = space.global_encoding(&a);
        assert_eq!(enc.cells.len(), 12 + 2);
        let vocab = space.node_vocabulary();
        let name = |g: &CellGraph, i: usize| vocab[g.ops()[i] as usize];
        assert_eq!(name(&enc.cells[0], 1), "patch_embed_d192");
        let block = &enc.cells[3];
        assert_eq!((block.num_nodes(), block.num_edges()), (8, 9));
        // layer 2: 3 heads, ratio 3.5
        assert_eq!(name(block, block::TOKENS), "tokens_d192");
        assert_eq!(name(block, block::ATTN), "attn_h3");
        assert_eq!(name(block, block::MLP), "mlp_3.5");
        assert!(block.has_edge(block::TOKENS, block::ATTN_ADD));
        assert!(block.has_edge(block::ATTN_ADD, block::MLP_ADD));
        assert_eq!(name(&enc.cells[13], 0), "depth_12");
        assert_eq!(name(&enc.cells[13], 3), "head_linear");
        let single = space.cell_graph(&a);
        assert_eq!(single.num_nodes(), 3 + 12 * 8 + 5);
        assert_eq!(single.num_edges(), 2 + 12 * 9 + 4 + 13);
        let flat = space.flat_features(&a);
        assert_eq!(flat.len(), 3 + 3 + 14 * 4);
        assert_eq!(flat.iter().sum::<f32>(), 2.0 + 12.0 * 2.0);
    }

    #[test]
    fn every_embedded_row_round_trips_and_is_distinct() {
        let space = VitSpace::default();
        for (name, rows) in [("vit", 200), ("vit-scratch", 100)] {
            let table = crate::data::Table::load(name).unwrap();
            let mut seen = std::collections::HashSet::new();
            for text in table.column("arch").unwrap() {
                let arch = space.parse(text).unwrap();
                assert_eq!(space.format(&arch), text);
                assert_eq!(space.parse(&space.format(&arch)).unwrap(), arch);
                assert!(seen.insert(space.identity(&arch)), "duplicate {text}");
            }
            assert_eq!(seen.len(), rows, "{name}");
            let target = table.resolve_target(None).unwrap();
            assert_eq!(table.target(&target).unwrap().len(), rows);
        }
    }

    /// The vocabulary names a weighted proxy layer may be generated from.
    fn allowed_node_types(layer: &Layer) -> &'static [&'static str] {
        match layer {
            Layer::PatchEmbed { .. } => {
                &["patch_embed_d192", "patch_embed_d216", "patch_embed_d240"]
            }
            Layer::Conv { kernel: 1, .. } => &["attn_h3", "attn_h4", "add", "mlp_3.5", "mlp_4.0"],
            Layer::Linear { .. } => &["head_linear"],
            _ => &[],
        }
    }

    #[test]
    fn proxy_networks_run_from_their_own_nodes() {
        let space = VitSpace::default();
        let table = crate::data::Table::load("vit").unwrap();
        for text in table.column("arch").unwrap().into_iter().step_by(20) {
            let arch = space.parse(text).unwrap();
            let program = space.proxy_program(&arch, &ProxyConfig::default()).unwrap();
            let global = space.global_encoding(&arch);
            crate::target::testing::check_program(
                &program,
                &global,
                VOCAB,
                allowed_node_types,
                16,
                text,
            );
            let attention = program
                .nodes
                .iter()
                .filter(|n| matches!(n.layer, Layer::Attention { .. }))
                .count();
            assert_eq!(attention, arch.depth());
        }
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            let _ = VitSpace::default().parse(&s);
        }

        /// Key-value strings built from arbitrary numbers parse or fail, never panic.
        #[test]
        fn numeric_fields_never_panic(
            d in 0usize..1000,
            depth in 0usize..20,
            mlp in proptest::collection::vec(0.0f64..10.0, 0..20),
            h in proptest::collection::vec(0usize..20, 0..20),
        ) {
            let mlp: Vec<String> = mlp.iter().map(|m| format!("{m:.1}")).collect();
            let h: Vec<String> = h.iter().map(ToString::to_string).collect();
            let text = format!("d={d};L={depth};mlp={};h={}", mlp.join(","), h.join(","));
            if let Ok(arch) = VitSpace::default().parse(&text) {
                proptest::prop_assert_eq!(VitSpace::default().format(&arch), text);
            }
        }
    }
}
