//! The DARTS search space (Liu et al., 2019), the space NAS-Bench-301 labels: two searched
//! cells, a normal and a reduction cell. Each cell reads two inputs (node 0 = the output of
//! cell k-2, node 1 = the output of cell k-1), has four intermediate nodes 2..=5 that each sum
//! two operations applied to two distinct earlier nodes, and outputs the concatenation of its
//! intermediate nodes. The evaluation network (DARTS' `NetworkCIFAR`) is a conv stem, `layers`
//! cells with reduction cells at a third and two thirds of the depth, global pooling and a
//! linear classifier.
//!
//! Architectures are written as the DARTS code base's `Genotype(...)` repr (the canonical
//! form) or as the compact `input-op` form of the NB301 data (see [`DartsArch::compact`]).
//!
//! Graphs: each cell becomes an op-on-node graph (see [`DartsCellGraph`]). In the global
//! encoding the GCN passes only the previous cell's pooled feature (z) to the next cell, so the
//! cell k-2 output, which DARTS wires into a cell directly, reaches it only through that chain:
//! the core's z-passing has one predecessor per cell, and this is the documented choice for
//! DARTS. Both input nodes stay in every cell graph, so the GCN still sees which operations
//! read which input.

use std::fmt;

use rand::{Rng, RngCore};

use super::{ArchError, SearchSpace};
use crate::encoding::{CellGraph, GlobalEncoding};
use crate::target::{CLASSES, Layer, ProxyConfig, ProxyProgram, Slot};

/// Intermediate nodes per cell (nodes 2..=5).
pub const INTERMEDIATE_NODES: usize = 4;
/// `(op, input)` pairs per cell, two per intermediate node.
pub const PAIRS: usize = 2 * INTERMEDIATE_NODES;
/// Cell inputs: the outputs of the two previous cells.
pub const CELL_INPUTS: usize = 2;
/// What DARTS concatenates into a cell's output: every intermediate node.
pub const DEFAULT_CONCAT: [usize; INTERMEDIATE_NODES] = [2, 3, 4, 5];

/// The candidate operations, in the NB301 compact-form index order; `none` (index 7) is our
/// extension of that form, accepted because DARTS' own search cell knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DartsOp {
    MaxPool3x3,
    AvgPool3x3,
    SkipConnect,
    SepConv3x3,
    SepConv5x5,
    DilConv3x3,
    DilConv5x5,
    None,
}

impl DartsOp {
    pub const ALL: [DartsOp; 8] = [
        DartsOp::MaxPool3x3,
        DartsOp::AvgPool3x3,
        DartsOp::SkipConnect,
        DartsOp::SepConv3x3,
        DartsOp::SepConv5x5,
        DartsOp::DilConv3x3,
        DartsOp::DilConv5x5,
        DartsOp::None,
    ];

    /// The seven operations a derived DARTS genotype uses (everything but `none`); sampling
    /// and mutation draw from these, as NB301 / NASLib do.
    pub const SEARCHED: [DartsOp; 7] = [
        DartsOp::MaxPool3x3,
        DartsOp::AvgPool3x3,
        DartsOp::SkipConnect,
        DartsOp::SepConv3x3,
        DartsOp::SepConv5x5,
        DartsOp::DilConv3x3,
        DartsOp::DilConv5x5,
    ];

    /// The name in the DARTS code base (`sep_conv_3x3`).
    pub fn name(self) -> &'static str {
        match self {
            DartsOp::MaxPool3x3 => "max_pool_3x3",
            DartsOp::AvgPool3x3 => "avg_pool_3x3",
            DartsOp::SkipConnect => "skip_connect",
            DartsOp::SepConv3x3 => "sep_conv_3x3",
            DartsOp::SepConv5x5 => "sep_conv_5x5",
            DartsOp::DilConv3x3 => "dil_conv_3x3",
            DartsOp::DilConv5x5 => "dil_conv_5x5",
            DartsOp::None => "none",
        }
    }

    /// The compact-form index (0..=6, 7 for `none`).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Spatial kernel size of the pool or conv; `None` for `skip_connect` and `none`.
    pub fn kernel(self) -> Option<usize> {
        match self {
            DartsOp::MaxPool3x3 | DartsOp::AvgPool3x3 => Some(3),
            DartsOp::SepConv3x3 | DartsOp::DilConv3x3 => Some(3),
            DartsOp::SepConv5x5 | DartsOp::DilConv5x5 => Some(5),
            DartsOp::SkipConnect | DartsOp::None => None,
        }
    }

    /// Dilation of the depthwise conv: 2 for the dilated convs, 1 for everything else.
    pub fn dilation(self) -> usize {
        match self {
            DartsOp::DilConv3x3 | DartsOp::DilConv5x5 => 2,
            _ => 1,
        }
    }

    /// Separable or dilated conv. (In a reduction cell a `skip_connect` on a cell input is a
    /// strided FactorizedReduce and has weights too; that depends on the pair, not the op.)
    pub fn is_conv(self) -> bool {
        matches!(
            self,
            DartsOp::SepConv3x3 | DartsOp::SepConv5x5 | DartsOp::DilConv3x3 | DartsOp::DilConv5x5
        )
    }
}

/// Which of the two searched cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellKind {
    Normal,
    Reduce,
}

impl CellKind {
    /// The Genotype field name (`normal`, `reduce`).
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Normal => "normal",
            CellKind::Reduce => "reduce",
        }
    }
}

/// One DARTS cell: pairs `2k` and `2k + 1` are the `(op, input)` that feed intermediate node
/// `k + 2`, each input `< k + 2`; `concat` lists the intermediate nodes the output concatenates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DartsCell {
    pairs: [(DartsOp, usize); PAIRS],
    concat: Vec<usize>,
}

impl DartsCell {
    /// Check a cell; `kind` only names it in error messages.
    pub fn new(
        kind: CellKind,
        pairs: &[(DartsOp, usize)],
        concat: Vec<usize>,
    ) -> Result<Self, ArchError> {
        let cell = kind.name();
        let pairs: [(DartsOp, usize); PAIRS] = pairs.try_into().map_err(|_| {
            ArchError::new(format!(
                "{cell} cell has {} pairs; a DARTS cell has {PAIRS} (two per intermediate node)",
                pairs.len()
            ))
        })?;
        for (p, &(_, input)) in pairs.iter().enumerate() {
            let node = Self::node_of_pair(p);
            if input >= node {
                return Err(ArchError::new(format!(
                    "pair {} of the {cell} cell reads node {input}, but intermediate node {node} can only read nodes 0..{}",
                    p + 1,
                    node - 1
                )));
            }
        }
        for k in 0..INTERMEDIATE_NODES {
            let input = pairs[2 * k].1;
            if pairs[2 * k + 1].1 == input {
                return Err(ArchError::new(format!(
                    "intermediate node {} of the {cell} cell reads node {input} in both its pairs ({} and {}); DARTS gives each node two distinct inputs",
                    k + CELL_INPUTS,
                    2 * k + 1,
                    2 * k + 2
                )));
            }
        }
        let in_range = concat.iter().all(|n| DEFAULT_CONCAT.contains(n));
        let increasing = concat.windows(2).all(|w| w[0] < w[1]);
        if concat.is_empty() || !in_range || !increasing {
            return Err(ArchError::new(format!(
                "{cell}_concat {concat:?} must be a non-empty, strictly increasing list of intermediate nodes from 2, 3, 4, 5"
            )));
        }
        Ok(Self { pairs, concat })
    }

    /// The intermediate node (2..=5) that pair `p` feeds.
    pub fn node_of_pair(p: usize) -> usize {
        p / 2 + CELL_INPUTS
    }

    pub fn pairs(&self) -> &[(DartsOp, usize); PAIRS] {
        &self.pairs
    }

    pub fn concat(&self) -> &[usize] {
        &self.concat
    }

    pub fn op_names(&self) -> [&'static str; PAIRS] {
        self.pairs.map(|(op, _)| op.name())
    }

    /// The same cell with the two pairs of each node in (input, op) order: a node sums its
    /// two branches, so their order does not change the network.
    pub fn normalized(&self) -> Self {
        let mut out = self.clone();
        for node in out.pairs.chunks_exact_mut(2) {
            if (node[0].1, node[0].0) > (node[1].1, node[1].0) {
                node.swap(0, 1);
            }
        }
        out
    }

    /// `[('sep_conv_3x3', 0), ...]`, as Python prints the list of tuples.
    fn write_pairs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (p, (op, input)) in self.pairs.iter().enumerate() {
            if p > 0 {
                f.write_str(", ")?;
            }
            write!(f, "('{}', {input})", op.name())?;
        }
        f.write_str("]")
    }

    fn write_concat(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.concat.iter().map(usize::to_string).collect();
        write!(f, "[{}]", items.join(", "))
    }
}

/// A DARTS architecture: the normal and the reduction cell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DartsArch {
    pub normal: DartsCell,
    pub reduce: DartsCell,
}

impl DartsArch {
    pub fn cell(&self, kind: CellKind) -> &DartsCell {
        match kind {
            CellKind::Normal => &self.normal,
            CellKind::Reduce => &self.reduce,
        }
    }

    /// Both cells with their pairs in per-node order (see [`DartsCell::normalized`]).
    pub fn normalized(&self) -> Self {
        Self {
            normal: self.normal.normalized(),
            reduce: self.reduce.normalized(),
        }
    }

    /// The NB301 compact form `0-4,1-3,...;0-3,...`: eight `input-op` pairs of the normal
    /// cell, `;`, eight of the reduction cell, op as [`DartsOp::index`]. It cannot say which
    /// nodes are concatenated, so it exists only when both cells concatenate 2, 3, 4, 5.
    pub fn compact(&self) -> Option<String> {
        let cells = [&self.normal, &self.reduce];
        if cells.iter().any(|c| c.concat != DEFAULT_CONCAT) {
            return None;
        }
        let cell_text = |c: &DartsCell| {
            let pairs: Vec<String> = c
                .pairs
                .iter()
                .map(|(op, input)| format!("{input}-{}", op.index()))
                .collect();
            pairs.join(",")
        };
        Some(format!(
            "{};{}",
            cell_text(&self.normal),
            cell_text(&self.reduce)
        ))
    }

    /// Either accepted form: a `Genotype(...)` repr or the compact form.
    pub fn parse(text: &str) -> Result<Self, ArchError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ArchError::new("empty DARTS architecture string"));
        }
        if text.starts_with(|c: char| c.is_ascii_alphabetic()) {
            parse_genotype(text)
        } else if text.starts_with(|c: char| c.is_ascii_digit()) {
            parse_compact(text)
        } else {
            Err(ArchError::new(format!(
                "'{text}' is neither a DARTS Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...]) nor the compact form 'input-op,...;input-op,...'"
            )))
        }
    }
}

impl fmt::Display for DartsArch {
    /// The DARTS code base's repr: `Genotype(normal=[('sep_conv_3x3', 0), ...],
    /// normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Genotype(normal=")?;
        self.normal.write_pairs(f)?;
        f.write_str(", normal_concat=")?;
        self.normal.write_concat(f)?;
        f.write_str(", reduce=")?;
        self.reduce.write_pairs(f)?;
        f.write_str(", reduce_concat=")?;
        self.reduce.write_concat(f)?;
        f.write_str(")")
    }
}

fn op_list(ops: &[DartsOp]) -> String {
    let names: Vec<&str> = ops.iter().map(|op| op.name()).collect();
    names.join(", ")
}

fn parse_compact(text: &str) -> Result<DartsArch, ArchError> {
    let cells: Vec<&str> = text.split(';').collect();
    if cells.len() != 2 {
        return Err(ArchError::new(format!(
            "the compact DARTS form needs two cells separated by ';' (normal;reduce), found {} in '{text}'",
            cells.len()
        )));
    }
    let parse_cell = |kind: CellKind, cell_text: &str| {
        let pairs = cell_text
            .split(',')
            .map(|item| parse_compact_pair(kind, item.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        DartsCell::new(kind, &pairs, DEFAULT_CONCAT.to_vec())
    };
    Ok(DartsArch {
        normal: parse_cell(CellKind::Normal, cells[0])?,
        reduce: parse_cell(CellKind::Reduce, cells[1])?,
    })
}

fn parse_compact_pair(kind: CellKind, item: &str) -> Result<(DartsOp, usize), ArchError> {
    let cell = kind.name();
    let (input, op) = item.split_once('-').ok_or_else(|| {
        ArchError::new(format!(
            "compact pair '{item}' of the {cell} cell must be 'input-op'"
        ))
    })?;
    let input: usize = input.trim().parse().map_err(|_| {
        ArchError::new(format!(
            "compact pair '{item}' of the {cell} cell: input '{input}' is not a node number"
        ))
    })?;
    let op = op
        .trim()
        .parse()
        .ok()
        .and_then(DartsOp::from_index)
        .ok_or_else(|| {
            ArchError::new(format!(
                "compact pair '{item}' of the {cell} cell: op '{op}' is not 0-7 (0-6: {}; 7: none)",
                op_list(&DartsOp::SEARCHED)
            ))
        })?;
    Ok((op, input))
}

/// The four fields of a `Genotype(...)`, as read, before the cells are checked.
#[derive(Default)]
struct GenotypeFields {
    normal: Option<Vec<(DartsOp, usize)>>,
    normal_concat: Option<Vec<usize>>,
    reduce: Option<Vec<(DartsOp, usize)>>,
    reduce_concat: Option<Vec<usize>>,
}

/// Fields may come in any order (keyword arguments), each once.
fn parse_genotype(text: &str) -> Result<DartsArch, ArchError> {
    let mut c = Cursor::new(text);
    if c.ident()? != "Genotype" {
        return Err(ArchError::new(format!(
            "a DARTS architecture must start with 'Genotype(' or be the compact form, got '{text}'"
        )));
    }
    c.expect(b'(', "'(' after 'Genotype'")?;
    let mut fields = GenotypeFields::default();
    while !c.eat(b')') {
        let key = c.ident()?;
        c.expect(b'=', "'=' after a field name")?;
        let twice = || ArchError::new(format!("Genotype gives '{key}' twice"));
        match key {
            "normal" | "reduce" => {
                let kind = if key == "normal" {
                    CellKind::Normal
                } else {
                    CellKind::Reduce
                };
                let pairs = c.pair_list(kind)?;
                let slot = match kind {
                    CellKind::Normal => &mut fields.normal,
                    CellKind::Reduce => &mut fields.reduce,
                };
                if slot.replace(pairs).is_some() {
                    return Err(twice());
                }
            }
            "normal_concat" | "reduce_concat" => {
                let concat = c.concat()?;
                let slot = if key == "normal_concat" {
                    &mut fields.normal_concat
                } else {
                    &mut fields.reduce_concat
                };
                if slot.replace(concat).is_some() {
                    return Err(twice());
                }
            }
            other => {
                return Err(ArchError::new(format!(
                    "unknown Genotype field '{other}' (expected normal, normal_concat, reduce, reduce_concat)"
                )));
            }
        }
        if !c.eat(b',') {
            c.expect(b')', "',' or ')' after a Genotype field")?;
            break;
        }
    }
    if !c.at_end() {
        return Err(c.error("the end of the string after 'Genotype(...)'"));
    }
    let missing = |name: &str| ArchError::new(format!("Genotype lacks its '{name}' field"));
    let normal = fields.normal.ok_or_else(|| missing("normal"))?;
    let normal_concat = fields
        .normal_concat
        .ok_or_else(|| missing("normal_concat"))?;
    let reduce = fields.reduce.ok_or_else(|| missing("reduce"))?;
    let reduce_concat = fields
        .reduce_concat
        .ok_or_else(|| missing("reduce_concat"))?;
    Ok(DartsArch {
        normal: DartsCell::new(CellKind::Normal, &normal, normal_concat)?,
        reduce: DartsCell::new(CellKind::Reduce, &reduce, reduce_concat)?,
    })
}

/// A small reader for the Python repr: identifiers, integers, quoted strings and punctuation,
/// with any whitespace between tokens. It only steps over ASCII bytes or whole quoted strings,
/// so `pos` always sits on a char boundary.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn skip_whitespace(&mut self) {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), ArchError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn error(&mut self, expected: &str) -> ArchError {
        self.skip_whitespace();
        let found = match self.text[self.pos..].chars().next() {
            Some(ch) => format!("found '{ch}'"),
            None => "the string ends".to_string(),
        };
        ArchError::new(format!(
            "malformed DARTS Genotype: expected {expected} at character {}, {found}",
            self.pos + 1
        ))
    }

    /// Consume bytes while `keep` holds, returning them.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        self.skip_whitespace();
        let start = self.pos;
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && keep(bytes[self.pos]) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn ident(&mut self) -> Result<&'a str, ArchError> {
        if !self
            .peek()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        {
            return Err(self.error("a name"));
        }
        Ok(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_'))
    }

    fn number(&mut self) -> Result<usize, ArchError> {
        let start = self.pos;
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(self.error("a node number"));
        }
        digits.parse().map_err(|_| {
            self.pos = start;
            self.error("a node number that fits in 64 bits")
        })
    }

    /// `'text'` or `"text"`, returning the text between the quotes.
    fn quoted(&mut self) -> Result<&'a str, ArchError> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.error("a quoted operation name")),
        };
        let start = self.pos + 1;
        let len = self.text[start..]
            .find(char::from(quote))
            .ok_or_else(|| self.error("a closing quote for this operation name"))?;
        self.pos = start + len + 1;
        Ok(&self.text[start..start + len])
    }

    /// `[('op', input), ...]`; a trailing comma is allowed, as in Python.
    fn pair_list(&mut self, kind: CellKind) -> Result<Vec<(DartsOp, usize)>, ArchError> {
        self.expect(b'[', "'[' opening the list of (op, input) pairs")?;
        let mut pairs = Vec::new();
        while !self.eat(b']') {
            self.expect(b'(', "'(' opening an (op, input) pair")?;
            let name = self.quoted()?;
            let op = DartsOp::from_name(name).ok_or_else(|| {
                ArchError::new(format!(
                    "unknown DARTS operation '{name}' in pair {} of the {} cell (known: {})",
                    pairs.len() + 1,
                    kind.name(),
                    op_list(&DartsOp::ALL)
                ))
            })?;
            self.expect(b',', "',' between an operation and its input")?;
            let input = self.number()?;
            self.eat(b',');
            self.expect(b')', "')' closing an (op, input) pair")?;
            pairs.push((op, input));
            if !self.eat(b',') {
                self.expect(b']', "',' or ']' after an (op, input) pair")?;
                break;
            }
        }
        Ok(pairs)
    }

    /// `[2, 3, 4, 5]` or `range(2, 6)` (what DARTS' search model prints).
    fn concat(&mut self) -> Result<Vec<usize>, ArchError> {
        if self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            let start = self.pos;
            if self.ident()? != "range" {
                self.pos = start;
                return Err(self.error("a list of nodes or 'range(start, stop)'"));
            }
            self.expect(b'(', "'(' after 'range'")?;
            let first = self.number()?;
            let (start, stop) = if self.eat(b',') {
                (first, self.number()?)
            } else {
                (0, first)
            };
            self.expect(b')', "')' closing 'range('")?;
            return Ok((start..stop).collect());
        }
        self.expect(b'[', "'[' opening a list of concatenated nodes")?;
        let mut nodes = Vec::new();
        while !self.eat(b']') {
            nodes.push(self.number()?);
            if !self.eat(b',') {
                self.expect(b']', "',' or ']' in a list of concatenated nodes")?;
                break;
            }
        }
        Ok(nodes)
    }
}

// Node vocabulary: cell inputs, the seven operations (compact index + FIRST_OP), the sum and
// the concat of a cell, reduction-cell variants of the cell's ends (ops share their types
// between the cells), then the fixed blocks of the skeleton. `none` never becomes a node.
const VOCAB: &[&str] = &[
    "input_prev_prev",
    "input_prev",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "add",
    "concat",
    "reduce_input_prev_prev",
    "reduce_input_prev",
    "reduce_concat",
    "stem_conv3x3_bn",
    "head_global_avgpool",
    "head_linear",
    "input",
    "output",
];
const INPUT_PREV_PREV: u16 = 0;
const INPUT_PREV: u16 = 1;
const FIRST_OP: u16 = 2;
const ADD: u16 = 9;
const CONCAT: u16 = 10;
const REDUCE_INPUT_PREV_PREV: u16 = 11;
const REDUCE_INPUT_PREV: u16 = 12;
const REDUCE_CONCAT: u16 = 13;
const STEM: u16 = 14;
const HEAD_GAP: u16 = 15;
const HEAD_LINEAR: u16 = 16;
const INPUT: u16 = 17;
const OUTPUT: u16 = 18;

/// Inputs a pair can read: nodes 0..=4 (node 5 reads at most node 4).
const PAIR_INPUTS: usize = CELL_INPUTS + INTERMEDIATE_NODES - 1;
/// Flat features per pair: one-hot op (`none` included), one-hot input.
const FLAT_PER_PAIR: usize = DartsOp::ALL.len() + PAIR_INPUTS;

/// Nodes of an unpruned cell graph: two inputs, three per intermediate node, one output.
const FULL_NODES: usize = CELL_INPUTS + 3 * INTERMEDIATE_NODES + 1;

/// One cell as an op-on-node graph, with the map from the cell's pairs to its nodes.
///
/// Unpruned layout (15 nodes, topological order): node 0 = the cell k-2 input, node 1 = the
/// cell k-1 input, then for each intermediate node 2..=5 its two op nodes (in genotype order)
/// followed by its `add` node, last the output (`concat`). Edges: the input or add node a pair
/// reads -> the pair's op node -> its add node; add nodes in `concat` -> output. The input
/// nodes also stand for the cell's input preprocessing (DARTS' ReLU-conv1x1-BN, or
/// FactorizedReduce after a reduction cell).
///
/// Pruned as the cell computes: `none` op nodes are dropped, and so is every op or add node
/// that no live path from an input reaches or that reaches no concatenated node. The two input
/// nodes and the output always stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DartsCellGraph {
    pub graph: CellGraph,
    /// For each pair, the node of its operation; `None` when pruned.
    pub pair_nodes: [Option<usize>; PAIRS],
    /// For each intermediate node 2..=5 (index `node - 2`), its add node; `None` when pruned.
    pub add_nodes: [Option<usize>; INTERMEDIATE_NODES],
}

impl DartsCellGraph {
    /// Node of the cell k-2 input.
    pub const PREV_PREV: usize = 0;
    /// Node of the cell k-1 input.
    pub const PREV: usize = 1;

    pub fn build(cell: &DartsCell, kind: CellKind) -> Self {
        let op_slot = |p: usize| CELL_INPUTS + 3 * (p / 2) + p % 2;
        let add_slot = |k: usize| CELL_INPUTS + 3 * k + 2;
        let source_slot = |input: usize| {
            if input < CELL_INPUTS {
                input
            } else {
                add_slot(input - CELL_INPUTS)
            }
        };
        let output_slot = FULL_NODES - 1;

        // Forward: a node is live when data from a cell input reaches it.
        let mut live = [false; FULL_NODES];
        live[0] = true;
        live[1] = true;
        for (p, &(op, input)) in cell.pairs.iter().enumerate() {
            live[op_slot(p)] = op != DartsOp::None && live[source_slot(input)];
            let add = add_slot(p / 2);
            live[add] = live[add] || live[op_slot(p)];
        }
        // Backward: an intermediate node is used when it is concatenated or a live op of a
        // used later node reads it.
        let mut used = [false; INTERMEDIATE_NODES];
        for k in (0..INTERMEDIATE_NODES).rev() {
            let node = k + CELL_INPUTS;
            let read_later = cell
                .pairs
                .iter()
                .enumerate()
                .any(|(p, &(_, input))| input == node && live[op_slot(p)] && used[p / 2]);
            used[k] = live[add_slot(k)] && (cell.concat.contains(&node) || read_later);
        }
        let pair_kept = |p: usize| live[op_slot(p)] && used[p / 2];

        let mut keep = [false; FULL_NODES];
        keep[0] = true;
        keep[1] = true;
        keep[output_slot] = true;
        for p in 0..PAIRS {
            keep[op_slot(p)] = pair_kept(p);
        }
        for (k, &u) in used.iter().enumerate() {
            keep[add_slot(k)] = u;
        }
        let mut new_index = [None; FULL_NODES];
        let mut count = 0;
        for (slot, &kept) in keep.iter().enumerate() {
            if kept {
                new_index[slot] = Some(count);
                count += 1;
            }
        }
        let at = |slot: usize| new_index[slot].expect("edges join kept nodes only");

        let (prev_prev, prev, output) = match kind {
            CellKind::Normal => (INPUT_PREV_PREV, INPUT_PREV, CONCAT),
            CellKind::Reduce => (REDUCE_INPUT_PREV_PREV, REDUCE_INPUT_PREV, REDUCE_CONCAT),
        };
        let mut ops = vec![0; count];
        ops[at(0)] = prev_prev;
        ops[at(1)] = prev;
        ops[at(output_slot)] = output;
        let mut edges = Vec::new();
        for (p, &(op, input)) in cell.pairs.iter().enumerate() {
            if pair_kept(p) {
                ops[at(op_slot(p))] = FIRST_OP + op.index() as u16;
                edges.push((at(source_slot(input)), at(op_slot(p))));
                edges.push((at(op_slot(p)), at(add_slot(p / 2))));
            }
        }
        for (k, &u) in used.iter().enumerate() {
            if u {
                ops[at(add_slot(k))] = ADD;
                if cell.concat.contains(&(k + CELL_INPUTS)) {
                    edges.push((at(add_slot(k)), at(output_slot)));
                }
            }
        }
        Self {
            graph: CellGraph::new(ops, &edges),
            pair_nodes: std::array::from_fn(|p| new_index[op_slot(p)]),
            add_nodes: std::array::from_fn(|k| new_index[add_slot(k)]),
        }
    }

    /// The output (concat) node, always the last.
    pub fn output(&self) -> usize {
        self.graph.num_nodes() - 1
    }
}

/// Cells of DARTS' search network (`--space darts-search`).
pub const SEARCH_LAYERS: usize = 8;

/// The DARTS space with its CIFAR-10 evaluation network of `layers` cells (20 in DARTS; 8 for
/// the search network).
#[derive(Debug, Clone)]
pub struct DartsSpace {
    pub layers: usize,
}

impl Default for DartsSpace {
    fn default() -> Self {
        Self { layers: 20 }
    }
}

impl DartsSpace {
    /// Whether cell `layer` (0-based) of the network is a reduction cell: DARTS'
    /// `NetworkCIFAR` reduces at `layers // 3` and `2 * layers // 3`.
    pub fn is_reduction(&self, layer: usize) -> bool {
        layer == self.layers / 3 || layer == 2 * self.layers / 3
    }

    fn random_op(rng: &mut dyn RngCore) -> DartsOp {
        DartsOp::SEARCHED[rng.random_range(0..DartsOp::SEARCHED.len())]
    }

    /// NB301 / NASLib sampling: per node two distinct inputs and two independent ops.
    fn sample_cell(rng: &mut dyn RngCore) -> DartsCell {
        let mut pairs = [(DartsOp::None, 0); PAIRS];
        for k in 0..INTERMEDIATE_NODES {
            let choices = k + CELL_INPUTS;
            let first = rng.random_range(0..choices);
            // Uniform among the other inputs.
            let second = (first + rng.random_range(1..choices)) % choices;
            pairs[2 * k] = (Self::random_op(rng), first);
            pairs[2 * k + 1] = (Self::random_op(rng), second);
        }
        DartsCell {
            pairs,
            concat: DEFAULT_CONCAT.to_vec(),
        }
    }

    /// Change one pair: its input to another that keeps the node's inputs distinct, or its op
    /// to another searched op. Either changes the node's set of branches, so the identity.
    fn mutate_cell(cell: &mut DartsCell, rng: &mut dyn RngCore) {
        let p = rng.random_range(0..PAIRS);
        let (op, input) = cell.pairs[p];
        let sibling_input = cell.pairs[p ^ 1].1;
        let free_inputs: Vec<usize> = (0..DartsCell::node_of_pair(p))
            .filter(|&i| i != input && i != sibling_input)
            .collect();
        // Node 2 reads both cell inputs already, so only its ops can change.
        if !free_inputs.is_empty() && rng.random_bool(0.5) {
            cell.pairs[p].1 = free_inputs[rng.random_range(0..free_inputs.len())];
        } else {
            let others: Vec<DartsOp> = DartsOp::SEARCHED.into_iter().filter(|&o| o != op).collect();
            cell.pairs[p].0 = others[rng.random_range(0..others.len())];
        }
    }
}

/// A cell output in a proxy program: its node and channels.
#[derive(Debug, Clone, Copy)]
struct Tensor {
    node: usize,
    channels: usize,
}

/// Builds the proxy of DARTS' `NetworkCIFAR` cell by cell.
struct ProxyBuilder<'a> {
    p: ProxyProgram,
    global: &'a GlobalEncoding,
    graphs: [DartsCellGraph; 2],
}

impl ProxyBuilder<'_> {
    /// ReLU, depthwise `kernel` conv, pointwise conv, BN: one half of a separable conv, or a
    /// dilated conv. Both convs are generated from the op's node.
    fn relu_dw_pw(
        &mut self,
        x: usize,
        c: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        slot: Slot,
    ) -> usize {
        let dw = Layer::relu_conv_norm(kernel, stride, c, c)
            .with_relu_norm(true, false)
            .depthwise(dilation);
        let dw = self.p.push(dw, vec![x], Some(slot));
        self.p
            .push(Layer::conv_norm(1, 1, c, c), vec![dw], Some(slot))
    }

    /// One pair's operation on `x` (`c` channels), strided when it reads a cell input of a
    /// reduction cell. `None` for `none`.
    fn op(&mut self, op: DartsOp, x: usize, c: usize, stride: usize, slot: Slot) -> Option<usize> {
        let node = match op {
            DartsOp::None => return None,
            DartsOp::MaxPool3x3 => self
                .p
                .push(Layer::MaxPool { kernel: 3, stride }, vec![x], None),
            DartsOp::AvgPool3x3 => self
                .p
                .push(Layer::AvgPool { kernel: 3, stride }, vec![x], None),
            DartsOp::SkipConnect if stride == 1 => x,
            // FactorizedReduce, simplified to one strided 1x1 conv (see proxy_program)
            DartsOp::SkipConnect => {
                self.p
                    .push(Layer::relu_conv_norm(1, stride, c, c), vec![x], Some(slot))
            }
            DartsOp::SepConv3x3 | DartsOp::SepConv5x5 => {
                let k = op.kernel().expect("conv has a kernel");
                let half = self.relu_dw_pw(x, c, k, stride, 1, slot);
                self.relu_dw_pw(half, c, k, 1, 1, slot)
            }
            DartsOp::DilConv3x3 | DartsOp::DilConv5x5 => {
                let k = op.kernel().expect("conv has a kernel");
                self.relu_dw_pw(x, c, k, stride, 2, slot)
            }
        };
        Some(node)
    }

    /// Cell `cell` (position in the global encoding) on the two previous outputs.
    fn cell(
        &mut self,
        cell: &DartsCell,
        kind: CellKind,
        position: usize,
        inputs: [Tensor; 2],
        reduction_prev: bool,
        c: usize,
    ) -> Tensor {
        let graph = self.graphs[kind as usize].clone();
        debug_assert_eq!(self.global.cells[position], graph.graph);
        let slot = |node| Slot {
            cell: position,
            node,
        };
        let [s0, s1] = inputs;
        let pre0 = if reduction_prev {
            Layer::relu_conv_norm(1, 2, s0.channels, c)
        } else {
            Layer::relu_conv_norm(1, 1, s0.channels, c)
        };
        let pre0 = self
            .p
            .push(pre0, vec![s0.node], Some(slot(DartsCellGraph::PREV_PREV)));
        let pre1 = Layer::relu_conv_norm(1, 1, s1.channels, c);
        let pre1 = self
            .p
            .push(pre1, vec![s1.node], Some(slot(DartsCellGraph::PREV)));
        let mut states = vec![pre0, pre1];
        for k in 0..INTERMEDIATE_NODES {
            let mut summands = Vec::new();
            for p in [2 * k, 2 * k + 1] {
                let (op, input) = cell.pairs[p];
                let Some(node) = graph.pair_nodes[p] else {
                    continue;
                };
                let stride = if kind == CellKind::Reduce && input < CELL_INPUTS {
                    2
                } else {
                    1
                };
                summands.extend(self.op(op, states[input], c, stride, slot(node)));
            }
            let state = if summands.is_empty() {
                // a node computing nothing still takes its channels in the concat
                let base = if kind == CellKind::Reduce {
                    self.p.push(
                        Layer::AvgPool {
                            kernel: 2,
                            stride: 2,
                        },
                        vec![pre1],
                        None,
                    )
                } else {
                    pre1
                };
                self.p.push(Layer::Zero, vec![base], None)
            } else {
                self.p.push(Layer::Identity, summands, None)
            };
            states.push(state);
        }
        let concat: Vec<usize> = cell.concat.iter().map(|&n| states[n]).collect();
        Tensor {
            node: self.p.push(Layer::Concat, concat, None),
            channels: cell.concat.len() * c,
        }
    }
}

impl SearchSpace for DartsSpace {
    type Arch = DartsArch;

    fn name(&self) -> &'static str {
        if self.layers == SEARCH_LAYERS {
            "darts-search"
        } else {
            "darts"
        }
    }

    fn parse(&self, text: &str) -> Result<DartsArch, ArchError> {
        DartsArch::parse(text)
    }

    fn format(&self, arch: &DartsArch) -> String {
        arch.to_string()
    }

    fn identity(&self, arch: &DartsArch) -> String {
        arch.normalized().to_string()
    }

    fn sample(&self, rng: &mut dyn RngCore) -> DartsArch {
        DartsArch {
            normal: Self::sample_cell(rng),
            reduce: Self::sample_cell(rng),
        }
    }

    fn mutate(&self, arch: &DartsArch, rng: &mut dyn RngCore) -> DartsArch {
        let mut out = arch.clone();
        let cell = if rng.random_bool(0.5) {
            &mut out.normal
        } else {
            &mut out.reduce
        };
        Self::mutate_cell(cell, rng);
        out
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        VOCAB
    }

    /// The normal cell graph followed by the reduction cell graph, the normal cell's output
    /// feeding both reduction inputs. The single-cell baseline sees one graph, and DARTS
    /// searches two cells, so both must be in it; the normal-then-reduce wiring is how a
    /// normal cell feeds the reduction cell that follows it in the network.
    fn cell_graph(&self, arch: &DartsArch) -> CellGraph {
        let normal = DartsCellGraph::build(&arch.normal, CellKind::Normal).graph;
        let reduce = DartsCellGraph::build(&arch.reduce, CellKind::Reduce).graph;
        let offset = normal.num_nodes();
        let mut ops = normal.ops().to_vec();
        ops.extend_from_slice(reduce.ops());
        let mut edges = Vec::new();
        for (graph, shift) in [(&normal, 0), (&reduce, offset)] {
            let n = graph.num_nodes();
            for i in 0..n {
                for j in i + 1..n {
                    if graph.has_edge(i, j) {
                        edges.push((i + shift, j + shift));
                    }
                }
            }
        }
        let normal_output = offset - 1;
        edges.push((normal_output, offset + DartsCellGraph::PREV_PREV));
        edges.push((normal_output, offset + DartsCellGraph::PREV));
        CellGraph::new(ops, &edges)
    }

    fn global_encoding(&self, arch: &DartsArch) -> GlobalEncoding {
        let normal = DartsCellGraph::build(&arch.normal, CellKind::Normal).graph;
        let reduce = DartsCellGraph::build(&arch.reduce, CellKind::Reduce).graph;
        let mut cells = vec![CellGraph::chain(vec![INPUT, STEM, OUTPUT])];
        for layer in 0..self.layers {
            let cell = if self.is_reduction(layer) {
                &reduce
            } else {
                &normal
            };
            cells.push(cell.clone());
        }
        cells.push(CellGraph::chain(vec![INPUT, HEAD_GAP, HEAD_LINEAR, OUTPUT]));
        GlobalEncoding { cells }
    }

    fn flat_dim(&self) -> usize {
        2 * PAIRS * FLAT_PER_PAIR
    }

    fn proxy_kernel_sizes(&self) -> Vec<usize> {
        vec![1, 3, 5]
    }

    /// DARTS' `NetworkCIFAR` at proxy size: conv3x3-BN stem to `3 * width` channels, the first
    /// `config.cells_per_stage` normal cells of each stage and both reduction cells (`width`
    /// channels per node in the first stage, doubled at each reduction), global pooling,
    /// linear classifier. Each cell preprocesses its two inputs with ReLU-conv1x1-BN; every op
    /// is DARTS' own (separable convs stack two ReLU-depthwise-pointwise-BN halves, dilated
    /// convs one with dilation 2), except that FactorizedReduce (after a reduction cell, and a
    /// strided `skip_connect`) is one strided ReLU-conv1x1-BN instead of two offset halves.
    /// Each op's convs are generated from its op node, the preprocessing from the input nodes.
    fn proxy_program(&self, arch: &DartsArch, config: &ProxyConfig) -> Option<ProxyProgram> {
        let global = self.global_encoding(arch);
        let mut b = ProxyBuilder {
            p: ProxyProgram::default(),
            global: &global,
            graphs: [
                DartsCellGraph::build(&arch.normal, CellKind::Normal),
                DartsCellGraph::build(&arch.reduce, CellKind::Reduce),
            ],
        };
        let image = b.p.push(Layer::Image, vec![], None);
        let stem = Tensor {
            node: b.p.push(
                Layer::conv_norm(3, 1, 3, 3 * config.width),
                vec![image],
                Some(Slot { cell: 0, node: 1 }),
            ),
            channels: 3 * config.width,
        };
        let (mut s0, mut s1) = (stem, stem);
        let mut c = config.width;
        let mut reduction_prev = false;
        let mut normal_in_stage = 0;
        for layer in 0..self.layers {
            let reduction = self.is_reduction(layer);
            if reduction {
                c *= 2;
                normal_in_stage = 0;
            } else {
                normal_in_stage += 1;
                if normal_in_stage > config.cells_per_stage {
                    continue;
                }
            }
            let (cell, kind) = if reduction {
                (&arch.reduce, CellKind::Reduce)
            } else {
                (&arch.normal, CellKind::Normal)
            };
            let out = b.cell(cell, kind, layer + 1, [s0, s1], reduction_prev, c);
            (s0, s1) = (s1, out);
            reduction_prev = reduction;
        }
        let pooled = b.p.push(Layer::GlobalAvgPool, vec![s1.node], None);
        b.p.push(
            Layer::Linear {
                c_in: s1.channels,
                c_out: CLASSES,
            },
            vec![pooled],
            Some(Slot {
                cell: self.layers + 1,
                node: 2,
            }),
        );
        Some(b.p)
    }

    /// Per pair of the normal then the reduction cell: one-hot op (8, `none` included), then
    /// one-hot input (0..=4).
    fn flat_features(&self, arch: &DartsArch) -> Vec<f32> {
        let mut features = vec![0.0; self.flat_dim()];
        let pairs = arch.normal.pairs.iter().chain(arch.reduce.pairs.iter());
        for (p, &(op, input)) in pairs.enumerate() {
            let base = p * FLAT_PER_PAIR;
            features[base + op.index()] = 1.0;
            features[base + DartsOp::ALL.len() + input] = 1.0;
        }
        features
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Table;
    use crate::target::testing::check_program;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// DARTS (second order) from the DARTS code base's `genotypes.py`.
    const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";
    const DARTS_V2_COMPACT: &str =
        "0-3,1-3,0-3,1-3,1-3,0-2,0-2,2-5;0-0,1-0,2-2,1-0,0-0,2-2,2-2,1-0";

    fn space() -> DartsSpace {
        DartsSpace::default()
    }

    /// The vocabulary names a weighted proxy layer may be generated from.
    fn allowed_node_types(layer: &Layer) -> &'static [&'static str] {
        match layer {
            Layer::Conv {
                groups: 1,
                kernel: 3,
                ..
            } => &["stem_conv3x3_bn"],
            Layer::Conv {
                groups: 1,
                kernel: 1,
                ..
            } => &[
                "input_prev_prev",
                "input_prev",
                "reduce_input_prev_prev",
                "reduce_input_prev",
                "skip_connect",
                "sep_conv_3x3",
                "sep_conv_5x5",
                "dil_conv_3x3",
                "dil_conv_5x5",
            ],
            Layer::Conv { kernel: 3, .. } => &["sep_conv_3x3", "dil_conv_3x3"],
            Layer::Conv { kernel: 5, .. } => &["sep_conv_5x5", "dil_conv_5x5"],
            Layer::Linear { .. } => &["head_linear"],
            _ => &[],
        }
    }

    #[test]
    fn proxy_networks_run_and_take_weights_from_their_own_nodes() {
        let config = ProxyConfig {
            image_size: 8,
            ..ProxyConfig::default()
        };
        let table = Table::load("darts").unwrap();
        let with_none = DARTS_V2
            .replacen("('sep_conv_3x3', 0)", "('none', 0)", 1)
            .replace(
                "('max_pool_3x3', 0), ('max_pool_3x3', 1)",
                "('none', 0), ('none', 1)",
            );
        let mut texts: Vec<String> = vec![DARTS_V2.into(), with_none];
        texts.extend(
            table.column("arch").unwrap()[..40]
                .iter()
                .map(|s| s.to_string()),
        );
        for text in &texts {
            let arch = space().parse(text).unwrap();
            let program = space().proxy_program(&arch, &config).unwrap();
            let global = space().global_encoding(&arch);
            check_program(&program, &global, VOCAB, allowed_node_types, 8, text);
        }
        // 3 normal + 2 reduction cells at one normal cell per stage
        let program = space()
            .proxy_program(&space().parse(DARTS_V2).unwrap(), &config)
            .unwrap();
        let concats = program
            .nodes
            .iter()
            .filter(|n| n.layer == Layer::Concat)
            .count();
        assert_eq!(concats, 5);
    }

    fn err(text: &str) -> String {
        space().parse(text).unwrap_err().to_string()
    }

    #[test]
    fn both_forms_agree_on_every_row_of_the_embedded_table() {
        let space = space();
        let table = Table::load("darts").unwrap();
        let genotypes = table.column("arch").unwrap();
        let compacts = table.column("compact").unwrap();
        assert_eq!(genotypes.len(), 1218);
        for (genotype, compact) in genotypes.iter().zip(&compacts) {
            let a = space.parse(genotype).unwrap();
            assert_eq!(space.format(&a), *genotype);
            assert_eq!(space.parse(compact).unwrap(), a, "{compact}");
            assert_eq!(a.compact().as_deref(), Some(*compact));
        }
        // the data loader's duplicate check (by identity) passes
        assert_eq!(table.encode(&space, None).unwrap().len(), 1218);
    }

    #[test]
    fn the_search_network_has_8_cells_and_its_own_name() {
        let search = super::super::by_name("darts-search").unwrap();
        assert_eq!(search.name(), "darts-search");
        let arch = search.encode(DARTS_V2).unwrap();
        assert_eq!(arch.global.cells.len(), 8 + 2);
        let space = DartsSpace {
            layers: SEARCH_LAYERS,
        };
        let reductions: Vec<usize> = (0..8).filter(|&l| space.is_reduction(l)).collect();
        assert_eq!(reductions, vec![2, 5]);
        let program = search
            .proxy_program(DARTS_V2, &ProxyConfig::default())
            .unwrap()
            .unwrap();
        let cells = program
            .nodes
            .iter()
            .filter(|n| n.layer == Layer::Concat)
            .count();
        assert_eq!(cells, 5);
    }

    #[test]
    fn registered_by_name() {
        for name in ["darts", "nb301"] {
            assert_eq!(super::super::by_name(name).unwrap().name(), "darts");
        }
        assert!(super::super::SPACE_NAMES.contains(&"darts"));
    }

    #[test]
    fn genotype_and_compact_forms_agree() {
        let space = space();
        let a = space.parse(DARTS_V2).unwrap();
        assert_eq!(space.format(&a), DARTS_V2);
        assert_eq!(space.parse(DARTS_V2_COMPACT).unwrap(), a);
        assert_eq!(a.compact().unwrap(), DARTS_V2_COMPACT);
        assert_eq!(a.normal.pairs()[7], (DartsOp::DilConv3x3, 2));
        assert_eq!(a.reduce.concat(), &[2, 3, 4, 5]);
        assert_eq!(a.normal.op_names()[5], "skip_connect");
    }

    #[test]
    fn parsing_is_lenient_and_printing_canonical() {
        let space = space();
        let canonical = space.parse(DARTS_V2).unwrap();
        let loose = DARTS_V2
            .replace('\'', "\"")
            .replace(", ", " ,\n\t")
            .replace("[2 ,\n\t3 ,\n\t4 ,\n\t5]", "range(2, 6)")
            .replace("Genotype(", "  Genotype ( ");
        assert!(loose.contains("range(2, 6)"));
        assert_eq!(space.parse(&loose).unwrap(), canonical);
        // keyword arguments in another order, trailing commas, compact form with spaces
        let reordered = "Genotype(reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1),], reduce_concat=range(2,6), normal_concat=[2, 3, 4, 5,], normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)],)";
        assert_eq!(space.parse(reordered).unwrap(), canonical);
        let spaced = DARTS_V2_COMPACT.replace(',', " , ").replace(';', " ; ");
        assert_eq!(space.parse(&spaced).unwrap(), canonical);
        assert_eq!(space.format(&space.parse(reordered).unwrap()), DARTS_V2);
    }

    #[test]
    fn none_and_partial_concat_round_trip() {
        let space = space();
        let text = DARTS_V2
            .replacen("'sep_conv_3x3', 1", "'none', 1", 1)
            .replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[3, 5]");
        let a = space.parse(&text).unwrap();
        assert_eq!(a.normal.pairs()[1], (DartsOp::None, 1));
        assert_eq!(space.format(&a), text);
        // the compact form cannot carry a partial concat
        assert_eq!(a.compact(), None);
        let compact = DARTS_V2_COMPACT.replacen("1-3", "1-7", 1);
        let b = space.parse(&compact).unwrap();
        assert_eq!(b.normal.pairs()[1], (DartsOp::None, 1));
        assert_eq!(b.compact().unwrap(), compact);
    }

    #[test]
    fn errors_are_precise() {
        let seven_pairs = DARTS_V2.replacen("('sep_conv_3x3', 0), ", "", 1);
        assert_eq!(
            err(&seven_pairs),
            "normal cell has 7 pairs; a DARTS cell has 8 (two per intermediate node)"
        );
        // pair 5 of the reduce cell feeds node 4
        let far = DARTS_V2.replacen(
            "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2)",
            "('max_pool_3x3', 4), ('skip_connect', 2), ('skip_connect', 2)",
            1,
        );
        assert_eq!(
            err(&far),
            "pair 5 of the reduce cell reads node 4, but intermediate node 4 can only read nodes 0..3"
        );
        let unknown = err(&DARTS_V2.replacen("dil_conv_3x3", "conv_7x7", 1));
        assert!(
            unknown.starts_with("unknown DARTS operation 'conv_7x7' in pair 8 of the normal cell (known: max_pool_3x3, avg_pool_3x3, skip_connect,"),
            "{unknown}"
        );
        let same = DARTS_V2.replacen("('sep_conv_3x3', 1)", "('sep_conv_3x3', 0)", 1);
        assert!(err(&same).contains(
            "intermediate node 2 of the normal cell reads node 0 in both its pairs (1 and 2)"
        ));
        for concat in ["[]", "[2, 2]", "[3, 2]", "[1, 2]", "[2, 6]", "range(0, 6)"] {
            let text = DARTS_V2.replace(
                "reduce_concat=[2, 3, 4, 5]",
                &format!("reduce_concat={concat}"),
            );
            assert!(
                err(&text).contains("reduce_concat ["),
                "{concat}: {}",
                err(&text)
            );
            assert!(err(&text).contains("must be a non-empty, strictly increasing list"));
        }
        // malformed syntax
        assert!(
            err("Genotype[normal=[]]")
                .contains("expected '(' after 'Genotype' at character 9, found '['")
        );
        assert!(err(&DARTS_V2[..DARTS_V2.len() - 1]).contains("the string ends"));
        assert!(err(&format!("{DARTS_V2} x")).contains("the end of the string"));
        assert!(
            err(&DARTS_V2.replacen("('sep_conv_3x3', 0)", "('sep_conv_3x3' 0)", 1))
                .contains("expected ',' between an operation and its input")
        );
        assert!(
            err(&DARTS_V2.replacen("'sep_conv_3x3', 0", "sep_conv_3x3, 0", 1))
                .contains("a quoted operation name")
        );
        assert!(
            err(&DARTS_V2.replacen("('sep_conv_3x3', 0)", "('sep_conv_3x3', -1)", 1))
                .contains("expected a node number")
        );
        assert!(
            err(&DARTS_V2.replace(", reduce_concat=[2, 3, 4, 5]", ""))
                .contains("lacks its 'reduce_concat'")
        );
        assert!(
            err(&DARTS_V2.replace("reduce_concat", "normal_concat"))
                .contains("'normal_concat' twice")
        );
        assert!(
            err(&DARTS_V2.replace("reduce_concat", "extra"))
                .contains("unknown Genotype field 'extra'")
        );
        assert!(
            err(&DARTS_V2.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=list(2)"))
                .contains("'range(start, stop)'")
        );
        assert!(err("Phenotype(normal=[])").contains("must start with 'Genotype('"));
        assert!(
            err("Genotype(normal=[('sep_conv_3x3', 99999999999999999999999)])")
                .contains("fits in 64 bits")
        );
        // compact form
        assert!(err("0-3,1-3").contains("two cells separated by ';'"));
        assert!(
            err(&DARTS_V2_COMPACT.replacen("0-3", "03", 1))
                .contains("compact pair '03' of the normal cell must be 'input-op'")
        );
        assert!(
            err(&DARTS_V2_COMPACT.replacen("1-0", "1-8", 1))
                .contains("compact pair '1-8' of the reduce cell: op '8' is not 0-7")
        );
        assert!(err(&DARTS_V2_COMPACT.replacen("0-3,", "", 1)).contains("normal cell has 7 pairs"));
        assert!(err(&DARTS_V2_COMPACT.replacen("2-5", "6-5", 1)).contains("pair 8 of the normal cell reads node 6, but intermediate node 5 can only read nodes 0..4"));
        assert!(
            err(&DARTS_V2_COMPACT.replacen("2-5", "2-x", 1))
                .contains("compact pair '2-x' of the normal cell: op 'x' is not 0-7")
        );
        assert!(
            err(&DARTS_V2_COMPACT.replacen("2-5", "a-5", 1))
                .contains("compact pair 'a-5' of the normal cell: input 'a' is not a node number")
        );
        assert!(err("").contains("empty"));
        assert!(err("(hello)").contains("neither a DARTS Genotype"));
    }

    #[test]
    fn identity_ignores_the_order_of_a_nodes_two_pairs() {
        let space = space();
        let a = space.parse(DARTS_V2).unwrap();
        // swap the two pairs of node 5 in the normal cell
        let swapped = DARTS_V2.replacen(
            "('skip_connect', 0), ('dil_conv_3x3', 2)",
            "('dil_conv_3x3', 2), ('skip_connect', 0)",
            1,
        );
        let b = space.parse(&swapped).unwrap();
        assert_ne!(a, b);
        assert_eq!(space.identity(&a), space.identity(&b));
        // the same in the compact form, node 4 of the normal cell
        let swapped = DARTS_V2_COMPACT.replacen("1-3,0-2,", "0-2,1-3,", 1);
        let c = space.parse(&swapped).unwrap();
        assert_ne!(a, c);
        assert_eq!(space.identity(&a), space.identity(&c));
        // another input is another network
        let other = space
            .parse(&DARTS_V2_COMPACT.replacen("2-5", "3-5", 1))
            .unwrap();
        assert_ne!(space.identity(&a), space.identity(&other));
    }

    #[test]
    fn sampled_and_mutated_archs_are_valid_and_round_trip() {
        let space = space();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut seen_ops = std::collections::HashSet::new();
        for _ in 0..500 {
            let a = space.sample(&mut rng);
            let m = space.mutate(&a, &mut rng);
            for arch in [&a, &m] {
                let text = space.format(arch);
                assert_eq!(&space.parse(&text).unwrap(), arch, "{text}");
                assert_eq!(&space.parse(&arch.compact().unwrap()).unwrap(), arch);
                for cell in [&arch.normal, &arch.reduce] {
                    assert!(cell.pairs().iter().all(|&(op, _)| op != DartsOp::None));
                    seen_ops.extend(cell.pairs().iter().map(|&(op, _)| op));
                }
            }
            assert_ne!(space.identity(&a), space.identity(&m));
            let changed: usize = [(&a.normal, &m.normal), (&a.reduce, &m.reduce)]
                .iter()
                .map(|(x, y)| {
                    x.pairs()
                        .iter()
                        .zip(y.pairs())
                        .filter(|(p, q)| p != q)
                        .count()
                })
                .sum();
            assert_eq!(changed, 1);
        }
        assert_eq!(seen_ops.len(), 7);
    }

    #[test]
    fn cell_graph_of_darts_v2() {
        let a = space().parse(DARTS_V2).unwrap();
        let g = DartsCellGraph::build(&a.normal, CellKind::Normal);
        assert_eq!(g.graph.num_nodes(), 15);
        // 8 pairs x (source -> op, op -> add) + 4 concatenated nodes
        assert_eq!(g.graph.num_edges(), 20);
        assert_eq!(g.pair_nodes, [2, 3, 5, 6, 8, 9, 11, 12].map(Some));
        assert_eq!(g.add_nodes, [4, 7, 10, 13].map(Some));
        assert_eq!(g.output(), 14);
        let ops = g.graph.ops();
        assert_eq!(
            (ops[0], ops[1], ops[14]),
            (INPUT_PREV_PREV, INPUT_PREV, CONCAT)
        );
        assert_eq!(VOCAB[ops[12] as usize], "dil_conv_3x3");
        // pair 8 (dil_conv_3x3 on node 2) reads node 2's add node
        assert!(g.graph.has_edge(4, 12) && g.graph.has_edge(12, 13) && g.graph.has_edge(13, 14));
        assert!(g.graph.has_edge(0, 2) && g.graph.has_edge(1, 3));
        let r = DartsCellGraph::build(&a.reduce, CellKind::Reduce);
        let rops = r.graph.ops();
        assert_eq!(
            (rops[0], rops[1], rops[14]),
            (REDUCE_INPUT_PREV_PREV, REDUCE_INPUT_PREV, REDUCE_CONCAT)
        );
    }

    #[test]
    fn cell_graph_prunes_none_and_dead_nodes() {
        let space = space();
        // all none: only the two inputs and the output remain
        let dead = space
            .parse("0-7,1-7,0-7,1-7,0-7,1-7,0-7,1-7;0-0,1-0,0-0,1-0,0-0,1-0,0-0,1-0")
            .unwrap();
        let g = DartsCellGraph::build(&dead.normal, CellKind::Normal);
        assert_eq!(g.graph.ops(), &[INPUT_PREV_PREV, INPUT_PREV, CONCAT][..]);
        assert_eq!(g.graph.num_edges(), 0);
        assert_eq!(g.pair_nodes, [None; PAIRS]);
        assert_eq!(g.add_nodes, [None; INTERMEDIATE_NODES]);
        // node 2 is all none, so the sep_conv on it (pair 3, node 3) is dead but node 3 lives
        // through pair 4; node 4 is not concatenated and only node 5's none reads it
        let text = "Genotype(normal=[('none', 0), ('none', 1), ('sep_conv_3x3', 2), ('max_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 3), ('none', 4), ('sep_conv_5x5', 3)], normal_concat=[2, 3, 5], reduce=[('none', 0), ('none', 1), ('none', 0), ('none', 1), ('none', 0), ('none', 1), ('none', 0), ('none', 1)], reduce_concat=[2, 3, 4, 5])";
        let a = space.parse(text).unwrap();
        let g = DartsCellGraph::build(&a.normal, CellKind::Normal);
        // inputs, max_pool + add (node 3), sep_conv_5x5 + add (node 5), output
        assert_eq!(g.graph.num_nodes(), 7);
        assert_eq!(
            g.pair_nodes,
            [None, None, None, Some(2), None, None, None, Some(4)]
        );
        assert_eq!(g.add_nodes, [None, Some(3), None, Some(5)]);
        let names: Vec<&str> = g.graph.ops().iter().map(|&o| VOCAB[o as usize]).collect();
        assert_eq!(
            names,
            [
                "input_prev_prev",
                "input_prev",
                "max_pool_3x3",
                "add",
                "sep_conv_5x5",
                "add",
                "concat"
            ]
        );
        assert!(
            g.graph.has_edge(1, 2)
                && g.graph.has_edge(3, 4)
                && g.graph.has_edge(3, 6)
                && g.graph.has_edge(5, 6)
        );
        assert_eq!(g.graph.num_edges(), 6);
    }

    #[test]
    fn single_cell_graph_holds_both_cells() {
        let space = space();
        let a = space.parse(DARTS_V2).unwrap();
        let g = space.cell_graph(&a);
        assert_eq!(g.num_nodes(), 30);
        assert_eq!(g.num_edges(), 20 + 20 + 2);
        assert!(g.has_edge(14, 15) && g.has_edge(14, 16));
        assert_eq!(g.ops()[15], REDUCE_INPUT_PREV_PREV);
        assert_eq!(g.ops()[29], REDUCE_CONCAT);
    }

    #[test]
    fn global_encoding_has_the_network_skeleton() {
        let space = space();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for arch in [space.parse(DARTS_V2).unwrap(), space.sample(&mut rng)] {
            let enc = space.global_encoding(&arch);
            assert_eq!(enc.cells.len(), 20 + 2);
            let normal = DartsCellGraph::build(&arch.normal, CellKind::Normal).graph;
            let reduce = DartsCellGraph::build(&arch.reduce, CellKind::Reduce).graph;
            for (i, cell) in enc.cells.iter().enumerate().skip(1).take(20) {
                let expected = if i == 1 + 6 || i == 1 + 13 {
                    &reduce
                } else {
                    &normal
                };
                assert_eq!(cell, expected, "cell {i}");
            }
            assert_eq!(enc.cells[0].ops(), &[INPUT, STEM, OUTPUT][..]);
            assert_eq!(
                enc.cells[21].ops(),
                &[INPUT, HEAD_GAP, HEAD_LINEAR, OUTPUT][..]
            );
            for cell in &enc.cells {
                let n = cell.num_nodes();
                for i in 0..n {
                    for j in 0..=i {
                        assert!(!cell.has_edge(i, j), "edge {i} -> {j} is not forward");
                    }
                }
                assert!(cell.ops().iter().all(|&op| (op as usize) < VOCAB.len()));
            }
        }
        let small = DartsSpace { layers: 8 };
        let reductions: Vec<usize> = (0..8).filter(|&l| small.is_reduction(l)).collect();
        assert_eq!(reductions, [2, 5]);
    }

    #[test]
    fn vocabulary_names_the_operations() {
        for op in DartsOp::SEARCHED {
            assert_eq!(VOCAB[(FIRST_OP as usize) + op.index()], op.name());
            assert_eq!(DartsOp::from_name(op.name()), Some(op));
            assert_eq!(DartsOp::from_index(op.index()), Some(op));
        }
        assert_eq!(VOCAB[ADD as usize], "add");
        assert_eq!(VOCAB[OUTPUT as usize], "output");
        assert_eq!(DartsOp::DilConv5x5.kernel(), Some(5));
        assert_eq!(DartsOp::DilConv5x5.dilation(), 2);
        assert_eq!(DartsOp::SkipConnect.kernel(), None);
        assert!(DartsOp::SepConv3x3.is_conv() && !DartsOp::MaxPool3x3.is_conv());
    }

    #[test]
    fn flat_features_are_one_hot() {
        let space = space();
        let a = space.parse(DARTS_V2).unwrap();
        let f = space.flat_features(&a);
        assert_eq!(f.len(), 208);
        assert_eq!(space.flat_dim(), 208);
        assert_eq!(f.iter().sum::<f32>(), 32.0);
        // normal pair 8: dil_conv_3x3 reading node 2
        let base = 7 * 13;
        assert_eq!(f[base + DartsOp::DilConv3x3.index()], 1.0);
        assert_eq!(f[base + 8 + 2], 1.0);
    }

    /// Any valid cell: ops including `none`, distinct inputs per node, any concat.
    fn arb_cell() -> impl Strategy<Value = DartsCell> {
        (
            proptest::array::uniform8((0usize..8, 0usize..5)),
            1usize..16,
        )
            .prop_map(|(raw, mask)| {
                let mut pairs = [(DartsOp::None, 0); PAIRS];
                for (p, &(op, pick)) in raw.iter().enumerate() {
                    let choices = DartsCell::node_of_pair(p);
                    let input = if p % 2 == 0 {
                        pick % choices
                    } else {
                        (pairs[p - 1].1 + 1 + pick % (choices - 1)) % choices
                    };
                    pairs[p] = (DartsOp::ALL[op], input);
                }
                let concat = (0..4)
                    .filter(|b| mask >> b & 1 == 1)
                    .map(|b| b + 2)
                    .collect();
                DartsCell::new(CellKind::Normal, &pairs, concat).unwrap()
            })
    }

    fn arb_arch() -> impl Strategy<Value = DartsArch> {
        (arb_cell(), arb_cell()).prop_map(|(normal, reduce)| DartsArch { normal, reduce })
    }

    proptest! {
        #[test]
        fn round_trips_through_both_forms(arch in arb_arch()) {
            let space = space();
            prop_assert_eq!(&space.parse(&space.format(&arch)).unwrap(), &arch);
            let mut full = arch.clone();
            full.normal.concat = DEFAULT_CONCAT.to_vec();
            full.reduce.concat = DEFAULT_CONCAT.to_vec();
            prop_assert_eq!(space.parse(&full.compact().unwrap()).unwrap(), full);
            let normalized = arch.normalized();
            prop_assert_eq!(space.identity(&normalized), space.identity(&arch));
        }

        #[test]
        fn sampled_archs_round_trip(seed in any::<u64>()) {
            let space = space();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let arch = space.sample(&mut rng);
            prop_assert_eq!(&space.parse(&space.format(&arch)).unwrap(), &arch);
            prop_assert_eq!(&space.parse(&arch.compact().unwrap()).unwrap(), &arch);
        }

        #[test]
        fn graphs_are_well_formed(arch in arb_arch()) {
            let space = space();
            for kind in [CellKind::Normal, CellKind::Reduce] {
                let g = DartsCellGraph::build(arch.cell(kind), kind);
                prop_assert!(g.graph.num_nodes() >= 3 && g.graph.num_nodes() <= FULL_NODES);
                // every kept op node has exactly one input and one output
                for node in g.pair_nodes.into_iter().flatten() {
                    let n = g.graph.num_nodes();
                    prop_assert_eq!((0..n).filter(|&i| g.graph.has_edge(i, node)).count(), 1);
                    prop_assert_eq!((0..n).filter(|&j| g.graph.has_edge(node, j)).count(), 1);
                }
            }
            let f = space.flat_features(&arch);
            prop_assert_eq!(f.len(), space.flat_dim());
            prop_assert_eq!(f.iter().sum::<f32>(), 32.0);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,120}") {
            let _ = space().parse(&s);
            let _ = space().parse(&format!("Genotype({s}"));
        }
    }
}
