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
#[allow(dead_code)]
#[path = "../../tests/it/rig/postgres.rs"]
mod postgres;
mod proc;
#[allow(dead_code)]
#[path = "../../tests/it/rig/registry.rs"]
mod registry;
mod report;
mod stats;
mod switchover;
#[cfg(test)]
mod tests;
mod timeline;

use std::path::PathBuf;

use bollard::Docker;

use common::build_cl_maint;
pub use common::{Bench, Gen, connect, free_port, remove_labelled, rig_dir};
use stats::{Kind, Method, Sample};

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
    probe: Option<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo run --release --example bench -- [--cycles N] [--gen bolt|lease|both] [--methods clm,man,rec] [--kinds upgrade,switchover] [--timeline] [--cl-maint PATH] [--probe auto|direct|engine]"
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
        probe: None,
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
            "--probe" => {
                args.probe = match it.next().as_deref() {
                    Some(p @ ("auto" | "direct" | "engine")) => Some(p.to_string()),
                    _ => usage(),
                }
            }
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
    let rig_dir = rig_dir();
    std::fs::create_dir_all(&rig_dir).map_err(|e| e.to_string())?;
    eprintln!("bench: preparing the node double's images in the registry...");
    let images = images::prepare(&rig_dir).await?;
    methods::pull(&docker, &images, images::OLD).await?;
    // The new version under a tag of this process's own, which each upgrade
    // run removes from the engine (so every method pulls it): the tests and
    // another benchmark may use `1.1.0` itself at the same time.
    let new_tag = new_tag(std::process::id());
    common::push_variant(&docker, &images, &new_tag).await?;
    let database = common::start_database(&docker, &format!("cl-maint-bench-{}", std::process::id())).await;
    Ok(Bench {
        docker,
        images,
        cl_maint,
        timeline,
        new_tag,
        database,
        probe: None,
    })
}

/// The tag of the new version a benchmark process upgrades to.
fn new_tag(pid: u32) -> String {
    format!("{}-bench-{pid}", images::NEW)
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

/// Runs every method `args.cycles` times per kind and generation, in a
/// rotating order; one line a run on stderr.
async fn measure(bench: &Bench, args: &Args) -> Vec<Sample> {
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
                        Kind::Upgrade => methods::upgrade(bench, generation, run, method).await,
                        Kind::Switchover => switchover::switchover(bench, generation, run, method).await,
                    };
                    eprintln!("[{}/{}] {}", cycle + 1, args.cycles, sample.line());
                    samples.push(sample);
                }
            }
        }
    }
    samples
}

/// The whole report (Markdown): the machine, then each kind's tables.
fn render(samples: &[Sample], args: &Args, machine: &str) -> String {
    let mut out = format!(
        "\nMachine: {machine}.\n{} cycle(s); cl-maint probes: {}; manual procedure polls `docker logs` every {} ms and HTTP every 20 ms.\n",
        args.cycles,
        args.probe.as_deref().unwrap_or("auto"),
        methods::LOGS_POLL.as_millis()
    );
    for &kind in &args.kinds {
        out.push_str(&report::report(samples, kind, &args.gens, &args.methods));
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let bench = match setup(args.timeline, args.cl_maint.clone()).await {
        Ok(b) => Bench {
            probe: args.probe.clone(),
            ..b
        },
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    };
    let (images, new_tag) = (bench.images.clone(), bench.new_tag.clone());
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("bench: interrupted; removing this run's containers and its image tag");
            if let Ok(docker) = connect().await {
                remove_labelled(&docker, &format!("{PID_LABEL}={}", std::process::id())).await;
                common::remove_networks(&docker).await;
                images::untag(&docker, &images, &new_tag).await;
            }
            for dir in methods::dirs_of_this_process() {
                let _ = std::fs::remove_dir_all(dir);
            }
            std::process::exit(130);
        }
    });
    let machine = machine(&bench.docker).await;
    eprintln!("bench: {machine}; {} cycle(s)", args.cycles);
    let samples = measure(&bench, &args).await;
    print!("{}", render(&samples, &args, &machine));
    images::untag(&bench.docker, &bench.images, &bench.new_tag).await;
    // The database server, then its network.
    remove_labelled(&bench.docker, &format!("{PID_LABEL}={}", std::process::id())).await;
    common::remove_networks(&bench.docker).await;
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
