//! The `hypernas` command line: argument parsing and the thin glue from each subcommand to
//! the library.

mod bench_cmd;
mod demo;
mod model_cmds;
mod options;
mod search_bench;
mod search_cmd;

use bench_cmd::{BenchCmd, BenchSub, cmd_bench};
use demo::{DemoArgs, cmd_demo};
use model_cmds::{
    EvalArgs, PredictArgs, TrainArgs, WeightsArgs, cmd_eval, cmd_predict, cmd_train, cmd_weights,
};
pub use options::ModelOptions;
use options::{AuxOptions, DEFAULT_PREDICTOR};
use search_cmd::{SearchArgs, cmd_search};

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
        NAS-Bench-201 cells with CIFAR-10/100 and ImageNet16-120 accuracies), nb101 (a \
        292-cell sample of NAS-Bench-101), darts (1,218 DARTS genotypes with NAS-Bench-301 \
        surrogate labels), nb-macro (all 6,561 NAS-Bench-Macro networks, CIFAR-10), \
        tnb101-micro (all 4,096 TransNAS-Bench-101 micro cells, 7 Taskonomy tasks), nb-nlp \
        (263 NAS-Bench-NLP recurrent cells, WikiText-2), nb-graph (all 26,206 NAS-Bench-Graph \
        GNNs, validation accuracy on 8 node-classification data sets), vit (200 \
        AutoFormer-Tiny networks, distillation-trained accuracies), vit-scratch (100 of them \
        trained from scratch), pit (100 PiT networks), ofa-mbv3 (2,162 OFA-MobileNetV3 \
        sub-networks, ImageNet top-1, a search-biased sample), anb-mbconv (5,125 \
        Accel-NASBench MBConv networks, ImageNet proxy-schedule top-1). Any CSV or JSON-lines \
        file with an architecture column and numeric target columns works too. The hypernetwork task of \
        hypernas / hypernas-h runs on an embedded balanced CIFAR-10 subset (1,000 training + \
        500 test images) unless --aux-data names the full binary batches."
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
    /// Run the few-shot protocol table (or timing) for a search space; `bench search SPACE`
    /// runs the search bench.
    Bench(BenchCmd),
    /// Train full HyperNAS on 156 random NAS-Bench-201 cells (with the hypernetwork task on the
    /// embedded CIFAR-10 images), report tau on the rest and the predicted top-10.
    Demo(DemoArgs),
    /// Export the hypernetwork's generated weights of an architecture's proxy network and score
    /// that network on held-out CIFAR-10 images.
    Weights(WeightsArgs),
    /// Search for the best architecture under a query budget (predictor-guided, evolution or
    /// random), with a benchmark table or your own training command as the oracle; every
    /// evaluation is journaled, and `--resume RUN_DIR` continues a stopped search.
    Search(SearchArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => cmd_train(a),
        Command::Predict(a) => cmd_predict(a),
        Command::Eval(a) => cmd_eval(a),
        Command::Bench(BenchCmd {
            search: Some(BenchSub::Search(a)),
            ..
        }) => search_bench::cmd_search_bench(*a),
        Command::Bench(BenchCmd { args, .. }) => cmd_bench(args),
        Command::Demo(a) => cmd_demo(a),
        Command::Weights(a) => cmd_weights(a),
        Command::Search(a) => cmd_search(a),
    }
}

/// `--data`, else the embedded table of `--space`, else nb201.
fn data_or_default(data: Option<&str>, space: Option<&str>) -> Result<String> {
    match (data, space) {
        (Some(d), _) => Ok(d.to_string()),
        (None, Some(space)) => default_data(space::by_name(space)?.name()),
        (None, None) => Ok("nb201".to_string()),
    }
}

/// The embedded table of `space`, for commands whose --data is left out.
fn default_data(space: &str) -> Result<String> {
    Table::embedded_for_space(space)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no embedded data for space {space}; pass --data"))
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

/// One training run as the commands do it: the aux task prepared when the predictor needs it,
/// a progress bar, and the multi-task log reported at the end.
#[allow(clippy::too_many_arguments)]
fn fit_interactive(
    m: &ModelConfig,
    t: &TrainConfig,
    space: &dyn DynSpace,
    archs: &[EncodedArch],
    targets: &[f64],
    seed: u64,
    images: Option<&CifarData>,
    log_path: Option<&std::path::Path>,
) -> Result<train::Fitted> {
    let prepared = prepare_aux(m, t, space, archs, seed)?;
    let aux = match (&prepared, images) {
        (Some(p), Some(images)) => Some(p.data(&images.train)),
        _ => None,
    };
    let pb = epoch_bar(
        train::progress_epochs(m.kind, t, archs.len()),
        &format!("training {}", m.kind),
    );
    let fitted = train::fit(m, t, archs, targets, aux.as_ref(), Some(&pb));
    pb.finish_and_clear();
    report_aux_log(&fitted, log_path)?;
    Ok(fitted)
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
    /// The target column (the one asked for, or the table's default).
    target: String,
    /// What results on this data must say about its labels.
    caveat: Option<&'static str>,
}

/// The table oracle of a search: the labelled rows by canonical architecture.
fn table_oracle(l: &Labelled, data: &str) -> crate::search::oracle::TableOracle {
    let pairs = l
        .archs
        .iter()
        .map(|e| e.canonical.clone())
        .zip(l.targets.iter().copied());
    crate::search::oracle::TableOracle::new(pairs, format!("table {data}, column {}", l.target))
}

fn load_labelled(
    data: &str,
    space: &dyn DynSpace,
    arch_col: Option<&str>,
    target: Option<&str>,
) -> Result<Labelled> {
    let table = Table::load(data)?;
    let target = table.resolve_target(target)?;
    let targets = table.target(&target)?;
    let archs = table.encode(space, arch_col)?;
    Ok(Labelled {
        archs,
        targets,
        target,
        caveat: table.caveat,
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_help_names_every_embedded_data_set() {
        let help = Cli::command()
            .get_long_about()
            .expect("long help")
            .to_string();
        for name in crate::data::embedded_names() {
            assert!(help.contains(&format!("{name} (")), "--help lacks {name}");
        }
    }
}
