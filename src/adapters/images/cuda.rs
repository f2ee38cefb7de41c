//! CUDA variants of the deep-learning profiles, chosen when a run asks for GPUs
//! (`[resources] gpus`). They are large (several GB of CUDA wheels), so they are built on demand
//! only: never by `images build` without names, never in CI.

use crate::core::config::Config;

use super::{Profile, manifest};

/// The profiles with NVIDIA GPU support, each the variant of the CPU profile named before `-cuda`.
pub const CUDA_PROFILES: &[Profile] = &[
    Profile {
        name: "torch-cuda",
        dockerfile: include_str!("../../../dockerfiles/torch-cuda/Dockerfile"),
        summary: "Python 3 + PyTorch 2.4 with CUDA 12, for training on NVIDIA GPUs",
        provides: manifest::TORCH,
    },
    Profile {
        name: "keras-cuda",
        dockerfile: include_str!("../../../dockerfiles/keras-cuda/Dockerfile"),
        summary: "Python 3 + Keras 3 on JAX with CUDA 12, for training on NVIDIA GPUs",
        provides: manifest::KERAS,
    },
];

/// The CUDA variant of profile `name` (`torch` → `torch-cuda`), if it has one.
pub fn variant_of(name: &str) -> Option<&'static Profile> {
    CUDA_PROFILES
        .iter()
        .find(|p| p.name.strip_suffix("-cuda") == Some(name))
}

/// The profile a run of `config` trains in: the CUDA variant of `profile` when the run asks for
/// GPUs and there is one, with `reason` saying so; else `profile` and `reason` unchanged.
pub fn for_config(
    config: &Config,
    profile: &'static Profile,
    reason: String,
) -> (&'static Profile, String) {
    match (&config.resources.gpus, variant_of(profile.name)) {
        (Some(gpus), Some(cuda)) => {
            let reason = format!(
                "{reason}; image {} (its CUDA variant) because [resources] gpus = {gpus}",
                cuda.name
            );
            (cuda, reason)
        }
        _ => (profile, reason),
    }
}

/// The line `detect` adds when the project's `mlops.toml` asks for GPUs: which image trains it.
pub fn detect_note(config: Option<&Config>, profile: &str) -> Option<String> {
    let gpus = config?.resources.gpus.as_ref()?;
    Some(match variant_of(profile) {
        Some(cuda) => format!(
            "[resources] gpus = {gpus} in mlops.toml: runs train in {} (the CUDA variant of {profile}, built on first use)",
            cuda.name
        ),
        None => format!(
            "[resources] gpus = {gpus} in mlops.toml, but {profile} has no CUDA variant: the containers get the GPUs and the code runs on the CPU unless it uses them itself (torch and keras projects get a CUDA image)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::images::profile;

    #[test]
    fn torch_and_keras_have_cuda_variants_built_from_the_base() {
        assert_eq!(variant_of("torch").map(|p| p.name), Some("torch-cuda"));
        assert_eq!(variant_of("keras").map(|p| p.name), Some("keras-cuda"));
        assert_eq!(variant_of("sklearn"), None);
        for p in CUDA_PROFILES {
            assert!(
                p.dockerfile.contains("FROM mlops-tui/base:bookworm"),
                "{}",
                p.name
            );
            assert!(p.dockerfile.contains("cuda"), "{}", p.name);
            assert_eq!(profile(p.name), Some(p), "{} resolves by name", p.name);
        }
    }

    #[test]
    fn a_run_with_gpus_trains_in_the_cuda_variant_and_says_so() {
        let torch = profile("torch").unwrap();
        let mut config: Config = toml::from_str(
            "[train]\ncommand = [\"python3\", \"train.py\"]\n[metric]\nname = \"acc\"\ntarget = 0.9\n[resources]\ngpus = 1\n",
        )
        .unwrap();
        let (p, why) = for_config(&config, torch, "torch detected".into());
        assert_eq!(p.name, "torch-cuda");
        assert_eq!(
            why,
            "torch detected; image torch-cuda (its CUDA variant) because [resources] gpus = 1"
        );
        assert!(
            detect_note(Some(&config), "torch")
                .unwrap()
                .contains("torch-cuda")
        );
        config.resources.gpus = None;
        assert_eq!(for_config(&config, torch, "x".into()).0.name, "torch");
        assert_eq!(detect_note(Some(&config), "torch"), None);
    }
}
