//! Candidate networks run with generated weights: the hypernetwork's auxiliary task.
//!
//! A space describes the (reduced, "proxy") network of an architecture as a [`ProxyProgram`]: a
//! topologically ordered list of layers, each reading the sum of its inputs. Layers that need
//! weights name the node of the global encoding whose GCN feature generates them (a [`Slot`]),
//! so the executor walks the same graphs the encoder sees. Nothing here holds a learned
//! parameter: normalisation uses the batch's own statistics without an affine part (GHN
//! practice), so every weight of the candidate network comes from the hypernetwork.

use burn::prelude::*;
use burn::tensor::activation::{gelu, log_softmax, relu, softmax};
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use serde::{Deserialize, Serialize};

use crate::data::cifar::NUM_CLASSES;

/// Size of the proxy network: the candidate network reduced so that the aux task fits a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyConfig {
    /// Channels of the first stage (stages double it at each reduction).
    pub width: usize,
    /// Searchable cells per stage (the benchmark network has more; see the README).
    pub cells_per_stage: usize,
    /// Side of the square input images (CIFAR-10 is 32; 16 averages 2x2 blocks).
    pub image_size: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            width: 8,
            cells_per_stage: 1,
            image_size: 16,
        }
    }
}

/// The node of the global encoding whose GCN feature generates a layer's weight:
/// `node` of the `cell`-th cell graph of the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slot {
    pub cell: usize,
    pub node: usize,
}

/// One layer of a proxy network. Inputs are summed before the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Layer {
    /// The image batch.
    Image,
    /// Convolution without bias, `[c_out, c_in / groups, kernel, kernel]` generated weight;
    /// "same" padding (`dilation * (kernel / 2)`). `pre_relu`/`post_norm` give the
    /// ReLU-Conv-BN pattern of NB201 and DARTS ops; `groups == c_in` is a depthwise conv.
    Conv {
        kernel: usize,
        stride: usize,
        c_in: usize,
        c_out: usize,
        groups: usize,
        dilation: usize,
        pre_relu: bool,
        post_norm: bool,
    },
    /// Max pooling; odd kernels pad to keep the size.
    MaxPool {
        kernel: usize,
        stride: usize,
    },
    Relu,
    /// The first `channels` channels (NB101 feeds a narrower node this way).
    Truncate {
        channels: usize,
    },
    /// Concatenates its inputs along the channels, in input order, instead of summing them.
    Concat,
    /// Average pooling; odd kernels pad to keep the size and do not count the padding.
    AvgPool {
        kernel: usize,
        stride: usize,
    },
    Identity,
    /// Zeros shaped like the input (a cell with no path from input to output).
    Zero,
    /// Batch normalisation (no affine) then ReLU.
    NormRelu,
    GlobalAvgPool,
    /// Classifier without bias, `[c_out, c_in]` generated weight (drawn from the kernel-1 head).
    Linear {
        c_in: usize,
        c_out: usize,
    },
    /// ViT's patch embedding: a `patch x patch` convolution with stride `patch`, no padding
    /// and no bias, `[c_out, c_in, patch, patch]` generated weight. Its output is a map of
    /// tokens: every position is a token, every channel a feature.
    PatchEmbed {
        patch: usize,
        c_in: usize,
        c_out: usize,
    },
    /// Multi-head self-attention over the positions of a map, without weights of its own: the
    /// input's `3 * heads * head_dim` channels are the queries, keys and values (in that order,
    /// each `heads` blocks of `head_dim` channels), the output is each head's
    /// `softmax(q k^T / sqrt(head_dim)) v`, heads concatenated (`heads * head_dim` channels).
    /// The generated projections are the 1x1 convolutions around it (timm's `qkv` and `proj`).
    Attention {
        heads: usize,
        head_dim: usize,
    },
    /// Layer normalisation over the channels of every position (token), no affine.
    LayerNorm,
    Gelu,
}

impl Layer {
    /// A plain convolution followed by batch normalisation (the building block most spaces
    /// start from; adjust the fields for the rest).
    pub fn conv_norm(kernel: usize, stride: usize, c_in: usize, c_out: usize) -> Layer {
        Layer::Conv {
            kernel,
            stride,
            c_in,
            c_out,
            groups: 1,
            dilation: 1,
            pre_relu: false,
            post_norm: true,
        }
    }

    /// ReLU, convolution, batch normalisation: the op pattern of NB201 and DARTS.
    pub fn relu_conv_norm(kernel: usize, stride: usize, c_in: usize, c_out: usize) -> Layer {
        Layer::conv_norm(kernel, stride, c_in, c_out).with_relu_norm(true, true)
    }

    /// This convolution with the ReLU before and the normalisation after set as given.
    pub fn with_relu_norm(mut self, relu: bool, norm: bool) -> Layer {
        if let Layer::Conv {
            pre_relu,
            post_norm,
            ..
        } = &mut self
        {
            (*pre_relu, *post_norm) = (relu, norm);
        }
        self
    }

    /// This convolution made depthwise (one group per input channel) with the given dilation.
    pub fn depthwise(mut self, dilation_rate: usize) -> Layer {
        if let Layer::Conv {
            c_in,
            groups,
            dilation,
            ..
        } = &mut self
        {
            (*groups, *dilation) = (*c_in, dilation_rate);
        }
        self
    }

    /// `(kernel, c_out, c_in per group)` of the generated weight, for layers that have one.
    pub fn weight_shape(&self) -> Option<(usize, usize, usize)> {
        match *self {
            Layer::Conv {
                kernel,
                c_in,
                c_out,
                groups,
                ..
            } => Some((kernel, c_out, c_in / groups)),
            Layer::Linear { c_in, c_out } => Some((1, c_out, c_in)),
            Layer::PatchEmbed { patch, c_in, c_out } => Some((patch, c_out, c_in)),
            _ => None,
        }
    }

    /// A short name used for exported weights (`conv3x3`, `linear`).
    pub fn kind_name(&self) -> String {
        match *self {
            Layer::Conv {
                kernel, groups: 1, ..
            } => format!("conv{kernel}x{kernel}"),
            Layer::Conv { kernel, .. } => format!("dwconv{kernel}x{kernel}"),
            Layer::MaxPool { kernel, .. } => format!("maxpool{kernel}x{kernel}"),
            Layer::Relu => "relu".into(),
            Layer::Truncate { .. } => "truncate".into(),
            Layer::Concat => "concat".into(),
            Layer::Linear { .. } => "linear".into(),
            Layer::Image => "image".into(),
            Layer::AvgPool { kernel, .. } => format!("avgpool{kernel}x{kernel}"),
            Layer::Identity => "identity".into(),
            Layer::Zero => "zero".into(),
            Layer::NormRelu => "norm_relu".into(),
            Layer::GlobalAvgPool => "global_avgpool".into(),
            Layer::PatchEmbed { patch, .. } => format!("patch_embed{patch}x{patch}"),
            Layer::Attention { heads, .. } => format!("attention_h{heads}"),
            Layer::LayerNorm => "layernorm".into(),
            Layer::Gelu => "gelu".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyNode {
    #[serde(flatten)]
    pub layer: Layer,
    /// Earlier nodes whose outputs are summed into this one.
    pub inputs: Vec<usize>,
    /// Where the weight comes from, for layers with a weight.
    pub slot: Option<Slot>,
}

/// A candidate network in execution order; the last node produces the logits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyProgram {
    pub nodes: Vec<ProxyNode>,
}

impl ProxyProgram {
    /// Append a node and return its index.
    pub fn push(&mut self, layer: Layer, inputs: Vec<usize>, slot: Option<Slot>) -> usize {
        debug_assert!(inputs.iter().all(|&i| i < self.nodes.len()));
        debug_assert_eq!(layer.weight_shape().is_some(), slot.is_some());
        self.nodes.push(ProxyNode {
            layer,
            inputs,
            slot,
        });
        self.nodes.len() - 1
    }

    /// Indices of the nodes that take a generated weight, in order.
    pub fn weighted_nodes(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.slot.is_some())
            .map(|(i, _)| i)
    }

    /// Run the network on `images` (`[B, 3, S, S]`) with `weights[i]` the generated weight of
    /// node `i` (`None` for layers without one). Returns the logits `[B, classes]`.
    ///
    /// # Panics
    /// If a weighted node has no weight or the program's shapes do not chain; both are
    /// programming errors in a space's program builder.
    pub fn forward(&self, images: Tensor<4>, weights: &[Option<Tensor<4>>]) -> Tensor<2> {
        let mut values: Vec<Option<Value>> = Vec::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            let inputs = node
                .inputs
                .iter()
                .map(|&j| values[j].clone().expect("input computed before use"));
            let input = if node.layer == Layer::Concat {
                let maps: Vec<Tensor<4>> = inputs.map(Value::map).collect();
                (!maps.is_empty()).then(|| Value::Map(Tensor::cat(maps, 1)))
            } else {
                inputs.reduce(Value::add)
            };
            let out = match (node.layer, input) {
                (Layer::Image, _) => Value::Map(images.clone()),
                (layer, Some(x)) => apply(layer, x, weights[i].as_ref()),
                (layer, None) => panic!("layer {layer:?} at node {i} has no input"),
            };
            values.push(Some(out));
        }
        match values.pop().flatten() {
            Some(Value::Vector(logits)) => logits,
            _ => panic!("a proxy program must end in a classifier"),
        }
    }
}

#[derive(Clone)]
enum Value {
    Map(Tensor<4>),
    Vector(Tensor<2>),
}

impl Value {
    fn add(self, other: Value) -> Value {
        match (self, other) {
            (Value::Map(a), Value::Map(b)) => Value::Map(a + b),
            (Value::Vector(a), Value::Vector(b)) => Value::Vector(a + b),
            _ => panic!("summing a feature map and a vector"),
        }
    }

    fn map(self) -> Tensor<4> {
        match self {
            Value::Map(x) => x,
            Value::Vector(_) => panic!("expected a feature map"),
        }
    }
}

fn apply(layer: Layer, x: Value, weight: Option<&Tensor<4>>) -> Value {
    match layer {
        Layer::Image => unreachable!("handled by the caller"),
        Layer::Conv {
            kernel,
            stride,
            groups,
            dilation,
            pre_relu,
            post_norm,
            ..
        } => {
            let mut x = x.map();
            if pre_relu {
                x = relu(x);
            }
            let pad = dilation * (kernel / 2);
            let options =
                ConvOptions::new([stride, stride], [pad, pad], [dilation, dilation], groups);
            let w = weight
                .expect("conv layer without a generated weight")
                .clone();
            let mut y = conv2d(x, w, None, options);
            if post_norm {
                y = batch_norm(y);
            }
            Value::Map(y)
        }
        Layer::AvgPool { kernel, stride } => {
            let pad = if kernel % 2 == 1 { kernel / 2 } else { 0 };
            let options = AvgPoolOptions::new([kernel, kernel])
                .with_stride([stride, stride])
                .with_padding([pad, pad])
                .with_count_include_pad(false);
            Value::Map(avg_pool2d(x.map(), options))
        }
        Layer::MaxPool { kernel, stride } => {
            let pad = if kernel % 2 == 1 { kernel / 2 } else { 0 };
            let options = MaxPoolOptions::new([kernel, kernel])
                .with_stride([stride, stride])
                .with_padding([pad, pad]);
            Value::Map(max_pool2d(x.map(), options))
        }
        Layer::Relu => Value::Map(relu(x.map())),
        Layer::Truncate { channels } => Value::Map(x.map().narrow(1, 0, channels)),
        Layer::Identity | Layer::Concat => x,
        Layer::Zero => match x {
            Value::Map(m) => Value::Map(m.zeros_like()),
            Value::Vector(v) => Value::Vector(v.zeros_like()),
        },
        Layer::NormRelu => Value::Map(relu(batch_norm(x.map()))),
        Layer::GlobalAvgPool => {
            let m = x.map();
            let [b, c, _, _] = m.dims();
            Value::Vector(m.mean_dims(&[2, 3]).reshape([b, c]))
        }
        Layer::Linear { c_in, c_out } => {
            let w = weight
                .expect("linear layer without a generated weight")
                .clone();
            let w: Tensor<2> = w.reshape([c_out, c_in]).transpose();
            match x {
                Value::Vector(v) => Value::Vector(v.matmul(w)),
                Value::Map(_) => panic!("linear layer on a feature map"),
            }
        }
        Layer::PatchEmbed { patch, .. } => {
            let w = weight
                .expect("patch embedding without a generated weight")
                .clone();
            let options = ConvOptions::new([patch, patch], [0, 0], [1, 1], 1);
            Value::Map(conv2d(x.map(), w, None, options))
        }
        Layer::Attention { heads, head_dim } => Value::Map(attention(x.map(), heads, head_dim)),
        Layer::LayerNorm => Value::Map(layer_norm(x.map())),
        Layer::Gelu => Value::Map(gelu(x.map())),
    }
}

/// Multi-head self-attention of [`Layer::Attention`] on a `[B, 3 * heads * head_dim, H, W]`
/// map whose `H * W` positions are the tokens.
pub fn attention(x: Tensor<4>, heads: usize, head_dim: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    assert_eq!(
        c,
        3 * heads * head_dim,
        "attention input is not queries, keys and values"
    );
    let tokens = h * w;
    let x: Tensor<4> = x.reshape([b, 3 * heads, head_dim, tokens]);
    // [B, heads, tokens, head_dim] queries; keys and values stay [B, heads, head_dim, tokens]
    let q = x.clone().narrow(1, 0, heads).swap_dims(2, 3);
    let k = x.clone().narrow(1, heads, heads);
    let v = x.narrow(1, 2 * heads, heads);
    let scores = q.matmul(k).mul_scalar(1.0 / (head_dim as f64).sqrt());
    // weights[i, j]: how much token i reads token j; out[d, i] = sum_j v[d, j] weights[i, j]
    let weights = softmax(scores, 3);
    v.matmul(weights.swap_dims(2, 3))
        .reshape([b, heads * head_dim, h, w])
}

/// Normalisation over the channels of each position, no learned scale or shift.
pub fn layer_norm(x: Tensor<4>) -> Tensor<4> {
    let mean = x.clone().mean_dims(&[1]);
    let centered = x - mean;
    let var = centered.clone().powi_scalar(2).mean_dims(&[1]);
    centered / var.add_scalar(NORM_EPS).sqrt()
}

const NORM_EPS: f64 = 1e-5;

/// Per-channel normalisation with the batch's statistics and no learned scale or shift.
pub fn batch_norm(x: Tensor<4>) -> Tensor<4> {
    let mean = x.clone().mean_dims(&[0, 2, 3]);
    let centered = x - mean;
    let var = centered.clone().powi_scalar(2).mean_dims(&[0, 2, 3]);
    centered / var.add_scalar(NORM_EPS).sqrt()
}

/// Mean cross-entropy of `logits` `[B, C]` against integer `labels`.
pub fn cross_entropy(logits: Tensor<2>, labels: &[i64]) -> Tensor<1> {
    let [b, c] = logits.dims();
    let mut onehot = vec![0.0f32; b * c];
    for (i, &l) in labels.iter().enumerate() {
        onehot[i * c + l as usize] = 1.0;
    }
    let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [b, c]), &logits.device());
    (log_softmax(logits, 1) * onehot)
        .sum()
        .neg()
        .div_scalar(b as f64)
}

/// How many rows of `logits` put their maximum on the label.
pub fn correct(logits: Tensor<2>, labels: &[i64]) -> usize {
    let [b, c] = logits.dims();
    let values: Vec<f32> = logits.into_data().try_to_vec::<f32>().expect("f32 logits");
    (0..b)
        .filter(|&i| {
            let row = &values[i * c..(i + 1) * c];
            let best = row
                .iter()
                .enumerate()
                .fold(0, |best, (j, &v)| if v > row[best] { j } else { best });
            best as i64 == labels[i]
        })
        .count()
}

/// The number of classes every proxy classifier outputs.
pub const CLASSES: usize = NUM_CLASSES;

/// Checks the spaces' proxy builders share.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::encoding::GlobalEncoding;

    /// Every weighted layer of `program` must take its weight from a node whose type `allowed`
    /// lists for it, and the program must run on a batch of two images (constant weights) to
    /// `[2, CLASSES]` logits.
    pub fn check_program(
        program: &ProxyProgram,
        global: &GlobalEncoding,
        vocab: &[&str],
        allowed: impl Fn(&Layer) -> &'static [&'static str],
        image_size: usize,
        label: &str,
    ) {
        for i in program.weighted_nodes() {
            let node = &program.nodes[i];
            let slot = node.slot.expect("weighted node has a slot");
            let name = vocab[global.cells[slot.cell].ops()[slot.node] as usize];
            assert!(
                allowed(&node.layer).contains(&name),
                "{label}: layer {:?} generated from a '{name}' node",
                node.layer
            );
        }
        let device = Device::flex();
        let weights: Vec<Option<Tensor<4>>> = program
            .nodes
            .iter()
            .map(|n| {
                n.layer
                    .weight_shape()
                    .map(|(k, o, i)| Tensor::ones([o, i, k, k], &device).mul_scalar(0.1))
            })
            .collect();
        let images = Tensor::<4>::ones([2, 3, image_size, image_size], &device);
        let logits = program.forward(images, &weights);
        assert_eq!(logits.dims(), [2, CLASSES], "{label}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor4(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    #[test]
    fn batch_norm_gives_zero_mean_unit_variance_per_channel() {
        let x = tensor4(
            (0..32).map(|v| (v * v) as f32 * 0.1).collect(),
            [2, 2, 2, 4],
        );
        let y: Vec<f32> = batch_norm(x).into_data().try_to_vec::<f32>().unwrap();
        for ch in 0..2 {
            let vals: Vec<f32> = (0..2)
                .flat_map(|b| y[(b * 2 + ch) * 8..(b * 2 + ch + 1) * 8].to_vec())
                .collect();
            let mean = vals.iter().sum::<f32>() / 16.0;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 16.0;
            assert!(
                mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
                "{mean} {var}"
            );
        }
    }

    #[test]
    fn cross_entropy_matches_the_formula() {
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 0.5, 0.0, 0.0, 3.0], [2, 3]),
            &Device::flex(),
        );
        let got = cross_entropy(logits.clone(), &[1, 0]).into_scalar::<f32>();
        let lse = |r: [f32; 3]| r.iter().map(|v| v.exp()).sum::<f32>().ln();
        let want = ((lse([1.0, 2.0, 0.5]) - 2.0) + (lse([0.0, 0.0, 3.0]) - 0.0)) / 2.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        assert_eq!(correct(logits, &[1, 0]), 1);
    }

    #[test]
    fn layer_norm_normalises_each_position_over_its_channels() {
        let x = tensor4(
            (0..24).map(|v| (v * v) as f32 * 0.3).collect(),
            [2, 3, 2, 2],
        );
        let y: Vec<f32> = layer_norm(x).into_data().try_to_vec::<f32>().unwrap();
        for b in 0..2 {
            for pos in 0..4 {
                let vals: Vec<f32> = (0..3).map(|ch| y[(b * 3 + ch) * 4 + pos]).collect();
                let mean = vals.iter().sum::<f32>() / 3.0;
                let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
                assert!(
                    mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
                    "{mean} {var}"
                );
            }
        }
    }

    /// Attention on 3 tokens (a 1x3 map), 2 heads of dimension 1, against the formula.
    #[test]
    fn attention_matches_a_hand_computation() {
        // channels: q (head 0, head 1), k (head 0, head 1), v (head 0, head 1); 3 tokens each
        let q = [[1.0f32, 0.0, -1.0], [0.5, 2.0, 0.0]];
        let k = [[0.0f32, 1.0, 2.0], [1.0, -1.0, 0.5]];
        let v = [[1.0f32, 2.0, 3.0], [-1.0, 0.0, 4.0]];
        let values: Vec<f32> = [q, k, v].iter().flatten().flatten().copied().collect();
        let x = tensor4(values, [1, 6, 1, 3]);
        let got: Vec<f32> = attention(x, 2, 1).into_data().try_to_vec().unwrap();
        assert_eq!(got.len(), 6);
        for head in 0..2 {
            for i in 0..3 {
                let scores: Vec<f32> = (0..3).map(|j| q[head][i] * k[head][j]).collect();
                let total: f32 = scores.iter().map(|s| s.exp()).sum();
                let want: f32 = (0..3).map(|j| scores[j].exp() / total * v[head][j]).sum();
                let at = got[head * 3 + i];
                assert!(
                    (at - want).abs() < 1e-5,
                    "head {head} token {i}: {at} vs {want}"
                );
            }
        }
    }

    #[test]
    fn a_tiny_vit_runs_with_the_shapes_it_declares() {
        // 8x8 image -> 4x4 patches (4 tokens of 4 features) -> one block -> classifier
        let (d, heads, head_dim) = (4, 2, 2);
        let inner = heads * head_dim;
        let mut p = ProxyProgram::default();
        let slot = Some(Slot { cell: 0, node: 0 });
        let linear = |c_in, c_out| Layer::conv_norm(1, 1, c_in, c_out).with_relu_norm(false, false);
        let img = p.push(Layer::Image, vec![], None);
        let embed = p.push(
            Layer::PatchEmbed {
                patch: 4,
                c_in: 3,
                c_out: d,
            },
            vec![img],
            slot,
        );
        let x = embed;
        let ln = p.push(Layer::LayerNorm, vec![x], None);
        let qkv = p.push(linear(d, 3 * inner), vec![ln], slot);
        let att = p.push(Layer::Attention { heads, head_dim }, vec![qkv], None);
        let proj = p.push(linear(inner, d), vec![att], slot);
        let x = p.push(Layer::Identity, vec![x, proj], None);
        let fc1 = p.push(linear(d, 2 * d), vec![x], slot);
        let act = p.push(Layer::Gelu, vec![fc1], None);
        let fc2 = p.push(linear(2 * d, d), vec![act], slot);
        let x = p.push(Layer::Identity, vec![x, fc2], None);
        let gap = p.push(Layer::GlobalAvgPool, vec![x], None);
        p.push(Layer::Linear { c_in: d, c_out: 3 }, vec![gap], slot);
        let device = Device::flex();
        let weights: Vec<Option<Tensor<4>>> = p
            .nodes
            .iter()
            .map(|n| {
                n.layer.weight_shape().map(|(k, o, i)| {
                    let count = o * i * k * k;
                    let v: Vec<f32> = (0..count)
                        .map(|j| ((j * 7 % 11) as f32 - 5.0) * 0.05)
                        .collect();
                    Tensor::from_data(TensorData::new(v, [o, i, k, k]), &device)
                })
            })
            .collect();
        assert_eq!(weights[embed].as_ref().unwrap().dims(), [d, 3, 4, 4]);
        let images = Tensor::<4>::ones([2, 3, 8, 8], &device);
        let logits = p.forward(images, &weights);
        assert_eq!(logits.dims(), [2, 3]);
        let values: Vec<f32> = logits.into_data().try_to_vec().unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn a_small_program_runs_and_sums_inputs() {
        // image -> conv1x1 (identity weight) ; image -> identity ; sum -> pool -> linear
        let mut p = ProxyProgram::default();
        let img = p.push(Layer::Image, vec![], None);
        let slot = Some(Slot { cell: 0, node: 0 });
        let conv = p.push(
            Layer::conv_norm(1, 1, 2, 2).with_relu_norm(false, false),
            vec![img],
            slot,
        );
        let skip = p.push(Layer::Identity, vec![img], None);
        let gap = p.push(Layer::GlobalAvgPool, vec![conv, skip], None);
        p.push(Layer::Linear { c_in: 2, c_out: 2 }, vec![gap], slot);
        let eye = tensor4(vec![1.0, 0.0, 0.0, 1.0], [2, 2, 1, 1]);
        let images = tensor4(vec![1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 3.0], [1, 2, 2, 2]);
        let weights = vec![None, Some(eye.clone()), None, None, Some(eye)];
        let logits: Vec<f32> = p
            .forward(images, &weights)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(logits, vec![2.0, 6.0]);
        assert_eq!(p.weighted_nodes().collect::<Vec<_>>(), vec![1, 4]);
    }
}
