//! A trial that could not start because an engine's set-up is wrong: a swarm's registry that does
//! not answer or refuses the image, a trial service Swarm refuses, a `host` that is not a swarm
//! manager. No retry and no other parameters fix these, so the run stops at the first one.
//!
//! The adapter words the fault with [`SetupFault`] (what, where: the engine and its `[[engines]]`
//! entry of mlops.toml, and the fix); the text travels as the iteration's failure reason, ending in
//! [`SETUP_NOTE`], and [`start_failure`] recognises it there.

use std::fmt;

use super::{Class, Diagnosis};

/// The end of every set-up fault's text: what [`start_failure`] recognises.
pub const SETUP_NOTE: &str = "[engine set-up: no retry or tweak fixes this]";

/// What is wrong with the set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupProblem {
    /// Nothing answers at the swarm's `registry`, as the manager's engine sees it.
    RegistryUnreachable,
    /// The registry answered and refused the trial's image.
    RegistryRefused,
    /// Swarm refused the trial's service spec.
    SpecRefused,
    /// `host` is not a swarm manager.
    NotManager,
}

/// One set-up fault of an engine, as people read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupFault {
    /// The engine's name in `[[engines]]`.
    pub engine: String,
    pub problem: SetupProblem,
    /// What happened, quoting whoever refused.
    pub what: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for SetupFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "engine {} (its [[engines]] entry in mlops.toml): {}; fix: {} {SETUP_NOTE}",
            self.engine, self.what, self.fix
        )
    }
}

impl SetupFault {
    /// The manager's engine cannot reach `registry` (`why` in its words); found before anything was
    /// built or pushed, or while a push was retrying.
    pub fn registry_unreachable(engine: &str, registry: &str, why: &str) -> SetupFault {
        SetupFault {
            engine: engine.into(),
            problem: SetupProblem::RegistryUnreachable,
            what: format!(
                "the registry {registry} does not answer the swarm manager's engine ({})",
                one_line(why)
            ),
            fix: format!(
                "start the registry, or set `registry` of this entry to one that runs; the manager's \
                 engine pushes, so it must reach {registry} (and trust it when it speaks plain HTTP: \
                 `insecure-registries` in the manager's daemon.json)"
            ),
        }
    }

    /// `registry` answered and refused the trial image (`why` in its words).
    pub fn registry_refused(engine: &str, registry: &str, why: &str) -> SetupFault {
        SetupFault {
            engine: engine.into(),
            problem: SetupProblem::RegistryRefused,
            what: format!(
                "the registry {registry} refused the trial image: \"{}\"",
                one_line(why)
            ),
            fix:
                "make the registry take pushes (not read-only, room on its storage, the manager's \
                  engine logged in when it asks for credentials: `docker login` on the manager), \
                  or set `registry` of this entry to one that does"
                    .into(),
        }
    }

    /// Swarm refused the trial's service (`why` in its words); the setting it is about is named.
    pub fn spec_refused(engine: &str, why: &str) -> SetupFault {
        let why = one_line(why);
        SetupFault {
            engine: engine.into(),
            problem: SetupProblem::SpecRefused,
            what: format!(
                "the swarm refused the trial's service over {}: \"{why}\"",
                refused_setting(&why)
            ),
            fix: "change that setting to what Swarm accepts (the quoted reason says what)".into(),
        }
    }

    /// `endpoint` is not a swarm manager; its swarm state is `state`.
    pub fn not_manager(engine: &str, endpoint: &str, state: &str) -> SetupFault {
        SetupFault {
            engine: engine.into(),
            problem: SetupProblem::NotManager,
            what: format!("{endpoint} is not a swarm manager (its swarm state is {state:?})"),
            fix: "point `host` of this entry at a manager, or make this engine one with `docker \
                  swarm init`"
                .into(),
        }
    }
}

/// The setting of mlops.toml a reason of Swarm's is about.
pub fn refused_setting(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("memory") {
        "[resources] memory"
    } else if r.contains("cpu") {
        "[resources] cpus"
    } else if r.contains("constraint") {
        "`constraints` of this entry"
    } else if r.contains("generic") || r.contains("nvidia-gpu") {
        "[resources] gpus"
    } else if r.contains("ulimit") {
        "[resources] disk"
    } else {
        "a setting of the trial's service"
    }
}

/// The first line of `text`, trimmed: Docker's errors sometimes end in a newline or a list.
fn one_line(text: &str) -> String {
    text.trim().lines().next().unwrap_or("").trim().to_string()
}

/// The triage of a start failure: a set-up fault (its text holds [`SETUP_NOTE`]) stops the run;
/// `None` for anything else.
pub fn start_failure(cause: &str) -> Option<Diagnosis> {
    let at = cause.find(SETUP_NOTE)?;
    let error = cause[..at].trim_end().to_string();
    Some(Diagnosis {
        class: Class::EngineSetup,
        error: Some(error),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_says_what_where_and_the_fix_and_stops_the_run() {
        let fault = SetupFault::registry_unreachable(
            "cluster",
            "10.0.0.9:5000",
            "dial tcp 10.0.0.9:5000: connect: connection refused\n",
        );
        let text = format!("could not start the container: image x: {fault}");
        assert!(
            text.contains("engine cluster (its [[engines]] entry in mlops.toml): the registry 10.0.0.9:5000 does not answer"),
            "{text}"
        );
        assert!(text.contains("(dial tcp 10.0.0.9:5000: connect: connection refused)"));
        assert!(text.contains("fix: start the registry"));
        let d = start_failure(&text).expect("a set-up fault");
        assert_eq!(d.class, Class::EngineSetup);
        assert!(d.is_permanent());
        assert!(!d.error.clone().unwrap_or_default().contains(SETUP_NOTE));
        assert!(d.hint().unwrap_or_default().contains("[[engines]]"));
        assert_eq!(
            start_failure("ran past 5s (budget.iteration_timeout): stopped"),
            None
        );
    }

    #[test]
    fn a_worker_as_host_says_so_in_the_words_the_connect_error_uses() {
        let text = SetupFault::not_manager("c", "unix:///run/w.sock", "active").to_string();
        assert!(
            text.contains(
                "unix:///run/w.sock is not a swarm manager (its swarm state is \"active\")"
            ),
            "{text}"
        );
        assert!(text.contains("`docker swarm init`"), "{text}");
        assert!(start_failure(&text).is_some_and(|d| d.is_permanent()));
    }

    #[test]
    fn swarm_reasons_name_their_setting() {
        let fault = SetupFault::spec_refused(
            "c",
            "rpc error: code = InvalidArgument desc = invalid memory value 1048576: Must be at least 4MiB",
        );
        assert!(
            fault.what.starts_with(
                "the swarm refused the trial's service over [resources] memory: \"rpc error"
            ),
            "{}",
            fault.what
        );
        assert_eq!(
            refused_setting("invalid cpu value 0.0005"),
            "[resources] cpus"
        );
        assert_eq!(
            refused_setting("invalid constraint: x"),
            "`constraints` of this entry"
        );
        assert_eq!(refused_setting("what"), "a setting of the trial's service");
    }
}
