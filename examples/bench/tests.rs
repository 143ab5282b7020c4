//! Unit tests of the benchmark's arithmetic and verdicts (`cargo test
//! --workspace` runs them: the example has `test = true`). The benchmark
//! itself runs end to end on the real engine in `tests/it/bench.rs`.

use std::time::Duration;

use crate::Gen;
use crate::report::targets;
use crate::stats::{self, Kind, Method, Sample, Summary};

fn sample(method: Method, gaps_ms: &[f64], total_ms: u64, pull_ms: u64, lock_wait_ms: u64) -> Sample {
    let mut s = Sample::new(method, Gen::Bolt, Kind::Upgrade);
    s.gaps_ms = gaps_ms.to_vec();
    s.total = Duration::from_millis(total_ms);
    s.pull = Duration::from_millis(pull_ms);
    s.lock_waits = Duration::from_millis(lock_wait_ms);
    s
}

fn summary(samples: &[Sample]) -> Summary {
    Summary::of(samples.iter())
}

#[test]
fn percentiles_are_nearest_rank() {
    let v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
    assert_eq!(stats::percentile(&v, 50.0), 5.0);
    assert_eq!(stats::percentile(&v, 95.0), 10.0);
    assert_eq!(stats::percentile(&v, 100.0), 10.0);
    assert_eq!(stats::percentile(&v, 0.0), 1.0);
    assert_eq!(stats::percentile(&[7.0], 50.0), 7.0);
    assert!(stats::percentile(&[], 50.0).is_nan());
}

#[test]
fn overhead_is_what_is_neither_pull_nor_the_nodes_boots_and_lock_waits() {
    let s = sample(Method::ClMaint, &[260.0, 270.0], 1500, 120, 30);
    assert_eq!(s.node_ms(), 560.0);
    assert_eq!(s.overhead_ms(), 1500.0 - 120.0 - 560.0);
}

#[test]
fn a_failed_run_counts_as_failed_and_its_figures_stay_out_but_its_overlaps_count() {
    let ok = sample(Method::ClMaint, &[250.0], 1000, 100, 0);
    let mut failed = sample(Method::ClMaint, &[9000.0], 20_000, 100, 0);
    failed.error = Some("cl-maint exited 5".into());
    failed.overlaps = 1;
    let s = summary(&[ok, failed]);
    assert_eq!((s.ok, s.failed, s.overlaps), (1, 1, 1));
    assert_eq!(s.gaps, vec![250.0]);
    assert_eq!(s.totals, vec![1000.0]);
    let table = stats::table(Kind::Upgrade, &[(Method::ClMaint, s)]);
    assert!(table.contains("| cl-maint | 1 (1 failed) | 1 | 250 ms |"), "{table}");
}

#[test]
fn ratios_are_of_medians_and_a_dash_without_figures() {
    assert_eq!(stats::ratio(&[100.0, 300.0, 200.0], &[400.0]), "0.50×");
    assert_eq!(stats::ratio(&[100.0], &[]), "–");
    assert_eq!(stats::ratio(&[100.0], &[0.0]), "–");
}

#[test]
fn targets_are_met_when_cl_maint_is_within_its_floor_and_beats_both_baselines() {
    let clm = summary(&[sample(Method::ClMaint, &[260.0, 262.0], 1300, 100, 20)]);
    let manual = summary(&[sample(Method::Manual, &[290.0, 295.0], 1600, 150, 0)]);
    let recreate = summary(&[sample(Method::Recreate, &[700.0], 850, 100, 0)]);
    let out = targets(Gen::Bolt, Kind::Upgrade, &clm, Some(&manual), Some(&recreate));
    assert!(!out.contains("MISSED"), "{out}");
    assert_eq!(out.lines().filter(|l| l.ends_with(" met")).count(), 5, "{out}");
}

#[test]
fn the_comparison_with_the_manual_procedure_shows_both_medians() {
    let clm = summary(&[sample(Method::ClMaint, &[260.0, 262.0], 1300, 100, 20)]);
    let manual = summary(&[sample(Method::Manual, &[261.0, 263.0], 1600, 150, 0)]);
    let out = targets(Gen::Bolt, Kind::Upgrade, &clm, Some(&manual), None);
    assert!(
        out.contains("manual procedure on gap and total: gap 260 against 261 ms, total 1.30 against 1.60 s (p50), met"),
        "{out}"
    );
}

#[test]
fn phases_are_medians_in_first_seen_order_and_a_dash_when_no_run_finished() {
    let mut a = sample(Method::ClMaint, &[], 0, 0, 0);
    a.phases = vec![("pull".into(), 20), ("takeover".into(), 400)];
    let mut b = sample(Method::ClMaint, &[], 0, 0, 0);
    b.phases = vec![("pull".into(), 30), ("takeover".into(), 500), ("cleanup".into(), 9)];
    assert_eq!(stats::phases(&[&a, &b]), "pull 20 ms, takeover 400 ms, cleanup 9 ms");
    assert_eq!(stats::phases(&[]), "– (no run finished)");
}

#[test]
fn each_target_is_missed_on_its_own_figure() {
    let manual = summary(&[sample(Method::Manual, &[290.0], 1600, 150, 0)]);
    let recreate = summary(&[sample(Method::Recreate, &[700.0], 850, 100, 0)]);
    let verdicts = |clm: &Summary| targets(Gen::Bolt, Kind::Upgrade, clm, Some(&manual), Some(&recreate));
    let missed = |out: &str, target: &str| {
        out.lines()
            .find(|l| l.starts_with(target))
            .unwrap_or_else(|| panic!("no line {target:?} in\n{out}"))
            .ends_with("MISSED")
    };

    // A gap over retry 50 + boot 250 + 50 ms.
    let out = verdicts(&summary(&[sample(Method::ClMaint, &[351.0], 1300, 100, 0)]));
    assert!(missed(&out, "- target gap ≤"), "{out}");
    // Over 1 s of cl-maint's own time.
    let out = verdicts(&summary(&[sample(Method::ClMaint, &[260.0], 1400, 100, 0)]));
    assert!(missed(&out, "- target overhead"), "{out}");
    // An overlap.
    let mut overlapping = sample(Method::ClMaint, &[260.0], 1300, 100, 0);
    overlapping.overlaps = 1;
    let out = verdicts(&summary(&[overlapping]));
    assert!(missed(&out, "- overlaps"), "{out}");
    // Slower in total than the manual procedure, or a gap as long as
    // stop-then-recreate's.
    let out = verdicts(&summary(&[sample(Method::ClMaint, &[260.0], 1700, 100, 0)]));
    assert!(missed(&out, "- target beats the manual"), "{out}");
    let out = verdicts(&summary(&[sample(Method::ClMaint, &[700.0], 1000, 100, 0)]));
    assert!(missed(&out, "- target gap a fraction"), "{out}");
}

#[test]
fn a_manual_procedure_that_always_failed_is_not_comparable() {
    let clm = summary(&[sample(Method::ClMaint, &[700.0], 3400, 100, 600)]);
    let mut failed = sample(Method::Manual, &[], 0, 0, 0);
    failed.error = Some("hand-back failed".into());
    let out = targets(Gen::Lease, Kind::Switchover, &clm, Some(&summary(&[failed])), None);
    assert!(
        out.contains("not comparable, the manual procedure failed in all 1 runs"),
        "{out}"
    );
}

#[test]
fn each_benchmark_process_upgrades_to_a_tag_of_its_own() {
    assert_eq!(crate::new_tag(42), "1.1.0-bench-42");
    assert_ne!(crate::new_tag(42), crate::images::NEW);
}

/// Removes what the end-to-end test made, also when it panics: this
/// process's containers and sandbox directories, and its tag of the new
/// version.
struct Cleanup {
    tag: Option<(crate::images::Images, String)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let tag = self.tag.take();
        // The test's runtime may be unwinding: clean up on a runtime of our own.
        let cleaning = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                let Ok(docker) = crate::connect().await else { return };
                crate::remove_labelled(&docker, &format!("{}={}", crate::PID_LABEL, std::process::id())).await;
                crate::common::remove_networks(&docker).await;
                if let Some((images, tag)) = tag {
                    crate::images::untag(&docker, &images, &tag).await;
                }
            });
        });
        let _ = cleaning.join();
        for dir in crate::methods::dirs_of_this_process() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The debug build of cl-maint beside this test binary
/// (`target/debug/examples/bench-HASH` → `target/debug/cl-maint`).
fn cl_maint_beside_this_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|d| d.join("cl-maint"))
        .expect("the test binary lives in target/debug/examples");
    assert!(
        bin.exists(),
        "{} is missing: `cargo test --workspace` builds it, or run `cargo build --bin cl-maint` first",
        bin.display()
    );
    bin
}

/// One cycle of the benchmark on the real engine and registry: every method
/// in the bolt era (the scripts are the same in both generations), cl-maint
/// and stop-then-recreate in the lease era (the manual procedure there
/// waits out two 10 s leases). Checks what the benchmark measures, not how
/// fast: each run finishes, its handoffs are read from the journal without
/// an overlap, cl-maint's process is measured, the report has every table
/// and verdict, and nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cycle_of_every_method_runs_end_to_end_on_the_real_engine() {
    let mut cleanup = Cleanup { tag: None };
    let cl_maint = cl_maint_beside_this_binary();
    let bench = crate::setup(false, Some(cl_maint)).await.unwrap_or_else(|e| {
        panic!("the benchmark needs a Docker Engine and Debian's docker-registry (`bash .ci/run` starts both): {e}")
    });
    cleanup.tag = Some((bench.images.clone(), bench.new_tag.clone()));
    let all = vec![Method::ClMaint, Method::Manual, Method::Recreate];
    let runs = [
        (Gen::Bolt, all.clone()),
        (Gen::Lease, vec![Method::ClMaint, Method::Recreate]),
    ];
    let mut report = String::new();
    for (generation, methods) in runs {
        let args = crate::Args {
            cycles: 1,
            cl_maint: None,
            timeline: false,
            kinds: vec![Kind::Upgrade, Kind::Switchover],
            gens: vec![generation],
            methods: methods.clone(),
            probe: None,
        };
        let samples = crate::measure(&bench, &args).await;
        assert_eq!(samples.len(), 2 * methods.len(), "one run per kind and method");
        for s in &samples {
            let what = s.line();
            assert!(s.error.is_none(), "{what}");
            assert_eq!(s.overlaps, 0, "{what}");
            // cl-maint and the manual procedure hand over twice (there and
            // back); a recreate or a restart is one outage.
            let handoffs = if s.method == Method::Recreate { 1 } else { 2 };
            assert_eq!(s.gaps_ms.len(), handoffs, "{what}");
            assert!(s.gaps_ms.iter().all(|g| *g > 0.0), "{what}");
            assert!(s.total > Duration::ZERO, "{what}");
            if s.method == Method::ClMaint {
                assert!(s.cpu.is_some_and(|c| c > Duration::ZERO), "{what}");
                assert!(s.max_rss_kib.is_some_and(|k| k > 0), "{what}");
                let phases: Vec<&str> = s.phases.iter().map(|(n, _)| n.as_str()).collect();
                let expected: &[&str] = match s.kind {
                    Kind::Upgrade => &["pull", "start-standby", "takeover", "hand-back"],
                    Kind::Switchover => &["failover", "failover back"],
                };
                for phase in expected {
                    assert!(phases.contains(phase), "no phase {phase} in {phases:?}: {what}");
                }
            }
            if s.kind == Kind::Upgrade {
                assert!(s.pull > Duration::ZERO, "every method pulls for real: {what}");
            }
        }
        report.push_str(&crate::render(&samples, &args, "the test machine"));
    }
    for heading in [
        "### bolt era, upgrades",
        "### bolt era, planned switchovers (there and back)",
        "### lease era, upgrades",
        "### lease era, planned switchovers (there and back)",
    ] {
        assert!(report.contains(heading), "no {heading:?} in\n{report}");
    }
    for row in [
        "| cl-maint | 1 | 2 |",
        "| manual (docker CLI) | 1 | 2 |",
        "| stop-then-recreate | 1 | 1 |",
        "| docker restart (no standby) | 1 | 1 |",
    ] {
        assert!(report.contains(row), "no row {row:?} in\n{report}");
    }
    assert_eq!(report.matches("- overlaps: 0, met").count(), 4, "{report}");
    assert_eq!(
        report.matches("- cl-maint / manual (docker CLI): gap").count(),
        2,
        "{report}"
    );
    assert_eq!(report.matches("- target gap a fraction of").count(), 4, "{report}");

    // Each run removed its containers; the tag and the database server go
    // at the end, as in main.
    let label = format!("{}={}", crate::PID_LABEL, std::process::id());
    let filters = std::collections::HashMap::from([("label".to_string(), vec![label])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let left = bench
        .docker
        .list_containers(Some(options))
        .await
        .expect("listing containers");
    // The database server serves every run and goes at the end, as in main.
    let server = format!("/pg-cl-maint-bench-{}", std::process::id());
    let left: Vec<_> = left
        .into_iter()
        .filter(|c| !c.names.iter().flatten().any(|n| *n == server))
        .collect();
    assert!(left.is_empty(), "containers left behind: {left:?}");
    crate::images::untag(&bench.docker, &bench.images, &bench.new_tag).await;
    let reference = bench.images.reference(&bench.new_tag);
    assert!(
        bench.docker.inspect_image(&reference).await.is_err(),
        "{reference} is still on the engine"
    );
}
