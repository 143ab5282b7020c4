//! The node's log output, in its three shapes: the human "pretty" format
//! (default), ANSI-coloured levels (`CL_LOG_COLOR=true`) and one JSON object a
//! line (`JSON_CONSOLE=true`). Everything goes to stderr, as the real node does.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Log levels the double uses, in increasing severity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    /// Hidden at the default level.
    Debug,
    /// The default level.
    Info,
    /// Warnings.
    Warn,
    /// Errors.
    Error,
    /// The line before the node exits.
    Fatal,
}

impl Level {
    fn upper(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Level::Debug => "\x1b[35m",
            Level::Info => "\x1b[34m",
            Level::Warn => "\x1b[33m",
            Level::Error | Level::Fatal => "\x1b[31m",
        }
    }
}

/// The output shape, chosen from the configuration at start.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// `<ts> [INFO]  <msg> <caller> k=v`.
    Pretty,
    /// The same with ANSI-coloured levels.
    Colour,
    /// One JSON object a line.
    Json,
}

/// A logger with fields that every line carries (version, appID).
#[derive(Clone)]
pub struct Logger {
    format: Format,
    min: Level,
    common: Vec<(&'static str, String)>,
}

impl Logger {
    /// A logger writing `format` from level `min` on, adding `common` fields.
    pub fn new(format: Format, min: Level, common: Vec<(&'static str, String)>) -> Self {
        Logger { format, min, common }
    }

    /// A DEBUG line.
    pub fn debug(&self, caller: &str, msg: &str, fields: &[(&str, String)]) {
        self.log(Level::Debug, caller, msg, fields);
    }

    /// An INFO line.
    pub fn info(&self, caller: &str, msg: &str, fields: &[(&str, String)]) {
        self.log(Level::Info, caller, msg, fields);
    }

    /// A WARN line.
    pub fn warn(&self, caller: &str, msg: &str, fields: &[(&str, String)]) {
        self.log(Level::Warn, caller, msg, fields);
    }

    /// An ERROR line.
    pub fn error(&self, caller: &str, msg: &str, fields: &[(&str, String)]) {
        self.log(Level::Error, caller, msg, fields);
    }

    /// A FATAL line (the caller exits).
    pub fn fatal(&self, caller: &str, msg: &str) {
        self.log(Level::Fatal, caller, msg, &[]);
    }

    /// Writes one line (if the level is enabled) in the configured format.
    pub fn log(&self, level: Level, caller: &str, msg: &str, fields: &[(&str, String)]) {
        if level < self.min {
            return;
        }
        let all: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(self.common.iter().map(|(k, v)| (*k, v.as_str())))
            .collect();
        let line = match self.format {
            Format::Json => json_line(level, caller, msg, &all),
            Format::Pretty | Format::Colour => {
                let bracketed = format!("[{}]", level.upper());
                // The level is padded to eight columns, then the message follows.
                let padded = format!("{bracketed:<8}");
                let level_text = if self.format == Format::Colour {
                    padded.replacen(&bracketed, &format!("{}{bracketed}\x1b[0m", level.colour()), 1)
                } else {
                    padded
                };
                let mut line = format!("{} {level_text}{msg} {caller}", iso8601_now());
                for (k, v) in &all {
                    line.push_str(&format!(" {k}={v}"));
                }
                line
            }
        };
        // One write a line, so readers never see half a line.
        let _ = std::io::stderr().lock().write_all(format!("{line}\n").as_bytes());
    }
}

/// Prints a plain line on stderr, the way the node's CLI prints the error that
/// ends it (no timestamp, no level).
pub fn plain(msg: &str) {
    let _ = std::io::stderr().lock().write_all(format!("{msg}\n").as_bytes());
}

fn json_line(level: Level, caller: &str, msg: &str, fields: &[(&str, &str)]) -> String {
    let mut out = format!(
        "{{\"level\":\"{}\",\"ts\":\"{}\",\"logger\":\"ChainlinkNode\",\"caller\":\"{}\",\"msg\":\"{}\"",
        level.upper().to_lowercase(),
        iso8601_now(),
        escape(caller),
        escape(msg)
    );
    for (k, v) in fields {
        let numeric = v.parse::<i64>().is_ok() && (*v == "0" || !v.starts_with('0'));
        if numeric {
            out.push_str(&format!(",\"{}\":{v}", escape(k)));
        } else {
            out.push_str(&format!(",\"{}\":\"{}\"", escape(k), escape(v)));
        }
    }
    out.push('}');
    out
}

/// Escapes a string for a JSON string literal.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The current UTC time as `2006-01-02T15:04:05.000Z`.
pub fn iso8601_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }

    #[test]
    fn json_escapes() {
        assert_eq!(escape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
