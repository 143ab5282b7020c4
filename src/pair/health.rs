//! `cl-maint health`: the `/health` checks of the member holding the lock,
//! failing ones first, and optionally chosen Prometheus metrics.

use std::time::Duration;

use serde::Serialize;

use crate::engine::Engine;
use crate::node::health::{self, Check};
use crate::report::HealthVerdict;

use super::status::{self, Verdict};
use super::{Hosts, PairNames};

/// Metrics shown by `--metrics` unless `--metric` names others.
pub const DEFAULT_METRICS: [&str; 6] = [
    "version",
    "uptime_seconds",
    "head_tracker_current_head",
    "head_tracker_heads_received",
    "eth_balance",
    "tx_manager_num_confirmed_transactions",
];

/// What to show besides the checks.
#[derive(Clone, Debug, Default)]
pub struct HealthOptions {
    /// Show metrics.
    pub metrics: bool,
    /// Which metrics (by name); empty means [`DEFAULT_METRICS`].
    pub names: Vec<String>,
    /// A bearer token for a protected `/metrics`.
    pub token: Option<String>,
}

/// One Prometheus sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Its labels as written (`{version="2.10.0"}`), or empty.
    pub labels: String,
    /// The value as written.
    pub value: String,
}

/// The health document.
#[derive(Clone, Debug, Serialize)]
pub struct HealthReport {
    /// `health`.
    pub command: String,
    /// `passing`, `failing`, or why no checks were read.
    pub verdict: HealthVerdict,
    /// The process exit code.
    pub exit_code: i32,
    /// The container holding the lock.
    pub holder: Option<String>,
    /// Where it was asked.
    pub addr: Option<String>,
    /// The HTTP status of `/health`.
    pub http_status: Option<u16>,
    /// Every check, failing ones first.
    pub checks: Vec<Check>,
    /// The chosen metrics (with `--metrics`).
    pub metrics: Option<Vec<Sample>>,
    /// Chosen metrics the node does not export.
    pub metrics_missing: Vec<String>,
    /// The situation in a sentence.
    pub summary: String,
    /// What to do.
    pub next_steps: Vec<String>,
}

impl HealthReport {
    fn new(verdict: HealthVerdict, summary: String) -> HealthReport {
        HealthReport {
            command: "health".into(),
            verdict,
            exit_code: verdict.exit_code(),
            holder: None,
            addr: None,
            http_status: None,
            checks: Vec::new(),
            metrics: None,
            metrics_missing: Vec::new(),
            summary,
            next_steps: Vec::new(),
        }
    }

    /// Sets the verdict, and with it the exit code.
    fn set(&mut self, verdict: HealthVerdict) {
        self.verdict = verdict;
        self.exit_code = verdict.exit_code();
    }

    /// The report when the engines could not be read.
    pub fn unreachable(status: super::status::Status) -> HealthReport {
        let mut r = HealthReport::new(HealthVerdict::of_status(status.verdict), status.summary);
        r.next_steps = status.next_steps;
        r
    }
}

/// `cl-maint health`.
pub async fn health<E: Engine>(hosts: Hosts<'_, E>, names: &PairNames, opts: &HealthOptions) -> HealthReport {
    let st = status::status(hosts, names).await;
    let holder = match st.verdict {
        Verdict::OneHolder => st.members.iter().find(|m| Some(&m.name) == st.holder.as_ref()),
        _ => None,
    };
    let Some(holder) = holder else {
        let mut r = HealthReport::new(HealthVerdict::of_status(st.verdict), st.summary);
        r.next_steps = st.next_steps;
        return r;
    };
    let addr = holder.addr.clone().unwrap_or_default();
    let mut r = HealthReport::new(HealthVerdict::Passing, String::new());
    r.holder = Some(holder.name.clone());
    r.addr = Some(addr.clone());
    let engine = if holder.host == hosts.secondary.endpoint() {
        hosts.secondary
    } else {
        hosts.primary
    };
    match engine.http_get(&addr, "/health", Duration::from_secs(5)).await {
        Ok(answer) => {
            r.http_status = Some(answer.status);
            match health::parse(&answer.body) {
                Ok(checks) => r.checks = checks,
                Err(_) if answer.status == 204 => {
                    r.summary = format!("{} holds the lock and is running its database migrations", holder.name);
                }
                Err(e) => {
                    r.set(HealthVerdict::Unreadable);
                    r.summary = format!(
                        "{} answered /health with HTTP {} but not with the checks document ({e})",
                        holder.name, answer.status
                    );
                }
            }
        }
        Err(e) => {
            r.set(HealthVerdict::NoAnswer);
            r.summary = format!("{} stopped answering /health: {e}", holder.name);
            r.next_steps
                .push("run `cl-maint status` to see who holds the lock now".into());
        }
    }
    let failing: Vec<String> = r.checks.iter().filter(|c| !c.passing).map(|c| c.name.clone()).collect();
    if !failing.is_empty() {
        r.set(HealthVerdict::Failing);
        let list = &failing;
        r.summary = format!(
            "{} holds the lock; {} of {} checks FAIL: {}",
            holder.name,
            failing.len(),
            r.checks.len(),
            list.join(", ")
        );
        r.next_steps
            .push(format!("read the node's log: `docker logs --tail 100 {}`", holder.name));
    } else if r.summary.is_empty() {
        r.summary = format!("{} holds the lock; all {} checks pass", holder.name, r.checks.len());
    }
    if opts.metrics {
        metrics(engine, &mut r, &addr, opts).await;
    }
    r
}

async fn metrics<E: Engine>(engine: &E, r: &mut HealthReport, addr: &str, opts: &HealthOptions) {
    let wanted: Vec<String> = if opts.names.is_empty() {
        DEFAULT_METRICS.iter().map(|s| s.to_string()).collect()
    } else {
        opts.names.clone()
    };
    let asked = engine.http_get_auth(addr, "/metrics", opts.token.as_deref(), Duration::from_secs(5));
    match asked.await {
        Ok(a) if a.status == 200 => {
            let samples = parse_metrics(&a.body);
            r.metrics = Some(samples.iter().filter(|s| wanted.contains(&s.name)).cloned().collect());
            r.metrics_missing = wanted
                .into_iter()
                .filter(|w| !samples.iter().any(|s| &s.name == w))
                .collect();
        }
        Ok(a) if a.status == 401 || a.status == 403 => {
            r.metrics = Some(Vec::new());
            r.summary
                .push_str(&format!("; /metrics refused the request (HTTP {})", a.status));
            r.next_steps
                .push("pass the node's Prometheus token with --metrics-token (or CL_MAINT_METRICS_TOKEN)".into());
            if r.verdict == HealthVerdict::Passing {
                r.set(HealthVerdict::MetricsRefused);
            }
        }
        Ok(a) => {
            r.metrics = Some(Vec::new());
            r.summary.push_str(&format!("; /metrics answered HTTP {}", a.status));
        }
        Err(e) => {
            r.metrics = Some(Vec::new());
            r.summary.push_str(&format!("; /metrics did not answer: {e}"));
        }
    }
}

/// Parses Prometheus text exposition into samples (comments skipped).
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (series, rest) = match l.find('}') {
                Some(end) if l[..end].contains('{') => (&l[..=end], &l[end + 1..]),
                _ => l.split_once(' ')?,
            };
            let value = rest.split_whitespace().next()?.to_string();
            let (name, labels) = match series.find('{') {
                Some(i) => (&series[..i], &series[i..]),
                None => (series, ""),
            };
            Some(Sample {
                name: name.to_string(),
                labels: labels.to_string(),
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let text = "# HELP version x\n# TYPE version gauge\nversion{commit=\"a b\",version=\"2.10.0\"} 1\nuptime_seconds 12.5 1700000000\n\n";
        let s = parse_metrics(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "version");
        assert_eq!(s[0].labels, "{commit=\"a b\",version=\"2.10.0\"}");
        assert_eq!(s[0].value, "1");
        assert_eq!(s[1].name, "uptime_seconds");
        assert_eq!(s[1].value, "12.5");
    }
}
