//! `train`, `predict`, `eval` and `weights`: the commands around one model file.

use super::*;

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

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Search space of the architectures (default: the space of an embedded --data).
    #[arg(long)]
    pub space: Option<String>,
    /// Embedded data set name (nb201, nb101, darts) or CSV path to sample training rows from
    /// [default: the embedded table of --space, else nb201].
    #[arg(long)]
    pub data: Option<String>,
    /// Target column to predict (default: the embedded data set's, e.g. cifar10_test_acc for
    /// nb201, val_acc for nb101 and darts).
    #[arg(long)]
    pub target: Option<String>,
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
    /// Embedded data set name or CSV path with the architectures to score [default: the
    /// embedded table of the model's space].
    #[arg(long)]
    pub data: Option<String>,
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
    /// Embedded data set name or CSV path with labelled architectures [default: the embedded
    /// table of the model's space].
    #[arg(long)]
    pub data: Option<String>,
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

pub(super) fn cmd_train(a: TrainArgs) -> Result<()> {
    let data = data_or_default(a.data.as_deref(), a.space.as_deref())?;
    let space = resolve_space(a.space.as_deref(), &data)?;
    let target = a.target.as_deref();
    let (train_archs, train_targets, target) = match &a.train_file {
        Some(path) => {
            let path = path.to_string_lossy().to_string();
            let l = load_labelled(&path, space.as_ref(), a.arch_col.as_deref(), target)?;
            (l.archs, l.targets, l.target)
        }
        None => {
            let l = load_labelled(&data, space.as_ref(), a.arch_col.as_deref(), target)?;
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
                l.target,
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
    let (model_config, train_config) = a.model.configs(
        a.model.predictor.unwrap_or(DEFAULT_PREDICTOR),
        space.as_ref(),
        a.seed,
    )?;
    let images = aux_images(&a.model.aux, &[model_config.kind])?;
    let start = Instant::now();
    let fitted = fit_interactive(
        &model_config,
        &train_config,
        space.as_ref(),
        &train_archs,
        &train_targets,
        a.seed,
        images.as_ref(),
        a.train_log.as_deref(),
    )?;
    let names = train_archs.iter().map(|e| e.canonical.clone()).collect();
    let header = ModelHeader::new(space.name(), &target, &fitted, names);
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

pub(super) fn cmd_predict(a: PredictArgs) -> Result<()> {
    let (header, fitted) = file::load(&a.model)?;
    let space = space::by_name(&header.space)?;
    file::check_writable(&a.out)?;
    let table = Table::load(&data_or_default(a.data.as_deref(), Some(space.name()))?)?;
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

pub(super) fn cmd_eval(a: EvalArgs) -> Result<()> {
    let (header, fitted) = file::load(&a.model)?;
    let space = space::by_name(&header.space)?;
    let target = a.target.clone().unwrap_or_else(|| header.target.clone());
    let data = data_or_default(a.data.as_deref(), Some(space.name()))?;
    let l = load_labelled(&data, space.as_ref(), a.arch_col.as_deref(), Some(&target))?;
    // identities, so that an isomorphic copy of a training cell is left out too
    let seen: HashSet<String> = header
        .train_archs
        .iter()
        .filter_map(|text| space.encode(text).ok())
        .map(|e| e.identity)
        .collect();
    let keep: Vec<usize> = (0..l.archs.len())
        .filter(|&i| !seen.contains(&l.archs[i].identity))
        .collect();
    if keep.len() < 2 {
        bail!("fewer than 2 rows of {data} are outside the model's training set");
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
            #[serde(skip_serializing_if = "Option::is_none")]
            caveat: Option<&'a str>,
            excluded_training_rows: usize,
            metrics: &'a Metrics,
        }
        let out = Out {
            model: a.model.display().to_string(),
            predictor: header.model.kind,
            data: &data,
            target: &target,
            caveat: l.caveat,
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
            data,
            l.archs.len() - keep.len()
        );
        println!("{m}");
        if let Some(caveat) = l.caveat {
            println!("Note on the data: {caveat}.");
        }
    }
    Ok(())
}

pub(super) fn cmd_weights(a: WeightsArgs) -> Result<()> {
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
