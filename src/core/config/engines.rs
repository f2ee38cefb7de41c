//! `[[engines]]` and `--engine`: the Docker engines trials run on, each with its number of slots
//! (trials it runs at once).
//!
//! ```toml
//! [[engines]]
//! name = "gpu-box"
//! host = "tcp://10.0.0.7:2376"   # or "unix:///var/run/docker.sock", "ssh://me@gpu-box", "local"
//! tls = "~/.docker/gpu-box"      # ca.pem cert.pem key.pem (Docker's DOCKER_CERT_PATH layout)
//! slots = 2
//! ```
//!
//! A Docker Swarm is one entry too: its manager's address, `kind = "swarm"` and the registry the
//! cluster pulls trial images from. Swarm places each trial on a node; `slots` is how many trials
//! the swarm runs at once.
//!
//! ```toml
//! [[engines]]
//! name = "cluster"
//! kind = "swarm"
//! host = "tcp://manager:2376"
//! tls = "~/.docker/cluster"
//! registry = "registry.lan:5000"
//! slots = 3
//! ```
//!
//! Everything here is read from text alone; whether the engine answers and the certificates exist is
//! the adapter's business at connect time. A `tcp://` engine needs TLS with a client certificate:
//! Docker's TCP socket without it gives root on the engine's machine to anyone who reaches the port.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use super::engine_kind::EngineKind;
use super::engine_kind::engine_kind;
use super::{Config, Violation};

/// One Docker engine and how many trials it runs at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawEngine", into = "RawEngine")]
pub struct EngineSpec {
    /// Unique among the engines; shown in the console and recorded in history (where a trial ran).
    pub name: String,
    pub host: EngineHost,
    /// Trials run at once on this engine. At least 1.
    pub slots: u32,
    /// GPUs the engine has (device ids `0` up to `gpus - 1`); 0 when not declared (then they are
    /// read from the engine when a run asks for GPUs).
    pub gpus: u32,
    pub kind: EngineKind,
}

/// Where an engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineHost {
    /// A unix socket on this machine; `None` is Docker's default (`DOCKER_HOST` or
    /// `/var/run/docker.sock`). The only kind that shares this machine's disk.
    Local { socket: Option<PathBuf> },
    /// `host:port` over TCP; `tls` is always set for engines read from a config or a flag (see the
    /// module doc), `None` only for engines built in code.
    Tcp { addr: String, tls: Option<TlsFiles> },
    /// `user@host[:port]`: the engine's socket reached through ssh (keys from the ssh agent).
    Ssh { dest: String },
}

/// The client's certificate files. Paths are as written (absolute, or `~/…` for the operator's home,
/// expanded when connecting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files of a directory in Docker's `DOCKER_CERT_PATH` layout.
    pub fn in_dir(dir: &str) -> TlsFiles {
        let dir = PathBuf::from(dir);
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// Longest engine name: it is a column in the console and history.
const MAX_NAME: usize = 32;

impl EngineSpec {
    /// The engine used when none is configured: Docker's default socket, one slot.
    pub fn local_default() -> EngineSpec {
        EngineSpec {
            name: "local".into(),
            host: EngineHost::Local { socket: None },
            slots: 1,
            gpus: 0,
            kind: EngineKind::Docker,
        }
    }

    /// The registry of a swarm engine; `None` for a Docker engine.
    pub fn swarm_registry(&self) -> Option<&str> {
        self.kind.registry()
    }

    /// The placement constraints of a swarm engine; none for a Docker engine.
    pub fn swarm_constraints(&self) -> &[String] {
        self.kind.constraints()
    }

    /// True for the engine on this machine, whose disk bind mounts can use.
    pub fn is_local(&self) -> bool {
        matches!(self.host, EngineHost::Local { .. })
    }

    /// The engine's address as a URL (`tcp://10.0.0.7:2376`), for status lines and errors.
    pub fn url(&self) -> String {
        self.host.url()
    }

    /// Parses a `--engine` flag: `NAME=URL[,slots=N][,gpus=N][,tls=DIR]`, e.g.
    /// `gpu=tcp://10.0.0.7:2376,slots=2,tls=~/.docker/gpu`. The error says what is wrong and shows
    /// the expected form.
    pub fn parse_flag(flag: &str) -> Result<EngineSpec, String> {
        let fail = |why: String| {
            format!(
                "--engine {flag:?}: {why} (expected NAME=URL[,slots=N][,tls=DIR], e.g. gpu=tcp://10.0.0.7:2376,slots=2,tls=~/.docker/gpu)"
            )
        };
        let (name, rest) = flag
            .split_once('=')
            .ok_or_else(|| fail("no `=` after the name".into()))?;
        let mut parts = rest.split(',');
        let host = parts.next().unwrap_or_default().to_string();
        let mut raw = RawEngine {
            name: name.trim().to_string(),
            host,
            tls: None,
            slots: 1,
            gpus: 0,
            kind: None,
            registry: None,
            constraints: None,
        };
        for part in parts {
            match part.split_once('=') {
                Some(("slots", n)) => {
                    raw.slots = n
                        .parse()
                        .map_err(|_| fail(format!("slots {n:?} is not a whole number")))?;
                }
                Some(("gpus", n)) => {
                    raw.gpus = n
                        .parse()
                        .map_err(|_| fail(format!("gpus {n:?} is not a whole number")))?;
                }
                Some(("tls", dir)) => raw.tls = Some(RawTls::Dir(dir.to_string())),
                _ => return Err(fail(format!("unknown option {part:?}"))),
            }
        }
        EngineSpec::try_from(raw).map_err(fail)
    }
}

impl EngineHost {
    /// The host as written in a config (`unix:///…`, `tcp://h:p`, `ssh://u@h`, or `local`).
    pub fn url(&self) -> String {
        match self {
            EngineHost::Local { socket: None } => "local".into(),
            EngineHost::Local { socket: Some(path) } => format!("unix://{}", path.display()),
            EngineHost::Tcp { addr, .. } => format!("tcp://{addr}"),
            EngineHost::Ssh { dest } => format!("ssh://{dest}"),
        }
    }

    /// Reads a host URL. `tls` is only allowed (and, for `tcp://`, required) with `tcp://`.
    fn parse(url: &str, tls: Option<TlsFiles>) -> Result<EngineHost, String> {
        let url = url.trim();
        if url == "local" {
            return no_tls(EngineHost::Local { socket: None }, tls);
        }
        if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "host {url:?}: a unix socket needs an absolute path, e.g. unix:///var/run/docker.sock"
                ));
            }
            let socket = Some(PathBuf::from(path));
            return no_tls(EngineHost::Local { socket }, tls);
        }
        if let Some(addr) = url.strip_prefix("tcp://") {
            let addr = host_port(addr, 2376).map_err(|why| format!("host {url:?}: {why}"))?;
            let Some(tls) = tls else {
                return Err(format!(
                    "host {url:?} needs `tls` (a directory with ca.pem, cert.pem, key.pem): Docker's TCP socket without TLS gives root to anyone who reaches it"
                ));
            };
            return Ok(EngineHost::Tcp {
                addr,
                tls: Some(tls),
            });
        }
        if let Some(dest) = url.strip_prefix("ssh://") {
            let dest = ssh_dest(dest).map_err(|why| format!("host {url:?}: {why}"))?;
            return no_tls(EngineHost::Ssh { dest }, tls);
        }
        Err(format!(
            "host {url:?} is not an engine address: use \"local\", \"unix:///path/docker.sock\", \"tcp://host:2376\" (with tls) or \"ssh://user@host\""
        ))
    }
}

/// `host`, unless `tls` is given (only `tcp://` engines use it).
fn no_tls(host: EngineHost, tls: Option<TlsFiles>) -> Result<EngineHost, String> {
    match tls {
        None => Ok(host),
        Some(_) => Err(format!(
            "`tls` applies to tcp:// engines only, not to {:?}",
            host.url()
        )),
    }
}

/// `host[:port]` with the port defaulted; no path, no user.
fn host_port(addr: &str, default_port: u16) -> Result<String, String> {
    let addr = addr.trim_end_matches('/');
    if addr.is_empty() || addr.contains(['/', '@', ' ']) {
        return Err("expected host:port, e.g. tcp://10.0.0.7:2376".into());
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.ends_with(':') => port
            .parse::<u16>()
            .map(|_| addr.to_string())
            .map_err(|_| format!("port {port:?} is not a number from 0 to 65535")),
        Some(_) => Err("expected host:port, e.g. tcp://10.0.0.7:2376".into()),
        None => Ok(format!("{addr}:{default_port}")),
    }
}

/// `user@host` (the user is required: the engine's socket belongs to a user there). No port: bollard
/// hands `user@host` to the ssh client as the destination, which takes no port; a port other than 22
/// goes in `~/.ssh/config` (`Host gpu-box` / `Port 2222`).
fn ssh_dest(dest: &str) -> Result<String, String> {
    let dest = dest.trim_end_matches('/');
    let Some((user, host)) = dest.split_once('@') else {
        return Err("expected ssh://user@host, e.g. ssh://me@gpu-box".into());
    };
    if user.is_empty() || user.contains([':', '/', ' ']) {
        return Err(format!("user {user:?} is not a user name"));
    }
    if host.contains(':') {
        return Err(
            "an ssh:// engine takes no port: set `Port` for the host in ~/.ssh/config and write ssh://user@host"
                .into(),
        );
    }
    host_port(host, 22)?;
    Ok(dest.to_string())
}

/// A name is printable in one column and usable in container and volume names.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("an engine needs a `name`".into());
    }
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok || name.len() > MAX_NAME || name.starts_with('-') {
        return Some(format!(
            "engine name {name:?} must be 1 to {MAX_NAME} letters, digits, `-` or `_` (not starting with `-`)"
        ));
    }
    None
}

/// `tls = "dir"` or `tls = { ca, cert, key }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum RawTls {
    Dir(String),
    Files(TlsFiles),
}

/// An engine as written; turned into an [`EngineSpec`] with every check, so an error carries the
/// span of the `[[engines]]` table it is about.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    name: String,
    host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tls: Option<RawTls>,
    #[serde(default = "one")]
    slots: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registry: Option<String>,
    /// Swarm's placement constraints (`placement`); swarm engines only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    constraints: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    gpus: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn one() -> u32 {
    1
}

/// A path of a certificate file: absolute or under the operator's home.
fn check_tls_path(p: &std::path::Path) -> Result<(), String> {
    let s = p.to_string_lossy();
    if s.starts_with('/') || s.starts_with("~/") {
        Ok(())
    } else {
        Err(format!(
            "tls path {s:?} must be absolute or start with `~/`"
        ))
    }
}

impl TryFrom<RawEngine> for EngineSpec {
    type Error = String;

    fn try_from(raw: RawEngine) -> Result<Self, String> {
        if let Some(why) = name_problem(&raw.name) {
            return Err(why);
        }
        let name = raw.name;
        let tls = match raw.tls {
            None => None,
            Some(RawTls::Dir(dir)) => Some(TlsFiles::in_dir(&dir)),
            Some(RawTls::Files(files)) => Some(files),
        };
        if let Some(t) = &tls {
            for p in [&t.ca, &t.cert, &t.key] {
                check_tls_path(p).map_err(|why| format!("engine {name}: {why}"))?;
            }
        }
        let host =
            EngineHost::parse(&raw.host, tls).map_err(|why| format!("engine {name}: {why}"))?;
        if raw.slots == 0 {
            return Err(format!("engine {name}: `slots` must be at least 1"));
        }
        let kind = engine_kind(
            &name,
            raw.kind.as_deref(),
            raw.registry.as_deref(),
            raw.constraints.as_deref(),
        )?;
        Ok(EngineSpec {
            name,
            host,
            slots: raw.slots,
            gpus: raw.gpus,
            kind,
        })
    }
}

impl From<EngineSpec> for RawEngine {
    fn from(e: EngineSpec) -> RawEngine {
        let host = e.host.url();
        let tls = match e.host {
            EngineHost::Tcp { tls: Some(t), .. } => Some(RawTls::Files(t)),
            _ => None,
        };
        let (kind, registry, constraints) = e.kind.into_written();
        RawEngine {
            name: e.name,
            host,
            tls,
            slots: e.slots,
            gpus: e.gpus,
            kind,
            registry,
            constraints,
        }
    }
}

impl Config {
    /// The engines trials run on: `[[engines]]`, or the local engine when none is written.
    pub fn engines_or_local(&self) -> Vec<EngineSpec> {
        if self.engines.is_empty() {
            vec![EngineSpec::local_default()]
        } else {
            self.engines.clone()
        }
    }

    /// Engine names are unique (history and the console tell engines apart by name); a swarm's
    /// constraints have Swarm's shape.
    pub(super) fn check_engines(&self) -> Result<(), Violation> {
        self.check_constraints()?;
        for (i, e) in self.engines.iter().enumerate() {
            if self.engines[..i].iter().any(|o| o.name == e.name) {
                return Err(Violation::at(
                    &["engines", &i.to_string(), "name"],
                    format!(
                        "engine name {:?} is used twice in [[engines]]; give each engine its own name",
                        e.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Checks `--engine` flags together: unique names.
pub fn check_flags(specs: &[EngineSpec]) -> Result<(), String> {
    for (i, e) in specs.iter().enumerate() {
        if specs[..i].iter().any(|o| o.name == e.name) {
            return Err(format!(
                "--engine: the name {:?} is given twice; give each engine its own name",
                e.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use super::*;

    fn parse(engines: &str) -> Result<Config, String> {
        let text = format!(
            "[train]\ncommand = [\"python\", \"train.py\"]\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n{engines}"
        );
        Config::parse(&text, Path::new("mlops.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn engines_read_with_every_host_kind() {
        let cfg = parse(
            "[[engines]]\nname = \"here\"\nhost = \"unix:///run/d.sock\"\nslots = 2\n\
             [[engines]]\nname = \"e1\"\nhost = \"tcp://10.77.1.2:2376\"\ntls = \"/certs/client\"\n\
             [[engines]]\nname = \"e2\"\nhost = \"tcp://box\"\ntls = { ca = \"/c/ca\", cert = \"/c/c\", key = \"~/k\" }\n\
             [[engines]]\nname = \"far\"\nhost = \"ssh://me@far\"\n",
        )
        .unwrap();
        let hosts: Vec<_> = cfg
            .engines
            .iter()
            .map(|e| (e.name.as_str(), e.url(), e.slots))
            .collect();
        assert_eq!(
            hosts,
            [
                ("here", "unix:///run/d.sock".to_string(), 2),
                ("e1", "tcp://10.77.1.2:2376".to_string(), 1),
                ("e2", "tcp://box:2376".to_string(), 1),
                ("far", "ssh://me@far".to_string(), 1),
            ]
        );
        let EngineHost::Tcp { tls: Some(t), .. } = &cfg.engines[1].host else {
            panic!("tcp with tls")
        };
        assert_eq!(t.key, PathBuf::from("/certs/client/key.pem"));
    }

    #[test]
    fn no_engines_means_the_local_one() {
        let cfg = parse("").unwrap();
        assert!(cfg.engines.is_empty());
        assert_eq!(cfg.engines_or_local(), vec![EngineSpec::local_default()]);
    }

    #[test]
    fn bad_engines_are_located_and_say_the_fix() {
        let cases = [
            (
                "[[engines]]\nname = \"e1\"\nhost = \"tcp://h:2376\"\n",
                "needs `tls`",
            ),
            (
                "[[engines]]\nname = \"e1\"\nhost = \"http://h\"\n",
                "not an engine address",
            ),
            (
                "[[engines]]\nname = \"e1\"\nhost = \"ssh://h\"\n",
                "ssh://user@host",
            ),
            (
                "[[engines]]\nname = \"e1\"\nhost = \"ssh://u@h:2222\"\n",
                "~/.ssh/config",
            ),
            (
                "[[engines]]\nname = \"e 1\"\nhost = \"local\"\n",
                "letters, digits",
            ),
            (
                "[[engines]]\nname = \"e1\"\nhost = \"local\"\nslots = 0\n",
                "at least 1",
            ),
            (
                "[[engines]]\nname = \"e1\"\nhost = \"local\"\ntls = \"/c\"\n",
                "tcp:// engines only",
            ),
            (
                "[[engines]]\nname = \"e1\"\nhost = \"tcp://h:99999\"\ntls = \"/c\"\n",
                "port",
            ),
            (
                "[[engines]]\nname = \"e1\"\nhost = \"tcp://h\"\ntls = \"certs\"\n",
                "absolute",
            ),
            (
                "[[engines]]\nname = \"e1\"\nhost = \"local\"\ncolour = 1\n",
                "unknown field",
            ),
        ];
        for (text, expect) in cases {
            let err = parse(text).expect_err(text);
            // A check of the whole table points at its header; an unknown key at itself.
            let line = if expect == "unknown field" { 9 } else { 6 };
            assert!(
                err.starts_with(&format!("mlops.toml:{line}:")),
                "{text}: {err}"
            );
            assert!(err.contains(expect), "{text}: {err}");
        }
    }

    #[test]
    fn a_name_used_twice_points_at_the_second() {
        let err = parse(
            "[[engines]]\nname = \"e1\"\nhost = \"local\"\n[[engines]]\nname = \"e1\"\nhost = \"unix:///s\"\n",
        )
        .unwrap_err();
        assert!(err.starts_with("mlops.toml:10:1:"), "{err}");
        assert!(err.contains("used twice"), "{err}");
    }

    #[test]
    fn flags_parse_like_the_config() {
        let e = EngineSpec::parse_flag("gpu=tcp://10.0.0.7:2376,slots=3,tls=/certs").unwrap();
        assert_eq!((e.name.as_str(), e.slots), ("gpu", 3));
        assert_eq!(e.url(), "tcp://10.0.0.7:2376");
        let e = EngineSpec::parse_flag("far=ssh://me@far").unwrap();
        assert_eq!(
            e.host,
            EngineHost::Ssh {
                dest: "me@far".into()
            }
        );
        for (flag, expect) in [
            ("tcp://h:1", "no `=`"),
            ("g=tcp://h:1", "needs `tls`"),
            ("g=local,slots=x", "whole number"),
            ("g=local,cpus=1", "unknown option"),
            ("g=local,gpus=x", "whole number"),
        ] {
            let err = EngineSpec::parse_flag(flag).unwrap_err();
            assert!(
                err.contains(expect) && err.contains("NAME=URL"),
                "{flag}: {err}"
            );
        }
        let e = EngineSpec::parse_flag("g=local,slots=2,gpus=2").unwrap();
        assert_eq!((e.slots, e.gpus), (2, 2));
        let twice = [EngineSpec::local_default(), EngineSpec::local_default()];
        assert!(check_flags(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn engines_round_trip_through_serialization() {
        let cfg = parse(
            "[[engines]]\nname = \"e1\"\nhost = \"tcp://h:1\"\ntls = \"/c\"\nslots = 2\ngpus = 4\n",
        )
        .unwrap();
        assert_eq!(cfg.engines[0].gpus, 4);
        let text = toml::to_string(&cfg).unwrap();
        let again = Config::parse(&text, Path::new("x")).unwrap();
        assert_eq!(again.engines, cfg.engines);
    }
}
