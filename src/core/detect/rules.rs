//! What a fully qualified Python symbol says about the model: the table of layers, architectures and
//! estimators that count as evidence.
//!
//! Only model-defining symbols are here. Data helpers (`sklearn.datasets`, `train_test_split`,
//! `torchvision.datasets`, optimisers, losses) deliberately classify as nothing, so that a project
//! that borrows scikit-learn's `load_digits` for a torch CNN stays a torch CNN.

use super::{Framework, ModelKind};

/// How much a kind of evidence is trusted when several frameworks show the same model kind. A layer
/// class of a deep-learning framework names the model outright; a scikit-learn estimator is almost
/// as direct; the numpy network is inferred from a combination of weaker signals.
pub(super) const STRENGTH_LAYER: u8 = 3;
pub(super) const STRENGTH_ESTIMATOR: u8 = 2;
pub(super) const STRENGTH_HEURISTIC: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rule {
    pub kind: ModelKind,
    pub framework: Framework,
    pub meaning: &'static str,
    pub strength: u8,
}

/// Numpy (and scipy) functions that are parts of a hand-written network, not a network by themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumpyRole {
    MatrixProduct,
    Activation,
}

const TORCH_CONV: [&str; 12] = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
];
const TORCH_DENSE: [&str; 3] = ["Linear", "LazyLinear", "Bilinear"];
const TORCH_SEQUENCE: [&str; 9] = [
    "RNN",
    "LSTM",
    "GRU",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "Transformer",
    "TransformerEncoder",
    "MultiheadAttention",
];
const TORCH_FUNCTIONAL_CONV: [&str; 6] = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
];

/// Lower-case prefixes of the convolutional constructors in `torchvision.models` (and its
/// `detection` / `segmentation` submodules). Vision transformers (`vit_*`, `swin_*`) are left out.
const TORCHVISION_CNN: [&str; 22] = [
    "resnet",
    "resnext",
    "wide_resnet",
    "vgg",
    "alexnet",
    "densenet",
    "mobilenet",
    "efficientnet",
    "squeezenet",
    "googlenet",
    "inception",
    "shufflenet",
    "mnasnet",
    "regnet",
    "convnext",
    "fasterrcnn",
    "maskrcnn",
    "keypointrcnn",
    "retinanet",
    "ssd",
    "fcn_",
    "deeplabv3",
];

/// Keras convolution layers, including the Keras 1 names (`Convolution2D`, `AtrousConvolution2D`)
/// that older tutorials still use.
const KERAS_CONV: [&str; 20] = [
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Convolution1D",
    "Convolution2D",
    "Convolution3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "Convolution2DTranspose",
    "Deconvolution2D",
    "AtrousConvolution2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "SeparableConvolution2D",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
];
const KERAS_SEQUENCE: [&str; 6] = [
    "LSTM",
    "GRU",
    "SimpleRNN",
    "CuDNNLSTM",
    "CuDNNGRU",
    "MultiHeadAttention",
];
const KERAS_APPLICATION_CNN: [&str; 10] = [
    "ResNet",
    "VGG",
    "MobileNet",
    "EfficientNet",
    "Inception",
    "Xception",
    "DenseNet",
    "NASNet",
    "ConvNeXt",
    "RegNet",
];
/// Where Keras lives: standalone, bundled with TensorFlow, or the TF 2.16+ compatibility package.
const KERAS_ROOTS: [&str; 5] = [
    "keras.",
    "tensorflow.keras.",
    "tensorflow.compat.v1.keras.",
    "tensorflow.python.keras.",
    "tf_keras.",
];
/// TensorFlow 1 style graph ops, reported as Keras because both need the same (non built-in) image.
const TF_OP_ROOTS: [&str; 3] = [
    "tensorflow.",
    "tensorflow.compat.v1.",
    "tensorflow.compat.v2.",
];

/// scikit-learn submodules whose public classes are predictive estimators.
const SKLEARN_ESTIMATOR_MODULES: [(&str, &str); 14] = [
    ("neighbors", "nearest-neighbours estimator"),
    ("svm", "support vector machine"),
    ("ensemble", "ensemble estimator"),
    ("linear_model", "linear model"),
    ("tree", "decision tree"),
    ("naive_bayes", "naive Bayes classifier"),
    ("discriminant_analysis", "discriminant analysis classifier"),
    ("gaussian_process", "Gaussian process estimator"),
    ("kernel_ridge", "kernel ridge regression"),
    ("cluster", "clustering estimator"),
    ("mixture", "mixture model"),
    ("semi_supervised", "semi-supervised estimator"),
    ("isotonic", "isotonic regression"),
    ("multiclass", "multiclass estimator"),
];
/// Public classes of those modules that are data structures or transformers, not models.
const SKLEARN_NOT_ESTIMATORS: [&str; 5] = [
    "KDTree",
    "BallTree",
    "NeighborhoodComponentsAnalysis",
    "KNeighborsTransformer",
    "RadiusNeighborsTransformer",
];

const CONV_LAYER: &str = "convolution layer";
const DENSE_LAYER: &str = "dense (fully connected) layer";
const SEQUENCE_LAYER: &str = "recurrent/attention layer";
const PRETRAINED_CNN: &str = "convolutional architecture";

fn rule(kind: ModelKind, framework: Framework, meaning: &'static str, strength: u8) -> Rule {
    Rule {
        kind,
        framework,
        meaning,
        strength,
    }
}

/// `fqn` is a dotted path as resolved through the file's imports, e.g. `torch.nn.Conv2d`.
pub(super) fn classify(fqn: &str) -> Option<Rule> {
    let last = fqn.rsplit('.').next().unwrap_or(fqn);
    if let Some(rest) = fqn.strip_prefix("torch.nn.") {
        return torch_nn(rest, last);
    }
    if fqn.starts_with("torchvision.models.") {
        let lower = last.to_ascii_lowercase();
        return (last == lower && TORCHVISION_CNN.iter().any(|p| lower.starts_with(p))).then(
            || {
                rule(
                    ModelKind::Cnn,
                    Framework::Torch,
                    PRETRAINED_CNN,
                    STRENGTH_LAYER,
                )
            },
        );
    }
    if let Some(rest) = KERAS_ROOTS.iter().find_map(|r| fqn.strip_prefix(r)) {
        return keras(rest, last);
    }
    if let Some(rest) = TF_OP_ROOTS.iter().rev().find_map(|r| fqn.strip_prefix(r)) {
        return tensorflow_op(rest);
    }
    if let Some(rest) = fqn.strip_prefix("sklearn.") {
        return sklearn(rest, last);
    }
    None
}

fn torch_nn(rest: &str, last: &str) -> Option<Rule> {
    let layer = |kind, meaning| Some(rule(kind, Framework::Torch, meaning, STRENGTH_LAYER));
    if rest.starts_with("functional.") {
        return if TORCH_FUNCTIONAL_CONV.contains(&last) {
            layer(ModelKind::Cnn, "convolution op")
        } else if last == "linear" || last == "bilinear" {
            layer(ModelKind::Ann, "linear (fully connected) op")
        } else {
            None
        };
    }
    if TORCH_CONV.contains(&last) {
        layer(ModelKind::Cnn, CONV_LAYER)
    } else if TORCH_DENSE.contains(&last) {
        layer(ModelKind::Ann, DENSE_LAYER)
    } else if TORCH_SEQUENCE.contains(&last) {
        layer(ModelKind::Ann, SEQUENCE_LAYER)
    } else {
        None
    }
}

/// `rest` is the path below the Keras root; layers may sit in Keras 1/2 submodules such as
/// `layers.convolutional.Conv2D` or `layers.core.Dense`.
fn keras(rest: &str, last: &str) -> Option<Rule> {
    let layer = |kind, meaning| Some(rule(kind, Framework::Keras, meaning, STRENGTH_LAYER));
    if rest.starts_with("layers.") {
        if KERAS_CONV.contains(&last) {
            return layer(ModelKind::Cnn, CONV_LAYER);
        }
        if last == "Dense" {
            return layer(ModelKind::Ann, DENSE_LAYER);
        }
        if KERAS_SEQUENCE.contains(&last) {
            return layer(ModelKind::Ann, SEQUENCE_LAYER);
        }
        return None;
    }
    if rest.starts_with("applications.")
        && KERAS_APPLICATION_CNN.iter().any(|p| last.starts_with(p))
    {
        return layer(ModelKind::Cnn, PRETRAINED_CNN);
    }
    None
}

fn tensorflow_op(rest: &str) -> Option<Rule> {
    let op = |kind, meaning| Some(rule(kind, Framework::Keras, meaning, STRENGTH_LAYER));
    match rest {
        "nn.conv1d"
        | "nn.conv2d"
        | "nn.conv3d"
        | "nn.conv2d_transpose"
        | "nn.depthwise_conv2d"
        | "layers.conv1d"
        | "layers.conv2d"
        | "layers.conv3d" => op(ModelKind::Cnn, "TensorFlow convolution op"),
        "layers.dense" => op(ModelKind::Ann, "TensorFlow dense layer"),
        _ => None,
    }
}

fn sklearn(rest: &str, last: &str) -> Option<Rule> {
    let module = rest.split('.').next().unwrap_or(rest);
    let is_class = last.starts_with(|c: char| c.is_ascii_uppercase()) && rest.contains('.');
    if !is_class || SKLEARN_NOT_ESTIMATORS.contains(&last) {
        return None;
    }
    if module == "neural_network" {
        return (last.starts_with("MLP") || last == "BernoulliRBM").then(|| {
            rule(
                ModelKind::Ann,
                Framework::Sklearn,
                "scikit-learn multi-layer perceptron",
                STRENGTH_ESTIMATOR,
            )
        });
    }
    SKLEARN_ESTIMATOR_MODULES
        .iter()
        .find(|(m, _)| *m == module)
        .map(|(_, meaning)| {
            rule(
                ModelKind::Classic,
                Framework::Sklearn,
                meaning,
                STRENGTH_ESTIMATOR,
            )
        })
}

pub(super) fn numpy_role(fqn: &str) -> Option<NumpyRole> {
    match fqn {
        "numpy.dot" | "numpy.matmul" | "numpy.inner" | "numpy.tensordot" => {
            Some(NumpyRole::MatrixProduct)
        }
        "numpy.tanh" | "scipy.special.expit" | "scipy.special.softmax" => {
            Some(NumpyRole::Activation)
        }
        _ => None,
    }
}

/// Whether a function name defined by the project reads as an activation function (or its
/// derivative): `sigmoid`, `relu_prime`, `softmax`, `d_tanh`, `activation`.
pub(super) fn is_activation_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "sigmoid",
        "relu",
        "softmax",
        "tanh",
        "softplus",
        "activation",
    ]
    .iter()
    .any(|a| lower.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(fqn: &str) -> Option<(ModelKind, Framework)> {
        classify(fqn).map(|r| (r.kind, r.framework))
    }

    #[test]
    fn table() {
        use Framework::*;
        use ModelKind::*;
        let cases = [
            ("torch.nn.Conv2d", Some((Cnn, Torch))),
            ("torch.nn.modules.conv.Conv1d", Some((Cnn, Torch))),
            ("torch.nn.functional.conv2d", Some((Cnn, Torch))),
            ("torch.nn.Linear", Some((Ann, Torch))),
            ("torch.nn.LSTM", Some((Ann, Torch))),
            ("torch.nn.ReLU", None),
            ("torch.nn.Module", None),
            ("torchvision.models.resnet18", Some((Cnn, Torch))),
            ("torchvision.models.vit_b_16", None),
            ("torchvision.models.ResNet18_Weights", None),
            ("keras.layers.Conv2D", Some((Cnn, Keras))),
            (
                "keras.layers.convolutional.Convolution2D",
                Some((Cnn, Keras)),
            ),
            ("tensorflow.keras.layers.Dense", Some((Ann, Keras))),
            ("keras.layers.MaxPooling2D", None),
            ("keras.models.Sequential", None),
            ("tensorflow.keras.applications.ResNet50", Some((Cnn, Keras))),
            ("tensorflow.nn.conv2d", Some((Cnn, Keras))),
            ("tensorflow.compat.v1.layers.dense", Some((Ann, Keras))),
            (
                "sklearn.neighbors.KNeighborsClassifier",
                Some((Classic, Sklearn)),
            ),
            ("sklearn.svm.SVC", Some((Classic, Sklearn))),
            (
                "sklearn.ensemble._forest.RandomForestClassifier",
                Some((Classic, Sklearn)),
            ),
            ("sklearn.neural_network.MLPClassifier", Some((Ann, Sklearn))),
            ("sklearn.datasets.load_digits", None),
            ("sklearn.model_selection.train_test_split", None),
            ("sklearn.preprocessing.StandardScaler", None),
            ("sklearn.neighbors.KDTree", None),
            ("sklearn.svm", None),
            ("numpy.dot", None),
        ];
        for (fqn, want) in cases {
            assert_eq!(kind(fqn), want, "{fqn}");
        }
    }

    #[test]
    fn activation_names() {
        assert!(is_activation_name("sigmoid_derivative"));
        assert!(is_activation_name("ReLU"));
        assert!(!is_activation_name("forward"));
    }
}
