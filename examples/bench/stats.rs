//! Samples, percentiles and the printed tables.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Gen;

/// How a handoff is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `cl-maint upgrade` / `cl-maint failover`.
    ClMaint,
    /// Chainlink's documented procedure, scripted with the `docker` CLI.
    Manual,
    /// Stop, remove, create, start (watchtower-style).
    Recreate,
}

impl Method {
    /// Short name for container names.
    pub fn slug(self) -> &'static str {
        match self {
            Method::ClMaint => "clm",
            Method::Manual => "man",
            Method::Recreate => "rec",
        }
    }

    /// Name in the tables (the third method of a switchover is a plain
    /// restart of a node without a standby).
    pub fn label(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Method::ClMaint, _) => "cl-maint",
            (Method::Manual, _) => "manual (docker CLI)",
            (Method::Recreate, Kind::Upgrade) => "stop-then-recreate",
            (Method::Recreate, Kind::Switchover) => "docker restart (no standby)",
        }
    }
}

/// What was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An upgrade 1.0.0 → 1.1.0.
    Upgrade,
    /// A planned switchover primary → secondary.
    Switchover,
}

impl Kind {
    /// Name in the tables.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Upgrade => "upgrades",
            Kind::Switchover => "planned switchovers (there and back)",
        }
    }
}

/// One measured run.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The method.
    pub method: Method,
    /// The lock generation.
    pub generation: Gen,
    /// Upgrade or switchover.
    pub kind: Kind,
    /// Each handoff's gap from the double's journal.
    pub gaps_ms: Vec<f64>,
    /// Overlaps in the journal (must be 0).
    pub overlaps: usize,
    /// Wall time of the whole run.
    pub total: Duration,
    /// Time spent pulling.
    pub pull: Duration,
    /// Time spent waiting on purpose for the successor's next lock try
    /// (cl-maint's `lock-retry` phases), part of the node's lock waits.
    pub lock_waits: Duration,
    /// CPU time (cl-maint: the process; manual: the docker CLI processes).
    pub cpu: Option<Duration>,
    /// Peak RSS of the cl-maint process.
    pub max_rss_kib: Option<u64>,
    /// cl-maint's reported phases (name, ms).
    pub phases: Vec<(String, u64)>,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

impl Sample {
    /// An empty sample.
    pub fn new(method: Method, generation: Gen, kind: Kind) -> Sample {
        Sample {
            method,
            generation,
            kind,
            gaps_ms: Vec::new(),
            overlaps: 0,
            total: Duration::ZERO,
            pull: Duration::ZERO,
            lock_waits: Duration::ZERO,
            cpu: None,
            max_rss_kib: None,
            phases: Vec::new(),
            error: None,
        }
    }

    /// The node's own time: boots and lock waits, i.e. the journal's gaps,
    /// plus the time spent waiting for a successor's next lock try.
    pub fn node_ms(&self) -> f64 {
        self.gaps_ms.iter().sum::<f64>() + ms(self.lock_waits)
    }

    /// Everything that is neither the pull nor the node.
    pub fn overhead_ms(&self) -> f64 {
        ms(self.total) - ms(self.pull) - self.node_ms()
    }

    /// One line for the progress log.
    pub fn line(&self) -> String {
        let gaps: Vec<String> = self.gaps_ms.iter().map(|g| format!("{g:.0}")).collect();
        let mut s = format!(
            "{} {:<6} {:<20} total {:>6.2}s pull {:>5.2}s gaps [{}] ms overhead {:>5.2}s",
            self.kind.label(),
            self.generation.env(),
            self.method.label(self.kind),
            self.total.as_secs_f64(),
            self.pull.as_secs_f64(),
            gaps.join(", "),
            self.overhead_ms() / 1000.0
        );
        if let Some(e) = &self.error {
            let _ = write!(s, " FAILED: {e}");
        }
        s
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p`-th percentile (nearest rank) of `values`; NaN when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

/// The figures of one (kind, generation, method) group.
pub struct Summary {
    /// Runs that finished.
    pub ok: usize,
    /// Runs that failed.
    pub failed: usize,
    /// All handoff gaps, ms.
    pub gaps: Vec<f64>,
    /// Overlaps in all runs.
    pub overlaps: usize,
    /// Totals, ms.
    pub totals: Vec<f64>,
    /// Pulls, ms.
    pub pulls: Vec<f64>,
    /// Node time, ms.
    pub node: Vec<f64>,
    /// Overhead, ms.
    pub overhead: Vec<f64>,
    /// CPU, ms.
    pub cpu: Vec<f64>,
    /// Peak RSS, KiB.
    pub rss: Vec<f64>,
}

impl Summary {
    /// Summarises the successful samples of a group.
    pub fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> Summary {
        let mut s = Summary {
            ok: 0,
            failed: 0,
            gaps: Vec::new(),
            overlaps: 0,
            totals: Vec::new(),
            pulls: Vec::new(),
            node: Vec::new(),
            overhead: Vec::new(),
            cpu: Vec::new(),
            rss: Vec::new(),
        };
        for x in samples {
            s.overlaps += x.overlaps;
            if x.error.is_some() {
                s.failed += 1;
                continue;
            }
            s.ok += 1;
            s.gaps.extend(&x.gaps_ms);
            s.totals.push(ms(x.total));
            s.pulls.push(ms(x.pull));
            s.node.push(x.node_ms());
            s.overhead.push(x.overhead_ms());
            s.cpu.extend(x.cpu.map(ms));
            s.rss.extend(x.max_rss_kib.map(|k| k as f64));
        }
        s
    }
}

fn secs(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{:.2} s", v / 1000.0)
    }
}

fn millis(v: f64) -> String {
    if v.is_nan() { "–".into() } else { format!("{v:.0} ms") }
}

/// The markdown table of one kind and generation, one row per method.
pub fn table(kind: Kind, rows: &[(Method, Summary)]) -> String {
    let mut out = String::new();
    out.push_str("| method | runs | handoffs | gap p50 | gap p95 | gap max | overlaps | total p50 | total p95 | pull p50 | node p50 | overhead p50 | overhead max | CPU p50 | peak RSS |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (method, s) in rows {
        let failed = if s.failed > 0 {
            format!(" ({} failed)", s.failed)
        } else {
            String::new()
        };
        let rss = if s.rss.is_empty() {
            "–".into()
        } else {
            format!("{:.1} MiB", max(&s.rss) / 1024.0)
        };
        let cpu = percentile(&s.cpu, 50.0);
        let cpu = match (method, cpu.is_nan()) {
            (_, true) => "–".to_string(),
            (Method::Manual, false) => format!("{cpu:.0} ms (CLI)"),
            _ => format!("{cpu:.0} ms"),
        };
        let _ = writeln!(
            out,
            "| {} | {}{failed} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {cpu} | {rss} |",
            method.label(kind),
            s.ok,
            s.gaps.len(),
            millis(percentile(&s.gaps, 50.0)),
            millis(percentile(&s.gaps, 95.0)),
            millis(max(&s.gaps)),
            s.overlaps,
            secs(percentile(&s.totals, 50.0)),
            secs(percentile(&s.totals, 95.0)),
            if kind == Kind::Upgrade {
                secs(percentile(&s.pulls, 50.0))
            } else {
                "–".into()
            },
            secs(percentile(&s.node, 50.0)),
            secs(percentile(&s.overhead, 50.0)),
            secs(max(&s.overhead)),
        );
    }
    out
}

/// `a / b` of two medians, as `0.42×`.
pub fn ratio(a: &[f64], b: &[f64]) -> String {
    let (a, b) = (percentile(a, 50.0), percentile(b, 50.0));
    if a.is_nan() || b.is_nan() || b == 0.0 {
        "–".into()
    } else {
        format!("{:.2}×", a / b)
    }
}

/// The median of each of cl-maint's phases.
pub fn phases(samples: &[&Sample]) -> String {
    if samples.is_empty() {
        return "– (no run finished)".into();
    }
    let mut names: Vec<String> = Vec::new();
    for s in samples {
        for (n, _) in &s.phases {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let parts: Vec<String> = names
        .iter()
        .map(|n| {
            let v: Vec<f64> = samples
                .iter()
                .flat_map(|s| s.phases.iter().filter(|(p, _)| p == n).map(|(_, ms)| *ms as f64))
                .collect();
            format!("{n} {}", millis(percentile(&v, 50.0)))
        })
        .collect();
    parts.join(", ")
}
