//! `failover up`'s plan, without an engine: every refusal, and what it does
//! for each state of the pair.

use super::*;
use crate::members::member::sample;
use crate::node::logs::Generation;

fn opts() -> PairOptions {
    PairOptions::new("chainlink", "secondary")
}

fn observed(primary: Option<Member>, secondary: Option<Member>) -> Observed {
    Observed {
        view: PairView { primary, secondary },
        split: false,
        endpoints: ("unix:///a.sock".into(), "unix:///a.sock".into()),
        port_users: Ok(Vec::new()),
        port_free_here: Some(true),
    }
}

fn holder() -> Member {
    sample("primary", "chainlink", LockRole::Holding)
}

/// A secondary `failover up` created (it carries cl-maint's label).
fn secondary(lock: LockRole) -> Member {
    let mut m = Member {
        port: Some(6687),
        lock_evidence: "no waiting line yet".into(),
        ..sample("secondary", "secondary", lock)
    };
    m.inspect.config = Some(bollard::models::ContainerConfig {
        labels: Some(std::collections::HashMap::from([
            (crate::names::LABEL_PRIMARY.to_string(), "chainlink".to_string()),
            (
                crate::names::LABEL_ROLE.to_string(),
                crate::names::ROLE_SECONDARY.to_string(),
            ),
        ])),
        ..Default::default()
    });
    m
}

fn refusal(o: &Observed) -> Refusal {
    plan(o, &opts()).expect_err("refused")
}

#[test]
fn no_primary_is_refused_with_the_engine_named() {
    let r = refusal(&observed(None, None));
    assert_eq!(r.what, "there is no container named chainlink on unix:///a.sock");
    assert_eq!(r.state, "nothing was changed");
}

#[test]
fn a_secondary_not_proven_a_member_is_refused_unless_named() {
    let stranger = Member {
        port: Some(6687),
        ..sample("secondary", "secondary", LockRole::Waiting)
    };
    let o = observed(Some(holder()), Some(stranger));
    let r = refusal(&o);
    assert!(
        r.what
            .starts_with("secondary may be the secondary of chainlink, but nothing proves it"),
        "{r:?}"
    );
    assert_eq!(r.state, "nothing was changed");
    let mut named = opts();
    named.secondary_named = true;
    assert!(matches!(plan(&o, &named).unwrap().action, Action::AlreadyThere { .. }));
}

#[test]
fn an_existing_pair_is_left_as_it_is_or_its_stopped_secondary_started() {
    let o = observed(Some(holder()), Some(secondary(LockRole::Waiting)));
    assert!(matches!(plan(&o, &opts()).unwrap().action, Action::AlreadyThere { .. }));
    let o = observed(Some(holder()), Some(secondary(LockRole::Holding)));
    match plan(&o, &opts()).unwrap().action {
        Action::AlreadyThere { next_steps, .. } => assert!(next_steps[0].contains("failover back")),
        other => panic!("{other:?}"),
    }
    let o = observed(Some(holder()), Some(secondary(LockRole::Stopped)));
    assert!(matches!(plan(&o, &opts()).unwrap().action, Action::Start(_)));
    // A stopped secondary is not started when the primary does not hold.
    let down = Member {
        lock_evidence: "nothing answers".into(),
        ..sample("primary", "chainlink", LockRole::Stopped)
    };
    let r = refusal(&observed(Some(down), Some(secondary(LockRole::Stopped))));
    assert!(
        r.state
            .contains("secondary is stopped and chainlink does not hold the lock"),
        "{r:?}"
    );
    // A secondary that neither holds nor waits is not a node cl-maint knows.
    let r = refusal(&observed(Some(holder()), Some(secondary(LockRole::Unknown))));
    assert_eq!(r.what, "secondary: no waiting line yet");
    assert_eq!(r.next_steps.len(), 2);
}

#[test]
fn a_secondary_is_created_only_beside_a_holder_on_a_free_port() {
    assert!(matches!(
        plan(&observed(Some(holder()), None), &opts()).unwrap().action,
        Action::Create
    ));
    let stopped = sample("primary", "chainlink", LockRole::Stopped);
    assert!(
        refusal(&observed(Some(stopped), None))
            .what
            .contains("would take the lock instead of waiting")
    );
    let mut o = observed(Some(holder()), None);
    o.port_users = Ok(vec!["grafana".into()]);
    assert_eq!(
        refusal(&o).what,
        "host port 6687 is taken by container grafana on unix:///a.sock"
    );
    let mut o = observed(Some(holder()), None);
    o.port_free_here = Some(false);
    assert_eq!(refusal(&o).what, "host port 6687 is in use on this host");
    // The engine could not list its containers: a refusal in its turn.
    let mut o = observed(Some(sample("primary", "chainlink", LockRole::Stopped)), None);
    o.port_users = Err("the engine failed".into());
    assert!(
        refusal(&o).what.contains("would take the lock"),
        "the earlier check first"
    );
    let mut o = observed(Some(holder()), None);
    o.port_users = Err("the engine failed".into());
    let r = refusal(&o);
    assert_eq!((r.what.as_str(), r.next_steps.len()), ("the engine failed", 0));
    let mut same_port = opts();
    same_port.secondary_port = 6688;
    let r = plan(&observed(Some(holder()), None), &same_port).expect_err("refused");
    assert_eq!(r.what, "--secondary-port 6688 is the port chainlink publishes");
}

#[test]
fn a_bolt_era_primary_that_cannot_wait_gets_no_secondary() {
    let bolt = Member {
        generation: Some(Generation::Bolt),
        ..holder()
    };
    let r = refusal(&observed(Some(bolt), None));
    assert!(r.what.contains("DATABASE_TIMEOUT"), "{r:?}");
}

#[test]
fn on_two_hosts_a_local_database_is_refused() {
    let mut primary = holder();
    primary.database = Some(crate::members::member::Database {
        source: "DATABASE_URL".into(),
        url: "postgres://u:p@localhost:5432/cl".into(),
    });
    let mut o = observed(Some(primary), None);
    o.split = true;
    o.endpoints.1 = "tcp://b:2376".into();
    let r = refusal(&o);
    assert!(r.what.contains("DATABASE_URL points at localhost"), "{r:?}");
    // A v2 node's secrets file is read too (through the engine, by `describe`).
    let mut primary = holder();
    primary.database = Some(crate::members::member::Database {
        source: "/chainlink/secrets.toml ([Database] URL)".into(),
        url: "postgresql://u:p@127.0.0.1/cl".into(),
    });
    let mut o = observed(Some(primary), None);
    o.split = true;
    o.endpoints.1 = "tcp://b:2376".into();
    let r = refusal(&o);
    assert!(
        r.what
            .contains("chainlink's /chainlink/secrets.toml ([Database] URL) points at 127.0.0.1"),
        "{r:?}"
    );
}
