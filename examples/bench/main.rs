//! The benchmark: cl-maint against the documented manual procedure and
//! stop-then-recreate, on the node double in both lock generations.
//!
//! `cargo run --release --example bench -- --cycles 10` (see
//! docs/benchmarks.md). Each cycle runs every method once per generation, in
//! a rotating order, each on a fresh node (1.0.0, serving) with the new image
//! (1.1.0) removed from the engine so that every method pulls it for real.
//! Each handoff's unavailability comes from the double's own journal;
//! cl-maint runs as the release binary in a child process, measured with
//! `wait4` (CPU time, peak RSS).

mod common;
#[allow(dead_code)]
#[path = "../../tests/it/rig/images.rs"]
mod images;
#[allow(dead_code)]
#[path = "../../tests/it/rig/journal.rs"]
mod journal;
mod methods;
mod proc;
#[allow(dead_code)]
#[path = "../../tests/it/rig/registry.rs"]
mod registry;
mod stats;
mod switchover;
mod timeline;

use std::path::{Path, PathBuf};

use bollard::Docker;

use common::build_cl_maint;
pub use common::{Bench, Gen, connect, remove_labelled};
use stats::{Kind, Method, Sample, Summary};

/// Label on every container of one run (`<pid>-<run>`).
pub const RUN_LABEL: &str = "io.cl-maint.bench";
/// Label with the benchmark's PID (containers of dead runs are swept).
pub const PID_LABEL: &str = "io.cl-maint.bench-pid";

struct Args {
    cycles: usize,
    cl_maint: Option<PathBuf>,
    timeline: bool,
    kinds: Vec<Kind>,
    gens: Vec<Gen>,
    methods: Vec<Method>,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo run --release --example bench -- [--cycles N] [--gen bolt|lease|both] [--methods clm,man,rec] [--kinds upgrade,switchover] [--timeline] [--cl-maint PATH]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        cycles: 3,
        cl_maint: None,
        timeline: false,
        kinds: vec![Kind::Upgrade, Kind::Switchover],
        gens: vec![Gen::Bolt, Gen::Lease],
        methods: vec![Method::ClMaint, Method::Manual, Method::Recreate],
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cycles" => args.cycles = it.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| usage()),
            "--gen" => {
                args.gens = match it.next().as_deref() {
                    Some("bolt") => vec![Gen::Bolt],
                    Some("lease") => vec![Gen::Lease],
                    Some("both") => vec![Gen::Bolt, Gen::Lease],
                    _ => usage(),
                }
            }
            "--methods" => {
                let list = it.next().unwrap_or_else(|| usage());
                args.methods = list
                    .split(',')
                    .map(|m| match m {
                        "clm" | "cl-maint" => Method::ClMaint,
                        "man" | "manual" => Method::Manual,
                        "rec" | "recreate" => Method::Recreate,
                        _ => usage(),
                    })
                    .collect();
            }
            "--kinds" => {
                let list = it.next().unwrap_or_else(|| usage());
                args.kinds = list
                    .split(',')
                    .map(|k| match k {
                        "upgrade" | "upgrades" => Kind::Upgrade,
                        "switchover" | "switchovers" => Kind::Switchover,
                        _ => usage(),
                    })
                    .collect();
            }
            "--timeline" => args.timeline = true,
            "--cl-maint" => args.cl_maint = Some(it.next().map(PathBuf::from).unwrap_or_else(|| usage())),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if args.cycles == 0 || args.methods.is_empty() || args.kinds.is_empty() {
        usage();
    }
    args
}

async fn setup(timeline: bool, binary: Option<PathBuf>) -> Result<Bench, String> {
    // Another build of cl-maint (an experiment) may be measured instead.
    let cl_maint = match binary {
        Some(path) => path,
        None => build_cl_maint()?,
    };
    let docker = connect().await?;
    remove_labelled(&docker, PID_LABEL).await;
    let rig_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("cl-maint-rig");
    std::fs::create_dir_all(&rig_dir).map_err(|e| e.to_string())?;
    eprintln!("bench: preparing the node double's images in the registry...");
    let images = images::prepare(&rig_dir).await?;
    methods::pull(&docker, &images, images::OLD).await?;
    Ok(Bench {
        docker,
        images,
        cl_maint,
        timeline,
    })
}

/// The machine, for the record.
async fn machine(docker: &Docker) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let engine = docker
        .version()
        .await
        .ok()
        .map(|v| {
            format!(
                "{} (API {})",
                v.version.unwrap_or_default(),
                v.api_version.unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{cores} cores ({cpu}), Linux {}, Docker Engine {engine}", kernel.trim())
}

fn report(samples: &[Sample], kind: Kind, gens: &[Gen], methods: &[Method]) {
    for &generation in gens {
        let group = |m: Method| {
            samples
                .iter()
                .filter(move |s| s.kind == kind && s.generation == generation && s.method == m)
        };
        if samples.iter().all(|s| s.kind != kind || s.generation != generation) {
            continue;
        }
        println!("\n### {} era, {}\n", generation.env(), kind.label());
        let rows: Vec<(Method, Summary)> = methods.iter().map(|&m| (m, Summary::of(group(m)))).collect();
        print!("{}", stats::table(kind, &rows));
        println!();
        for &m in methods {
            let ok: Vec<&Sample> = group(m).filter(|s| s.error.is_none()).collect();
            println!("- {} phases (p50): {}", m.label(kind), stats::phases(&ok));
        }
        for &m in methods {
            let mut reasons: Vec<(String, usize)> = Vec::new();
            for e in group(m).filter_map(|s| s.error.as_ref()) {
                match reasons.iter_mut().find(|(r, _)| r == e) {
                    Some((_, n)) => *n += 1,
                    None => reasons.push((e.clone(), 1)),
                }
            }
            for (reason, n) in reasons {
                println!("- {} failed {n}×: {reason}", m.label(kind));
            }
        }
        let find = |m: Method| rows.iter().find(|(x, _)| *x == m).map(|(_, s)| s);
        let Some(clm) = find(Method::ClMaint) else { continue };
        for other in [Method::Manual, Method::Recreate] {
            if let Some(o) = find(other) {
                println!(
                    "- cl-maint / {}: gap {} (p50), total {} (p50)",
                    other.label(kind),
                    stats::ratio(&clm.gaps, &o.gaps),
                    stats::ratio(&clm.totals, &o.totals)
                );
            }
        }
        targets(generation, kind, clm, find(Method::Manual), find(Method::Recreate));
    }
}

fn targets(generation: Gen, kind: Kind, clm: &Summary, manual: Option<&Summary>, recreate: Option<&Summary>) {
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let bound = (generation.retry() + generation.boot()).as_secs_f64() * 1000.0 + 50.0;
    let gap_max = clm.gaps.iter().copied().fold(0.0, f64::max);
    println!(
        "- target gap ≤ retry {} ms + boot {} ms + 50 ms = {bound:.0} ms: max {gap_max:.0} ms, {}",
        generation.retry().as_millis(),
        generation.boot().as_millis(),
        verdict(gap_max <= bound && !clm.gaps.is_empty())
    );
    let over_max = clm.overhead.iter().copied().fold(0.0, f64::max);
    let per = match kind {
        Kind::Upgrade => "per upgrade",
        Kind::Switchover => "per switchover (the round trip's two commands)",
    };
    println!(
        "- target overhead ≤ 1 s {per}: p50 {:.2} s, max {:.2} s, {}",
        stats::percentile(&clm.overhead, 50.0) / 1000.0,
        over_max / 1000.0,
        verdict(over_max <= 1000.0 && !clm.overhead.is_empty())
    );
    println!("- overlaps: {}, {}", clm.overlaps, verdict(clm.overlaps == 0));
    let p50 = |v: &[f64]| stats::percentile(v, 50.0);
    if let Some(m) = manual {
        if m.ok == 0 {
            println!(
                "- target beats the manual procedure on gap and total: not comparable, the manual procedure failed in all {} runs",
                m.failed
            );
        } else {
            let ok = p50(&clm.gaps) < p50(&m.gaps) && p50(&clm.totals) < p50(&m.totals);
            let caveat = if m.failed > 0 {
                format!(
                    " (against the {} of {} manual runs that finished)",
                    m.ok,
                    m.ok + m.failed
                )
            } else {
                String::new()
            };
            println!(
                "- target beats the manual procedure on gap and total: {}{caveat}",
                verdict(ok)
            );
        }
    }
    if let Some(r) = recreate {
        let ok = p50(&clm.gaps) < p50(&r.gaps);
        println!(
            "- target gap a fraction of {}'s: {}, {}",
            Method::Recreate.label(kind),
            stats::ratio(&clm.gaps, &r.gaps),
            verdict(ok)
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let bench = match setup(args.timeline, args.cl_maint.clone()).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    };
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("bench: interrupted; removing this run's containers");
            if let Ok(docker) = connect().await {
                remove_labelled(&docker, &format!("{PID_LABEL}={}", std::process::id())).await;
            }
            for dir in methods::dirs_of_this_process() {
                let _ = std::fs::remove_dir_all(dir);
            }
            std::process::exit(130);
        }
    });
    let machine = machine(&bench.docker).await;
    eprintln!("bench: {machine}; {} cycle(s)", args.cycles);
    let mut samples = Vec::new();
    let mut run = 0;
    for cycle in 0..args.cycles {
        for (g, &generation) in args.gens.iter().enumerate() {
            // Rotate the order each cycle so no method always goes first.
            let mut order = args.methods.clone();
            let shift = (cycle + g) % order.len();
            order.rotate_left(shift);
            for &kind in &args.kinds {
                for &method in &order {
                    run += 1;
                    let sample = match kind {
                        Kind::Upgrade => methods::upgrade(&bench, generation, run, method).await,
                        Kind::Switchover => switchover::switchover(&bench, generation, run, method).await,
                    };
                    eprintln!("[{}/{}] {}", cycle + 1, args.cycles, sample.line());
                    samples.push(sample);
                }
            }
        }
    }
    println!("\nMachine: {machine}.");
    println!(
        "{} cycle(s); manual procedure polls `docker logs` every {} ms and HTTP every 20 ms.",
        args.cycles,
        methods::LOGS_POLL.as_millis()
    );
    for &kind in &args.kinds {
        report(&samples, kind, &args.gens, &args.methods);
    }
    // The baselines may fail (that is a finding); cl-maint may not.
    let failed = samples
        .iter()
        .filter(|s| s.method == Method::ClMaint && (s.error.is_some() || s.overlaps > 0))
        .count();
    if failed > 0 {
        eprintln!("bench: {failed} cl-maint run(s) failed or overlapped; see the lines above");
        std::process::exit(1);
    }
}
