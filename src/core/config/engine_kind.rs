//! `kind` of an `[[engines]]` entry: a Docker engine (the default) or the manager of a Docker Swarm,
//! which needs the registry its nodes pull trial images from and may name placement constraints.

/// What is behind the address: one engine that runs containers, or the manager of a swarm that
/// places services on its nodes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EngineKind {
    #[default]
    Docker,
    /// `registry` is `host:port` of the registry the nodes pull trial images from; `constraints` are
    /// Swarm's placement constraints every trial service carries, as written (their shape is checked
    /// with the whole file, see `placement`, so an error points at the constraint itself).
    Swarm {
        registry: String,
        constraints: Vec<String>,
    },
}

impl EngineKind {
    /// `kind`, `registry` and `constraints` as an `[[engines]]` entry writes them (`None` when left
    /// out).
    pub(super) fn into_written(self) -> (Option<String>, Option<String>, Option<Vec<String>>) {
        match self {
            EngineKind::Docker => (None, None, None),
            EngineKind::Swarm {
                registry,
                constraints,
            } => (
                Some("swarm".into()),
                Some(registry),
                Some(constraints).filter(|c| !c.is_empty()),
            ),
        }
    }
}

impl EngineKind {
    /// The registry of a swarm; `None` for a Docker engine.
    pub fn registry(&self) -> Option<&str> {
        match self {
            EngineKind::Swarm { registry, .. } => Some(registry),
            EngineKind::Docker => None,
        }
    }

    /// The placement constraints of a swarm (`constraints`); none for a Docker engine.
    pub fn constraints(&self) -> &[String] {
        match self {
            EngineKind::Swarm { constraints, .. } => constraints,
            EngineKind::Docker => &[],
        }
    }
}

/// `kind`, `registry` and `constraints` as written: `registry` is required by, and only allowed
/// with, a swarm; `constraints` are only allowed with a swarm.
pub(super) fn engine_kind(
    name: &str,
    kind: Option<&str>,
    registry: Option<&str>,
    constraints: Option<&[String]>,
) -> Result<EngineKind, String> {
    let kind = kind.unwrap_or("docker");
    if kind == "docker" && constraints.is_some() {
        return Err(format!(
            "engine {name}: `constraints` apply to kind = \"swarm\" only (a Docker engine runs trials on itself; Swarm places them on nodes): remove them, or make this entry a swarm's manager with kind = \"swarm\" and `registry`"
        ));
    }
    match (kind, registry) {
        ("docker", None) => Ok(EngineKind::Docker),
        ("docker", Some(_)) => Err(format!(
            "engine {name}: `registry` applies to kind = \"swarm\" only (a Docker engine takes its images from the engine they were built on)"
        )),
        ("swarm", None) => Err(format!(
            "engine {name}: kind = \"swarm\" needs `registry = \"host:port\"`, the registry the swarm's nodes pull trial images from"
        )),
        ("swarm", Some(r)) => {
            let r = r.trim();
            if r.contains("://") {
                return Err(format!(
                    "engine {name}: registry {r:?} is host:port without a scheme, e.g. \"registry.lan:5000\""
                ));
            }
            let addr = registry_addr(r).ok_or_else(|| {
                format!(
                    "engine {name}: registry {r:?} is not host:port, e.g. \"registry.lan:5000\""
                )
            })?;
            Ok(EngineKind::Swarm {
                registry: addr,
                constraints: constraints.map(<[String]>::to_vec).unwrap_or_default(),
            })
        }
        (other, _) => Err(format!(
            "engine {name}: kind {other:?} is not known: use \"docker\" (the default) or \"swarm\""
        )),
    }
}

/// `host[:port]` (443 when left out), no scheme, path or user.
fn registry_addr(addr: &str) -> Option<String> {
    let addr = addr.trim_end_matches('/');
    if addr.is_empty() || addr.contains(['/', '@', ' ']) {
        return None;
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            port.parse::<u16>().ok().map(|_| addr.to_string())
        }
        Some(_) => None,
        None => Some(format!("{addr}:443")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use super::*;
    use crate::core::config::Config;

    fn parse(engines: &str) -> Result<Config, String> {
        let text = format!(
            "[train]\ncommand = [\"python\", \"train.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n{engines}"
        );
        Config::parse(&text, Path::new("mlops.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_swarm_is_an_engine_with_a_registry() {
        let cfg = parse(
            "[[engines]]\nname = \"cluster\"\nkind = \"swarm\"\nhost = \"unix:///run/m.sock\"\nregistry = \"10.78.0.2:5000\"\nslots = 3\n",
        )
        .unwrap();
        let e = &cfg.engines[0];
        assert_eq!(e.swarm_registry(), Some("10.78.0.2:5000"));
        assert_eq!((e.slots, e.url()), (3, "unix:///run/m.sock".to_string()));
        let text = toml::to_string(&cfg).unwrap();
        let again = Config::parse(&text, Path::new("x")).unwrap();
        assert_eq!(again.engines, cfg.engines);
        let docker =
            parse("[[engines]]\nname = \"e\"\nhost = \"local\"\nkind = \"docker\"\n").unwrap();
        assert_eq!(docker.engines[0].kind, EngineKind::Docker);
    }

    #[test]
    fn bad_swarm_entries_are_located_and_say_the_fix() {
        let cases = [
            ("kind = \"swarm\"\n", "needs `registry"),
            (
                "registry = \"r:5000\"\n",
                "applies to kind = \"swarm\" only",
            ),
            ("kind = \"k8s\"\n", "kind \"k8s\" is not known"),
            (
                "kind = \"swarm\"\nregistry = \"http://r:5000\"\n",
                "without a scheme",
            ),
            ("kind = \"swarm\"\nregistry = \"r:x\"\n", "not host:port"),
        ];
        for (extra, expect) in cases {
            let text = format!("[[engines]]\nname = \"c\"\nhost = \"local\"\n{extra}");
            let err = parse(&text).expect_err(&text);
            assert!(err.starts_with("mlops.toml:6:"), "{text}: {err}");
            assert!(err.contains(expect), "{text}: {err}");
        }
    }
}
