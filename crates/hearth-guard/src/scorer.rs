//! The neural scorer: a small sequence model over a source's recent requests.
//!
//! [`Scorer::score`] encodes the latest [`WINDOW`] requests of one source
//! with [`crate::features`] and runs [`Network`]: two 1-D convolutions
//! over the requests, pooling over time, and two heads. One head gives the
//! anomaly score (the probability that the source is not a household
//! client), the other a [`Category`] of attack. The weights come from a
//! safetensors file that `examples/train_scorer.rs` writes. The build
//! embeds `models/guard-scorer/model.safetensors`, and the model card in
//! that folder states its training data and measured quality.
//!
//! The scorer runs on the CPU. A call costs well under a millisecond
//! (`cargo bench -p hearth-guard --bench scorer`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::RequestEvent;
use crate::features::{self, FEATURES, WINDOW, Window};

/// The committed weights, relative to this file.
const BUILTIN_WEIGHTS: &[u8] = include_bytes!("../../../models/guard-scorer/model.safetensors");

/// Path of the committed weights in the repository, for messages.
const BUILTIN_PATH: &str = "models/guard-scorer/model.safetensors";

/// Remedy for weights that fail to load, appended to every error message.
const REMEDY: &str = "restore models/guard-scorer/model.safetensors from the repository or retrain it with \
     `cargo run --release -p hearth-guard --example train_scorer -- --data DIR --out FILE`";

/// Categories of traffic that the scorer distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A household client: a browser, a player, the app.
    Benign,
    /// Port, directory and vulnerability scans.
    Reconnaissance,
    /// Password, passkey or pairing-code guessing.
    BruteForce,
    /// Injection, traversal and other attempts to break in.
    Exploitation,
    /// Slow or flooding requests that tie up the server.
    DenialOfService,
    /// Authorised access used beyond a household's needs, such as copying the library.
    Abuse,
}

impl Category {
    /// Every category, in the order of the network's outputs.
    pub const ALL: [Category; 6] = [
        Category::Benign,
        Category::Reconnaissance,
        Category::BruteForce,
        Category::Exploitation,
        Category::DenialOfService,
        Category::Abuse,
    ];

    /// Returns the snake_case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Benign => "benign",
            Category::Reconnaissance => "reconnaissance",
            Category::BruteForce => "brute_force",
            Category::Exploitation => "exploitation",
            Category::DenialOfService => "denial_of_service",
            Category::Abuse => "abuse",
        }
    }

    /// Returns the position of this category in [`Category::ALL`] and in the network's outputs.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scorer's verdict on one source's recent requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    /// Probability in `[0, 1]` that the requests do not come from a household client.
    pub anomaly: f32,
    /// The category with the highest probability.
    pub category: Category,
    /// Probability of each category, in the order of [`Category::ALL`]; they sum to 1.
    pub probabilities: [f32; 6],
}

/// Failure to load the scorer's weights.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    /// The weights file could not be read.
    #[error("failed to read scorer weights {path}: {source}; {REMEDY}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a safetensors file, usually because it is truncated or corrupt.
    #[error("invalid scorer weights {origin}: not a readable safetensors file ({source}); {REMEDY}")]
    Format {
        /// The file, or a description of where the bytes came from.
        origin: String,
        /// The parser's error.
        #[source]
        source: candle_core::Error,
    },
    /// A tensor that the network needs is not in the file.
    #[error("invalid scorer weights {origin}: tensor {name} is missing; {REMEDY}")]
    MissingTensor {
        /// The file, or a description of where the bytes came from.
        origin: String,
        /// The tensor's name.
        name: String,
    },
    /// A tensor has another shape or type than the network needs, as when
    /// the file was trained for another feature layout.
    #[error("invalid scorer weights {origin}: tensor {name} is {found}, expected {expected}; {REMEDY}")]
    Mismatch {
        /// The file, or a description of where the bytes came from.
        origin: String,
        /// The tensor's name.
        name: String,
        /// Its type and shape in the file.
        found: String,
        /// The type and shape the network needs.
        expected: String,
    },
    /// The tensors could not be assembled into the network.
    #[error("invalid scorer weights {origin}: failed to build the network ({source}); {REMEDY}")]
    Build {
        /// The file, or a description of where the bytes came from.
        origin: String,
        /// Candle's error.
        #[source]
        source: candle_core::Error,
    },
}

/// The anomaly scorer with its weights loaded.
#[derive(Debug, Clone)]
pub struct Scorer {
    network: Network,
}

impl Scorer {
    /// Loads weights from the bytes of a safetensors file.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Scorer, ScorerError> {
        Scorer::parse(bytes, "(safetensors bytes in memory)")
    }

    /// Loads weights from the safetensors file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Scorer, ScorerError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ScorerError::Read { path: path.to_owned(), source })?;
        Scorer::parse(&bytes, &path.display().to_string())
    }

    /// Returns the scorer with the weights committed at `models/guard-scorer/model.safetensors`.
    pub fn builtin() -> Scorer {
        // The `builtin_weights_load` test in tests/scorer.rs loads these
        // exact bytes, so a failure here means that test fails as well.
        Scorer::parse(BUILTIN_WEIGHTS, BUILTIN_PATH).expect("the committed scorer weights load, as tests/scorer.rs checks")
    }

    /// Scores the latest [`WINDOW`] requests of one source, oldest first.
    /// One request is enough; with none, the score is that of an empty
    /// window, which carries no evidence either way.
    pub fn score(&self, recent: &[RequestEvent]) -> Score {
        let mut window: Window = [[0.0; FEATURES]; WINDOW];
        features::encode_window(recent, &mut window);
        self.score_window(&window)
    }

    /// Scores a window that [`features::encode_window`] encoded.
    pub fn score_window(&self, window: &Window) -> Score {
        // The network's operations only fail on shapes, which are fixed
        // here, so an error is a bug in this file.
        let (anomaly_logit, category_logits) =
            self.network.logits_one(window).expect("the scorer's fixed-shape forward pass succeeds on the CPU");
        score_from_logits(anomaly_logit, category_logits)
    }

    fn parse(bytes: &[u8], origin: &str) -> Result<Scorer, ScorerError> {
        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load_buffer(bytes, &device)
            .map_err(|source| ScorerError::Format { origin: origin.to_owned(), source })?;
        check_tensors(&tensors, origin)?;

        let builder = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let network = Network::new(builder).map_err(|source| ScorerError::Build { origin: origin.to_owned(), source })?;
        Ok(Scorer { network })
    }
}

/// Turns the network's two outputs into a [`Score`].
fn score_from_logits(anomaly_logit: f32, category_logits: [f32; 6]) -> Score {
    let anomaly = 1.0 / (1.0 + (-anomaly_logit).exp());

    let max = category_logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probabilities = category_logits.map(|logit| (logit - max).exp());
    let total: f32 = probabilities.iter().sum();
    for probability in &mut probabilities {
        *probability /= total;
    }

    let mut best = 0;
    for (i, probability) in probabilities.iter().enumerate() {
        if *probability > probabilities[best] {
            best = i;
        }
    }
    Score { anomaly, category: Category::ALL[best], probabilities }
}

/// Checks that every tensor [`Network`] needs is present, in f32 and of its shape.
fn check_tensors(tensors: &HashMap<String, Tensor>, origin: &str) -> Result<(), ScorerError> {
    for (name, shape) in Network::tensor_shapes() {
        let Some(tensor) = tensors.get(&name) else {
            return Err(ScorerError::MissingTensor { origin: origin.to_owned(), name });
        };
        if tensor.dtype() != DType::F32 || tensor.dims() != shape.as_slice() {
            return Err(ScorerError::Mismatch {
                origin: origin.to_owned(),
                name,
                found: format!("{:?} {:?}", tensor.dtype(), tensor.dims()),
                expected: format!("{:?} {:?}", DType::F32, shape),
            });
        }
    }
    Ok(())
}

/// Channels of both convolutions, and width of the hidden layer.
pub const CHANNELS: usize = 24;

/// Requests each convolution reads at once.
const KERNEL: usize = 3;

/// The scorer's network, public so that the training example builds the
/// same one. Input: `[batch, WINDOW, FEATURES]` windows as
/// [`features::encode_window`] writes them. Output: an anomaly logit
/// `[batch]` and category logits `[batch, 6]`.
///
/// Two convolutions over time (kernel 3, the second dilated by 2, so each
/// position covers 7 requests) with ReLU read patterns across neighbouring
/// requests. Their output, zeroed at padding rows, is pooled three ways:
/// the mean over present requests, the maximum, and the newest request's.
/// A hidden layer with ReLU feeds the two linear heads.
///
/// Each convolution is computed as the matrix product of its taps laid
/// side by side, which is how it is stored: `convN.weight` is
/// `[CHANNELS, KERNEL * inputs]`, tap-major (tap `k`, input `i` at column
/// `k * inputs + i`, tap 0 the oldest request). Candle's CPU `conv1d`
/// gives the same result but trains several times slower at this size.
#[derive(Debug, Clone)]
pub struct Network {
    conv1: Linear,
    conv2: Linear,
    hidden: Linear,
    anomaly: Linear,
    category: Linear,
}

impl Network {
    /// Creates the network's layers from `builder`, which either contains
    /// trained tensors or, for training, a `VarMap` that creates them.
    pub fn new(builder: VarBuilder) -> candle_core::Result<Network> {
        Ok(Network {
            conv1: candle_nn::linear(KERNEL * FEATURES, CHANNELS, builder.pp("conv1"))?,
            conv2: candle_nn::linear(KERNEL * CHANNELS, CHANNELS, builder.pp("conv2"))?,
            hidden: candle_nn::linear(3 * CHANNELS, CHANNELS, builder.pp("hidden"))?,
            anomaly: candle_nn::linear(CHANNELS, 1, builder.pp("anomaly"))?,
            category: candle_nn::linear(CHANNELS, Category::ALL.len(), builder.pp("category"))?,
        })
    }

    /// Returns the name and shape of every tensor, as stored in a weights file.
    pub fn tensor_shapes() -> Vec<(String, Vec<usize>)> {
        let categories = Category::ALL.len();
        [
            ("conv1.weight", vec![CHANNELS, KERNEL * FEATURES]),
            ("conv1.bias", vec![CHANNELS]),
            ("conv2.weight", vec![CHANNELS, KERNEL * CHANNELS]),
            ("conv2.bias", vec![CHANNELS]),
            ("hidden.weight", vec![CHANNELS, 3 * CHANNELS]),
            ("hidden.bias", vec![CHANNELS]),
            ("anomaly.weight", vec![1, CHANNELS]),
            ("anomaly.bias", vec![1]),
            ("category.weight", vec![categories, CHANNELS]),
            ("category.bias", vec![categories]),
        ]
        .into_iter()
        .map(|(name, shape)| (name.to_owned(), shape))
        .collect()
    }

    /// Runs the network on `windows`, `[batch, WINDOW, FEATURES]`, and
    /// returns the anomaly logits `[batch]` and category logits `[batch, 6]`.
    pub fn forward(&self, windows: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let present = windows.narrow(2, 0, 1)?;

        let convolved = self.conv1.forward(&taps(windows, 1)?)?.relu()?;
        let convolved = self.conv2.forward(&taps(&convolved, 2)?)?.relu()?;
        let convolved = convolved.broadcast_mul(&present)?;

        // ReLU outputs are non-negative, so the zeroed padding never wins the maximum.
        let count = present.sum(1)?.clamp(1f32, WINDOW as f32)?;
        let mean = convolved.sum(1)?.broadcast_div(&count)?;
        let max = convolved.max(1)?;
        let newest = convolved.narrow(1, WINDOW - 1, 1)?.squeeze(1)?;
        let pooled = Tensor::cat(&[mean, max, newest], 1)?;

        let hidden = self.hidden.forward(&pooled)?.relu()?;
        let anomaly = self.anomaly.forward(&hidden)?.squeeze(1)?;
        let category = self.category.forward(&hidden)?;
        Ok((anomaly, category))
    }

    fn logits_one(&self, window: &Window) -> candle_core::Result<(f32, [f32; 6])> {
        let input = Tensor::from_slice(window.as_flattened(), (1, WINDOW, FEATURES), &Device::Cpu)?;
        let (anomaly, category) = self.forward(&input)?;

        let anomaly = anomaly.squeeze(0)?.to_scalar::<f32>()?;
        let mut logits = [0.0f32; 6];
        logits.copy_from_slice(&category.squeeze(0)?.to_vec1::<f32>()?);
        Ok((anomaly, logits))
    }
}

/// Lays the [`KERNEL`] taps of a centred convolution with `dilation` side
/// by side: `[batch, time, inputs]` becomes `[batch, time, KERNEL * inputs]`,
/// zero beyond both ends.
fn taps(xs: &Tensor, dilation: usize) -> candle_core::Result<Tensor> {
    let time = xs.dim(1)?;
    let reach = dilation * (KERNEL - 1) / 2;
    let padded = xs.pad_with_zeros(1, reach, reach)?;
    let shifted: Vec<Tensor> = (0..KERNEL).map(|tap| padded.narrow(1, tap * dilation, time)).collect::<candle_core::Result<_>>()?;
    Tensor::cat(&shifted, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_match_serde() {
        for category in Category::ALL {
            let json = serde_json::to_string(&category).unwrap();
            assert_eq!(json, format!("\"{}\"", category.as_str()));
            assert_eq!(Category::ALL[category.index()], category);
        }
    }

    #[test]
    fn logits_become_probabilities() {
        let score = score_from_logits(0.0, [0.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(score.anomaly, 0.5);
        assert_eq!(score.category, Category::Reconnaissance);
        let total: f32 = score.probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
    }

    #[test]
    fn taps_shift_in_zeros() {
        let xs = Tensor::new(&[[[1f32], [2.], [3.], [4.]]], &Device::Cpu).unwrap();
        let near = taps(&xs, 1).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(near, [[0., 1., 2.], [1., 2., 3.], [2., 3., 4.], [3., 4., 0.]]);
        let dilated = taps(&xs, 2).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(dilated, [[0., 1., 3.], [0., 2., 4.], [1., 3., 0.], [2., 4., 0.]]);
    }

    #[test]
    fn taps_times_weight_equals_conv1d() {
        let device = Device::Cpu;
        let (inputs, outputs, time) = (5, 4, 9);
        let xs = Tensor::randn(0f32, 1., (2, time, inputs), &device).unwrap();
        let kernel = Tensor::randn(0f32, 1., (outputs, inputs, KERNEL), &device).unwrap();
        for dilation in [1, 2] {
            let padding = dilation * (KERNEL - 1) / 2;
            let expected = xs.transpose(1, 2).unwrap().conv1d(&kernel, padding, 1, dilation, 1).unwrap().transpose(1, 2).unwrap();
            let weight = kernel.transpose(1, 2).unwrap().reshape((outputs, KERNEL * inputs)).unwrap();
            let actual = taps(&xs, dilation).unwrap().broadcast_matmul(&weight.t().unwrap()).unwrap();
            let difference = (expected - actual).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(difference < 1e-4, "dilation {dilation}: {difference}");
        }
    }

    #[test]
    fn random_network_runs_on_one_request() {
        let varmap = candle_nn::VarMap::new();
        let builder = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let network = Network::new(builder).unwrap();
        let mut window: Window = [[0.0; FEATURES]; WINDOW];
        window[WINDOW - 1][0] = 1.0;
        let (anomaly, logits) = network.logits_one(&window).unwrap();
        assert!(anomaly.is_finite());
        assert!(logits.iter().all(|logit| logit.is_finite()));

        let names: Vec<String> = Network::tensor_shapes().into_iter().map(|(name, _)| name).collect();
        let mut created: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        created.sort();
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(created, expected, "tensor_shapes lists every tensor the network creates");
    }
}
