//! Built-in image profiles and how they are made without a registry.
//!
//! `dockerfiles/<profile>/Dockerfile` is the single source of truth for what each image holds; the files
//! are compiled into the binary so an installed `mlops-tui` needs no checkout. Each builds `FROM` a base
//! image that is a Debian bookworm root file system made by `mmdebstrap` and imported through the engine,
//! because no engine here can pull one.
//!
//! A profile's image tag carries a hash of its Dockerfile, so editing a Dockerfile makes the next run
//! build a fresh image instead of silently using a stale one.

pub mod cuda;
pub mod manifest;
pub mod spec;
pub mod times;

use crate::core::model::Profile;

/// The base image every profile builds on.
pub const BASE_IMAGE: &str = "mlops-tui/base:bookworm";
/// Debian suite of the base image.
pub const BASE_SUITE: &str = "bookworm";
/// Mirror used by `mmdebstrap` unless `MLOPS_TUI_DEBIAN_MIRROR` says otherwise.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "numpy",
        dockerfile: include_str!("../../../dockerfiles/numpy/Dockerfile"),
        summary: "Python 3 + NumPy, for networks written in numpy",
        provides: manifest::NUMPY,
    },
    Profile {
        name: "sklearn",
        dockerfile: include_str!("../../../dockerfiles/sklearn/Dockerfile"),
        summary: "Python 3 + scikit-learn, for classic estimators",
        provides: manifest::SKLEARN,
    },
    Profile {
        name: "torch",
        dockerfile: include_str!("../../../dockerfiles/torch/Dockerfile"),
        summary: "Python 3 + PyTorch 1.13 (CPU), for CNNs and other deep networks",
        provides: manifest::TORCH,
    },
    Profile {
        name: "keras",
        dockerfile: include_str!("../../../dockerfiles/keras/Dockerfile"),
        summary: "Python 3 + Keras 3 on JAX (CPU), for Sequential/Conv2D/Dense networks",
        provides: manifest::KERAS,
    },
];

pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES
        .iter()
        .chain(cuda::CUDA_PROFILES)
        .find(|p| p.name == name)
}

/// How the image of a profile is tagged: naming images is this adapter's business, not the model's.
impl Profile {
    /// `mlops-tui/<name>:<hash of the Dockerfile>`.
    pub fn tag(&self) -> String {
        format!("mlops-tui/{}:{}", self.name, content_hash(self.dockerfile))
    }

    /// `mlops-tui/<name>:latest`, the tag a project's Dockerfile names in `FROM mlops-tui/<name>`: it is
    /// moved to [`tag`](Self::tag) whenever the profile is prepared.
    pub fn latest(&self) -> String {
        format!("mlops-tui/{}:latest", self.name)
    }
}

/// What `image =` in `mlops.toml` (or the detector) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRequest {
    Profile(&'static Profile),
    /// Any other reference; it must already be present in the engine.
    Reference(String),
}

/// Resolves a profile name or an image reference. A bare word that is not a profile is an error rather
/// than a reference, because it is far more likely a typo of a profile than a local image without a tag.
pub fn resolve(image: &str) -> Result<ImageRequest, String> {
    if let Some(p) = profile(image) {
        return Ok(ImageRequest::Profile(p));
    }
    if image.contains(':') || image.contains('/') {
        return Ok(ImageRequest::Reference(image.to_string()));
    }
    let names: Vec<_> = PROFILES.iter().map(|p| p.name).collect();
    Err(format!(
        "\"{image}\" is neither a built-in profile ({}) nor an image reference (name:tag)",
        names.join(", ")
    ))
}

/// The mirror to build the base from.
pub fn mirror() -> String {
    std::env::var("MLOPS_TUI_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.to_string())
}

/// argv of the command that writes the base root file system as a tar stream to stdout.
pub fn base_rootfs_command(mirror: &str) -> Vec<String> {
    [
        "mmdebstrap",
        "--quiet",
        "--variant=minbase",
        "--include=ca-certificates",
        BASE_SUITE,
        "-",
        mirror,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The file of a build context that holds [`build_ca`]: Dockerfiles that download from the Python
/// package registry `COPY` it and hand it to pip together with the image's own certificates.
pub const BUILD_CA_FILE: &str = "build-ca.pem";

/// Certificates the host trusts beyond the public ones, for builds behind a TLS-inspecting proxy: the
/// PEM file `MLOPS_TUI_BUILD_CA` names, else the locally added CAs in
/// `/usr/local/share/ca-certificates/` (where Debian and Ubuntu keep them). Empty when there are none;
/// unreadable files are skipped (the build then fails with pip's own certificate error).
pub fn build_ca() -> Vec<u8> {
    if let Ok(path) = std::env::var("MLOPS_TUI_BUILD_CA") {
        return std::fs::read(path).unwrap_or_default();
    }
    let dir = std::path::Path::new("/usr/local/share/ca-certificates");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "crt"))
        .collect();
    files.sort();
    let mut pem = Vec::new();
    for f in files {
        if let Ok(bytes) = std::fs::read(&f) {
            pem.extend_from_slice(&bytes);
            pem.push(b'\n');
        }
    }
    pem
}

/// A build context holding the Dockerfile and [`BUILD_CA_FILE`] (`ca`, possibly empty).
pub fn build_context(dockerfile: &str, ca: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    spec::append_bytes(&mut builder, "Dockerfile", dockerfile.as_bytes())?;
    spec::append_bytes(&mut builder, BUILD_CA_FILE, ca)?;
    builder.into_inner()
}

/// FNV-1a, 48 bits in hex: stable across builds and platforms, enough to tell Dockerfile versions apart.
pub fn content_hash(text: &str) -> String {
    bytes_hash(text.as_bytes())
}

/// [`content_hash`] of any bytes (a build context).
pub fn bytes_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:012x}", h & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_builds_on_the_base() {
        for p in PROFILES {
            assert!(
                p.dockerfile
                    .lines()
                    .any(|l| l.trim() == format!("FROM {BASE_IMAGE}")),
                "{} must build FROM {BASE_IMAGE}",
                p.name
            );
            assert!(p.tag().starts_with(&format!("mlops-tui/{}:", p.name)));
        }
    }

    #[test]
    fn resolve_profiles_and_references() {
        assert!(matches!(resolve("torch"), Ok(ImageRequest::Profile(p)) if p.name == "torch"));
        assert_eq!(
            resolve("me/img:1"),
            Ok(ImageRequest::Reference("me/img:1".into()))
        );
        let e = resolve("tourch").unwrap_err();
        assert!(
            e.contains("\"tourch\"") && e.contains("numpy, sklearn, torch, keras"),
            "{e}"
        );
    }

    #[test]
    fn hash_changes_with_content() {
        assert_ne!(content_hash("FROM a"), content_hash("FROM b"));
        assert_eq!(content_hash("x").len(), 12);
    }

    #[test]
    fn context_is_a_tar_with_the_dockerfile() {
        let bytes = build_context("FROM x\n", b"").unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["Dockerfile", BUILD_CA_FILE]);
    }
}
