//! Predictor, training and hypernetwork-task options shared by the commands.

use super::*;

/// What `train` fits when `--predictor` is not given.
pub(super) const DEFAULT_PREDICTOR: PredictorKind = PredictorKind::HypernasP;

/// Predictor and optimisation settings; anything left out takes the predictor's default.
#[derive(Args, Debug, Clone)]
pub struct ModelOptions {
    /// Predictor to train [default: hypernas-p for train, hypernas for demo].
    #[arg(long, value_enum)]
    pub predictor: Option<PredictorKind>,
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
    /// Cap on optimiser steps (large training sets run fewer epochs) [default: 6000; 600 for
    /// the fits inside `search` and `bench search`].
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
    /// Previous cells whose pooled features each cell of the global encoding receives (mean)
    /// [default: the space's: 1, the paper's z-passing; see the README for DARTS].
    #[arg(long)]
    pub z_span: Option<usize>,
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
    pub(super) fn apply(&self, m: &mut ModelConfig, t: &mut TrainConfig) -> Result<()> {
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
    pub(super) fn images(&self) -> Result<CifarData> {
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

/// Step cap of every fit inside a search when `--max-steps` is not given: a search refits
/// many times, and on validation seeds (README, "Search on NAS-Bench-201") fits capped at 600 steps guided the
/// search as well as the full schedule at under half the cost.
const SEARCH_MAX_STEPS: usize = 600;

impl ModelOptions {
    /// [`ModelOptions::configs`] for the fits of a search: `--max-steps` defaults to
    /// `SEARCH_MAX_STEPS`.
    pub(super) fn search_configs(
        &self,
        kind: PredictorKind,
        space: &dyn DynSpace,
        seed: u64,
    ) -> Result<(ModelConfig, TrainConfig)> {
        let (m, mut t) = self.configs(kind, space, seed)?;
        if self.max_steps.is_none() {
            t.max_steps = t.max_steps.min(SEARCH_MAX_STEPS);
        }
        Ok((m, t))
    }

    /// The defaults for `kind`, overridden by whatever was given on the command line.
    pub(super) fn configs(
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
        m.z_span = match self.z_span {
            Some(0) => bail!("--z-span must be at least 1"),
            Some(v) => v,
            None => space.z_span(),
        };
        self.aux.apply(&mut m, &mut t)?;
        if let Some(h) = &mut m.hyper {
            h.kernels = space.proxy_kernel_sizes();
        }
        check_configs(&m, &t)?;
        Ok((m, t))
    }
}

pub(super) fn check_configs(m: &ModelConfig, t: &TrainConfig) -> Result<()> {
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
