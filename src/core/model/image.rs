//! What a run asks the engine for: a built-in profile, a profile with the project's `requirements.txt`
//! installed on top, the project's own Dockerfile, or an image that must already be there. The table
//! of built-in profiles and how images are built and tagged belong to the images adapter.

use std::path::PathBuf;

/// A built-in profile: a name users write in `mlops.toml` and the Dockerfile that makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    pub dockerfile: &'static str,
    pub summary: &'static str,
    /// Top-level modules (standard library excluded) that `python3` in the image can import; checked
    /// against the image by a real-engine test, so detection can trust it.
    pub provides: &'static [&'static str],
}

impl Profile {
    /// True when the image provides `module` (a top-level name).
    pub fn provides(&self, module: &str) -> bool {
        self.provides.contains(&module)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSpec {
    /// A built-in profile, built from its Dockerfile when missing.
    Profile(&'static Profile),
    /// Any other reference; it must already be present in the engine.
    Reference(String),
    /// A profile with `requirements` (the text of the project's `requirements.txt`) installed by pip
    /// into a virtual environment that also sees the profile's Debian packages.
    Requirements {
        profile: &'static Profile,
        requirements: String,
    },
    /// The project's own Dockerfile, `dockerfile` relative to `context` (the exported tree, which is the
    /// build context).
    Dockerfile {
        context: PathBuf,
        dockerfile: String,
    },
}

impl ImageSpec {
    /// How views and logs name the request before it is resolved to a tag.
    pub fn label(&self) -> String {
        match self {
            ImageSpec::Profile(p) => p.name.to_string(),
            ImageSpec::Reference(r) => r.clone(),
            ImageSpec::Requirements { profile, .. } => {
                format!("{} + requirements.txt", profile.name)
            }
            ImageSpec::Dockerfile { dockerfile, .. } => dockerfile.clone(),
        }
    }

    /// The built-in profile whose modules the image is known to provide.
    pub fn profile(&self) -> Option<&'static Profile> {
        match self {
            ImageSpec::Profile(p) | ImageSpec::Requirements { profile: p, .. } => Some(p),
            ImageSpec::Reference(_) | ImageSpec::Dockerfile { .. } => None,
        }
    }
}
