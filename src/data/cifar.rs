//! CIFAR-10 images for the hypernetwork's auxiliary task: a reader for the official binary
//! layout (plain or xz-compressed), a small balanced subset compiled into the binary so the
//! task works offline, and batch assembly with the usual crop/flip augmentation.
//!
//! A record is 1 label byte (0-9) followed by 3072 pixel bytes in CHW order: 1024 red, 1024
//! green, 1024 blue, each a 32x32 row-major plane. Pixel (row r, col c) of channel ch is byte
//! `1 + ch * 1024 + r * 32 + c` of its record.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Pixel bytes of one image (3 channels of 32x32).
pub const IMAGE_BYTES: usize = 3072;
/// Bytes of one record: the label byte then the pixels.
pub const RECORD_BYTES: usize = 3073;
/// Number of CIFAR-10 classes.
pub const NUM_CLASSES: usize = 10;
/// Class names for labels 0..9, as in the official `batches.meta.txt`.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Per-channel mean of the CIFAR-10 training set in 0..1 units (the standard constants), so
/// the proxy networks see inputs centred like in the published training recipes.
pub const MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// Per-channel standard deviation of the CIFAR-10 training set in 0..1 units.
pub const STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// Side of a CIFAR-10 image in pixels.
const SIDE: usize = 32;
/// Pixels in one channel plane.
const PLANE: usize = SIDE * SIDE;
/// Start of every xz stream; used instead of the file name so a renamed file still loads.
const XZ_MAGIC: [u8; 6] = [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00];
/// Start of the embedded subset, so a wrong or stale file is caught before parsing records.
const SUBSET_MAGIC: &[u8; 8] = b"HNCIFAR1";
/// Header of the embedded subset: magic, u32 LE train count, u32 LE test count.
const SUBSET_HEADER: usize = 16;
/// The balanced subset built by `scripts/make_cifar_subset.py` (100 train and 50 test images
/// per class, exact pixels); compiled in so the auxiliary task needs no data directory.
const EMBEDDED_SUBSET: &[u8] = include_bytes!("../../data/cifar10_subset.bin.zst");

/// A set of images with their labels, kept as raw bytes: 3 KiB per image instead of 12 KiB as
/// floats, and normalisation is cheap enough to do per batch.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CifarSet {
    /// `len() * IMAGE_BYTES` bytes, one CHW image after another.
    pub images: Vec<u8>,
    /// One label (0..9) per image.
    pub labels: Vec<u8>,
}

impl CifarSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The CHW pixel bytes of image `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]
    }

    /// How many images each class has, to check balance.
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &label in &self.labels {
            if let Some(count) = counts.get_mut(usize::from(label)) {
                *count += 1;
            }
        }
        counts
    }

    /// Append another set, for data split over several batch files.
    fn extend(&mut self, other: CifarSet) {
        self.images.extend_from_slice(&other.images);
        self.labels.extend_from_slice(&other.labels);
    }
}

/// Summarise instead of dumping megabytes of pixels in test failures and logs.
impl std::fmt::Debug for CifarSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CifarSet")
            .field("len", &self.len())
            .field("class_counts", &self.class_counts())
            .finish()
    }
}

/// A train/test split and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarData {
    pub train: CifarSet,
    pub test: CifarSet,
    /// Human-readable origin for messages, e.g. the directory and the files read.
    pub source: String,
}

/// Parse raw binary records (no header). `source` names the input in error messages.
///
/// Errors, rather than panics, on empty input, a length that is not a multiple of
/// [`RECORD_BYTES`] and a label byte above 9, since these are signs of a wrong or damaged file.
pub fn parse_records(bytes: &[u8], source: &str) -> Result<CifarSet> {
    ensure!(
        !bytes.is_empty(),
        "{source}: empty input, no CIFAR-10 records"
    );
    ensure!(
        bytes.len().is_multiple_of(RECORD_BYTES),
        "{source}: truncated record: file has {} bytes, not a multiple of {RECORD_BYTES}",
        bytes.len()
    );
    let n = bytes.len() / RECORD_BYTES;
    let mut set = CifarSet {
        images: Vec::with_capacity(n * IMAGE_BYTES),
        labels: Vec::with_capacity(n),
    };
    for (k, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        ensure!(
            usize::from(label) < NUM_CLASSES,
            "{source}: record {k}: label byte {label} is not a CIFAR-10 class (0-9)"
        );
        set.labels.push(label);
        set.images.extend_from_slice(&record[1..]);
    }
    Ok(set)
}

/// Read one file of records, plain or xz-compressed. The format is told by the xz magic bytes,
/// not by the name, so `foo.bin` holding xz data (or the reverse) still loads.
pub fn load_file(path: &Path) -> Result<CifarSet> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let source = path.display().to_string();
    if raw.starts_with(&XZ_MAGIC) {
        let bytes = decode_xz(&raw).with_context(|| format!("{source}: corrupt xz stream"))?;
        parse_records(&bytes, &source)
    } else {
        parse_records(&raw, &source)
    }
}

/// Decompress a whole xz stream in memory.
fn decode_xz(compressed: &[u8]) -> Result<Vec<u8>> {
    // The decompressed size is unknown up front; xz on these records saves about a quarter.
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4) / 3);
    lzma_rs::xz_decompress(&mut &compressed[..], &mut out)?;
    Ok(out)
}

/// Load a directory in the official layout: train is every `data_batch_*.bin` or
/// `data_batch_*.bin.xz` present, in name order; test is `test_batch.bin` or
/// `test_batch.bin.xz`. A side with no file is left empty (trimmed copies often hold only some
/// batches); only a directory with neither is an error. When both the plain and the `.xz` form
/// of a file are present (after `xz -dk`) the plain one is read, once.
pub fn load_dir(dir: &Path) -> Result<CifarData> {
    let names = file_names(dir)?;
    let train_files = pick_files(&names, |stem| {
        stem.strip_prefix("data_batch_")
            .is_some_and(|rest| !rest.is_empty())
    });
    let test_files = pick_files(&names, |stem| stem == "test_batch");
    if train_files.is_empty() && test_files.is_empty() {
        bail!(
            "no CIFAR-10 files in {}: looked for data_batch_*.bin[.xz] (train) and \
             test_batch.bin[.xz] (test)",
            dir.display()
        );
    }
    let train = load_all(dir, &train_files)?;
    let test = load_all(dir, &test_files)?;
    let source = format!(
        "{} (train: {}; test: {})",
        dir.display(),
        list_or_none(&train_files),
        list_or_none(&test_files)
    );
    Ok(CifarData {
        train,
        test,
        source,
    })
}

/// Names of the regular files in `dir`; names that are not UTF-8 cannot match and are skipped.
fn file_names(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list directory {}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list directory {}", dir.display()))?;
        let is_file = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file());
        if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// The files whose stem (name less `.bin` or `.bin.xz`) passes `wanted`, one per stem with the
/// plain `.bin` preferred, sorted by name.
fn pick_files(names: &[String], wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let mut picked: Vec<String> = names
        .iter()
        .filter(|name| {
            let plain = name.strip_suffix(".bin");
            let xz = name.strip_suffix(".bin.xz");
            match (plain, xz) {
                (Some(stem), _) => wanted(stem),
                (None, Some(stem)) => wanted(stem) && !names.contains(&format!("{stem}.bin")),
                (None, None) => false,
            }
        })
        .cloned()
        .collect();
    picked.sort();
    picked
}

/// Load and concatenate `files` from `dir`, in the given order.
fn load_all(dir: &Path, files: &[String]) -> Result<CifarSet> {
    let mut set = CifarSet::default();
    for name in files {
        let path: PathBuf = dir.join(name);
        set.extend(load_file(&path)?);
    }
    Ok(set)
}

/// A comma-separated file list for `CifarData::source`.
fn list_or_none(files: &[String]) -> String {
    if files.is_empty() {
        "none".to_string()
    } else {
        files.join(", ")
    }
}

/// The balanced subset compiled into the binary: 1,000 train images (the first 100 of each
/// class of official `data_batch_1`) and 500 test images (the first 50 of each class of official
/// `test_batch`), exact original pixels. See `scripts/make_cifar_subset.py`.
pub fn embedded() -> Result<CifarData> {
    let bytes = zstd::decode_all(EMBEDDED_SUBSET).context("embedded CIFAR-10 subset is corrupt")?;
    parse_subset(&bytes, "cifar10 subset (embedded)")
}

/// Split the decompressed subset file: header, then train records, then test records.
fn parse_subset(bytes: &[u8], source: &str) -> Result<CifarData> {
    ensure!(
        bytes.len() >= SUBSET_HEADER && bytes.starts_with(SUBSET_MAGIC),
        "{source}: missing HNCIFAR1 header"
    );
    let n_train = read_u32_le(&bytes[8..12]);
    let n_test = read_u32_le(&bytes[12..16]);
    let records = &bytes[SUBSET_HEADER..];
    let expected = (n_train + n_test).checked_mul(RECORD_BYTES);
    ensure!(
        expected == Some(records.len()),
        "{source}: header promises {n_train} train + {n_test} test records, but {} record bytes \
         follow",
        records.len()
    );
    let (train_bytes, test_bytes) = records.split_at(n_train * RECORD_BYTES);
    Ok(CifarData {
        train: parse_split(train_bytes, &format!("{source} train"))?,
        test: parse_split(test_bytes, &format!("{source} test"))?,
        source: source.to_string(),
    })
}

/// Like [`parse_records`], but an empty split is a valid (empty) set inside the subset file.
fn parse_split(bytes: &[u8], source: &str) -> Result<CifarSet> {
    if bytes.is_empty() {
        Ok(CifarSet::default())
    } else {
        parse_records(bytes, source)
    }
}

/// A little-endian u32 from exactly 4 bytes, widened to usize for counting.
fn read_u32_le(bytes: &[u8]) -> usize {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    u32::from_le_bytes(word) as usize
}

/// Training-time augmentation, as in the standard CIFAR-10 recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Zero (black) padding added on each side before a random 32x32 crop; 4 is standard.
    pub crop_padding: usize,
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
}

/// The standard recipe: pad 4, random crop, random horizontal flip.
impl Default for Augment {
    fn default() -> Self {
        Augment {
            crop_padding: 4,
            flip: true,
        }
    }
}

/// Where one image's augmented view reads its pixels from.
#[derive(Debug, Clone, Copy)]
struct View {
    /// Crop offset in the padded image minus the padding, so it may be negative.
    dy: isize,
    dx: isize,
    flip: bool,
}

impl View {
    const IDENTITY: View = View {
        dy: 0,
        dx: 0,
        flip: false,
    };

    /// Draw a crop offset and a flip. Offsets are drawn even for padding 0 (as 0) so that the
    /// number of draws, and hence later batches, do not depend on the padding.
    fn random(augment: &Augment, rng: &mut ChaCha8Rng) -> View {
        let pad = augment.crop_padding;
        let dy = rng.random_range(0..=2 * pad) as isize - pad as isize;
        let dx = rng.random_range(0..=2 * pad) as isize - pad as isize;
        let flip = augment.flip && rng.random_bool(0.5);
        View { dy, dx, flip }
    }

    /// Pixel (r, c) of the augmented 32x32 view of one channel plane: crop first, then flip,
    /// and 0 where the crop reaches into the padding.
    fn pixel(&self, plane: &[u8], r: usize, c: usize) -> u8 {
        let c = if self.flip { SIDE - 1 - c } else { c };
        let y = r as isize + self.dy;
        let x = c as isize + self.dx;
        let side = SIDE as isize;
        if (0..side).contains(&y) && (0..side).contains(&x) {
            plane[y as usize * SIDE + x as usize]
        } else {
            0
        }
    }
}

/// Assemble a normalised float batch `[B, 3, size, size]` (row-major) for `indices`, with the
/// labels as i64 (what cross-entropy wants).
///
/// With `augment`, each image gets a random crop of its zero-padded copy and, if enabled, a
/// horizontal flip, drawn from `rng` in index order, so the same seed gives the same batch.
/// Then the image is shrunk to `size` (the proxy networks may run at 16x16 to be cheap on CPU):
/// by averaging `32/size` square blocks when `size` divides 32, else by nearest neighbour on
/// pixel centres. Finally each channel is scaled to 0..1 and normalised with [`MEAN`]/[`STD`].
///
/// # Panics
/// If `size` is 0 or above 32, or an index is out of range: these are programming errors, not
/// properties of the data.
pub fn batch(
    set: &CifarSet,
    indices: &[usize],
    size: usize,
    augment: Option<&Augment>,
    rng: &mut ChaCha8Rng,
) -> (Vec<f32>, Vec<i64>) {
    assert!(
        (1..=SIDE).contains(&size),
        "batch size {size}x{size} must be between 1 and 32"
    );
    let mut pixels = Vec::with_capacity(indices.len() * 3 * size * size);
    let mut labels = Vec::with_capacity(indices.len());
    for &i in indices {
        let view = match augment {
            Some(a) => View::random(a, rng),
            None => View::IDENTITY,
        };
        let image = set.image(i);
        for (ch, plane) in image.chunks_exact(PLANE).enumerate() {
            let scale = 1.0 / (255.0 * STD[ch]);
            let shift = MEAN[ch] / STD[ch];
            resample(plane, &view, size, |value| {
                pixels.push(value * scale - shift)
            });
        }
        labels.push(i64::from(set.labels[i]));
    }
    (pixels, labels)
}

/// Emit the `size x size` resampled view of one plane in row-major order, in 0..255 units.
fn resample(plane: &[u8], view: &View, size: usize, mut emit: impl FnMut(f32)) {
    if SIDE.is_multiple_of(size) {
        let k = SIDE / size;
        let area = (k * k) as f32;
        for br in 0..size {
            for bc in 0..size {
                let mut sum = 0u32;
                for r in br * k..(br + 1) * k {
                    for c in bc * k..(bc + 1) * k {
                        sum += u32::from(view.pixel(plane, r, c));
                    }
                }
                emit(sum as f32 / area);
            }
        }
    } else {
        for r in 0..size {
            for c in 0..size {
                let value = view.pixel(plane, nearest(r, size), nearest(c, size));
                emit(f32::from(value));
            }
        }
    }
}

/// The source row/column whose centre is nearest to the centre of output cell `i` of `size`.
fn nearest(i: usize, size: usize) -> usize {
    ((2 * i + 1) * SIDE / (2 * size)).min(SIDE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Train/test counts per class of the embedded subset.
    const SUBSET_TRAIN_PER_CLASS: usize = 100;
    const SUBSET_TEST_PER_CLASS: usize = 50;

    /// Synthetic records: label `k % 10`, pixels a simple function of record and position.
    fn synthetic(n: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(n * RECORD_BYTES);
        for k in 0..n {
            bytes.push((k % NUM_CLASSES) as u8);
            bytes.extend((0..IMAGE_BYTES).map(|j| ((k * 31 + j * 7) % 256) as u8));
        }
        bytes
    }

    fn xz(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut &bytes[..], &mut out).unwrap();
        out
    }

    /// A fresh, empty directory under the system temp dir.
    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hypernas_cifar_{tag}_{}_{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn one_image_set(image: Vec<u8>) -> CifarSet {
        CifarSet {
            images: image,
            labels: vec![3],
        }
    }

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn shared_lossless(name: &str) -> Option<PathBuf> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/cifar10/lossless")
            .join(name);
        path.exists().then_some(path)
    }

    #[test]
    fn parse_round_trips() {
        let bytes = synthetic(12);
        let set = parse_records(&bytes, "synthetic").unwrap();
        assert_eq!(set.len(), 12);
        assert!(!set.is_empty());
        assert_eq!(set.images.len(), 12 * IMAGE_BYTES);
        for k in 0..12 {
            assert_eq!(usize::from(set.labels[k]), k % NUM_CLASSES);
            assert_eq!(
                set.image(k),
                &bytes[k * RECORD_BYTES + 1..(k + 1) * RECORD_BYTES]
            );
        }
        assert_eq!(set.class_counts(), [2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn parse_rejects_bad_input() {
        let mut bytes = synthetic(2);
        bytes.pop();
        let err = parse_records(&bytes, "cut.bin").unwrap_err().to_string();
        assert!(err.contains("cut.bin"), "{err}");
        assert!(
            err.contains("truncated record: file has 6145 bytes, not a multiple of 3073"),
            "{err}"
        );

        let err = parse_records(&[], "empty.bin").unwrap_err().to_string();
        assert!(err.contains("empty.bin: empty input"), "{err}");

        let mut bytes = synthetic(3);
        bytes[2 * RECORD_BYTES] = 10;
        let err = parse_records(&bytes, "label.bin").unwrap_err().to_string();
        assert!(
            err.contains("record 2: label byte 10 is not a CIFAR-10 class (0-9)"),
            "{err}"
        );
    }

    #[test]
    fn load_file_plain_and_xz_agree() {
        let dir = temp_dir("load_file");
        let bytes = synthetic(5);
        let plain = dir.join("a.bin");
        // Named .bin on purpose: the format is told by magic bytes, not by name.
        let packed = dir.join("b.bin");
        std::fs::write(&plain, &bytes).unwrap();
        std::fs::write(&packed, xz(&bytes)).unwrap();
        let a = load_file(&plain).unwrap();
        let b = load_file(&packed).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, parse_records(&bytes, "x").unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_file_reports_missing_and_corrupt_files() {
        let dir = temp_dir("corrupt");
        let err = format!("{:#}", load_file(&dir.join("nope.bin")).unwrap_err());
        assert!(
            err.contains("cannot read") && err.contains("nope.bin"),
            "{err}"
        );

        let mut garbage = XZ_MAGIC.to_vec();
        garbage.extend_from_slice(&[0x55; 200]);
        let path = dir.join("garbage.bin.xz");
        std::fs::write(&path, garbage).unwrap();
        let err = format!("{:#}", load_file(&path).unwrap_err());
        assert!(err.contains("corrupt xz stream"), "{err}");

        let good = xz(&synthetic(3));
        let path = dir.join("cut.bin.xz");
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        let err = format!("{:#}", load_file(&path).unwrap_err());
        assert!(err.contains("corrupt xz stream"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_dir_reads_the_official_layout() {
        let dir = temp_dir("load_dir");
        let all = synthetic(7);
        let (first, rest) = all.split_at(3 * RECORD_BYTES);
        let (second, test) = rest.split_at(2 * RECORD_BYTES);
        std::fs::write(dir.join("data_batch_2.bin.xz"), xz(second)).unwrap();
        std::fs::write(dir.join("data_batch_1.bin"), first).unwrap();
        // Both forms of batch 1 present: it must be read once.
        std::fs::write(dir.join("data_batch_1.bin.xz"), xz(first)).unwrap();
        std::fs::write(dir.join("test_batch.bin"), test).unwrap();
        std::fs::write(dir.join("batches.meta.txt"), "airplane\n").unwrap();

        let data = load_dir(&dir).unwrap();
        assert_eq!(
            data.train,
            parse_records(&all[..5 * RECORD_BYTES], "x").unwrap()
        );
        assert_eq!(data.test, parse_records(test, "x").unwrap());
        assert!(
            data.source
                .contains("train: data_batch_1.bin, data_batch_2.bin.xz; test: test_batch.bin"),
            "{}",
            data.source
        );

        std::fs::remove_file(dir.join("test_batch.bin")).unwrap();
        let data = load_dir(&dir).unwrap();
        assert!(data.test.is_empty());
        assert_eq!(data.train.len(), 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_dir_errors_name_what_was_looked_for() {
        let dir = temp_dir("empty_dir");
        std::fs::write(dir.join("readme.txt"), "hi").unwrap();
        let err = load_dir(&dir).unwrap_err().to_string();
        assert!(
            err.contains("data_batch_*.bin[.xz]") && err.contains("test_batch.bin[.xz]"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let err = format!("{:#}", load_dir(&dir).unwrap_err());
        assert!(err.contains("cannot list directory"), "{err}");
    }

    #[test]
    fn subset_header_is_checked() {
        let mut bytes = SUBSET_MAGIC.to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&synthetic(3));
        let data = parse_subset(&bytes, "s").unwrap();
        assert_eq!((data.train.len(), data.test.len()), (2, 1));

        let err = parse_subset(&bytes[..bytes.len() - 1], "s").unwrap_err();
        assert!(err.to_string().contains("header promises 2 train + 1 test"));
        let err = parse_subset(b"NOTCIFAR", "s").unwrap_err();
        assert!(err.to_string().contains("missing HNCIFAR1 header"));
    }

    /// The first `per_class` records of each class of a lossless file, in record order: what
    /// `scripts/make_cifar_subset.py` takes.
    fn first_per_class(set: &CifarSet, per_class: usize) -> CifarSet {
        let mut taken = [0; NUM_CLASSES];
        let mut out = CifarSet::default();
        for i in 0..set.len() {
            let label = set.labels[i];
            if taken[usize::from(label)] < per_class {
                taken[usize::from(label)] += 1;
                out.labels.push(label);
                out.images.extend_from_slice(set.image(i));
            }
        }
        out
    }

    #[test]
    fn embedded_subset_is_balanced_and_exact() {
        let data = embedded().unwrap();
        assert_eq!(data.train.len(), NUM_CLASSES * SUBSET_TRAIN_PER_CLASS);
        assert_eq!(data.test.len(), NUM_CLASSES * SUBSET_TEST_PER_CLASS);
        assert_eq!(
            data.train.class_counts(),
            [SUBSET_TRAIN_PER_CLASS; NUM_CLASSES]
        );
        assert_eq!(
            data.test.class_counts(),
            [SUBSET_TEST_PER_CLASS; NUM_CLASSES]
        );
        // Official data_batch_1 starts frog, truck, truck, deer, automobile; test_batch starts
        // cat, ship, ship, airplane.
        assert_eq!(data.train.labels[..5], [6, 9, 9, 4, 1]);
        assert_eq!(data.test.labels[..4], [3, 8, 8, 0]);

        // Compare against the source files where they are present (the test file is small, so
        // both are checked in full).
        if let Some(path) = shared_lossless("train_first4000.bin.xz") {
            let source = load_file(&path).unwrap();
            assert_eq!(data.train.image(0), source.image(0));
            assert_eq!(data.train, first_per_class(&source, SUBSET_TRAIN_PER_CLASS));
        }
        if let Some(path) = shared_lossless("test_first1000.bin.xz") {
            let source = load_file(&path).unwrap();
            assert_eq!(data.test, first_per_class(&source, SUBSET_TEST_PER_CLASS));
        }
    }

    #[test]
    fn batch_shape_and_normalisation() {
        let set = one_image_set(vec![128; IMAGE_BYTES]);
        for size in [32, 16, 8, 12, 5, 1] {
            let (pixels, labels) = batch(&set, &[0, 0], size, None, &mut rng(1));
            assert_eq!(pixels.len(), 2 * 3 * size * size);
            assert_eq!(labels, vec![3, 3]);
            for (ch, plane) in pixels.chunks_exact(size * size).enumerate() {
                let want = (128.0 / 255.0 - MEAN[ch % 3]) / STD[ch % 3];
                assert!(plane.iter().all(|&v| (v - want).abs() < 1e-5), "{ch}");
            }
        }
    }

    /// Denormalise one channel back to 0..255 units for exact comparisons.
    fn raw(value: f32, ch: usize) -> f32 {
        ((value * STD[ch] + MEAN[ch]) * 255.0 * 100.0).round() / 100.0
    }

    /// A non-symmetric test image: byte = 60 * channel + row + 2 * column (at most 213).
    fn gradient_image() -> Vec<u8> {
        (0..IMAGE_BYTES)
            .map(|j| (j / PLANE * 60 + (j % PLANE) / SIDE + (j % SIDE) * 2) as u8)
            .collect()
    }

    #[test]
    fn flip_reverses_columns() {
        let set = one_image_set(gradient_image());
        let plain = batch(&set, &[0], 32, None, &mut rng(0)).0;
        let flip = Augment {
            crop_padding: 0,
            flip: true,
        };
        // With padding 0 the only randomness is the flip: find a seed that flips.
        let mut saw_flip = false;
        for seed in 0..16 {
            let out = batch(&set, &[0], 32, Some(&flip), &mut rng(seed)).0;
            if out == plain {
                continue;
            }
            saw_flip = true;
            for ch in 0..3 {
                for r in 0..SIDE {
                    for c in 0..SIDE {
                        let base = ch * PLANE + r * SIDE;
                        assert_eq!(out[base + c], plain[base + SIDE - 1 - c]);
                    }
                }
            }
        }
        assert!(saw_flip);
    }

    /// The unaugmented image shifted by (dy, dx) with black where it leaves the frame.
    fn shifted(image: &[u8], dy: isize, dx: isize) -> Vec<f32> {
        let view = View {
            dy,
            dx,
            flip: false,
        };
        (0..3)
            .flat_map(|ch| {
                let plane = &image[ch * PLANE..(ch + 1) * PLANE];
                (0..PLANE).map(move |j| f32::from(view.pixel(plane, j / SIDE, j % SIDE)))
            })
            .collect()
    }

    #[test]
    fn crop_stays_within_the_padded_image() {
        let image = gradient_image();
        let set = one_image_set(image.clone());
        let augment = Augment {
            crop_padding: 4,
            flip: false,
        };
        let mut rng = rng(7);
        let mut offsets = std::collections::HashSet::new();
        for _ in 0..20 {
            let out = batch(&set, &[0], 32, Some(&augment), &mut rng).0;
            let out: Vec<f32> = (0..out.len()).map(|j| raw(out[j], j / PLANE)).collect();
            // Every value is a pixel of its channel or the black padding...
            for (ch, plane) in out.chunks_exact(PLANE).enumerate() {
                let source = &image[ch * PLANE..(ch + 1) * PLANE];
                assert!(
                    plane
                        .iter()
                        .all(|&v| v == 0.0 || source.iter().any(|&p| f32::from(p) == v))
                );
            }
            // ...and the whole view is the image translated by at most 4 pixels each way.
            let offset = (-4..=4)
                .flat_map(|dy| (-4..=4).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| shifted(&image, dy, dx) == out);
            offsets.insert(offset.expect("crop is not a translation within the padding"));
        }
        assert!(offsets.len() > 1, "20 random crops gave one offset");
    }

    #[test]
    fn downsampling_averages_blocks() {
        let image = gradient_image();
        let set = one_image_set(image.clone());
        let (out, _) = batch(&set, &[0], 16, None, &mut rng(0));
        for ch in 0..3 {
            for r in 0..16 {
                for c in 0..16 {
                    let p = |y: usize, x: usize| f32::from(image[ch * PLANE + y * SIDE + x]);
                    let want = (p(2 * r, 2 * c)
                        + p(2 * r, 2 * c + 1)
                        + p(2 * r + 1, 2 * c)
                        + p(2 * r + 1, 2 * c + 1))
                        / 4.0;
                    assert_eq!(raw(out[ch * 256 + r * 16 + c], ch), want);
                }
            }
        }
        // A size that does not divide 32 samples the nearest pixel centre.
        let (out, _) = batch(&set, &[0], 5, None, &mut rng(0));
        let near = [3, 9, 16, 22, 28];
        for (r, &y) in near.iter().enumerate() {
            for (c, &x) in near.iter().enumerate() {
                assert_eq!(raw(out[r * 5 + c], 0), f32::from(image[y * SIDE + x]));
            }
        }
    }

    #[test]
    fn batch_is_deterministic_per_seed() {
        let set = parse_records(&synthetic(10), "s").unwrap();
        let augment = Augment::default();
        let indices = [3, 1, 4, 1, 5, 9, 2, 6];
        let a = batch(&set, &indices, 16, Some(&augment), &mut rng(42));
        let b = batch(&set, &indices, 16, Some(&augment), &mut rng(42));
        let c = batch(&set, &indices, 16, Some(&augment), &mut rng(43));
        assert_eq!(a, b);
        assert_ne!(a.0, c.0);
        assert_eq!(a.1, vec![3, 1, 4, 1, 5, 9, 2, 6]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any image, size and seed: the right length, and every value within the range that
        /// normalising 0..255 allows.
        #[test]
        fn batch_values_stay_in_range(
            fill in proptest::collection::vec(proptest::num::u8::ANY, IMAGE_BYTES),
            size in 1usize..=32,
            seed in proptest::num::u64::ANY,
            flip in proptest::bool::ANY,
        ) {
            let set = one_image_set(fill);
            let augment = Augment { crop_padding: 4, flip };
            let (pixels, _) = batch(&set, &[0], size, Some(&augment), &mut rng(seed));
            proptest::prop_assert_eq!(pixels.len(), 3 * size * size);
            for (ch, plane) in pixels.chunks_exact(size * size).enumerate() {
                let lo = -MEAN[ch] / STD[ch] - 1e-4;
                let hi = (1.0 - MEAN[ch]) / STD[ch] + 1e-4;
                proptest::prop_assert!(plane.iter().all(|v| (lo..=hi).contains(v)));
            }
        }
    }
}
