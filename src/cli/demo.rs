//! `demo`: the main job on the embedded data.

use super::*;

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

pub(super) fn cmd_demo(a: DemoArgs) -> Result<()> {
    let space = space::by_name("nb201")?;
    let l = load_labelled("nb201", space.as_ref(), None, None)?;
    if a.train_size < 2 || a.train_size >= l.archs.len() {
        bail!("--train-size must be between 2 and {}", l.archs.len() - 1);
    }
    let (train_idx, test_idx) = bench::split(l.archs.len(), a.train_size, a.seed);
    let kind = a.model.predictor.unwrap_or(PredictorKind::Hypernas);
    let (m, t) = a.model.configs(kind, space.as_ref(), a.seed)?;
    let images = aux_images(&a.model.aux, &[m.kind])?;
    println!(
        "HyperNAS demo: {} on {} random NAS-Bench-201 cells (seed {}), target CIFAR-10 test accuracy",
        m.kind, a.train_size, a.seed
    );
    let archs: Vec<EncodedArch> = train_idx.iter().map(|&i| l.archs[i].clone()).collect();
    let targets: Vec<f64> = train_idx.iter().map(|&i| l.targets[i]).collect();
    let start = Instant::now();
    let fitted = fit_interactive(
        &m,
        &t,
        space.as_ref(),
        &archs,
        &targets,
        a.seed,
        images.as_ref(),
        None,
    )?;
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
    if let (Some(images), Some(h)) = (&images, &fitted.model_config.hyper) {
        let best = &test_archs[order[0]];
        let program = space
            .proxy_program(&best.canonical, &h.proxy)?
            .ok_or_else(|| anyhow!("no candidate network"))?;
        let acc = fitted.generated_accuracy(&[(best, &program)], &images.test)[0];
        println!(
            "\nthe hypernetwork's generated weights for the predicted best (proxy: width {}, {} cell per stage, {}px) classify {acc:.1}% of {} held-out CIFAR-10 images without any training of their own",
            h.proxy.width,
            h.proxy.cells_per_stage,
            h.proxy.image_size,
            images.test.len()
        );
    }
    Ok(())
}
