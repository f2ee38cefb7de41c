//! Taking up an iteration's container after mlops-tui was stopped (job 6 across restarts), without
//! replaying what was stored.
//!
//! While it follows a container, the worker keeps its [`Mark`] (where it stands in the engine's log,
//! and how long `output.log` was at that point) in `iter-N.follow` beside the iteration's directory,
//! out of the container's reach. A successor resumes from the mark: `output.log` is cut back to it
//! and appended to, and the engine's log is read from its stamp on, so no line is shown, stored or
//! parsed twice. A container that ended while nobody followed it is not read from the mark to its
//! end, which may be millions of lines (a flood that went on unattended): only its last
//! [`ADOPT_TAIL`] lines are, then its exit is judged as any other.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Follow, LifeEnd, admit_line, flush, last_line_fallback, recover_final_metric};
use crate::adapters::backend::ContainerBackend;
use crate::core::ids::ContainerId;
use crate::core::metrics::MetricParser;
use crate::core::model::{ContainerState, LogLine};
use crate::engine::msg::{IterationPlan, Msg};
use crate::engine::workers::output::{Cursor, Mark, OUTPUT_CAP, OutputLog};

/// The least time between two writes of the mark: a successor reads again at most this much.
const MARK_EVERY: Duration = Duration::from_secs(1);
/// Lines read back from a container that ended while mlops-tui was away.
pub(super) const ADOPT_TAIL: usize = 1000;

/// `runs/N/iter-K.follow`, beside `runs/N/iter-K/` (the container's `/mlops`, which it may write).
fn mark_path(workdir: &Path) -> PathBuf {
    let name = workdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    workdir.with_file_name(format!("{name}.follow"))
}

/// What `iter-N.follow` holds: the mark, and the container whose log it is a position in (an
/// iteration moved to another engine has a new container, whose log the mark says nothing of).
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    container: String,
    mark: Mark,
}

/// The predecessor's mark in container `id`'s log, if it left a readable one.
fn load(workdir: &Path, id: &ContainerId) -> Option<Mark> {
    let text = std::fs::read(mark_path(workdir)).ok()?;
    let kept: Kept = serde_json::from_slice(&text).ok()?;
    (kept.container == id.0).then_some(kept.mark)
}

/// Keeps the follower's mark on disk, at most once per [`MARK_EVERY`], after `output.log` was
/// flushed up to it. Not synced: a mark lost in a crash costs a successor a second of re-reading.
pub(super) fn keep_mark(f: &mut Follow) {
    if f.marked_at.is_some_and(|at| at.elapsed() < MARK_EVERY) {
        return;
    }
    let Some(id) = &f.container else {
        return;
    };
    f.marked_at = Some(Instant::now());
    let kept = Kept {
        container: id.0.clone(),
        mark: f.cursor.mark(f.out.written()),
    };
    let path = mark_path(&f.workdir);
    let tmp = path.with_extension("follow.tmp");
    let written = serde_json::to_vec(&kept)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!("keeping the log position in {}: {e}", path.display());
    }
}

impl Follow {
    /// A follower for container `id`, which a predecessor followed: at the predecessor's mark in
    /// its log when it left one, from the start of the log otherwise.
    pub(super) fn resumed(
        plan: &IterationPlan,
        parser: MetricParser,
        workdir: PathBuf,
        id: &ContainerId,
    ) -> Follow {
        let mark = load(&workdir, id);
        let mut f = Follow::new(plan, parser, workdir);
        if let Some(mark) = mark {
            f.cursor = Cursor::at(&mark);
            f.out = OutputLog::resume(&f.workdir, OUTPUT_CAP, mark.bytes);
        }
        f
    }
}

/// An adopted container that had already ended: reads what it printed after the mark, at most its
/// last [`ADOPT_TAIL`] lines (a note stands for the rest), then ends the life as the exit says.
/// `None` when the container is not (or no longer known to be) ended: it is followed as usual.
pub(super) async fn ended_while_away<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
) -> Option<LifeEnd> {
    let Ok(Some(ContainerState::Exited(status))) = backend.inspect(id).await else {
        return None;
    };
    let lines = match backend.tail_stamped(id, ADOPT_TAIL).await {
        Ok(lines) => lines,
        Err(e) => {
            tracing::warn!("iteration {}/{}: reading the log's end: {e}", f.run, f.no);
            Vec::new()
        }
    };
    let reaches_mark = match (f.cursor.since(), lines.first()) {
        (Some(since), Some(first)) => first.at <= since,
        _ => false,
    };
    let mut batch = Vec::new();
    if lines.len() >= ADOPT_TAIL && !reaches_mark {
        let note = LogLine {
            stderr: false,
            text: away_note(),
        };
        f.out.write(&note);
        batch.push(note);
        f.cursor = Cursor::default();
    }
    f.cursor.reattach();
    for line in lines {
        admit_line(tx, f, &mut batch, line);
    }
    flush(tx, f, &mut batch);
    recover_final_metric(backend, id, plan, tx, f).await;
    last_line_fallback(plan, tx, f, Some(status));
    Some(LifeEnd {
        status: Some(status),
        cause: None,
        lost: false,
    })
}

/// What stands for the output of an ended container that is not read back.
fn away_note() -> String {
    format!(
        "… the container ended while mlops-tui was not running: only the last {ADOPT_TAIL} lines it \
         printed are read back …"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_lives_beside_the_iteration_directory() {
        let p = mark_path(Path::new("/data/runs/3/iter-2"));
        assert_eq!(p, Path::new("/data/runs/3/iter-2.follow"));
    }

    #[test]
    fn a_mark_is_taken_only_for_the_container_it_was_kept_for() {
        let dir = tempfile::tempdir().unwrap();
        let workdir = dir.path().join("iter-1");
        let mark = Mark {
            last: [Some(42), None],
            same: [1, 0],
            bytes: 10,
        };
        let kept = Kept {
            container: "abc".into(),
            mark,
        };
        std::fs::write(mark_path(&workdir), serde_json::to_vec(&kept).unwrap()).unwrap();
        assert_eq!(load(&workdir, &ContainerId("abc".into())), Some(mark));
        assert_eq!(load(&workdir, &ContainerId("other".into())), None);
    }
}
