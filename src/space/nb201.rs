//! NAS-Bench-201: a 4-node cell with 6 edges, one of 5 operations on each edge, stacked in the
//! fixed skeleton stem / 5 cells / residual block / 5 cells / residual block / 5 cells / head.

use std::fmt;

use rand::{Rng, RngCore};

use super::{ArchError, SearchSpace, all_choices};
use crate::encoding::{CellGraph, GlobalEncoding};
use crate::target::{CLASSES, Layer, ProxyConfig, ProxyProgram, Slot};

/// The five edge operations, in the benchmark's own index order (the `ops` digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Nb201Op {
    None,
    SkipConnect,
    Conv1x1,
    Conv3x3,
    AvgPool3x3,
}

impl Nb201Op {
    pub const ALL: [Nb201Op; 5] = [
        Nb201Op::None,
        Nb201Op::SkipConnect,
        Nb201Op::Conv1x1,
        Nb201Op::Conv3x3,
        Nb201Op::AvgPool3x3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Nb201Op::None => "none",
            Nb201Op::SkipConnect => "skip_connect",
            Nb201Op::Conv1x1 => "nor_conv_1x1",
            Nb201Op::Conv3x3 => "nor_conv_3x3",
            Nb201Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// Edges in arch-string order: `(to, from)` = 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.
pub const EDGES: [(usize, usize); 6] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];

/// One NAS-Bench-201 cell: the operation on each of the six edges, in [`EDGES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nb201Arch {
    pub ops: [Nb201Op; 6],
}

impl Nb201Arch {
    /// The 6-digit form (`421211`).
    pub fn digits(&self) -> String {
        self.ops
            .iter()
            .map(|op| char::from(b'0' + op.index() as u8))
            .collect()
    }

    fn parse_digits(text: &str) -> Result<Self, ArchError> {
        if text.len() != 6 {
            return Err(ArchError::new(format!(
                "NB201 ops form needs 6 digits 0-4, got {} characters in '{text}'",
                text.len()
            )));
        }
        let mut ops = [Nb201Op::None; 6];
        for (slot, ch) in ops.iter_mut().zip(text.chars()) {
            let d = ch.to_digit(10).filter(|&d| d < 5).ok_or_else(|| {
                ArchError::new(format!("NB201 ops digit '{ch}' in '{text}' is not 0-4"))
            })?;
            *slot = Nb201Op::ALL[d as usize];
        }
        Ok(Self { ops })
    }

    fn parse_official(text: &str) -> Result<Self, ArchError> {
        let groups: Vec<&str> = text.split('+').collect();
        if groups.len() != 3 {
            return Err(ArchError::new(format!(
                "NB201 string needs 3 node groups separated by '+', found {} in '{text}'",
                groups.len()
            )));
        }
        let mut ops = Vec::with_capacity(6);
        for (node, group) in (1..=3).zip(&groups) {
            let inner = group
                .strip_prefix('|')
                .and_then(|g| g.strip_suffix('|'))
                .ok_or_else(|| {
                    ArchError::new(format!(
                        "NB201 node {node} group '{group}' must be '|op~i|...|'"
                    ))
                })?;
            let edges: Vec<&str> = inner.split('|').collect();
            if edges.len() != node {
                return Err(ArchError::new(format!(
                    "NB201 node {node} needs {node} incoming edge(s), found {} in '{group}'",
                    edges.len()
                )));
            }
            for (expected_from, edge) in edges.iter().enumerate() {
                let (name, from) = edge.split_once('~').ok_or_else(|| {
                    ArchError::new(format!("NB201 edge '{edge}' must be 'op~input'"))
                })?;
                let op = Nb201Op::from_name(name).ok_or_else(|| {
                    ArchError::new(format!(
                        "unknown NB201 operation '{name}' (known: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3)"
                    ))
                })?;
                let from: usize = from.parse().map_err(|_| {
                    ArchError::new(format!(
                        "NB201 edge '{edge}' has a bad input node index '{from}'"
                    ))
                })?;
                if from != expected_from {
                    return Err(ArchError::new(format!(
                        "NB201 edge '{edge}' into node {node}: input node must be {expected_from}, got {from}"
                    )));
                }
                ops.push(op);
            }
        }
        let ops: [Nb201Op; 6] = ops.try_into().expect("three groups of 1, 2, 3 edges");
        Ok(Self { ops })
    }
}

impl fmt::Display for Nb201Arch {
    /// The official string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut k = 0;
        for node in 1..=3 {
            if node > 1 {
                f.write_str("+")?;
            }
            f.write_str("|")?;
            for from in 0..node {
                write!(f, "{}~{from}|", self.ops[k].name())?;
                k += 1;
            }
        }
        Ok(())
    }
}

// Node vocabulary: cell ops first (digit + 2), then the fixed blocks of the skeleton.
const VOCAB: &[&str] = &[
    "input",
    "output",
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
    "stem_conv3x3_bn",
    "res_relu_conv3x3_s2_bn",
    "res_relu_conv3x3_bn",
    "res_shortcut_avgpool_conv1x1",
    "head_bn_relu",
    "head_global_avgpool",
    "head_linear",
];
const INPUT: u16 = 0;
const OUTPUT: u16 = 1;
const FIRST_OP: u16 = 2;
const STEM: u16 = 7;
const RES_CONV_S2: u16 = 8;
const RES_CONV: u16 = 9;
const RES_SHORTCUT: u16 = 10;
const HEAD_BN_RELU: u16 = 11;
const HEAD_GAP: u16 = 12;
const HEAD_LINEAR: u16 = 13;

/// The NAS-Bench-201 space with its benchmark skeleton (`cells_per_stage` = 5 in the benchmark).
#[derive(Debug, Clone)]
pub struct Nb201Space {
    pub cells_per_stage: usize,
    /// Encode the cell as it computes (drop `none` ops and dead ends, see
    /// [`CellGraph::pruned`]). On by default: +0.07..0.1 tau at N = 39..78 on validation splits.
    pub prune: bool,
}

impl Default for Nb201Space {
    fn default() -> Self {
        Self {
            cells_per_stage: 5,
            prune: true,
        }
    }
}

impl Nb201Space {
    /// Index of an architecture in [`SearchSpace::enumerate`] order (base-5 digits).
    pub fn ordinal(arch: &Nb201Arch) -> usize {
        arch.ops.iter().fold(0, |acc, op| acc * 5 + op.index())
    }

    fn residual_block() -> CellGraph {
        // input -> conv s2 -> conv -> output, input -> shortcut -> output
        CellGraph::new(
            vec![INPUT, RES_CONV_S2, RES_CONV, RES_SHORTCUT, OUTPUT],
            &[(0, 1), (1, 2), (2, 4), (0, 3), (3, 4)],
        )
    }
}

impl SearchSpace for Nb201Space {
    type Arch = Nb201Arch;

    fn name(&self) -> &'static str {
        if self.prune {
            "nb201"
        } else {
            "nb201-unpruned"
        }
    }

    fn parse(&self, text: &str) -> Result<Nb201Arch, ArchError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ArchError::new("empty NB201 architecture string"));
        }
        if text.starts_with('|') {
            Nb201Arch::parse_official(text)
        } else if text.bytes().all(|b| b.is_ascii_digit()) {
            Nb201Arch::parse_digits(text)
        } else {
            Err(ArchError::new(format!(
                "'{text}' is neither an NB201 string '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' nor 6 op digits"
            )))
        }
    }

    fn format(&self, arch: &Nb201Arch) -> String {
        arch.to_string()
    }

    fn sample(&self, rng: &mut dyn RngCore) -> Nb201Arch {
        let mut ops = [Nb201Op::None; 6];
        for op in &mut ops {
            *op = Nb201Op::ALL[rng.random_range(0..5)];
        }
        Nb201Arch { ops }
    }

    fn mutate(&self, arch: &Nb201Arch, rng: &mut dyn RngCore) -> Nb201Arch {
        let mut out = *arch;
        let edge = rng.random_range(0..6);
        // Draw among the four other ops so the neighbour always differs.
        let shift = rng.random_range(1..5);
        out.ops[edge] = Nb201Op::ALL[(arch.ops[edge].index() + shift) % 5];
        out
    }

    fn enumerate(&self) -> Option<Vec<Nb201Arch>> {
        let all = all_choices::<6>(5).map(|d| Nb201Arch {
            ops: d.map(|i| Nb201Op::ALL[i]),
        });
        Some(all.collect())
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        VOCAB
    }

    /// The op-on-node graph of [`edge_op_cell`], pruned to the computing graph.
    fn cell_graph(&self, arch: &Nb201Arch) -> CellGraph {
        let graph = edge_op_cell(
            INPUT,
            arch.ops.map(|op| FIRST_OP + op.index() as u16),
            OUTPUT,
        );
        if self.prune {
            graph.pruned(|op| op == FIRST_OP + Nb201Op::None.index() as u16)
        } else {
            graph
        }
    }

    fn global_encoding(&self, arch: &Nb201Arch) -> GlobalEncoding {
        let cell = self.cell_graph(arch);
        let mut cells = vec![CellGraph::chain(vec![INPUT, STEM, OUTPUT])];
        for stage in 0..3 {
            if stage > 0 {
                cells.push(Self::residual_block());
            }
            cells.extend(std::iter::repeat_n(cell.clone(), self.cells_per_stage));
        }
        cells.push(CellGraph::chain(vec![
            INPUT,
            HEAD_BN_RELU,
            HEAD_GAP,
            HEAD_LINEAR,
            OUTPUT,
        ]));
        GlobalEncoding { cells }
    }

    fn flat_dim(&self) -> usize {
        EDGES.len() * Nb201Op::ALL.len()
    }

    fn flat_features(&self, arch: &Nb201Arch) -> Vec<f32> {
        let mut features = vec![0.0; self.flat_dim()];
        for (edge, op) in arch.ops.iter().enumerate() {
            features[edge * 5 + op.index()] = 1.0;
        }
        features
    }

    /// The NB201 network (stem conv-BN, stages of cells joined by residual reduction blocks,
    /// BN-ReLU, global pooling, linear classifier) at proxy size: the first
    /// `config.cells_per_stage` cells of each stage. Every layer is driven by the node of the
    /// global encoding it corresponds to.
    fn proxy_program(&self, arch: &Nb201Arch, config: &ProxyConfig) -> Option<ProxyProgram> {
        let global = self.global_encoding(arch);
        let mut p = ProxyProgram::default();
        let image = p.push(Layer::Image, vec![], None);
        let mut channels = config.width;
        let conv = |kernel, stride, c_in, c_out, pre_relu, post_norm| {
            Layer::conv_norm(kernel, stride, c_in, c_out).with_relu_norm(pre_relu, post_norm)
        };
        let mut x = p.push(
            conv(3, 1, 3, channels, false, true),
            vec![image],
            Some(Slot { cell: 0, node: 1 }),
        );
        let mut cell = 1;
        for stage in 0..3 {
            if stage > 0 {
                let slot = |node| Some(Slot { cell, node });
                let (c, c2) = (channels, 2 * channels);
                let a = p.push(conv(3, 2, c, c2, true, true), vec![x], slot(1));
                let b = p.push(conv(3, 1, c2, c2, true, true), vec![a], slot(2));
                let pooled = p.push(
                    Layer::AvgPool {
                        kernel: 2,
                        stride: 2,
                    },
                    vec![x],
                    None,
                );
                let short = p.push(conv(1, 1, c, c2, false, false), vec![pooled], slot(3));
                x = p.push(Layer::Identity, vec![b, short], None);
                channels = c2;
                cell += 1;
            }
            for j in 0..self.cells_per_stage {
                if j < config.cells_per_stage {
                    x = push_cell(&mut p, &global.cells[cell], cell, x, channels);
                }
                cell += 1;
            }
        }
        let act = p.push(Layer::NormRelu, vec![x], None);
        let pooled = p.push(Layer::GlobalAvgPool, vec![act], None);
        p.push(
            Layer::Linear {
                c_in: channels,
                c_out: CLASSES,
            },
            vec![pooled],
            Some(Slot { cell, node: 3 }),
        );
        Some(p)
    }
}

/// Op-on-edge to op-on-node for a cell of 4 nodes and the six edges of [`EDGES`] (NB201's
/// cell, also TransNAS-Bench-101's micro cell): node 0 is the cell input, nodes 1..=6 the six
/// edge ops (`op_types`, node types in [`EDGES`] order), node 7 the output. An op node on edge
/// `to <- from` reads from every op node whose edge ends at `from` (or the input when `from`
/// is 0); the output reads the op nodes of edges into node 3. Not pruned.
pub(crate) fn edge_op_cell(input: u16, op_types: [u16; 6], output: u16) -> CellGraph {
    let mut ops = vec![input];
    ops.extend(op_types);
    ops.push(output);
    let mut edges = Vec::new();
    for (k, &(_, from)) in EDGES.iter().enumerate() {
        let op_node = k + 1;
        if from == 0 {
            edges.push((0, op_node));
        }
        for (j, &(to_j, _)) in EDGES.iter().enumerate() {
            if to_j == from && from != 0 {
                edges.push((j + 1, op_node));
            }
        }
    }
    for (k, &(to, _)) in EDGES.iter().enumerate() {
        if to == 3 {
            edges.push((k + 1, 7));
        }
    }
    CellGraph::new(ops, &edges)
}

/// Append one searchable cell, walking its (possibly pruned) op-on-node graph: each node sums
/// its predecessors and applies its op; an output with no predecessor is zero.
fn push_cell(
    p: &mut ProxyProgram,
    graph: &CellGraph,
    cell: usize,
    input: usize,
    c: usize,
) -> usize {
    let n = graph.num_nodes();
    let mut at = vec![input; n];
    for node in 1..n {
        let preds: Vec<usize> = (0..node)
            .filter(|&j| graph.has_edge(j, node))
            .map(|j| at[j])
            .collect();
        let op = graph.ops()[node];
        let conv = |kernel| Layer::relu_conv_norm(kernel, 1, c, c);
        let (layer, weighted) = match op {
            OUTPUT if preds.is_empty() => (Layer::Zero, false),
            OUTPUT => (Layer::Identity, false),
            _ => match Nb201Op::ALL[(op - FIRST_OP) as usize] {
                Nb201Op::None => (Layer::Zero, false),
                Nb201Op::SkipConnect => (Layer::Identity, false),
                Nb201Op::AvgPool3x3 => (
                    Layer::AvgPool {
                        kernel: 3,
                        stride: 1,
                    },
                    false,
                ),
                Nb201Op::Conv1x1 => (conv(1), true),
                Nb201Op::Conv3x3 => (conv(3), true),
            },
        };
        let slot = weighted.then_some(Slot { cell, node });
        let inputs = if preds.is_empty() { vec![input] } else { preds };
        at[node] = p.push(layer, inputs, slot);
    }
    at[n - 1]
}

/// The six op digits of an NB201 string (test helper for targets built from the ops).
#[cfg(test)]
pub(crate) fn digits_of(text: &str) -> Vec<char> {
    Nb201Space::default()
        .parse(text)
        .expect("valid NB201 string")
        .digits()
        .chars()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::testing::check_program;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const EXAMPLE: &str = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|";

    #[test]
    fn official_and_digit_forms_agree() {
        let space = Nb201Space::default();
        let a = space.parse(EXAMPLE).unwrap();
        let b = space.parse("421211").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.digits(), "421211");
        assert_eq!(space.format(&a), EXAMPLE);
    }

    #[test]
    fn errors_are_precise() {
        let space = Nb201Space::default();
        let err = |s: &str| space.parse(s).unwrap_err().to_string();
        assert!(
            err("|conv_7x7~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|none~2|")
                .contains("unknown NB201 operation 'conv_7x7'")
        );
        assert!(err("|none~0|+|none~0|+|none~0|none~1|none~2|").contains("node 2 needs 2"));
        assert!(
            err("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|")
                .contains("input node must be 1, got 2")
        );
        assert!(err("|none~0|+|none~0|none~1|").contains("3 node groups"));
        assert!(err("42121").contains("6 digits"));
        assert!(err("421215").contains("not 0-4"));
        assert!(err("").contains("empty"));
        assert!(err("hello").contains("neither"));
        assert!(err("|none~x|+|none~0|none~1|+|none~0|none~1|none~2|").contains("bad input node"));
    }

    #[test]
    fn enumeration_is_complete_and_ordered() {
        let all = Nb201Space::default().enumerate().unwrap();
        assert_eq!(all.len(), 15_625);
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 15_625);
        for (i, arch) in all.iter().enumerate().step_by(97) {
            assert_eq!(Nb201Space::ordinal(arch), i);
        }
    }

    #[test]
    fn cell_graph_follows_the_edge_structure() {
        let space = Nb201Space::default();
        let g = space.cell_graph(&space.parse("421211").unwrap());
        assert_eq!(g.num_nodes(), 8);
        assert_eq!(g.ops(), &[0, 6, 4, 3, 4, 3, 3, 1][..]);
        // edges out of the input: ops on 1<-0, 2<-0, 3<-0
        assert!(g.has_edge(0, 1) && g.has_edge(0, 2) && g.has_edge(0, 4));
        // op on 2<-1 (node 3) reads the op on 1<-0 (node 1)
        assert!(g.has_edge(1, 3));
        // op on 3<-2 (node 6) reads the ops into node 2: nodes 2 and 3
        assert!(g.has_edge(2, 6) && g.has_edge(3, 6));
        // output reads the three ops into node 3
        assert!(g.has_edge(4, 7) && g.has_edge(5, 7) && g.has_edge(6, 7));
        assert_eq!(g.num_edges(), 3 + 1 + 1 + 2 + 3);
    }

    #[test]
    fn pruning_merges_functionally_equal_cells() {
        let space = Nb201Space::default();
        let all = space.enumerate().unwrap();
        let distinct: std::collections::HashSet<CellGraph> =
            all.iter().map(|a| space.cell_graph(a)).collect();
        assert_eq!(distinct.len(), 9_365);
        // a cell whose only path runs through `none` keeps just its two end nodes
        let dead = space.cell_graph(&space.parse("000000").unwrap());
        assert_eq!(dead.num_nodes(), 2);
        // convs on 1<-0 and 2<-0 are dead ends when nothing reaches node 3
        let raw = Nb201Space {
            prune: false,
            ..Default::default()
        };
        let arch = space.parse("330000").unwrap();
        assert_eq!(raw.cell_graph(&arch).num_nodes(), 8);
        assert_eq!(space.cell_graph(&arch).num_nodes(), 2);
    }

    #[test]
    fn global_encoding_has_the_benchmark_skeleton() {
        let space = Nb201Space::default();
        let enc = space.global_encoding(&space.parse("421211").unwrap());
        assert_eq!(enc.cells.len(), 1 + 5 + 1 + 5 + 1 + 5 + 1);
        assert_eq!(enc.cells[6], Nb201Space::residual_block());
        assert_eq!(
            enc.cells[1],
            space.cell_graph(&space.parse("421211").unwrap())
        );
    }

    /// The vocabulary names a weighted proxy layer may be generated from.
    fn allowed_node_types(layer: &Layer) -> &'static [&'static str] {
        match layer {
            Layer::Conv { kernel: 3, .. } => &[
                "nor_conv_3x3",
                "stem_conv3x3_bn",
                "res_relu_conv3x3_s2_bn",
                "res_relu_conv3x3_bn",
            ],
            Layer::Conv { kernel: 1, .. } => &["nor_conv_1x1", "res_shortcut_avgpool_conv1x1"],
            Layer::Linear { .. } => &["head_linear"],
            _ => &[],
        }
    }

    #[test]
    fn proxy_layers_are_generated_from_their_own_nodes() {
        let space = Nb201Space::default();
        for digits in ["421211", "333333", "000000", "103020", "232323"] {
            let arch = space.parse(digits).unwrap();
            let global = space.global_encoding(&arch);
            for cells in [1, 2] {
                let config = ProxyConfig {
                    cells_per_stage: cells,
                    ..ProxyConfig::default()
                };
                let program = space.proxy_program(&arch, &config).unwrap();
                check_program(
                    &program,
                    &global,
                    VOCAB,
                    allowed_node_types,
                    config.image_size,
                    digits,
                );
                let convs = arch
                    .ops
                    .iter()
                    .filter(|op| matches!(op, Nb201Op::Conv1x1 | Nb201Op::Conv3x3))
                    .count();
                // stem + two residual blocks (3 each) + classifier, plus the live cell convs
                let fixed = 1 + 2 * 3 + 1;
                let cell_convs = space
                    .cell_graph(&arch)
                    .ops()
                    .iter()
                    .filter(|&&op| {
                        op == FIRST_OP + Nb201Op::Conv1x1.index() as u16
                            || op == FIRST_OP + Nb201Op::Conv3x3.index() as u16
                    })
                    .count();
                assert!(cell_convs <= convs);
                assert_eq!(
                    program.weighted_nodes().count(),
                    fixed + 3 * cells * cell_convs
                );
            }
        }
    }

    #[test]
    fn proxy_networks_run_even_when_a_cell_is_cut() {
        let space = Nb201Space::default();
        let config = ProxyConfig::default();
        // "000000": no path through the cell; "100000"... cut too; "333333": all convs
        for digits in ["000000", "100000", "333333", "444444"] {
            let arch = space.parse(digits).unwrap();
            let program = space.proxy_program(&arch, &config).unwrap();
            let global = space.global_encoding(&arch);
            check_program(
                &program,
                &global,
                VOCAB,
                allowed_node_types,
                config.image_size,
                digits,
            );
        }
        let cut = space
            .proxy_program(&space.parse("000000").unwrap(), &config)
            .unwrap();
        assert!(cut.nodes.iter().any(|n| n.layer == Layer::Zero));
    }

    fn arb_arch() -> impl Strategy<Value = Nb201Arch> {
        proptest::array::uniform6(0usize..5).prop_map(|d| Nb201Arch {
            ops: d.map(|i| Nb201Op::ALL[i]),
        })
    }

    proptest! {
        #[test]
        fn round_trips(arch in arb_arch()) {
            let space = Nb201Space::default();
            prop_assert_eq!(space.parse(&space.format(&arch)).unwrap(), arch);
            prop_assert_eq!(space.parse(&arch.digits()).unwrap(), arch);
        }

        #[test]
        fn mutation_changes_exactly_one_edge(arch in arb_arch(), seed in any::<u64>()) {
            let space = Nb201Space::default();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let m = space.mutate(&arch, &mut rng);
            let diff = arch.ops.iter().zip(m.ops.iter()).filter(|(a, b)| a != b).count();
            prop_assert_eq!(diff, 1);
        }

        #[test]
        fn flat_features_are_one_hot(arch in arb_arch()) {
            let f = Nb201Space::default().flat_features(&arch);
            prop_assert_eq!(f.len(), 30);
            prop_assert_eq!(SearchSpace::flat_dim(&Nb201Space::default()), 30);
            prop_assert_eq!(f.iter().sum::<f32>(), 6.0);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            let _ = Nb201Space::default().parse(&s);
        }
    }
}
