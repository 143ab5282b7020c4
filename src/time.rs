//! Time as the engine writes it (RFC 3339 in UTC) and as people read it.
//! A leaf: it imports nothing of the crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from an RFC 3339 UTC timestamp (`2026-11-21T10:00:00.123Z`) to now.
pub fn seconds_since(rfc3339: &str) -> Option<u64> {
    let then = unix_seconds(rfc3339)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    u64::try_from(now - then).ok()
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp.
pub fn unix_seconds(rfc3339: &str) -> Option<i64> {
    let (date, time) = rfc3339.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split(['+', '.']).next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    if y < 1971 || !(1..=12).contains(&m) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + s)
}

/// `3d4h`, `5h12m`, `7m3s`, `42s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// The engine's RFC 3339 time (a log line's, a container's `StartedAt`) as
/// a `SystemTime`.
pub fn engine_time(rfc3339: &str) -> Option<SystemTime> {
    let seconds = u64::try_from(unix_seconds(rfc3339)?).ok()?;
    let fraction = rfc3339.split_once('.').map_or("", |(_, f)| f.trim_end_matches('Z'));
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = format!("{fraction:0<9}").parse().ok()?;
    Some(UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// A time as the engine writes it: RFC 3339 in UTC, with nanoseconds when
/// `nanos` (`2026-11-22T04:49:16.583123456Z`), else whole seconds.
pub fn rfc3339(t: SystemTime, nanos: bool) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let fraction = if nanos {
        format!(".{:09}", since.subsec_nanos())
    } else {
        String::new()
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(unix_seconds("1970-01-02T00:00:00Z"), None);
        assert_eq!(unix_seconds("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(unix_seconds("2026-11-21T10:11:12.123456789Z"), Some(1_795_255_872));
        assert_eq!(unix_seconds("garbage"), None);
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600 + 5), "3d4h");
    }
}
