//! GPUs: what a trial asks for (`[resources] gpus`) and which of an engine's devices it gets.
//!
//! An engine's GPUs are named by the device ids the NVIDIA runtime knows (`"0"`, `"1"`, …), either
//! declared (`[[engines]] gpus = 2` means `"0"` and `"1"`) or read from the engine. A trial holds
//! the devices it was given until it is decided, and two trials never hold the same device: a
//! trial that finds too few free devices waits, as it waits for a slot. Everything here is pure.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `[resources] gpus`: how many GPUs each trial's container gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawGpus", into = "RawGpus")]
pub enum GpuRequest {
    /// That many devices, whichever are free (`gpus = 1`). At least 1.
    Count(u32),
    /// Every device of the engine (`gpus = "all"`): the trial has the engine's GPUs to itself.
    All,
    /// These devices and no others (`gpus = ["0", "2"]`). Not empty, no id twice.
    Devices(Vec<String>),
}

/// `gpus` as written: a whole number, `"all"`, or a list of device ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum RawGpus {
    Count(i64),
    Word(String),
    Devices(Vec<String>),
}

impl TryFrom<RawGpus> for GpuRequest {
    type Error = String;

    fn try_from(raw: RawGpus) -> Result<Self, String> {
        match raw {
            RawGpus::Count(n) if n >= 1 => u32::try_from(n)
                .map(GpuRequest::Count)
                .map_err(|_| format!("`resources.gpus` = {n} is more GPUs than any engine has")),
            RawGpus::Count(n) => Err(format!(
                "`resources.gpus` must be at least 1 (leave it out to train on the CPU), found {n}"
            )),
            RawGpus::Word(w) if w == "all" => Ok(GpuRequest::All),
            RawGpus::Word(w) => Err(format!(
                "`resources.gpus` = {w:?}: expected a number of GPUs, \"all\", or device ids such as [\"0\", \"2\"]"
            )),
            RawGpus::Devices(ids) => {
                if ids.is_empty() {
                    return Err(
                        "`resources.gpus` = []: name at least one device id, or leave it out to train on the CPU"
                            .into(),
                    );
                }
                if let Some(bad) = ids.iter().find(|id| !valid_id(id)) {
                    return Err(format!(
                        "`resources.gpus`: device id {bad:?} is not an index (\"0\") or a GPU UUID (\"GPU-…\")"
                    ));
                }
                let twice = ids
                    .iter()
                    .enumerate()
                    .find(|(i, id)| ids[..*i].contains(id));
                if let Some((_, id)) = twice {
                    return Err(format!("`resources.gpus`: device id {id:?} is named twice"));
                }
                Ok(GpuRequest::Devices(ids))
            }
        }
    }
}

impl From<GpuRequest> for RawGpus {
    fn from(r: GpuRequest) -> RawGpus {
        match r {
            GpuRequest::Count(n) => RawGpus::Count(i64::from(n)),
            GpuRequest::All => RawGpus::Word("all".into()),
            GpuRequest::Devices(ids) => RawGpus::Devices(ids),
        }
    }
}

impl fmt::Display for GpuRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuRequest::Count(n) => write!(f, "{n}"),
            GpuRequest::All => write!(f, "\"all\""),
            GpuRequest::Devices(ids) => {
                let quoted: Vec<String> = ids.iter().map(|id| format!("{id:?}")).collect();
                write!(f, "[{}]", quoted.join(", "))
            }
        }
    }
}

/// A device id: an index (`0`) or a UUID (`GPU-8d1c…`, `MIG-…`), nothing a shell or the runtime's
/// list syntax would split.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':' || c == '/')
}

/// The ids of an engine that declares `n` GPUs: `"0"` up to `n - 1`.
pub fn device_ids(n: u32) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

/// How many devices one trial takes on an engine with `all` devices.
pub fn wanted(request: &GpuRequest, all: &[String]) -> usize {
    match request {
        GpuRequest::Count(n) => *n as usize,
        GpuRequest::All => all.len(),
        GpuRequest::Devices(ids) => ids.len(),
    }
}

/// The devices of `all` no trial holds, in the engine's order.
pub fn free<'a>(all: &'a [String], held: &[String]) -> Vec<&'a String> {
    all.iter().filter(|d| !held.contains(d)).collect()
}

/// The devices a new trial gets on an engine with `all` devices of which `held` are taken; `None`
/// when too few are free (the trial waits). `All` needs every device free; `Devices` needs exactly
/// those.
pub fn pick(request: &GpuRequest, all: &[String], held: &[String]) -> Option<Vec<String>> {
    let free = free(all, held);
    match request {
        GpuRequest::Count(n) => {
            let n = *n as usize;
            (n <= free.len()).then(|| free.into_iter().take(n).cloned().collect())
        }
        GpuRequest::All => (!all.is_empty() && free.len() == all.len()).then(|| all.to_vec()),
        GpuRequest::Devices(ids) => ids.iter().all(|id| free.contains(&id)).then(|| ids.clone()),
    }
}

/// How many more trials fit on the free devices at once (each takes its own).
pub fn trials_that_fit(request: &GpuRequest, all: &[String], held: &[String]) -> u32 {
    let mut held = held.to_vec();
    let mut n = 0;
    while let Some(got) = pick(request, all, &held) {
        n += 1;
        held.extend(got);
        if n >= all.len() as u32 {
            break;
        }
    }
    n
}

/// Whether an engine with `all` devices can ever give a trial what `request` asks: the error names
/// the engine, what it has and the fix.
pub fn check_engine(engine: &str, request: &GpuRequest, all: &[String]) -> Result<(), String> {
    let has = match all.len() {
        1 => "1 GPU".to_string(),
        n => format!("{n} GPUs"),
    };
    match request {
        GpuRequest::Count(n) if *n as usize > all.len() => Err(format!(
            "engine {engine} has {has} and [resources] gpus = {n} asks for {n} per trial: lower [resources] gpus to at most {}, or train on an engine with more GPUs",
            all.len()
        )),
        GpuRequest::Devices(ids) => match ids.iter().find(|id| !all.contains(id)) {
            Some(id) => Err(format!(
                "engine {engine} has no GPU {id:?} (it has {has}: {}): name devices it has in [resources] gpus",
                all.join(", ")
            )),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The devices a trial holds, for people: `gpu 0`, `gpus 0,1`.
pub fn label(devices: &[String]) -> String {
    match devices {
        [one] => format!("gpu {one}"),
        many => format!("gpus {}", many.join(",")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[derive(Deserialize)]
    struct T {
        gpus: GpuRequest,
    }

    fn parse(text: &str) -> Result<GpuRequest, String> {
        toml::from_str::<T>(text)
            .map(|t| t.gpus)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_count_all_or_device_ids_are_read() {
        assert_eq!(parse("gpus = 2").unwrap(), GpuRequest::Count(2));
        assert_eq!(parse("gpus = \"all\"").unwrap(), GpuRequest::All);
        assert_eq!(
            parse("gpus = [\"0\", \"2\"]").unwrap(),
            GpuRequest::Devices(ids(&["0", "2"]))
        );
    }

    #[test]
    fn bad_requests_say_what_is_expected() {
        for (text, says) in [
            ("gpus = 0", "at least 1"),
            ("gpus = -1", "at least 1"),
            ("gpus = \"some\"", "expected a number of GPUs"),
            ("gpus = []", "at least one device id"),
            ("gpus = [\"0\", \"0\"]", "named twice"),
            ("gpus = [\"0 1\"]", "not an index"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn a_request_round_trips_as_written() {
        for r in [
            GpuRequest::Count(1),
            GpuRequest::All,
            GpuRequest::Devices(ids(&["1"])),
        ] {
            #[derive(Serialize)]
            struct W<'a> {
                gpus: &'a GpuRequest,
            }
            let text = toml::to_string(&W { gpus: &r }).unwrap();
            assert_eq!(parse(&text).unwrap(), r, "{text}");
        }
        assert_eq!(
            GpuRequest::Devices(ids(&["0", "2"])).to_string(),
            "[\"0\", \"2\"]"
        );
    }

    #[test]
    fn a_count_takes_the_first_free_devices_and_never_a_held_one() {
        let all = device_ids(4);
        let one = GpuRequest::Count(1);
        assert_eq!(pick(&one, &all, &[]), Some(ids(&["0"])));
        assert_eq!(pick(&one, &all, &ids(&["0", "2"])), Some(ids(&["1"])));
        let two = GpuRequest::Count(2);
        assert_eq!(pick(&two, &all, &ids(&["1"])), Some(ids(&["0", "2"])));
        assert_eq!(pick(&two, &all, &ids(&["0", "1", "3"])), None);
    }

    #[test]
    fn all_needs_every_device_free_and_devices_need_exactly_theirs() {
        let all = device_ids(2);
        assert_eq!(pick(&GpuRequest::All, &all, &[]), Some(ids(&["0", "1"])));
        assert_eq!(pick(&GpuRequest::All, &all, &ids(&["1"])), None);
        assert_eq!(pick(&GpuRequest::All, &[], &[]), None);
        let d = GpuRequest::Devices(ids(&["1"]));
        assert_eq!(pick(&d, &all, &ids(&["0"])), Some(ids(&["1"])));
        assert_eq!(pick(&d, &all, &ids(&["1"])), None);
    }

    #[test]
    fn trials_that_fit_count_disjoint_picks() {
        let all = device_ids(4);
        assert_eq!(trials_that_fit(&GpuRequest::Count(1), &all, &[]), 4);
        assert_eq!(trials_that_fit(&GpuRequest::Count(2), &all, &[]), 2);
        assert_eq!(trials_that_fit(&GpuRequest::Count(3), &all, &[]), 1);
        assert_eq!(
            trials_that_fit(&GpuRequest::Count(1), &all, &ids(&["0", "3"])),
            2
        );
        assert_eq!(trials_that_fit(&GpuRequest::All, &all, &[]), 1);
        assert_eq!(trials_that_fit(&GpuRequest::All, &all, &ids(&["2"])), 0);
        let d = GpuRequest::Devices(ids(&["0", "2"]));
        assert_eq!(trials_that_fit(&d, &all, &[]), 1);
        assert_eq!(trials_that_fit(&GpuRequest::Count(1), &[], &[]), 0);
    }

    #[test]
    fn an_engine_with_too_few_gpus_is_named_with_the_fix() {
        let all = device_ids(2);
        let e = check_engine("e1", &GpuRequest::Count(3), &all).unwrap_err();
        assert_eq!(
            e,
            "engine e1 has 2 GPUs and [resources] gpus = 3 asks for 3 per trial: lower [resources] gpus to at most 2, or train on an engine with more GPUs"
        );
        let e = check_engine("e1", &GpuRequest::Devices(ids(&["5"])), &all).unwrap_err();
        assert!(
            e.contains("engine e1 has no GPU \"5\" (it has 2 GPUs: 0, 1)"),
            "{e}"
        );
        assert!(check_engine("e1", &GpuRequest::Count(2), &all).is_ok());
        assert!(check_engine("e1", &GpuRequest::All, &all).is_ok());
    }

    #[test]
    fn labels_name_the_devices() {
        assert_eq!(label(&ids(&["0"])), "gpu 0");
        assert_eq!(label(&ids(&["0", "1"])), "gpus 0,1");
    }
}
