//! `[resources] disk`, enforced. Three layers, because no engine here can give a container a
//! size-limited writable file system of its own (the storage driver has no size option, and a tmpfs
//! volume is memory that vanishes when the container stops, before its results are copied home):
//!
//! 1. The kernel caps every file the container writes at the limit (`RLIMIT_FSIZE`, set when the
//!    container is created): one file can never pass it, however fast it is written.
//! 2. This watchdog measures what the container holds under `/workspace` and `/mlops` several times
//!    a second (on this machine: the iteration's directory, walked without following links; on a
//!    remote engine: `du` run inside the container) and, over the limit, kills it at once (SIGKILL,
//!    no grace: a script that is PID 1 ignores SIGTERM).
//! 3. What comes home from a remote engine stops at the limit (the archive is read no further), and
//!    what a killed container left on this machine past the limit is removed, biggest files first.
//!
//! A script that fills the disk does so whatever its parameters: the iteration fails and the run
//! stops, with a message that says how much, where, what to delete and where the setting is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::adapters::backend::{ContainerBackend, DiskUsage};
use crate::core::config::{FILE_NAME, key_line};
use crate::core::disk;
use crate::core::ids::ContainerId;
use crate::core::units::ByteSize;
use crate::engine::msg::IterationPlan;

use super::workspace::WORKSPACE_DIR;

pub use crate::core::disk::left_behind;

/// How often the iteration's directory on this machine is measured while the container runs. A
/// script writing 1 GB/s gets at most about this much past the limit before it is killed.
pub const HOST_INTERVAL: Duration = Duration::from_millis(250);
/// How often a remote engine is asked (an exec of `du` costs it a process and a walk of the
/// container's two directories, some 50–150 ms here): the exec's own time adds to the period.
pub const ENGINE_INTERVAL: Duration = Duration::from_millis(250);
/// How long one measurement on a remote engine may take before it is given up (and tried again).
const ENGINE_TIMEOUT: Duration = Duration::from_secs(20);

/// Resolves with what the container holds once that passes `limit`; never otherwise. `host` is the
/// iteration's directory on this machine when the engine shares our disk (it holds `/mlops`, and
/// `/workspace` inside it); `None` measures inside the container on its engine. One measurement at
/// a time: a slow one delays the next instead of piling up.
pub async fn over_quota<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    host: Option<PathBuf>,
    limit: ByteSize,
) -> DiskUsage {
    let period = if host.is_some() {
        HOST_INTERVAL
    } else {
        ENGINE_INTERVAL
    };
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        every.tick().await;
        let usage = match &host {
            Some(dir) => {
                let d = dir.clone();
                let total = tokio::task::spawn_blocking(move || host_total(&d))
                    .await
                    .unwrap_or(0);
                DiskUsage {
                    total,
                    ..DiskUsage::default()
                }
            }
            None => match tokio::time::timeout(ENGINE_TIMEOUT, backend.disk_usage(id)).await {
                Ok(Ok(usage)) => usage,
                failed => {
                    if !warned {
                        warned = true;
                        tracing::warn!("measuring the files of {id}: {failed:?}");
                    }
                    continue;
                }
            },
        };
        if usage.total > limit.0 {
            return usage;
        }
    }
}

/// Kills the container at once (SIGKILL, no grace: every moment writes more) for holding `total`
/// bytes, over the limit.
pub async fn kill<B: ContainerBackend + ?Sized>(backend: &B, id: &ContainerId, total: u64) {
    tracing::info!("killing {id}: it holds {total} bytes, over resources.disk");
    if let Err(e) = backend.kill(id).await {
        tracing::warn!("killing {id}: {e}");
    }
}

/// The bytes a file takes: its length, or the blocks it holds when more (many tiny files).
fn file_size(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.len().max(meta.blocks().saturating_mul(512))
}

/// Calls `visit` with the path relative to `dir` and the size of every regular file below `dir`.
/// Symbolic links are never followed. A directory the container made unreadable (its user is ours)
/// is made readable again first, so it cannot hide what it holds.
fn walk(dir: &Path, visit: &mut impl FnMut(&Path, u64)) {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = match std::fs::read_dir(&d) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
                std::fs::read_dir(&d)
            }
            other => other,
        };
        let Ok(entries) = entries else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                todo.push(entry.path());
            } else if meta.is_file() {
                let path = entry.path();
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                visit(rel, file_size(&meta));
            }
        }
    }
}

/// Everything under the iteration's directory on this machine.
pub fn host_total(dir: &Path) -> u64 {
    let mut total = 0u64;
    walk(dir, &mut |_, n| total = total.saturating_add(n));
    total
}

/// Copies `/mlops` and `/workspace` of a remote engine's container home into the iteration's
/// directory `workdir`, together at most `limit` bytes: past it, the copy stops. Answers what to
/// tell people about each copy that stopped (what stayed on the engine); a failed copy is logged.
pub async fn bring_home<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    workdir: &Path,
    limit: u64,
) -> Vec<String> {
    let workspace = workdir.join(WORKSPACE_DIR);
    let mut cap = limit;
    let mut stopped = Vec::new();
    for (from, to) in [("/mlops", workdir), ("/workspace", workspace.as_path())] {
        match backend.copy_out(id, from, to, cap).await {
            Ok(copied) => {
                cap = cap.saturating_sub(copied.bytes);
                if let Some((path, size)) = copied.left {
                    stopped.push(left_behind(from, &path, size, limit));
                }
            }
            Err(e) => tracing::warn!("{}: copying {from} home: {e}", workdir.display()),
        }
    }
    stopped
}

/// What a copy of the checkpoints may bring home: `limit`, less what this machine's copy of the
/// iteration's directory `workdir` holds besides its checkpoints (which the copy replaces).
pub async fn checkpoint_cap(workdir: &Path, limit: u64) -> u64 {
    let dir = workdir.to_path_buf();
    let besides = tokio::task::spawn_blocking(move || {
        host_total(&dir).saturating_sub(host_total(&dir.join("checkpoints")))
    })
    .await
    .unwrap_or(limit);
    limit.saturating_sub(besides)
}

/// Where a file of the iteration's directory is in the container: `workspace/x` is `/workspace/x`,
/// anything else is under `/mlops`. Answers the root and the components below it.
fn in_container(rel: &Path) -> (&'static str, Vec<String>) {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.first().map(String::as_str) == Some(WORKSPACE_DIR) {
        parts.remove(0);
        ("/workspace", parts)
    } else {
        ("/mlops", parts)
    }
}

/// What the iteration's directory on this machine holds, as the container sees it: per root, and
/// for every entry up to two levels below a root.
pub fn host_usage(dir: &Path) -> DiskUsage {
    use std::collections::BTreeMap;
    let mut roots: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut entries: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    walk(dir, &mut |rel, n| {
        total = total.saturating_add(n);
        let (root, parts) = in_container(rel);
        *roots.entry(root).or_default() += n;
        for depth in 1..=parts.len().min(2) {
            let key = format!("{root}/{}", parts[..depth].join("/"));
            *entries.entry(key).or_default() += n;
        }
    });
    DiskUsage {
        total,
        roots: roots.into_iter().map(|(r, n)| (r.to_string(), n)).collect(),
        biggest: entries.into_iter().collect(),
    }
}

/// Removes the biggest files under `dir` until what is left fits in `limit`; answers what was
/// removed (paths relative to `dir`), biggest first. Only for a container that is no longer running.
pub fn trim(dir: &Path, limit: u64) -> Vec<(String, u64)> {
    let mut files: Vec<(PathBuf, u64)> = Vec::new();
    walk(dir, &mut |rel, n| files.push((rel.to_path_buf(), n)));
    let mut total: u64 = files.iter().map(|(_, n)| n).sum();
    files.sort_by_key(|f| std::cmp::Reverse(f.1));
    let mut removed = Vec::new();
    for (rel, n) in files {
        if total <= limit {
            break;
        }
        if std::fs::remove_file(dir.join(&rel)).is_ok() {
            total -= n;
            removed.push((rel.to_string_lossy().into_owned(), n));
        }
    }
    removed
}

/// `mlops.toml:9` when the run's `mlops.toml` sets `[resources] disk`; `None` for the default. Read
/// from the run's own export of its commit, which no container can write.
fn setting_at(plan: &IterationPlan) -> Option<String> {
    let text = std::fs::read_to_string(plan.workspace.join(FILE_NAME)).ok()?;
    key_line(&text, &["resources", "disk"]).map(|line| format!("{FILE_NAME}:{line}"))
}

/// After a container was killed for its disk and has stopped: the reason its iteration failed, and
/// this machine's copy of the iteration's directory brought back under the limit (what was removed
/// is said). `usage` is what the watchdog saw; on this machine the directory itself tells more.
pub async fn account(
    plan: &IterationPlan,
    workdir: &Path,
    usage: DiskUsage,
    remote: bool,
) -> String {
    let (plan, dir) = (plan.clone(), workdir.to_path_buf());
    let limit = plan.config.resources.disk;
    let done = tokio::task::spawn_blocking(move || {
        let seen = if remote { usage } else { host_usage(&dir) };
        let reason = disk::over_limit(&seen, limit, setting_at(&plan).as_deref());
        let removed = trim(&dir, limit.0);
        if removed.is_empty() {
            return reason;
        }
        let shown = shown_dir(&dir);
        format!("{reason}; {}", disk::removed(&shown, &removed))
    })
    .await;
    done.unwrap_or_else(|e| format!("over [resources] disk = \"{limit}\": killed ({e})"))
}

/// `runs/1/iter-1`: the iteration's directory named from its runs directory.
fn shown_dir(dir: &Path) -> String {
    let parts: Vec<_> = dir.components().rev().take(3).collect();
    parts
        .into_iter()
        .rev()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, n: usize) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![1u8; n]).unwrap();
    }

    #[test]
    fn the_directory_is_seen_as_the_container_sees_it() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("workspace/junk/a/deep"), 300 * 4096);
        write(&d.path().join("workspace/junk/b"), 100 * 4096);
        write(&d.path().join("params.json"), 10);
        let outside = tempfile::tempdir().unwrap();
        write(&outside.path().join("big"), 1 << 20);
        std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
        let u = host_usage(d.path());
        assert!(u.total > 400 * 4096 && u.total <= 401 * 4096, "{u:?}");
        assert_eq!(host_total(d.path()), u.total);
        let get = |p: &str| u.biggest.iter().find(|(k, _)| k == p).map(|(_, n)| *n);
        assert_eq!(get("/workspace/junk"), Some(400 * 4096));
        assert_eq!(get("/workspace/junk/a"), Some(300 * 4096));
        assert_eq!(get("/workspace/junk/a/deep"), None);
        assert!(get("/mlops/params.json").is_some());
        assert_eq!(u.roots[1], ("/workspace".to_string(), 400 * 4096));
    }

    #[test]
    fn an_unreadable_directory_does_not_hide_its_files() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("hidden/f"), 50_000);
        std::fs::set_permissions(
            d.path().join("hidden"),
            std::fs::Permissions::from_mode(0o0),
        )
        .unwrap();
        assert!(host_total(d.path()) >= 50_000);
    }

    #[test]
    fn trimming_removes_the_biggest_files_until_the_rest_fits() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("workspace/train.py"), 100);
        for (name, n) in [("a", 400_000), ("b", 300_000), ("c", 200_000)] {
            write(&d.path().join("workspace/junk").join(name), n);
        }
        let removed = trim(d.path(), 250_000);
        let names: Vec<_> = removed.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["workspace/junk/a", "workspace/junk/b"]);
        assert!(d.path().join("workspace/junk/c").exists());
        assert!(d.path().join("workspace/train.py").exists());
        assert!(trim(d.path(), 250_000).is_empty());
    }

    #[test]
    fn the_directory_is_named_from_the_runs_directory() {
        assert_eq!(shown_dir(Path::new("/x/runs/1/iter-1")), "runs/1/iter-1");
    }
}
