//! The plan of a pair upgrade, shown by `upgrade --dry-run`: the same parts
//! as a single node's plan (steps, the containers it would create, the
//! settings that change, the equivalent `docker` commands), built from the
//! members' settings without pulling or changing anything.

use crate::engine::Engine;
use crate::names::old_name;
use crate::node::lock::{WAIT_FOREVER, is_bolt};
use crate::spec::{self, CloneRequest, CloneSpec};
use crate::upgrade::options::UpgradeOptions;
use crate::upgrade::plan::pull_step;
use crate::upgrade::shown::{Shown, run_commands};

use super::member::Member;
use super::{Hosts, Which};
use crate::handoff::Failure;

/// The clone of member `m` on `image` under its own name: its settings,
/// less the defaults of the image it runs, and in the bolt era
/// `DATABASE_TIMEOUT=0` so that it waits while the other member holds the
/// lock.
pub async fn clone_of<E: Engine>(engine: &E, m: &Member, image: &str) -> Result<CloneSpec, Failure> {
    let config = engine
        .inspect_image(&m.image_id)
        .await
        .ok()
        .flatten()
        .and_then(|i| i.config)
        .ok_or_else(|| Failure::new(format!("the image {} runs is not on its engine any more", m.name)))?;
    let env = m.env();
    let request = CloneRequest {
        name: m.name.clone(),
        image: image.to_string(),
        http_host_port: None,
        set_env: if is_bolt(m.generation, &env) {
            vec![("DATABASE_TIMEOUT".into(), WAIT_FOREVER.into())]
        } else {
            Vec::new()
        },
        labels: Vec::new(),
    };
    spec::clone_spec(&m.inspect, &config, &request).map_err(|e| Failure::new(format!("cannot clone {}: {e}", m.name)))
}

/// A pair upgrade's plan: JSON for `--json`, and text for people (both
/// redacted by the caller's redactor for the text).
pub struct PairPlan {
    /// The plan as JSON (docs/json.md, "Plan").
    pub json: serde_json::Value,
    /// The plan for people.
    pub text: String,
}

/// The pair and where the lock is: `holder` (on engine `hw`) holds it,
/// `waiting` waits.
pub struct Roles<'a> {
    /// The member holding the lock, and which it is.
    pub holder: (&'a Member, Which),
    /// The member waiting for it, and which it is.
    pub waiting: (&'a Member, Which),
}

/// The plan of upgrading the pair to `target`, handing the lock back at the
/// end when `hand_back`.
pub async fn plan<E: Engine>(
    hosts: Hosts<'_, E>,
    roles: &Roles<'_>,
    target: &str,
    opts: &UpgradeOptions,
    hand_back: bool,
) -> Result<PairPlan, Failure> {
    let ((h, hw), (w, ww)) = (roles.holder, roles.waiting);
    let w_spec = clone_of(hosts.of(ww), w, target).await?;
    let h_spec = clone_of(hosts.of(hw), h, target).await?;
    let mut present = true;
    for engine in engines(hosts) {
        present &= engine.inspect_image(target).await.ok().flatten().is_some();
    }
    let (first, pulls) = pull_step(opts.pull, target, present);
    let (w_old, h_old) = (old_name(&w.name), old_name(&h.name));
    let grace = opts.stop_timeout.as_secs();
    let addr = |m: &Member| m.addr.clone().unwrap_or_else(|| "its published port".into());
    let mut steps = vec![
        first,
        format!(
            "stop {w} (it waits for the lock) and rename it to {w_old}; create and start {w} on the new image; wait (up to {}s) until it logs that it waits for the lock",
            opts.wait_timeout.as_secs(),
            w = w.name
        ),
        format!(
            "stop {} gracefully (SIGTERM, up to {grace}s); {} takes the lock on the new version (the point of no return); confirm it answers HTTP on {} (up to {}s)",
            h.name,
            w.name,
            addr(w),
            opts.takeover_timeout.as_secs()
        ),
        format!(
            "rename {h} to {h_old}; create and start {h} on the new image; wait until it logs that it waits for the lock",
            h = h.name
        ),
    ];
    steps.push(if hand_back {
        format!(
            "hand the lock back: stop {w} gracefully; {h} takes it; confirm {h} answers HTTP on {}; start {w} again, to wait",
            addr(h),
            w = w.name,
            h = h.name
        )
    } else {
        format!("leave {} holding the lock (--no-hand-back)", w.name)
    });
    steps.push(if opts.keep_old {
        format!("keep {w_old} and {h_old}")
    } else {
        format!("remove {w_old} and {h_old}")
    });
    let mut changes = vec![format!("image: {} -> {target}", h.image)];
    if w.image != h.image {
        changes.push(format!("image of {}: {} -> {target}", w.name, w.image));
    }
    let mut commands = Vec::new();
    if pulls {
        for engine in engines(hosts) {
            commands.push(on(hosts, engine, format!("docker pull {target}")));
        }
    }
    let logs = |name: &str| format!("docker logs -f {name}   # until it says it is waiting for the lock");
    let we = hosts.of(ww);
    let he = hosts.of(hw);
    commands.push(on(hosts, we, format!("docker stop -t {grace} {}", w.name)));
    commands.push(on(hosts, we, format!("docker rename {} {w_old}", w.name)));
    commands.extend(run_commands(&w_spec).into_iter().map(|c| on(hosts, we, c)));
    commands.push(on(hosts, we, logs(&w.name)));
    commands.push(on(hosts, he, format!("docker stop -t {grace} {}", h.name)));
    commands.push(on(hosts, he, format!("docker rename {} {h_old}", h.name)));
    commands.extend(run_commands(&h_spec).into_iter().map(|c| on(hosts, he, c)));
    commands.push(on(hosts, he, logs(&h.name)));
    if hand_back {
        commands.push(on(hosts, we, format!("docker stop -t {grace} {}", w.name)));
        commands.push(on(hosts, we, format!("docker start {}", w.name)));
    }
    if !opts.keep_old {
        commands.push(on(hosts, we, format!("docker rm {w_old}")));
        commands.push(on(hosts, he, format!("docker rm {h_old}")));
    }
    let shown = Shown {
        title: format!("Plan for the pair {} / {} ({} -> {target})", h.name, w.name, h.image),
        steps: &steps,
        containers: vec![(&w_spec, ww.word()), (&h_spec, hw.word())],
        changes: &changes,
        docker_commands: &commands,
        generation: h.generation.or(w.generation),
    };
    Ok(PairPlan {
        json: shown.to_json(),
        text: shown.to_human(),
    })
}

/// The engines the pair runs on (one, or two when split).
fn engines<'a, E: Engine>(hosts: Hosts<'a, E>) -> Vec<&'a E> {
    if hosts.split() {
        vec![hosts.primary, hosts.secondary]
    } else {
        vec![hosts.primary]
    }
}

/// A command, with the engine it runs on when the pair is on two.
fn on<E: Engine>(hosts: Hosts<'_, E>, engine: &E, command: String) -> String {
    if hosts.split() {
        format!("{command}   # on {}", engine.endpoint())
    } else {
        command
    }
}
