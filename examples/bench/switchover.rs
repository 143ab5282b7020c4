//! One measured planned switchover *and back* (the lock goes from the
//! primary to the secondary and returns: two handoffs) on a fresh failover
//! pair, by each method: cl-maint (`failover`, then `failover back`),
//! Chainlink's documented manual steps with the `docker` CLI, and, for a
//! node without a standby, a plain `docker restart`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::RestartContainerOptionsBuilder;

use crate::methods::{self, Sandbox, Steps, WAIT_LIMIT, block};
use crate::proc::{self, docker};
use crate::stats::{Kind, Method, Sample};
use crate::{Bench, Gen};

/// How the documented hand-back fails: `docker restart secondary -t 0`
/// makes a fresh secondary process that tries for the lock at once, and it
/// can win the lock against the waiting primary.
const HAND_BACK_FAILED: &str = "hand-back failed: the restarted secondary took the lock again instead of the primary";

/// The secondary's name in a sandbox.
fn secondary_of(sandbox: &Sandbox) -> String {
    format!("{}-secondary", sandbox.primary)
}

/// Runs one switchover round trip by `method` on a fresh sandbox.
pub async fn switchover(bench: &Bench, generation: Gen, run: usize, method: Method) -> Sample {
    let mut sample = Sample::new(method, generation, Kind::Switchover);
    let sandbox = match methods::sandbox(bench, generation, Kind::Switchover, run, method).await {
        Ok(s) => s,
        Err(e) => {
            sample.error = Some(format!("setup: {e}"));
            return sample;
        }
    };
    let started = SystemTime::now();
    let result = match method {
        Method::Recreate => restart(bench, &sandbox, &mut sample).await,
        _ => match pair_up(bench, &sandbox).await {
            Err(e) => Err(format!("setup: {e}")),
            Ok(()) => {
                settle_randomly().await;
                if method == Method::ClMaint {
                    cl_maint_switchover(bench, &sandbox, &mut sample).await
                } else {
                    manual_switchover(&sandbox, &mut sample).await
                }
            }
        },
    };
    methods::finish(bench, &sandbox, &mut sample, result, started).await;
    sample
}

/// Makes the failover pair (not measured): the secondary, a clone of the
/// primary on the standby port, waiting for the lock.
async fn pair_up(bench: &Bench, sandbox: &Sandbox) -> Result<(), String> {
    let secondary = secondary_of(sandbox);
    let port = sandbox.standby_port.to_string();
    let args = [
        "failover",
        "up",
        "--container",
        &sandbox.primary,
        "--secondary",
        &secondary,
        "--secondary-port",
        &port,
    ];
    let mut scratch = Sample::new(Method::ClMaint, sandbox.generation, Kind::Switchover);
    methods::cl_maint(bench, &args, &mut scratch).await.map(|_| ())
}

/// Lets the new pair sit for a random 0–2 s before the measured switchover
/// (not measured): a secondary that has waited a while retries for the
/// lock at a random phase of its retry interval, not right after its first
/// try.
async fn settle_randomly() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    // A multiplicative hash of the clock's nanoseconds: uniform enough here.
    let fraction = (nanos.wrapping_mul(2_654_435_761) % 1_000_000) as u64;
    tokio::time::sleep(Duration::from_micros(fraction * 2)).await;
}

/// `cl-maint failover` then `cl-maint failover back`, each measured.
async fn cl_maint_switchover(bench: &Bench, sandbox: &Sandbox, sample: &mut Sample) -> Result<(), String> {
    let secondary = secondary_of(sandbox);
    let names = ["--container", &sandbox.primary, "--secondary", &secondary];
    for (step, args) in [
        ("failover", vec!["failover"]),
        ("failover back", vec!["failover", "back"]),
    ] {
        let before = sample.total;
        let mut all = args.clone();
        all.extend(names);
        let report = methods::cl_maint(bench, &all, sample).await?;
        if report["outcome"] != "switched-over" {
            return Err(format!("`cl-maint {step}` reported {}", report["outcome"]));
        }
        // The wait timed to the successor's next lock try is the node's.
        for phase in report["phases"].as_array().into_iter().flatten() {
            if phase["name"] == "lock-retry" {
                sample.lock_waits += Duration::from_millis(phase["duration_ms"].as_u64().unwrap_or_default());
            }
        }
        sample
            .phases
            .push((step.to_string(), (sample.total - before).as_millis() as u64));
    }
    Ok(())
}

/// The time now as `docker logs --since` takes it.
fn now_for_since() -> String {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// Polls two nodes until one serves; true when it is the `wanted` one.
async fn first_to_serve(wanted: &str, other: &str) -> Result<bool, String> {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        for (addr, is_wanted) in [(wanted, true), (other, false)] {
            if let Ok(a) = cl_maint::probe::get(addr, "/health", None, Duration::from_secs(2)).await
                && cl_maint::node::health::status_means_serving(a.status)
            {
                return Ok(is_wanted);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("neither {wanted} nor {other} served within {WAIT_LIMIT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Chainlink's failover example by hand: `docker stop` the primary; wait
/// until the secondary serves; `docker start` the primary and watch its log
/// for the waiting line; `docker restart secondary -t 0` to hand the lock
/// back; wait until the primary serves; watch the secondary's log until it
/// waits again (the pair is whole, as cl-maint leaves it).
async fn manual_switchover(sandbox: &Sandbox, sample: &mut Sample) -> Result<(), String> {
    let secondary = secondary_of(sandbox);
    let standby_addr = format!("127.0.0.1:{}", sandbox.standby_port);
    let cpu_before = proc::children_cpu();
    let started = Instant::now();
    let mut steps = Steps::new(sample);
    block(|| docker(&["stop", &sandbox.primary]))?;
    steps.done("stop-primary");
    methods::wait_serving(&standby_addr, WAIT_LIMIT).await?;
    steps.done("takeover");
    let since = now_for_since();
    block(|| docker(&["start", &sandbox.primary]))?;
    steps.done("start-primary");
    block(|| methods::poll_logs_since(&sandbox.primary, Some(&since)))?;
    steps.done("logs-primary");
    let since = now_for_since();
    block(|| docker(&["restart", &secondary, "-t", "0"]))?;
    steps.done("restart-secondary");
    if !first_to_serve(&sandbox.primary_addr, &standby_addr).await? {
        return Err(HAND_BACK_FAILED.to_string());
    }
    steps.done("hand-back");
    block(|| methods::poll_logs_since(&secondary, Some(&since)))?;
    steps.done("logs-secondary");
    sample.total = started.elapsed();
    sample.cpu = Some(proc::children_cpu().saturating_sub(cpu_before));
    Ok(())
}

/// A node without a standby: `docker restart` (graceful stop, 10 s grace),
/// then wait until it serves again.
async fn restart(bench: &Bench, sandbox: &Sandbox, sample: &mut Sample) -> Result<(), String> {
    let started = Instant::now();
    let mut steps = Steps::new(sample);
    bench
        .docker
        .restart_container(
            &sandbox.primary,
            Some(RestartContainerOptionsBuilder::new().t(10).build()),
        )
        .await
        .map_err(|e| format!("restarting {}: {e}", sandbox.primary))?;
    steps.done("restart");
    methods::wait_serving(&sandbox.primary_addr, WAIT_LIMIT).await?;
    steps.done("wait-serving");
    sample.total = started.elapsed();
    Ok(())
}
