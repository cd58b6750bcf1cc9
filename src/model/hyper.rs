//! The shared hypernetwork: a multi-head MLP that turns GCN-refined node features into the
//! weights of the candidate network (one head per kernel size, fixed output size).

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::layers::Dense;
use crate::target::{ProxyConfig, ProxyProgram};

/// Shape of the hypernetwork and of the proxy networks it generates weights for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperConfig {
    pub proxy: ProxyConfig,
    /// Width of the trunk layer shared by all heads.
    pub trunk: usize,
    /// Kernel sizes that get a head; kernel 1 also generates the classifier.
    pub kernels: Vec<usize>,
    /// Each head emits a `[max_channels, max_channels, k, k]` block. A layer takes its
    /// `[c_out, c_in]` corner; a layer wider than the block tiles it.
    pub max_channels: usize,
}

impl HyperConfig {
    /// Defaults for a proxy: heads for 1x1 and 3x3 kernels, a block as wide as the widest
    /// stage of a three-stage network (so nothing is tiled).
    pub fn for_proxy(proxy: ProxyConfig) -> Self {
        Self {
            proxy,
            trunk: 64,
            kernels: vec![1, 3],
            max_channels: (proxy.width * 4).max(crate::target::CLASSES),
        }
    }
}

#[derive(Module, Debug)]
pub struct HyperNet {
    trunk: Dense,
    heads: Vec<Dense>,
    kernels: Vec<usize>,
    max_channels: usize,
}

impl HyperNet {
    pub fn new(hidden: usize, config: &HyperConfig, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let c = config.max_channels;
        let trunk = Dense::new(hidden, config.trunk, rng, device);
        let heads = config
            .kernels
            .iter()
            .map(|&k| Dense::new(config.trunk, c * c * k * k, rng, device))
            .collect();
        Self {
            trunk,
            heads,
            kernels: config.kernels.clone(),
            max_channels: c,
        }
    }

    /// The weights of `program` for architecture `b` of a GCN batch whose per-cell node features
    /// are `nodes` (`[B, N, H]` each): `weights[i]` for program node `i`, `None` where the layer
    /// has no weight.
    ///
    /// # Panics
    /// If the program asks for a kernel size without a head (a space/config mismatch).
    pub fn generate(
        &self,
        nodes: &[Tensor<3>],
        b: usize,
        program: &ProxyProgram,
    ) -> Vec<Option<Tensor<4>>> {
        let weighted: Vec<usize> = program.weighted_nodes().collect();
        let mut out = vec![None; program.nodes.len()];
        if weighted.is_empty() {
            return out;
        }
        let hidden = nodes[0].dims()[2];
        let rows: Vec<Tensor<2>> = weighted
            .iter()
            .map(|&i| {
                let slot = program.nodes[i].slot.expect("weighted node has a slot");
                nodes[slot.cell]
                    .clone()
                    .slice([b..b + 1, slot.node..slot.node + 1, 0..hidden])
                    .reshape([1, hidden])
            })
            .collect();
        let trunk = relu(self.trunk.forward(Tensor::cat(rows, 0)));
        for (head_index, (&k, head)) in self.kernels.iter().zip(&self.heads).enumerate() {
            let members: Vec<(usize, usize)> = weighted
                .iter()
                .enumerate()
                .filter(|&(_, &i)| self.head_of(program, i) == head_index)
                .map(|(row, &i)| (row, i))
                .collect();
            if members.is_empty() {
                continue;
            }
            let picked: Vec<Tensor<2>> = members
                .iter()
                .map(|&(row, _)| trunk.clone().narrow(0, row, 1))
                .collect();
            let blocks = head.forward(Tensor::cat(picked, 0));
            for (s, &(_, i)) in members.iter().enumerate() {
                let (_, c_out, c_in) = program.nodes[i].layer.weight_shape().expect("weighted");
                let block = blocks.clone().narrow(0, s, 1);
                out[i] = Some(self.shape_block(block, k, c_out, c_in));
            }
        }
        out
    }

    fn head_of(&self, program: &ProxyProgram, node: usize) -> usize {
        let (k, _, _) = program.nodes[node].layer.weight_shape().expect("weighted");
        self.kernels
            .iter()
            .position(|&h| h == k)
            .unwrap_or_else(|| panic!("no hypernetwork head for {k}x{k} kernels"))
    }

    /// `[1, c*c*k*k]` head output to a `[c_out, c_in, k, k]` kernel scaled by `1/sqrt(fan_in)`,
    /// so layers without a following normalisation (shortcuts, the classifier) start at the
    /// usual scale.
    fn shape_block(&self, block: Tensor<2>, k: usize, c_out: usize, c_in: usize) -> Tensor<4> {
        let c = self.max_channels;
        let mut w: Tensor<4> = block.reshape([c, c, k, k]);
        if c_out > c {
            w = w.repeat_dim(0, c_out.div_ceil(c));
        }
        if c_in > c {
            w = w.repeat_dim(1, c_in.div_ceil(c));
        }
        w.slice([0..c_out, 0..c_in])
            .mul_scalar(1.0 / ((c_in * k * k) as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Layer, Slot};
    use rand::SeedableRng;

    #[test]
    fn generated_weights_have_the_layer_shapes_and_tile_wide_layers() {
        let device = Device::flex();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let config = HyperConfig {
            proxy: ProxyConfig::default(),
            trunk: 8,
            kernels: vec![1, 3],
            max_channels: 4,
        };
        let hyper = HyperNet::new(6, &config, &mut rng, &device);
        let mut p = ProxyProgram::default();
        let img = p.push(Layer::Image, vec![], None);
        let conv = |c_in, c_out| Layer::conv_norm(3, 1, c_in, c_out);
        let a = p.push(conv(3, 4), vec![img], Some(Slot { cell: 0, node: 1 }));
        let b = p.push(conv(4, 10), vec![a], Some(Slot { cell: 1, node: 0 }));
        let g = p.push(Layer::GlobalAvgPool, vec![b], None);
        p.push(
            Layer::Linear { c_in: 10, c_out: 3 },
            vec![g],
            Some(Slot { cell: 1, node: 2 }),
        );
        let nodes: Vec<Tensor<3>> = (0..2)
            .map(|l| {
                let v: Vec<f32> = (0..2 * 3 * 6).map(|i| ((i + l * 7) as f32).sin()).collect();
                Tensor::from_data(TensorData::new(v, [2, 3, 6]), &device)
            })
            .collect();
        let w = hyper.generate(&nodes, 1, &p);
        assert_eq!(w[a].as_ref().unwrap().dims(), [4, 3, 3, 3]);
        assert_eq!(w[b].as_ref().unwrap().dims(), [10, 4, 3, 3]);
        assert_eq!(w[4].as_ref().unwrap().dims(), [3, 10, 1, 1]);
        assert!(w[0].is_none() && w[3].is_none());
        // output channel 4 of the 10-wide layer repeats channel 0 of the 4-wide block
        let wb: Vec<f32> = w[b].clone().unwrap().into_data().try_to_vec().unwrap();
        let per = 4 * 9;
        assert_eq!(wb[..per], wb[4 * per..5 * per]);
        // other architectures (rows of the batch) get other weights
        let w0 = hyper.generate(&nodes, 0, &p);
        let wa0: Vec<f32> = w0[a].clone().unwrap().into_data().try_to_vec().unwrap();
        let wa1: Vec<f32> = w[a].clone().unwrap().into_data().try_to_vec().unwrap();
        assert_ne!(wa0, wa1);
    }
}
