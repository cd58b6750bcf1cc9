//! `search`: predictor-guided, evolutionary or random search with a table or command oracle,
//! a journal per run and resume.

use std::time::Duration;

use super::*;
use crate::search::journal::{Journal, Record};
use crate::search::oracle::{CommandConfig, CommandOracle, Oracle};
use crate::search::{
    self as search_core, Candidates, FitSurrogate, Progress, SearchSettings, Strategy, Surrogate,
};

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Search space (default: the space of an embedded --data).
    #[arg(long)]
    pub space: Option<String>,
    /// Benchmark table to look accuracies up in (embedded name or CSV / JSON-lines path); the
    /// table oracle, and the search is limited to its architectures [default: the space's
    /// embedded table, unless --evaluate-cmd is given].
    #[arg(long)]
    pub data: Option<String>,
    /// Target column of the table oracle [default: the table's].
    #[arg(long)]
    pub target: Option<String>,
    /// Architecture column of a table.
    #[arg(long)]
    pub arch_col: Option<String>,
    /// Evaluate by running this shell command per architecture instead of a table lookup:
    /// `{arch}` is replaced by the architecture (shell-quoted), `{out}` by a file the command
    /// may write the accuracy to, `{id}` by the job number; otherwise the last line of its
    /// output must be the accuracy.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "data")]
    pub evaluate_cmd: Option<String>,
    /// Parallel evaluation jobs of --evaluate-cmd.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Seconds before a job of --evaluate-cmd is killed (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub timeout: u64,
    /// Extra attempts for a failed job before it is recorded as failed.
    #[arg(long, default_value_t = 1)]
    pub retries: u32,
    /// random, evolution, or predictor (fit the predictor, score candidates, evaluate the top k).
    #[arg(long, value_enum, default_value_t = Strategy::Predictor)]
    pub strategy: Strategy,
    /// Distinct architectures to evaluate.
    #[arg(long, default_value_t = 50)]
    pub budget: usize,
    /// Seed of the search's random choices and of its predictor fits.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Architectures proposed per round by random search and evolution [default: --workers].
    #[arg(long)]
    pub batch: Option<usize>,
    #[command(flatten)]
    pub tuning: StrategyOptions,
    /// Directory for the journal, summary and plots (must not hold a journal yet).
    #[arg(long, default_value = "search-out")]
    pub run_dir: PathBuf,
    /// Continue the search of this run directory (with its original settings).
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelOptions,
}

/// The knobs of evolution and predictor-guided search (shared with `bench search`).
#[derive(Args, Debug)]
pub struct StrategyOptions {
    /// Evolution: population (most recent evaluations).
    #[arg(long, default_value_t = 10)]
    pub population: usize,
    /// Evolution: tournament size.
    #[arg(long, default_value_t = 3)]
    pub tournament: usize,
    /// Predictor: random architectures evaluated before the first fit.
    #[arg(long, default_value_t = 10)]
    pub initial: usize,
    /// Predictor: candidates scored per round, at most: the unevaluated neighbours (one
    /// mutation away) of the best architecture so far, then of the next best while fewer than
    /// --top-k are left, plus the --explore share of random ones.
    #[arg(long, default_value_t = 1000)]
    pub candidates: usize,
    /// Predictor: share of --candidates drawn at random from the space or table instead of
    /// from neighbourhoods (1 = score random candidates only; a table with at most that many
    /// unevaluated rows is then scored whole).
    #[arg(long, default_value_t = 0.0)]
    pub explore: f64,
    /// Predictor: architectures evaluated per round.
    #[arg(long, default_value_t = 2)]
    pub top_k: usize,
    /// Predictor: refit once the evaluated architectures grew by this fraction since the last
    /// fit (0 = every round; 0.2 = once there are 20 % more), reusing the model in between.
    #[arg(long, default_value_t = 0.2)]
    pub refit_growth: f64,
}

impl StrategyOptions {
    pub fn settings(
        &self,
        strategy: Strategy,
        budget: usize,
        seed: u64,
        batch: usize,
    ) -> Result<SearchSettings> {
        let settings = SearchSettings {
            strategy,
            budget,
            seed,
            batch,
            population: self.population,
            tournament: self.tournament,
            initial: self.initial,
            candidates: self.candidates,
            explore: self.explore,
            top_k: self.top_k,
            refit_growth: self.refit_growth,
        };
        settings.check()?;
        Ok(settings)
    }
}

const JOURNAL: &str = "journal.jsonl";
const RUN_FILE: &str = "run.json";

/// What a run directory remembers: the command line that started it.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunFile {
    args: Vec<String>,
}

pub(super) fn cmd_search(a: SearchArgs) -> Result<()> {
    match a.resume.clone() {
        Some(dir) => resume(&dir),
        None => {
            let args: Vec<String> = std::env::args().collect();
            start(a, args, false)
        }
    }
}

/// Re-parse the original command line from the run directory and continue its journal.
fn resume(dir: &std::path::Path) -> Result<()> {
    let path = dir.join(RUN_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is not a search run directory (no {RUN_FILE})",
            dir.display()
        )
    })?;
    let run: RunFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: corrupt run file", path.display()))?;
    let cli = Cli::try_parse_from(&run.args).map_err(|e| {
        anyhow!(
            "{}: the stored command line no longer parses: {e}",
            path.display()
        )
    })?;
    let Command::Search(mut a) = cli.command else {
        bail!("{}: not a search run", path.display());
    };
    a.run_dir = dir.to_path_buf();
    start(a, run.args, true)
}

fn start(a: SearchArgs, args: Vec<String>, resuming: bool) -> Result<()> {
    let batch = a.batch.unwrap_or(a.workers).max(1);
    let settings = a.tuning.settings(a.strategy, a.budget, a.seed, batch)?;
    // a command oracle needs no table
    let data = match (&a.data, &a.evaluate_cmd) {
        (None, Some(_)) => None,
        _ => Some(data_or_default(a.data.as_deref(), a.space.as_deref())?),
    };
    let space = match (&data, a.space.as_deref()) {
        (Some(d), s) => resolve_space(s, d)?,
        (None, Some(s)) => space::by_name(s)?,
        (None, None) => bail!("--space is needed with --evaluate-cmd"),
    };
    let kind = a.model.predictor.unwrap_or(DEFAULT_PREDICTOR);
    let (model_config, train_config) = a.model.search_configs(kind, space.as_ref(), a.seed)?;
    let images = match a.strategy {
        Strategy::Predictor => aux_images(&a.model.aux, &[kind])?,
        _ => None,
    };
    if model_config.kind.uses_hypernetwork()
        && a.strategy == Strategy::Predictor
        && !space.has_candidate_networks()
    {
        bail!(
            "{kind} needs candidate networks, which space {} does not have",
            space.name()
        );
    }

    let journal_path = a.run_dir.join(JOURNAL);
    let (table_archs, oracle): (Option<Vec<EncodedArch>>, Box<dyn Oracle>) = match &data {
        Some(d) => {
            let l = load_labelled(
                d,
                space.as_ref(),
                a.arch_col.as_deref(),
                a.target.as_deref(),
            )?;
            let oracle = table_oracle(&l, d);
            (Some(l.archs), Box::new(oracle))
        }
        None => {
            let template = a.evaluate_cmd.clone().expect("no data means a command");
            let timeout = match a.timeout {
                0 => Duration::MAX,
                s => Duration::from_secs(s),
            };
            let oracle = CommandOracle::new(CommandConfig {
                template,
                workers: a.workers,
                timeout,
                retries: a.retries,
                work_dir: a.run_dir.clone(),
            })?;
            (None, Box::new(oracle))
        }
    };
    // only now, so that bad options leave no empty run directory behind
    std::fs::create_dir_all(&a.run_dir)
        .with_context(|| format!("cannot create {}", a.run_dir.display()))?;
    let (mut journal, records) = if resuming {
        Journal::open(&journal_path)?
    } else {
        if journal_path.exists() {
            bail!(
                "{} already holds a search; use --resume {} or another --run-dir",
                a.run_dir.display(),
                a.run_dir.display()
            );
        }
        report::write_json(&a.run_dir.join(RUN_FILE), &RunFile { args })?;
        (Journal::create(&journal_path)?, Vec::new())
    };
    let candidates = match &table_archs {
        Some(archs) => Candidates::pool(space.as_ref(), archs),
        None => Candidates::whole_space(space.as_ref()),
    };
    eprintln!(
        "search {}: {} with budget {} (seed {}), oracle: {}{}",
        space.name(),
        describe_strategy(&settings, kind),
        settings.budget,
        settings.seed,
        oracle.describe(),
        if records.is_empty() {
            String::new()
        } else {
            format!("; resuming after {} evaluations", records.len())
        }
    );
    let mut surrogate = FitSurrogate::new(
        model_config,
        train_config,
        space.as_ref(),
        images.as_ref(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let mut progress = BarProgress::new(settings.budget, records.len());
    let surrogate_ref: Option<&mut dyn Surrogate> = match settings.strategy {
        Strategy::Predictor => Some(&mut surrogate),
        _ => None,
    };
    let records = search_core::run(
        &settings,
        &candidates,
        oracle.as_ref(),
        surrogate_ref,
        &mut journal,
        records,
        &mut progress,
    )?;
    progress.bar.finish_and_clear();
    write_search_outputs(
        &a.run_dir,
        space.as_ref(),
        &settings,
        kind,
        oracle.as_ref(),
        &records,
    )
}

fn describe_strategy(settings: &SearchSettings, kind: PredictorKind) -> String {
    match settings.strategy {
        Strategy::Random => "random search".into(),
        Strategy::Evolution => format!(
            "regularized evolution (population {}, tournament {})",
            settings.population, settings.tournament
        ),
        Strategy::Local => format!(
            "local search ({} initial, {} per round)",
            settings.initial, settings.top_k
        ),
        Strategy::Predictor => format!(
            "{kind}-guided search ({} initial, {} candidates, top {} per round)",
            settings.initial, settings.candidates, settings.top_k
        ),
    }
}

/// A progress bar over the budget showing the best accuracy so far.
struct BarProgress {
    bar: ProgressBar,
}

impl BarProgress {
    fn new(budget: usize, done: usize) -> Self {
        let bar = bar(
            budget,
            "{msg} [{bar:30}] {pos}/{len} queries ({elapsed})",
            "search",
        );
        bar.set_position(done as u64);
        Self { bar }
    }
}

impl Progress for BarProgress {
    fn evaluated(&mut self, record: &Record, best: Option<&Record>) {
        self.bar.set_position(record.query as u64);
        if let Some(b) = best.and_then(|b| b.ok_accuracy()) {
            self.bar.set_message(format!("best {b:.2}"));
        }
        if self.bar.is_hidden() {
            let result = match (record.ok_accuracy(), &record.message) {
                (Some(acc), _) => format!("{acc:.4}"),
                (None, Some(m)) => format!("failed: {m}"),
                (None, None) => "failed".into(),
            };
            eprintln!(
                "query {:>4}: {result}   best so far {}",
                record.query,
                best.and_then(|b| b.ok_accuracy())
                    .map_or("-".into(), |b| format!("{b:.4}"))
            );
        }
    }
}

/// `summary.json`, `best.txt`, `best.svg` (best found against queries) and, for predictor
/// runs, `predicted.svg` (the predictor's score at proposal time against the true accuracy).
fn write_search_outputs(
    dir: &std::path::Path,
    space: &dyn DynSpace,
    settings: &SearchSettings,
    kind: PredictorKind,
    oracle: &dyn Oracle,
    records: &[Record],
) -> Result<()> {
    let best = search_core::best_record(records);
    let mut running = f64::NEG_INFINITY;
    let curve: Vec<(usize, f64)> = records
        .iter()
        .filter_map(|r| {
            if let Some(acc) = r.ok_accuracy() {
                running = running.max(acc);
            }
            running.is_finite().then_some((r.query, running))
        })
        .collect();
    let failed = records.iter().filter(|r| r.ok_accuracy().is_none()).count();
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        space: &'a str,
        settings: &'a SearchSettings,
        predictor: Option<PredictorKind>,
        oracle: String,
        queries: usize,
        failed: usize,
        best: Option<&'a Record>,
        best_by_query: &'a [(usize, f64)],
    }
    report::write_json(
        &dir.join("summary.json"),
        &Summary {
            space: space.name(),
            settings,
            predictor: (settings.strategy == Strategy::Predictor).then_some(kind),
            oracle: oracle.describe(),
            queries: records.len(),
            failed,
            best,
            best_by_query: &curve,
        },
    )?;
    let label = match settings.strategy {
        Strategy::Predictor => format!("{kind}-guided"),
        other => other.to_string(),
    };
    // with no successful evaluation there is no curve to draw (summary.json says so)
    if !curve.is_empty() {
        plot::line_plot_svg(
            &dir.join("best.svg"),
            &format!("{}: best accuracy found ({label})", space.name()),
            "queries",
            "best accuracy so far",
            &[plot::Series {
                name: label.clone(),
                points: curve.iter().map(|&(q, b)| (q as f64, b, 0.0)).collect(),
            }],
            false,
        )?;
    }
    let scored: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| Some((r.predicted?, r.ok_accuracy()?)))
        .collect();
    if scored.len() >= 2 {
        plot::scatter_svg(
            &dir.join("predicted.svg"),
            &format!(
                "{}: predictor score at proposal vs true accuracy",
                space.name()
            ),
            "predicted",
            "true accuracy",
            &scored,
        )?;
    }
    match best {
        Some(b) => {
            file::write_atomic(&dir.join("best.txt"), format!("{}\n", b.arch).as_bytes())?;
            println!(
                "best after {} queries ({} failed): {:.4} at query {}\n{}",
                records.len(),
                failed,
                b.ok_accuracy().unwrap_or(f64::NAN),
                b.query,
                b.arch
            );
        }
        None => println!("no successful evaluation in {} queries", records.len()),
    }
    eprintln!("journal, summary and plots in {}", dir.display());
    Ok(())
}
