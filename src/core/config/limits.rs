//! Limits a configuration must fit before any container starts: the size of the parameters, and the
//! Docker engine's CPUs and memory. Past either, the engine refuses the container and the iteration is
//! burnt on an error that does not name `mlops.toml`.

use std::path::Path;

use super::{Config, ConfigError, Params, Resources, Violation};

/// The most one parameter value may take, serialized as JSON.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The most the whole parameter set may take, serialized as JSON. The set reaches the container in
/// one environment variable (`MLOPS_PARAMS`), and Linux refuses any single environment string over
/// 128 KiB (`MAX_ARG_STRLEN`) with "argument list too long"; this leaves room below it.
pub const MAX_PARAMS_BYTES: usize = 96 * 1024;

/// The most dimensions `[tweak.space]` may have. Every strategy learns a dimension from trials, so
/// a search over more never ends usefully, and each dimension costs work at every proposal; a space
/// over this is refused before anything else is checked, in time that does not grow with it.
pub const MAX_DIMENSIONS: usize = 100;

/// The most trials `[budget] parallel` may ask for at once, whatever the engines: each is a
/// container with its own directory and its own log reader.
pub const MAX_PARALLEL: u32 = 256;

/// What the container engine can give one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    /// CPUs the engine sees (Docker's `NCPU`); `--cpus` above it is refused.
    pub cpus: u64,
    /// Memory the engine's host has (Docker's `MemTotal`), in bytes.
    pub memory_bytes: u64,
    /// How many hosts of at most these CPUs and memory the engine places containers on: 1 for a
    /// Docker engine, the ready nodes of a swarm (each counted as large as the largest, so what
    /// fits is an upper bound: Swarm places by its own reservations, and a task that finds no room
    /// waits, with Swarm's reason).
    pub hosts: u32,
}

/// How many containers of `resources` an engine with `limits` holds at once, and what bounds it, in
/// words (`2 CPUs and [resources] cpus = 1`); `None` when the engine reported neither its CPUs nor
/// its memory. `--cpus` is a quota, not a reservation, so more would start, but trials side by side
/// would then share the CPUs each was promised (and memory limits that add up past the host's invite
/// the kernel's OOM killer): the engine's trials are capped to what it holds.
pub fn trials_that_fit(resources: &Resources, limits: EngineLimits) -> Option<(u32, String)> {
    let hosts = limits.hosts.max(1);
    let on = match hosts {
        1 => String::new(),
        n => format!("{n} nodes of at most "),
    };
    let by_cpus = (limits.cpus > 0 && resources.cpus > 0.0).then(|| {
        let n = (limits.cpus as f64 / resources.cpus + 1e-9).floor() * f64::from(hosts);
        let why = format!(
            "{on}{} CPU{} and [resources] cpus = {}",
            limits.cpus,
            if limits.cpus == 1 { "" } else { "s" },
            resources.cpus
        );
        (n.min(f64::from(u32::MAX)) as u32, why)
    });
    let by_memory = (limits.memory_bytes > 0 && resources.memory.0 > 0).then(|| {
        let n = (limits.memory_bytes / resources.memory.0).saturating_mul(u64::from(hosts));
        let why = format!(
            "{on}{} of memory and [resources] memory = {}",
            approx(limits.memory_bytes),
            resources.memory
        );
        (u32::try_from(n).unwrap_or(u32::MAX), why)
    });
    match (by_cpus, by_memory) {
        (Some(c), Some(m)) => Some(if m.0 < c.0 { m } else { c }),
        (c, m) => c.or(m),
    }
}

/// Checks a parameter set against [`MAX_VALUE_BYTES`] and [`MAX_PARAMS_BYTES`]. The error is one
/// line for people: which value, its size, the cap and what to do instead.
pub fn check_params_size(params: &Params) -> Result<(), String> {
    if let Some((name, size)) = oversized_value(params) {
        return Err(value_message(name, size));
    }
    let total = json_len(params);
    if total > MAX_PARAMS_BYTES {
        return Err(total_message(total));
    }
    Ok(())
}

/// The first value over the per-value cap, with its serialized size.
fn oversized_value(params: &Params) -> Option<(&String, usize)> {
    params
        .iter()
        .map(|(name, v)| (name, json_len(v)))
        .find(|(_, size)| *size > MAX_VALUE_BYTES)
}

fn value_message(name: &str, size: usize) -> String {
    format!(
        "`{name}` is {} as JSON; a parameter value may be at most {} (the parameters reach the \
         container in one environment variable): keep large data in a file of the repository and \
         pass its path",
        approx(size as u64),
        approx(MAX_VALUE_BYTES as u64)
    )
}

fn total_message(total: usize) -> String {
    format!(
        "the parameters are {} together as JSON; at most {} fit in the container's environment \
         (MLOPS_PARAMS): keep large data in a file of the repository and pass its path",
        approx(total as u64),
        approx(MAX_PARAMS_BYTES as u64)
    )
}

fn json_len<T: serde::Serialize>(v: &T) -> usize {
    serde_json::to_string(v).map(|s| s.len()).unwrap_or(0)
}

/// A byte count for people, to one decimal (`15.5 GiB`).
fn approx(bytes: u64) -> String {
    crate::core::units::ByteSize(bytes).approx()
}

impl Config {
    /// At most [`MAX_DIMENSIONS`] dimensions.
    pub(super) fn check_space_size(&self) -> Result<(), Violation> {
        let n = self.tweak.space.len();
        if n <= MAX_DIMENSIONS {
            return Ok(());
        }
        Err(Violation::at(
            &["tweak", "space"],
            format!(
                "[tweak.space] has {n} dimensions; at most {MAX_DIMENSIONS} can be searched (each \
                 one is learnt from trials): keep the parameters that matter in [tweak.space] and \
                 fix the others in [params]"
            ),
        ))
    }

    /// Every parameter any iteration can get fits the caps: each fixed value and each value of the
    /// search space on its own, and the largest set the space can produce as a whole.
    pub(super) fn check_params_size(&self) -> Result<(), Violation> {
        let values = self
            .params
            .iter()
            .map(|(n, v)| (vec!["params", n.as_str()], v.clone()))
            .chain(self.tweak.space.iter().flat_map(|(n, d)| {
                d.extremes()
                    .into_iter()
                    .map(move |v| (vec!["tweak", "space", n.as_str()], v))
            }));
        for (key, v) in values {
            let size = json_len(&v);
            if size > MAX_VALUE_BYTES {
                return Err(Violation::at(&key, value_message(key[key.len() - 1], size)));
            }
        }
        let total = json_len(&self.largest_params());
        if total > MAX_PARAMS_BYTES {
            let keys = self.params.keys().map(|n| vec!["params".into(), n.clone()]);
            let keys = keys.chain(
                self.tweak
                    .space
                    .keys()
                    .map(|n| vec!["tweak".into(), "space".into(), n.clone()]),
            );
            return Err(Violation {
                keys: keys.collect(),
                message: total_message(total),
            });
        }
        Ok(())
    }

    /// The parameter set with every dimension at its longest value: no iteration's set is larger.
    fn largest_params(&self) -> Params {
        let mut p = self.params.clone();
        for (name, dim) in &self.tweak.space {
            let longest = dim.extremes().into_iter().max_by_key(json_len);
            if let Some(v) = longest {
                p.insert(name.clone(), v);
            }
        }
        p
    }

    /// Checks `[resources]` against what the engine can give, before any container starts. The
    /// error points at the key in `text` (the file at `path`) and says what fits.
    pub fn check_engine_limits(
        &self,
        text: &str,
        path: &Path,
        limits: EngineLimits,
    ) -> Result<(), ConfigError> {
        let r = &self.resources;
        let violation = if r.cpus > limits.cpus as f64 {
            Some(Violation::at(
                &["resources", "cpus"],
                format!(
                    "`resources.cpus` is {}, but the Docker engine has {} CPUs: set it to at most {}",
                    r.cpus, limits.cpus, limits.cpus
                ),
            ))
        } else if limits.memory_bytes > 0 && r.memory.0 > limits.memory_bytes {
            Some(Violation::at(
                &["resources", "memory"],
                format!(
                    "`resources.memory` is {}, but the Docker engine has {} of memory: set it to at \
                     most {}m, or give the engine more memory",
                    r.memory,
                    approx(limits.memory_bytes),
                    limits.memory_bytes >> 20
                ),
            ))
        } else {
            None
        };
        match violation {
            Some(v) => Err(v.locate(text, path)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_value_or_set_is_refused() {
        let mut p = Params::new();
        p.insert("small".into(), serde_json::json!(1));
        assert!(check_params_size(&p).is_ok());
        p.insert("blob".into(), serde_json::json!("x".repeat(70 * 1024)));
        let e = check_params_size(&p).unwrap_err();
        assert!(e.starts_with("`blob` is 70.0 KiB as JSON"), "{e}");
        p.insert("blob".into(), serde_json::json!("x".repeat(60 * 1024)));
        p.insert("blob2".into(), serde_json::json!("x".repeat(60 * 1024)));
        let e = check_params_size(&p).unwrap_err();
        assert!(
            e.starts_with("the parameters are 120.0 KiB together"),
            "{e}"
        );
    }

    #[test]
    fn trials_fit_by_the_scarcer_of_cpus_and_memory() {
        let mut r = Resources::default();
        let two = EngineLimits {
            cpus: 2,
            memory_bytes: 24 << 30,
            hosts: 1,
        };
        assert_eq!(
            trials_that_fit(&r, two),
            Some((2, "2 CPUs and [resources] cpus = 1".into()))
        );
        r.cpus = 0.5;
        assert_eq!(trials_that_fit(&r, two).map(|f| f.0), Some(4));
        r.memory = crate::core::units::ByteSize(16 << 30);
        assert_eq!(
            trials_that_fit(&r, two),
            Some((1, "24 GiB of memory and [resources] memory = 16g".into()))
        );
        r.cpus = 0.66;
        r.memory = crate::core::units::ByteSize(1 << 30);
        assert_eq!(trials_that_fit(&r, two).map(|f| f.0), Some(3));
        let unknown = EngineLimits {
            cpus: 0,
            memory_bytes: 0,
            hosts: 1,
        };
        assert_eq!(trials_that_fit(&r, unknown), None);
    }

    #[test]
    fn a_swarm_holds_what_fits_on_each_of_its_nodes() {
        let r = Resources {
            cpus: 1.5,
            ..Resources::default()
        };
        let three = EngineLimits {
            cpus: 2,
            memory_bytes: 24 << 30,
            hosts: 3,
        };
        assert_eq!(
            trials_that_fit(&r, three),
            Some((
                3,
                "3 nodes of at most 2 CPUs and [resources] cpus = 1.5".into()
            ))
        );
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(approx(100), "100 bytes");
        assert_eq!(approx(64 * 1024), "64 KiB");
        assert_eq!(approx(3 << 29), "1.5 GiB");
    }
}
