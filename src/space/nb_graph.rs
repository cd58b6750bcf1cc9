//! NAS-Bench-Graph: graph neural networks of four computing nodes, each reading the graph
//! input or one earlier node (one of 9 link patterns) and applying one of 9 message-passing
//! operations; the nodes nobody reads feed the output. Pre- and post-processing layers are
//! fixed. The benchmark lists 26,206 non-isomorphic architectures on each of its data sets.

use rand::{Rng, RngCore};

use super::{ArchError, SearchSpace};
use crate::encoding::{CellGraph, GlobalEncoding};

/// The node operations, in the benchmark's code order (the digits of its hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GnnOp {
    Gat,
    Gcn,
    Gin,
    Cheb,
    Sage,
    Arma,
    /// k-GNN (`graph` in the benchmark).
    Graph,
    Fc,
    Skip,
}

impl GnnOp {
    pub const ALL: [GnnOp; 9] = [
        GnnOp::Gat,
        GnnOp::Gcn,
        GnnOp::Gin,
        GnnOp::Cheb,
        GnnOp::Sage,
        GnnOp::Arma,
        GnnOp::Graph,
        GnnOp::Fc,
        GnnOp::Skip,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GnnOp::Gat => "gat",
            GnnOp::Gcn => "gcn",
            GnnOp::Gin => "gin",
            GnnOp::Cheb => "cheb",
            GnnOp::Sage => "sage",
            GnnOp::Arma => "arma",
            GnnOp::Graph => "graph",
            GnnOp::Fc => "fc",
            GnnOp::Skip => "skip",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// Computing nodes per architecture.
pub const NODES: usize = 4;

/// The benchmark's link patterns, indexed as in its hash: entry `i` of a pattern is the input
/// of computing node `i + 1` (0 = the graph input, `k` = computing node `k`). These are the 9
/// rooted trees on 4 computing nodes.
pub const LINKS: [[u8; NODES]; 9] = [
    [0, 0, 0, 0],
    [0, 0, 0, 1],
    [0, 0, 1, 1],
    [0, 0, 1, 2],
    [0, 0, 1, 3],
    [0, 1, 1, 1],
    [0, 1, 1, 2],
    [0, 1, 2, 2],
    [0, 1, 2, 3],
];

fn link_text(link: usize) -> String {
    link_text_of(&LINKS[link])
}

/// One GNN: a link pattern (index into [`LINKS`]) and the op of each computing node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GraphArch {
    pub link: usize,
    pub ops: [GnnOp; NODES],
}

impl GraphArch {
    /// The benchmark's key: `link_index * 10^4` plus the four op codes as decimal digits.
    pub fn hash(&self) -> u32 {
        self.ops
            .iter()
            .fold(self.link as u32, |acc, op| acc * 10 + op.index() as u32)
    }

    fn from_hash(text: &str) -> Result<Self, ArchError> {
        let hash: u32 = text.parse().map_err(|_| {
            ArchError::new(format!("NAS-Bench-Graph hash '{text}' is not a number"))
        })?;
        let link = (hash / 10_000) as usize;
        if link >= LINKS.len() {
            return Err(ArchError::new(format!(
                "NAS-Bench-Graph hash {hash}: link index {link} is not 0-8"
            )));
        }
        let mut ops = [GnnOp::Gat; NODES];
        for (i, slot) in ops.iter_mut().enumerate() {
            let code = (hash / 10u32.pow((NODES - 1 - i) as u32) % 10) as usize;
            *slot = *GnnOp::ALL.get(code).ok_or_else(|| {
                ArchError::new(format!(
                    "NAS-Bench-Graph hash {hash}: op code {code} of node {} is not 0-8",
                    i + 1
                ))
            })?;
        }
        Ok(Self { link, ops })
    }

    fn from_link_and_ops(text: &str, link: &str, ops: &str) -> Result<Self, ArchError> {
        let link = LINKS
            .iter()
            .position(|l| link_text_of(l) == link)
            .ok_or_else(|| {
                let known: Vec<String> = (0..LINKS.len()).map(link_text).collect();
                ArchError::new(format!(
                    "NAS-Bench-Graph link '{link}' in '{text}' is not one of the benchmark's ({})",
                    known.join(", ")
                ))
            })?;
        let names: Vec<&str> = ops.split('|').collect();
        if names.len() != NODES {
            return Err(ArchError::new(format!(
                "NAS-Bench-Graph needs {NODES} ops joined by '|', got {} in '{text}'",
                names.len()
            )));
        }
        let mut parsed = [GnnOp::Gat; NODES];
        for (i, (slot, name)) in parsed.iter_mut().zip(&names).enumerate() {
            *slot = GnnOp::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = GnnOp::ALL.iter().map(|op| op.name()).collect();
                ArchError::new(format!(
                    "unknown NAS-Bench-Graph op '{name}' at node {} (known: {})",
                    i + 1,
                    known.join(", ")
                ))
            })?;
        }
        Ok(Self { link, ops: parsed })
    }

    /// Computing nodes that no other node reads: they feed the output.
    fn leaves(&self) -> Vec<usize> {
        let link = LINKS[self.link];
        (1..=NODES)
            .filter(|&k| !link.contains(&(k as u8)))
            .collect()
    }

    /// A key equal exactly for isomorphic architectures: the nodes form a tree rooted at the
    /// graph input, so the canonical form of a rooted labelled tree (children sorted) is one.
    fn tree_key(&self, node: usize) -> String {
        let link = LINKS[self.link];
        let mut children: Vec<String> = (1..=NODES)
            .filter(|&k| link[k - 1] as usize == node)
            .map(|k| self.tree_key(k))
            .collect();
        children.sort_unstable();
        let label = if node == 0 {
            "in"
        } else {
            self.ops[node - 1].name()
        };
        format!("{label}({})", children.join(","))
    }
}

fn link_text_of(link: &[u8; NODES]) -> String {
    link.iter().map(|d| char::from(b'0' + d)).collect()
}

// Node vocabulary: graph input and output, the ops, then the fixed layers.
const VOCAB: &[&str] = &[
    "input",
    "output",
    "gat",
    "gcn",
    "gin",
    "cheb",
    "sage",
    "arma",
    "graph",
    "fc",
    "skip",
    "preprocess_linear",
    "postprocess_linear",
    "classifier",
];
const INPUT: u16 = 0;
const OUTPUT: u16 = 1;
const FIRST_OP: u16 = 2;
const PRE: u16 = 11;
const POST: u16 = 12;
const CLASSIFIER: u16 = 13;

/// The NAS-Bench-Graph space.
#[derive(Debug, Clone, Default)]
pub struct NbGraphSpace;

impl SearchSpace for NbGraphSpace {
    type Arch = GraphArch;

    fn name(&self) -> &'static str {
        "nb-graph"
    }

    /// `LINK:op|op|op|op` (the benchmark's `link` and `ops` columns, e.g. `0112:gcn|gat|sage|fc`)
    /// or its numeric `hash`.
    fn parse(&self, text: &str) -> Result<GraphArch, ArchError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ArchError::new("empty NAS-Bench-Graph architecture string"));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return GraphArch::from_hash(text);
        }
        let (link, ops) = text.split_once(':').ok_or_else(|| {
            ArchError::new(format!(
                "'{text}' is neither a NAS-Bench-Graph 'LINK:op|op|op|op' nor a numeric hash"
            ))
        })?;
        GraphArch::from_link_and_ops(text, link, ops)
    }

    fn format(&self, arch: &GraphArch) -> String {
        let ops: Vec<&str> = arch.ops.iter().map(|op| op.name()).collect();
        format!("{}:{}", link_text(arch.link), ops.join("|"))
    }

    /// Isomorphic architectures (the same tree with its nodes numbered otherwise) share a key;
    /// the benchmark lists each class once.
    fn identity(&self, arch: &GraphArch) -> String {
        arch.tree_key(0)
    }

    /// Uniform over the 9 links x 9^4 ops, so not uniform over isomorphism classes, and it
    /// can draw `skip` placements the benchmark left out (see the README).
    fn sample(&self, rng: &mut dyn RngCore) -> GraphArch {
        let mut ops = [GnnOp::Gat; NODES];
        for op in &mut ops {
            *op = GnnOp::ALL[rng.random_range(0..GnnOp::ALL.len())];
        }
        GraphArch {
            link: rng.random_range(0..LINKS.len()),
            ops,
        }
    }

    /// One decision of five: the link pattern or one node's op, always to another value.
    fn mutate(&self, arch: &GraphArch, rng: &mut dyn RngCore) -> GraphArch {
        let mut out = *arch;
        let decision = rng.random_range(0..=NODES);
        if decision == NODES {
            out.link = (arch.link + rng.random_range(1..LINKS.len())) % LINKS.len();
        } else {
            let op = arch.ops[decision].index();
            out.ops[decision] = GnnOp::ALL[(op + rng.random_range(1..GnnOp::ALL.len())) % 9];
        }
        out
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        VOCAB
    }

    /// Input, the 4 computing nodes (node `k` at position `k`), output reading the leaves.
    fn cell_graph(&self, arch: &GraphArch) -> CellGraph {
        let mut ops = vec![INPUT];
        ops.extend(arch.ops.iter().map(|op| FIRST_OP + op.index() as u16));
        ops.push(OUTPUT);
        let mut edges: Vec<(usize, usize)> = LINKS[arch.link]
            .iter()
            .enumerate()
            .map(|(i, &from)| (from as usize, i + 1))
            .collect();
        edges.extend(arch.leaves().into_iter().map(|k| (k, NODES + 1)));
        CellGraph::new(ops, &edges)
    }

    /// Pre-processing (linear), the GNN DAG, post-processing (linear) and classifier.
    fn global_encoding(&self, arch: &GraphArch) -> GlobalEncoding {
        GlobalEncoding {
            cells: vec![
                CellGraph::chain(vec![INPUT, PRE, OUTPUT]),
                self.cell_graph(arch),
                CellGraph::chain(vec![INPUT, POST, CLASSIFIER, OUTPUT]),
            ],
        }
    }

    fn flat_dim(&self) -> usize {
        LINKS.len() + NODES * GnnOp::ALL.len()
    }

    fn flat_features(&self, arch: &GraphArch) -> Vec<f32> {
        let mut f = vec![0.0; self.flat_dim()];
        f[arch.link] = 1.0;
        for (i, op) in arch.ops.iter().enumerate() {
            f[LINKS.len() + i * GnnOp::ALL.len() + op.index()] = 1.0;
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn link_ops_and_hash_forms_agree() {
        let space = NbGraphSpace;
        let a = space.parse("0112:gcn|gat|skip|fc").unwrap();
        assert_eq!(a.link, 6);
        assert_eq!(a.hash(), 61_087);
        assert_eq!(space.parse("61087").unwrap(), a);
        assert_eq!(space.parse("0").unwrap().ops, [GnnOp::Gat; 4]);
        assert_eq!(space.format(&a), "0112:gcn|gat|skip|fc");
    }

    #[test]
    fn errors_are_precise() {
        let space = NbGraphSpace;
        let err = |s: &str| space.parse(s).unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("0210:gcn|gat|gin|fc").contains("link '0210'"));
        assert!(err("0112:gcn|gat|gin").contains("4 ops joined by '|', got 3"));
        assert!(err("0112:gcn|gat|gin|mlp").contains("unknown NAS-Bench-Graph op 'mlp' at node 4"));
        assert!(err("95000").contains("link index 9 is not 0-8"));
        assert!(err("10900").contains("op code 9 of node 2"));
        assert!(err("99999999999").contains("not a number"));
        assert!(err("gcn").contains("neither"));
    }

    #[test]
    fn isomorphic_archs_share_an_identity() {
        let space = NbGraphSpace;
        // all four nodes read the input: any order of the ops is the same network
        let a = space.parse("0000:gcn|gat|sage|fc").unwrap();
        let b = space.parse("0000:fc|sage|gat|gcn").unwrap();
        assert_eq!(space.identity(&a), space.identity(&b));
        assert_ne!(space.format(&a), space.format(&b));
        // 0011: the two children of node 1 swapped
        let c = space.parse("0011:gcn|gat|sage|fc").unwrap();
        let d = space.parse("0011:gcn|gat|fc|sage").unwrap();
        assert_eq!(space.identity(&c), space.identity(&d));
        let e = space.parse("0011:gat|gcn|sage|fc").unwrap();
        assert_ne!(space.identity(&c), space.identity(&e));
    }

    #[test]
    fn every_embedded_row_round_trips_and_is_distinct() {
        let space = NbGraphSpace;
        let table = crate::data::Table::load("nb-graph").unwrap();
        let archs = table.column("arch").unwrap();
        assert_eq!(archs.len(), 26_206);
        let mut seen = std::collections::HashSet::new();
        for text in archs {
            let arch = space.parse(text).unwrap();
            assert_eq!(space.format(&arch), text);
            assert_eq!(space.parse(&arch.hash().to_string()).unwrap(), arch);
            assert!(seen.insert(space.identity(&arch)), "{text}");
        }
        let cora = table.target("cora_valid").unwrap();
        assert!(cora.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    fn encodings_have_the_documented_shapes() {
        let space = NbGraphSpace;
        let arch = space.parse("0112:gcn|gat|skip|fc").unwrap();
        let g = space.cell_graph(&arch);
        assert_eq!(g.num_nodes(), 6);
        // 1<-0, 2<-1, 3<-1, 4<-2; leaves 3 and 4 feed the output
        assert!(g.has_edge(0, 1) && g.has_edge(1, 2) && g.has_edge(1, 3) && g.has_edge(2, 4));
        assert!(g.has_edge(3, 5) && g.has_edge(4, 5));
        assert_eq!(g.num_edges(), 6);
        let global = space.global_encoding(&arch);
        assert_eq!(global.cells.len(), 3);
        assert_eq!(global.cells[1], g);
        let f = space.flat_features(&arch);
        assert_eq!(f.len(), 45);
        assert_eq!(f.iter().sum::<f32>(), 5.0);
        assert!(SearchSpace::proxy_program(&space, &arch, &Default::default()).is_none());
    }

    proptest! {
        #[test]
        fn sampled_and_mutated_archs_round_trip(seed in any::<u64>()) {
            let space = NbGraphSpace;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let a = space.sample(&mut rng);
            prop_assert_eq!(space.parse(&space.format(&a)).unwrap(), a);
            prop_assert_eq!(space.parse(&a.hash().to_string()).unwrap(), a);
            let m = space.mutate(&a, &mut rng);
            prop_assert_eq!(space.parse(&space.format(&m)).unwrap(), m);
            let changed = usize::from(a.link != m.link)
                + a.ops.iter().zip(&m.ops).filter(|(x, y)| x != y).count();
            prop_assert_eq!(changed, 1);
            // one decision changed: never an isomorphic copy
            prop_assert_ne!(space.identity(&a), space.identity(&m));
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = NbGraphSpace.parse(&s);
        }
    }
}
