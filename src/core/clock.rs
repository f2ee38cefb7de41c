//! Wall-clock time as the rest of the program sees it: Unix milliseconds (`i64`), read in one place,
//! and turned into calendar text in one place.
//!
//! Reading the system time is the only effect here. Code that must be reproducible (the reducer, the
//! views) never calls `now_ms`: its caller reads the clock and passes the value in.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

/// Milliseconds since the Unix epoch. A clock set before 1970 reads as `0` and one beyond the year
/// 292 million as `i64::MAX`, so that the value is always usable as a timestamp.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `2026-11-23 04:12` in UTC, from Unix milliseconds: the same text on every machine, whatever its
/// time zone. A time outside the years -9999..=9999 is `-`, like any other value that is not known.
pub fn utc_minute(ms: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_minutes() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00");
        // 2026-11-23 04:12:30 UTC
        assert_eq!(utc_minute(1_795_407_150_000), "2026-11-23 04:12");
        assert_eq!(utc_minute(951_782_400_000), "2000-02-29 00:00");
        assert_eq!(utc_minute(-1), "1969-12-31 23:59");
        assert_eq!(utc_minute(i64::MAX), "-");
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
