//! Once-for-All MobileNetV3 (w1.0): 5 units of 2 to 4 MBConv layers, each layer with its own
//! depthwise kernel (3, 5, 7) and expansion ratio (3, 4, 6), at input resolution 224.
//!
//! The fixed skeleton is OFA's `OFAMobileNetV3` (`ofa/imagenet_classification/elastic_nn/
//! networks/ofa_mbv3.py`: `base_stage_width = [16, 16, 24, 40, 80, 112, 160, 960, 1280]`,
//! `stride_stages = [1, 2, 2, 2, 1, 2]`, `act_stages = [relu, relu, relu, h_swish, h_swish,
//! h_swish]`, `se_stages = [False, False, True, False, True, True]`): a 3x3 stride-2 stem of
//! 16 channels, a fixed first block (3x3 depthwise, expand 1, 16 channels, identity shortcut),
//! the five searched units (widths 24, 40, 80, 112, 160; strides 2, 2, 2, 1, 2;
//! squeeze-excite in the 40, 112 and 160 units), a 1x1 conv to 960, global pooling, a 1x1
//! "feature mix" conv to 1280 and the classifier.
//!
//! OFA stores a sub-network as 20 kernels, 20 expansion ratios (one per possible layer) and 5
//! depths; only the first `d` layers of a unit run. The kernel and ratio of the others do not
//! matter, so [`OfaArch`] stores them as 3 and 3: two strings that differ only there parse to
//! the same architecture.

use std::fmt;

use rand::{Rng, RngCore};

use super::mbconv_common::{self, MbBlock, Skeleton, pick, pick_other};
use super::{ArchError, SearchSpace};
use crate::encoding::{CellGraph, GlobalEncoding};
use crate::target::{ProxyConfig, ProxyProgram};

pub const UNITS: usize = 5;
pub const MAX_DEPTH: usize = 4;
pub const LAYERS: usize = UNITS * MAX_DEPTH;
pub const KERNELS: [u8; 3] = [3, 5, 7];
pub const EXPANDS: [u8; 3] = [3, 4, 6];
pub const DEPTHS: [u8; 3] = [2, 3, 4];
/// The only resolution of OFA w1.0 as DyNAS-T searched it (every row of the data).
pub const RESOLUTION: usize = 224;
/// What an inactive layer's kernel and ratio are written as.
const INACTIVE: OfaLayer = OfaLayer {
    kernel: 3,
    expand: 3,
};

const UNIT_WIDTHS: [usize; UNITS] = [24, 40, 80, 112, 160];
const UNIT_STRIDES: [usize; UNITS] = [2, 2, 2, 1, 2];
const UNIT_SE: [bool; UNITS] = [false, true, false, true, true];
const SKELETON: Skeleton = Skeleton {
    stem: 16,
    head: 960,
    feature_mix: Some(1280),
};
/// OFA's first block: 3x3 depthwise, no expansion, 16 -> 16 channels with a shortcut.
const FIRST_BLOCK: MbBlock = MbBlock {
    kernel: 3,
    expand: 1,
    se: false,
    stride: 1,
    c_in: 16,
    c_out: 16,
};

/// One layer's searched choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OfaLayer {
    pub kernel: u8,
    pub expand: u8,
}

/// An OFA-MobileNetV3 sub-network: per-unit depths and the 20 layer slots, the slots beyond
/// a unit's depth normalised to [`INACTIVE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OfaArch {
    depths: [u8; UNITS],
    layers: [OfaLayer; LAYERS],
}

fn choice_list(values: &[u8]) -> String {
    let names: Vec<String> = values.iter().map(u8::to_string).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

impl OfaArch {
    /// Check the three lists (20 kernels, 20 ratios, 5 depths) and normalise inactive slots.
    pub fn new(ks: &[usize], e: &[usize], d: &[usize]) -> Result<Self, ArchError> {
        for (name, list, len) in [("ks", ks, LAYERS), ("e", e, LAYERS), ("d", d, UNITS)] {
            if list.len() != len {
                return Err(ArchError::new(format!(
                    "{name} has {} values; OFA-MobileNetV3 has {len} ({})",
                    list.len(),
                    if len == UNITS {
                        "one depth per unit"
                    } else {
                        "5 units x 4 layers"
                    }
                )));
            }
        }
        let check = |name: &str, what: &str, i: usize, v: usize, allowed: &[u8]| {
            allowed
                .iter()
                .copied()
                .find(|&a| a as usize == v)
                .ok_or_else(|| {
                    ArchError::new(format!(
                        "{name} value {v} at {what} {} is not {}",
                        i + 1,
                        choice_list(allowed)
                    ))
                })
        };
        let mut depths = [0; UNITS];
        for (u, &v) in d.iter().enumerate() {
            depths[u] = check("d", "unit", u, v, &DEPTHS)?;
        }
        let mut layers = [INACTIVE; LAYERS];
        for (i, slot) in layers.iter_mut().enumerate() {
            let kernel = check("ks", "layer", i, ks[i], &KERNELS)?;
            let expand = check("e", "layer", i, e[i], &EXPANDS)?;
            if i % MAX_DEPTH < depths[i / MAX_DEPTH] as usize {
                *slot = OfaLayer { kernel, expand };
            }
        }
        Ok(Self { depths, layers })
    }

    pub fn depths(&self) -> [u8; UNITS] {
        self.depths
    }

    /// The layer in slot `layer` (0-based) of `unit`, if it runs.
    pub fn layer(&self, unit: usize, layer: usize) -> Option<OfaLayer> {
        (layer < self.depths[unit] as usize).then(|| self.layers[unit * MAX_DEPTH + layer])
    }

    /// The searched layers that run, as blocks with OFA's real channels and strides.
    pub fn blocks(&self) -> Vec<MbBlock> {
        let mut blocks = Vec::with_capacity(LAYERS);
        let mut c_in = FIRST_BLOCK.c_out;
        for unit in 0..UNITS {
            for (l, layer) in (0..MAX_DEPTH)
                .map_while(|l| self.layer(unit, l))
                .enumerate()
            {
                blocks.push(MbBlock {
                    kernel: layer.kernel as usize,
                    expand: layer.expand as usize,
                    se: UNIT_SE[unit],
                    // a unit's first layer changes the width and takes the unit's stride
                    stride: if l == 0 { UNIT_STRIDES[unit] } else { 1 },
                    c_in,
                    c_out: UNIT_WIDTHS[unit],
                });
                c_in = UNIT_WIDTHS[unit];
            }
        }
        blocks
    }

    /// Parse `ks=..;e=..;d=..[;r=224]` (keys optional, then in that order) or OFA's dict
    /// `{'ks': [...], 'e': [...], 'd': [...]}` (JSON or Python quoting, `r` optional).
    pub fn parse(text: &str) -> Result<Self, ArchError> {
        let text = text.trim();
        if text.starts_with('{') {
            return Self::parse_dict(text);
        }
        let fields: Vec<&str> = text.split(';').map(str::trim).collect();
        if !(3..=4).contains(&fields.len()) {
            return Err(ArchError::new(format!(
                "'{text}' is not an OFA-MobileNetV3 sub-network: expected ks=K1,...,K20;e=E1,...,E20;d=D1,...,D5;r=224 (or OFA's {{'ks': [...], 'e': [...], 'd': [...]}})"
            )));
        }
        let mut lists = Vec::with_capacity(4);
        for (field, key) in fields.iter().zip(["ks", "e", "d", "r"]) {
            let values = match field.split_once('=') {
                Some((k, v)) if k.trim() == key => v,
                Some((k, _)) => {
                    return Err(ArchError::new(format!(
                        "field '{}' where '{key}' was expected (order: ks, e, d, r)",
                        k.trim()
                    )));
                }
                None => field,
            };
            lists.push(int_list(key, values)?);
        }
        if let Some(r) = lists.get(3) {
            check_resolution(r)?;
        }
        Self::new(&lists[0], &lists[1], &lists[2])
    }

    fn parse_dict(text: &str) -> Result<Self, ArchError> {
        // OFA and DyNAS-T print Python dicts: single quotes, None
        let json = text.replace('\'', "\"").replace("None", "null");
        let value: serde_json::Value = serde_json::from_str(&json)
            .map_err(|e| ArchError::new(format!("bad OFA sub-network dict: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| ArchError::new("an OFA sub-network dict must be an object"))?;
        let mut lists: [Vec<usize>; 4] = Default::default();
        for (key, value) in object {
            let index = match key.as_str() {
                "ks" => 0,
                "e" => 1,
                "d" => 2,
                "r" => 3,
                // OFA's width multiplier, unset for the fixed-width w1.0 supernet
                "wid" | "w" if value.is_null() => continue,
                other => {
                    return Err(ArchError::new(format!(
                        "unknown key '{other}' in an OFA sub-network dict (expected ks, e, d, r)"
                    )));
                }
            };
            lists[index] = json_ints(key, value)?;
        }
        for (key, list) in ["ks", "e", "d"].iter().zip(&lists) {
            if list.is_empty() {
                return Err(ArchError::new(format!(
                    "the OFA sub-network dict has no '{key}'"
                )));
            }
        }
        if !lists[3].is_empty() {
            check_resolution(&lists[3])?;
        }
        Self::new(&lists[0], &lists[1], &lists[2])
    }
}

fn int_list(key: &str, text: &str) -> Result<Vec<usize>, ArchError> {
    let text = text.trim().trim_start_matches('[').trim_end_matches(']');
    text.split(',')
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| ArchError::new(format!("{key} value '{}' is not a number", v.trim())))
        })
        .collect()
}

fn json_ints(key: &str, value: &serde_json::Value) -> Result<Vec<usize>, ArchError> {
    let items = match value {
        serde_json::Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    items
        .iter()
        .map(|v| {
            v.as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| ArchError::new(format!("{key} value {v} is not a number")))
        })
        .collect()
}

fn check_resolution(r: &[usize]) -> Result<(), ArchError> {
    match r {
        [RESOLUTION] => Ok(()),
        _ => Err(ArchError::new(format!(
            "r {r:?}: only resolution {RESOLUTION} is supported (the OFA w1.0 data is all at {RESOLUTION})"
        ))),
    }
}

/// `ks=K1,...,K20;e=E1,...,E20;d=D1,...,D5;r=224`, inactive layers written as 3.
impl fmt::Display for OfaArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |values: &mut dyn Iterator<Item = u8>| {
            values.map(|v| v.to_string()).collect::<Vec<_>>().join(",")
        };
        write!(
            f,
            "ks={};e={};d={};r={RESOLUTION}",
            join(&mut self.layers.iter().map(|l| l.kernel)),
            join(&mut self.layers.iter().map(|l| l.expand)),
            join(&mut self.depths.iter().copied())
        )
    }
}

/// The OFA-MobileNetV3 w1.0 space.
#[derive(Debug, Clone, Default)]
pub struct OfaMbv3Space;

fn random_layer(rng: &mut dyn RngCore) -> OfaLayer {
    OfaLayer {
        kernel: pick(rng, &KERNELS),
        expand: pick(rng, &EXPANDS),
    }
}

/// One decision that changes the network: a unit's depth or an active layer's choice.
enum Decision {
    Depth(usize),
    Kernel(usize),
    Expand(usize),
}

impl SearchSpace for OfaMbv3Space {
    type Arch = OfaArch;

    fn name(&self) -> &'static str {
        "ofa-mbv3"
    }

    fn parse(&self, text: &str) -> Result<OfaArch, ArchError> {
        OfaArch::parse(text)
    }

    fn format(&self, arch: &OfaArch) -> String {
        arch.to_string()
    }

    /// Uniform per decision: each unit's depth, then each active layer's kernel and ratio.
    fn sample(&self, rng: &mut dyn RngCore) -> OfaArch {
        let mut arch = OfaArch {
            depths: [0; UNITS],
            layers: [INACTIVE; LAYERS],
        };
        for unit in 0..UNITS {
            arch.depths[unit] = pick(rng, &DEPTHS);
            for l in 0..arch.depths[unit] as usize {
                arch.layers[unit * MAX_DEPTH + l] = random_layer(rng);
            }
        }
        arch
    }

    /// Changes one decision that matters (never an inactive slot). A unit that grows gets
    /// random choices for its new layers; one that shrinks forgets its dropped layers.
    fn mutate(&self, arch: &OfaArch, rng: &mut dyn RngCore) -> OfaArch {
        let mut decisions: Vec<Decision> = (0..UNITS).map(Decision::Depth).collect();
        for unit in 0..UNITS {
            for l in 0..arch.depths[unit] as usize {
                let slot = unit * MAX_DEPTH + l;
                decisions.extend([Decision::Kernel(slot), Decision::Expand(slot)]);
            }
        }
        let mut out = *arch;
        match decisions[rng.random_range(0..decisions.len())] {
            Decision::Depth(unit) => {
                let old = arch.depths[unit] as usize;
                let new = pick_other(rng, &DEPTHS, arch.depths[unit]);
                out.depths[unit] = new;
                for l in old.min(new as usize)..MAX_DEPTH {
                    out.layers[unit * MAX_DEPTH + l] = if l < new as usize {
                        random_layer(rng)
                    } else {
                        INACTIVE
                    };
                }
            }
            Decision::Kernel(slot) => {
                out.layers[slot].kernel = pick_other(rng, &KERNELS, arch.layers[slot].kernel);
            }
            Decision::Expand(slot) => {
                out.layers[slot].expand = pick_other(rng, &EXPANDS, arch.layers[slot].expand);
            }
        }
        out
    }

    fn node_vocabulary(&self) -> &[&'static str] {
        mbconv_common::VOCAB
    }

    /// The active searched layers as one chain of block graphs (the fixed stem, first block
    /// and head are the same for every architecture).
    fn cell_graph(&self, arch: &OfaArch) -> CellGraph {
        mbconv_common::chained_blocks(&arch.blocks())
    }

    /// Stem, the fixed first block, one cell per active layer, head.
    fn global_encoding(&self, arch: &OfaArch) -> GlobalEncoding {
        let mut blocks = vec![FIRST_BLOCK];
        blocks.extend(arch.blocks());
        mbconv_common::global_encoding(&SKELETON, &blocks)
    }

    /// Per slot a one-hot kernel and a one-hot ratio (all zero when the slot is inactive),
    /// then a one-hot depth per unit. The resolution is fixed, so it has no feature.
    fn flat_features(&self, arch: &OfaArch) -> Vec<f32> {
        let mut features = Vec::with_capacity(self.flat_dim());
        let one_hot = |features: &mut Vec<f32>, choices: &[u8], v: Option<u8>| {
            features.extend(choices.iter().map(|&c| f32::from(u8::from(Some(c) == v))));
        };
        for unit in 0..UNITS {
            for l in 0..MAX_DEPTH {
                let layer = arch.layer(unit, l);
                one_hot(&mut features, &KERNELS, layer.map(|x| x.kernel));
                one_hot(&mut features, &EXPANDS, layer.map(|x| x.expand));
            }
        }
        for &d in &arch.depths {
            one_hot(&mut features, &DEPTHS, Some(d));
        }
        features
    }

    fn flat_dim(&self) -> usize {
        LAYERS * (KERNELS.len() + EXPANDS.len()) + UNITS * DEPTHS.len()
    }

    fn proxy_kernel_sizes(&self) -> Vec<usize> {
        vec![1, 3, 5, 7]
    }

    /// The network of [`OfaMbv3Space::global_encoding`] at proxy size; see
    /// [`mbconv_common::proxy_program`] for the reductions and simplifications.
    fn proxy_program(&self, arch: &OfaArch, config: &ProxyConfig) -> Option<ProxyProgram> {
        let mut blocks = vec![FIRST_BLOCK];
        blocks.extend(arch.blocks());
        Some(mbconv_common::proxy_program(&SKELETON, &blocks, config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The first row of the DyNAS-T data, as the data writes it.
    const DATA_ROW: &str = "5,7,5,5,3,3,3,7,5,5,3,7,7,3,3,3,5,5,5,5;4,3,4,4,4,6,3,4,4,3,4,3,3,6,6,6,4,3,4,4;2,3,2,4,3;224";
    const CANONICAL: &str = "ks=5,7,3,3,3,3,3,3,5,5,3,3,7,3,3,3,5,5,5,3;e=4,3,3,3,4,6,3,3,4,3,3,3,3,6,6,6,4,3,4,3;d=2,3,2,4,3;r=224";

    #[test]
    fn data_form_dict_form_and_canonical_form_agree() {
        let space = OfaMbv3Space;
        let a = space.parse(DATA_ROW).unwrap();
        assert_eq!(space.format(&a), CANONICAL);
        assert_eq!(space.parse(CANONICAL).unwrap(), a);
        let dict = "{'ks': [5,7,5,5,3,3,3,7,5,5,3,7,7,3,3,3,5,5,5,5], 'e': [4,3,4,4,4,6,3,4,4,3,4,3,3,6,6,6,4,3,4,4], 'd': [2,3,2,4,3], 'r': [224], 'wid': None}";
        assert_eq!(space.parse(dict).unwrap(), a);
        let json = r#"{"ks": [5,7,5,5,3,3,3,7,5,5,3,7,7,3,3,3,5,5,5,5], "e": [4,3,4,4,4,6,3,4,4,3,4,3,3,6,6,6,4,3,4,4], "d": [2,3,2,4,3]}"#;
        assert_eq!(space.parse(json).unwrap(), a);
        // without the resolution
        let (no_r, _) = CANONICAL.rsplit_once(';').unwrap();
        assert_eq!(space.parse(no_r).unwrap(), a);
        assert_eq!(a.depths(), [2, 3, 2, 4, 3]);
        assert_eq!(a.blocks().len(), 14);
    }

    #[test]
    fn inactive_slots_do_not_matter() {
        let space = OfaMbv3Space;
        let a = space.parse(DATA_ROW).unwrap();
        // slot 3 of unit 1 (layer 3) is inactive at depth 2
        let changed = DATA_ROW.replacen("5,7,5,5", "5,7,7,5", 1);
        let b = space.parse(&changed).unwrap();
        assert_eq!(a, b);
        assert_eq!(space.identity(&a), space.identity(&b));
        assert_eq!(space.flat_features(&a), space.flat_features(&b));
    }

    #[test]
    fn errors_are_precise() {
        let space = OfaMbv3Space;
        let err = |s: &str| space.parse(s).unwrap_err().to_string();
        assert!(err("ks=3").contains("expected ks="), "{}", err("ks=3"));
        let short = CANONICAL.replacen("ks=5,7,", "ks=7,", 1);
        assert!(err(&short).contains("ks has 19 values"), "{}", err(&short));
        let bad_k = CANONICAL.replacen("ks=5,", "ks=4,", 1);
        assert!(err(&bad_k).contains("ks value 4 at layer 1 is not 3, 5 or 7"));
        let bad_e = CANONICAL.replacen("e=4,3,", "e=4,2,", 1);
        assert!(err(&bad_e).contains("e value 2 at layer 2 is not 3, 4 or 6"));
        let bad_d = CANONICAL.replacen("d=2,3,2", "d=2,3,5", 1);
        assert!(err(&bad_d).contains("d value 5 at unit 3 is not 2, 3 or 4"));
        let bad_r = CANONICAL.replacen("r=224", "r=192", 1);
        assert!(err(&bad_r).contains("only resolution 224"));
        let swapped = CANONICAL.replacen("e=", "x=", 1);
        assert!(err(&swapped).contains("field 'x' where 'e' was expected"));
        assert!(err("ks=a;e=3;d=2").contains("ks value 'a' is not a number"));
        assert!(err("{'ks': [3], 'd': [2]}").contains("no 'e'"));
        assert!(err("{'ks': [3], 'x': 1}").contains("unknown key 'x'"));
        assert!(err("{'ks': [3, 'a']}").contains("ks value \"a\" is not a number"));
        assert!(err("{oops").contains("bad OFA sub-network dict"));
    }

    #[test]
    fn sampled_and_mutated_archs_are_valid_and_differ_by_one_decision() {
        let space = OfaMbv3Space;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..300 {
            let a = space.sample(&mut rng);
            assert_eq!(space.parse(&space.format(&a)).unwrap(), a);
            let m = space.mutate(&a, &mut rng);
            assert_eq!(space.parse(&space.format(&m)).unwrap(), m);
            assert_ne!(space.identity(&m), space.identity(&a));
            let depth_changes = (0..UNITS).filter(|&u| a.depths[u] != m.depths[u]).count();
            if depth_changes == 0 {
                let changed = (0..LAYERS)
                    .map(|i| {
                        usize::from(a.layers[i].kernel != m.layers[i].kernel)
                            + usize::from(a.layers[i].expand != m.layers[i].expand)
                    })
                    .sum::<usize>();
                assert_eq!(changed, 1);
            } else {
                assert_eq!(depth_changes, 1);
            }
            assert_eq!(space.flat_features(&m).len(), space.flat_dim());
        }
    }

    #[test]
    fn encodings_have_the_documented_shapes() {
        let space = OfaMbv3Space;
        let a = space.parse(CANONICAL).unwrap();
        let global = space.global_encoding(&a);
        // stem, first block, 14 active layers, head
        assert_eq!(global.cells.len(), 1 + 1 + 14 + 1);
        let name = |cell: &CellGraph, i: usize| mbconv_common::VOCAB[cell.ops()[i] as usize];
        // unit 2 (SE) layer 1: input, expand, dw, se, project, output (stride 2: no add)
        let unit2_first = &global.cells[2 + 2];
        assert_eq!(unit2_first.num_nodes(), 6);
        assert_eq!(name(unit2_first, 3), "se");
        let head = global.cells.last().unwrap();
        assert_eq!(name(head, 3), "head_feature_mix_conv1x1");
        // the single graph: input, 14 layers of 3 to 5 nodes, output
        let cell = space.cell_graph(&a);
        let adds = cell.ops().iter().filter(|&&o| o == 10).count();
        assert_eq!(
            adds,
            14 - 5,
            "every layer but a unit's first has a shortcut"
        );
        let flat = space.flat_features(&a);
        assert_eq!(flat.len(), 135);
        assert_eq!(flat.iter().sum::<f32>(), (2 * 14 + 5) as f32);
    }

    #[test]
    fn proxy_networks_run_from_their_own_nodes() {
        let space = OfaMbv3Space;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut archs = vec![space.parse(CANONICAL).unwrap()];
        archs.extend((0..3).map(|_| space.sample(&mut rng)));
        mbconv_common::testing::check_proxies(&space, &archs);
    }

    #[test]
    fn every_embedded_row_round_trips_and_is_distinct() {
        mbconv_common::testing::check_embedded_rows(&OfaMbv3Space, "ofa-mbv3", 2162);
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            let _ = OfaMbv3Space.parse(&s);
        }

        #[test]
        fn any_valid_lists_round_trip(
            ks in proptest::collection::vec(0usize..3, LAYERS),
            e in proptest::collection::vec(0usize..3, LAYERS),
            d in proptest::collection::vec(0usize..3, UNITS),
        ) {
            let ks: Vec<usize> = ks.iter().map(|&i| KERNELS[i] as usize).collect();
            let e: Vec<usize> = e.iter().map(|&i| EXPANDS[i] as usize).collect();
            let d: Vec<usize> = d.iter().map(|&i| DEPTHS[i] as usize).collect();
            let arch = OfaArch::new(&ks, &e, &d).unwrap();
            let space = OfaMbv3Space;
            proptest::prop_assert_eq!(space.parse(&space.format(&arch)).unwrap(), arch);
        }
    }
}
