//! Training losses on standardised targets: MSE plus an optional pairwise ranking term.

use burn::prelude::*;
use burn::tensor::activation::{relu, softplus};
use serde::{Deserialize, Serialize};

/// The pairwise ranking term added to MSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RankLoss {
    /// `max(0, margin - s * (p_i - p_j))` with margin 0.1.
    Hinge,
    /// `log(1 + exp(-s * (p_i - p_j)))` (RankNet).
    Logistic,
}

const HINGE_MARGIN: f64 = 0.1;

pub fn mse(pred: Tensor<1>, target: Tensor<1>) -> Tensor<1> {
    (pred - target).powi_scalar(2).mean()
}

/// Mean over ordered pairs `(i, j)` with `y_i > y_j` of the ranking loss on `p_i - p_j`.
/// `targets` are the host-side values used to build the pair signs. Returns `None` when the
/// batch has no ordered pair.
pub fn pairwise_rank(pred: Tensor<1>, targets: &[f32], kind: RankLoss) -> Option<Tensor<1>> {
    let b = targets.len();
    let mut sign = vec![0.0f32; b * b];
    let mut pairs = 0usize;
    for i in 0..b {
        for j in 0..b {
            if targets[i] > targets[j] {
                sign[i * b + j] = 1.0;
                pairs += 1;
            }
        }
    }
    if pairs == 0 {
        return None;
    }
    let device = pred.device();
    let sign = Tensor::<2>::from_data(TensorData::new(sign, [b, b]), &device);
    let diff = pred.clone().unsqueeze_dim::<2>(1) - pred.unsqueeze_dim::<2>(0);
    let per_pair = match kind {
        RankLoss::Hinge => relu(diff.neg().add_scalar(HINGE_MARGIN)),
        RankLoss::Logistic => softplus(diff.neg(), 1.0),
    };
    Some((per_pair * sign).sum().div_scalar(pairs as f64))
}
