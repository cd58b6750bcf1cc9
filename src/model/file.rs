//! Model files: the regressor's weights as safetensors, with a JSON header (space, predictor,
//! shapes, training settings, target standardisation, format version) stored in the
//! safetensors `__metadata__` under the key `hypernas`. Written to a temporary file and renamed,
//! so a crash never leaves half a model behind.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{ModelConfig, Regressor};
use crate::train::{Fitted, Standardizer, TrainConfig};

pub const FORMAT_NAME: &str = "hypernas-model";
pub const FORMAT_VERSION: u32 = 1;
const METADATA_KEY: &str = "hypernas";

/// Everything besides the weights that is needed to use a model again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelHeader {
    pub format: String,
    pub format_version: u32,
    pub hypernas_version: String,
    pub space: String,
    pub target: String,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub standardizer: Standardizer,
    /// Canonical strings of the training architectures (so `eval` can leave them out).
    pub train_archs: Vec<String>,
}

impl ModelHeader {
    pub fn new(space: &str, target: &str, fitted: &Fitted, train_archs: Vec<String>) -> Self {
        Self {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            hypernas_version: env!("CARGO_PKG_VERSION").into(),
            space: space.into(),
            target: target.into(),
            model: fitted.model_config.clone(),
            train: fitted.train_config.clone(),
            standardizer: fitted.standardizer,
            train_archs,
        }
    }
}

/// Write `fitted` with `header` to `path` atomically.
pub fn save(path: &Path, header: &ModelHeader, fitted: &Fitted) -> Result<()> {
    let json = serde_json::to_string(header)?;
    let mut store = SafetensorsStore::from_bytes(None).metadata(METADATA_KEY, json);
    fitted
        .regressor
        .save_into(&mut store)
        .map_err(|e| anyhow!("cannot serialise the model: {e}"))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| anyhow!("cannot serialise the model: {e}"))?;
    write_atomic(path, &canonical_header(&bytes)?)
}

/// Rewrite the safetensors JSON header with sorted keys: the writer keeps metadata in a hash
/// map, and the same seed must give the same file, byte for byte.
fn canonical_header(bytes: &[u8]) -> Result<Vec<u8>> {
    let bad = || anyhow!("cannot serialise the model: malformed safetensors output");
    let len = u64::from_le_bytes(
        bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?,
    ) as usize;
    let header = bytes.get(8..8 + len).ok_or_else(bad)?;
    // serde_json's map is ordered by key, so re-serialising sorts every object.
    let value: serde_json::Value = serde_json::from_slice(header).map_err(|_| bad())?;
    let mut text = serde_json::to_string(&value)?;
    // Tensor data must stay 8-byte aligned; the format allows trailing spaces in the header.
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + len..]);
    Ok(out)
}

/// Write plain f32 tensors as a safetensors file (atomically), with string `metadata`. Keys are
/// sorted and data laid out in name order, so equal inputs give equal bytes.
pub fn write_tensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let mut sorted: Vec<&(String, Vec<usize>, Vec<f32>)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::to_value(metadata)?);
    let mut data = Vec::new();
    for (name, shape, values) in sorted {
        let start = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut text = serde_json::to_string(&header)?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + data.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&data);
    write_atomic(path, &out)
}

/// The directory `path` will be written into, or an error if it does not exist or `path` is a
/// directory; called before long work so it fails early.
pub fn check_writable(path: &Path) -> Result<&Path> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        bail!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        bail!("cannot write {}: it is a directory", path.display());
    }
    Ok(dir)
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = check_writable(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("cannot write {}: not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("cannot write {}: {e}", path.display())
    })
}

/// Read the JSON header of a model file without touching the weights.
fn read_header(path: &Path, bytes: &[u8]) -> Result<ModelHeader> {
    let not_model = || {
        anyhow!(
            "{} is not a hypernas model file (no safetensors header)",
            path.display()
        )
    };
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(not_model)?;
    let len = u64::from_le_bytes(len_bytes) as usize;
    let header_bytes = bytes
        .get(8..8usize.saturating_add(len))
        .ok_or_else(not_model)?;
    let header: serde_json::Value =
        serde_json::from_slice(header_bytes).map_err(|_| not_model())?;
    let meta = header
        .get("__metadata__")
        .and_then(|m| m.get(METADATA_KEY))
        .and_then(|m| m.as_str())
        .ok_or_else(|| {
            anyhow!(
                "{} is a safetensors file but not a hypernas model",
                path.display()
            )
        })?;
    let probe: serde_json::Value = serde_json::from_str(meta)
        .map_err(|e| anyhow!("{}: corrupt model header: {e}", path.display()))?;
    let version = probe.get("format_version").and_then(|v| v.as_u64());
    if probe.get("format").and_then(|v| v.as_str()) != Some(FORMAT_NAME) {
        bail!("{} is not a hypernas model file", path.display());
    }
    if version != Some(FORMAT_VERSION as u64) {
        bail!(
            "{}: model format version {} is not supported by this hypernas (expects {FORMAT_VERSION}); retrain the model",
            path.display(),
            version.map_or("?".to_string(), |v| v.to_string())
        );
    }
    serde_json::from_value(probe)
        .map_err(|e| anyhow!("{}: corrupt model header: {e}", path.display()))
}

/// Load a model file for inference.
pub fn load(path: &Path) -> Result<(ModelHeader, Fitted)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
    let header = read_header(path, &bytes)?;
    let device = Device::flex();
    // The initial values are overwritten by the file; any seed will do.
    let mut regressor = Regressor::new(&header.model, &mut ChaCha8Rng::seed_from_u64(0), &device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = regressor
        .load_from(&mut store)
        .map_err(|e| anyhow!("{}: corrupt model weights: {e}", path.display()))?;
    if !result.is_success() || !result.missing.is_empty() {
        bail!(
            "{}: corrupt model weights ({} missing, {} errors)",
            path.display(),
            result.missing.len(),
            result.errors.len()
        );
    }
    let fitted = Fitted {
        model_config: header.model.clone(),
        train_config: header.train.clone(),
        standardizer: header.standardizer,
        regressor: regressor.valid(),
        epoch_losses: Vec::new(),
        aux_log: Vec::new(),
    };
    Ok((header, fitted))
}
