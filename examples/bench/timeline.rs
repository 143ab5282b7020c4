//! `--timeline`: where a run's time went, as one list merging the engine's
//! container events (create, start, kill, die, rename, destroy …, from the
//! Engine's event log) with the node double's journal (lock, serve, unserve,
//! unlock), in milliseconds from the start of the run.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::EventsOptionsBuilder;
use futures::StreamExt;

fn unix_ns(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or_default()
}

/// Prints the timeline of the run labelled `run_label` since `started`.
pub async fn print(docker: &Docker, run_label: &str, started: SystemTime, dir: &Path, title: &str) {
    let t0 = unix_ns(started);
    let now = unix_ns(SystemTime::now());
    let mut rows: Vec<(i128, String)> = Vec::new();
    let filters = HashMap::from([
        ("label".to_string(), vec![format!("{}={run_label}", crate::RUN_LABEL)]),
        ("type".to_string(), vec!["container".to_string()]),
    ]);
    let secs = |ns: i128| format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
    let options = EventsOptionsBuilder::new()
        .since(&secs(t0))
        .until(&secs(now + 1_000_000))
        .filters(&filters)
        .build();
    let mut events = docker.events(Some(options));
    while let Some(Ok(e)) = events.next().await {
        let action = e.action.unwrap_or_default();
        if action.starts_with("exec_") || action.starts_with("health_status") {
            continue;
        }
        let name = e
            .actor
            .and_then(|a| a.attributes)
            .and_then(|a| a.get("name").cloned())
            .unwrap_or_default();
        rows.push((
            e.time_nano.unwrap_or_default() as i128,
            format!("engine   {action:<8} {name}"),
        ));
    }
    let journal = std::fs::read_to_string(dir.join(crate::journal::FILE_NAME)).unwrap_or_default();
    for line in journal.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [ts, client, event, version, ..] = parts.as_slice()
            && !matches!(*event, "beat" | "renew")
            && let Ok(ts) = ts.parse::<i128>()
            && ts >= t0
        {
            let client: String = client.chars().take(8).collect();
            rows.push((ts, format!("journal  {event:<8} {version} (process {client})")));
        }
    }
    rows.sort_by_key(|r| r.0);
    eprintln!("  timeline of {title} (ms from the start):");
    for (ts, what) in rows {
        eprintln!("  {:>9.1}  {what}", (ts - t0) as f64 / 1e6);
    }
}
