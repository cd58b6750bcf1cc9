//! What the MBConv (inverted-residual) spaces share: one block's graph, the network as a
//! sequence of block graphs (the global encoding), all searched blocks as one graph (the
//! single-cell encoding), and the reduced candidate network for the hypernetwork task.
//!
//! An MBConv block is `[expand 1x1] -> depthwise kxk -> [squeeze-excite] -> project 1x1
//! [+ input]`; the spaces (`ofa_mbv3`, `mbconv`) only say which blocks their network has.

use rand::{Rng, RngCore};

use crate::encoding::{CellGraph, GlobalEncoding};
use crate::target::{CLASSES, Layer, ProxyConfig, ProxyProgram, Slot};

/// Node types of every MBConv graph, both spaces alike: block nodes first, then the fixed
/// blocks of the skeletons. Kernel size and expansion ratio are node types (`dw5`,
/// `expand6`), so the GCN sees them as operations, as it sees NB201's convolutions.
pub const VOCAB: &[&str] = &[
    "input",
    "output",
    "expand3",
    "expand4",
    "expand6",
    "dw3",
    "dw5",
    "dw7",
    "se",
    "project",
    "add",
    "stem_conv3x3_s2",
    "head_conv1x1",
    "head_global_avgpool",
    "head_feature_mix_conv1x1",
    "head_linear",
];
const INPUT: u16 = 0;
const OUTPUT: u16 = 1;
const SE: u16 = 8;
const PROJECT: u16 = 9;
const ADD: u16 = 10;
const STEM: u16 = 11;
const HEAD_CONV: u16 = 12;
const HEAD_GAP: u16 = 13;
const HEAD_MIX: u16 = 14;
const HEAD_LINEAR: u16 = 15;

/// Expansion ratios with an expand conv (ratio 1 has none) and depthwise kernels, in
/// vocabulary order.
pub const EXPAND_RATIOS: [usize; 3] = [3, 4, 6];
pub const KERNELS: [usize; 3] = [3, 5, 7];

fn expand_type(ratio: usize) -> u16 {
    let i = EXPAND_RATIOS
        .iter()
        .position(|&r| r == ratio)
        .unwrap_or_else(|| panic!("no node type for expansion ratio {ratio}"));
    2 + i as u16
}

fn dw_type(kernel: usize) -> u16 {
    let i = KERNELS
        .iter()
        .position(|&k| k == kernel)
        .unwrap_or_else(|| panic!("no node type for kernel {kernel}"));
    5 + i as u16
}

/// A uniformly drawn choice.
pub fn pick(rng: &mut dyn RngCore, choices: &[u8]) -> u8 {
    choices[rng.random_range(0..choices.len())]
}

/// A uniformly drawn choice other than `current` (a mutation must change the decision).
pub fn pick_other(rng: &mut dyn RngCore, choices: &[u8], current: u8) -> u8 {
    let others: Vec<u8> = choices.iter().copied().filter(|&c| c != current).collect();
    pick(rng, &others)
}

/// One MBConv block with its real (full-size) channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbBlock {
    pub kernel: usize,
    /// 1 means no expand conv (the depthwise conv runs on the input's channels).
    pub expand: usize,
    pub se: bool,
    pub stride: usize,
    pub c_in: usize,
    pub c_out: usize,
}

impl MbBlock {
    /// The identity shortcut of MobileNetV2/V3 and EfficientNet: only where shapes match.
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.c_in == self.c_out
    }
}

/// The fixed parts of an MBConv network around its blocks, with real channel counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skeleton {
    /// Output channels of the 3x3 stride-2 stem conv.
    pub stem: usize,
    /// Output channels of the final 1x1 expand conv before global pooling.
    pub head: usize,
    /// Width of the 1x1 "feature mix" conv after pooling (MobileNetV3), if any.
    pub feature_mix: Option<usize>,
}

/// Where a block's nodes landed in a graph (indices into that graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockNodes {
    pub expand: Option<usize>,
    pub dw: usize,
    pub se: Option<usize>,
    pub project: usize,
    pub add: Option<usize>,
}

impl BlockNodes {
    /// The node carrying the block's output.
    pub fn last(&self) -> usize {
        self.add.unwrap_or(self.project)
    }
}

/// Nodes and forward edges, appended in topological order.
#[derive(Debug, Default)]
struct GraphBuilder {
    ops: Vec<u16>,
    edges: Vec<(usize, usize)>,
}

impl GraphBuilder {
    fn push(&mut self, op: u16, inputs: &[usize]) -> usize {
        let node = self.ops.len();
        self.ops.push(op);
        self.edges.extend(inputs.iter().map(|&i| (i, node)));
        node
    }

    /// Append `block` reading node `input`. Squeeze-excite reads the depthwise output and
    /// rescales it, so the projection reads both; the shortcut adds the block input.
    fn block(&mut self, block: &MbBlock, input: usize) -> BlockNodes {
        let expand = (block.expand > 1).then(|| self.push(expand_type(block.expand), &[input]));
        let dw = self.push(dw_type(block.kernel), &[expand.unwrap_or(input)]);
        let se = block.se.then(|| self.push(SE, &[dw]));
        let project = match se {
            Some(se) => self.push(PROJECT, &[dw, se]),
            None => self.push(PROJECT, &[dw]),
        };
        let add = block.residual().then(|| self.push(ADD, &[project, input]));
        BlockNodes {
            expand,
            dw,
            se,
            project,
            add,
        }
    }

    fn finish(self) -> CellGraph {
        CellGraph::new(self.ops, &self.edges)
    }
}

/// One block as a cell: `input`, its nodes, `output`.
pub fn block_cell(block: &MbBlock) -> (CellGraph, BlockNodes) {
    let mut g = GraphBuilder::default();
    let input = g.push(INPUT, &[]);
    let nodes = g.block(block, input);
    g.push(OUTPUT, &[nodes.last()]);
    (g.finish(), nodes)
}

/// All `blocks` as one graph: `input`, each block's nodes reading the previous block's last
/// node, `output`. What the single-cell (NP) baseline sees of an MBConv network.
pub fn chained_blocks(blocks: &[MbBlock]) -> CellGraph {
    let mut g = GraphBuilder::default();
    let mut x = g.push(INPUT, &[]);
    for block in blocks {
        x = g.block(block, x).last();
    }
    g.push(OUTPUT, &[x]);
    g.finish()
}

fn head_ops(skeleton: &Skeleton) -> Vec<u16> {
    let mut ops = vec![INPUT, HEAD_CONV, HEAD_GAP];
    ops.extend(skeleton.feature_mix.map(|_| HEAD_MIX));
    ops.extend([HEAD_LINEAR, OUTPUT]);
    ops
}

/// The network as cells: the stem, one cell per block (fixed and searched, in order), the
/// head (final 1x1 conv, global pooling, [feature mix], classifier).
pub fn global_encoding(skeleton: &Skeleton, blocks: &[MbBlock]) -> GlobalEncoding {
    let mut cells = vec![CellGraph::chain(vec![INPUT, STEM, OUTPUT])];
    cells.extend(blocks.iter().map(|b| block_cell(b).0));
    cells.push(CellGraph::chain(head_ops(skeleton)));
    GlobalEncoding { cells }
}

/// Real channels per proxy channel at `--proxy-width` 1: at the default width 8 a proxy
/// layer has a quarter of the real layer's channels. Half (real x width / 16) made an aux
/// step on OFA 141 ms on one core (depthwise convs cost per channel), a quarter 75 ms.
const PROXY_DIVISOR: usize = 32;

/// Channels of a proxy layer with `real` channels in the real network.
fn proxy_channels(real: usize, config: &ProxyConfig) -> usize {
    (real * config.width).div_ceil(PROXY_DIVISOR).max(2)
}

/// The candidate network at proxy size, with its layers generated from the nodes of
/// [`global_encoding`]: conv3x3-BN stem (stride 1: the images are 16x16, not 224x224), every
/// layer with `real x width / 32` channels (expanded channels = scaled input x ratio),
/// strides as in the real network until the map is 2x2 (then 1), final conv1x1-BN, global
/// pooling, linear classifier. Simplifications: every activation is ReLU (no h-swish /
/// swish), squeeze-excite is left out (its node still shapes the GCN features the
/// projection is generated from) and so is the feature-mix conv. A block is ReLU-free at
/// its output, as in MobileNetV2/V3: the expand conv reads a linear bottleneck, the
/// depthwise and projection convs take a ReLU before them.
pub fn proxy_program(
    skeleton: &Skeleton,
    blocks: &[MbBlock],
    config: &ProxyConfig,
) -> ProxyProgram {
    let mut p = ProxyProgram::default();
    let image = p.push(Layer::Image, vec![], None);
    let stem_c = proxy_channels(skeleton.stem, config);
    let stem = p.push(
        Layer::conv_norm(3, 1, 3, stem_c),
        vec![image],
        Some(Slot { cell: 0, node: 1 }),
    );
    let mut x = p.push(Layer::Relu, vec![stem], None);
    let mut c = stem_c;
    let mut size = config.image_size;
    for (i, block) in blocks.iter().enumerate() {
        let cell = i + 1;
        let stride = if size > 2 { block.stride } else { 1 };
        size = size.div_ceil(stride);
        let c_out = proxy_channels(block.c_out, config);
        x = push_proxy_block(&mut p, block, cell, x, c, c_out, stride);
        c = c_out;
    }
    let head_cell = blocks.len() + 1;
    let head_c = proxy_channels(skeleton.head, config);
    let head = p.push(
        Layer::conv_norm(1, 1, c, head_c),
        vec![x],
        Some(Slot {
            cell: head_cell,
            node: 1,
        }),
    );
    let head = p.push(Layer::Relu, vec![head], None);
    let pooled = p.push(Layer::GlobalAvgPool, vec![head], None);
    let linear_node = head_ops(skeleton).len() - 2;
    p.push(
        Layer::Linear {
            c_in: head_c,
            c_out: CLASSES,
        },
        vec![pooled],
        Some(Slot {
            cell: head_cell,
            node: linear_node,
        }),
    );
    p
}

/// One block at proxy size on `x` (`c_in` channels); returns the output node.
fn push_proxy_block(
    p: &mut ProxyProgram,
    block: &MbBlock,
    cell: usize,
    x: usize,
    c_in: usize,
    c_out: usize,
    stride: usize,
) -> usize {
    let (_, nodes) = block_cell(block);
    let slot = |node| Some(Slot { cell, node });
    let mid = c_in * block.expand;
    let (dw_input, relu_before_dw) = match nodes.expand {
        Some(e) => (
            p.push(Layer::conv_norm(1, 1, c_in, mid), vec![x], slot(e)),
            true,
        ),
        None => (x, false),
    };
    let dw = Layer::conv_norm(block.kernel, stride, mid, mid)
        .with_relu_norm(relu_before_dw, true)
        .depthwise(1);
    let dw = p.push(dw, vec![dw_input], slot(nodes.dw));
    let project = p.push(
        Layer::relu_conv_norm(1, 1, mid, c_out),
        vec![dw],
        slot(nodes.project),
    );
    if block.residual() {
        // real shapes match, so the scaled ones do (and a real stride 1 stays 1)
        debug_assert!(stride == 1 && c_in == c_out);
        p.push(Layer::Identity, vec![project, x], None)
    } else {
        project
    }
}

/// Checks both MBConv spaces run on their architectures.
#[cfg(test)]
pub(super) mod testing {
    use super::*;
    use crate::space::SearchSpace;
    use crate::target::testing::check_program;

    /// The vocabulary names a weighted proxy layer may be generated from.
    fn allowed_node_types(layer: &Layer) -> &'static [&'static str] {
        match layer {
            Layer::Conv {
                kernel: 3,
                groups: 1,
                ..
            } => &["stem_conv3x3_s2"],
            Layer::Conv { kernel: 3, .. } => &["dw3"],
            Layer::Conv { kernel: 5, .. } => &["dw5"],
            Layer::Conv { kernel: 7, .. } => &["dw7"],
            Layer::Conv { kernel: 1, .. } => {
                &["expand3", "expand4", "expand6", "project", "head_conv1x1"]
            }
            Layer::Linear { .. } => &["head_linear"],
            _ => &[],
        }
    }

    /// Every proxy network runs on 16 px images, each weighted layer generated from a node of
    /// its own kind.
    pub fn check_proxies<S: SearchSpace>(space: &S, archs: &[S::Arch]) {
        for arch in archs {
            let program = space
                .proxy_program(arch, &ProxyConfig::default())
                .expect("MBConv spaces build candidate networks");
            let global = space.global_encoding(arch);
            let label = space.format(arch);
            check_program(&program, &global, VOCAB, allowed_node_types, 16, &label);
        }
    }

    /// Every row of embedded table `name` parses, prints as written (the tables hold the
    /// canonical form), parses back equal, and no two rows are the same architecture.
    pub fn check_embedded_rows<S: SearchSpace>(space: &S, name: &str, rows: usize) {
        let table = crate::data::Table::load(name).unwrap();
        let mut seen = std::collections::HashSet::new();
        for text in table.column("arch").unwrap() {
            let arch = space.parse(text).unwrap();
            assert_eq!(&space.format(&arch), text);
            assert_eq!(space.parse(&space.format(&arch)).unwrap(), arch);
            assert!(seen.insert(space.identity(&arch)), "duplicate {text}");
        }
        assert_eq!(seen.len(), rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(kernel: usize, expand: usize, se: bool, stride: usize, c: (usize, usize)) -> MbBlock {
        MbBlock {
            kernel,
            expand,
            se,
            stride,
            c_in: c.0,
            c_out: c.1,
        }
    }

    #[test]
    fn block_cells_have_the_documented_nodes() {
        let (full, n) = block_cell(&block(5, 6, true, 1, (40, 40)));
        let names: Vec<&str> = full.ops().iter().map(|&o| VOCAB[o as usize]).collect();
        assert_eq!(
            names,
            ["input", "expand6", "dw5", "se", "project", "add", "output"]
        );
        // shortcut input -> add, SE rescales the depthwise output
        assert!(full.has_edge(0, 5) && full.has_edge(2, 4) && full.has_edge(3, 4));
        assert_eq!(n.last(), 5);
        let (lean, n) = block_cell(&block(3, 1, false, 2, (16, 24)));
        let names: Vec<&str> = lean.ops().iter().map(|&o| VOCAB[o as usize]).collect();
        assert_eq!(names, ["input", "dw3", "project", "output"]);
        assert_eq!((n.expand, n.add), (None, None));
    }

    #[test]
    fn chained_blocks_share_their_joints() {
        let blocks = [
            block(3, 4, false, 2, (16, 24)),
            block(7, 3, false, 1, (24, 24)),
        ];
        let g = chained_blocks(&blocks);
        // input, (expand4, dw3, project), (expand3, dw7, project, add), output
        assert_eq!(g.num_nodes(), 1 + 3 + 4 + 1);
        // the second block's shortcut starts at the first block's projection
        assert!(g.has_edge(3, 7));
    }
}
