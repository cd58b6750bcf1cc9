//! NAS-Bench-Macro: a MobileNetV2-like network of 8 searchable layers in three stages of 2, 3
//! and 3 layers, each layer an identity or one of two inverted-residual blocks (3^8 = 6,561
//! networks, all trained on CIFAR-10). The first layer of every stage halves the resolution
//! and doubles the channels (layers 1, 3 and 6).

use rand::{Rng, RngCore};

use super::{ArchError, SearchSpace, all_choices};
use crate::encoding::{CellGraph, GlobalEncoding};

/// The three layer choices, in the benchmark's digit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MacroOp {
    /// `id`: no layer (a strided conv1x1-BN projection where the layer downsamples).
    Identity,
    /// `ir_3x3_t3`: inverted residual, kernel 3, expansion 3.
    Ir3x3E3,
    /// `ir_5x5_t6`: inverted residual, kernel 5, expansion 6.
    Ir5x5E6,
}

impl MacroOp {
    pub const ALL: [MacroOp; 3] = [MacroOp::Identity, MacroOp::Ir3x3E3, MacroOp::Ir5x5E6];

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Number of searchable layers.
pub const LAYERS: usize = 8;
/// Layers per stage; the first layer of each stage has stride 2 and doubles the channels.
pub const STAGES: [usize; 3] = [2, 3, 3];

/// Whether layer `i` (0-based) opens a stage, i.e. downsamples.
pub fn downsamples(layer: usize) -> bool {
    let mut start = 0;
    STAGES.iter().any(|&n| {
        let hit = layer == start;
        start += n;
        hit
    })
}

/// One NAS-Bench-Macro network: the op of each layer, layer 1 first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacroArch {
    pub layers: [MacroOp; LAYERS],
}

// Node vocabulary: layer ops at stride 1 and at stride 2 (their own types: a strided identity
// is a conv projection, a strided block has no residual), then the fixed blocks.
const VOCAB: &[&str] = &[
    "input",
    "output",
    "id",
    "ir_3x3_t3",
    "ir_5x5_t6",
    "id_s2_conv1x1_bn",
    "ir_3x3_t3_s2",
    "ir_5x5_t6_s2",
    "stem_conv3x3_bn_relu",
    "head_conv1x1_bn_relu",
    "head_global_avgpool",
    "head_linear",
];
const INPUT: u16 = 0;
const OUTPUT: u16 = 1;
const FIRST_OP: u16 = 2;
const FIRST_OP_S2: u16 = 5;
const STEM: u16 = 8;
const HEAD_CONV: u16 = 9;
const HEAD_GAP: u16 = 10;
const HEAD_LINEAR: u16 = 11;

/// The NAS-Bench-Macro space (stem conv3x3-BN-ReLU to 32 channels, the 8 layers, conv1x1 to
/// 1280 channels with BN-ReLU, global pooling, linear classifier).
#[derive(Debug, Clone, Default)]
pub struct NbMacroSpace;

impl NbMacroSpace {
    /// The node type of layer `i` holding `op`.
    fn node_type(layer: usize, op: MacroOp) -> u16 {
        let first = if downsamples(layer) {
            FIRST_OP_S2
        } else {
            FIRST_OP
        };
        first + op.index() as u16
    }

    /// An inverted-residual block keeps a shortcut where it neither strides nor changes
    /// channels (the benchmark's `use_shortcut`); an identity at stride 1 is a plain wire.
    fn has_residual(layer: usize, op: MacroOp) -> bool {
        op != MacroOp::Identity && !downsamples(layer)
    }

    /// One layer as a cell: input -> op -> output, plus input -> output for a residual block.
    fn layer_cell(layer: usize, op: MacroOp) -> CellGraph {
        let mut edges = vec![(0, 1), (1, 2)];
        if Self::has_residual(layer, op) {
            edges.push((0, 2));
        }
        CellGraph::new(vec![INPUT, Self::node_type(layer, op), OUTPUT], &edges)
    }
}

impl SearchSpace for NbMacroSpace {
    type Arch = MacroArch;

    fn name(&self) -> &'static str {
        "nb-macro"
    }

    /// The benchmark's key: 8 digits 0-2, layer 1 first (`01220012`).
    fn parse(&self, text: &str) -> Result<MacroArch, ArchError> {
        let text = text.trim();
        if text.chars().count() != LAYERS {
            return Err(ArchError::new(format!(
                "NAS-Bench-Macro architecture needs {LAYERS} digits 0-2 (one per layer), got {} characters in '{text}'",
                text.chars().count()
            )));
        }
        let mut layers = [MacroOp::Identity; LAYERS];
        for (i, (slot, ch)) in layers.iter_mut().zip(text.chars()).enumerate() {
            let d = ch.to_digit(10).filter(|&d| d < 3).ok_or_else(|| {
                ArchError::new(format!(
                    "NAS-Bench-Macro layer {} digit '{ch}' in '{text}' is not 0 (id), 1 (ir_3x3_t3) or 2 (ir_5x5_t6)",
                    i + 1
                ))
            })?;
            *slot = MacroOp::ALL[d as usize];
        }
        Ok(MacroArch { layers })
    }

    fn format(&self, arch: &MacroArch) -> String {
        arch.layers
            .iter()
            .map(|op| char::from(b'0' + op.index() as u8))
            .collect()
    }

    fn sample(&self, rng: &mut dyn RngCore) -> MacroArch {
        let mut layers = [MacroOp::Identity; LAYERS];
        for op in &mut layers {
            *op = MacroOp::ALL[rng.random_range(0..3)];
        }
        MacroArch { layers }
    }

    fn mutate(&self, arch: &MacroArch, rng: &mut dyn RngCore) -> MacroArch {
        let mut out = *arch;
        let layer = rng.random_range(0..LAYERS);
        // one of the two other ops, so the neighbour always differs
        let shift = rng.random_range(1..3);
        out.layers[layer] = MacroOp::ALL[(arch.layers[layer].index() + shift) % 3];
        out
    }

    fn enumerate(&self) -> Option<Vec<MacroArch>> {
        let all = all_choices::<LAYERS>(3).map(|d| MacroArch {
            layers: d.map(|i| MacroOp::ALL[i]),
        });
        Some(all.collect())
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        VOCAB
    }

    /// The 8 layers as one chain: input, one node per layer (strided types at the stage
    /// starts), output; a residual block adds an edge from the node before it to the node
    /// after it, where its shortcut sum lands.
    fn cell_graph(&self, arch: &MacroArch) -> CellGraph {
        let mut ops = vec![INPUT];
        ops.extend(
            arch.layers
                .iter()
                .enumerate()
                .map(|(i, &op)| Self::node_type(i, op)),
        );
        ops.push(OUTPUT);
        let mut edges: Vec<(usize, usize)> = (1..ops.len()).map(|i| (i - 1, i)).collect();
        for (i, &op) in arch.layers.iter().enumerate() {
            if Self::has_residual(i, op) {
                edges.push((i, i + 2));
            }
        }
        CellGraph::new(ops, &edges)
    }

    /// Stem, the 8 layer cells in order, head (conv1x1-BN-ReLU, pooling, linear).
    fn global_encoding(&self, arch: &MacroArch) -> GlobalEncoding {
        let mut cells = vec![CellGraph::chain(vec![INPUT, STEM, OUTPUT])];
        cells.extend(
            arch.layers
                .iter()
                .enumerate()
                .map(|(i, &op)| Self::layer_cell(i, op)),
        );
        cells.push(CellGraph::chain(vec![
            INPUT,
            HEAD_CONV,
            HEAD_GAP,
            HEAD_LINEAR,
            OUTPUT,
        ]));
        GlobalEncoding { cells }
    }

    fn flat_dim(&self) -> usize {
        LAYERS * MacroOp::ALL.len()
    }

    fn flat_features(&self, arch: &MacroArch) -> Vec<f32> {
        let mut features = vec![0.0; self.flat_dim()];
        for (i, op) in arch.layers.iter().enumerate() {
            features[i * 3 + op.index()] = 1.0;
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
    fn downsampling_layers_open_the_stages() {
        let down: Vec<usize> = (0..LAYERS).filter(|&i| downsamples(i)).collect();
        assert_eq!(down, vec![0, 2, 5]);
    }

    #[test]
    fn errors_are_precise() {
        let space = NbMacroSpace;
        let err = |s: &str| space.parse(s).unwrap_err().to_string();
        assert!(err("0120").contains("needs 8 digits 0-2 (one per layer), got 4 characters"));
        assert!(err("01201203").contains("layer 8 digit '3'"));
        assert!(err("0x201202").contains("layer 2 digit 'x'"));
        assert!(err("").contains("got 0 characters"));
        assert!(err("0120120é").contains("layer 8 digit 'é'"));
    }

    #[test]
    fn enumeration_is_complete_and_in_table_order() {
        let space = NbMacroSpace;
        let all = space.enumerate().unwrap();
        assert_eq!(all.len(), 6_561);
        assert_eq!(space.format(&all[0]), "00000000");
        assert_eq!(space.format(&all[1]), "00000001");
        assert_eq!(space.format(&all[6_560]), "22222222");
    }

    #[test]
    fn every_embedded_row_round_trips_and_the_table_is_complete() {
        let space = NbMacroSpace;
        let table = crate::data::Table::load("nb-macro").unwrap();
        let archs = table.column("arch").unwrap();
        assert_eq!(archs.len(), 6_561);
        let mut seen = std::collections::HashSet::new();
        for text in archs {
            let arch = space.parse(text).unwrap();
            assert_eq!(space.format(&arch), text);
            assert_eq!(space.parse(&space.format(&arch)).unwrap(), arch);
            assert!(seen.insert(arch));
        }
        assert_eq!(table.target("mean_acc").unwrap().len(), 6_561);
    }

    #[test]
    fn encodings_have_the_benchmark_skeleton() {
        let space = NbMacroSpace;
        let arch = space.parse("01220012").unwrap();
        let g = space.global_encoding(&arch);
        assert_eq!(g.cells.len(), 1 + LAYERS + 1);
        // layer 2 (index 1) is ir_3x3_t3 at stride 1: residual edge
        assert_eq!(g.cells[2].ops(), &[INPUT, FIRST_OP + 1, OUTPUT]);
        assert!(g.cells[2].has_edge(0, 2));
        // layer 3 (index 2) is ir_5x5_t6 at stride 2: no residual
        assert_eq!(g.cells[3].ops(), &[INPUT, FIRST_OP_S2 + 2, OUTPUT]);
        assert!(!g.cells[3].has_edge(0, 2));
        // layer 1 (index 0) is a strided identity: the projection type
        assert_eq!(VOCAB[g.cells[1].ops()[1] as usize], "id_s2_conv1x1_bn");
        let c = space.cell_graph(&arch);
        assert_eq!(c.num_nodes(), LAYERS + 2);
        // chain edges plus residuals of the stride-1 blocks at indices 1, 3, 6, 7 (index 4 is
        // an identity; 0, 2, 5 downsample)
        assert_eq!(c.num_edges(), (LAYERS + 1) + 4);
        assert!(c.has_edge(1, 3) && c.has_edge(3, 5) && c.has_edge(6, 8) && c.has_edge(7, 9));
        let f = space.flat_features(&arch);
        assert_eq!(f.len(), 24);
        assert_eq!(f.iter().sum::<f32>(), 8.0);
        assert!(SearchSpace::proxy_program(&space, &arch, &Default::default()).is_none());
    }

    fn arb_arch() -> impl Strategy<Value = MacroArch> {
        proptest::array::uniform8(0usize..3).prop_map(|d| MacroArch {
            layers: d.map(|i| MacroOp::ALL[i]),
        })
    }

    proptest! {
        #[test]
        fn sampled_and_mutated_archs_round_trip(arch in arb_arch(), seed in any::<u64>()) {
            let space = NbMacroSpace;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let s = space.sample(&mut rng);
            prop_assert_eq!(space.parse(&space.format(&s)).unwrap(), s);
            let m = space.mutate(&arch, &mut rng);
            let diff = arch.layers.iter().zip(&m.layers).filter(|(a, b)| a != b).count();
            prop_assert_eq!(diff, 1);
            prop_assert_eq!(space.parse(&space.format(&m)).unwrap(), m);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = NbMacroSpace.parse(&s);
        }
    }
}
