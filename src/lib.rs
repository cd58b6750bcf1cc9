//! HyperNAS: a few-shot neural-architecture performance predictor (global encoding of the whole
//! network through a shared bidirectional GCN) and the tools around it: search spaces,
//! benchmark data, training, evaluation metrics and reports.

pub mod bench;
pub mod cli;
pub mod data;
pub mod encoding;
pub mod metrics;
pub mod model;
pub mod report;
pub mod search;
pub mod space;
pub mod target;
pub mod train;
