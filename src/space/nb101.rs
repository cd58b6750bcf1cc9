//! NAS-Bench-101: a cell of up to 7 nodes (input, up to 5 operations, output) and up to 9
//! edges, stacked as stem / 3 stacks of 3 cells with max-pool downsampling between / head.
//!
//! Cells are kept in the benchmark's pruned form: nodes that are not on an input-output path
//! are dropped, as `nasbench.api.ModelSpec` does, so the canonical string is what the
//! benchmark stores. Isomorphic cells are recognised by [`Nb101Arch::graph_hash`], the
//! benchmark's own hash.

use std::fmt;

use md5::{Digest, Md5};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use super::{ArchError, SearchSpace};
use crate::encoding::{CellGraph, GlobalEncoding};
use crate::target::{CLASSES, Layer, ProxyConfig, ProxyProgram, Slot};

pub const MAX_NODES: usize = 7;
pub const MAX_EDGES: usize = 9;

/// The three cell operations, in the benchmark's label order (the hash labels them 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Nb101Op {
    Conv3x3,
    Conv1x1,
    MaxPool3x3,
}

impl Nb101Op {
    pub const ALL: [Nb101Op; 3] = [Nb101Op::Conv3x3, Nb101Op::Conv1x1, Nb101Op::MaxPool3x3];

    pub fn name(self) -> &'static str {
        match self {
            Nb101Op::Conv3x3 => "conv3x3-bn-relu",
            Nb101Op::Conv1x1 => "conv1x1-bn-relu",
            Nb101Op::MaxPool3x3 => "maxpool3x3",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// A pruned NB101 cell: `n` nodes in topological order (0 = input, `n - 1` = output) with a
/// strictly upper-triangular adjacency.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nb101Arch {
    /// Row-major `n x n`, `adjacency[i * n + j]` for the edge `i -> j`.
    adjacency: Vec<bool>,
    /// Operations of the interior nodes `1..n-1`.
    ops: Vec<Nb101Op>,
}

/// The JSON form: `{"matrix": [[0, 1, ...], ...], "ops": ["input", ..., "output"]}`, the
/// fields of `nasbench.api.ModelSpec`.
#[derive(Serialize, Deserialize)]
struct JsonSpec {
    matrix: Vec<Vec<u8>>,
    ops: Vec<String>,
}

impl Nb101Arch {
    /// Check and prune a cell given as a full matrix and op list (with `input` / `output`).
    pub fn new(n: usize, adjacency: Vec<bool>, op_names: &[&str]) -> Result<Self, ArchError> {
        if !(2..=MAX_NODES).contains(&n) {
            return Err(ArchError::new(format!(
                "an NB101 cell has 2 to {MAX_NODES} nodes, got {n}"
            )));
        }
        if op_names.len() != n {
            return Err(ArchError::new(format!(
                "{} operations for {n} nodes: give one per node, 'input' first and 'output' last",
                op_names.len()
            )));
        }
        if op_names[0] != "input" || op_names[n - 1] != "output" {
            return Err(ArchError::new(format!(
                "the first operation must be 'input' and the last 'output', got '{}' and '{}'",
                op_names[0],
                op_names[n - 1]
            )));
        }
        let ops = op_names[1..n - 1]
            .iter()
            .enumerate()
            .map(|(k, name)| {
                Nb101Op::from_name(name).ok_or_else(|| {
                    ArchError::new(format!(
                        "unknown NB101 operation '{name}' at node {} (expected conv3x3-bn-relu, conv1x1-bn-relu or maxpool3x3)",
                        k + 1
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..n {
            for j in 0..=i {
                if adjacency[i * n + j] {
                    let what = if i == j { "a self-loop" } else { "backwards" };
                    return Err(ArchError::new(format!(
                        "edge {i} -> {j} is {what}: the adjacency must be strictly upper-triangular (nodes in topological order, no cycle)"
                    )));
                }
            }
        }
        let arch = prune(n, &adjacency, &ops)?;
        let edges = arch.num_edges();
        if edges > MAX_EDGES {
            return Err(ArchError::new(format!(
                "{edges} edges after pruning; NB101 cells have at most {MAX_EDGES}"
            )));
        }
        Ok(arch)
    }

    pub fn num_nodes(&self) -> usize {
        self.ops.len() + 2
    }

    pub fn num_edges(&self) -> usize {
        self.adjacency.iter().filter(|&&e| e).count()
    }

    pub fn has_edge(&self, i: usize, j: usize) -> bool {
        self.adjacency[i * self.num_nodes() + j]
    }

    pub fn ops(&self) -> &[Nb101Op] {
        &self.ops
    }

    /// Node labels as the benchmark's hash sees them: -1 input, op index, -2 output.
    fn labels(&self) -> Vec<i32> {
        let mut labels = vec![-1];
        labels.extend(self.ops.iter().map(|op| op.index() as i32));
        labels.push(-2);
        labels
    }

    fn op_names(&self) -> Vec<&'static str> {
        let mut names = vec!["input"];
        names.extend(self.ops.iter().map(|op| op.name()));
        names.push("output");
        names
    }

    /// The benchmark's isomorphism-invariant hash (`nasbench.lib.graph_util.hash_module`):
    /// per node, md5 of (out-degree, in-degree, label), refined `n` times with the sorted
    /// hashes of its in- and out-neighbours; the fingerprint is the md5 of the sorted list.
    pub fn graph_hash(&self) -> String {
        let n = self.num_nodes();
        let labels = self.labels();
        let mut hashes: Vec<String> = (0..n)
            .map(|v| {
                let out_deg = (0..n).filter(|&w| self.has_edge(v, w)).count();
                let in_deg = (0..n).filter(|&w| self.has_edge(w, v)).count();
                md5_hex(&format!("({out_deg}, {in_deg}, {})", labels[v]))
            })
            .collect();
        for _ in 0..n {
            hashes = (0..n)
                .map(|v| {
                    let mut ins: Vec<&str> = (0..n)
                        .filter(|&w| self.has_edge(w, v))
                        .map(|w| hashes[w].as_str())
                        .collect();
                    let mut outs: Vec<&str> = (0..n)
                        .filter(|&w| self.has_edge(v, w))
                        .map(|w| hashes[w].as_str())
                        .collect();
                    ins.sort_unstable();
                    outs.sort_unstable();
                    md5_hex(&format!("{}|{}|{}", ins.concat(), outs.concat(), hashes[v]))
                })
                .collect();
        }
        hashes.sort_unstable();
        // Python's str() of a list of str: ['a', 'b']
        let listed: Vec<String> = hashes.iter().map(|h| format!("'{h}'")).collect();
        md5_hex(&format!("[{}]", listed.join(", ")))
    }

    /// The adjacency digits, row-major.
    pub fn adjacency_digits(&self) -> String {
        self.adjacency
            .iter()
            .map(|&e| if e { '1' } else { '0' })
            .collect()
    }

    /// `{"matrix": ..., "ops": ...}`.
    pub fn to_json(&self) -> String {
        let n = self.num_nodes();
        let spec = JsonSpec {
            matrix: (0..n)
                .map(|i| (0..n).map(|j| u8::from(self.has_edge(i, j))).collect())
                .collect(),
            ops: self.op_names().iter().map(|s| s.to_string()).collect(),
        };
        serde_json::to_string(&spec).expect("plain data serialises")
    }

    fn parse_compact(text: &str) -> Result<Self, ArchError> {
        let (digits, ops) = text.split_once(':').ok_or_else(|| {
            ArchError::new(format!(
                "'{text}' is not an NB101 cell: expected ADJACENCY:OPS (e.g. 0110001000...:input|conv3x3-bn-relu|...|output) or JSON"
            ))
        })?;
        let digits = digits.trim();
        let n = (1..=MAX_NODES)
            .find(|n| n * n == digits.len())
            .ok_or_else(|| {
                ArchError::new(format!(
                    "adjacency has {} digits; expected n x n for n in 2..={MAX_NODES}",
                    digits.len()
                ))
            })?;
        let adjacency = digits
            .chars()
            .map(|c| match c {
                '0' => Ok(false),
                '1' => Ok(true),
                other => Err(ArchError::new(format!(
                    "adjacency digit '{other}' is not 0 or 1"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<&str> = ops.split('|').map(str::trim).collect();
        Self::new(n, adjacency, &names)
    }

    fn parse_json(text: &str) -> Result<Self, ArchError> {
        let spec: JsonSpec = serde_json::from_str(text)
            .map_err(|e| ArchError::new(format!("bad NB101 JSON cell: {e}")))?;
        let n = spec.matrix.len();
        if let Some(row) = spec.matrix.iter().find(|r| r.len() != n) {
            return Err(ArchError::new(format!(
                "the matrix must be square: a row has {} entries for {n} rows",
                row.len()
            )));
        }
        let mut adjacency = Vec::with_capacity(n * n);
        for row in &spec.matrix {
            for &v in row {
                match v {
                    0 => adjacency.push(false),
                    1 => adjacency.push(true),
                    other => {
                        return Err(ArchError::new(format!(
                            "matrix entry {other} is not 0 or 1"
                        )));
                    }
                }
            }
        }
        let names: Vec<&str> = spec.ops.iter().map(String::as_str).collect();
        Self::new(n, adjacency, &names)
    }
}

/// `ADJACENCY:OPS`, e.g. `0110...:input|conv3x3-bn-relu|...|output`.
impl fmt::Display for Nb101Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.adjacency_digits(),
            self.op_names().join("|")
        )
    }
}

fn md5_hex(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Drop the nodes that are not on an input-output path (`ModelSpec._prune`).
fn prune(n: usize, adjacency: &[bool], ops: &[Nb101Op]) -> Result<Nb101Arch, ArchError> {
    let edge = |i: usize, j: usize| adjacency[i * n + j];
    let mut from_input = vec![false; n];
    from_input[0] = true;
    for j in 1..n {
        from_input[j] = (0..j).any(|i| from_input[i] && edge(i, j));
    }
    let mut to_output = vec![false; n];
    to_output[n - 1] = true;
    for i in (0..n - 1).rev() {
        to_output[i] = (i + 1..n).any(|j| to_output[j] && edge(i, j));
    }
    if !from_input[n - 1] {
        return Err(ArchError::new(
            "input and output are not connected: no path from the input to the output",
        ));
    }
    let keep: Vec<usize> = (0..n).filter(|&v| from_input[v] && to_output[v]).collect();
    let m = keep.len();
    let mut pruned = vec![false; m * m];
    for (a, &i) in keep.iter().enumerate() {
        for (b, &j) in keep.iter().enumerate() {
            pruned[a * m + b] = edge(i, j);
        }
    }
    let ops = keep[1..m - 1].iter().map(|&v| ops[v - 1]).collect();
    Ok(Nb101Arch {
        adjacency: pruned,
        ops,
    })
}

// Node vocabulary: cell node types first, then the fixed blocks of the skeleton.
const VOCAB: &[&str] = &[
    "input",
    "output",
    "conv3x3-bn-relu",
    "conv1x1-bn-relu",
    "maxpool3x3",
    "stem_conv3x3_bn_relu",
    "downsample_maxpool2x2",
    "head_global_avgpool",
    "head_linear",
];
const INPUT: u16 = 0;
const OUTPUT: u16 = 1;
const FIRST_OP: u16 = 2;
const STEM: u16 = 5;
const DOWNSAMPLE: u16 = 6;
const HEAD_GAP: u16 = 7;
const HEAD_LINEAR: u16 = 8;

/// The NAS-Bench-101 space with its benchmark skeleton (3 stacks of `cells_per_stack` cells).
#[derive(Debug, Clone)]
pub struct Nb101Space {
    pub cells_per_stack: usize,
}

impl Default for Nb101Space {
    fn default() -> Self {
        Self { cells_per_stack: 3 }
    }
}

impl Nb101Space {
    /// A 7-node random cell with edges drawn with probability 1/2 and random operations, drawn
    /// again until valid (the benchmark's own sampler).
    fn sample_full(&self, rng: &mut dyn RngCore) -> Nb101Arch {
        loop {
            let n = MAX_NODES;
            let mut adjacency = vec![false; n * n];
            for i in 0..n {
                for j in i + 1..n {
                    adjacency[i * n + j] = rng.random_bool(0.5);
                }
            }
            let names = random_op_names(n, rng);
            if let Ok(arch) = Nb101Arch::new(n, adjacency, &names) {
                return arch;
            }
        }
    }
}

fn random_op_names(n: usize, rng: &mut dyn RngCore) -> Vec<&'static str> {
    let mut names = vec!["input"];
    names.extend((1..n - 1).map(|_| Nb101Op::ALL[rng.random_range(0..3)].name()));
    names.push("output");
    names
}

/// Channels of every node of a cell with `c_in` input and `c_out` output channels
/// (`nasbench.lib.model_builder.compute_vertex_channels`): the output's channels are split
/// evenly over the interior nodes that feed it (the remainder to the first ones), and a node
/// that feeds only other nodes gets the widest of its successors (they truncate it).
fn vertex_channels(arch: &Nb101Arch, c_in: usize, c_out: usize) -> Vec<usize> {
    let n = arch.num_nodes();
    let mut channels = vec![0; n];
    channels[0] = c_in;
    channels[n - 1] = c_out;
    let out = n - 1;
    let feeding = (1..out).filter(|&v| arch.has_edge(v, out)).count();
    if feeding == 0 {
        return channels;
    }
    let (share, mut extra) = (c_out / feeding, c_out % feeding);
    for (v, ch) in channels.iter_mut().enumerate().take(out).skip(1) {
        if arch.has_edge(v, out) {
            *ch = share + usize::from(extra > 0);
            extra = extra.saturating_sub(1);
        }
    }
    for v in (1..out).rev() {
        if !arch.has_edge(v, out) {
            channels[v] = (v + 1..out)
                .filter(|&w| arch.has_edge(v, w))
                .map(|w| channels[w])
                .max()
                .unwrap_or(0);
        }
    }
    channels
}

/// Append one NB101 cell as the benchmark builds it: a conv1x1-BN-ReLU projection of the cell
/// input into every node it feeds, wider nodes truncated into narrower ones, the interior
/// nodes feeding the output concatenated, and a projected input added to that when the input
/// feeds the output directly. Projections into node `t` are generated from node `t`'s feature.
fn push_cell(
    p: &mut ProxyProgram,
    arch: &Nb101Arch,
    cell: usize,
    input: usize,
    c_in: usize,
    c_out: usize,
) -> usize {
    let n = arch.num_nodes();
    let out = n - 1;
    let channels = vertex_channels(arch, c_in, c_out);
    let slot = |node| Some(Slot { cell, node });
    let project = |p: &mut ProxyProgram, node: usize| {
        let conv = p.push(
            Layer::conv_norm(1, 1, c_in, channels[node]),
            vec![input],
            slot(node),
        );
        p.push(Layer::Relu, vec![conv], None)
    };
    let mut at = vec![input; n];
    for t in 1..out {
        let mut summands = Vec::new();
        for src in (1..t).filter(|&src| arch.has_edge(src, t)) {
            summands.push(if channels[src] > channels[t] {
                p.push(
                    Layer::Truncate {
                        channels: channels[t],
                    },
                    vec![at[src]],
                    None,
                )
            } else {
                at[src]
            });
        }
        if arch.has_edge(0, t) {
            summands.push(project(p, t));
        }
        let c = channels[t];
        at[t] = match arch.ops[t - 1] {
            Nb101Op::Conv3x3 | Nb101Op::Conv1x1 => {
                let kernel = if arch.ops[t - 1] == Nb101Op::Conv3x3 {
                    3
                } else {
                    1
                };
                let conv = p.push(Layer::conv_norm(kernel, 1, c, c), summands, slot(t));
                p.push(Layer::Relu, vec![conv], None)
            }
            Nb101Op::MaxPool3x3 => p.push(
                Layer::MaxPool {
                    kernel: 3,
                    stride: 1,
                },
                summands,
                None,
            ),
        };
    }
    let feeding: Vec<usize> = (1..out)
        .filter(|&v| arch.has_edge(v, out))
        .map(|v| at[v])
        .collect();
    if feeding.is_empty() {
        return project(p, out);
    }
    let concat = p.push(Layer::Concat, feeding, None);
    if arch.has_edge(0, out) {
        let projected = project(p, out);
        p.push(Layer::Identity, vec![concat, projected], None)
    } else {
        concat
    }
}

impl SearchSpace for Nb101Space {
    type Arch = Nb101Arch;

    fn name(&self) -> &'static str {
        "nb101"
    }

    fn parse(&self, text: &str) -> Result<Nb101Arch, ArchError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ArchError::new("empty NB101 architecture string"));
        }
        if text.starts_with('{') {
            Nb101Arch::parse_json(text)
        } else {
            Nb101Arch::parse_compact(text)
        }
    }

    fn format(&self, arch: &Nb101Arch) -> String {
        arch.to_string()
    }

    fn identity(&self, arch: &Nb101Arch) -> String {
        arch.graph_hash()
    }

    fn sample(&self, rng: &mut dyn RngCore) -> Nb101Arch {
        self.sample_full(rng)
    }

    /// Pad the cell back to 7 nodes (unused nodes with random ops just before the output), then
    /// flip one edge or change one operation, until the result is valid and not isomorphic to
    /// the original.
    fn mutate(&self, arch: &Nb101Arch, rng: &mut dyn RngCore) -> Nb101Arch {
        let original = arch.graph_hash();
        let n = arch.num_nodes();
        let full = MAX_NODES;
        // node v of the cell sits at v, except the output, which moves to the last slot
        let slot = |v: usize| if v == n - 1 { full - 1 } else { v };
        let mut tries = 0usize;
        loop {
            let mut adjacency = vec![false; full * full];
            for i in 0..n {
                for j in 0..n {
                    if arch.has_edge(i, j) {
                        adjacency[slot(i) * full + slot(j)] = true;
                    }
                }
            }
            let mut names = random_op_names(full, rng);
            for (k, op) in arch.ops.iter().enumerate() {
                names[k + 1] = op.name();
            }
            // Some cells have no valid one-step neighbour (input -> output alone: any single
            // added edge dangles); after every 50 failed draws, allow one more change.
            for _ in 0..1 + tries / 50 {
                if rng.random_bool(0.5) {
                    let i = rng.random_range(0..full - 1);
                    let j = rng.random_range(i + 1..full);
                    adjacency[i * full + j] = !adjacency[i * full + j];
                } else {
                    let v = rng.random_range(1..full - 1);
                    let current = names[v];
                    let others: Vec<Nb101Op> = Nb101Op::ALL
                        .into_iter()
                        .filter(|op| op.name() != current)
                        .collect();
                    names[v] = others[rng.random_range(0..others.len())].name();
                }
            }
            tries += 1;
            if let Ok(next) = Nb101Arch::new(full, adjacency, &names)
                && next.graph_hash() != original
            {
                return next;
            }
        }
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        VOCAB
    }

    fn cell_graph(&self, arch: &Nb101Arch) -> CellGraph {
        let n = arch.num_nodes();
        let mut ops = vec![INPUT];
        ops.extend(arch.ops.iter().map(|op| FIRST_OP + op.index() as u16));
        ops.push(OUTPUT);
        let edges: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .filter(|&(i, j)| arch.has_edge(i, j))
            .collect();
        CellGraph::new(ops, &edges)
    }

    fn global_encoding(&self, arch: &Nb101Arch) -> GlobalEncoding {
        let cell = self.cell_graph(arch);
        let mut cells = vec![CellGraph::chain(vec![INPUT, STEM, OUTPUT])];
        for stack in 0..3 {
            if stack > 0 {
                cells.push(CellGraph::chain(vec![INPUT, DOWNSAMPLE, OUTPUT]));
            }
            cells.extend(std::iter::repeat_n(cell.clone(), self.cells_per_stack));
        }
        cells.push(CellGraph::chain(vec![INPUT, HEAD_GAP, HEAD_LINEAR, OUTPUT]));
        GlobalEncoding { cells }
    }

    /// The upper triangle of the cell padded to 7 nodes (output in the last slot), then a
    /// one-hot op per interior slot (all zero for an unused slot).
    fn flat_dim(&self) -> usize {
        MAX_NODES * (MAX_NODES - 1) / 2 + (MAX_NODES - 2) * Nb101Op::ALL.len()
    }

    fn flat_features(&self, arch: &Nb101Arch) -> Vec<f32> {
        let n = arch.num_nodes();
        let full = MAX_NODES;
        let slot = |v: usize| if v == n - 1 { full - 1 } else { v };
        let mut padded = vec![false; full * full];
        for i in 0..n {
            for j in 0..n {
                if arch.has_edge(i, j) {
                    padded[slot(i) * full + slot(j)] = true;
                }
            }
        }
        let mut features = Vec::with_capacity(self.flat_dim());
        for i in 0..full {
            for j in i + 1..full {
                features.push(f32::from(u8::from(padded[i * full + j])));
            }
        }
        let mut ops = vec![0.0; (full - 2) * 3];
        for (k, op) in arch.ops.iter().enumerate() {
            ops[k * 3 + op.index()] = 1.0;
        }
        features.extend(ops);
        features
    }

    /// The benchmark network (conv3x3-BN-ReLU stem, 3 stacks of cells with 2x2 max-pool
    /// downsampling and doubled channels between them, global pooling, linear classifier) at
    /// proxy size: the first `config.cells_per_stage` cells of each stack, and `2 * width`
    /// channels in the first stack, because the concatenation splits a cell's channels over up
    /// to five nodes.
    fn proxy_program(&self, arch: &Nb101Arch, config: &ProxyConfig) -> Option<ProxyProgram> {
        let mut p = ProxyProgram::default();
        let image = p.push(Layer::Image, vec![], None);
        let mut channels = 2 * config.width;
        let stem = p.push(
            Layer::conv_norm(3, 1, 3, channels),
            vec![image],
            Some(Slot { cell: 0, node: 1 }),
        );
        let mut x = p.push(Layer::Relu, vec![stem], None);
        let mut cell = 1;
        for stack in 0..3 {
            let mut c_in = channels;
            if stack > 0 {
                let pool = Layer::MaxPool {
                    kernel: 2,
                    stride: 2,
                };
                x = p.push(pool, vec![x], None);
                channels *= 2;
                cell += 1;
            }
            for j in 0..self.cells_per_stack {
                if j < config.cells_per_stage {
                    x = push_cell(&mut p, arch, cell, x, c_in, channels);
                    c_in = channels;
                }
                cell += 1;
            }
        }
        let pooled = p.push(Layer::GlobalAvgPool, vec![x], None);
        p.push(
            Layer::Linear {
                c_in: channels,
                c_out: CLASSES,
            },
            vec![pooled],
            Some(Slot { cell, node: 2 }),
        );
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::testing::check_program;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The benchmark's first cell (hash 00005c142e6f48ac74fdcf73e3439874).
    const EXAMPLE: &str = "0100110001000000010010000010000001000000010000000:input|conv3x3-bn-relu|maxpool3x3|conv3x3-bn-relu|conv3x3-bn-relu|conv1x1-bn-relu|output";

    #[test]
    fn compact_and_json_forms_round_trip() {
        let space = Nb101Space::default();
        let a = space.parse(EXAMPLE).unwrap();
        assert_eq!(space.format(&a), EXAMPLE);
        let b = space.parse(&a.to_json()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.num_nodes(), 7);
    }

    #[test]
    fn dangling_nodes_are_pruned() {
        let space = Nb101Space::default();
        // 0 -> 1 -> 3, 0 -> 2 (2 reaches nothing)
        let a = space
            .parse("0110000100000000:input|conv3x3-bn-relu|maxpool3x3|output")
            .unwrap();
        assert_eq!(space.format(&a), "010001000:input|conv3x3-bn-relu|output");
    }

    #[test]
    fn errors_are_precise() {
        let space = Nb101Space::default();
        let err = |s: &str| space.parse(s).unwrap_err().to_string();
        assert!(err("0100:input|output|x").contains("3 operations for 2 nodes"));
        assert!(
            err("010001000:input|conv5x5|output")
                .contains("unknown NB101 operation 'conv5x5' at node 1")
        );
        assert!(err("011:input|output").contains("3 digits"));
        assert!(err("010001100:input|conv3x3-bn-relu|output").contains("edge 2 -> 0 is backwards"));
        assert!(err("110000000:input|conv3x3-bn-relu|output").contains("self-loop"));
        assert!(
            err("010000000:input|conv3x3-bn-relu|output")
                .contains("input and output are not connected")
        );
        assert!(err("0102:input|output").contains("'2' is not 0 or 1"));
        assert!(err("input|output").contains("expected ADJACENCY:OPS"));
        assert!(
            err("{\"matrix\": [[0, 1], [0]], \"ops\": [\"input\", \"output\"]}").contains("square")
        );
        // 10 edges: every pair except two, on 5 nodes plus a complete DAG on 7 nodes
        let full: String = (0..7)
            .flat_map(|i| (0..7).map(move |j| if j > i { '1' } else { '0' }))
            .collect();
        let ops = "input|conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|output";
        assert!(err(&format!("{full}:{ops}")).contains("21 edges after pruning"));
    }

    #[test]
    fn isomorphic_cells_hash_equal_and_different_cells_do_not() {
        let space = Nb101Space::default();
        // two branches in either order: input -> {conv3x3, maxpool} -> output
        let a = space
            .parse("0110000100010000:input|conv3x3-bn-relu|maxpool3x3|output")
            .unwrap();
        let b = space
            .parse("0110000100010000:input|maxpool3x3|conv3x3-bn-relu|output")
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(a.graph_hash(), b.graph_hash());
        let c = space
            .parse("0110000100010000:input|conv1x1-bn-relu|maxpool3x3|output")
            .unwrap();
        assert_ne!(a.graph_hash(), c.graph_hash());
        assert_eq!(a.graph_hash().len(), 32);
    }

    /// Hashes published with the benchmark's data (nasbench's README cell and the first cell of
    /// the dataset, as quoted by NNI's and nasbench-rs's tests), the second one also relabelled.
    #[test]
    fn graph_hash_matches_the_benchmark() {
        let space = Nb101Space::default();
        let json = |matrix: &str, ops: &str| format!("{{\"matrix\": {matrix}, \"ops\": {ops}}}");
        let cases = [
            (
                "[[0,1,0,0,1,1,0],[0,0,1,0,0,0,0],[0,0,0,1,0,0,1],[0,0,0,0,0,1,0],[0,0,0,0,0,1,0],[0,0,0,0,0,0,1],[0,0,0,0,0,0,0]]",
                r#"["input","conv3x3-bn-relu","maxpool3x3","conv3x3-bn-relu","conv3x3-bn-relu","conv1x1-bn-relu","output"]"#,
                "00005c142e6f48ac74fdcf73e3439874",
            ),
            (
                "[[0,1,1,1,0,1,0],[0,0,0,0,0,0,1],[0,0,0,0,0,0,1],[0,0,0,0,1,0,0],[0,0,0,0,0,0,1],[0,0,0,0,0,0,1],[0,0,0,0,0,0,0]]",
                r#"["input","conv1x1-bn-relu","conv3x3-bn-relu","conv3x3-bn-relu","conv3x3-bn-relu","maxpool3x3","output"]"#,
                "28cfc7874f6d200472e1a9dcd8650aa0",
            ),
            (
                "[[0,1,1,1,1,0,0],[0,0,0,0,0,0,1],[0,0,0,0,0,0,1],[0,0,0,0,0,0,1],[0,0,0,0,0,1,0],[0,0,0,0,0,0,1],[0,0,0,0,0,0,0]]",
                r#"["input","conv3x3-bn-relu","conv1x1-bn-relu","maxpool3x3","conv3x3-bn-relu","conv3x3-bn-relu","output"]"#,
                "28cfc7874f6d200472e1a9dcd8650aa0",
            ),
        ];
        for (matrix, ops, hash) in cases {
            let arch = space.parse(&json(matrix, ops)).unwrap();
            assert_eq!(arch.graph_hash(), hash, "{matrix}");
        }
        // pruning happens before hashing: a dead branch does not change the hash
        let lean = space.parse("0100:input|output").unwrap();
        let padded = space
            .parse("001000000:input|conv1x1-bn-relu|output")
            .unwrap();
        assert_eq!(lean.graph_hash(), padded.graph_hash());
    }

    #[test]
    fn sampled_and_mutated_cells_are_valid_and_round_trip() {
        let space = Nb101Space::default();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let a = space.sample(&mut rng);
            assert!(a.num_edges() <= MAX_EDGES && a.num_nodes() <= MAX_NODES);
            assert_eq!(space.parse(&space.format(&a)).unwrap(), a);
            let m = space.mutate(&a, &mut rng);
            assert_eq!(space.parse(&space.format(&m)).unwrap(), m);
            assert_ne!(m.graph_hash(), a.graph_hash());
            assert_eq!(space.flat_features(&m).len(), space.flat_dim());
        }
    }

    #[test]
    fn global_encoding_has_the_benchmark_skeleton() {
        let space = Nb101Space::default();
        let a = space.parse(EXAMPLE).unwrap();
        let enc = space.global_encoding(&a);
        assert_eq!(enc.cells.len(), 1 + 3 + 1 + 3 + 1 + 3 + 1);
        assert_eq!(enc.cells[1], space.cell_graph(&a));
    }

    #[test]
    fn every_embedded_cell_round_trips_and_is_distinct() {
        let space = Nb101Space::default();
        let table = crate::data::Table::load("nb101").unwrap();
        let archs = table.column("arch").unwrap();
        let hashes = table.column("graph_hash").unwrap();
        let mut seen = std::collections::HashSet::new();
        for (text, hash) in archs.iter().zip(&hashes) {
            let arch = space.parse(text).unwrap();
            assert_eq!(&space.format(&arch), text);
            assert_eq!(space.parse(&arch.to_json()).unwrap(), arch);
            assert_eq!(&arch.graph_hash(), hash, "{text}");
            assert!(seen.insert(space.identity(&arch)), "duplicate {text}");
        }
        assert_eq!(seen.len(), 292);
    }

    #[test]
    fn channels_are_split_over_the_nodes_feeding_the_output() {
        let space = Nb101Space::default();
        // input -> 1, 2, 3 -> output: 32 channels split 11 / 11 / 10
        let a = space
            .parse(
                "0111000001000010000100000:input|conv3x3-bn-relu|conv1x1-bn-relu|maxpool3x3|output",
            )
            .unwrap();
        assert_eq!(vertex_channels(&a, 16, 32), vec![16, 11, 11, 10, 32]);
        // 0 -> 1 -> {2, 3} -> output: node 1 feeds only nodes and takes the widest (5 of 9)
        let b = space
            .parse(
                "0100000110000010000100000:input|conv3x3-bn-relu|conv3x3-bn-relu|maxpool3x3|output",
            )
            .unwrap();
        assert_eq!(vertex_channels(&b, 8, 9), vec![8, 5, 5, 4, 9]);
        // 0 -> 1 -> 2 -> output
        let chain = space
            .parse("0100001000010000:input|conv3x3-bn-relu|conv3x3-bn-relu|output")
            .unwrap();
        assert_eq!(vertex_channels(&chain, 8, 8), vec![8, 8, 8, 8]);
    }

    /// The vocabulary names a weighted proxy layer may be generated from.
    fn allowed_node_types(layer: &Layer) -> &'static [&'static str] {
        match layer {
            Layer::Conv { kernel: 3, .. } => &["conv3x3-bn-relu", "stem_conv3x3_bn_relu"],
            // a conv1x1 op, or the projection into a node
            Layer::Conv { kernel: 1, .. } => {
                &["conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output"]
            }
            Layer::Linear { .. } => &["head_linear"],
            _ => &[],
        }
    }

    #[test]
    fn proxy_networks_of_every_embedded_cell_run_from_their_own_nodes() {
        let space = Nb101Space::default();
        let config = ProxyConfig {
            image_size: 8,
            ..ProxyConfig::default()
        };
        let table = crate::data::Table::load("nb101").unwrap();
        for text in table.column("arch").unwrap() {
            let arch = space.parse(text).unwrap();
            let program = space.proxy_program(&arch, &config).unwrap();
            let global = space.global_encoding(&arch);
            check_program(&program, &global, VOCAB, allowed_node_types, 8, text);
        }
    }

    /// A random upper-triangular cell of `n` nodes: edge bits and interior op indices.
    fn arb_cell() -> impl proptest::strategy::Strategy<Value = (usize, Vec<bool>, Vec<usize>)> {
        use proptest::prelude::*;
        (2usize..=MAX_NODES).prop_flat_map(|n| {
            (
                Just(n),
                proptest::collection::vec(any::<bool>(), n * (n - 1) / 2),
                proptest::collection::vec(0usize..3, n - 2),
            )
        })
    }

    fn cell_text(n: usize, bits: &[bool], ops: &[usize]) -> String {
        let mut digits = vec!['0'; n * n];
        let mut k = 0;
        for i in 0..n {
            for j in i + 1..n {
                if bits[k] {
                    digits[i * n + j] = '1';
                }
                k += 1;
            }
        }
        let mut names = vec!["input"];
        names.extend(ops.iter().map(|&o| Nb101Op::ALL[o].name()));
        names.push("output");
        format!("{}:{}", digits.iter().collect::<String>(), names.join("|"))
    }

    proptest::proptest! {
        /// Any cell either parses to a valid pruned cell that round-trips, or is refused with
        /// an error; a valid cell relabelled in another topological order hashes the same.
        #[test]
        fn cells_round_trip_and_hash_invariantly((n, bits, ops) in arb_cell(), seed in 0u64..1000) {
            let space = Nb101Space::default();
            let Ok(arch) = space.parse(&cell_text(n, &bits, &ops)) else {
                return Ok(());
            };
            proptest::prop_assert!(arch.num_edges() <= MAX_EDGES);
            proptest::prop_assert_eq!(&space.parse(&space.format(&arch)).unwrap(), &arch);
            // another topological order of the pruned cell: input first, output last
            let m = arch.num_nodes();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut order = vec![0];
            while order.len() < m - 1 {
                let ready: Vec<usize> = (1..m - 1)
                    .filter(|v| !order.contains(v))
                    .filter(|&v| (0..m).all(|u| !arch.has_edge(u, v) || order.contains(&u)))
                    .collect();
                order.push(ready[rng.random_range(0..ready.len())]);
            }
            order.push(m - 1);
            let mut adjacency = vec![false; m * m];
            for (a, &u) in order.iter().enumerate() {
                for (b, &v) in order.iter().enumerate() {
                    adjacency[a * m + b] = arch.has_edge(u, v);
                }
            }
            let mut names = vec!["input"];
            names.extend(order[1..m - 1].iter().map(|&v| arch.ops()[v - 1].name()));
            names.push("output");
            let relabelled = Nb101Arch::new(m, adjacency, &names).unwrap();
            proptest::prop_assert_eq!(relabelled.graph_hash(), arch.graph_hash());
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            let _ = Nb101Space::default().parse(&s);
        }
    }
}
