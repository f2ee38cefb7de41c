//! The `[track]` section of `mlops.toml`: where runs are recorded besides our own history.
//!
//! `[track.mlflow]` names an MLflow tracking server (`uri`, http or https) and the experiment the runs
//! go into (`experiment`, by default the project's directory name). Like `[notify]`, the checks run
//! while deserializing so that an error carries the file and line of the bad table.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Track {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow: Option<MlflowConfig>,
}

impl Track {
    pub fn is_empty(&self) -> bool {
        self.mlflow.is_none()
    }
}

/// An MLflow tracking server. Invariant (checked on load): `uri` is an absolute http(s) URL without a
/// trailing slash, and `experiment`, when given, is not blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawMlflow")]
pub struct MlflowConfig {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
}

impl MlflowConfig {
    /// The experiment runs go into: the configured one, else `project` (the project's name).
    pub fn experiment_or(&self, project: &str) -> String {
        self.experiment
            .clone()
            .unwrap_or_else(|| project.to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMlflow {
    uri: String,
    experiment: Option<String>,
}

impl TryFrom<RawMlflow> for MlflowConfig {
    type Error = String;

    fn try_from(raw: RawMlflow) -> Result<Self, String> {
        let uri = check_uri(&raw.uri)?;
        if raw
            .experiment
            .as_deref()
            .is_some_and(|e| e.trim().is_empty())
        {
            return Err("`track.mlflow.experiment` must not be empty".into());
        }
        Ok(MlflowConfig {
            uri,
            experiment: raw.experiment,
        })
    }
}

/// The tracking server's base URL, checked and without its trailing slashes.
pub fn check_uri(uri: &str) -> Result<String, String> {
    let parsed = url::Url::parse(uri)
        .map_err(|e| format!("`track.mlflow.uri` \"{uri}\" is not a URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host_str().is_some() => {
            Ok(uri.trim_end_matches('/').to_string())
        }
        other => Err(format!(
            "`track.mlflow.uri` \"{uri}\" must be http:// or https://, not {other}://"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Track, String> {
        toml::from_str::<Track>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn mlflow_uri_and_experiment() {
        let t =
            parse("[mlflow]\nuri = \"http://127.0.0.1:5000/\"\nexperiment = \"digits\"\n").unwrap();
        let m = t.mlflow.unwrap();
        assert_eq!(m.uri, "http://127.0.0.1:5000");
        assert_eq!(m.experiment_or("proj"), "digits");
        let t = parse("[mlflow]\nuri = \"https://mlflow.example\"\n").unwrap();
        assert_eq!(t.mlflow.unwrap().experiment_or("proj"), "proj");
    }

    #[test]
    fn bad_mlflow_settings_are_refused() {
        let e = parse("[mlflow]\nuri = \"ftp://x\"\n").unwrap_err();
        assert!(e.contains("must be http:// or https://, not ftp://"), "{e}");
        let e = parse("[mlflow]\nuri = \"not a url\"\n").unwrap_err();
        assert!(e.contains("is not a URL"), "{e}");
        let e = parse("[mlflow]\nuri = \"http://x\"\nexperiment = \" \"\n").unwrap_err();
        assert!(e.contains("must not be empty"), "{e}");
        let e = parse("[mlflow]\nurl = \"http://x\"\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        assert!(parse("[mlflow]\n").is_err());
    }

    #[test]
    fn a_bad_uri_in_mlops_toml_is_located() {
        let text = "[train]\ncommand = [\"python3\", \"t.py\"]\n\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n\n[track.mlflow]\nuri = \"file:///tmp/mlruns\"\n";
        let e = crate::core::config::Config::parse(text, std::path::Path::new("p/mlops.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p/mlops.toml:8:1: `track.mlflow.uri`"), "{e}");
        assert!(
            e.contains("must be http:// or https://, not file://"),
            "{e}"
        );
        let good = text.replace("file:///tmp/mlruns", "http://127.0.0.1:5000");
        let c = crate::core::config::Config::parse(&good, std::path::Path::new("p/mlops.toml"))
            .unwrap();
        assert_eq!(c.track.mlflow.unwrap().uri, "http://127.0.0.1:5000");
    }
}
