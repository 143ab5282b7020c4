//! Progress on stderr while a command runs: bars and a spinner on a
//! terminal, plain timestamped lines otherwise, nothing but errors with
//! `--quiet`. Results go to stdout (see `report.rs`).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::PullProgress;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nothing but errors.
    Quiet,
    /// One plain line an event (CI logs, pipes).
    Plain,
    /// Bars and spinners (stderr is a terminal).
    Terminal,
}

/// The progress display.
pub struct Progress {
    mode: Mode,
    started: Instant,
    multi: MultiProgress,
    layers: Mutex<HashMap<String, ProgressBar>>,
    last_plain_pull: Mutex<Option<Instant>>,
    color: bool,
    verbosity: u8,
}

impl Progress {
    /// Chooses the mode: quiet if asked, bars when stderr is a terminal.
    pub fn new(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Plain
        };
        Progress::with_mode(mode)
    }

    /// A display in the given mode.
    pub fn with_mode(mode: Mode) -> Progress {
        let target = if mode == Mode::Terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            mode,
            started: Instant::now(),
            multi: MultiProgress::with_draw_target(target),
            layers: Mutex::new(HashMap::new()),
            last_plain_pull: Mutex::new(None),
            color: false,
            verbosity: 0,
        }
    }

    /// With colour (warnings in yellow) and `verbosity` (`-v` count: how
    /// much [`Progress::detail`] shows).
    pub fn styled(mut self, color: bool, verbosity: u8) -> Progress {
        self.color = color;
        self.verbosity = verbosity;
        self
    }

    /// How many `-v` were given.
    pub fn verbosity(&self) -> u8 {
        self.verbosity
    }

    /// Extra detail, shown with at least `level` `-v` (never when quiet).
    pub fn detail(&self, level: u8, text: &str) {
        if self.verbosity >= level {
            self.line(&format!("    · {text}"));
        }
    }

    /// A step begins or something noteworthy happens.
    pub fn step(&self, text: &str) {
        self.line(&format!("==> {text}"));
    }

    /// A detail under the current step.
    pub fn note(&self, text: &str) {
        self.line(&format!("    {text}"));
    }

    /// A warning (shown even when quiet).
    pub fn warn(&self, text: &str) {
        let line = crate::color::Paint::Yellow.apply(&format!("warning: {text}"), self.color);
        if self.mode == Mode::Terminal {
            let _ = self.multi.println(line);
        } else {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    fn line(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Terminal => {
                let _ = self.multi.println(text);
            }
            Mode::Plain => {
                let secs = self.started.elapsed().as_secs_f64();
                let _ = writeln!(std::io::stderr(), "[{secs:>7.2}s] {text}");
            }
        }
    }

    /// One pull progress message: a bar a layer on a terminal, a summary line
    /// every few seconds otherwise.
    pub fn pull(&self, p: &PullProgress) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Terminal => {
                if p.layer.is_empty() || p.layer.contains(':') {
                    return;
                }
                let mut layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
                let bar = layers.entry(p.layer.clone()).or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template("    {prefix} {msg:<16} [{bar:30}] {bytes}/{total_bytes}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    bar.set_prefix(p.layer.chars().take(12).collect::<String>());
                    bar
                });
                bar.set_message(p.status.clone());
                if let Some(total) = p.total {
                    bar.set_length(total);
                }
                if let Some(current) = p.current {
                    bar.set_position(current);
                }
                if p.status.contains("complete") || p.status.contains("Already exists") {
                    bar.finish();
                }
            }
            Mode::Plain => {
                let mut last = self.last_plain_pull.lock().unwrap_or_else(|e| e.into_inner());
                let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(2));
                let whole_image = p.layer.is_empty() || p.layer.contains(':') || p.status.contains("complete");
                if due || whole_image {
                    *last = Some(Instant::now());
                    let mut text = format!("    pull: {}", p.status);
                    if !p.layer.is_empty() {
                        text.push_str(&format!(" {}", p.layer));
                    }
                    if let (Some(c), Some(t)) = (p.current, p.total) {
                        text.push_str(&format!(" {:.1}/{:.1} MB", c as f64 / 1e6, t as f64 / 1e6));
                    }
                    self.line(&text);
                }
            }
        }
    }

    /// Ends the pull display.
    pub fn pull_done(&self) {
        let mut layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        for (_, bar) in layers.drain() {
            bar.finish_and_clear();
        }
    }
}
