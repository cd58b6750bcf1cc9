//! Benchmark tables: CSV files with an architecture column and numeric target columns, either
//! from a user path or embedded in the binary (`nb201`), so the defaults work offline.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

pub mod cifar;

use crate::space::{DynSpace, EncodedArch};

/// A data set compiled into the binary.
struct Embedded {
    name: &'static str,
    /// The spaces it labels; the first is the default for `--data NAME` without `--space`.
    spaces: &'static [&'static str],
    arch_col: &'static str,
    /// The target used when none is given.
    target: &'static str,
    /// Training sizes of `bench` on this table.
    bench_sizes: &'static [usize],
    /// What every result on this table must say about its labels.
    caveat: Option<&'static str>,
    /// zstd-compressed CSV.
    bytes: &'static [u8],
}

const EMBEDDED: &[Embedded] = &[
    Embedded {
        name: "nb201",
        spaces: &["nb201", "nb201-unpruned"],
        arch_col: "arch_str",
        target: "cifar10_test_acc",
        bench_sizes: &[39, 78, 156, 469, 781, 1563],
        caveat: None,
        bytes: include_bytes!("../../data/nb201.csv.zst"),
    },
    Embedded {
        name: "nb101",
        spaces: &["nb101"],
        arch_col: "arch",
        target: "val_acc",
        bench_sizes: &[50, 100, 200],
        caveat: Some(
            "a 500-row NASLib sample of NAS-Bench-101 (292 distinct cells, one seed per query, merged by graph hash), not the full table",
        ),
        bytes: include_bytes!("../../data/nb101.csv.zst"),
    },
    Embedded {
        name: "darts",
        spaces: &["darts-search", "darts"],
        arch_col: "arch",
        target: "val_acc",
        bench_sizes: &[50, 100, 200, 400],
        caveat: Some(
            "labels are NAS-Bench-301 surrogate predictions, not training runs: never report them as results on trained DARTS networks",
        ),
        bytes: include_bytes!("../../data/darts.csv.zst"),
    },
    Embedded {
        name: "nb-macro",
        spaces: &["nb-macro"],
        arch_col: "arch",
        target: "mean_acc",
        bench_sizes: &[50, 100, 200],
        caveat: None,
        bytes: include_bytes!("../../data/nb_macro.csv.zst"),
    },
    Embedded {
        name: "tnb101-micro",
        spaces: &["tnb101-micro"],
        arch_col: "arch",
        target: "class_scene",
        bench_sizes: &[50, 100, 200],
        caveat: None,
        bytes: include_bytes!("../../data/tnb101_micro.csv.zst"),
    },
    Embedded {
        name: "nb-nlp",
        spaces: &["nb-nlp"],
        arch_col: "arch",
        target: "neg_best_val_loss",
        bench_sizes: &[25, 50, 100],
        caveat: Some(
            "NAS-Bench-NLP WikiText-2 subset: 341 runs, 263 distinct cells (repeated runs of a cell averaged), not the PTB main table; the target is minus the best validation cross-entropy",
        ),
        bytes: include_bytes!("../../data/nb_nlp.csv.zst"),
    },
    Embedded {
        name: "nb-graph",
        spaces: &["nb-graph"],
        arch_col: "arch",
        target: "cora_valid",
        bench_sizes: &[50, 100, 200],
        caveat: None,
        bytes: include_bytes!("../../data/nb_graph.csv.zst"),
    },
    Embedded {
        name: "vit",
        spaces: &["vit"],
        arch_col: "arch",
        target: "c100_kd_acc",
        bench_sizes: &[25, 50, 100],
        caveat: Some(
            "200 AutoFormer-Tiny sub-networks from Auto-Prox (CIFAR-100/Flowers/Chaoyang accuracies are distillation-trained runs, imagenet_super_acc inherits supernet weights): a small sample, not a full benchmark",
        ),
        bytes: include_bytes!("../../data/vit_autoformer.csv.zst"),
    },
    Embedded {
        name: "vit-scratch",
        spaces: &["vit"],
        arch_col: "arch",
        target: "c100_base_acc",
        bench_sizes: &[25, 50],
        caveat: Some(
            "100 AutoFormer-Tiny sub-networks from Auto-Prox trained from scratch (and with distillation): a small sample, not a full benchmark",
        ),
        bytes: include_bytes!("../../data/vit_autoformer_scratch.csv.zst"),
    },
    Embedded {
        name: "pit",
        spaces: &["pit"],
        arch_col: "arch",
        target: "c100_kd_acc",
        bench_sizes: &[25, 50],
        caveat: Some(
            "100 PiT sub-networks from Auto-Prox (trained from scratch and with distillation on CIFAR-100/Flowers/Chaoyang): a small sample, not a full benchmark",
        ),
        bytes: include_bytes!("../../data/pit_autoprox.csv.zst"),
    },
    Embedded {
        name: "ofa-mbv3",
        spaces: &["ofa-mbv3"],
        arch_col: "arch",
        target: "top1",
        bench_sizes: &[50, 100, 200],
        caveat: Some(
            "a search-biased sample: 2,162 OFA-MobileNetV3 sub-networks visited by DyNAS-T's evolutionary searches (ImageNet top-1 71-77.5 % with inherited supernet weights), not a uniform sample of the space",
        ),
        bytes: include_bytes!("../../data/ofa_mbv3.csv.zst"),
    },
    Embedded {
        name: "anb-mbconv",
        spaces: &["anb-mbconv"],
        arch_col: "arch",
        target: "val_top1",
        bench_sizes: &[50, 100, 200],
        caveat: Some(
            "Accel-NASBench labels: ImageNet top-1 after the benchmark's short proxy training schedule (42.9-67.1 %), not full-schedule accuracies",
        ),
        bytes: include_bytes!("../../data/anb_mbconv.csv.zst"),
    },
];

/// Names accepted by `--data` besides a path.
pub fn embedded_names() -> Vec<&'static str> {
    EMBEDDED.iter().map(|e| e.name).collect()
}

/// The embedded data set that labels `space`.
fn embedded_of_space(space: &str) -> Option<&'static Embedded> {
    EMBEDDED.iter().find(|e| e.spaces.contains(&space))
}

/// A loaded table: the header and every row as strings, parsed lazily per column.
#[derive(Debug, Clone)]
pub struct Table {
    /// Where the rows came from, for messages (`nb201 (embedded)` or the path).
    pub source: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// The architecture column this table uses unless the user names another.
    pub default_arch_col: String,
    /// The target column used unless the user names one (embedded tables only).
    pub default_target: Option<String>,
    /// What results on this table must say about its labels (embedded tables only).
    pub caveat: Option<&'static str>,
}

impl Table {
    /// Load `source`: the name of an embedded data set or a CSV path.
    pub fn load(source: &str) -> Result<Self> {
        if let Some(e) = EMBEDDED.iter().find(|e| e.name == source) {
            let csv = zstd::decode_all(e.bytes).context("embedded data set is corrupt")?;
            let mut table =
                Self::from_reader(&csv[..], format!("{} (embedded)", e.name), e.arch_col)?;
            table.default_target = Some(e.target.to_string());
            table.caveat = e.caveat;
            return Ok(table);
        }
        let path = Path::new(source);
        if !path.exists() {
            bail!(
                "data '{source}' is neither an embedded data set ({}) nor an existing file",
                embedded_names().join(", ")
            );
        }
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {source}"))?;
        let json_lines = path
            .extension()
            .is_some_and(|e| e == "jsonl" || e == "ndjson");
        if json_lines {
            Self::from_json_lines(std::io::BufReader::new(file), source.to_string())
        } else {
            Self::from_reader(file, source.to_string(), "arch")
        }
    }

    /// JSON lines, one object per architecture: every field becomes a column, numbers and
    /// strings as their text, arrays and objects as compact JSON. So an NB101 cell can be given
    /// as `{"arch": {"matrix": [[0, 1, ...], ...], "ops": ["input", ...]}, "val_acc": 94.1}`,
    /// the form the official API's `ModelSpec` fields dump to.
    pub fn from_json_lines<R: BufRead>(reader: R, source: String) -> Result<Self> {
        let mut headers: Vec<String> = Vec::new();
        let mut records: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("{source}: cannot read line {}", i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| anyhow!("{source}: line {}: not JSON: {e}", i + 1))?;
            let serde_json::Value::Object(map) = value else {
                bail!("{source}: line {}: expected a JSON object", i + 1);
            };
            for key in map.keys() {
                if !headers.contains(key) {
                    headers.push(key.clone());
                }
            }
            records.push(map);
        }
        if records.is_empty() {
            bail!("{source}: no data rows");
        }
        let rows = records
            .iter()
            .map(|map| {
                headers
                    .iter()
                    .map(|h| match map.get(h) {
                        None | Some(serde_json::Value::Null) => String::new(),
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        Ok(Self {
            source,
            headers,
            rows,
            default_arch_col: "arch".into(),
            default_target: None,
            caveat: None,
        })
    }

    /// Which space an embedded data set belongs to.
    pub fn embedded_space(source: &str) -> Option<&'static str> {
        EMBEDDED
            .iter()
            .find(|e| e.name == source)
            .map(|e| e.spaces[0])
    }

    /// The training sizes `bench` uses on the embedded data set of `space` by default.
    pub fn bench_sizes_for_space(space: &str) -> Option<&'static [usize]> {
        embedded_of_space(space).map(|e| e.bench_sizes)
    }

    /// The embedded data set that labels `space`, if there is one.
    pub fn embedded_for_space(space: &str) -> Option<&'static str> {
        embedded_of_space(space).map(|e| e.name)
    }

    pub fn from_reader<R: std::io::Read>(
        reader: R,
        source: String,
        default_arch_col: &str,
    ) -> Result<Self> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers: Vec<String> = csv
            .headers()
            .with_context(|| format!("{source}: cannot read the CSV header"))?
            .iter()
            .map(str::to_string)
            .collect();
        if headers.iter().all(|h| h.is_empty()) {
            bail!("{source}: empty file or empty CSV header");
        }
        let mut rows = Vec::new();
        for (i, record) in csv.records().enumerate() {
            let record = record.map_err(|e| anyhow!("{source}: row {}: {e}", i + 2))?;
            rows.push(record.iter().map(str::to_string).collect());
        }
        if rows.is_empty() {
            bail!("{source}: no data rows");
        }
        Ok(Self {
            source,
            headers,
            rows,
            default_arch_col: default_arch_col.to_string(),
            default_target: None,
            caveat: None,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn column_index(&self, name: &str) -> Result<usize> {
        self.headers.iter().position(|h| h == name).ok_or_else(|| {
            anyhow!(
                "{}: no column '{name}' (columns: {})",
                self.source,
                self.headers.join(", ")
            )
        })
    }

    /// The raw strings of one column.
    pub fn column(&self, name: &str) -> Result<Vec<&str>> {
        let idx = self.column_index(name)?;
        Ok(self
            .rows
            .iter()
            .map(|r| r.get(idx).map_or("", String::as_str))
            .collect())
    }

    /// The target column to use: `requested`, or the table's default.
    pub fn resolve_target(&self, requested: Option<&str>) -> Result<String> {
        match (requested, &self.default_target) {
            (Some(t), _) => Ok(t.to_string()),
            (None, Some(t)) => Ok(t.clone()),
            (None, None) => bail!(
                "{}: pass --target to name the column to predict (columns: {})",
                self.source,
                self.headers.join(", ")
            ),
        }
    }

    /// A numeric target column; rejects empty, non-numeric, NaN and infinite values.
    pub fn target(&self, name: &str) -> Result<Vec<f64>> {
        let values = self.column(name)?;
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x: f64 = v.parse().map_err(|_| {
                    anyhow!(
                        "{}: row {}: target '{name}' value '{v}' is not a number",
                        self.source,
                        i + 2
                    )
                })?;
                if !x.is_finite() {
                    bail!(
                        "{}: row {}: target '{name}' value '{v}' is not finite",
                        self.source,
                        i + 2
                    );
                }
                Ok(x)
            })
            .collect()
    }

    /// Parse and encode every architecture; duplicates (architectures the space recognises as
    /// the same, e.g. isomorphic NB101 cells) are errors because they would leak between
    /// training and test rows.
    pub fn encode(&self, space: &dyn DynSpace, arch_col: Option<&str>) -> Result<Vec<EncodedArch>> {
        let col = arch_col.unwrap_or(&self.default_arch_col);
        let texts = self.column(col)?;
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(texts.len());
        let mut out = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let encoded = space
                .encode(text)
                .map_err(|e| anyhow!("{}: row {}: {e}", self.source, i + 2))?;
            if let Some(first) = seen.insert(encoded.identity.clone(), i) {
                bail!(
                    "{}: rows {} and {} hold the same architecture {}",
                    self.source,
                    first + 2,
                    i + 2,
                    encoded.canonical
                );
            }
            out.push(encoded);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space;

    fn table(csv: &str) -> Result<Table> {
        Table::from_reader(csv.as_bytes(), "test.csv".into(), "arch")
    }

    #[test]
    fn embedded_nb201_is_complete() {
        let t = Table::load("nb201").unwrap();
        assert_eq!(t.len(), 15_625);
        let acc = t.target("cifar10_test_acc").unwrap();
        let best = acc.iter().cloned().fold(f64::MIN, f64::max);
        assert!((best - 94.3733).abs() < 1e-9);
        let nb201 = space::by_name("nb201").unwrap();
        assert_eq!(t.encode(nb201.as_ref(), None).unwrap().len(), 15_625);
    }

    #[test]
    fn json_lines_give_columns_and_json_architectures() {
        let text = r#"{"arch": {"matrix": [[0, 1], [0, 0]], "ops": ["input", "output"]}, "val_acc": 80.5}

{"arch": {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "maxpool3x3", "output"]}, "val_acc": 85, "note": "x"}
"#;
        let t = Table::from_json_lines(text.as_bytes(), "t.jsonl".into()).unwrap();
        assert_eq!(t.headers, vec!["arch", "val_acc", "note"]);
        assert_eq!(t.target("val_acc").unwrap(), vec![80.5, 85.0]);
        assert_eq!(t.column("note").unwrap(), vec!["", "x"]);
        let nb101 = space::by_name("nb101").unwrap();
        let archs = t.encode(nb101.as_ref(), None).unwrap();
        assert_eq!(archs[1].canonical, "010001000:input|maxpool3x3|output");
        let e = Table::from_json_lines("{\"a\": 1}\n[1]\n".as_bytes(), "t.jsonl".into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: expected a JSON object"), "{e}");
        let e = Table::from_json_lines("{oops".as_bytes(), "t.jsonl".into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: not JSON"), "{e}");
    }

    #[test]
    fn clear_errors() {
        let space = space::by_name("nb201").unwrap();
        let t = table("arch,acc\n421211,90\n000000,abc\n").unwrap();
        let e = t.target("acc").unwrap_err().to_string();
        assert!(e.contains("row 3") && e.contains("not a number"), "{e}");
        let e = t.target("missing").unwrap_err().to_string();
        assert!(
            e.contains("no column 'missing'") && e.contains("arch, acc"),
            "{e}"
        );
        let t = table("arch,acc\n421211,NaN\n").unwrap();
        assert!(
            t.target("acc")
                .unwrap_err()
                .to_string()
                .contains("not finite")
        );
        let t = table("arch,acc\n421211,1\n|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|,2\n").unwrap();
        let e = t.encode(space.as_ref(), None).unwrap_err().to_string();
        assert!(e.contains("rows 2 and 3 hold the same"), "{e}");
        let t = table("arch,acc\n42121x,1\n").unwrap();
        let e = t.encode(space.as_ref(), None).unwrap_err().to_string();
        assert!(e.contains("row 2"), "{e}");
        assert!(
            table("arch,acc\n")
                .unwrap_err()
                .to_string()
                .contains("no data rows")
        );
        assert!(
            Table::load("/no/such/file.csv")
                .unwrap_err()
                .to_string()
                .contains("neither")
        );
    }
}
