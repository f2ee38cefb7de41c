//! Human-written quantities in `mlops.toml`: durations (`90s`, `10m`, `1h`, or plain seconds) and byte
//! sizes (`512m`, `2g`, or plain bytes). Parse errors quote the bad value.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    Int(i64),
    Float(f64),
    Str(String),
}

impl HumanDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (num, unit) = split_unit(t);
        let n: f64 = num.parse().map_err(|_| {
            format!("\"{s}\" is not a duration (use e.g. \"90s\", \"10m\", \"1h\")")
        })?;
        let mult = match unit {
            "" | "s" => 1.0,
            "ms" => 0.001,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => {
                return Err(format!(
                    "\"{s}\" has an unknown unit \"{unit}\" (use ms, s, m or h)"
                ));
            }
        };
        if !n.is_finite() || n <= 0.0 {
            return Err(format!("\"{s}\" must be a positive duration"));
        }
        Ok(HumanDuration(Duration::from_secs_f64(n * mult)))
    }
}

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let (num, unit) = split_unit(&t);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("\"{s}\" is not a size (use e.g. \"512m\", \"2g\")"))?;
        let mult: u64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
            "" => 1,
            "k" => 1 << 10,
            "m" => 1 << 20,
            "g" => 1 << 30,
            _ => {
                return Err(format!(
                    "\"{s}\" has an unknown unit \"{unit}\" (use k, m or g)"
                ));
            }
        };
        if !n.is_finite() || n <= 0.0 {
            return Err(format!("\"{s}\" must be a positive size"));
        }
        Ok(ByteSize((n * mult as f64) as u64))
    }

    /// The size for people, to one decimal (`15.5 GiB`), unlike [`fmt::Display`], which writes it
    /// the way a config does.
    pub fn approx(self) -> String {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        let bytes = self.0;
        UNITS
            .iter()
            .find(|(size, _)| bytes >= *size)
            .map(|(size, unit)| {
                let v = bytes as f64 / *size as f64;
                if v.fract() == 0.0 {
                    format!("{v} {unit}")
                } else {
                    format!("{v:.1} {unit}")
                }
            })
            .unwrap_or_else(|| format!("{bytes} bytes"))
    }
}

fn split_unit(t: &str) -> (&str, &str) {
    let idx = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(t.len());
    (t[..idx].trim(), t[idx..].trim())
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match NumOrStr::deserialize(d)? {
            NumOrStr::Int(i) => HumanDuration::parse(&i.to_string()),
            NumOrStr::Float(f) => HumanDuration::parse(&f.to_string()),
            NumOrStr::Str(s) => HumanDuration::parse(&s),
        }
        .map_err(D::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match NumOrStr::deserialize(d)? {
            NumOrStr::Int(i) => ByteSize::parse(&i.to_string()),
            NumOrStr::Float(f) => ByteSize::parse(&f.to_string()),
            NumOrStr::Str(s) => ByteSize::parse(&s),
        }
        .map_err(D::Error::custom)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs_f64();
        if s > 0.0 && s < 1.0 {
            write!(f, "{}ms", self.0.as_millis())
        } else if s >= 3600.0 && s % 3600.0 == 0.0 {
            write!(f, "{}h", s / 3600.0)
        } else if s >= 60.0 && s % 60.0 == 0.0 {
            write!(f, "{}m", s / 60.0)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1 << 30 && b % (1 << 30) == 0 {
            write!(f, "{}g", b >> 30)
        } else if b >= 1 << 20 && b % (1 << 20) == 0 {
            write!(f, "{}m", b >> 20)
        } else {
            write!(f, "{b}")
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
