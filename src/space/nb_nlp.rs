//! NAS-Bench-NLP: recurrent cells given as a graph of named nodes (a "recipe"), each node an
//! operation on the outputs of other nodes or on the cell inputs `x` and `h_prev_0..2`; the
//! nodes named `h_new_0..2` are the new hidden states. The embedded table holds the 263 distinct cells (341 runs)
//! with WikiText-2 results; the space itself is open-ended (no list of all cells), so sampling
//! uses a simple generator of our own, not the benchmark's (see [`NbNlpSpace::sample`]).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use rand::seq::IndexedRandom;
use rand::{Rng, RngCore};

use super::{ArchError, SearchSpace};
use crate::encoding::{CellGraph, GlobalEncoding};

/// The node operations of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NlpOp {
    /// `W [inputs] + b`, any number of inputs.
    Linear,
    /// `a * b + (1 - a) * c`, exactly three inputs.
    Blend,
    ElementwiseProd,
    ElementwiseSum,
    Tanh,
    Sigmoid,
    LeakyRelu,
}

impl NlpOp {
    pub const ALL: [NlpOp; 7] = [
        NlpOp::Linear,
        NlpOp::Blend,
        NlpOp::ElementwiseProd,
        NlpOp::ElementwiseSum,
        NlpOp::Tanh,
        NlpOp::Sigmoid,
        NlpOp::LeakyRelu,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NlpOp::Linear => "linear",
            NlpOp::Blend => "blend",
            NlpOp::ElementwiseProd => "elementwise_prod",
            NlpOp::ElementwiseSum => "elementwise_sum",
            NlpOp::Tanh => "activation_tanh",
            NlpOp::Sigmoid => "activation_sigm",
            NlpOp::LeakyRelu => "activation_leaky_relu",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the op takes `n` inputs.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            NlpOp::Linear => n >= 1,
            NlpOp::Blend => n == 3,
            NlpOp::ElementwiseProd | NlpOp::ElementwiseSum => n >= 2,
            NlpOp::Tanh | NlpOp::Sigmoid | NlpOp::LeakyRelu => n == 1,
        }
    }

    fn arity_text(self) -> &'static str {
        match self {
            NlpOp::Linear => "at least 1 input",
            NlpOp::Blend => "exactly 3 inputs",
            NlpOp::ElementwiseProd | NlpOp::ElementwiseSum => "at least 2 inputs",
            _ => "exactly 1 input",
        }
    }
}

/// Hidden states a cell may carry (`h_prev_0..2` in, `h_new_0..2` out).
pub const MAX_HIDDEN: usize = 3;
/// Node cap of the sampler (the benchmark's cells have 2 to 15 nodes).
const SAMPLE_MAX_NODES: usize = 8;
/// Time steps of the unrolled global encoding.
pub const UNROLL_STEPS: usize = 3;

/// A value a node reads: a cell input or another node.
fn is_cell_input(name: &str) -> bool {
    name == "x" || hidden_index(name, "h_prev_").is_some()
}

/// `k` when `name` is `prefix` followed by a hidden-state index `0..MAX_HIDDEN`.
fn hidden_index(name: &str, prefix: &str) -> Option<usize> {
    name.strip_prefix(prefix)
        .and_then(|k| k.parse::<usize>().ok())
        .filter(|&k| k < MAX_HIDDEN && name.len() == prefix.len() + 1)
}

/// One node of a recipe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NlpNode {
    pub name: String,
    pub op: NlpOp,
    /// Names of the values it reads, in order (the order matters for `blend`).
    pub inputs: Vec<String>,
}

/// A recurrent cell. Nodes are in canonical order: topological, ties broken by name, so two
/// spellings of the same recipe (other key order in the JSON) are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NlpCell {
    pub nodes: Vec<NlpNode>,
}

impl NlpCell {
    /// Check a set of nodes and put them in canonical order.
    pub fn new(nodes: Vec<NlpNode>) -> Result<Self, ArchError> {
        if nodes.is_empty() {
            return Err(ArchError::new("NAS-Bench-NLP recipe has no nodes"));
        }
        let index: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        for node in &nodes {
            if is_cell_input(&node.name) {
                return Err(ArchError::new(format!(
                    "NAS-Bench-NLP node name '{}' is reserved for a cell input",
                    node.name
                )));
            }
            if !node.op.accepts(node.inputs.len()) {
                return Err(ArchError::new(format!(
                    "NAS-Bench-NLP node '{}': {} needs {}, got {}",
                    node.name,
                    node.op.name(),
                    node.op.arity_text(),
                    node.inputs.len()
                )));
            }
            for input in &node.inputs {
                if !is_cell_input(input) && !index.contains_key(input.as_str()) {
                    return Err(ArchError::new(format!(
                        "NAS-Bench-NLP node '{}' reads '{input}', which is neither a node nor a cell input (x, h_prev_0..{})",
                        node.name,
                        MAX_HIDDEN - 1
                    )));
                }
                if let Some(k) = hidden_index(input, "h_prev_")
                    && !index.contains_key(format!("h_new_{k}").as_str())
                {
                    return Err(ArchError::new(format!(
                        "NAS-Bench-NLP node '{}' reads h_prev_{k}, but no node writes h_new_{k}",
                        node.name
                    )));
                }
            }
        }
        if !index.contains_key("h_new_0") {
            return Err(ArchError::new(
                "NAS-Bench-NLP recipe has no node 'h_new_0' (the cell output)",
            ));
        }
        let order = topological_order(&nodes, &index)?;
        let mut slots: Vec<Option<NlpNode>> = nodes.into_iter().map(Some).collect();
        let nodes: Vec<NlpNode> = order
            .into_iter()
            .map(|i| slots[i].take().expect("each node once"))
            .collect();
        let cell = Self { nodes };
        cell.check_every_node_is_used()?;
        Ok(cell)
    }

    /// Every node must reach a new hidden state, or it computes nothing.
    fn check_every_node_is_used(&self) -> Result<(), ArchError> {
        let mut used: BTreeSet<&str> = BTreeSet::new();
        for node in self.nodes.iter().rev() {
            if hidden_index(&node.name, "h_new_").is_some() || used.contains(node.name.as_str()) {
                used.extend(node.inputs.iter().map(String::as_str));
            } else {
                return Err(ArchError::new(format!(
                    "NAS-Bench-NLP node '{}' feeds no h_new_* output",
                    node.name
                )));
            }
        }
        Ok(())
    }

    /// The cell inputs read anywhere, in the order x, h_prev_0, h_prev_1, h_prev_2.
    pub fn cell_inputs(&self) -> Vec<&'static str> {
        ["x", "h_prev_0", "h_prev_1", "h_prev_2"]
            .into_iter()
            .filter(|&name| {
                self.nodes
                    .iter()
                    .any(|n| n.inputs.iter().any(|i| i == name))
            })
            .collect()
    }

    /// A key equal for cells that compute the same function whatever their node names: each
    /// new hidden state as an expression over the cell inputs, with the inputs of the
    /// order-free ops sorted (linear is `W [inputs] + b` with a learnt `W`, so the order of its
    /// inputs only permutes `W`; blend keeps its order). `scripts/make_extra_tables.py` merges
    /// the table's repeated runs by the same key.
    pub fn expression_key(&self) -> String {
        let mut expr: HashMap<&str, String> = HashMap::new();
        for node in &self.nodes {
            let mut inputs: Vec<&str> = node
                .inputs
                .iter()
                .map(|i| expr.get(i.as_str()).map_or(i.as_str(), String::as_str))
                .collect();
            if matches!(
                node.op,
                NlpOp::Linear | NlpOp::ElementwiseSum | NlpOp::ElementwiseProd
            ) {
                inputs.sort_unstable();
            }
            let text = format!("{}({})", node.op.name(), inputs.join(","));
            expr.insert(&node.name, text);
        }
        let mut outputs: Vec<(&str, &String)> = expr
            .iter()
            .filter(|(name, _)| hidden_index(name, "h_new_").is_some())
            .map(|(name, e)| (*name, e))
            .collect();
        outputs.sort_unstable();
        let parts: Vec<String> = outputs.iter().map(|(n, e)| format!("{n}={e}")).collect();
        parts.join(";")
    }

    /// Number of hidden states the cell writes.
    pub fn hidden_states(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| hidden_index(&n.name, "h_new_").is_some())
            .count()
    }
}

/// Kahn's algorithm, always taking the smallest ready name: a canonical order.
fn topological_order(
    nodes: &[NlpNode],
    index: &HashMap<&str, usize>,
) -> Result<Vec<usize>, ArchError> {
    let mut missing: Vec<usize> = nodes
        .iter()
        .map(|n| {
            n.inputs
                .iter()
                .filter(|i| index.contains_key(i.as_str()))
                .count()
        })
        .collect();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (j, node) in nodes.iter().enumerate() {
        for input in &node.inputs {
            if let Some(&i) = index.get(input.as_str()) {
                readers[i].push(j);
            }
        }
    }
    let mut ready: BTreeSet<(&str, usize)> = (0..nodes.len())
        .filter(|&i| missing[i] == 0)
        .map(|i| (nodes[i].name.as_str(), i))
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some((_, i)) = ready.pop_first() {
        order.push(i);
        for &j in &readers[i] {
            missing[j] -= 1;
            if missing[j] == 0 {
                ready.insert((nodes[j].name.as_str(), j));
            }
        }
    }
    if order.len() < nodes.len() {
        let mut cyclic: Vec<&str> = (0..nodes.len())
            .filter(|i| !order.contains(i))
            .map(|i| nodes[i].name.as_str())
            .collect();
        cyclic.sort_unstable();
        return Err(ArchError::new(format!(
            "NAS-Bench-NLP nodes {} form a cycle (a recurrent cell reads the past only through h_prev_*)",
            cyclic.join(", ")
        )));
    }
    Ok(order)
}

// Node vocabulary: the cell inputs, the ops, the output collecting the new hidden states, then
// the fixed blocks of the language model.
const VOCAB: &[&str] = &[
    "x",
    "h_prev",
    "linear",
    "blend",
    "elementwise_prod",
    "elementwise_sum",
    "activation_tanh",
    "activation_sigm",
    "activation_leaky_relu",
    "output",
    "embedding",
    "decoder_linear",
    "softmax",
];
const X: u16 = 0;
const H_PREV: u16 = 1;
const FIRST_OP: u16 = 2;
const OUTPUT: u16 = 9;
const EMBEDDING: u16 = 10;
const DECODER: u16 = 11;
const SOFTMAX: u16 = 12;

/// The NAS-Bench-NLP space of recurrent cells.
#[derive(Debug, Clone, Default)]
pub struct NbNlpSpace;

impl NbNlpSpace {
    fn parse_node(name: &str, value: &serde_json::Value) -> Result<NlpNode, ArchError> {
        let shape = || {
            ArchError::new(format!(
                "NAS-Bench-NLP node '{name}' must be {{\"op\": NAME, \"input\": [NAMES]}}"
            ))
        };
        let obj = value.as_object().ok_or_else(shape)?;
        if let Some(key) = obj.keys().find(|k| *k != "op" && *k != "input") {
            return Err(ArchError::new(format!(
                "NAS-Bench-NLP node '{name}' has an unknown field '{key}' (fields: op, input)"
            )));
        }
        let op_name = obj.get("op").and_then(|v| v.as_str()).ok_or_else(shape)?;
        let op = NlpOp::from_name(op_name).ok_or_else(|| {
            let known: Vec<&str> = NlpOp::ALL.iter().map(|op| op.name()).collect();
            ArchError::new(format!(
                "NAS-Bench-NLP node '{name}' has unknown op '{op_name}' (known: {})",
                known.join(", ")
            ))
        })?;
        let inputs = obj
            .get("input")
            .and_then(|v| v.as_array())
            .ok_or_else(shape)?
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(shape))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NlpNode {
            name: name.to_string(),
            op,
            inputs,
        })
    }

    /// A fresh name for the generator.
    fn node_name(i: usize) -> String {
        format!("n{i:02}")
    }

    /// The op-on-node graph: the cell inputs read (x, h_prev_*), the nodes in canonical
    /// order, and an output node reading every new hidden state.
    fn graph(cell: &NlpCell) -> CellGraph {
        let inputs = cell.cell_inputs();
        let mut position: HashMap<&str, usize> = HashMap::new();
        let mut ops = Vec::new();
        for &name in &inputs {
            position.insert(name, ops.len());
            ops.push(if name == "x" { X } else { H_PREV });
        }
        let mut edges = Vec::new();
        for node in &cell.nodes {
            let at = ops.len();
            ops.push(FIRST_OP + node.op.index() as u16);
            for input in &node.inputs {
                edges.push((position[input.as_str()], at));
            }
            position.insert(&node.name, at);
        }
        let out = ops.len();
        ops.push(OUTPUT);
        for node in &cell.nodes {
            if hidden_index(&node.name, "h_new_").is_some() {
                edges.push((position[node.name.as_str()], out));
            }
        }
        edges.sort_unstable();
        edges.dedup();
        CellGraph::new(ops, &edges)
    }
}

impl SearchSpace for NbNlpSpace {
    type Arch = NlpCell;

    fn name(&self) -> &'static str {
        "nb-nlp"
    }

    /// The benchmark's recipe: a JSON object `{"node": {"op": ..., "input": [...]}, ...}`.
    fn parse(&self, text: &str) -> Result<NlpCell, ArchError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ArchError::new("empty NAS-Bench-NLP recipe"));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ArchError::new(format!("NAS-Bench-NLP recipe is not valid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| ArchError::new("NAS-Bench-NLP recipe must be a JSON object of nodes"))?;
        let nodes = obj
            .iter()
            .map(|(name, v)| Self::parse_node(name, v))
            .collect::<Result<Vec<_>, _>>()?;
        NlpCell::new(nodes)
    }

    /// Compact JSON, nodes in canonical order.
    fn format(&self, cell: &NlpCell) -> String {
        let json = |s: &str| serde_json::Value::from(s).to_string();
        let mut out = String::from("{");
        for (i, node) in cell.nodes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let inputs: Vec<String> = node.inputs.iter().map(|s| json(s)).collect();
            let _ = write!(
                out,
                "{}:{{\"op\":{},\"input\":[{}]}}",
                json(&node.name),
                json(node.op.name()),
                inputs.join(",")
            );
        }
        out.push('}');
        out
    }

    /// Cells equal up to node names and the order of order-free inputs
    /// ([`NlpCell::expression_key`]).
    fn identity(&self, cell: &NlpCell) -> String {
        cell.expression_key()
    }

    /// Our generator (not the benchmark's): 1-3 hidden states, 1-8 random nodes, each with a
    /// random op and inputs drawn from the cell inputs and earlier nodes (linear reads 2 or 3
    /// values as in the benchmark's cells); `h_new_1..` apply an activation to a random node;
    /// `h_new_0` is a linear layer over every value nothing reads yet (so every node and every
    /// cell input is used). Always valid; not uniform over any list of the benchmark's cells.
    fn sample(&self, rng: &mut dyn RngCore) -> NlpCell {
        let hidden = rng.random_range(1..=MAX_HIDDEN);
        let mut values: Vec<String> = vec!["x".into()];
        values.extend((0..hidden).map(|k| format!("h_prev_{k}")));
        let mut nodes: Vec<NlpNode> = Vec::new();
        for i in 0..rng.random_range(1..=SAMPLE_MAX_NODES) {
            let op = NlpOp::ALL[rng.random_range(0..NlpOp::ALL.len())];
            let arity = match op {
                NlpOp::Linear => rng.random_range(2..=3),
                NlpOp::Blend => 3,
                NlpOp::ElementwiseProd | NlpOp::ElementwiseSum => 2,
                _ => 1,
            }
            .min(values.len());
            // too few values yet for this op: fall back to a linear layer over what there is
            let op = if op.accepts(arity) { op } else { NlpOp::Linear };
            let inputs = values.choose_multiple(&mut *rng, arity).cloned().collect();
            let name = Self::node_name(i);
            nodes.push(NlpNode {
                name: name.clone(),
                op,
                inputs,
            });
            values.push(name);
        }
        let activations = [NlpOp::Tanh, NlpOp::Sigmoid, NlpOp::LeakyRelu];
        for k in 1..hidden {
            let source = nodes[rng.random_range(0..nodes.len())].name.clone();
            nodes.push(NlpNode {
                name: format!("h_new_{k}"),
                op: activations[rng.random_range(0..3)],
                inputs: vec![source],
            });
        }
        let read: BTreeSet<&str> = nodes
            .iter()
            .flat_map(|n| n.inputs.iter().map(String::as_str))
            .collect();
        let mut unread: Vec<String> = values
            .iter()
            .filter(|v| !read.contains(v.as_str()))
            .cloned()
            .collect();
        if unread.len() < 2 {
            // a linear output over at least two values, like the benchmark's
            for extra in [values.last().expect("nodes exist").clone(), "x".into()] {
                if unread.len() < 2 && !unread.contains(&extra) {
                    unread.push(extra);
                }
            }
        }
        nodes.push(NlpNode {
            name: "h_new_0".into(),
            op: NlpOp::Linear,
            inputs: unread,
        });
        NlpCell::new(nodes).expect("the generator builds valid cells")
    }

    /// Change one node's op to another op that takes the same number of inputs (every node
    /// has at least one alternative: linear takes any count).
    fn mutate(&self, cell: &NlpCell, rng: &mut dyn RngCore) -> NlpCell {
        let mut out = cell.clone();
        let node = &mut out.nodes[rng.random_range(0..cell.nodes.len())];
        let n = node.inputs.len();
        let current = node.op;
        let others: Vec<NlpOp> = NlpOp::ALL
            .into_iter()
            .filter(|op| *op != current && op.accepts(n))
            .collect();
        node.op = *others.choose(&mut *rng).expect("linear accepts any count");
        out
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        VOCAB
    }

    fn cell_graph(&self, cell: &NlpCell) -> CellGraph {
        Self::graph(cell)
    }

    /// Embedding, the cell unrolled over [`UNROLL_STEPS`] time steps (z-passing carries one
    /// step's pooled feature into the next, as the hidden state does), decoder linear,
    /// softmax.
    fn global_encoding(&self, cell: &NlpCell) -> GlobalEncoding {
        let graph = Self::graph(cell);
        let mut cells = vec![CellGraph::chain(vec![X, EMBEDDING, OUTPUT])];
        cells.extend(std::iter::repeat_n(graph, UNROLL_STEPS));
        cells.push(CellGraph::chain(vec![X, DECODER, SOFTMAX, OUTPUT]));
        GlobalEncoding { cells }
    }

    /// No fixed decisions to one-hot: op counts (7), reads of x and h_prev_0..2 (4), nodes,
    /// hidden states, longest path (in nodes).
    fn flat_dim(&self) -> usize {
        NlpOp::ALL.len() + 4 + 3
    }

    fn flat_features(&self, cell: &NlpCell) -> Vec<f32> {
        let mut f = vec![0.0; self.flat_dim()];
        let mut depth: HashMap<&str, usize> = HashMap::new();
        for node in &cell.nodes {
            f[node.op.index()] += 1.0;
            for input in &node.inputs {
                let slot = match input.as_str() {
                    "x" => Some(0),
                    other => hidden_index(other, "h_prev_").map(|k| k + 1),
                };
                if let Some(s) = slot {
                    f[NlpOp::ALL.len() + s] += 1.0;
                }
            }
            let d = 1 + node
                .inputs
                .iter()
                .filter_map(|i| depth.get(i.as_str()))
                .max()
                .copied()
                .unwrap_or(0);
            depth.insert(&node.name, d);
        }
        let base = NlpOp::ALL.len() + 4;
        f[base] = cell.nodes.len() as f32;
        f[base + 1] = cell.hidden_states() as f32;
        f[base + 2] = depth.values().copied().max().unwrap_or(0) as f32;
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const RNN: &str = r#"{"f": {"op": "linear", "input": ["x", "h_prev_0"]}, "h_new_0": {"op": "activation_tanh", "input": ["f"]}}"#;

    #[test]
    fn key_order_does_not_matter() {
        let space = NbNlpSpace;
        let a = space.parse(RNN).unwrap();
        let b = space
            .parse(r#"{"h_new_0": {"input": ["f"], "op": "activation_tanh"}, "f": {"op": "linear", "input": ["x", "h_prev_0"]}}"#)
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            space.format(&a),
            r#"{"f":{"op":"linear","input":["x","h_prev_0"]},"h_new_0":{"op":"activation_tanh","input":["f"]}}"#
        );
    }

    #[test]
    fn renamed_cells_share_an_identity() {
        let space = NbNlpSpace;
        let a = space.parse(RNN).unwrap();
        let b = space
            .parse(r#"{"z": {"op": "linear", "input": ["h_prev_0", "x"]}, "h_new_0": {"op": "activation_tanh", "input": ["z"]}}"#)
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(space.identity(&a), space.identity(&b));
        assert_eq!(
            space.identity(&a),
            "h_new_0=activation_tanh(linear(h_prev_0,x))"
        );
        // blend's inputs are ordered
        let blend = |order: &str| {
            let text = format!(
                r#"{{"g": {{"op": "activation_sigm", "input": ["x"]}}, "h_new_0": {{"op": "blend", "input": [{order}]}}}}"#
            );
            space.identity(&space.parse(&text).unwrap())
        };
        assert_ne!(
            blend(r#""g", "x", "h_prev_0""#),
            blend(r#""g", "h_prev_0", "x""#)
        );
    }

    #[test]
    fn errors_are_precise() {
        let space = NbNlpSpace;
        let err = |s: &str| space.parse(s).unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("{oops").contains("not valid JSON"));
        assert!(err("[1]").contains("JSON object of nodes"));
        assert!(err("{}").contains("no nodes"));
        assert!(
            err(r#"{"h_new_0": {"op": "conv", "input": ["x"]}}"#)
                .contains("node 'h_new_0' has unknown op 'conv'")
        );
        assert!(
            err(r#"{"h_new_0": {"op": "blend", "input": ["x", "x"]}}"#)
                .contains("blend needs exactly 3 inputs, got 2")
        );
        assert!(
            err(r#"{"h_new_0": {"op": "linear", "input": ["y"]}}"#)
                .contains("reads 'y', which is neither")
        );
        assert!(
            err(r#"{"h_new_0": {"op": "linear", "input": ["h_prev_1"]}}"#)
                .contains("reads h_prev_1, but no node writes h_new_1")
        );
        assert!(err(r#"{"a": {"op": "linear", "input": ["x"]}}"#).contains("no node 'h_new_0'"));
        assert!(
            err(r#"{"a": {"op": "linear", "input": ["h_new_0"]}, "h_new_0": {"op": "linear", "input": ["a"]}}"#)
                .contains("nodes a, h_new_0 form a cycle")
        );
        assert!(
            err(r#"{"a": {"op": "linear", "input": ["x"]}, "h_new_0": {"op": "linear", "input": ["x"]}}"#)
                .contains("node 'a' feeds no h_new_* output")
        );
        assert!(
            err(r#"{"x": {"op": "linear", "input": ["x"]}, "h_new_0": {"op": "linear", "input": ["x"]}}"#)
                .contains("'x' is reserved")
        );
        assert!(
            err(r#"{"h_new_0": {"op": "linear", "inputs": ["x"]}}"#)
                .contains("unknown field 'inputs'")
        );
        assert!(err(r#"{"h_new_0": {"op": "linear", "input": [1]}}"#).contains("must be"));
    }

    #[test]
    fn every_embedded_recipe_round_trips_and_is_distinct() {
        let space = NbNlpSpace;
        let table = crate::data::Table::load("nb-nlp").unwrap();
        let archs = table.column("arch").unwrap();
        assert_eq!(archs.len(), 263);
        let mut seen = std::collections::HashSet::new();
        for text in archs {
            let cell = space.parse(text).unwrap();
            let again = space.parse(&space.format(&cell)).unwrap();
            assert_eq!(again, cell);
            assert_eq!(space.format(&again), space.format(&cell));
            assert!(seen.insert(space.identity(&cell)), "{text}");
            let g = space.cell_graph(&cell);
            assert_eq!(
                g.num_nodes(),
                cell.cell_inputs().len() + cell.nodes.len() + 1
            );
        }
        assert_eq!(table.target("neg_best_val_loss").unwrap().len(), 263);
    }

    #[test]
    fn encodings_have_the_documented_shapes() {
        let space = NbNlpSpace;
        let cell = space.parse(RNN).unwrap();
        let g = space.cell_graph(&cell);
        // x, h_prev_0, f, h_new_0, output
        assert_eq!(g.ops(), &[X, H_PREV, FIRST_OP, FIRST_OP + 4, OUTPUT]);
        assert!(g.has_edge(0, 2) && g.has_edge(1, 2) && g.has_edge(2, 3) && g.has_edge(3, 4));
        let global = space.global_encoding(&cell);
        assert_eq!(global.cells.len(), 2 + UNROLL_STEPS);
        assert_eq!(global.cells[1], g);
        let f = space.flat_features(&cell);
        assert_eq!(f.len(), space.flat_dim());
        // one linear, one tanh; x and h_prev_0 read once; 2 nodes, 1 state, depth 2
        assert_eq!(
            f,
            vec![
                1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 1.0, 2.0
            ]
        );
        assert!(SearchSpace::proxy_program(&space, &cell, &Default::default()).is_none());
    }

    proptest! {
        #[test]
        fn sampled_and_mutated_cells_are_valid(seed in any::<u64>()) {
            let space = NbNlpSpace;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let cell = space.sample(&mut rng);
            prop_assert_eq!(space.parse(&space.format(&cell)).unwrap(), cell.clone());
            let m = space.mutate(&cell, &mut rng);
            prop_assert_eq!(space.parse(&space.format(&m)).unwrap(), m.clone());
            let changed = cell.nodes.iter().zip(&m.nodes).filter(|(a, b)| a != b).count();
            prop_assert_eq!(changed, 1);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            let _ = NbNlpSpace.parse(&s);
        }
    }
}
