//! What a training container holds on an engine that does not share our disk, and the kill that
//! stops it at once when that is too much (`[resources] disk`).
//!
//! The files live in the container's own volumes on the engine's disk, out of our reach: they are
//! measured by running `du` inside the container (an exec, as the container's own unprivileged user,
//! no network). `du`'s output is sorted and cut inside the container, so a tree of a million files
//! costs us a few lines to read, whatever it costs the container.

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::KillContainerOptions;
use futures_util::StreamExt;

use super::DockerBackend;
use crate::adapters::backend::{BackendError, DiskUsage};
use crate::core::ids::ContainerId;

/// The writable roots measured, as the container sees them.
pub const ROOTS: [&str; 2] = ["/workspace", "/mlops"];
/// Lines of `du` read: the two roots and the biggest entries below them.
const LINES: usize = 40;
/// Bytes of `du`'s output read at most.
const OUTPUT_MAX: usize = 64 * 1024;

/// The shell line run in the container: sizes in bytes of the roots and of every entry up to two
/// levels below them, on this file system only, largest first. First, every directory the script
/// made unreadable to itself (`chmod 000`) is made readable again (`u+rx`, its own directories), so
/// that it cannot hide what it wrote from the measure.
fn du_command() -> Vec<String> {
    let roots = ROOTS.join(" ");
    let line = format!(
        "find {roots} -xdev -type d ! -perm -u=rx -exec chmod u+rx {{}} \\; 2>/dev/null; \
         du -x -B1 -d2 {roots} 2>/dev/null | sort -rn | head -n {LINES}"
    );
    vec!["/bin/sh".into(), "-c".into(), line]
}

impl DockerBackend {
    /// Runs `du` in the running container `id` and reads what it holds under [`ROOTS`].
    pub(super) async fn usage(&self, id: &ContainerId) -> Result<DiskUsage, BackendError> {
        let fail = |message: String| BackendError::Container {
            id: id.to_string(),
            message,
        };
        let exec = self
            .docker
            .create_exec(
                &id.0,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(false),
                    cmd: Some(du_command()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| fail(format!("cannot measure its files: {e}")))?;
        let started = self
            .docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| fail(format!("cannot measure its files: {e}")))?;
        let StartExecResults::Attached { mut output, .. } = started else {
            return Err(fail("cannot measure its files: the exec detached".into()));
        };
        let mut text = Vec::new();
        while let Some(chunk) = output.next().await {
            let chunk = chunk.map_err(|e| fail(format!("cannot measure its files: {e}")))?;
            text.extend_from_slice(&chunk.into_bytes());
            if text.len() >= OUTPUT_MAX {
                break;
            }
        }
        parse_du(&String::from_utf8_lossy(&text))
            .ok_or_else(|| fail("cannot measure its files: `du` printed no total".into()))
    }

    /// Kills the container with SIGKILL; a container already stopped or gone is fine.
    pub(super) async fn kill_now(&self, id: &ContainerId) -> Result<(), BackendError> {
        let options = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        let result = self.docker.kill_container(&id.0, Some(options)).await;
        super::container::gone_is_done(result, id, "kill")
    }
}

/// Reads `du -B1` lines (`<bytes>\t<path>`): the total is the sum of the [`ROOTS`] lines, the
/// biggest entries are the others. `None` without any root line (the exec failed).
pub fn parse_du(text: &str) -> Option<DiskUsage> {
    let mut usage = DiskUsage::default();
    let mut roots = 0;
    for line in text.lines() {
        let Some((size, path)) = line.split_once('\t') else {
            continue;
        };
        let Ok(size) = size.trim().parse::<u64>() else {
            continue;
        };
        if ROOTS.contains(&path) {
            roots += 1;
            usage.total = usage.total.saturating_add(size);
            usage.roots.push((path.to_string(), size));
        } else {
            usage.biggest.push((path.to_string(), size));
        }
    }
    (roots > 0).then_some(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn du_lines_give_the_total_of_the_roots_and_the_entries_below() {
        let text = "5368709120\t/workspace\n5368709120\t/workspace/junk\n\
                    1048576\t/mlops\n1000000\t/mlops/checkpoints\nnoise\n";
        let u = parse_du(text).unwrap();
        assert_eq!(u.total, 5_369_757_696);
        assert_eq!(u.roots.len(), 2);
        assert_eq!(
            u.biggest,
            vec![
                ("/workspace/junk".to_string(), 5_368_709_120),
                ("/mlops/checkpoints".to_string(), 1_000_000)
            ]
        );
        assert_eq!(parse_du("du: cannot access\n"), None);
    }

    #[test]
    fn du_runs_on_both_roots_and_reads_a_bounded_output() {
        let cmd = du_command();
        assert_eq!(cmd[0], "/bin/sh");
        assert!(
            cmd[2].starts_with("find /workspace /mlops -xdev -type d ! -perm -u=rx -exec chmod"),
            "{cmd:?}"
        );
        assert!(
            cmd[2].contains("; du -x -B1 -d2 /workspace /mlops 2>"),
            "{cmd:?}"
        );
        assert!(cmd[2].ends_with("head -n 40"), "{cmd:?}");
    }
}
