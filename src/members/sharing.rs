//! Which other containers share a node's database, and which of them hold
//! its lock: what preflight tells an operator whose node does not hold it.

use bollard::models::ContainerInspectResponse;

use crate::engine::{Engine, EngineResult, summary_name};
use crate::names::{LABEL_PRIMARY, LABEL_ROLE, ROLE_SECONDARY};

use super::member::{self, LockRole, Member};

/// The environment variables that name a node's database: v1's
/// `DATABASE_URL`, and v2's `CL_DATABASE_URL` (its secrets file may name it
/// instead; that file is not read here).
const URL_VARS: [&str; 2] = ["DATABASE_URL", "CL_DATABASE_URL"];

/// The database URL a container's environment names, if any.
pub fn database_url(c: &ContainerInspectResponse) -> Option<String> {
    database_url_var(c).map(|(_, url)| url)
}

/// The variable naming the container's database (`DATABASE_URL` or
/// `CL_DATABASE_URL`) and its value, if any (the last one set wins, as in
/// the node's environment).
pub fn database_url_var(c: &ContainerInspectResponse) -> Option<(&'static str, String)> {
    let env = c.config.as_ref()?.env.as_ref()?;
    env.iter().rev().find_map(|e| {
        let (name, value) = e.split_once('=')?;
        let var = URL_VARS.iter().find(|v| **v == name)?;
        (!value.is_empty()).then(|| (*var, value.to_string()))
    })
}

/// Whether two containers on one engine provably use the same database: the
/// same data directory (`ROOT` on the same volume or host directory, where
/// the bolt era's file lock lives), or the same database URL.
pub fn same_database(a: &ContainerInspectResponse, b: &ContainerInspectResponse) -> bool {
    let dir = crate::spec::data_dir_on_host(a);
    if dir.is_some() && dir == crate::spec::data_dir_on_host(b) {
        return true;
    }
    let url = database_url(a);
    url.is_some() && url == database_url(b)
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
    } else if !split && same_database(&s.inspect, &p.inspect) {
        Some("the same data directory or database URL")
    } else if split && database_url(&s.inspect).is_some_and(|u| Some(u) == database_url(&p.inspect)) {
        Some("the same database URL")
    } else {
        None
    }
}

/// Whether `s` looks like a member of a pair with `p` without proof: the
/// same image repository, or cl-maint's secondary label (of any node).
pub fn looks_like_member(s: &Member, p: &Member) -> bool {
    let labels = s.inspect.config.as_ref().and_then(|c| c.labels.as_ref());
    let a_secondary = labels.is_some_and(|l| l.get(LABEL_ROLE).map(String::as_str) == Some(ROLE_SECONDARY));
    a_secondary || crate::reference::repository(&s.image) == crate::reference::repository(&p.image)
}

/// The running containers on `engine`, other than `c`, that share its
/// database and answer as its lock holder.
pub async fn holders_beside<E: Engine>(engine: &E, c: &ContainerInspectResponse) -> EngineResult<Vec<Member>> {
    let mut holders = Vec::new();
    for other in engine.list_all_containers().await? {
        let running = other.state.as_ref().is_some_and(|s| s.to_string() == "running");
        if !running || other.id == c.id {
            continue;
        }
        let Some(inspect) = engine.inspect_container(&summary_name(&other)).await? else {
            continue;
        };
        if !same_database(c, &inspect) {
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
    use bollard::models::{ContainerConfig, MountPoint};

    fn container(env: &[&str], volume: Option<&str>) -> ContainerInspectResponse {
        ContainerInspectResponse {
            config: Some(ContainerConfig {
                env: Some(
                    env.iter()
                        .map(|e| e.to_string())
                        .chain(["ROOT=/chainlink".to_string()])
                        .collect(),
                ),
                ..Default::default()
            }),
            mounts: volume.map(|v| {
                vec![MountPoint {
                    typ: Some("volume".into()),
                    name: Some(v.into()),
                    destination: Some("/chainlink".into()),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_same_database_by_data_directory_or_url() {
        let url = "DATABASE_URL=postgresql://u:p@db:5432/cl";
        let v2_url = "CL_DATABASE_URL=postgresql://u:p@db:5432/cl";
        assert!(same_database(&container(&[], Some("a")), &container(&[], Some("a"))));
        assert!(!same_database(&container(&[], Some("a")), &container(&[], Some("b"))));
        assert!(same_database(
            &container(&[url], None),
            &container(&[v2_url], Some("b"))
        ));
        assert!(!same_database(
            &container(&[url], None),
            &container(&["DATABASE_URL=postgresql://u:p@db:5432/other"], None)
        ));
        // Nothing known on either side is not the same database.
        assert!(!same_database(&container(&[], None), &container(&[], None)));
    }
}
