//! Go `time.Duration` syntax, as the Chainlink node reads and prints it.
//!
//! The node reads durations such as `DATABASE_TIMEOUT=500ms` with Go's
//! `time.ParseDuration` and prints them with `Duration.String()` (`1h0m0s`,
//! `2m30s`, `1.5s`, `500ms`). This file has no dependencies beyond `std` so the
//! node double can include it too (one copy of the rules for both).

use std::time::Duration;

const NS_PER_US: u128 = 1_000;
const NS_PER_MS: u128 = 1_000_000;
const NS_PER_S: u128 = 1_000_000_000;

/// Parses a Go duration: a sequence of decimal numbers, each with an optional
/// fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), such as `1h30m`,
/// `1.5s` or `250ms`. A lone `0` is allowed. Negative durations are refused
/// because no setting the node reads this way may be negative.
pub fn parse(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration (examples: 500ms, 10s, 1h0m0s)".to_string());
    }
    if s.starts_with('-') {
        return Err(format!("negative duration {input:?} is not allowed"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {input:?} (use ns, us, ms, s, m or h)"))?;
        let number = &rest[..digits_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!("invalid duration {input:?}"));
        }
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let unit_ns = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => NS_PER_US,
            "ms" => NS_PER_MS,
            "s" => NS_PER_S,
            "m" => 60 * NS_PER_S,
            "h" => 3600 * NS_PER_S,
            "" => {
                return Err(format!(
                    "missing unit in duration {input:?} (use ns, us, ms, s, m or h)"
                ));
            }
            other => return Err(format!("unknown unit {other:?} in duration {input:?}")),
        };
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| format!("invalid duration {input:?}"))?
        };
        let mut value = int
            .checked_mul(unit_ns)
            .ok_or_else(|| format!("duration {input:?} is too large"))?;
        if !frac_part.is_empty() {
            // Keep at most 18 fractional digits: finer than a nanosecond anyway.
            let frac_digits = &frac_part[..frac_part.len().min(18)];
            let frac: u128 = frac_digits.parse().map_err(|_| format!("invalid duration {input:?}"))?;
            value += frac * unit_ns / 10u128.pow(frac_digits.len() as u32);
        }
        total = total
            .checked_add(value)
            .ok_or_else(|| format!("duration {input:?} is too large"))?;
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| format!("duration {input:?} is too large"))
}

/// Formats a duration the way Go's `Duration.String()` does: `0s`, `750ms`,
/// `1.5s`, `2m30s`, `1h0m0s`.
pub fn format(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < NS_PER_S {
        let (unit, div) = if ns < NS_PER_US {
            ("ns", 1)
        } else if ns < NS_PER_MS {
            ("µs", NS_PER_US)
        } else {
            ("ms", NS_PER_MS)
        };
        return format!("{}{unit}", decimal(ns, div));
    }
    let secs = ns / NS_PER_S;
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&decimal(ns % (60 * NS_PER_S), NS_PER_S));
    out.push('s');
    out
}

/// `value / div` in decimal, with the fraction's trailing zeros trimmed.
fn decimal(value: u128, div: u128) -> String {
    let (int, rem) = (value / div, value % div);
    if rem == 0 {
        return int.to_string();
    }
    let width = div.ilog10() as usize;
    let frac = format!("{rem:0width$}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_micros(2_250), "2.25ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(150), "2m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(3 * 3600 + 5), "3h0m5s"),
            (Duration::from_millis(61_001), "1m1.001s"),
        ];
        for (d, want) in cases {
            assert_eq!(format(d), want, "{d:?}");
        }
    }

    #[test]
    fn parses_like_go() {
        let cases = [
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1_500)),
            ("1h0m0s", Duration::from_secs(3600)),
            ("2m30s", Duration::from_secs(150)),
            ("1h30m", Duration::from_secs(5400)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            (".5s", Duration::from_millis(500)),
            ("+3s", Duration::from_secs(3)),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in ["", "5", "1x", "-1s", "s", "1..5s", "1h2", "."] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn round_trips() {
        for ms in [1u64, 50, 999, 1_000, 59_999, 60_000, 3_599_999, 86_400_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
