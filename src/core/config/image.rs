//! `train.image`: what the training containers run in.
//!
//! Written as a string (`"auto"`, a built-in profile such as `"sklearn"`, or an image reference
//! `"name:tag"`) or as a table naming the project's own Dockerfile (`{ dockerfile = "Dockerfile" }`).
//! Whether a string names a known profile is checked when the run prepares its image, where the
//! profiles are known; the shape is checked here, so a mistake carries the file's line and column.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ImageSetting {
    /// Detect the framework from the code and use its built-in profile.
    #[default]
    Auto,
    /// A built-in profile name or an image reference, as written.
    Named(String),
    /// A Dockerfile of the project, relative to its root; the commit's tree is the build context.
    Dockerfile(String),
}

impl fmt::Display for ImageSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSetting::Auto => f.write_str("auto"),
            ImageSetting::Named(name) => f.write_str(name),
            ImageSetting::Dockerfile(path) => write!(f, "{{ dockerfile = \"{path}\" }}"),
        }
    }
}

impl Serialize for ImageSetting {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            ImageSetting::Auto => serializer.serialize_str("auto"),
            ImageSetting::Named(name) => serializer.serialize_str(name),
            ImageSetting::Dockerfile(path) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("dockerfile", path)?;
                map.end()
            }
        }
    }
}

const EXPECTED: &str =
    "\"auto\", a built-in profile (\"sklearn\"), an image \"name:tag\" or { dockerfile = \"Dockerfile\" }";

struct SettingVisitor;

impl<'de> Visitor<'de> for SettingVisitor {
    type Value = ImageSetting;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ImageSetting, E> {
        match value.trim() {
            "" => Err(E::custom(format!("train.image is empty: write {EXPECTED}"))),
            "auto" => Ok(ImageSetting::Auto),
            name => Ok(ImageSetting::Named(name.to_owned())),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ImageSetting, A::Error> {
        let mut dockerfile: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "dockerfile" {
                return Err(de::Error::custom(format!(
                    "unknown key `{key}` in train.image: the table has one key, `dockerfile` (a path in the project, e.g. \"Dockerfile\")"
                )));
            }
            let path: String = map.next_value()?;
            dockerfile = Some(checked_path(&path).map_err(de::Error::custom)?);
        }
        dockerfile.map(ImageSetting::Dockerfile).ok_or_else(|| {
            de::Error::custom("train.image: the table needs `dockerfile = \"Dockerfile\"` (a path in the project)")
        })
    }
}

/// A Dockerfile path must stay inside the project, which is the whole build context.
fn checked_path(path: &str) -> Result<String, String> {
    let trimmed = path.trim();
    let escapes = trimmed.starts_with('/') || trimmed.split('/').any(|part| part == "..");
    if trimmed.is_empty() || escapes {
        return Err(format!(
            "train.image.dockerfile \"{path}\" must be a path inside the project (e.g. \"Dockerfile\" or \"docker/train.Dockerfile\")"
        ));
    }
    Ok(trimmed.trim_start_matches("./").to_owned())
}

impl<'de> Deserialize<'de> for ImageSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SettingVisitor)
    }
}
