//! The operator's inline edit of one proposed value. The edit is held to the same bounds as the
//! strategies, so a hand-edited point is still a point of the declared space.

use std::collections::BTreeMap;

use super::same_value;
use crate::core::config::{Dimension, Params, check_params_size, number};
use crate::core::text::param_value;

/// Returns `params` with `name` set to the value typed as `raw`.
///
/// For a range dimension `raw` must be a number within `start..=max` (a whole number if the dimension
/// is integral); for a list dimension it must be one of the listed values. A fixed parameter (present
/// in `params` but not in `space`) keeps its JSON type: number, boolean or string. The result fits
/// the parameter size caps, or the edit is refused. Errors are one line meant to be shown next to the
/// edited field.
pub fn apply_edit(
    params: &Params,
    name: &str,
    raw: &str,
    space: &BTreeMap<String, Dimension>,
) -> Result<Params, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(format!("`{name}` needs a value"));
    }
    let value = match (space.get(name), params.get(name)) {
        (Some(dim @ (Dimension::Range { .. } | Dimension::Number { .. })), _) => {
            numeric_edit(name, raw, dim)?
        }
        (Some(Dimension::Values(values) | Dimension::Choices(values)), _) => {
            let typed = raw
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .and_then(|v| {
                    values
                        .iter()
                        .find(|x| same_value(x, &serde_json::Value::from(v)))
                        .cloned()
                });
            typed
                .or_else(|| {
                    values
                        .iter()
                        .find(|x| {
                            x.as_str() == Some(raw)
                                || serde_json::from_str::<serde_json::Value>(raw).as_ref().ok()
                                    == Some(*x)
                        })
                        .cloned()
                })
                .ok_or_else(|| {
                    let allowed: Vec<String> = values.iter().map(param_value).collect();
                    format!("`{name}` must be one of {}, got {raw}", allowed.join(", "))
                })?
        }
        (None, Some(old)) => fixed_value(name, raw, old)?,
        (None, None) => return Err(format!("unknown parameter `{name}`")),
    };
    let mut out = params.clone();
    out.insert(name.to_string(), value);
    check_params_size(&out)?;
    Ok(out)
}

/// A typed number for a range or number dimension: whole when the dimension is, within its bounds,
/// on its step grid.
fn numeric_edit(name: &str, raw: &str, dim: &Dimension) -> Result<serde_json::Value, String> {
    let v = parse_number(name, raw)?;
    let (lo, hi, integer, step) = match dim {
        Dimension::Range {
            start,
            max,
            integer,
            ..
        } => (*start, *max, *integer, None),
        Dimension::Number {
            min,
            max,
            integer,
            step,
            ..
        } => (*min, *max, *integer, *step),
        _ => return Err(format!("`{name}` is not a number")),
    };
    if integer && v.fract() != 0.0 {
        return Err(format!("`{name}` takes whole numbers, got {raw}"));
    }
    if v < lo || v > hi {
        return Err(format!(
            "`{name}` must be between {} and {}, got {raw}",
            param_value(&number(lo, integer)),
            param_value(&number(hi, integer)),
        ));
    }
    let value = number(v, integer);
    if !dim.contains(&value) {
        let step = step.map(|s| s.to_string()).unwrap_or_default();
        return Err(format!(
            "`{name}` must be {} plus a multiple of {step}, got {raw}",
            param_value(&number(lo, integer))
        ));
    }
    Ok(value)
}

fn parse_number(name: &str, raw: &str) -> Result<f64, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("`{name}` needs a number, got {raw:?}"))
}

/// A fixed parameter keeps the type it was declared with, so training code never sees a string where
/// it read a number before.
fn fixed_value(
    name: &str,
    raw: &str,
    old: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    match old {
        serde_json::Value::Number(n) if n.is_f64() => Ok(number(parse_number(name, raw)?, false)),
        serde_json::Value::Number(_) => raw
            .parse::<i64>()
            .map(serde_json::Value::from)
            .map_err(|_| format!("`{name}` takes whole numbers, got {raw:?}")),
        serde_json::Value::Bool(_) => match raw {
            "true" => Ok(true.into()),
            "false" => Ok(false.into()),
            _ => Err(format!("`{name}` must be true or false, got {raw:?}")),
        },
        serde_json::Value::String(_) => Ok(raw.into()),
        _ => serde_json::from_str(raw)
            .map_err(|e| format!("`{name}` needs a JSON value like its current one: {e}")),
    }
}
