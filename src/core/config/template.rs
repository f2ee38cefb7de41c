//! The commented `mlops.toml` that `mlops-tui init` writes, shaped by what the detector found.

use crate::core::detect::{ModelKind, Verdict};

/// What the project brings for its environment, besides its code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Environment {
    /// A `Dockerfile` at the project root.
    pub dockerfile: bool,
    /// A `requirements.txt` at the project root.
    pub requirements: bool,
}

/// A complete, valid file; the search space suits the detected kind of model.
pub fn for_verdict(verdict: &Verdict) -> String {
    with_environment(verdict, Environment::default())
}

/// [`for_verdict`] for a project that may have its own `Dockerfile` (then the image is built from it)
/// or `requirements.txt` (then it is installed on top of the detected profile).
pub fn with_environment(verdict: &Verdict, env: Environment) -> String {
    let image = image_part(verdict, env);
    let space = match verdict.kind {
        ModelKind::Cnn => {
            "conv_layers = { start = 1, max = 4, step = 1 }     # more convolution layers\n\
             filters = { start = 8, max = 64, factor = 2 }      # more filters per layer\n\
             epochs = { start = 3, max = 12, step = 3 }"
        }
        ModelKind::Ann => {
            "hidden_units = { start = 16, max = 256, factor = 2 }  # wider hidden layers\n\
             epochs = { start = 5, max = 40, step = 5 }"
        }
        ModelKind::Classic => {
            "k = { values = [15, 9, 5, 3, 1] }   # e.g. neighbours; list values in the order to try"
        }
    };
    format!(
        r#"# mlops.toml: how mlops-tui trains this project (like a Jenkinsfile, but for the training loop).
# Every key is documented in mlops-tui's README.

[train]
command = ["python3", "train.py"]   # run in /workspace (this commit's files, read-only)
{image}

[metric]
name = "accuracy"        # printed by the script as `accuracy=0.91`, `accuracy: 0.91` or JSON
direction = "maximize"   # or "minimize" (e.g. for a loss)
target = 0.95

[budget]
max_iterations = 5       # iterations per run, the first included
iteration_timeout = "30m"
metric_timeout = "5m"    # no metric line for this long: the iteration fails
max_failures = 2

[resources]
memory = "2g"
cpus = 1.0
pids = 256

[tweak]
strategy = "grow"        # advance every dimension one step per iteration, never repeating a point
apply = "ask"            # "ask": approve each proposal in the dashboard; "auto": apply at once

[tweak.space]
# The script receives these as /mlops/params.json and in $MLOPS_PARAMS.
{space}

[params]                 # fixed parameters, passed unchanged to every iteration
"#
    )
}

/// The `image =` line of `[train]` with the comments that explain it.
fn image_part(verdict: &Verdict, env: Environment) -> String {
    let detected = format!("# detected: {}", verdict.summary());
    if env.dockerfile {
        return format!(
            "{detected}\n\
             # The project's Dockerfile is built (with this commit's files as context) and trained in;\n\
             # it may start `FROM mlops-tui/{}`. Use image = \"auto\" for the built-in image instead.\n\
             image = {{ dockerfile = \"Dockerfile\" }}",
            verdict.profile()
        );
    }
    let mut text = format!("image = \"auto\"            {detected}");
    if env.requirements {
        text.push_str(&format!(
            "\n# requirements.txt is installed with pip on top of image {} (built once, reused until it changes).",
            verdict.profile()
        ));
    }
    text
}

#[cfg(test)]
mod environment_tests {
    use std::path::{Path, PathBuf};

    use super::{Environment, with_environment};
    use crate::core::config::{Config, ImageSetting};
    use crate::core::detect::detect_sources;

    fn keras_verdict() -> crate::core::detect::Verdict {
        let src = "from keras.layers import Conv2D\nm.add(Conv2D(8, 3))\n";
        detect_sources(
            Path::new("p"),
            &[(PathBuf::from("train.py"), src.to_owned())],
        )
        .unwrap()
    }

    #[test]
    fn a_dockerfile_becomes_the_image() {
        let env = Environment {
            dockerfile: true,
            requirements: false,
        };
        let text = with_environment(&keras_verdict(), env);
        let config = Config::parse(&text, Path::new("mlops.toml")).unwrap();
        assert_eq!(
            config.train.image,
            ImageSetting::Dockerfile("Dockerfile".into())
        );
        assert!(
            text.contains("# The project's Dockerfile is built"),
            "{text}"
        );
        assert!(text.contains("FROM mlops-tui/keras"), "{text}");
    }

    #[test]
    fn requirements_are_noted_on_top_of_the_detected_profile() {
        let env = Environment {
            dockerfile: false,
            requirements: true,
        };
        let text = with_environment(&keras_verdict(), env);
        let config = Config::parse(&text, Path::new("mlops.toml")).unwrap();
        assert_eq!(config.train.image, ImageSetting::Auto);
        assert!(
            text.contains("# requirements.txt is installed with pip on top of image keras"),
            "{text}"
        );
        let plain = with_environment(&keras_verdict(), Environment::default());
        assert!(!plain.contains("requirements.txt"), "{plain}");
        assert!(plain.contains("→ image keras"), "{plain}");
    }
}
