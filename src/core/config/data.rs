//! `[data]`: host directories (data sets, caches) mounted read-only into every training container,
//! since real training reads data that is not in git. Each entry is
//! `name = { host = "~/datasets/digits", path = "/data/digits" }`.
//!
//! What can be said from the text alone is checked while loading (absolute targets that shadow
//! nothing the pipeline mounts itself); whether the host path exists, is safe to share and lies under
//! a directory the operator allows (in the operator's own configuration, never the repository's) is
//! checked at the start of a run, before any container, through [`Config::check_data_hosts`], with
//! the facts read by the caller.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Violation};

/// One read-only mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataMount {
    /// The directory (or file) on the host: absolute, or `~/…` for the operator's home.
    pub host: String,
    /// Where the container sees it: an absolute path outside `/workspace` and `/mlops`.
    pub path: String,
}

/// Container paths the pipeline mounts itself: a data mount may neither hide them nor lie inside them.
const RESERVED: [&str; 2] = ["/workspace", "/mlops"];

/// True when `a` is `b` or lies under it, comparing whole path components.
fn within(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('/'), b.trim_end_matches('/'));
    a == b || b.is_empty() || a.strip_prefix(b).is_some_and(|rest| rest.starts_with('/'))
}

/// The error for a target, if it cannot be used.
fn target_problem(name: &str, target: &str) -> Option<String> {
    if !target.starts_with('/') {
        return Some(format!(
            "[data] {name}: path \"{target}\" must be absolute, e.g. \"/data/{name}\""
        ));
    }
    if target.split('/').any(|c| c == "..") {
        return Some(format!(
            "[data] {name}: path \"{target}\" must not contain `..`"
        ));
    }
    let clash = RESERVED
        .iter()
        .find(|r| within(target, r) || within(r, target))?;
    Some(format!(
        "[data] {name}: path \"{target}\" would shadow {clash}, which mlops-tui mounts itself; \
         mount it elsewhere, e.g. \"/data/{name}\""
    ))
}

impl Config {
    /// The text-only checks of `[data]`: targets are absolute, distinct, and clear of `/workspace`
    /// and `/mlops`; hosts are absolute or start with `~/`.
    pub(super) fn check_data(&self) -> Result<(), Violation> {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (name, m) in &self.data {
            let key = |k: &str| Violation::at(&["data", name.as_str(), k], String::new());
            if let Some(message) = target_problem(name, &m.path) {
                return Err(Violation {
                    message,
                    ..key("path")
                });
            }
            if let Some((other, _)) = seen
                .iter()
                .find(|(_, p)| within(&m.path, p) || within(p, &m.path))
            {
                let message = format!(
                    "[data] {name}: path \"{}\" overlaps the path of [data] {other}",
                    m.path
                );
                return Err(Violation {
                    message,
                    ..key("path")
                });
            }
            seen.push((name, &m.path));
            if !(m.host.starts_with('/') || m.host.starts_with("~/")) {
                let message = format!(
                    "[data] {name}: host \"{}\" must be an absolute path or start with `~/`",
                    m.host
                );
                return Err(Violation {
                    message,
                    ..key("host")
                });
            }
        }
        Ok(())
    }

    /// Checks every `[data]` host path with `check` (which reads the host: existence, the Docker
    /// socket), and locates the first problem at the entry's `host` key in `text` (the file at
    /// `path`), e.g. `mlops.toml:12:1: [data] digits: /home/x/datasets/digits does not exist`.
    pub fn check_data_hosts(
        &self,
        text: &str,
        path: &Path,
        mut check: impl FnMut(&DataMount) -> Result<(), String>,
    ) -> Result<(), ConfigError> {
        for (name, m) in &self.data {
            if let Err(why) = check(m) {
                let v = Violation::at(&["data", name, "host"], format!("[data] {name}: {why}"));
                return Err(v.locate(text, path));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(data: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"accuracy\"\n\
             target = 0.9\n[data]\n{data}"
        );
        Config::parse(&text, Path::new("mlops.toml"))
    }

    #[test]
    fn a_mount_is_read() {
        let c =
            parse("digits = { host = \"~/datasets/digits\", path = \"/data/digits\" }\n").unwrap();
        assert_eq!(c.data["digits"].path, "/data/digits");
        assert_eq!(c.data["digits"].host, "~/datasets/digits");
    }

    #[test]
    fn targets_that_shadow_the_pipeline_are_refused_at_their_line() {
        for (target, what) in [
            ("/workspace", "/workspace"),
            ("/workspace/data", "/workspace"),
            ("/mlops/x", "/mlops"),
            ("/", "/workspace"),
        ] {
            let e = parse(&format!("d = {{ host = \"/srv\", path = \"{target}\" }}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("mlops.toml:7:"), "{e}");
            assert!(e.contains(&format!("would shadow {what}")), "{e}");
        }
        let e = parse("d = { host = \"/srv\", path = \"data\" }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be absolute"), "{e}");
        let e = parse("d = { host = \"srv\", path = \"/data\" }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("host \"srv\" must be an absolute path"), "{e}");
        let e = parse(
            "a = { host = \"/srv\", path = \"/data\" }\nb = { host = \"/srv\", path = \"/data/b\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("mlops.toml:8:"), "{e}");
        assert!(e.contains("overlaps the path of [data] a"), "{e}");
    }

    #[test]
    fn a_host_problem_is_located_at_its_entry() {
        let text = "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"accuracy\"\n\
                    target = 0.9\n[data]\na = { host = \"/ok\", path = \"/a\" }\n\
                    b = { host = \"/missing\", path = \"/b\" }\n";
        let c = Config::parse(text, Path::new("mlops.toml")).unwrap();
        let e = c
            .check_data_hosts(text, Path::new("mlops.toml"), |m| {
                if m.host == "/ok" {
                    Ok(())
                } else {
                    Err(format!("{} does not exist", m.host))
                }
            })
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("mlops.toml:8:") && e.contains("[data] b: /missing does not exist"),
            "{e}"
        );
    }
}
