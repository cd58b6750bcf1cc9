//! TransNAS-Bench-101, micro (cell-level) space: NB201's 4-node, 6-edge cell with four
//! operations (4^6 = 4,096 cells), stacked in the benchmark's fixed skeleton `64-41414`: base
//! width 64, five modules of two cells each, modules 1, 3 and 5 halving the resolution and
//! doubling the channels in their first cell. Every cell was trained on seven Taskonomy tasks.

use rand::{Rng, RngCore};

use super::nb201::{EDGES, edge_op_cell};
use super::{ArchError, SearchSpace, all_choices};
use crate::encoding::{CellGraph, GlobalEncoding};

/// The four edge operations, in TransNAS-Bench's digit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TnbOp {
    None,
    SkipConnect,
    Conv1x1,
    Conv3x3,
}

impl TnbOp {
    pub const ALL: [TnbOp; 4] = [
        TnbOp::None,
        TnbOp::SkipConnect,
        TnbOp::Conv1x1,
        TnbOp::Conv3x3,
    ];

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The fixed part of every micro architecture string: base channels and macro skeleton.
pub const SKELETON_PREFIX: &str = "64-41414-";
/// The benchmark's macro skeleton for micro search: one digit per module, 4 = channels x2
/// and resolution /2 (in the module's first cell), 1 = plain.
const MODULES: [u8; 5] = [4, 1, 4, 1, 4];
const CELLS_PER_MODULE: usize = 2;

/// One TransNAS-Bench-101 micro cell: the op on each of the six edges, in NB201's edge order
/// `(1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TnbArch {
    pub ops: [TnbOp; 6],
}

impl TnbArch {
    /// The six digits `abcdef`.
    pub fn digits(&self) -> String {
        self.ops
            .iter()
            .map(|op| char::from(b'0' + op.index() as u8))
            .collect()
    }

    fn parse_digits(text: &str, what: &str) -> Result<Self, ArchError> {
        if text.chars().count() != 6 {
            return Err(ArchError::new(format!(
                "TransNAS micro {what} needs 6 op digits 0-3, got {} in '{text}'",
                text.chars().count()
            )));
        }
        let mut ops = [TnbOp::None; 6];
        for (k, (slot, ch)) in ops.iter_mut().zip(text.chars()).enumerate() {
            let d = ch.to_digit(10).filter(|&d| d < 4).ok_or_else(|| {
                let (to, from) = EDGES[k];
                ArchError::new(format!(
                    "TransNAS micro op digit '{ch}' on edge {to}<-{from} in '{text}' is not 0 (none), 1 (skip), 2 (conv1x1) or 3 (conv3x3)"
                ))
            })?;
            *slot = TnbOp::ALL[d as usize];
        }
        Ok(Self { ops })
    }
}

// Node vocabulary: cell input/output (a reducing module's first cell has its own input type),
// the four ops, then the fixed blocks.
const VOCAB: &[&str] = &[
    "input",
    "output",
    "none",
    "skip_connect",
    "relu_conv1x1_bn",
    "relu_conv3x3_bn",
    "input_s2_c2",
    "stem_conv_bn_relu",
    "head_global_avgpool",
    "head_linear",
];
const INPUT: u16 = 0;
const OUTPUT: u16 = 1;
const FIRST_OP: u16 = 2;
const INPUT_REDUCE: u16 = 6;
const STEM: u16 = 7;
const HEAD_GAP: u16 = 8;
const HEAD_LINEAR: u16 = 9;

/// The TransNAS-Bench-101 micro space.
#[derive(Debug, Clone, Default)]
pub struct Tnb101MicroSpace;

impl Tnb101MicroSpace {
    /// The cell as it computes (`none` edges and dead ends pruned), with `input` as the type
    /// of its input node.
    fn cell_with_input(arch: &TnbArch, input: u16) -> CellGraph {
        let types = arch.ops.map(|op| FIRST_OP + op.index() as u16);
        edge_op_cell(input, types, OUTPUT).pruned(|op| op == FIRST_OP + TnbOp::None.index() as u16)
    }
}

impl SearchSpace for Tnb101MicroSpace {
    type Arch = TnbArch;

    fn name(&self) -> &'static str {
        "tnb101-micro"
    }

    /// `64-41414-a_bc_def` (the benchmark's string) or the six digits `abcdef`.
    fn parse(&self, text: &str) -> Result<TnbArch, ArchError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ArchError::new("empty TransNAS micro architecture string"));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return TnbArch::parse_digits(text, "ops form");
        }
        let Some(cell) = text.strip_prefix(SKELETON_PREFIX) else {
            return Err(ArchError::new(format!(
                "'{text}' is neither a TransNAS micro string '{SKELETON_PREFIX}a_bc_def' nor 6 op digits"
            )));
        };
        let groups: Vec<&str> = cell.split('_').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.chars().count()).collect();
        if lengths != [1, 2, 3] {
            return Err(ArchError::new(format!(
                "TransNAS micro cell '{cell}' needs groups of 1, 2 and 3 digits joined by '_' (nodes 1, 2, 3), got lengths {lengths:?}"
            )));
        }
        TnbArch::parse_digits(&groups.concat(), "cell")
    }

    fn format(&self, arch: &TnbArch) -> String {
        let d = arch.digits();
        format!("{SKELETON_PREFIX}{}_{}_{}", &d[..1], &d[1..3], &d[3..])
    }

    fn sample(&self, rng: &mut dyn RngCore) -> TnbArch {
        let mut ops = [TnbOp::None; 6];
        for op in &mut ops {
            *op = TnbOp::ALL[rng.random_range(0..4)];
        }
        TnbArch { ops }
    }

    fn mutate(&self, arch: &TnbArch, rng: &mut dyn RngCore) -> TnbArch {
        let mut out = *arch;
        let edge = rng.random_range(0..6);
        // one of the three other ops, so the neighbour always differs
        let shift = rng.random_range(1..4);
        out.ops[edge] = TnbOp::ALL[(arch.ops[edge].index() + shift) % 4];
        out
    }

    fn enumerate(&self) -> Option<Vec<TnbArch>> {
        let all = all_choices::<6>(4).map(|d| TnbArch {
            ops: d.map(|i| TnbOp::ALL[i]),
        });
        Some(all.collect())
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        VOCAB
    }

    /// NB201's op-on-node cell graph (8 nodes before pruning), `none` edges pruned.
    fn cell_graph(&self, arch: &TnbArch) -> CellGraph {
        Self::cell_with_input(arch, INPUT)
    }

    /// Stem, the 5 modules x 2 cells of `64-41414` (the first cell of a reducing module with
    /// the `input_s2_c2` input type), head (global pooling, linear: the classification
    /// tasks' decoder; the dense tasks' decoders are not part of the encoding).
    fn global_encoding(&self, arch: &TnbArch) -> GlobalEncoding {
        let plain = Self::cell_with_input(arch, INPUT);
        let reducing = Self::cell_with_input(arch, INPUT_REDUCE);
        let mut cells = vec![CellGraph::chain(vec![INPUT, STEM, OUTPUT])];
        for &module in &MODULES {
            for j in 0..CELLS_PER_MODULE {
                let reduces = j == 0 && module == 4;
                cells.push(if reduces {
                    reducing.clone()
                } else {
                    plain.clone()
                });
            }
        }
        cells.push(CellGraph::chain(vec![INPUT, HEAD_GAP, HEAD_LINEAR, OUTPUT]));
        GlobalEncoding { cells }
    }

    fn flat_dim(&self) -> usize {
        EDGES.len() * TnbOp::ALL.len()
    }

    fn flat_features(&self, arch: &TnbArch) -> Vec<f32> {
        let mut features = vec![0.0; self.flat_dim()];
        for (edge, op) in arch.ops.iter().enumerate() {
            features[edge * 4 + op.index()] = 1.0;
        }
        features
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn string_and_digit_forms_agree() {
        let space = Tnb101MicroSpace;
        let a = space.parse("64-41414-1_02_333").unwrap();
        assert_eq!(a, space.parse("102333").unwrap());
        assert_eq!(space.format(&a), "64-41414-1_02_333");
        assert_eq!(a.ops[2], TnbOp::Conv1x1);
    }

    #[test]
    fn errors_are_precise() {
        let space = Tnb101MicroSpace;
        let err = |s: &str| space.parse(s).unwrap_err().to_string();
        assert!(err("10233").contains("needs 6 op digits 0-3, got 5"));
        assert!(err("102334").contains("digit '4' on edge 3<-2"));
        assert!(err("64-41414-1_02_33").contains("got lengths [1, 2, 2]"));
        assert!(err("64-4111-basic").contains("neither"));
        assert!(err("64-41414-1_0x_333").contains("digit 'x' on edge 2<-1"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn every_embedded_row_round_trips_and_the_table_is_complete() {
        let space = Tnb101MicroSpace;
        let table = crate::data::Table::load("tnb101-micro").unwrap();
        let archs = table.column("arch").unwrap();
        let all = space.enumerate().unwrap();
        assert_eq!(archs.len(), 4_096);
        for (text, expected) in archs.iter().zip(&all) {
            let arch = space.parse(text).unwrap();
            assert_eq!(space.format(&arch), *text);
            assert_eq!(space.parse(&arch.digits()).unwrap(), arch);
            assert_eq!(arch, *expected);
        }
        for task in [
            "class_scene",
            "class_object",
            "jigsaw",
            "room_layout",
            "segmentsemantic",
            "normal",
            "autoencoder",
        ] {
            assert_eq!(table.target(task).unwrap().len(), 4_096);
        }
    }

    #[test]
    fn cells_reuse_nb201_graphs_and_the_skeleton_has_ten_cells() {
        let space = Tnb101MicroSpace;
        let arch = space.parse("102333").unwrap();
        let cell = space.cell_graph(&arch);
        // edge 2<-0 is `none`: its node is pruned
        assert_eq!(cell.num_nodes(), 7);
        let g = space.global_encoding(&arch);
        assert_eq!(g.cells.len(), 1 + 10 + 1);
        let reducing: Vec<usize> = (0..g.cells.len())
            .filter(|&i| g.cells[i].ops()[0] == INPUT_REDUCE)
            .collect();
        assert_eq!(reducing, vec![1, 5, 9]);
        assert_eq!(g.cells[2], cell);
        // a cell cut by `none` edges keeps only its ends
        assert_eq!(
            space
                .cell_graph(&space.parse("330000").unwrap())
                .num_nodes(),
            2
        );
        assert_eq!(space.flat_features(&arch).len(), 24);
        assert!(SearchSpace::proxy_program(&space, &arch, &Default::default()).is_none());
    }

    fn arb_arch() -> impl Strategy<Value = TnbArch> {
        proptest::array::uniform6(0usize..4).prop_map(|d| TnbArch {
            ops: d.map(|i| TnbOp::ALL[i]),
        })
    }

    proptest! {
        #[test]
        fn sampled_and_mutated_cells_round_trip(arch in arb_arch(), seed in any::<u64>()) {
            let space = Tnb101MicroSpace;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let s = space.sample(&mut rng);
            prop_assert_eq!(space.parse(&space.format(&s)).unwrap(), s);
            let m = space.mutate(&arch, &mut rng);
            let diff = arch.ops.iter().zip(&m.ops).filter(|(a, b)| a != b).count();
            prop_assert_eq!(diff, 1);
            prop_assert_eq!(space.parse(&space.format(&m)).unwrap(), m);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = Tnb101MicroSpace.parse(&s);
        }
    }
}
