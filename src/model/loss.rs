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

/// The learnable task uncertainties `u_t` of the dynamic adaptive multi-task loss.
#[derive(burn::module::Module, Debug)]
pub struct TaskWeights {
    pub u: burn::module::Param<Tensor<1>>,
}

/// Task indices into [`TaskWeights`].
pub const TASK_PREDICT: usize = 0;
pub const TASK_HYPER: usize = 1;

impl TaskWeights {
    /// One `u_t = 1` per task.
    pub fn new(tasks: usize, device: &Device) -> Self {
        Self {
            u: burn::module::Param::from_tensor(Tensor::ones([tasks], device)),
        }
    }

    /// `sum_t L_t^p / (2 u_t^2) + ln(1 + u_t^2)` over the tasks present this step, with `p` the
    /// preference exponent (`p = q - 1`; `p = 1` is the standard uncertainty weighting).
    pub fn combine(&self, losses: &[(usize, Tensor<1>)], p: f64) -> Tensor<1> {
        losses
            .iter()
            .map(|(t, loss)| {
                let u2 = self.u.val().narrow(0, *t, 1).powi_scalar(2);
                let scaled = if (p - 1.0).abs() < 1e-12 {
                    loss.clone()
                } else {
                    // a zero loss would make the gradient of L^p infinite for p < 1
                    loss.clone().clamp_min(1e-8).powf_scalar(p)
                };
                scaled / u2.clone().mul_scalar(2.0) + u2.add_scalar(1.0).log()
            })
            .reduce(|a, b| a + b)
            .expect("at least one task loss")
    }

    /// Current `u_t` values.
    pub fn values(&self) -> Vec<f64> {
        let v: Vec<f32> = self
            .u
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 weights");
        v.into_iter().map(f64::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_loss_matches_the_formula_and_trains_u() {
        let device = Device::flex().autodiff();
        let w = TaskWeights::new(2, &device);
        let l0 = Tensor::<1>::from_data(TensorData::new(vec![4.0f32], [1]), &device);
        let l1 = Tensor::<1>::from_data(TensorData::new(vec![0.25f32], [1]), &device);
        // u = 1: sqrt(4)/2 + ln 2 + sqrt(0.25)/2 + ln 2
        let total = w.combine(&[(0, l0.clone()), (1, l1)], 0.5);
        let want = 1.0 + 0.25 + 2.0 * std::f32::consts::LN_2;
        assert!((total.clone().into_scalar::<f32>() - want).abs() < 1e-5);
        // d/du of L/(2u^2) + ln(1+u^2) at u = 1 is -L + 1: positive for the small loss only
        let grads = total.backward();
        let g: Vec<f32> =
            w.u.val()
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
        assert!((g[0] - (-2.0 + 1.0)).abs() < 1e-5, "{g:?}");
        assert!((g[1] - (-0.5 + 1.0)).abs() < 1e-5, "{g:?}");
        // p = 1 is the plain uncertainty weighting
        let plain = w.combine(&[(0, l0)], 1.0).into_scalar::<f32>();
        assert!((plain - (2.0 + std::f32::consts::LN_2)).abs() < 1e-5);
    }
}
