//! `bench`: the protocol table, the HyperNAS ablation and timing.

use super::*;

/// `bench SPACE [options]` (the predictor protocol) or `bench search SPACE [options]`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCmd {
    #[command(subcommand)]
    pub search: Option<BenchSub>,
    #[command(flatten)]
    pub args: BenchArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchSub {
    /// The search bench: random search, evolution and predictor-guided search against the
    /// space's table over many seeds; best found at each query budget and how often the
    /// optimum was found.
    Search(Box<super::search_bench::SearchBenchArgs>),
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Search space to benchmark (its embedded table is the default data).
    pub space: Option<String>,
    /// Embedded data set or CSV path (default: the space's embedded table).
    #[arg(long)]
    pub data: Option<String>,
    /// Target column (default: the embedded data set's).
    #[arg(long)]
    pub target: Option<String>,
    /// Architecture column of a CSV.
    #[arg(long)]
    pub arch_col: Option<String>,
    /// Training-set sizes [default: the embedded table's: nb201 39,78,156,469,781,1563 (with
    /// --ablation 39,78,156,469), nb101 50,100,200, darts 50,100,200,400].
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<usize>>,
    /// Number of seeds.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// First seed (seeds run first-seed, first-seed + 1, ..). Tune on seeds you do not report.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Predictors to compare [default: np, hypernas-p, hypernas, mlp; without hypernas for a
    /// space without candidate networks].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub predictors: Option<Vec<PredictorKind>>,
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

pub(super) fn cmd_bench(a: BenchArgs) -> Result<()> {
    let Some(space_name) = &a.space else {
        bail!("bench needs a search space (e.g. `bench nb201`) or `bench search SPACE`");
    };
    let space = space::by_name(space_name)?;
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
    if a.timing {
        return bench_timing(&a, space.as_ref(), &l);
    }
    // The embedded table's sizes (the ablation drops the two largest, where every predictor
    // converges), keeping those that leave rows to test on.
    let sizes = a.sizes.clone().unwrap_or_else(|| {
        let mut sizes: Vec<usize> = Table::bench_sizes_for_space(space.name())
            .unwrap_or(&[50, 100, 200])
            .iter()
            .copied()
            .filter(|&s| s < l.archs.len())
            .collect();
        if a.ablation && sizes.len() > 4 {
            sizes.truncate(4);
        }
        sizes
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
        predictors(&a, space.as_ref())
            .into_iter()
            .map(Variant::plain)
            .collect()
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
        l.target
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
    write_bench_outputs(&a, &data, &l, &variants, &results, &summary)?;
    println!(
        "Kendall tau on all remaining architectures, mean ± std over {} seeds ({} / {}, target {}):\n",
        a.seeds,
        space.name(),
        data,
        l.target
    );
    println!("{}", report::tau_table(&summary));
    if let Some(caveat) = l.caveat {
        println!("Note on the data: {caveat}.\n");
    }
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

/// `--predictors`, or the default: every kind except hypernas-h, and hypernas only where the
/// space has candidate networks for its image task.
fn predictors(a: &BenchArgs, space: &dyn DynSpace) -> Vec<PredictorKind> {
    if let Some(p) = &a.predictors {
        return p.clone();
    }
    let mut kinds = vec![PredictorKind::Np, PredictorKind::HypernasP];
    if space.has_candidate_networks() {
        kinds.push(PredictorKind::Hypernas);
    }
    kinds.push(PredictorKind::Mlp);
    kinds
}

fn write_bench_outputs(
    a: &BenchArgs,
    data: &str,
    l: &Labelled,
    variants: &[Variant],
    results: &[RunResult],
    summary: &[bench::CellSummary],
) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        space: &'a str,
        data: &'a str,
        target: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        caveat: Option<&'a str>,
        command: String,
        summary: &'a [bench::CellSummary],
        runs: &'a [RunResult],
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let out = Out {
        space: a.space.as_deref().unwrap_or_default(),
        data,
        target: &l.target,
        caveat: l.caveat,
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
        &format!(
            "{} ({}): Kendall tau vs training size",
            a.space.as_deref().unwrap_or_default(),
            l.target
        ),
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
    let kinds = predictors(a, space);
    let images = aux_images(&a.model.aux, &kinds)?;
    let size = wanted.clamp(2, l.archs.len() - 1);
    println!(
        "timing on {} ({} rows); training on one core, scoring on all cores:\n",
        space.name(),
        l.archs.len()
    );
    let mut aux_lines = Vec::new();
    println!("| predictor | train N | epochs | s/epoch | score all rows (s) | archs/s |");
    println!("|---|---|---|---|---|---|");
    for &kind in &kinds {
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
        if let (Some(data), Some(h), Some(aux_config)) = (&aux, &m.hyper, &t.aux) {
            let per_step = train::aux::time_aux_steps(&m, aux_config, data, &archs, 20);
            let images = aux_config.archs_per_step * aux_config.images_per_arch;
            aux_lines.push(format!(
                "| {kind} | {} | {} | {}px | {} x {} | {:.1} | {:.0} |",
                h.proxy.width,
                h.proxy.cells_per_stage,
                h.proxy.image_size,
                aux_config.archs_per_step,
                aux_config.images_per_arch,
                per_step * 1e3,
                images as f64 / per_step
            ));
        }
    }
    if !aux_lines.is_empty() {
        println!(
            "\nhypernetwork aux step (encoder + hypernetwork + proxy network, forward and backward, one core):\n"
        );
        println!(
            "| predictor | proxy width | cells/stage | image | archs x images | ms/step | images/s |"
        );
        println!("|---|---|---|---|---|---|---|");
        for line in aux_lines {
            println!("{line}");
        }
    }
    Ok(())
}
