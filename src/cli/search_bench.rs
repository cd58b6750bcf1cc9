//! `bench search`: random search, evolution and predictor-guided search against a benchmark
//! table over many seeds, best found at several query budgets.

use super::*;
use crate::search::bench::{self as search_bench, Contender, SearchBench};
use crate::search::{Candidates, FitSurrogate, Strategy, Surrogate};

#[derive(Args, Debug)]
pub struct SearchBenchArgs {
    /// Search space (its embedded table is the oracle unless --data names another).
    pub space: String,
    /// Embedded data set or CSV / JSON-lines path (the oracle; searches stay within its rows).
    #[arg(long)]
    pub data: Option<String>,
    /// Target column [default: the table's, cifar10_test_acc for nb201].
    #[arg(long)]
    pub target: Option<String>,
    /// Architecture column of a table.
    #[arg(long)]
    pub arch_col: Option<String>,
    /// Query budgets to report (one search per strategy and seed runs to the largest).
    #[arg(long, value_delimiter = ',', default_values_t = vec![25, 50, 100, 150])]
    pub budgets: Vec<usize>,
    /// Strategies: random, evolution, local (predictor-guided search's candidates in random
    /// order), or a predictor name for predictor-guided search.
    #[arg(long, value_delimiter = ',', default_values_t = ["random".to_string(), "evolution".into(), "local".into(), "np".into(), "hypernas-p".into(), "hypernas".into()])]
    pub strategies: Vec<String>,
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    #[command(flatten)]
    pub tuning: super::search_cmd::StrategyOptions,
    /// Parallel searches (default: number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Directory for results.json, summary.csv, best.svg and the journals.
    #[arg(long, default_value = "bench-search-out")]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub model: ModelOptions,
}

fn contender(name: &str) -> Result<Contender> {
    let (strategy, predictor) = match name {
        "random" => (Strategy::Random, None),
        "evolution" => (Strategy::Evolution, None),
        "local" => (Strategy::Local, None),
        other => {
            let kind = PredictorKind::from_str(other, true).map_err(|_| {
                anyhow!("unknown strategy '{other}' (random, evolution, local, or a predictor: np, hypernas-p, hypernas, hypernas-h, mlp)")
            })?;
            (Strategy::Predictor, Some(kind))
        }
    };
    Ok(Contender {
        label: name.to_string(),
        strategy,
        predictor,
    })
}

pub(super) fn cmd_search_bench(a: SearchBenchArgs) -> Result<()> {
    let space = space::by_name(&a.space)?;
    let data = match &a.data {
        Some(d) => d.clone(),
        None => default_data(space.name())?,
    };
    let l = load_labelled(
        &data,
        space.as_ref(),
        a.arch_col.as_deref(),
        a.target.as_deref(),
    )?;
    let contenders: Vec<Contender> = a
        .strategies
        .iter()
        .map(|s| contender(s))
        .collect::<Result<_>>()?;
    if a.seeds == 0 || contenders.is_empty() || a.budgets.is_empty() {
        bail!("bench search needs at least one seed, strategy and budget");
    }
    if let Some(&bad) = a.budgets.iter().find(|&&b| b == 0 || b > l.archs.len()) {
        bail!(
            "budget {bad} must be between 1 and the {} table rows",
            l.archs.len()
        );
    }
    // strategy, budget and seed are set per search; checked as the strictest (predictor)
    let settings = a.tuning.settings(Strategy::Predictor, 1, 0, 1)?;
    // Options and images checked once, before any thread starts.
    let kinds: Vec<PredictorKind> = contenders.iter().filter_map(|c| c.predictor).collect();
    for &kind in &kinds {
        let (m, t) = a.model.search_configs(kind, space.as_ref(), 0)?;
        prepare_aux(&m, &t, space.as_ref(), &l.archs[..1], 0)?;
    }
    let images = aux_images(&a.model.aux, &kinds)?;
    let optimum = l.targets.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let oracle = table_oracle(&l, &data);
    let candidates = Candidates::pool(space.as_ref(), &l.archs);
    let journal_dir = a.out_dir.join("journals");
    std::fs::create_dir_all(&journal_dir)
        .with_context(|| format!("cannot create {}", journal_dir.display()))?;
    let surrogate = |c: &Contender| -> Option<Box<dyn Surrogate + '_>> {
        let kind = c.predictor?;
        let (model_config, train_config) = a
            .model
            .search_configs(kind, space.as_ref(), 0)
            .expect("checked above");
        Some(Box::new(FitSurrogate::new(
            model_config,
            train_config,
            space.as_ref(),
            images.as_ref(),
            1,
        )))
    };
    let mut budgets = a.budgets.clone();
    budgets.sort_unstable();
    budgets.dedup();
    let bench = SearchBench {
        candidates: &candidates,
        oracle: &oracle,
        optimum,
        budgets: budgets.clone(),
        contenders: contenders.clone(),
        seeds: (a.first_seed..a.first_seed.saturating_add(a.seeds)).collect(),
        settings,
        surrogate: &surrogate,
        journal_dir: &journal_dir,
    };
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let total = contenders.len() * a.seeds as usize;
    eprintln!(
        "bench search {}: {total} searches ({} strategies x {} seeds, up to {} queries) on {} rows of {data}, target {} (optimum {optimum}), {jobs} jobs",
        space.name(),
        contenders.len(),
        a.seeds,
        budgets.last().expect("non-empty"),
        l.archs.len(),
        l.target
    );
    let pb = bar(
        total,
        "{msg} [{bar:30}] {pos}/{len} searches ({elapsed} elapsed, {eta} left)",
        "bench search",
    );
    let start = Instant::now();
    let runs = bench.run(jobs, Some(&pb))?;
    pb.finish_and_clear();
    let summary = search_bench::summarize(&runs, &budgets, &contenders);
    #[derive(serde::Serialize)]
    struct Out<'a> {
        space: &'a str,
        data: &'a str,
        target: &'a str,
        optimum: f64,
        command: String,
        summary: &'a [search_bench::BudgetSummary],
        runs: &'a [search_bench::SearchRun],
    }
    report::write_json(
        &a.out_dir.join("results.json"),
        &Out {
            space: space.name(),
            data: &data,
            target: &l.target,
            optimum,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            summary: &summary,
            runs: &runs,
        },
    )?;
    let rows: Vec<Vec<String>> = summary
        .iter()
        .map(|s| {
            vec![
                s.contender.clone(),
                s.budget.to_string(),
                s.runs.to_string(),
                format!("{:.4}", s.best_mean),
                format!("{:.4}", s.best_std),
                s.optimum_found.to_string(),
            ]
        })
        .collect();
    report::write_csv(
        &a.out_dir.join("summary.csv"),
        &[
            "strategy",
            "budget",
            "runs",
            "best_mean",
            "best_std",
            "optimum_found",
        ],
        &rows,
    )?;
    let series: Vec<plot::Series> = contenders
        .iter()
        .map(|c| plot::Series {
            name: c.label.clone(),
            points: summary
                .iter()
                .filter(|s| s.contender == c.label)
                .map(|s| (s.budget as f64, s.best_mean, s.best_std))
                .collect(),
        })
        .collect();
    plot::line_plot_svg(
        &a.out_dir.join("best.svg"),
        &format!("{} ({}): best found vs queries", space.name(), l.target),
        "queries",
        "best accuracy found (mean over seeds)",
        &series,
        false,
    )?;
    println!(
        "Best {} found, mean ± std over {} seeds (runs that found the optimum {optimum}):\n",
        l.target, a.seeds
    );
    println!("{}", search_bench::table(&summary, &budgets, &contenders));
    if let Some(caveat) = l.caveat {
        println!("Note on the data: {caveat}.\n");
    }
    println!(
        "{} searches in {:.0}s; results in {}",
        runs.len(),
        start.elapsed().as_secs_f64(),
        a.out_dir.display()
    );
    Ok(())
}
