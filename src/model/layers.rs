//! Small building blocks whose randomness comes from our own seeded RNG.
//!
//! Burn's flex backend keeps one process-wide RNG, so initialisers and dropout drawn from it
//! would make a training run depend on what other threads did. Drawing from a ChaCha stream we
//! own keeps `same seed => same model` even when the bench trains several models at once.

use burn::module::{Module, Param};
use burn::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// `y = x W + b`, initialised like `torch.nn.Linear` (uniform in +-1/sqrt(fan_in)).
#[derive(Module, Debug)]
pub struct Dense {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl Dense {
    pub fn new(d_in: usize, d_out: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let bound = 1.0 / (d_in as f32).sqrt();
        let weight: Vec<f32> = (0..d_in * d_out)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let bias: Vec<f32> = (0..d_out)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        Self {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(weight, [d_in, d_out]),
                device,
            )),
            bias: Param::from_tensor(Tensor::from_data(TensorData::new(bias, [d_out]), device)),
        }
    }

    /// `[rows, d_in] -> [rows, d_out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weight.val()) + self.bias.val().unsqueeze_dim(0)
    }

    /// `[a, b, d_in] -> [a, b, d_out]`, as one matrix product over all rows.
    pub fn forward3(&self, x: Tensor<3>) -> Tensor<3> {
        let [a, b, d] = x.dims();
        let y = self.forward(x.reshape([a * b, d]));
        let d_out = y.dims()[1];
        y.reshape([a, b, d_out])
    }
}

/// Inverted dropout with a mask drawn from `rng`; the identity when `rng` is `None`
/// (inference) or `p` is 0.
pub fn dropout<const D: usize>(x: Tensor<D>, p: f64, rng: Option<&mut ChaCha8Rng>) -> Tensor<D> {
    let Some(rng) = rng else { return x };
    if p <= 0.0 {
        return x;
    }
    let shape = x.shape();
    let keep = 1.0 - p;
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = (0..shape.num_elements())
        .map(|_| if rng.random_bool(keep) { scale } else { 0.0 })
        .collect();
    let mask = Tensor::from_data(TensorData::new(mask, shape), &x.device());
    x * mask
}
