//! Which other containers share a node's database, and which of them hold
//! its lock: what preflight tells an operator whose node does not hold it.

use bollard::models::ContainerInspectResponse;

use crate::engine::{Engine, EngineResult, summary_name};
use crate::names::{LABEL_PRIMARY, LABEL_ROLE, ROLE_SECONDARY};

use super::member::{self, LockRole, Member};

/// Whether two members on one engine provably use the same database: the
/// same data directory (`ROOT` on the same volume or host directory, where
/// the bolt era's file lock lives), or the same database URL (from the
/// environment or the secrets file).
pub fn same_database(a: &Member, b: &Member) -> bool {
    same_place(a, &b.inspect, b.database.as_ref())
}

/// [`same_database`] for a container not yet described as a member: its
/// inspect document and its database.
fn same_place(a: &Member, b: &ContainerInspectResponse, b_database: Option<&member::Database>) -> bool {
    let dir = crate::spec::data_dir_on_host(&a.inspect);
    if dir.is_some() && dir == crate::spec::data_dir_on_host(b) {
        return true;
    }
    same_url(a.database.as_ref(), b_database)
}

/// Whether two databases are known and have the same URL.
fn same_url(a: Option<&member::Database>, b: Option<&member::Database>) -> bool {
    a.is_some_and(|x| Some(&x.url) == b.map(|y| &y.url))
}

/// What proves that `s` is the secondary of `p`, in words, or `None`.
/// A guess (the default name, the same image repository) is never proof:
/// cl-maint's label set by `failover up`; the operator naming it
/// (`--secondary` or the config's `secondary`, `named`); or the same
/// database as the engine shows it (on one engine the same data directory
/// or database URL, across two the same database URL).
pub fn membership(s: &Member, p: &Member, named: bool, split: bool) -> Option<&'static str> {
    let labels = s.inspect.config.as_ref().and_then(|c| c.labels.as_ref());
    let labelled = labels.is_some_and(|l| {
        l.get(LABEL_PRIMARY) == Some(&p.name) && l.get(LABEL_ROLE).map(String::as_str) == Some(ROLE_SECONDARY)
    });
    if labelled {
        Some("cl-maint's label from `failover up`")
    } else if named {
        Some("named as the secondary (--secondary, or the config's `secondary`)")
    } else if !split && same_database(s, p) {
        Some("the same data directory or database URL")
    } else if split && same_url(s.database.as_ref(), p.database.as_ref()) {
        Some("the same database URL")
    } else {
        None
    }
}

/// The refusal for a container that is not proven the secondary of `p`.
pub fn unproven(s: &Member, p: &Member) -> (String, Vec<String>) {
    let (s, p) = (&s.name, &p.name);
    let what = format!(
        "{s} may be the secondary of {p}, but nothing proves it belongs to this node: it has no cl-maint label for {p}, it was not named with --secondary or in the config, and it does not use {p}'s database as the engine shows it (the same data directory or database URL)"
    );
    let next = vec![
        format!(
            "if {s} is {p}'s secondary, name it: `--secondary {s}`, or `secondary = \"{s}\"` in the node's config (`cl-maint failover up` labels the secondaries it creates)"
        ),
        format!(
            "if it belongs to another node, name this node's own secondary with --secondary NAME, or a name no container has to work on {p} alone"
        ),
    ];
    (what, next)
}

/// Whether `s` looks like a member of a pair with `p` without proof: the
/// same image repository, or cl-maint's secondary label (of any node).
pub fn looks_like_member(s: &Member, p: &Member) -> bool {
    let labels = s.inspect.config.as_ref().and_then(|c| c.labels.as_ref());
    let a_secondary = labels.is_some_and(|l| l.get(LABEL_ROLE).map(String::as_str) == Some(ROLE_SECONDARY));
    a_secondary || crate::reference::repository(&s.image) == crate::reference::repository(&p.image)
}

/// The running containers on `engine`, other than `node`, that share its
/// database and answer as its lock holder.
pub async fn holders_beside<E: Engine>(engine: &E, node: &Member) -> EngineResult<Vec<Member>> {
    let mut holders = Vec::new();
    for other in engine.list_all_containers().await? {
        let running = other.state.as_ref().is_some_and(|s| s.to_string() == "running");
        if !running || other.id.as_deref() == Some(node.id.as_str()) {
            continue;
        }
        // Only a container on the node's database is asked and its log read.
        let Some(inspect) = engine.inspect_container(&summary_name(&other)).await? else {
            continue;
        };
        let database = member::database_of(engine, &inspect).await;
        if !same_place(node, &inspect, database.as_ref()) {
            continue;
        }
        let m = member::describe(engine, "holder", inspect).await?;
        if m.lock == LockRole::Holding {
            holders.push(m);
        }
    }
    Ok(holders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::member::{Database, sample};
    use bollard::models::{ContainerConfig, MountPoint};

    fn member(url: Option<&str>, volume: Option<&str>) -> Member {
        let mut m = sample("member", "m", LockRole::Holding);
        m.inspect.config = Some(ContainerConfig {
            env: Some(vec!["ROOT=/chainlink".to_string()]),
            ..Default::default()
        });
        m.inspect.mounts = volume.map(|v| {
            vec![MountPoint {
                typ: Some("volume".into()),
                name: Some(v.into()),
                destination: Some("/chainlink".into()),
                ..Default::default()
            }]
        });
        m.database = url.map(|u| Database {
            source: "CL_DATABASE_URL".into(),
            url: u.into(),
        });
        m
    }

    #[test]
    fn the_same_database_by_data_directory_or_url() {
        let url = "postgresql://u:p@db:5432/cl";
        assert!(same_database(&member(None, Some("a")), &member(None, Some("a"))));
        assert!(!same_database(&member(None, Some("a")), &member(None, Some("b"))));
        assert!(same_database(&member(Some(url), None), &member(Some(url), Some("b"))));
        assert!(!same_database(
            &member(Some(url), None),
            &member(Some("postgresql://u:p@db:5432/other"), None)
        ));
        // Nothing known on either side is not the same database.
        assert!(!same_database(&member(None, None), &member(None, None)));
        // Across two engines only the URL counts.
        let (a, b) = (member(Some(url), Some("a")), member(Some(url), Some("b")));
        assert_eq!(membership(&a, &b, false, true), Some("the same database URL"));
        let (a, b) = (member(None, Some("a")), member(None, Some("a")));
        assert_eq!(
            membership(&a, &b, false, true),
            None,
            "a volume name means nothing on another host"
        );
    }
}
