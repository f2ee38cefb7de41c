//! GPUs as slots: a run that asks for GPUs places trials only where enough devices are free, each
//! container asks for the devices its trial holds, and a freed device goes to the next trial.

use std::path::{Path, PathBuf};

use super::tests::{RUN, commit, events, train};
use super::*;
use crate::core::config::Config;
use crate::core::gpu::{GpuRequest, device_ids};
use crate::core::ids::IterationNo;
use crate::core::model::ImageSpec;
use crate::engine::msg::IterationPlan;
use crate::engine::state::EngineState;
use crate::engine::trigger::Trigger;

fn config(parallel: u32, gpus: Option<&str>) -> Config {
    let gpus = gpus
        .map(|g| format!("[resources]\ngpus = {g}\n"))
        .unwrap_or_default();
    let text = format!(
        r#"
[train]
command = ["python3", "train.py"]
[metric]
name = "accuracy"
target = 0.99
[budget]
max_iterations = 10
max_failures = 1
parallel = {parallel}
{gpus}[tweak]
strategy = "random"
apply = "auto"
[tweak.space]
k = {{ values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] }}
"#
    );
    Config::parse(&text, Path::new("mlops.toml")).unwrap()
}

fn engine(name: &str, slots: u32) -> EngineState {
    EngineState {
        name: name.into(),
        endpoint: format!("tcp://{name}:2376"),
        slots,
        up: Some(true),
        down_since_ms: None,
        detail: String::new(),
        nodes: None,
    }
}

/// A run of `config` on `engines` (name, slots, declared GPUs) up to its image being ready; `found`
/// is what the probe reported. Returns the effects of the image being ready.
fn ready(
    config: Config,
    engines: &[(&str, u32, u32)],
    found: Vec<(String, Vec<String>)>,
) -> (PipelineState, Vec<Effect>) {
    let mut s = PipelineState::new(PathBuf::from("/p"), false);
    s.engines = engines
        .iter()
        .map(|(n, slots, _)| engine(n, *slots))
        .collect();
    s.engine_gpus = engines
        .iter()
        .filter(|(_, _, g)| *g > 0)
        .map(|(n, _, g)| (n.to_string(), device_ids(*g)))
        .collect();
    let (c, trigger) = (commit("a"), Trigger::Start);
    update(&mut s, Msg::RunRequested { commit: c, trigger }, 0);
    let created = Msg::RunCreated {
        run: RUN,
        commit: commit("a"),
    };
    update(&mut s, created, 1);
    let mut fx = update(
        &mut s,
        Msg::GpusFound {
            run: RUN,
            engines: found,
        },
        2,
    );
    update(
        &mut s,
        Msg::Prepared {
            run: RUN,
            config: Box::new(config),
            workspace: PathBuf::from("/w"),
            image_reason: "torch".into(),
            image: ImageSpec::Profile(crate::adapters::images::profile("torch").unwrap()),
            knobs: Box::default(),
            warnings: Vec::new(),
        },
        2,
    );
    let image = "mlops-tui/torch-cuda:x".to_string();
    fx.extend(update(&mut s, Msg::ImageReady { run: RUN, image }, 3));
    (s, fx)
}

fn plans(fx: &[Effect]) -> Vec<&IterationPlan> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::StartIteration(p) => Some(&**p),
            _ => None,
        })
        .collect()
}

/// The devices each started container asks for, in start order.
fn asked(fx: &[Effect]) -> Vec<Option<GpuRequest>> {
    plans(fx)
        .iter()
        .map(|p| p.config.resources.gpus.clone())
        .collect()
}

fn devices(ids: &[&str]) -> Option<GpuRequest> {
    Some(GpuRequest::Devices(
        ids.iter().map(|s| s.to_string()).collect(),
    ))
}

fn held(s: &PipelineState, no: u32) -> Vec<String> {
    s.run
        .as_ref()
        .and_then(|r| r.iteration(IterationNo(no)))
        .map(|i| i.gpus.clone())
        .unwrap()
}

#[test]
fn two_gpus_run_two_trials_each_on_its_own_device_whatever_the_slots() {
    let (s, fx) = ready(config(4, Some("1")), &[("local", 4, 2)], Vec::new());
    assert_eq!(asked(&fx), vec![devices(&["0"]), devices(&["1"])], "{fx:?}");
    assert_eq!(held(&s, 1), ["0"]);
    assert_eq!(held(&s, 2), ["1"]);
    assert_eq!(
        s.free_slots("local"),
        0,
        "no GPU free: the other slots wait"
    );
    let said = events(&fx);
    assert!(
        said.iter()
            .any(|e| e.ends_with("iteration 1 holds gpu 0 on local")),
        "{said:?}"
    );
}

#[test]
fn a_freed_gpu_goes_to_the_next_trial_and_no_device_is_ever_shared() {
    let (mut s, _) = ready(config(4, Some("1")), &[("local", 4, 2)], Vec::new());
    let fx = train(&mut s, 1, &[0.5], 0);
    assert_eq!(asked(&fx), vec![devices(&["0"])], "{fx:?}");
    assert_eq!(held(&s, 3), ["0"]);
    assert_eq!(held(&s, 2), ["1"]);
    let active: Vec<String> = s.active().iter().flat_map(|i| i.gpus.clone()).collect();
    assert_eq!(active.len(), 2);
    assert_ne!(active[0], active[1]);
}

#[test]
fn several_gpus_per_trial_or_all_take_whole_groups() {
    let (s, fx) = ready(config(4, Some("2")), &[("local", 4, 3)], Vec::new());
    assert_eq!(asked(&fx), vec![devices(&["0", "1"])]);
    assert_eq!(s.free_slots("local"), 0);
    let (_, fx) = ready(config(4, Some("\"all\"")), &[("local", 4, 3)], Vec::new());
    assert_eq!(asked(&fx), vec![devices(&["0", "1", "2"])]);
    let (_, fx) = ready(config(4, Some("[\"2\"]")), &[("local", 4, 3)], Vec::new());
    assert_eq!(asked(&fx), vec![devices(&["2"])]);
}

#[test]
fn trials_spread_over_engines_by_their_free_gpus() {
    let (s, fx) = ready(
        config(8, Some("1")),
        &[("e1", 4, 1), ("e2", 4, 2)],
        Vec::new(),
    );
    let on: Vec<(String, Option<GpuRequest>)> = plans(&fx)
        .iter()
        .map(|p| (p.engine.clone().unwrap(), p.config.resources.gpus.clone()))
        .collect();
    assert_eq!(on.len(), 3, "{on:?}");
    let mut sorted = on.clone();
    sorted.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(format!("{:?}", a.1).cmp(&format!("{:?}", b.1)))
    });
    assert_eq!(
        sorted,
        vec![
            ("e1".to_string(), devices(&["0"])),
            ("e2".to_string(), devices(&["0"])),
            ("e2".to_string(), devices(&["1"])),
        ]
    );
    assert_eq!(s.capacity(), 0);
}

#[test]
fn without_a_gpu_request_declared_gpus_change_nothing() {
    let (s, fx) = ready(config(3, None), &[("local", 3, 1)], Vec::new());
    assert_eq!(asked(&fx), vec![None, None, None]);
    assert!(held(&s, 1).is_empty());
}

#[test]
fn gpus_read_by_the_probe_are_counted_like_declared_ones() {
    let found = vec![("local".to_string(), vec!["0".to_string()])];
    let (s, fx) = ready(config(3, Some("1")), &[("local", 3, 0)], found);
    assert_eq!(asked(&fx), vec![devices(&["0"])]);
    assert_eq!(s.engine_gpus.get("local").unwrap(), &["0".to_string()]);
    let said = events(&fx);
    assert!(
        said.iter()
            .any(|e| e.ends_with("engine local: 1 GPU found (0); each trial holds its own")),
        "{said:?}"
    );
}

#[test]
fn an_engine_whose_gpus_are_unknown_passes_the_request_as_written() {
    let (_, fx) = ready(config(2, Some("1")), &[("local", 2, 0)], Vec::new());
    assert_eq!(asked(&fx), vec![Some(GpuRequest::Count(1)); 2]);
}
