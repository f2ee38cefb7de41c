//! Text for people: durations, ages, metric values. Pure; the caller passes the times.

/// `0.4s`, `42s`, `3m04s`, `1h02m`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 60_000 {
        format!("{}s", ms / 1000)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60)
    }
}

/// How long ago `at` was: `12s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn ago(now: i64, at: i64) -> String {
    let s = (now - at).max(0) / 1000;
    if s < 60 {
        format!("{s}s ago")
    } else if s < 3600 {
        format!("{}m ago", s / 60)
    } else if s < 86_400 {
        format!("{}h ago", s / 3600)
    } else {
        format!("{}d ago", s / 86_400)
    }
}

/// A metric value with four decimals; NaN and infinities spelled out.
pub fn value(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        format!("{v}")
    }
}

/// Parameters as `a=1, b=2`, in name order; strings bare.
pub fn params(p: &crate::core::config::Params) -> String {
    p.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Elapsed time of something that started at `start` and finished at `end` (or is still going).
pub fn elapsed(start: Option<i64>, end: Option<i64>, now: i64) -> Option<String> {
    start.map(|s| duration(end.unwrap_or(now) - s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(400), "0.4s");
        assert_eq!(duration(42_000), "42s");
        assert_eq!(duration(184_000), "3m04s");
        assert_eq!(duration(3_720_000), "1h02m");
        assert_eq!(ago(100_000, 40_000), "1m ago");
        assert_eq!(value(f64::NAN), "NaN");
    }
}
