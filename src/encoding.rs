//! Architectures as graphs: one cell graph (op-on-node, upper-triangular DAG) and the global
//! encoding, the whole network as a sequence of cell graphs. Also the padding of many such
//! sequences into dense, batched arrays that the GCN consumes.

/// One cell: nodes are operations, edges go from a lower to a higher node index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CellGraph {
    /// Node types, as indices into the space's node vocabulary.
    ops: Vec<u16>,
    /// Row-major `n x n`; `adjacency[i * n + j]` is the edge `i -> j`.
    adjacency: Vec<bool>,
}

impl CellGraph {
    /// Build a cell from its node types and `(from, to)` edges with `from < to`.
    ///
    /// Spaces call this with graphs they constructed themselves, so a backward edge is a bug in
    /// the space, not bad user input.
    pub fn new(ops: Vec<u16>, edges: &[(usize, usize)]) -> Self {
        let n = ops.len();
        let mut adjacency = vec![false; n * n];
        for &(from, to) in edges {
            assert!(
                from < to && to < n,
                "cell edge {from}->{to} is not forward in a {n}-node cell"
            );
            adjacency[from * n + to] = true;
        }
        Self { ops, adjacency }
    }

    /// A chain `ops[0] -> ops[1] -> ...`, the shape of most fixed blocks of a skeleton.
    pub fn chain(ops: Vec<u16>) -> Self {
        let edges: Vec<(usize, usize)> = (1..ops.len()).map(|i| (i - 1, i)).collect();
        Self::new(ops, &edges)
    }

    pub fn num_nodes(&self) -> usize {
        self.ops.len()
    }

    pub fn ops(&self) -> &[u16] {
        &self.ops
    }

    pub fn has_edge(&self, from: usize, to: usize) -> bool {
        let n = self.ops.len();
        from < n && to < n && self.adjacency[from * n + to]
    }

    pub fn num_edges(&self) -> usize {
        self.adjacency.iter().filter(|&&e| e).count()
    }

    /// The cell as it computes: nodes whose op outputs nothing (`is_zero`, e.g. `none`) are
    /// dropped, and so is every node not on a path from node 0 (input) to the last node
    /// (output). Functionally equal cells then get equal graphs, and the GCN sees only the data
    /// flow that exists. A cell with no input-output path keeps just its two end nodes.
    pub fn pruned(&self, is_zero: impl Fn(u16) -> bool) -> CellGraph {
        let n = self.num_nodes();
        if n < 2 {
            return self.clone();
        }
        let (input, output) = (0, n - 1);
        let alive: Vec<bool> = (0..n)
            .map(|i| i == input || i == output || !is_zero(self.ops[i]))
            .collect();
        let mut from_input = vec![false; n];
        from_input[input] = true;
        for j in 1..n {
            from_input[j] = alive[j] && (0..j).any(|i| from_input[i] && self.has_edge(i, j));
        }
        let mut to_output = vec![false; n];
        to_output[output] = true;
        for i in (0..n - 1).rev() {
            to_output[i] = alive[i] && (i + 1..n).any(|j| to_output[j] && self.has_edge(i, j));
        }
        let connected = from_input[output];
        let keep: Vec<usize> = (0..n)
            .filter(|&i| i == input || i == output || (connected && from_input[i] && to_output[i]))
            .collect();
        let ops = keep.iter().map(|&i| self.ops[i]).collect();
        let mut edges = Vec::new();
        for (a, &i) in keep.iter().enumerate() {
            for (b, &j) in keep.iter().enumerate() {
                if connected && self.has_edge(i, j) {
                    edges.push((a, b));
                }
            }
        }
        CellGraph::new(ops, &edges)
    }
}

/// The whole network, in execution order, as cell graphs; fixed blocks of the skeleton (stem,
/// reduction blocks, head) are cells too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GlobalEncoding {
    pub cells: Vec<CellGraph>,
}

/// Many cell sequences padded to a common length `L` and node count `N`, laid out as
/// `[L, B, ...]` so the GCN can walk the sequence with one batched step per position.
///
/// Adjacencies carry self-loops and are row-normalised, per direction, as in NP / NASLib:
/// `forward[i][j] > 0` when `j -> i` (node i gathers from its inputs), `backward` the reverse.
/// Padding nodes and padding cells are all-zero rows, so they never feed real nodes.
#[derive(Debug, Clone)]
pub struct PackedGraphs {
    pub batch: usize,
    pub seq_len: usize,
    pub nodes: usize,
    pub vocab: usize,
    /// `[L, B, N, V]` one-hot node types.
    pub features: Vec<f32>,
    /// `[L, B, N, N]`.
    pub forward: Vec<f32>,
    /// `[L, B, N, N]`.
    pub backward: Vec<f32>,
    /// `[L, B, N]`: `1 / nodes` on the real nodes of a real cell, 0 elsewhere (mean pooling).
    pub pool: Vec<f32>,
    /// `[L, B]`: `1 / cells` on the real cells of each sequence, 0 on padding.
    pub cell_weight: Vec<f32>,
    /// `[L, B]`: 1 on real cells, 0 on padding (carries z over padding positions unchanged).
    pub cell_mask: Vec<f32>,
}

impl PackedGraphs {
    /// Pack sequences of cells. `vocab` is the size of the space's node vocabulary.
    pub fn pack(sequences: &[&[CellGraph]], vocab: usize) -> Self {
        let batch = sequences.len();
        let seq_len = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let nodes = sequences
            .iter()
            .flat_map(|s| s.iter().map(CellGraph::num_nodes))
            .max()
            .unwrap_or(0);
        let mut packed = Self {
            batch,
            seq_len,
            nodes,
            vocab,
            features: vec![0.0; seq_len * batch * nodes * vocab],
            forward: vec![0.0; seq_len * batch * nodes * nodes],
            backward: vec![0.0; seq_len * batch * nodes * nodes],
            pool: vec![0.0; seq_len * batch * nodes],
            cell_weight: vec![0.0; seq_len * batch],
            cell_mask: vec![0.0; seq_len * batch],
        };
        for (b, seq) in sequences.iter().enumerate() {
            for (l, cell) in seq.iter().enumerate() {
                packed.fill_cell(l, b, cell, seq.len());
            }
        }
        packed
    }

    fn fill_cell(&mut self, l: usize, b: usize, cell: &CellGraph, seq_len: usize) {
        let (n_max, v) = (self.nodes, self.vocab);
        let n = cell.num_nodes();
        let slot = l * self.batch + b;
        self.cell_weight[slot] = 1.0 / seq_len as f32;
        self.cell_mask[slot] = 1.0;
        for (i, &op) in cell.ops().iter().enumerate() {
            assert!(
                (op as usize) < v,
                "node type {op} outside a vocabulary of {v}"
            );
            self.features[(slot * n_max + i) * v + op as usize] = 1.0;
            self.pool[slot * n_max + i] = 1.0 / n as f32;
        }
        let base = slot * n_max * n_max;
        for i in 0..n {
            let inputs: Vec<usize> = (0..n).filter(|&j| j == i || cell.has_edge(j, i)).collect();
            let outputs: Vec<usize> = (0..n).filter(|&j| j == i || cell.has_edge(i, j)).collect();
            for &j in &inputs {
                self.forward[base + i * n_max + j] = 1.0 / inputs.len() as f32;
            }
            for &j in &outputs {
                self.backward[base + i * n_max + j] = 1.0 / outputs.len() as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diamond() -> CellGraph {
        CellGraph::new(vec![0, 1, 2, 3], &[(0, 1), (0, 2), (1, 3), (2, 3)])
    }

    #[test]
    fn adjacency_rows_are_normalised_with_self_loops() {
        let g = diamond();
        let p = PackedGraphs::pack(&[std::slice::from_ref(&g)], 4);
        // node 3 gathers from 1, 2 and itself
        let row3: Vec<f32> = p.forward[12..16].to_vec();
        assert_eq!(row3, vec![0.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]);
        // node 0 sends to 1, 2 and itself
        let row0: Vec<f32> = p.backward[0..4].to_vec();
        assert_eq!(row0, vec![1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0]);
        for i in 0..4 {
            let s: f32 = p.forward[i * 4..i * 4 + 4].iter().sum();
            assert!((s - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn padding_cells_and_nodes_are_zero() {
        let small = CellGraph::chain(vec![0, 1]);
        let a = vec![diamond(), diamond()];
        let b = vec![small];
        let p = PackedGraphs::pack(&[&a, &b], 4);
        assert_eq!((p.batch, p.seq_len, p.nodes), (2, 2, 4));
        // sequence b, cell 0: nodes 2 and 3 are padding
        let slot = 1;
        assert_eq!(p.pool[slot * 4 + 2], 0.0);
        assert_eq!(p.pool[slot * 4], 0.5);
        // sequence b has no cell 1
        assert_eq!(p.cell_mask[2 + 1], 0.0);
        assert_eq!(p.cell_weight[1], 1.0);
        assert_eq!(p.cell_weight[0], 0.5);
        let pad_features: f32 = p.features[(3 * 4) * 4..(4 * 4) * 4].iter().sum();
        assert_eq!(pad_features, 0.0);
    }

    #[test]
    fn pruning_drops_zero_ops_and_dead_ends() {
        // 0 -> 1(zero) -> 3, 0 -> 2 -> 3, 0 -> 4(dead end, reaches nothing), 3 -> 5
        let g = CellGraph::new(
            vec![0, 9, 2, 2, 2, 1],
            &[(0, 1), (1, 3), (0, 2), (2, 3), (0, 4), (3, 5)],
        );
        let p = g.pruned(|op| op == 9);
        assert_eq!(p.ops(), &[0, 2, 2, 1]);
        assert!(p.has_edge(0, 1) && p.has_edge(1, 2) && p.has_edge(2, 3));
        assert_eq!(p.num_edges(), 3);
        // no path at all: only the end nodes remain
        let cut = CellGraph::new(vec![0, 9, 1], &[(0, 1), (1, 2)]).pruned(|op| op == 9);
        assert_eq!(cut.ops(), &[0, 1]);
        assert_eq!(cut.num_edges(), 0);
    }

    #[test]
    #[should_panic]
    fn backward_edges_are_rejected() {
        CellGraph::new(vec![0, 1], &[(1, 0)]);
    }
}
