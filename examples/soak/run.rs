//! One generation's soak: a single node upgraded back and forth and a
//! failover pair switched over and back (and upgraded every few cycles),
//! each on its own volume directory and journal, for the whole run.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::ListContainersOptionsBuilder;

use crate::methods::{self, Sandbox};
use crate::report::{Ran, Soaked, Step};
use crate::stats::{Kind, Method};
use crate::{Args, Bench, DIR_MARKER, Gen, RUN_LABEL, STOP, images, journal, proc, variant};

/// How long a member that cl-maint reported serving may take to answer here.
const SERVE_CHECK: Duration = Duration::from_secs(10);

/// One of the two sandboxes and how far its journal has been read.
struct Track {
    sandbox: Sandbox,
    /// The pair's secondary (None: the single node).
    secondary: Option<String>,
    handoffs_seen: usize,
    overlaps_seen: usize,
    /// The tag the primary runs.
    tag: String,
}

impl Track {
    async fn new(bench: &Bench, generation: Gen, kind: Kind, run: usize) -> Result<Track, String> {
        let sandbox = methods::sandbox(bench, generation, kind, run, Method::ClMaint).await?;
        std::fs::write(sandbox.dir.join(DIR_MARKER), std::process::id().to_string())
            .map_err(|e| format!("cannot write into {}: {e}", sandbox.dir.display()))?;
        let secondary = (kind == Kind::Switchover).then(|| format!("{}-secondary", sandbox.primary));
        Ok(Track {
            sandbox,
            secondary,
            handoffs_seen: 0,
            overlaps_seen: 0,
            tag: images::OLD.to_string(),
        })
    }

    fn standby_addr(&self) -> String {
        format!("127.0.0.1:{}", self.sandbox.standby_port)
    }
}

/// Runs the soak of one generation.
pub async fn generation(bench: &Bench, generation: Gen, args: &Args) -> Soaked {
    let started = Instant::now();
    let mut soaked = Soaked {
        generation,
        cycles: 0,
        ran: Vec::new(),
        overlaps: 0,
        setup_error: None,
        lost: None,
        interrupted: false,
        wall: Duration::ZERO,
    };
    let first_run = match generation {
        Gen::Bolt => 1,
        Gen::Lease => 3,
    };
    let node = Track::new(bench, generation, Kind::Upgrade, first_run).await;
    let pair = Track::new(bench, generation, Kind::Switchover, first_run + 1).await;
    match (node, pair) {
        (Ok(mut node), Ok(mut pair)) => {
            cycles(bench, &mut node, &mut pair, args, &mut soaked).await;
            for track in [&node, &pair] {
                soaked.overlaps += methods::block(|| journal::read(&track.sandbox.dir)).overlaps.len();
                methods::clean(&bench.docker, &track.sandbox).await;
            }
        }
        (node, pair) => {
            let errors: Vec<String> = [&node, &pair]
                .iter()
                .filter_map(|t| t.as_ref().err().cloned())
                .collect();
            soaked.setup_error = Some(format!("making the node and the pair failed: {}", errors.join("; ")));
            for track in [node, pair].into_iter().flatten() {
                methods::clean(&bench.docker, &track.sandbox).await;
            }
        }
    }
    soaked.wall = started.elapsed();
    soaked
}

async fn cycles(bench: &Bench, node: &mut Track, pair: &mut Track, args: &Args, soaked: &mut Soaked) {
    let g = soaked.generation.env();
    eprintln!(
        "[{g}] node {} (volume {}), pair {} + {}",
        node.sandbox.primary,
        node.sandbox.dir.display(),
        pair.sandbox.primary,
        pair.secondary.as_deref().unwrap_or_default()
    );
    let up = command(bench, pair, 0, Step::PairUp, None).await;
    eprintln!("[{g} setup] {}", up.short());
    let up_failed = up.failure.clone();
    soaked.ran.push(up);
    if let Some(e) = up_failed {
        eprintln!("  FAILED {}: {e}", Step::PairUp.label());
        soaked.setup_error = Some(format!("`cl-maint failover up` failed: {e}"));
        return;
    }
    for cycle in 1..=args.cycles {
        let cycle_started = Instant::now();
        let pair_upgrade = args.pair_upgrade_every > 0 && (cycle - 1) % args.pair_upgrade_every == 0;
        let mut plan = vec![
            (Step::Upgrade, Some(variant::next_after(&node.tag))),
            (Step::Failover, None),
            (Step::FailoverBack, None),
        ];
        if pair_upgrade {
            plan.push((Step::PairUpgrade, Some(variant::next_after(&pair.tag))));
        }
        let mut line = Vec::new();
        for (step, target) in plan {
            if STOP.load(Ordering::SeqCst) {
                soaked.interrupted = true;
                break;
            }
            let track = if step == Step::Upgrade { &mut *node } else { &mut *pair };
            let ran = command(bench, track, cycle, step, target).await;
            line.push(ran.short());
            if let Some(e) = &ran.failure {
                eprintln!("  FAILED cycle {cycle} {}: {e}", step.label());
            }
            soaked.ran.push(ran);
            if let Err(lost) = holder_within(&track.sandbox.dir, args.lost_after).await {
                let what = format!(
                    "after `{}` in cycle {cycle}: {lost}; containers: {}",
                    step.label(),
                    containers(bench, &track.sandbox.run_label).await
                );
                eprintln!("\n!!! [{g}] NODE LOST {what}\n!!! stopping the soak\n");
                soaked.lost = Some(what);
                break;
            }
        }
        eprintln!(
            "[{g} {cycle}/{}] {} | {:.1}s",
            args.cycles,
            line.join(" | "),
            cycle_started.elapsed().as_secs_f64()
        );
        if soaked.lost.is_some() || soaked.interrupted {
            break;
        }
        soaked.cycles = cycle;
    }
}

/// The command line of `step` on `track`.
fn command_line(track: &Track, step: Step, target: Option<&str>) -> Vec<String> {
    let primary = track.sandbox.primary.clone();
    // The single node is upgraded alone: a secondary name no container has.
    let secondary = track
        .secondary
        .clone()
        .unwrap_or_else(|| format!("{primary}-no-secondary"));
    let names = ["--container".into(), primary, "--secondary".into(), secondary];
    let port = track.sandbox.standby_port.to_string();
    let mut args: Vec<String> = match step {
        Step::PairUp => vec!["failover".into(), "up".into(), "--secondary-port".into(), port],
        Step::Failover => vec!["failover".into()],
        Step::FailoverBack => vec!["failover".into(), "back".into()],
        Step::Upgrade => vec!["upgrade".into(), "--standby-port".into(), port],
        Step::PairUpgrade => vec!["upgrade".into()],
    };
    if let Some(tag) = target {
        args.extend([
            "--tag".into(),
            tag.into(),
            "--pull".into(),
            "always".into(),
            "--yes".into(),
        ]);
    }
    args.extend(names);
    args.push("--json".into());
    args
}

/// Runs one cl-maint command, reads what the journal gained, and checks the
/// end state cl-maint reported against the engine and the node.
async fn command(bench: &Bench, track: &mut Track, cycle: usize, step: Step, target: Option<&'static str>) -> Ran {
    let argv = command_line(track, step, target);
    let mut child = Command::new(&bench.cl_maint);
    child.args(&argv);
    let measured = tokio::task::spawn_blocking(move || proc::run_measured(&mut child))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    let mut ran = Ran {
        cycle,
        step,
        target,
        code: -1,
        outcome: String::new(),
        failure: None,
        overlaps: 0,
        gaps_ms: Vec::new(),
        wall: Duration::ZERO,
    };
    match measured {
        Err(e) => ran.failure = Some(format!("cl-maint could not be run: {e}")),
        Ok(m) => {
            let report: serde_json::Value = serde_json::from_str(&m.stdout).unwrap_or_default();
            ran.code = m.code;
            ran.wall = m.wall;
            ran.outcome = report["outcome"].as_str().unwrap_or_default().to_string();
            if m.code == 130 && STOP.load(Ordering::SeqCst) {
                ran.outcome = "interrupted (Ctrl-C)".into();
            } else if m.code != 0 {
                let error = report["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| m.stderr.trim().lines().last().unwrap_or_default().to_string());
                let state = report["state"].as_str().unwrap_or_default();
                ran.failure = Some(format!("exit {} ({}): {error}; state: {state}", m.code, ran.outcome));
            } else if let Err(e) = verify(bench, track, step, target, &ran.outcome).await {
                ran.failure = Some(format!("exit 0 ({}) but {e}", ran.outcome));
            }
        }
    }
    if matches!(step, Step::Upgrade | Step::PairUpgrade)
        && let Some(tag) = tag_of(bench, &track.sandbox.primary).await
    {
        track.tag = tag;
    }
    let figures = methods::block(|| journal::read(&track.sandbox.dir));
    ran.gaps_ms = figures.handoffs[track.handoffs_seen.min(figures.handoffs.len())..]
        .iter()
        .map(|h| h.gap_ms)
        .collect();
    track.handoffs_seen = figures.handoffs.len();
    ran.overlaps = figures.overlaps.len().saturating_sub(track.overlaps_seen);
    track.overlaps_seen = figures.overlaps.len();
    ran
}

/// The end state each command promises.
async fn verify(bench: &Bench, track: &Track, step: Step, target: Option<&str>, outcome: &str) -> Result<(), String> {
    let expected = match step {
        Step::PairUp => "pair-ready",
        Step::Failover | Step::FailoverBack => "switched-over",
        Step::Upgrade | Step::PairUpgrade => "upgraded",
    };
    if outcome != expected {
        return Err(format!("the outcome is {outcome:?}, not {expected:?}"));
    }
    let (serving_name, serving_addr) = match step {
        Step::Failover => (track.secondary.clone().unwrap_or_default(), track.standby_addr()),
        _ => (track.sandbox.primary.clone(), track.sandbox.primary_addr.clone()),
    };
    methods::wait_serving(&serving_addr, SERVE_CHECK)
        .await
        .map_err(|e| format!("{serving_name} does not serve: {e}"))?;
    if let Some(tag) = target {
        let mut members = vec![track.sandbox.primary.clone()];
        members.extend(track.secondary.clone());
        for member in members {
            let runs = tag_of(bench, &member).await;
            if runs.as_deref() != Some(tag) {
                return Err(format!("{member} runs {runs:?}, not {tag}"));
            }
        }
    }
    Ok(())
}

/// The tag of the double's repository that container `name` was created
/// from (None: no such container, or another image).
async fn tag_of(bench: &Bench, name: &str) -> Option<String> {
    let inspect = bench.docker.inspect_container(name, None).await.ok()?;
    let image = inspect.config?.image?;
    image
        .strip_prefix(&format!("{}:", bench.images.repo))
        .map(str::to_string)
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// Whether the journal in `dir` shows a process serving within the last
/// second: a serving holder writes a `beat` every 10 ms.
fn serving_now(dir: &Path) -> bool {
    let Ok(mut file) = std::fs::File::open(dir.join(journal::FILE_NAME)) else {
        return false;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or_default();
    if file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024))).is_err() {
        return false;
    }
    let mut tail = Vec::new();
    if file.read_to_end(&mut tail).is_err() {
        return false;
    }
    let now = unix_ns();
    String::from_utf8_lossy(&tail).lines().rev().any(|line| {
        let mut parts = line.split_whitespace();
        let ts = parts.next().and_then(|t| t.parse::<u128>().ok());
        let event = parts.nth(1);
        matches!((ts, event), (Some(ts), Some("beat" | "serve")) if now.saturating_sub(ts) < 1_000_000_000)
    })
}

/// Waits until some process of the node serves (by its journal), or says
/// how long nobody did.
async fn holder_within(dir: &Path, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if methods::block(|| serving_now(dir)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no process of the node has served for {within:?} (journal {})",
                dir.join(journal::FILE_NAME).display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sandbox's containers, as `name (state, image)`.
async fn containers(bench: &Bench, run_label: &str) -> String {
    let filters = std::collections::HashMap::from([("label".to_string(), vec![format!("{RUN_LABEL}={run_label}")])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let list = bench.docker.list_containers(Some(options)).await.unwrap_or_default();
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|c| {
            format!(
                "{} ({}, {})",
                c.names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/'))
                    .unwrap_or("?"),
                c.status.as_deref().unwrap_or("?"),
                c.image.as_deref().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
