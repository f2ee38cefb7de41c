//! The lives of an iteration's container: each death reported, each revival the reducer grants
//! carried out. A backend that revives in place starts the same container again; one that does not
//! (a swarm, whose ended task stays ended and whose node may be gone) starts a new attempt, a new
//! container from the iteration's directory on this machine, after fencing off the old one.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::adapters::backend::ContainerBackend;
use crate::core::ids::ContainerId;
use crate::engine::msg::{IterationPlan, Msg};
use crate::engine::workers::disk;
use crate::engine::workers::output::Cursor;

use super::{
    Control, Follow, Launch, LifeEnd, Links, checkpoints, exited, follow, report, resume, start,
    workdir,
};

/// How the lives ended: the container followed last, and the earlier attempts fenced off on the
/// way (each to be removed).
pub(super) struct Last {
    pub id: ContainerId,
    pub fenced: Vec<ContainerId>,
}

/// Follows the container through every life the reducer grants it (revivals), reporting each death,
/// until the reducer releases it. An adopted container that already ended is taken up by
/// [`resume::ended_while_away`] instead of followed.
pub(super) async fn lives<B: ContainerBackend + ?Sized>(
    backend: &B,
    mut id: ContainerId,
    mut launch: Launch<'_>,
    links: &mut Links,
    mut f: Follow,
    adopted: bool,
) -> Last {
    let plan = launch.plan;
    let (tx, ctl) = (&links.tx, &mut links.ctl);
    let mut fenced = Vec::new();
    let mut ended = match adopted {
        true => resume::ended_while_away(backend, &id, plan, tx, &mut f).await,
        false => None,
    };
    loop {
        let end = match ended.take() {
            Some(end) => end,
            None => follow::follow(backend, &id, plan, tx, ctl, &mut f).await,
        };
        report_end(backend, &id, plan, tx, &mut f, end).await;
        let Some(delay) = verdict(ctl).await else {
            return Last { id, fenced };
        };
        let cancelled = tokio::select! {
            _ = tokio::time::sleep(delay) => false,
            c = ctl.recv() => !matches!(c, Some(Control::Revive { .. })),
        };
        if cancelled {
            return Last { id, fenced };
        }
        if let Err(e) = workdir::write_params(&f.workdir, plan) {
            let cause = format!(
                "could not revive the container: cannot rewrite {}: {e}",
                f.workdir.join(workdir::PARAMS_FILE).display()
            );
            return fail_revival(tx, ctl, plan, cause, Last { id, fenced }).await;
        }
        let revived = match backend.revives_in_place() {
            true => backend
                .restart(&id)
                .await
                .map(|()| id.clone())
                .map_err(|e| e.to_string()),
            false => new_attempt(backend, &id, &mut launch, &mut f).await,
        };
        match revived {
            Ok(new) if new != id => {
                fenced.push(std::mem::replace(&mut id, new));
            }
            Ok(_) => {}
            Err(cause) => {
                let cause = format!("could not revive the container: {cause}");
                return fail_revival(tx, ctl, plan, cause, Last { id, fenced }).await;
            }
        }
        let _ = tx.send(Msg::Revived {
            run: plan.run,
            no: plan.no,
            id: id.clone(),
        });
    }
}

/// Says how a life ended: what it left (copied home from an engine that does not share our disk),
/// then the death itself, or the loss of its host (whose files are out of reach: the checkpoints
/// that came home while it ran are what a new attempt resumes from).
async fn report_end<B: ContainerBackend + ?Sized>(
    backend: &B,
    id: &ContainerId,
    plan: &IterationPlan,
    tx: &mpsc::UnboundedSender<Msg>,
    f: &mut Follow,
    mut end: LifeEnd,
) {
    if end.lost {
        checkpoints::copy_last(backend, id, f).await;
    } else {
        checkpoints::bring_home(backend, id, f, tx).await;
    }
    let over_disk = match f.over_disk.take() {
        Some(usage) => Some(disk::account(plan, &f.workdir, usage, f.remote).await),
        None => None,
    };
    end.cause = over_disk.clone().or(end.cause);
    let mut exit = report::exit_report(plan, f, &mut end).await;
    exit.over_disk = over_disk;
    let (run, no) = (plan.run, plan.no);
    let _ = tx.send(Msg::ExitReport {
        run,
        no,
        report: exit,
    });
    let msg = match (end.lost, end.cause) {
        (true, Some(why)) => Msg::Lost { run, no, why },
        (_, cause) => exited(plan, end.status, cause),
    };
    let _ = tx.send(msg);
}

/// A revival as a new container: the old one is stopped at once (fenced: were its host to come
/// back, it could not go on), the iteration's newest attempt recorded, and a new container started
/// from the iteration's directory, where the checkpoints that came home are. The log of the new
/// container is read from its start.
async fn new_attempt<B: ContainerBackend + ?Sized>(
    backend: &B,
    old: &ContainerId,
    launch: &mut Launch<'_>,
    f: &mut Follow,
) -> Result<ContainerId, String> {
    if let Err(e) = backend.stop(old, Duration::ZERO).await {
        tracing::warn!("fencing off attempt {old}: {e}");
    }
    launch.attempt += 1;
    workdir::set_attempt(launch.workdir, launch.attempt).map_err(|e| {
        format!(
            "cannot record attempt {} beside {}: {e}",
            launch.attempt,
            launch.workdir.display()
        )
    })?;
    let id = start::start_again(backend, launch)
        .await
        .map_err(|e| e.to_string())?;
    f.attempt = launch.attempt;
    f.container = Some(id.clone());
    f.cursor = Cursor::default();
    f.copied_epoch = None;
    f.copied_at = None;
    f.waiting = super::waiting::Waiting::default();
    Ok(id)
}

/// A revival that could not be carried out: the iteration ends with `cause`, once the reducer
/// released it (so that removal is ordered after its verdict).
async fn fail_revival(
    tx: &mpsc::UnboundedSender<Msg>,
    ctl: &mut mpsc::UnboundedReceiver<Control>,
    plan: &IterationPlan,
    cause: String,
    last: Last,
) -> Last {
    let _ = tx.send(exited(plan, None, Some(cause)));
    released(ctl).await;
    last
}

/// The reducer's verdict on a death: revive after the delay, or `None` when released.
async fn verdict(ctl: &mut mpsc::UnboundedReceiver<Control>) -> Option<Duration> {
    loop {
        match ctl.recv().await {
            Some(Control::Revive { delay }) => return Some(delay),
            Some(Control::Release) | None => return None,
            Some(Control::Stop(_)) => continue,
        }
    }
}

/// Waits until the reducer releases the iteration (or the engine is gone).
pub(super) async fn released(ctl: &mut mpsc::UnboundedReceiver<Control>) {
    while let Some(c) = ctl.recv().await {
        if matches!(c, Control::Release) {
            break;
        }
    }
}
