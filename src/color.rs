//! Colour in human output: `--color auto|always|never` and `NO_COLOR`.
//!
//! `auto` colours a stream only when it is a terminal and `NO_COLOR` is
//! unset or empty (<https://no-color.org>); `always` colours even when
//! `NO_COLOR` is set; `never` never does. JSON is never coloured.

/// When to colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// When the stream is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always (even with `NO_COLOR`).
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream that `is_terminal`, given the value of
    /// `NO_COLOR` (`None` when unset).
    pub fn enabled(self, is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }

    /// Whether to colour stdout in this process.
    pub fn stdout(self) -> bool {
        use std::io::IsTerminal;
        self.enabled(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref())
    }

    /// Whether to colour stderr in this process.
    pub fn stderr(self) -> bool {
        use std::io::IsTerminal;
        self.enabled(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref())
    }
}

/// A colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    /// Success.
    Green,
    /// Warnings, and failures that changed nothing.
    Yellow,
    /// Failures.
    Red,
    /// Emphasis.
    Bold,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Paint::Green => "\x1b[32m",
            Paint::Yellow => "\x1b[33m",
            Paint::Red => "\x1b[31m",
            Paint::Bold => "\x1b[1m",
        }
    }

    /// `text` in this colour when `on`, as is otherwise.
    pub fn apply(self, text: &str, on: bool) -> String {
        if on && !text.is_empty() {
            format!("{}{text}\x1b[0m", self.code())
        } else {
            text.to_string()
        }
    }

    /// The colour of a result's headline, by its exit code: green when done,
    /// yellow when it failed but changed nothing or rolled back, red otherwise.
    pub fn for_exit(code: i32) -> Paint {
        use crate::exit;
        match code {
            exit::OK => Paint::Green,
            exit::REFUSED | exit::ROLLED_BACK | exit::PULL_FAILED | exit::INTERRUPTED => Paint::Yellow,
            _ => Paint::Red,
        }
    }
}

/// Colours the first line of a human result (its outcome) by the exit code,
/// and each `warning:` line yellow.
pub fn result(text: &str, exit_code: i32, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let painted = if i == 0 {
            Paint::for_exit(exit_code).apply(body, true)
        } else if body.trim_start().starts_with("warning:") {
            Paint::Yellow.apply(body, true)
        } else {
            body.to_string()
        };
        out.push_str(&painted);
        out.push_str(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn choice() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(ColorChoice::Auto.enabled(true, None));
        assert!(
            ColorChoice::Auto.enabled(true, empty),
            "an empty NO_COLOR does not count"
        );
        assert!(!ColorChoice::Auto.enabled(true, set));
        assert!(!ColorChoice::Auto.enabled(false, None), "not a terminal");
        assert!(ColorChoice::Always.enabled(false, set), "always beats NO_COLOR");
        assert!(!ColorChoice::Never.enabled(true, None));
    }

    #[test]
    fn headline_by_exit_code() {
        let text = "chainlink: upgraded\n  phases:\n";
        assert_eq!(result(text, 0, false), text);
        let on = result(text, 0, true);
        assert!(on.starts_with("\x1b[32mchainlink: upgraded\x1b[0m\n"), "{on:?}");
        assert!(on.ends_with("  phases:\n"));
        assert!(result("x", 6, true).starts_with("\x1b[31m"));
        assert!(result("x", 3, true).starts_with("\x1b[33m"));
        let warned = result("x\nwarning: careful\n", 0, true);
        assert!(warned.contains("\x1b[33mwarning: careful\x1b[0m"), "{warned:?}");
    }
}
