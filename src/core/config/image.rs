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

const EXPECTED: &str = "\"auto\", a built-in profile (\"sklearn\"), an image \"name:tag\" or { dockerfile = \"Dockerfile\" }";

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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::ImageSetting;
    use crate::core::config::Config;

    fn parse(image: &str) -> Result<ImageSetting, String> {
        let text = format!(
            "[train]\ncommand = [\"python3\", \"train.py\"]\n{image}\n[metric]\nname = \"accuracy\"\ntarget = 0.9\n"
        );
        Config::parse(&text, Path::new("mlops.toml"))
            .map(|c| c.train.image)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn strings_and_the_dockerfile_table_parse() {
        assert_eq!(parse(""), Ok(ImageSetting::Auto));
        assert_eq!(parse("image = \"auto\""), Ok(ImageSetting::Auto));
        assert_eq!(
            parse("image = \"keras\""),
            Ok(ImageSetting::Named("keras".into()))
        );
        assert_eq!(
            parse("image = \"me/img:1\""),
            Ok(ImageSetting::Named("me/img:1".into()))
        );
        assert_eq!(
            parse("image = { dockerfile = \"./docker/Train.Dockerfile\" }"),
            Ok(ImageSetting::Dockerfile("docker/Train.Dockerfile".into()))
        );
    }

    #[test]
    fn bad_settings_are_located_errors_with_the_fix() {
        let e = parse("image = { file = \"Dockerfile\" }").unwrap_err();
        assert!(e.starts_with("mlops.toml:3:"), "{e}");
        assert!(e.contains("unknown key `file` in train.image"), "{e}");
        let e = parse("image = { dockerfile = \"../Dockerfile\" }").unwrap_err();
        assert!(e.starts_with("mlops.toml:3:"), "{e}");
        assert!(e.contains("must be a path inside the project"), "{e}");
        let e = parse("image = {}").unwrap_err();
        assert!(e.contains("needs `dockerfile = \"Dockerfile\"`"), "{e}");
        let e = parse("image = \"\"").unwrap_err();
        assert!(e.starts_with("mlops.toml:3:"), "{e}");
        assert!(e.contains("train.image is empty"), "{e}");
        let e = parse("image = 3").unwrap_err();
        assert!(
            e.contains("{ dockerfile = \\\"Dockerfile\\\" }")
                || e.contains("{ dockerfile = \"Dockerfile\" }"),
            "{e}"
        );
    }

    #[test]
    fn settings_serialize_back_to_what_was_written() {
        for text in [
            "image = \"auto\"",
            "image = \"sklearn\"",
            "image = { dockerfile = \"Dockerfile\" }",
        ] {
            let setting = parse(text).unwrap();
            #[derive(serde::Serialize)]
            struct Wrap {
                image: ImageSetting,
            }
            let back = toml::to_string(&Wrap { image: setting }).unwrap();
            assert_eq!(
                back.trim(),
                text.replace(
                    "image = { dockerfile = \"Dockerfile\" }",
                    "[image]\ndockerfile = \"Dockerfile\""
                ),
                "{back}"
            );
        }
    }
}
