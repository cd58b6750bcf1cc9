//! Neural predictors: layers, the shared bidirectional GCN, regressors, losses.

pub mod file;
pub mod gcn;
pub mod hyper;
pub mod layers;
pub mod loss;
pub mod predictor;

pub use predictor::{BatchInput, ModelConfig, PredictorKind, Regressor};
