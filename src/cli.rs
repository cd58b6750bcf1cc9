//! The `hypernas` command line: argument parsing and the thin glue from each subcommand to
//! the library.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::bench::{self, AuxSource, Protocol, RunResult, Variant};
use crate::data::Table;
use crate::data::cifar::{self, CifarData};
use crate::metrics::{self, Metrics};
use crate::model::file::{self, ModelHeader};
use crate::model::hyper::HyperConfig;
use crate::model::loss::RankLoss;
use crate::model::{ModelConfig, PredictorKind};
use crate::report::{self, plot};
use crate::space::{self, DynSpace, EncodedArch};
use crate::train::aux::PreparedAux;
use crate::train::{self, OptimizerKind, TrainConfig};

#[derive(Parser, Debug)]
#[command(
    name = "hypernas",
    version,
    about = "Few-shot neural-architecture performance prediction (HyperNAS) and search",
    long_about = "Label a handful of architectures, fit a predictor, rank a whole search space.\n\n\
        Data sets embedded in the binary (usable offline as --data NAME): nb201 (all 15,625 \
        NAS-Bench-201 cells with CIFAR-10/100 and ImageNet16-120 accuracies). Any CSV with an \
        architecture column and numeric target columns works too."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a predictor on labelled architectures and save it.
    Train(TrainArgs),
    /// Score architectures with a trained predictor; writes `arch,prediction`.
    Predict(PredictArgs),
    /// Ranking and regression metrics of a trained predictor on the rows it was not trained on.
    Eval(EvalArgs),
    /// Run the few-shot protocol table (or timing) for a search space.
    Bench(BenchArgs),
    /// Train on 156 random NAS-Bench-201 cells, report tau on the rest and the predicted top-10.
    Demo(DemoArgs),
    /// Export the hypernetwork's generated weights of an architecture's proxy network and score
    /// that network on held-out CIFAR-10 images.
    Weights(WeightsArgs),
}

#[derive(Args, Debug)]
pub struct WeightsArgs {
    /// Model file of a hypernetwork predictor (hypernas, hypernas-h).
    #[arg(long)]
    pub model: PathBuf,
    /// Architecture whose proxy network gets the weights.
    #[arg(long)]
    pub arch: String,
    /// Output safetensors file: one tensor per weighted layer, the layer list in the metadata.
    #[arg(long)]
    pub out: PathBuf,
    /// CIFAR-10 directory whose test batch scores the generated network [default: the embedded
    /// 500 test images].
    #[arg(long, value_name = "DIR")]
    pub aux_data: Option<PathBuf>,
}

/// Predictor and optimisation settings; anything left out takes the predictor's default.
#[derive(Args, Debug, Clone)]
pub struct ModelOptions {
    /// Predictor to train.
    #[arg(long, value_enum, default_value_t = PredictorKind::HypernasP)]
    pub predictor: PredictorKind,
    /// Training epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Mini-batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (cosine-decayed).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight decay.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Optimiser.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Pairwise ranking term added to MSE.
    #[arg(long, value_enum)]
    pub rank_loss: Option<RankChoice>,
    /// Weight of the ranking term.
    #[arg(long)]
    pub rank_weight: Option<f64>,
    /// Cap on optimiser steps (large training sets run fewer epochs).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Hidden width of the GCN.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Number of GCN layers.
    #[arg(long)]
    pub gcn_layers: Option<usize>,
    /// Dropout probability.
    #[arg(long)]
    pub dropout: Option<f64>,
    #[command(flatten)]
    pub aux: AuxOptions,
}

/// Settings of the hypernetwork's auxiliary task (`hypernas`, `hypernas-h`).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Hypernetwork task (hypernas, hypernas-h)")]
pub struct AuxOptions {
    /// CIFAR-10 directory (the binary batches `data_batch_*.bin` / `test_batch.bin`, plain or
    /// .xz) for the aux task [default: the embedded balanced subset, 1,000 train + 500 test
    /// images].
    #[arg(long, value_name = "DIR")]
    pub aux_data: Option<PathBuf>,
    /// Preference q of the adaptive multi-task loss; each task loss enters as L^(q-1) [default: 1.5].
    #[arg(long, value_name = "Q")]
    pub preference_q: Option<f64>,
    /// Channels of the proxy network's first stage [default: 8].
    #[arg(long)]
    pub proxy_width: Option<usize>,
    /// Searchable cells per stage in the proxy network [default: 1].
    #[arg(long)]
    pub proxy_cells: Option<usize>,
    /// Image side the proxy networks run at, 4..=32 [default: 16].
    #[arg(long)]
    pub proxy_image_size: Option<usize>,
    /// Run an aux step every this many predictor steps [default: 1].
    #[arg(long)]
    pub aux_every: Option<usize>,
    /// Candidate networks per aux step [default: 1].
    #[arg(long)]
    pub aux_archs: Option<usize>,
    /// Images per candidate network per aux step [default: 32].
    #[arg(long)]
    pub aux_images: Option<usize>,
    /// Unlabelled architectures sampled from the space and added to the aux task [default: 0].
    #[arg(long, value_name = "N")]
    pub aux_unlabelled: Option<usize>,
    /// No random crop / flip on the aux images.
    #[arg(long)]
    pub no_aux_augment: bool,
}

impl AuxOptions {
    fn apply(&self, m: &mut ModelConfig, t: &mut TrainConfig) -> Result<()> {
        if let Some(h) = &mut m.hyper {
            let mut proxy = h.proxy;
            if let Some(v) = self.proxy_width {
                proxy.width = v;
            }
            if let Some(v) = self.proxy_cells {
                proxy.cells_per_stage = v;
            }
            if let Some(v) = self.proxy_image_size {
                proxy.image_size = v;
            }
            if proxy.width == 0 || proxy.cells_per_stage == 0 {
                bail!("--proxy-width and --proxy-cells must be at least 1");
            }
            if !(4..=32).contains(&proxy.image_size) {
                bail!(
                    "--proxy-image-size must be between 4 and 32, got {}",
                    proxy.image_size
                );
            }
            let trunk = h.trunk;
            *h = HyperConfig::for_proxy(proxy);
            h.trunk = trunk;
        }
        if let Some(aux) = &mut t.aux {
            if let Some(q) = self.preference_q {
                if !(q.is_finite() && q > 1.0) {
                    bail!("--preference-q must be a number above 1, got {q}");
                }
                aux.preference_p = q - 1.0;
            }
            let at_least_one = |name: &str, v: Option<usize>, slot: &mut usize| {
                match v {
                    Some(0) => bail!("--{name} must be at least 1"),
                    Some(v) => *slot = v,
                    None => {}
                }
                Ok(())
            };
            at_least_one("aux-every", self.aux_every, &mut aux.every)?;
            at_least_one("aux-archs", self.aux_archs, &mut aux.archs_per_step)?;
            at_least_one("aux-images", self.aux_images, &mut aux.images_per_arch)?;
            if let Some(v) = self.aux_unlabelled {
                aux.unlabelled = v;
            }
            if self.no_aux_augment {
                aux.augment = false;
            }
        }
        Ok(())
    }

    /// The images of the aux task: `--aux-data` or the embedded subset.
    fn images(&self) -> Result<CifarData> {
        match &self.aux_data {
            Some(dir) => cifar::load_dir(dir),
            None => cifar::embedded(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RankChoice {
    None,
    Hinge,
    Logistic,
}

impl ModelOptions {
    /// The defaults for `kind`, overridden by whatever was given on the command line.
    fn configs(
        &self,
        kind: PredictorKind,
        space: &dyn DynSpace,
        seed: u64,
    ) -> Result<(ModelConfig, TrainConfig)> {
        let (mut m, mut t) =
            train::default_configs(kind, space.node_vocabulary().len(), space.flat_dim(), seed);
        if let Some(v) = self.epochs {
            t.epochs = v;
        }
        if let Some(v) = self.batch_size {
            t.batch_size = v;
        }
        if let Some(v) = self.lr {
            t.lr = v;
        }
        if let Some(v) = self.weight_decay {
            t.weight_decay = v;
        }
        if let Some(v) = self.optimizer {
            t.optimizer = v;
        }
        if let Some(v) = self.rank_loss {
            t.rank_loss = match v {
                RankChoice::None => None,
                RankChoice::Hinge => Some(RankLoss::Hinge),
                RankChoice::Logistic => Some(RankLoss::Logistic),
            };
        }
        if let Some(v) = self.rank_weight {
            t.rank_weight = v;
        }
        if let Some(v) = self.max_steps {
            t.max_steps = v;
        }
        if let Some(v) = self.hidden {
            m.hidden = v;
        }
        if let Some(v) = self.gcn_layers {
            m.gcn_layers = v;
        }
        if let Some(v) = self.dropout {
            m.dropout = v;
        }
        self.aux.apply(&mut m, &mut t)?;
        check_configs(&m, &t)?;
        Ok((m, t))
    }
}

fn check_configs(m: &ModelConfig, t: &TrainConfig) -> Result<()> {
    let positive = |name: &str, v: usize| {
        if v == 0 {
            Err(anyhow!("--{name} must be at least 1"))
        } else {
            Ok(())
        }
    };
    positive("epochs", t.epochs)?;
    positive("batch-size", t.batch_size)?;
    positive("max-steps", t.max_steps)?;
    positive("hidden", m.hidden)?;
    positive("gcn-layers", m.gcn_layers)?;
    let finite_nonneg = |name: &str, v: f64| {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(anyhow!("--{name} must be a finite number >= 0, got {v}"))
        }
    };
    finite_nonneg("lr", t.lr)?;
    finite_nonneg("weight-decay", t.weight_decay)?;
    finite_nonneg("rank-weight", t.rank_weight)?;
    if !(0.0..1.0).contains(&m.dropout) {
        bail!("--dropout must be in [0, 1), got {}", m.dropout);
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Search space of the architectures (default: the space of an embedded --data).
    #[arg(long)]
    pub space: Option<String>,
    /// Embedded data set name (nb201) or CSV path to sample training rows from.
    #[arg(long, default_value = "nb201")]
    pub data: String,
    /// Target column to predict.
    #[arg(long, default_value = "cifar10_test_acc")]
    pub target: String,
    /// Number of training architectures, a seeded random sample of the data rows.
    #[arg(long, default_value_t = 156, conflicts_with = "train_file")]
    pub train_size: usize,
    /// Train on exactly the rows of this CSV instead of sampling --data.
    #[arg(long)]
    pub train_file: Option<PathBuf>,
    /// Architecture column of the input CSV (default: arch; arch_str for embedded data).
    #[arg(long)]
    pub arch_col: Option<String>,
    /// Seed of the training sample and of the model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the model (safetensors with a JSON header).
    #[arg(long)]
    pub out: PathBuf,
    /// Write the per-epoch task losses and u_t of a hypernetwork predictor as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub train_log: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelOptions,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Model file written by `hypernas train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Embedded data set name or CSV path with the architectures to score.
    #[arg(long, default_value = "nb201")]
    pub data: String,
    /// Architecture column of the input CSV.
    #[arg(long)]
    pub arch_col: Option<String>,
    /// Output CSV (`arch,prediction`, input order).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model file written by `hypernas train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Embedded data set name or CSV path with labelled architectures.
    #[arg(long, default_value = "nb201")]
    pub data: String,
    /// Target column (default: the one the model was trained on).
    #[arg(long)]
    pub target: Option<String>,
    /// Architecture column of the input CSV.
    #[arg(long)]
    pub arch_col: Option<String>,
    /// Print the metrics as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Search space to benchmark (its embedded table is the default data).
    pub space: String,
    /// Embedded data set or CSV path (default: the space's embedded table).
    #[arg(long)]
    pub data: Option<String>,
    /// Target column.
    #[arg(long, default_value = "cifar10_test_acc")]
    pub target: String,
    /// Architecture column of a CSV.
    #[arg(long)]
    pub arch_col: Option<String>,
    /// Training-set sizes [default: 39,78,156,469,781,1563; with --ablation 39,78,156,469].
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<usize>>,
    /// Number of seeds.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// First seed (seeds run first-seed, first-seed + 1, ..). Tune on seeds you do not report.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Predictors to compare.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = PredictorKind::ALL.to_vec())]
    pub predictors: Vec<PredictorKind>,
    /// Directory for results.json, results.csv, summary.csv and tau.svg.
    #[arg(long, default_value = "bench-out")]
    pub out_dir: PathBuf,
    /// Parallel training runs (default: number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Measure training time per epoch (N = 156, or the single --sizes value; 5 epochs unless
    /// --epochs) and the time to score the whole table, instead of the tau table.
    #[arg(long)]
    pub timing: bool,
    /// The HyperNAS ablation: np, hypernas-p, hypernas (q = 1.5) and hypernas (q = 2), plus the
    /// held-out accuracy of the generated networks (overrides --predictors).
    #[arg(long, conflicts_with = "timing")]
    pub ablation: bool,
    /// Held-out architectures whose generated networks are scored on held-out images per run.
    #[arg(long, default_value_t = 20)]
    pub hyper_val_archs: usize,
    #[command(flatten)]
    pub model: ModelOptions,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Seed of the training sample and of the model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of labelled architectures.
    #[arg(long, default_value_t = 156)]
    pub train_size: usize,
    #[command(flatten)]
    pub model: ModelOptions,
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => cmd_train(a),
        Command::Predict(a) => cmd_predict(a),
        Command::Eval(a) => cmd_eval(a),
        Command::Bench(a) => cmd_bench(a),
        Command::Demo(a) => cmd_demo(a),
        Command::Weights(a) => cmd_weights(a),
    }
}

fn resolve_space(explicit: Option<&str>, data: &str) -> Result<Box<dyn DynSpace>> {
    let name = match (explicit, Table::embedded_space(data)) {
        (Some(name), _) => name.to_string(),
        (None, Some(name)) => name.to_string(),
        (None, None) => bail!(
            "--space is needed for data '{data}' (known spaces: {})",
            space::SPACE_NAMES.join(", ")
        ),
    };
    Ok(space::by_name(&name)?)
}

fn epoch_bar(epochs: usize, label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(epochs as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} epochs ({eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(label.to_string());
    pb
}

fn bar(len: usize, template: &str, label: &str) -> ProgressBar {
    let pb = epoch_bar(len, label);
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// The aux task's images when `kind` needs them.
fn aux_images(opts: &AuxOptions, kinds: &[PredictorKind]) -> Result<Option<CifarData>> {
    if !kinds.iter().any(|k| k.uses_hypernetwork()) {
        return Ok(None);
    }
    let images = opts.images()?;
    if images.train.is_empty() {
        bail!(
            "{}: no CIFAR-10 training batches (data_batch_*.bin) for the hypernetwork task",
            images.source
        );
    }
    Ok(Some(images))
}

/// The hypernetwork task's programs for a training set (`None` for other predictors).
fn prepare_aux(
    m: &ModelConfig,
    t: &TrainConfig,
    space: &dyn DynSpace,
    archs: &[EncodedArch],
    seed: u64,
) -> Result<Option<PreparedAux>> {
    let Some(h) = &m.hyper else { return Ok(None) };
    let unlabelled = t.aux.as_ref().map_or(0, |a| a.unlabelled);
    Ok(Some(PreparedAux::new(
        space, archs, &h.proxy, unlabelled, seed,
    )?))
}

/// Print a few lines of the multi-task log and write all of it as JSON lines if asked.
fn report_aux_log(fitted: &train::Fitted, log_path: Option<&std::path::Path>) -> Result<()> {
    if let Some(path) = log_path {
        let mut text = String::new();
        for e in &fitted.aux_log {
            text.push_str(&serde_json::to_string(e)?);
            text.push('\n');
        }
        file::write_atomic(path, text.as_bytes())?;
    }
    let Some(last) = fitted.aux_log.iter().rev().find(|e| e.hyper_loss.is_some()) else {
        return Ok(());
    };
    eprintln!(
        "hypernetwork task, epoch {}: cross-entropy {:.3}, train accuracy of generated networks {:.1}%{}",
        last.epoch + 1,
        last.hyper_loss.unwrap_or(f64::NAN),
        last.hyper_train_acc.unwrap_or(f64::NAN),
        if last.u.is_empty() {
            String::new()
        } else {
            format!(
                ", u (predict, hyper) = ({:.3}, {:.3})",
                last.u[0], last.u[1]
            )
        }
    );
    Ok(())
}

/// Labelled training data: encoded architectures and their targets.
struct Labelled {
    archs: Vec<EncodedArch>,
    targets: Vec<f64>,
}

fn load_labelled(
    data: &str,
    space: &dyn DynSpace,
    arch_col: Option<&str>,
    target: &str,
) -> Result<Labelled> {
    let table = Table::load(data)?;
    let targets = table.target(target)?;
    let archs = table.encode(space, arch_col)?;
    Ok(Labelled { archs, targets })
}

fn cmd_train(a: TrainArgs) -> Result<()> {
    let space = resolve_space(a.space.as_deref(), &a.data)?;
    let (train_archs, train_targets) = match &a.train_file {
        Some(path) => {
            let path = path.to_string_lossy().to_string();
            let l = load_labelled(&path, space.as_ref(), a.arch_col.as_deref(), &a.target)?;
            (l.archs, l.targets)
        }
        None => {
            let l = load_labelled(&a.data, space.as_ref(), a.arch_col.as_deref(), &a.target)?;
            if a.train_size == 0 || a.train_size >= l.archs.len() {
                bail!(
                    "--train-size must be between 1 and {} (the data has {} rows and some must stay out for evaluation)",
                    l.archs.len() - 1,
                    l.archs.len()
                );
            }
            let (idx, _) = bench::split(l.archs.len(), a.train_size, a.seed);
            (
                idx.iter().map(|&i| l.archs[i].clone()).collect(),
                idx.iter().map(|&i| l.targets[i]).collect(),
            )
        }
    };
    if train_archs.len() < 2 {
        bail!(
            "need at least 2 training architectures, got {}",
            train_archs.len()
        );
    }
    file::check_writable(&a.out)?;
    if let Some(path) = &a.train_log {
        file::check_writable(path)?;
    }
    let (model_config, train_config) =
        a.model.configs(a.model.predictor, space.as_ref(), a.seed)?;
    let images = aux_images(&a.model.aux, &[model_config.kind])?;
    let prepared = prepare_aux(
        &model_config,
        &train_config,
        space.as_ref(),
        &train_archs,
        a.seed,
    )?;
    let aux = match (&prepared, &images) {
        (Some(p), Some(images)) => Some(p.data(&images.train)),
        _ => None,
    };
    let pb = epoch_bar(
        train::progress_epochs(model_config.kind, &train_config, train_archs.len()),
        &format!("training {}", model_config.kind),
    );
    let start = Instant::now();
    let fitted = train::fit(
        &model_config,
        &train_config,
        &train_archs,
        &train_targets,
        aux.as_ref(),
        Some(&pb),
    );
    pb.finish_and_clear();
    report_aux_log(&fitted, a.train_log.as_deref())?;
    let names = train_archs.iter().map(|e| e.canonical.clone()).collect();
    let header = ModelHeader::new(space.name(), &a.target, &fitted, names);
    file::save(&a.out, &header, &fitted)?;
    eprintln!(
        "trained {} on {} architectures ({} epochs, {:.1}s, final loss {:.4}); wrote {}",
        model_config.kind,
        train_archs.len(),
        fitted.epoch_losses.len(),
        start.elapsed().as_secs_f64(),
        fitted.epoch_losses.last().copied().unwrap_or(f64::NAN),
        a.out.display()
    );
    Ok(())
}

fn cmd_predict(a: PredictArgs) -> Result<()> {
    let (header, fitted) = file::load(&a.model)?;
    let space = space::by_name(&header.space)?;
    file::check_writable(&a.out)?;
    let table = Table::load(&a.data)?;
    let col = a
        .arch_col
        .clone()
        .unwrap_or_else(|| table.default_arch_col.clone());
    let texts = table.column(&col)?;
    let archs = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            space
                .encode(t)
                .map_err(|e| anyhow!("{}: row {}: {e}", table.source, i + 2))
        })
        .collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let pred = fitted.predict(&archs);
    let rows: Vec<Vec<String>> = texts
        .iter()
        .zip(&pred)
        .map(|(t, p)| vec![t.to_string(), format!("{p:.6}")])
        .collect();
    report::write_csv(&a.out, &["arch", "prediction"], &rows)?;
    eprintln!(
        "scored {} architectures in {:.2}s; wrote {}",
        rows.len(),
        start.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

fn cmd_eval(a: EvalArgs) -> Result<()> {
    let (header, fitted) = file::load(&a.model)?;
    let space = space::by_name(&header.space)?;
    let target = a.target.clone().unwrap_or_else(|| header.target.clone());
    let l = load_labelled(&a.data, space.as_ref(), a.arch_col.as_deref(), &target)?;
    let seen: HashSet<&str> = header.train_archs.iter().map(String::as_str).collect();
    let keep: Vec<usize> = (0..l.archs.len())
        .filter(|&i| !seen.contains(l.archs[i].canonical.as_str()))
        .collect();
    if keep.len() < 2 {
        bail!(
            "fewer than 2 rows of {} are outside the model's training set",
            a.data
        );
    }
    let archs: Vec<EncodedArch> = keep.iter().map(|&i| l.archs[i].clone()).collect();
    let truth: Vec<f64> = keep.iter().map(|&i| l.targets[i]).collect();
    let pred = fitted.predict(&archs);
    let m = Metrics::compute(&pred, &truth);
    if a.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            model: String,
            predictor: PredictorKind,
            data: &'a str,
            target: &'a str,
            excluded_training_rows: usize,
            metrics: &'a Metrics,
        }
        let out = Out {
            model: a.model.display().to_string(),
            predictor: header.model.kind,
            data: &a.data,
            target: &target,
            excluded_training_rows: l.archs.len() - keep.len(),
            metrics: &m,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} ({}) on {} rows of {} ({} training rows left out), target {target}",
            a.model.display(),
            header.model.kind,
            keep.len(),
            a.data,
            l.archs.len() - keep.len()
        );
        println!("{m}");
    }
    Ok(())
}

fn cmd_bench(a: BenchArgs) -> Result<()> {
    let space = space::by_name(&a.space)?;
    let data = match &a.data {
        Some(d) => d.clone(),
        None => Table::embedded_for_space(space.name())
            .ok_or_else(|| anyhow!("no embedded data for space {}; pass --data", space.name()))?
            .to_string(),
    };
    let l = load_labelled(&data, space.as_ref(), a.arch_col.as_deref(), &a.target)?;
    if a.timing {
        return bench_timing(&a, space.as_ref(), &l);
    }
    let sizes = a.sizes.clone().unwrap_or_else(|| {
        if a.ablation {
            vec![39, 78, 156, 469]
        } else {
            vec![39, 78, 156, 469, 781, 1563]
        }
    });
    let variants: Vec<Variant> = if a.ablation {
        let hypernas = |q: f64| Variant {
            label: format!("hypernas q={q}"),
            kind: PredictorKind::Hypernas,
            preference_p: Some(q - 1.0),
        };
        vec![
            Variant::plain(PredictorKind::Np),
            Variant::plain(PredictorKind::HypernasP),
            hypernas(1.5),
            hypernas(2.0),
        ]
    } else {
        a.predictors.iter().map(|&k| Variant::plain(k)).collect()
    };
    if a.seeds == 0 || variants.is_empty() || sizes.is_empty() {
        bail!("bench needs at least one seed, predictor and size");
    }
    if let Some(&bad) = sizes.iter().find(|&&s| s < 2 || s >= l.archs.len()) {
        bail!(
            "training size {bad} must be between 2 and {}",
            l.archs.len() - 1
        );
    }
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    // Validate the options and the aux task once, before any thread starts.
    for v in &variants {
        let (m, t) = a.model.configs(v.kind, space.as_ref(), 0)?;
        prepare_aux(&m, &t, space.as_ref(), &l.archs[..1], 0)?;
    }
    let kinds: Vec<PredictorKind> = variants.iter().map(|v| v.kind).collect();
    let images = aux_images(&a.model.aux, &kinds)?;
    let aux_source = images.as_ref().map(|images| AuxSource {
        space: space.as_ref(),
        images,
        val_archs: a.hyper_val_archs,
    });
    if aux_source
        .as_ref()
        .is_some_and(|s| s.images.test.is_empty())
    {
        bail!("the aux data has no test batch to score the generated networks on");
    }
    let configure = |v: &Variant, seed: u64| {
        let (m, mut t) = a
            .model
            .configs(v.kind, space.as_ref(), seed)
            .expect("options validated above");
        if let (Some(p), Some(aux)) = (v.preference_p, t.aux.as_mut()) {
            aux.preference_p = p;
        }
        (m, t)
    };
    let protocol = Protocol {
        archs: &l.archs,
        targets: &l.targets,
        sizes: sizes.clone(),
        seeds: (a.first_seed..a.first_seed.saturating_add(a.seeds)).collect(),
        variants: variants.clone(),
        configure: &configure,
        aux: aux_source.as_ref(),
    };
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let total = sizes.len() * a.seeds as usize * variants.len();
    eprintln!(
        "bench {}: {} runs ({} sizes x {} seeds x {} predictors) on {} rows of {data}, target {}, {jobs} jobs",
        space.name(),
        total,
        sizes.len(),
        a.seeds,
        variants.len(),
        l.archs.len(),
        a.target
    );
    let pb = bar(
        total,
        "{msg} [{bar:30}] {pos}/{len} runs ({elapsed} elapsed, {eta} left)",
        "bench",
    );
    let start = Instant::now();
    let results = bench::run(&protocol, jobs, Some(&pb));
    pb.finish_and_clear();
    let summary = bench::summarize(&results);
    write_bench_outputs(&a, &data, &variants, &results, &summary)?;
    println!(
        "Kendall tau on all remaining architectures, mean ± std over {} seeds ({} / {}, target {}):\n",
        a.seeds,
        space.name(),
        data,
        a.target
    );
    println!("{}", report::tau_table(&summary));
    if let Some(table) = report::hyper_acc_table(&summary) {
        println!(
            "Top-1 accuracy of the generated proxy networks of {} held-out architectures on {} held-out images (mean over seeds):\n",
            a.hyper_val_archs,
            images.as_ref().map_or(0, |i| i.test.len())
        );
        println!("{table}");
    }
    println!(
        "{} runs in {:.0}s; results in {}",
        results.len(),
        start.elapsed().as_secs_f64(),
        a.out_dir.display()
    );
    Ok(())
}

fn write_bench_outputs(
    a: &BenchArgs,
    data: &str,
    variants: &[Variant],
    results: &[RunResult],
    summary: &[bench::CellSummary],
) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        space: &'a str,
        data: &'a str,
        target: &'a str,
        command: String,
        summary: &'a [bench::CellSummary],
        runs: &'a [RunResult],
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let out = Out {
        space: &a.space,
        data,
        target: &a.target,
        command,
        summary,
        runs: results,
    };
    report::write_json(&a.out_dir.join("results.json"), &out)?;
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                r.variant.clone(),
                r.train_size.to_string(),
                r.seed.to_string(),
                format!("{:.6}", r.metrics.kendall_tau),
                format!("{:.6}", r.metrics.spearman),
                format!("{:.6}", r.metrics.pearson),
                format!("{:.6}", r.metrics.precision_at_10),
                r.metrics.n_at_10.to_string(),
                format!("{:.3}", r.train_seconds),
                r.hyper_val_acc.map_or(String::new(), |v| format!("{v:.2}")),
            ]
        })
        .collect();
    report::write_csv(
        &a.out_dir.join("results.csv"),
        &[
            "predictor",
            "train_size",
            "seed",
            "kendall_tau",
            "spearman",
            "pearson",
            "precision_at_10",
            "n_at_10",
            "train_seconds",
            "hyper_val_acc",
        ],
        &rows,
    )?;
    let rows: Vec<Vec<String>> = summary
        .iter()
        .map(|c| {
            vec![
                c.predictor.to_string(),
                c.train_size.to_string(),
                c.runs.to_string(),
                format!("{:.6}", c.tau_mean),
                format!("{:.6}", c.tau_std),
            ]
        })
        .collect();
    report::write_csv(
        &a.out_dir.join("summary.csv"),
        &["predictor", "train_size", "runs", "tau_mean", "tau_std"],
        &rows,
    )?;
    let mut series = Vec::new();
    for v in variants {
        let points: Vec<(f64, f64, f64)> = summary
            .iter()
            .filter(|c| c.predictor == v.label)
            .map(|c| (c.train_size as f64, c.tau_mean, c.tau_std))
            .collect();
        series.push(plot::Series {
            name: v.label.clone(),
            points,
        });
    }
    plot::line_plot_svg(
        &a.out_dir.join("tau.svg"),
        &format!("{} ({}): Kendall tau vs training size", a.space, a.target),
        "training architectures N",
        "Kendall tau (rest of the table)",
        &series,
        true,
    )
}

fn bench_timing(a: &BenchArgs, space: &dyn DynSpace, l: &Labelled) -> Result<()> {
    // One --sizes value picks the training size; otherwise 156, the demo's size.
    let wanted = match a.sizes.as_deref() {
        Some([one]) => *one,
        _ => 156,
    };
    let images = aux_images(&a.model.aux, &a.predictors)?;
    let size = wanted.clamp(2, l.archs.len() - 1);
    println!(
        "timing on {} ({} rows); training on one core, scoring on all cores:\n",
        space.name(),
        l.archs.len()
    );
    println!("| predictor | train N | epochs | s/epoch | score all rows (s) | archs/s |");
    println!("|---|---|---|---|---|---|");
    for &kind in &a.predictors {
        let (m, mut t) = a.model.configs(kind, space, 0)?;
        t.epochs = a.model.epochs.unwrap_or(5);
        let (idx, _) = bench::split(l.archs.len(), size, 0);
        let archs: Vec<EncodedArch> = idx.iter().map(|&i| l.archs[i].clone()).collect();
        let targets: Vec<f64> = idx.iter().map(|&i| l.targets[i]).collect();
        let prepared = prepare_aux(&m, &t, space, &archs, 0)?;
        let aux = match (&prepared, &images) {
            (Some(p), Some(images)) => Some(p.data(&images.train)),
            _ => None,
        };
        let start = Instant::now();
        let fitted = train::fit(&m, &t, &archs, &targets, aux.as_ref(), None);
        let per_epoch = start.elapsed().as_secs_f64() / fitted.epoch_losses.len() as f64;
        // best of three: the first pass also pays one-off allocation costs
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let start = Instant::now();
            let pred = fitted.predict(&l.archs);
            best = best.min(start.elapsed().as_secs_f64());
            std::hint::black_box(pred);
        }
        println!(
            "| {kind} | {size} | {} | {per_epoch:.4} | {best:.3} | {:.0} |",
            fitted.epoch_losses.len(),
            l.archs.len() as f64 / best
        );
    }
    Ok(())
}

fn cmd_demo(a: DemoArgs) -> Result<()> {
    let space = space::by_name("nb201")?;
    let target = "cifar10_test_acc";
    let l = load_labelled("nb201", space.as_ref(), None, target)?;
    if a.train_size < 2 || a.train_size >= l.archs.len() {
        bail!("--train-size must be between 2 and {}", l.archs.len() - 1);
    }
    let (train_idx, test_idx) = bench::split(l.archs.len(), a.train_size, a.seed);
    let (m, t) = a.model.configs(a.model.predictor, space.as_ref(), a.seed)?;
    let images = aux_images(&a.model.aux, &[m.kind])?;
    println!(
        "HyperNAS demo: {} on {} random NAS-Bench-201 cells (seed {}), target CIFAR-10 test accuracy",
        m.kind, a.train_size, a.seed
    );
    let archs: Vec<EncodedArch> = train_idx.iter().map(|&i| l.archs[i].clone()).collect();
    let targets: Vec<f64> = train_idx.iter().map(|&i| l.targets[i]).collect();
    let prepared = prepare_aux(&m, &t, space.as_ref(), &archs, a.seed)?;
    let aux = match (&prepared, &images) {
        (Some(p), Some(images)) => Some(p.data(&images.train)),
        _ => None,
    };
    let pb = epoch_bar(
        train::progress_epochs(m.kind, &t, archs.len()),
        &format!("training {}", m.kind),
    );
    let start = Instant::now();
    let fitted = train::fit(&m, &t, &archs, &targets, aux.as_ref(), Some(&pb));
    pb.finish_and_clear();
    report_aux_log(&fitted, None)?;
    println!(
        "trained {} epochs in {:.1}s",
        fitted.epoch_losses.len(),
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let test_archs: Vec<EncodedArch> = test_idx.iter().map(|&i| l.archs[i].clone()).collect();
    let truth: Vec<f64> = test_idx.iter().map(|&i| l.targets[i]).collect();
    let pred = fitted.predict(&test_archs);
    let scored = start.elapsed().as_secs_f64();
    let m = Metrics::compute(&pred, &truth);
    println!(
        "scored the other {} architectures in {scored:.2}s: Kendall tau {:.4}, Spearman {:.4}, precision@10 {:.2}",
        test_archs.len(),
        m.kendall_tau,
        m.spearman,
        m.precision_at_10
    );
    let mut order: Vec<usize> = (0..pred.len()).collect();
    order.sort_by(|&x, &y| pred[y].total_cmp(&pred[x]));
    let mut true_rank: Vec<usize> = (0..truth.len()).collect();
    true_rank.sort_by(|&x, &y| truth[y].total_cmp(&truth[x]));
    let mut rank_of = vec![0; truth.len()];
    for (r, &i) in true_rank.iter().enumerate() {
        rank_of[i] = r + 1;
    }
    let best = truth.iter().cloned().fold(f64::MIN, f64::max);
    println!(
        "\npredicted top-10 (true best among them: rank {} of {}; best in the pool {best:.2}%):",
        metrics::n_at_k(&pred, &truth, 10),
        truth.len()
    );
    println!(
        "{:>4}  {:>9}  {:>8}  {:>9}  architecture",
        "#", "predicted", "true acc", "true rank"
    );
    for (k, &i) in order.iter().take(10).enumerate() {
        println!(
            "{:>4}  {:>9.2}  {:>8.2}  {:>9}  {}",
            k + 1,
            pred[i],
            truth[i],
            rank_of[i],
            test_archs[i].canonical
        );
    }
    Ok(())
}

fn cmd_weights(a: WeightsArgs) -> Result<()> {
    let (header, fitted) = file::load(&a.model)?;
    let Some(hyper) = &header.model.hyper else {
        bail!(
            "{}: a {} model has no hypernetwork; train with --predictor hypernas or hypernas-h",
            a.model.display(),
            header.model.kind
        );
    };
    let space = space::by_name(&header.space)?;
    let arch = space.encode(&a.arch)?;
    let program = space
        .proxy_program(&arch.canonical, &hyper.proxy)?
        .ok_or_else(|| anyhow!("space {} has no candidate network", space.name()))?;
    file::check_writable(&a.out)?;
    let images = AuxOptions {
        aux_data: a.aux_data.clone(),
        ..AuxOptions::default()
    }
    .images()?;
    if images.test.is_empty() {
        bail!(
            "{}: no CIFAR-10 test batch to score the network on",
            images.source
        );
    }
    let weights = fitted
        .generated_weights(&arch, &program)
        .ok_or_else(|| anyhow!("{}: the model holds no hypernetwork", a.model.display()))?;
    let mut tensors = Vec::with_capacity(weights.len());
    let mut parameters = 0;
    for (node, w) in weights {
        let shape = w.dims().to_vec();
        let values: Vec<f32> = w
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow!("{e:?}"))?;
        parameters += values.len();
        let name = format!("{node:03}.{}", program.nodes[node].layer.kind_name());
        tensors.push((name, shape, values));
    }
    let accuracy = fitted.generated_accuracy(&[(&arch, &program)], &images.test)[0];
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("arch".to_string(), arch.canonical.clone());
    metadata.insert("space".to_string(), header.space.clone());
    metadata.insert("proxy".to_string(), serde_json::to_string(&hyper.proxy)?);
    metadata.insert(
        "program".to_string(),
        serde_json::to_string(&program.nodes)?,
    );
    metadata.insert(
        "note".to_string(),
        "tensor NNN is the weight of program node NNN ([c_out, c_in, k, k]; the classifier as [classes, c_in, 1, 1]); every layer sums its inputs; normalisation uses batch statistics without affine parameters".to_string(),
    );
    metadata.insert("heldout_top1".to_string(), format!("{accuracy:.2}"));
    file::write_tensors(&a.out, &tensors, &metadata)?;
    println!(
        "{}: {} weighted layers, {parameters} parameters (proxy width {}, {} cell(s) per stage, {}x{} images); top-1 {accuracy:.2}% on {} held-out CIFAR-10 images; wrote {}",
        arch.canonical,
        tensors.len(),
        hyper.proxy.width,
        hyper.proxy.cells_per_stage,
        hyper.proxy.image_size,
        hyper.proxy.image_size,
        images.test.len(),
        a.out.display()
    );
    Ok(())
}
