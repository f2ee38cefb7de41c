//! What a run asks the engine for: a built-in profile, a profile with the project's `requirements.txt`
//! installed on top, the project's own Dockerfile, or an image that must already be there.
//!
//! Every image mlops-tui builds is tagged by a hash of everything that goes into it (the profile's
//! Dockerfile, the requirements' text, the whole build context), so an unchanged project reuses its
//! image and any change builds a fresh one; nothing is ever rebuilt in place.

use std::io;
use std::path::{Path, PathBuf};

use super::{BUILD_CA_FILE, PROFILES, bytes_hash, content_hash};
use crate::core::model::Profile;

/// Where a derived image keeps what it was made from.
const REQUIREMENTS_IN_IMAGE: &str = "/opt/mlops-tui/requirements.txt";

/// `mlops-tui/<profile>-req:<hash of the profile's tag and the requirements>`.
pub fn requirements_tag(profile: &Profile, requirements: &str) -> String {
    let key = format!("{}\n{requirements}", profile.tag());
    format!("mlops-tui/{}-req:{}", profile.name, content_hash(&key))
}

/// The Dockerfile of a derived image. Pip installs into `/opt/venv` (the keras profile's, or a new one
/// with the system site packages, so Debian's packages count as installed) under a constraint that
/// keeps Debian's NumPy and SciPy: a requirement that needs another version fails the build with pip's
/// own explanation instead of breaking scikit-learn at run time.
pub fn requirements_dockerfile(profile: &Profile) -> String {
    format!(
        "FROM {tag}\n\
         ENV VIRTUAL_ENV=/opt/venv PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \\\n    \
         PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         COPY requirements.txt {REQUIREMENTS_IN_IMAGE}\n\
         COPY {BUILD_CA_FILE} /tmp/{BUILD_CA_FILE}\n\
         RUN {{ [ -x /opt/venv/bin/pip ] || /usr/bin/python3 -m venv --system-site-packages /opt/venv; }} \\\n \
         && cat /etc/ssl/certs/ca-certificates.crt /tmp/{BUILD_CA_FILE} > /tmp/ca.pem \\\n \
         && /usr/bin/python3 -c 'import numpy, scipy; print(f\"numpy=={{numpy.__version__}}\\nscipy=={{scipy.__version__}}\")' \\\n    \
         > /opt/mlops-tui/debian-constraints.txt \\\n \
         && pip install --cert /tmp/ca.pem --constraint /opt/mlops-tui/debian-constraints.txt -r {REQUIREMENTS_IN_IMAGE} \\\n \
         && rm -rf /tmp/* /tmp/.[!.]*\n\
         LABEL org.mlops-tui.profile={name} org.mlops-tui.requirements=yes\n",
        tag = profile.tag(),
        name = profile.name,
    )
}

/// The build context of a derived image: its Dockerfile, the requirements and the certificates pip
/// trusts ([`super::build_ca`]).
pub fn requirements_context(
    profile: &Profile,
    requirements: &str,
    ca: &[u8],
) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    append_bytes(
        &mut builder,
        "Dockerfile",
        requirements_dockerfile(profile).as_bytes(),
    )?;
    append_bytes(&mut builder, "requirements.txt", requirements.as_bytes())?;
    append_bytes(&mut builder, BUILD_CA_FILE, ca)?;
    builder.into_inner()
}

pub(super) fn append_bytes(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, path, data)
}

/// The exported tree under `dir` as a build context: a tar of its files in name order with times and
/// owners cleared, so the same tree always gives the same bytes (and the same [`project_tag`]).
/// `.git` is left out; symbolic links are kept as links.
pub fn project_context(dir: &Path) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&rel))?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|e| e.file_name())
            .collect();
        entries.sort();
        for name in entries.into_iter().rev() {
            if rel.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let path = rel.join(&name);
            let meta = std::fs::symlink_metadata(dir.join(&path))?;
            if meta.is_dir() {
                builder.append_dir(&path, dir.join(&path))?;
                pending.push(path);
            } else {
                builder.append_path_with_name(dir.join(&path), &path)?;
            }
        }
    }
    builder.into_inner()
}

/// `mlops-tui/project:<hash>` of the build context (which holds the Dockerfile) and of the tags of the
/// built-in profiles it builds on (`bases`), so that a new version of either builds a new image.
pub fn project_tag(context: &[u8], bases: &[String]) -> String {
    let mut key = context.to_vec();
    for base in bases {
        key.push(b'\n');
        key.extend_from_slice(base.as_bytes());
    }
    format!("mlops-tui/project:{}", bytes_hash(&key))
}

/// Built-in profiles a Dockerfile builds `FROM` by their short name (`mlops-tui/sklearn` or
/// `mlops-tui/sklearn:latest`): they are prepared first, so the name resolves to the current build.
pub fn base_profiles(dockerfile: &str) -> Vec<&'static Profile> {
    let mut found = Vec::new();
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let Some(image) = words.find(|w| !w.starts_with("--")) else {
            continue;
        };
        let name = image.strip_suffix(":latest").unwrap_or(image);
        let profile = PROFILES
            .iter()
            .find(|p| name == format!("mlops-tui/{}", p.name));
        if let Some(p) = profile {
            if !found.contains(&p) {
                found.push(p);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::images::profile;

    #[test]
    fn requirements_tag_depends_on_profile_and_text() {
        let sk = profile("sklearn").unwrap();
        let np = profile("numpy").unwrap();
        let a = requirements_tag(sk, "tabulate\n");
        assert!(a.starts_with("mlops-tui/sklearn-req:"), "{a}");
        assert_eq!(a, requirements_tag(sk, "tabulate\n"));
        assert_ne!(a, requirements_tag(sk, "tabulate==0.9.0\n"));
        assert_ne!(
            a.split_once(':').unwrap().1,
            requirements_tag(np, "tabulate\n")
                .split_once(':')
                .unwrap()
                .1
        );
    }

    #[test]
    fn derived_dockerfile_builds_on_the_profile_tag() {
        let sk = profile("sklearn").unwrap();
        let text = requirements_dockerfile(sk);
        assert!(text.starts_with(&format!("FROM {}\n", sk.tag())), "{text}");
        assert!(
            text.contains("pip install --cert /tmp/ca.pem --constraint"),
            "{text}"
        );
        let bytes = requirements_context(sk, "tabulate\n", b"").unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["Dockerfile", "requirements.txt", BUILD_CA_FILE]);
    }

    #[test]
    fn from_lines_name_built_in_profiles() {
        let df = "# x\nFROM mlops-tui/sklearn\nRUN true\nFROM --platform=linux/amd64 mlops-tui/torch:latest AS t\nFROM python:3.11\nFROM mlops-tui/sklearn";
        let names: Vec<_> = base_profiles(df).iter().map(|p| p.name).collect();
        assert_eq!(names, vec!["sklearn", "torch"]);
        assert!(base_profiles("FROM mlops-tui/sklearnx\n").is_empty());
    }

    #[test]
    fn project_context_is_deterministic_and_skips_git() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM mlops-tui/numpy\n").unwrap();
        std::fs::create_dir_all(dir.path().join("src/.git")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "x").unwrap();
        std::fs::write(dir.path().join("src/a.py"), "print(1)\n").unwrap();
        let a = project_context(dir.path()).unwrap();
        let mut ar = tar::Archive::new(&a[..]);
        let mut names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, vec!["Dockerfile", "src", "src/.git", "src/a.py"]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("src/a.py"), "print(1)\n").unwrap();
        let bases = vec!["mlops-tui/numpy:1".to_string()];
        let tag = project_tag(&a, &bases);
        assert_eq!(
            tag,
            project_tag(&project_context(dir.path()).unwrap(), &bases)
        );
        assert_ne!(tag, project_tag(&a, &["mlops-tui/numpy:2".to_string()]));
        std::fs::write(dir.path().join("src/a.py"), "print(2)\n").unwrap();
        assert_ne!(
            tag,
            project_tag(&project_context(dir.path()).unwrap(), &bases)
        );
    }
}
