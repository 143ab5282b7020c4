//! The soak: a long series of upgrades and planned switchovers against the
//! node double, with the same figures as the benchmark (overlaps and handoff
//! gaps from the double's own journal).
//!
//! `cargo run --release --example soak -- --cycles 50 [--gen bolt|lease|both]`
//! (see docs/reliability.md). Per generation: one long-lived node that
//! cl-maint upgrades back and forth, and one failover pair that cl-maint
//! switches over and back, and upgrades as a pair every few cycles. cl-maint
//! runs as the release binary in a child process.
//!
//! The benchmark's sandboxes, child-process measurement and percentiles are
//! reused through `#[path]` modules; what those modules expect of the crate
//! root comes from the benchmark's `common.rs`; the labels (the soak's own)
//! are defined here.

#[path = "../bench/common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../tests/it/rig/images.rs"]
mod images;
#[allow(dead_code)]
#[path = "../../tests/it/rig/journal.rs"]
mod journal;
#[allow(dead_code)]
#[path = "../bench/methods.rs"]
mod methods;
#[allow(dead_code)]
#[path = "../../tests/it/rig/postgres.rs"]
mod postgres;
#[allow(dead_code)]
#[path = "../bench/proc.rs"]
mod proc;
#[allow(dead_code)]
#[path = "../../tests/it/rig/registry.rs"]
mod registry;
mod report;
mod run;
#[allow(dead_code)]
#[path = "../bench/stats.rs"]
mod stats;
#[allow(dead_code)]
#[path = "../bench/timeline.rs"]
mod timeline;
mod variant;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Label on every container of one soak (`<pid>-<sandbox>`), cl-maint's
/// clones included (they keep the node's labels).
pub const RUN_LABEL: &str = "io.cl-maint.soak";
/// Label with the soak's PID (containers of dead runs are swept at start).
pub const PID_LABEL: &str = "io.cl-maint.soak-pid";
/// A file the soak puts in each of its volume directories, so that the
/// directories of a dead run can be told from the benchmark's.
pub const DIR_MARKER: &str = ".cl-maint-soak";

use common::build_cl_maint;
use common::pid_is_dead;
pub use common::{Bench, Gen, connect, remove_labelled};
use common::{free_port, rig_dir};

/// Set by the first Ctrl-C: stop after the command in flight.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Removes the volume directories of soaks that are no longer running
/// (`clbench-<pid>-…` holding [`DIR_MARKER`]).
fn remove_stale_dirs() {
    for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("clbench-").and_then(|r| r.split('-').next()) else {
            continue;
        };
        if pid_is_dead(pid) && entry.path().join(DIR_MARKER).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes this process's containers and directories.
async fn clean_up_this_run() {
    if let Ok(docker) = connect().await {
        remove_labelled(&docker, &format!("{PID_LABEL}={}", std::process::id())).await;
        common::remove_networks(&docker).await;
    }
    for dir in methods::dirs_of_this_process() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The command line.
pub struct Args {
    /// Cycles per generation.
    pub cycles: usize,
    /// The generations, in order.
    pub gens: Vec<Gen>,
    /// Upgrade the pair in cycle 1 and every N cycles after (0: never).
    pub pair_upgrade_every: usize,
    /// How long the node may have no holder before it counts as lost.
    pub lost_after: Duration,
    /// Another cl-maint binary to run instead of building this checkout's.
    pub cl_maint: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo run --release --example soak -- [--cycles N] [--gen bolt|lease|both] \
         [--pair-upgrade-every N] [--lost-after SECONDS] [--cl-maint PATH]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        cycles: 10,
        gens: vec![Gen::Bolt, Gen::Lease],
        pair_upgrade_every: 5,
        lost_after: Duration::from_secs(60),
        cl_maint: None,
    };
    let mut it = std::env::args().skip(1);
    let number = |it: &mut std::iter::Skip<std::env::Args>| -> usize {
        it.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| usage())
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cycles" => args.cycles = number(&mut it),
            "--pair-upgrade-every" => args.pair_upgrade_every = number(&mut it),
            "--lost-after" => args.lost_after = Duration::from_secs(number(&mut it) as u64),
            "--gen" => {
                args.gens = match it.next().as_deref() {
                    Some("bolt") => vec![Gen::Bolt],
                    Some("lease") => vec![Gen::Lease],
                    Some("both") => vec![Gen::Bolt, Gen::Lease],
                    _ => usage(),
                }
            }
            "--cl-maint" => args.cl_maint = Some(it.next().map(PathBuf::from).unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    if args.cycles == 0 || args.lost_after.is_zero() {
        usage();
    }
    args
}

async fn setup(binary: Option<PathBuf>) -> Result<Bench, String> {
    let cl_maint = match binary {
        Some(path) => path,
        None => build_cl_maint()?,
    };
    let docker = connect().await?;
    remove_labelled(&docker, PID_LABEL).await;
    remove_stale_dirs();
    let rig_dir = rig_dir();
    std::fs::create_dir_all(&rig_dir).map_err(|e| format!("cannot create {}: {e}", rig_dir.display()))?;
    eprintln!("soak: preparing the node double's images in the registry...");
    let images = images::prepare(&rig_dir).await?;
    methods::pull(&docker, &images, images::OLD).await?;
    let database = common::start_database(&docker, &format!("cl-maint-soak-{}", std::process::id())).await;
    let bench = Bench {
        docker,
        images,
        cl_maint,
        timeline: false,
        new_tag: images::NEW.to_string(),
        database,
        probe: None,
    };
    variant::prepare(&bench).await?;
    Ok(bench)
}

/// First Ctrl-C: finish the command in flight (cl-maint gets the signal too
/// and rolls back or completes its handoff), report, clean up. Second:
/// clean up now.
fn handle_interrupts() {
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            STOP.store(true, Ordering::SeqCst);
            eprintln!("soak: interrupted; stopping after the command in flight (Ctrl-C again to stop now)");
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("soak: interrupted again; removing this run's containers and directories");
            clean_up_this_run().await;
            std::process::exit(130);
        }
    });
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    handle_interrupts();
    let bench = match setup(args.cl_maint.clone()).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("soak: {e}");
            clean_up_this_run().await;
            std::process::exit(1);
        }
    };
    eprintln!(
        "soak: {} cycle(s) per generation ({}); {}",
        args.cycles,
        args.gens.iter().map(|g| g.env()).collect::<Vec<_>>().join(", "),
        variant::EXPLANATION
    );
    let mut results = Vec::new();
    for &generation in &args.gens {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let soaked = run::generation(&bench, generation, &args).await;
        let stop = soaked.lost.is_some() || STOP.load(Ordering::SeqCst);
        results.push(soaked);
        if stop {
            break;
        }
    }
    clean_up_this_run().await;
    println!();
    for soaked in &results {
        print!("{}", report::table(soaked, &args));
    }
    println!("\n{}", variant::EXPLANATION);
    if STOP.load(Ordering::SeqCst) {
        std::process::exit(130);
    }
    let bad: usize = results.iter().map(report::Soaked::bad).sum();
    if bad > 0 {
        eprintln!("soak: {bad} failure(s), overlap(s) or lost node(s); see the tables above");
        std::process::exit(1);
    }
}
