//! Which host directories `[data]` may mount into a container.
//!
//! `[data]` is written in the repository's `mlops.toml`, and the repository arrives by `git push`:
//! whoever can push could otherwise mount `/etc`, `~/.ssh` or mlops-tui's own data directory (other
//! runs, the history database) and read them from the training code. So the directories that may be
//! mounted are the operator's decision, kept in the operator's own configuration file, never in the
//! repository:
//!
//! ```toml
//! # ~/.config/mlops-tui/config.toml
//! [data]
//! allow = ["/srv/datasets", "~/datasets"]
//! ```
//!
//! A host path (made canonical first: links and `..` resolved) may be mounted when it lies under an
//! allowed directory and neither lies under nor holds a protected one: the system's own directories,
//! the operator's secrets and mlops-tui's data, state and configuration directories. No file means
//! nothing is allowed.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::paths::Paths;

/// The user's configuration file, inside the configuration directory (shared with the dashboard's
/// settings, which leave `[data]` to this module).
pub const FILE_NAME: &str = "config.toml";

/// System directories no data set lives in and no container may see.
const SYSTEM: [&str; 13] = [
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/run",
    "/var/run",
    "/var/lib/docker",
    "/var/log",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
];

/// Where people keep secrets under a home directory.
const HOME_SECRETS: [&str; 14] = [
    ".ssh",
    ".gnupg",
    ".aws",
    ".docker",
    ".kube",
    ".config",
    ".azure",
    ".gcloud",
    ".password-store",
    ".local/share/keyrings",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    ".bash_history",
];

/// The operator's decision on `[data]` host paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPolicy {
    /// Directories under which a host path may be mounted, canonical where they exist.
    allow: Vec<PathBuf>,
    /// The file that holds `allow`, named in every refusal.
    file: PathBuf,
    /// Directories (and files) a mount may neither be inside of nor contain, with what they are.
    protected: Vec<(PathBuf, &'static str)>,
}

#[derive(Debug, Default, Deserialize)]
struct RawFile {
    #[serde(default)]
    data: RawData,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    #[serde(default)]
    allow: Vec<String>,
}

impl DataPolicy {
    /// Reads `[data] allow` from `<config dir>/config.toml` (a missing file allows nothing) and
    /// protects the system directories, the home directory's secrets and `paths`' directories.
    /// A malformed `[data]` table is an error naming the file, the line and the column.
    pub fn load(paths: &Paths) -> Result<DataPolicy, String> {
        let file = paths.config.join(FILE_NAME);
        let allow = match std::fs::read_to_string(&file) {
            Ok(text) => parse(&text, &file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: cannot read: {e}", file.display())),
        };
        let own = [
            paths.data.as_path(),
            paths.state.as_path(),
            paths.config.as_path(),
        ];
        Ok(DataPolicy::new(allow, file, &own))
    }

    /// A policy allowing `allow` (`~/` expanded), recorded as kept in `file`, protecting the
    /// system, the home directory's secrets and `own` (mlops-tui's directories).
    pub fn new(allow: Vec<String>, file: PathBuf, own: &[&Path]) -> DataPolicy {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let mut protected: Vec<(PathBuf, &'static str)> = SYSTEM
            .iter()
            .map(|p| (PathBuf::from(p), "a system directory"))
            .collect();
        for h in home.iter().chain(std::iter::once(&PathBuf::from("/root"))) {
            for s in HOME_SECRETS {
                protected.push((h.join(s), "where credentials are kept"));
            }
        }
        for dir in own {
            protected.push((
                dir.to_path_buf(),
                "mlops-tui's own data, state or configuration",
            ));
        }
        let protected = protected
            .into_iter()
            .flat_map(|(p, why)| {
                let canonical = p.canonicalize().ok().filter(|c| *c != p);
                std::iter::once((p, why)).chain(canonical.map(|c| (c, why)))
            })
            .collect();
        let allow = allow
            .iter()
            .map(|a| {
                let p = expand(a, home.as_deref());
                p.canonicalize().unwrap_or_else(|_| normal(&p))
            })
            .collect();
        DataPolicy {
            allow,
            file,
            protected,
        }
    }

    /// Also protects `dir` (the data directory the engine was given, which may differ from the
    /// default one).
    pub fn protect(&mut self, dir: &Path) {
        self.protected.push((
            dir.to_path_buf(),
            "mlops-tui's own data, state or configuration",
        ));
        if let Ok(c) = dir.canonicalize() {
            self.protected
                .push((c, "mlops-tui's own data, state or configuration"));
        }
    }

    /// The file the allow-list is kept in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Whether the canonical host path `host` may be mounted; the refusal says why and the fix.
    pub fn judge(&self, host: &Path) -> Result<(), String> {
        if host == Path::new("/") {
            return Err(
                "the whole file system (/) cannot be mounted: name the data's directory".into(),
            );
        }
        if let Some((p, why)) = self.protected.iter().find(|(p, _)| host.starts_with(p)) {
            return Err(format!(
                "{} is inside {} ({why}), which is never mounted into a container: keep the data \
                 elsewhere",
                host.display(),
                p.display()
            ));
        }
        if let Some((p, why)) = self.protected.iter().find(|(p, _)| p.starts_with(host)) {
            return Err(format!(
                "{} holds {} ({why}), which is never mounted into a container: name the data's \
                 own directory",
                host.display(),
                p.display()
            ));
        }
        if self.allow.iter().any(|a| host.starts_with(a)) {
            return Ok(());
        }
        Err(format!(
            "{} is not under a directory allowed for [data] (the repository cannot decide what \
             the host shares): add it to `allow` under [data] in {}, e.g. `[data]` then `allow = \
             [\"{}\"]`",
            host.display(),
            self.file.display(),
            host.display()
        ))
    }
}

/// The allow-list in `text` (the file at `path`); other tables are the dashboard's business.
fn parse(text: &str, path: &Path) -> Result<Vec<String>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start).min(text.len());
        let before = text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map_or(before, |i| &before[i + 1..])
            .chars()
            .count()
            + 1;
        format!("{}:{line}:{column}: {}", path.display(), e.message().trim())
    })?;
    for a in &raw.data.allow {
        if !(a.starts_with('/') || a.starts_with("~/")) {
            return Err(format!(
                "{}: [data] allow: \"{a}\" must be an absolute path or start with `~/`",
                path.display()
            ));
        }
    }
    Ok(raw.data.allow)
}

fn expand(p: &str, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

/// `p` with `.` and `..` resolved lexically, for an allowed directory that does not exist (yet).
fn normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy(allow: &[&str], own: &[&Path]) -> DataPolicy {
        DataPolicy::new(
            allow.iter().map(|s| s.to_string()).collect(),
            PathBuf::from("/u/.config/mlops-tui/config.toml"),
            own,
        )
    }

    #[test]
    fn nothing_is_allowed_without_the_file_and_the_refusal_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(&[], &[]);
        let e = p.judge(dir.path()).unwrap_err();
        assert!(
            e.contains("is not under a directory allowed for [data]"),
            "{e}"
        );
        assert!(e.contains("in /u/.config/mlops-tui/config.toml"), "{e}");
    }

    #[test]
    fn allowed_directories_and_their_insides_are_mounted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("digits")).unwrap();
        let root = dir.path().canonicalize().unwrap();
        let p = policy(&[dir.path().to_str().unwrap()], &[]);
        p.judge(&root).unwrap();
        p.judge(&root.join("digits")).unwrap();
        assert!(p.judge(Path::new("/srv/elsewhere")).is_err());
    }

    #[test]
    fn protected_places_are_refused_even_when_allowed() {
        let own = tempfile::tempdir().unwrap();
        let own_path = own.path().canonicalize().unwrap();
        let p = policy(&["/"], &[&own_path]);
        for (host, says) in [
            ("/", "whole file system"),
            ("/etc", "is inside /etc (a system directory)"),
            ("/etc/ssl", "is inside /etc"),
            ("/proc/self", "is inside /proc"),
            ("/var/run", "inside /var/run"),
            ("/var", "holds /var/run"),
            ("/root", "holds /root/.ssh (where credentials are kept)"),
        ] {
            let e = p.judge(Path::new(host)).unwrap_err();
            assert!(e.contains(says), "{host}: {e}");
        }
        let e = p.judge(&own_path.join("runs")).unwrap_err();
        assert!(e.contains("mlops-tui's own data"), "{e}");
        let e = p.judge(own_path.parent().unwrap()).unwrap_err();
        assert!(e.contains("holds"), "{e}");
        if let Some(home) = std::env::var_os("HOME") {
            let home = PathBuf::from(home);
            assert!(p.judge(&home).is_err());
            assert!(p.judge(&home.join(".ssh")).is_err());
        }
        p.judge(Path::new("/srv/datasets")).unwrap();
    }

    #[test]
    fn the_file_is_read_strictly_and_other_tables_are_left_alone() {
        let f = Path::new("/c/config.toml");
        let allow = parse(
            "theme = \"light\"\n[keys]\napprove = \"a\"\n[data]\nallow = [\"/srv/d\", \"~/ds\"]\n",
            f,
        )
        .unwrap();
        assert_eq!(allow, vec!["/srv/d".to_string(), "~/ds".to_string()]);
        let e = parse("[data]\nalow = [\"/srv\"]\n", f).unwrap_err();
        assert!(
            e.starts_with("/c/config.toml:2:1: unknown field `alow`"),
            "{e}"
        );
        let e = parse("[data]\nallow = [\"srv\"]\n", f).unwrap_err();
        assert!(e.contains("must be an absolute path"), "{e}");
        assert_eq!(parse("", f).unwrap(), Vec::<String>::new());
    }
}
