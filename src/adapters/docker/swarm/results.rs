//! Files out of a task: when the command ends, the task prints `/mlops` and `/workspace` as tar
//! archives in base64 between marker lines on its own output, and [`copy_out`] reads them back from
//! the service's log through the manager. That needs nothing from the node but its log, which Swarm
//! already carries; it suits results of megabytes. A team with bigger checkpoints gives the cluster a
//! volume driver or an object store instead (README, "Trials on a Docker Swarm").
//!
//! [`copy_out`]: crate::adapters::backend::ContainerBackend::copy_out

use std::io::Read;
use std::path::Path;

use base64::Engine;
use futures_util::{Stream, StreamExt};

use crate::adapters::backend::{BackendError, Copied};
use crate::adapters::docker::archive;
use crate::core::ids::ContainerId;
use crate::core::model::LogLine;

/// The first line of an archive: `MARK begin <dir>`; its last: `MARK end <dir>`.
const MARK: &str = "@@mlops-tui-archive";

/// The task's command: runs `command` in `/workspace` (passing SIGTERM on) while a watcher prints
/// the checkpoints each time they change (see [`super::live`]), then prints `/mlops` and
/// `/workspace` as archives and exits with the command's status.
pub(super) fn wrapper(command: &[String]) -> Vec<String> {
    let script = format!(
        r#"cd /workspace || exit 125
{emitter}
"$@" &
child=$!
( last=; n=0; while kill -0 "$child" 2>/dev/null; do sleep 1; ckpt; done ) &
watcher=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
while :; do wait "$child"; rc=$?; kill -0 "$child" 2>/dev/null || break; done
kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null
for d in mlops workspace; do
  echo "{MARK} begin $d"
  tar -C / -cf - "$d" | base64 -w 76
  echo "{MARK} end $d"
done
exit "$rc""#,
        emitter = super::live::emitter()
    );
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        script,
        "mlops".to_string(),
    ];
    argv.extend(command.iter().cloned());
    argv
}

/// `lines` without the archives.
pub(super) fn without_archives(lines: Vec<LogLine>) -> Vec<LogLine> {
    let mut inside = false;
    lines.into_iter().filter(|l| keep(&mut inside, l)).collect()
}

/// The stream without the archives.
pub(super) fn skip_archives<S>(lines: S) -> impl Stream<Item = Result<LogLine, BackendError>> + Send
where
    S: Stream<Item = Result<LogLine, BackendError>> + Send,
{
    let mut inside = false;
    lines.filter(move |l| {
        let keep = match l {
            Ok(l) => keep(&mut inside, l),
            Err(_) => true,
        };
        std::future::ready(keep)
    })
}

fn keep(inside: &mut bool, line: &LogLine) -> bool {
    if line.stderr {
        return true;
    }
    if let Some(rest) = line.text.strip_prefix(MARK) {
        *inside = rest.trim_start().starts_with("begin");
        return false;
    }
    !*inside
}

/// The archive of `dir` (`mlops` or `workspace`) in `lines`, decoded; `None` when the task did not
/// print it (it was killed, or has not ended).
fn archive_of(lines: &[LogLine], dir: &str) -> Result<Option<Vec<u8>>, String> {
    let begin = format!("{MARK} begin {dir}");
    let end = format!("{MARK} end {dir}");
    let mut text = String::new();
    let mut inside = false;
    for l in lines.iter().filter(|l| !l.stderr) {
        if l.text == begin {
            inside = true;
            text.clear();
        } else if l.text == end && inside {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|e| {
                    format!("the archive of /{dir} in the task's output is damaged: {e}")
                })?;
            return Ok(Some(bytes));
        } else if inside {
            text.push_str(l.text.trim());
        }
    }
    Ok(None)
}

/// The entries of `tar` below `prefix` (`mlops/checkpoints`), re-rooted so that the last part of
/// the prefix is the archive's top directory, as an engine sends a directory.
fn subtree(tar: &[u8], prefix: &str) -> std::io::Result<Vec<u8>> {
    let top = prefix.rsplit('/').next().unwrap_or(prefix);
    let mut out = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry
            .path()?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let rest = if path == prefix {
            String::new()
        } else if let Some(r) = path.strip_prefix(&format!("{prefix}/")) {
            format!("/{r}")
        } else {
            continue;
        };
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        out.append_data(&mut header, format!("{top}{rest}"), &data[..])?;
    }
    out.into_inner()
}

/// Copies the directory `from` (under `/mlops` or `/workspace`) out of the archives in the task's
/// output into `to`, at most `cap` bytes (see [`archive::unpack`]).
pub(super) async fn unpack_from_log(
    id: &ContainerId,
    lines: &[LogLine],
    from: &str,
    to: &Path,
    cap: u64,
) -> Result<Copied, BackendError> {
    let fail = |message: String| BackendError::Container {
        id: id.to_string(),
        message,
    };
    let rel = from.trim_matches('/');
    let dir = rel.split('/').next().unwrap_or_default();
    if dir != "mlops" && dir != "workspace" {
        return Err(fail(format!(
            "cannot copy {from} out: a swarm task gives back /mlops and /workspace only"
        )));
    }
    let Some(tar) = archive_of(lines, dir).map_err(fail)? else {
        return Err(fail(format!(
            "cannot copy {from} out: the task has not printed its files (it has not ended, or was killed)"
        )));
    };
    unpack_tar(id, &tar, from, to, cap).await
}

/// Copies the directory `from` out of `tar` (an archive of `/mlops`, `/workspace` or one of their
/// directories, rooted at `/`) into `to`, at most `cap` bytes.
pub(super) async fn unpack_tar(
    id: &ContainerId,
    tar: &[u8],
    from: &str,
    to: &Path,
    cap: u64,
) -> Result<Copied, BackendError> {
    let fail = |message: String| BackendError::Container {
        id: id.to_string(),
        message,
    };
    let rel = from.trim_matches('/');
    let tar = tar.to_vec();
    let tar = if !rel.contains('/') {
        tar
    } else {
        let rel = rel.to_string();
        tokio::task::spawn_blocking(move || subtree(&tar, &rel))
            .await
            .map_err(|e| fail(format!("copying {from} out stopped: {e}")))?
            .map_err(|e| fail(format!("cannot copy {from} out: {e}")))?
    };
    let to = to.to_path_buf();
    let done = tokio::task::spawn_blocking(move || archive::unpack(&tar[..], &to, cap))
        .await
        .map_err(|e| fail(format!("copying {from} out stopped: {e}")))?
        .map_err(|e| fail(format!("cannot copy {from} out: {e}")))?;
    Ok(Copied {
        bytes: done.bytes,
        left: done.left,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn out(text: &str) -> LogLine {
        LogLine {
            stderr: false,
            text: text.into(),
        }
    }

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, body.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn printed(dir: &str, tar: &[u8]) -> Vec<LogLine> {
        let text = base64::engine::general_purpose::STANDARD.encode(tar);
        let mut lines = vec![
            out("epoch 1/1 accuracy=0.9"),
            out(&format!("{MARK} begin {dir}")),
        ];
        lines.extend(
            text.as_bytes()
                .chunks(76)
                .map(|c| out(std::str::from_utf8(c).unwrap())),
        );
        lines.push(out(&format!("{MARK} end {dir}")));
        lines
    }

    #[tokio::test]
    async fn a_printed_archive_comes_back_whole_or_in_part() {
        let tar = tar_of(&[
            ("mlops/params.json", "{}"),
            ("mlops/checkpoints/epoch-1.pkl", "ck"),
        ]);
        let lines = printed("mlops", &tar);
        let id = ContainerId("svc".into());
        let dir = tempfile::tempdir().unwrap();
        let all = unpack_from_log(&id, &lines, "/mlops", dir.path(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(all.bytes, 4);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("checkpoints/epoch-1.pkl")).unwrap(),
            "ck"
        );
        let ck = tempfile::tempdir().unwrap();
        unpack_from_log(&id, &lines, "/mlops/checkpoints", ck.path(), 1 << 20)
            .await
            .unwrap();
        assert!(ck.path().join("epoch-1.pkl").is_file());
        assert!(!ck.path().join("params.json").exists());
        let none = unpack_from_log(&id, &lines, "/workspace", ck.path(), 1)
            .await
            .unwrap_err();
        assert!(none.to_string().contains("has not printed"), "{none}");
        let elsewhere = unpack_from_log(&id, &lines, "/etc", ck.path(), 1)
            .await
            .unwrap_err();
        assert!(
            elsewhere.to_string().contains("/mlops and /workspace only"),
            "{elsewhere}"
        );
        assert_eq!(without_archives(lines), vec![out("epoch 1/1 accuracy=0.9")]);
    }

    #[test]
    fn the_wrapper_runs_the_command_as_given() {
        let argv = wrapper(&["python3".into(), "train.py".into(), "a b".into()]);
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert_eq!(argv[3..], ["mlops", "python3", "train.py", "a b"]);
        assert!(argv[2].contains("\"$@\" &"));
    }
}
