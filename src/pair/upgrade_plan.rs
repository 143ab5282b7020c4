//! The plan of a pair upgrade, shown by `upgrade --dry-run`: the same parts
//! as a single node's plan (steps, the containers it would create, the
//! settings that change, the equivalent `docker` commands), built from the
//! members' settings without pulling or changing anything.

use crate::engine::Engine;
use crate::names::old_name;
use crate::node::lock::{WAIT_FOREVER, is_bolt};
use bollard::models::ImageConfig;

use crate::spec::{self, CloneRequest, CloneSpec};
use crate::upgrade::options::UpgradeOptions;
use crate::upgrade::shown::{Shown, run_commands};
use crate::upgrade::words::pull_step;

use super::member::Member;
use super::{Hosts, Which};
use crate::handoff::Failure;

/// The clone of member `m` on `image` under its own name (see
/// [`clone_spec_of`]), reading the config of the image it runs.
pub async fn clone_of<E: Engine>(engine: &E, m: &Member, image: &str) -> Result<CloneSpec, Failure> {
    clone_spec_of(m, &image_config(engine, m).await?, image)
}

/// The config of the image member `m` runs (its defaults, which a clone
/// leaves to the new image).
pub async fn image_config<E: Engine>(engine: &E, m: &Member) -> Result<ImageConfig, Failure> {
    engine
        .inspect_image(&m.image_id)
        .await
        .ok()
        .flatten()
        .and_then(|i| i.config)
        .ok_or_else(|| Failure::new(format!("the image {} runs is not on its engine any more", m.name)))
}

/// The clone of member `m` on `image` under its own name: its settings,
/// less `config`, the defaults of the image it runs, and in the bolt era
/// `DATABASE_TIMEOUT=0` so that it waits while the other member holds the
/// lock. Pure.
pub fn clone_spec_of(m: &Member, config: &ImageConfig, image: &str) -> Result<CloneSpec, Failure> {
    let request = CloneRequest {
        name: m.name.clone(),
        image: image.to_string(),
        http_host_port: None,
        set_env: if is_bolt(m.generation, m.version.as_deref()) {
            vec![("DATABASE_TIMEOUT".into(), WAIT_FOREVER.into())]
        } else {
            Vec::new()
        },
        labels: Vec::new(),
        beside: false,
    };
    spec::clone_spec(&m.inspect, config, &request).map_err(|e| Failure::new(format!("cannot clone {}: {e}", m.name)))
}

/// What a pair upgrade's plan needs to know of the engines (read-only).
#[derive(Clone, Debug)]
pub struct Seen {
    /// The config of the image the holder runs, or why it cannot be read.
    pub holder_image: Result<ImageConfig, Failure>,
    /// The config of the image the waiting member runs, or why not.
    pub waiting_image: Result<ImageConfig, Failure>,
    /// Whether every engine of the pair has the target image already.
    pub target_present: bool,
    /// The holder's engine, and the waiting member's, when the pair runs
    /// on two (commands are then marked with the engine they run on).
    pub split: Option<(String, String)>,
}

/// Reads what [`plan`] needs.
pub async fn observe<E: Engine>(hosts: Hosts<'_, E>, roles: &Roles<'_>, target: &str) -> Result<Seen, Failure> {
    let ((h, hw), (w, ww)) = (roles.holder, roles.waiting);
    let waiting_image = image_config(hosts.of(ww), w).await;
    let holder_image = image_config(hosts.of(hw), h).await;
    let mut target_present = true;
    for engine in engines(hosts) {
        target_present &= engine.inspect_image(target).await.ok().flatten().is_some();
    }
    Ok(Seen {
        holder_image,
        waiting_image,
        target_present,
        split: hosts
            .split()
            .then(|| (hosts.of(hw).endpoint(), hosts.of(ww).endpoint())),
    })
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
/// end when `hand_back`. Pure: `seen` is what it needs of the engines.
pub fn plan(
    seen: &Seen,
    roles: &Roles<'_>,
    target: &str,
    opts: &UpgradeOptions,
    hand_back: bool,
) -> Result<PairPlan, Failure> {
    let ((h, hw), (w, ww)) = (roles.holder, roles.waiting);
    // In the order the upgrade itself would meet them: the waiting member
    // first.
    let w_spec = clone_spec_of(w, seen.waiting_image.as_ref().map_err(Clone::clone)?, target)?;
    let h_spec = clone_spec_of(h, seen.holder_image.as_ref().map_err(Clone::clone)?, target)?;
    let (first, pulls) = pull_step(opts.pull, target, seen.target_present);
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
    // A command, with the engine it runs on when the pair is on two.
    let on = |holder: bool, command: String| match &seen.split {
        Some((he, we)) => format!("{command}   # on {}", if holder { he } else { we }),
        None => command,
    };
    let (he, we) = (true, false);
    let mut commands = Vec::new();
    if pulls {
        // On the primary's engine first.
        let order = if hw == Which::Primary { [he, we] } else { [we, he] };
        let engines = if seen.split.is_some() { &order[..] } else { &order[..1] };
        for &holder in engines {
            commands.push(on(holder, format!("docker pull {target}")));
        }
    }
    let logs = |name: &str| format!("docker logs -f {name}   # until it says it is waiting for the lock");
    commands.push(on(we, format!("docker stop -t {grace} {}", w.name)));
    commands.push(on(we, format!("docker rename {} {w_old}", w.name)));
    commands.extend(run_commands(&w_spec).into_iter().map(|c| on(we, c)));
    commands.push(on(we, logs(&w.name)));
    commands.push(on(he, format!("docker stop -t {grace} {}", h.name)));
    commands.push(on(he, format!("docker rename {} {h_old}", h.name)));
    commands.extend(run_commands(&h_spec).into_iter().map(|c| on(he, c)));
    commands.push(on(he, logs(&h.name)));
    if hand_back {
        commands.push(on(we, format!("docker stop -t {grace} {}", w.name)));
        commands.push(on(we, format!("docker start {}", w.name)));
    }
    if !opts.keep_old {
        commands.push(on(we, format!("docker rm {w_old}")));
        commands.push(on(he, format!("docker rm {h_old}")));
    }
    let shown = Shown {
        title: format!("Plan for the pair {} / {} ({} -> {target})", h.name, w.name, h.image),
        steps: &steps,
        containers: vec![(&w_spec, ww.word()), (&h_spec, hw.word())],
        changes: &changes,
        docker_commands: &commands,
        generation: h.generation.or(w.generation),
        warnings: &[],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::LockRole;
    use crate::upgrade::options::PullPolicy;

    const TARGET: &str = "smartcontract/chainlink:2.10.0";

    fn member(name: &str, lock: LockRole, port: u16) -> Member {
        let mut inspect: bollard::models::ContainerInspectResponse =
            serde_json::from_str(include_str!("../../tests/fixtures/inspect-container.json")).expect("fixture");
        inspect.name = Some(format!("/{name}"));
        Member {
            image: "smartcontract/chainlink:2.9.0".into(),
            version: Some("2.9.0".into()),
            port: Some(port),
            addr: Some(format!("127.0.0.1:{port}")),
            inspect,
            ..crate::members::member::sample(name, name, lock)
        }
    }

    fn seen(present: bool, split: bool) -> Seen {
        let image: bollard::models::ImageInspect =
            serde_json::from_str(include_str!("../../tests/fixtures/inspect-image-old.json")).expect("fixture");
        let config = image.config.expect("config");
        Seen {
            holder_image: Ok(config.clone()),
            waiting_image: Ok(config),
            target_present: present,
            split: split.then(|| ("tcp://a:2376".to_string(), "tcp://b:2376".to_string())),
        }
    }

    #[test]
    fn the_pair_plan_is_built_from_what_was_seen_alone() {
        let (p, s) = (
            member("chainlink", LockRole::Holding, 6688),
            member("secondary", LockRole::Waiting, 6687),
        );
        let roles = Roles {
            holder: (&p, Which::Primary),
            waiting: (&s, Which::Secondary),
        };
        let mut opts = UpgradeOptions::new("chainlink", "2.10.0");
        opts.pull = PullPolicy::Missing;
        let one = plan(&seen(true, false), &roles, TARGET, &opts, true).expect("a plan");
        let text = &one.text;
        assert!(!text.contains("docker pull"), "the target is present: {text}");
        assert!(text.contains("hand the lock back"), "{text}");
        // The waiting member is stopped for its recreation and for the hand-back.
        assert_eq!(text.matches("docker stop -t 15 secondary").count(), 2, "{text}");
        assert!(!text.contains("# on "), "{text}");
        // Missing on the engines, on two engines, and no hand-back.
        let two = plan(&seen(false, true), &roles, TARGET, &opts, false).expect("a plan");
        let text = &two.text;
        assert_eq!(text.matches("docker pull").count(), 2, "{text}");
        assert!(text.contains("# on tcp://b:2376"), "{text}");
        assert!(text.contains("leave secondary holding the lock"), "{text}");
        assert_eq!(text.matches("docker stop -t 15 secondary").count(), 1, "{text}");
        assert_eq!(one.json["steps"].as_array().map(Vec::len), Some(6), "{}", one.json);
    }
}
