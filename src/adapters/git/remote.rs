//! Polling a remote branch with git2, into a bare mirror the engine exports commits from.
//!
//! A check is cheap when nothing changed: it connects and lists the remote's refs (`ls-remote`, no
//! objects) and compares the branch's id with the mirror's tracking ref; only a different id costs a
//! fetch. The tracking ref is the "last seen" state, so it survives restarts: a fresh cache reports the
//! remote's current head once, and a push made while the tool was down is reported on the first check.
//!
//! Credentials, for remotes that need them: an ssh agent for ssh URLs; for https, a token from
//! `MLOPS_TUI_GIT_TOKEN` (or a file named by `MLOPS_TUI_GIT_TOKEN_FILE`), else git's credential
//! helpers. git2 is built with its `https` and `ssh` features, so paths, `file://`, https and ssh
//! remotes are all spoken.
//!
//! `git2::Repository` is `Send` but not `Sync`: a watcher is used from one thread at a time
//! (`spawn_blocking` or a dedicated thread), and its calls block.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use git2::{Cred, CredentialType, Direction, FetchOptions, Oid, RemoteCallbacks, Repository};
use sha2::{Digest, Sha256};

use super::repo::{Project, RepoError};
use crate::core::model::CommitInfo;

/// What can go wrong while watching a remote.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// A remote could not be reached, listed or fetched. `url` is the remote as configured.
    #[error("remote {url}: {message}")]
    Remote { url: String, message: String },
    /// The local mirror of a remote could not be created or read.
    #[error("mirror {path}: {message}")]
    Mirror { path: PathBuf, message: String },
    #[error(transparent)]
    Export(#[from] RepoError),
}

/// Environment variable holding an https token (GitHub, GitLab, ...), used as the password.
pub const TOKEN_ENV: &str = "MLOPS_TUI_GIT_TOKEN";
/// Environment variable naming a file that holds the token.
pub const TOKEN_FILE_ENV: &str = "MLOPS_TUI_GIT_TOKEN_FILE";

/// libgit2 asks again after a rejected credential; past this many tries the check fails instead of
/// looping.
const MAX_CREDENTIAL_TRIES: u32 = 3;

pub struct RemoteWatcher {
    url: String,
    branch: String,
    mirror: Repository,
    mirror_path: PathBuf,
    fetch_timeout: Duration,
}

impl std::fmt::Debug for RemoteWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWatcher")
            .field("url", &self.url)
            .field("branch", &self.branch)
            .field("mirror", &self.mirror_path)
            .finish()
    }
}

impl RemoteWatcher {
    /// Watches `branch` of `url` (a path, `file://`, or https/ssh where git2 supports them), mirroring
    /// into a bare repository under `cache_dir` (created if needed; one mirror per URL, shared by
    /// branches). Does not contact the remote.
    pub fn open(url: &str, branch: &str, cache_dir: &Path) -> Result<Self, RemoteError> {
        let mirror_path = cache_dir.join(mirror_name(url));
        let mirror_err = |message: String| RemoteError::Mirror {
            path: mirror_path.clone(),
            message,
        };
        let mirror = if mirror_path.join("HEAD").is_file() {
            Repository::open_bare(&mirror_path)
        } else {
            std::fs::create_dir_all(&mirror_path)
                .map_err(|e| mirror_err(format!("cannot create: {e}")))?;
            Repository::init_bare(&mirror_path)
        }
        .map_err(|e| mirror_err(e.message().to_string()))?;
        Ok(RemoteWatcher {
            url: url.to_string(),
            branch: branch.to_string(),
            mirror,
            mirror_path,
            fetch_timeout: Duration::from_secs(300),
        })
    }

    /// A fetch that is still transferring after `timeout` is abandoned (default 5 minutes).
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The bare mirror repository.
    pub fn mirror_path(&self) -> &Path {
        &self.mirror_path
    }

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.branch)
    }

    /// The id of the branch's head as last fetched, if any.
    pub fn last_seen(&self) -> Option<String> {
        self.tracking_oid().map(|o| o.to_string())
    }

    fn tracking_oid(&self) -> Option<Oid> {
        self.mirror.refname_to_id(&self.tracking_ref()).ok()
    }

    /// libgit2's words, made clearer where they mislead: a missing local directory is reported as an
    /// "unsupported URL protocol", and a scheme it does not speak as a bad port or protocol.
    fn remote_err(&self, what: &str, e: &git2::Error) -> RemoteError {
        let text = e.message();
        let local = local_path(&self.url);
        let scheme = self
            .url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        let message = match (local, scheme) {
            (Some(path), _) if !path.exists() => {
                format!("{what}: there is no directory {}", path.display())
            }
            (None, Some(scheme)) if !SCHEMES.contains(&scheme.as_str()) => format!(
                "{what}: unsupported URL scheme `{scheme}` (use a path, file://, https://, http://, ssh:// or git://)"
            ),
            _ => format!("{what}: {text}"),
        };
        RemoteError::Remote {
            url: self.url.clone(),
            message,
        }
    }

    /// Returns the branch's head when it differs from the last one seen (fetching it into the mirror
    /// first), `None` when nothing changed. Blocking.
    pub fn check(&mut self) -> Result<Option<CommitInfo>, RemoteError> {
        let remote_head = self.ls_remote()?;
        let before = self.tracking_oid();
        if before == Some(remote_head) {
            return Ok(None);
        }
        self.fetch()?;
        match self.tracking_oid() {
            Some(now) if Some(now) != before => self.commit(&now.to_string()).map(Some),
            Some(_) => Ok(None),
            None => Err(RemoteError::Remote {
                url: self.url.clone(),
                message: format!("the fetch brought no branch \"{}\"", self.branch),
            }),
        }
    }

    /// The id the remote's branch points to now, without fetching objects.
    fn ls_remote(&self) -> Result<Oid, RemoteError> {
        let mut remote = self
            .mirror
            .remote_anonymous(&self.url)
            .map_err(|e| self.remote_err("not a usable remote", &e))?;
        let tries = Cell::new(0);
        let conn = remote
            .connect_auth(Direction::Fetch, Some(callbacks(&tries, None)), None)
            .map_err(|e| self.remote_err("cannot connect", &e))?;
        let wanted = format!("refs/heads/{}", self.branch);
        let heads = conn
            .list()
            .map_err(|e| self.remote_err("cannot list branches", &e))?;
        heads
            .iter()
            .find(|h| h.name() == wanted)
            .map(|h| h.oid())
            .ok_or_else(|| RemoteError::Remote {
                url: self.url.clone(),
                message: format!("no branch \"{}\"", self.branch),
            })
    }

    fn fetch(&self) -> Result<(), RemoteError> {
        let mut remote = self
            .mirror
            .remote_anonymous(&self.url)
            .map_err(|e| self.remote_err("not a usable remote", &e))?;
        let tries = Cell::new(0);
        let deadline = Instant::now() + self.fetch_timeout;
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks(&tries, Some(deadline)));
        let refspec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", self.branch);
        remote
            .fetch(&[refspec.as_str()], Some(&mut options), None)
            .map_err(|e| {
                if Instant::now() >= deadline {
                    RemoteError::Remote {
                        url: self.url.clone(),
                        message: format!("fetch abandoned after {}s", self.fetch_timeout.as_secs()),
                    }
                } else {
                    self.remote_err("cannot fetch", &e)
                }
            })
    }

    /// Describes a commit of the mirror (as fetched), e.g. to show what a run trains.
    pub fn commit(&self, id: &str) -> Result<CommitInfo, RemoteError> {
        let err = |e: git2::Error| RemoteError::Mirror {
            path: self.mirror_path.clone(),
            message: format!("commit {id}: {}", e.message()),
        };
        let oid = Oid::from_str(id).map_err(err)?;
        let commit = self.mirror.find_commit(oid).map_err(err)?;
        Ok(CommitInfo {
            id: commit.id().to_string(),
            summary: commit.summary().ok().flatten().unwrap_or("").to_string(),
            author: commit.author().name().unwrap_or("").to_string(),
            branch: self.branch.clone(),
            time: commit.time().seconds(),
        })
    }

    /// Writes the tree of `commit_id` (only its `subdir`, when not empty) into `dest`, with the same
    /// rules as [`Project::export`] (executable bits and symlinks kept, submodules skipped).
    pub fn export(&self, commit_id: &str, subdir: &Path, dest: &Path) -> Result<(), RemoteError> {
        let commit = self.commit(commit_id)?;
        self.project(subdir).export(&commit, dest)?;
        Ok(())
    }

    /// The mirror seen as a [`Project`], for code that works on projects.
    pub fn project(&self, subdir: &Path) -> Project {
        Project {
            dir: self.mirror_path.join(subdir),
            repo_root: Some(self.mirror_path.clone()),
            prefix: subdir.to_path_buf(),
        }
    }
}

/// URL schemes this build's git support speaks (besides plain paths and scp-like `host:path`).
const SCHEMES: &[&str] = &["file", "https", "http", "ssh", "git", "ssh+git", "git+ssh"];

/// The directory a local remote (a path or a `file://` URL) names; `None` for network URLs, including
/// scp-like `host:path`.
fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    if url.contains("://") {
        return None;
    }
    let before_colon = url.split(':').next().unwrap_or("");
    if url.contains(':') && !before_colon.contains('/') {
        return None;
    }
    Some(PathBuf::from(url))
}

/// `<last URL component>-<16 hex of SHA-256(url)>.git`: readable, and distinct per URL.
fn mirror_name(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let base = url
        .trim_end_matches('/')
        .rsplit(['/', ':', '\\'])
        .next()
        .unwrap_or("")
        .trim_end_matches(".git");
    let base: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    let base = base.trim_start_matches('.');
    if base.is_empty() {
        format!("{hash}.git")
    } else {
        format!("{base}-{hash}.git")
    }
}

/// Credentials and the fetch deadline. `tries` counts credential requests for this operation.
fn callbacks<'a>(tries: &'a Cell<u32>, deadline: Option<Instant>) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |url, username, allowed| {
        tries.set(tries.get() + 1);
        if tries.get() > MAX_CREDENTIAL_TRIES {
            return Err(git2::Error::from_str(
                "authentication failed (credentials rejected)",
            ));
        }
        credentials(url, username, allowed)
    });
    if let Some(deadline) = deadline {
        cb.transfer_progress(move |_| Instant::now() < deadline);
        cb.sideband_progress(move |_| Instant::now() < deadline);
    }
    cb
}

fn credentials(
    url: &str,
    username: Option<&str>,
    allowed: CredentialType,
) -> Result<Cred, git2::Error> {
    if allowed.contains(CredentialType::USERNAME) {
        return Cred::username(username.unwrap_or("git"));
    }
    if allowed.contains(CredentialType::SSH_KEY) {
        return Cred::ssh_key_from_agent(username.unwrap_or("git"));
    }
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
        if let Some(token) = token()? {
            // GitHub and GitLab accept any user name with a token; GitHub documents this one.
            return Cred::userpass_plaintext(username.unwrap_or("x-access-token"), &token);
        }
        let config = git2::Config::open_default()?;
        return Cred::credential_helper(&config, url, username);
    }
    if allowed.contains(CredentialType::DEFAULT) {
        return Cred::default();
    }
    Err(git2::Error::from_str(
        "the remote asks for a kind of credential mlops-tui cannot provide",
    ))
}

fn token() -> Result<Option<String>, git2::Error> {
    if let Ok(token) = std::env::var(TOKEN_ENV) {
        if !token.is_empty() {
            return Ok(Some(token));
        }
    }
    if let Some(path) = std::env::var_os(TOKEN_FILE_ENV) {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            git2::Error::from_str(&format!(
                "cannot read {TOKEN_FILE_ENV} ({}): {e}",
                Path::new(&path).display()
            ))
        })?;
        let token = text.trim();
        if !token.is_empty() {
            return Ok(Some(token.to_string()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_names_are_readable_and_distinct() {
        let a = mirror_name("https://github.com/acme/ml-code.git");
        let b = mirror_name("git@github.com:acme/ml-code.git");
        assert!(a.starts_with("ml-code-") && a.ends_with(".git"), "{a}");
        assert_ne!(a, b);
        assert_eq!(a.len(), "ml-code-".len() + 16 + 4);
        assert!(mirror_name("/").ends_with(".git"));
        assert!(!mirror_name("/srv/../..").starts_with('.'));
    }

    #[test]
    fn local_remotes_are_told_from_network_ones() {
        assert_eq!(local_path("/srv/x.git"), Some(PathBuf::from("/srv/x.git")));
        assert_eq!(local_path("../x"), Some(PathBuf::from("../x")));
        assert_eq!(local_path("file:///srv/x"), Some(PathBuf::from("/srv/x")));
        assert_eq!(local_path("./a:b"), Some(PathBuf::from("./a:b")));
        assert_eq!(local_path("git@github.com:a/b.git"), None);
        assert_eq!(local_path("https://github.com/a/b.git"), None);
    }
}
