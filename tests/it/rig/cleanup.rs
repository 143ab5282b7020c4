//! Cleanup: every container, volume and network a test made, and what
//! test processes that died left behind.

use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};

use super::{PID_LABEL, TEST_LABEL, postgres};

/// Removes containers left on `docker` by test processes that no longer exist.
pub(super) async fn sweep_stale(docker: &Docker) {
    let filters = HashMap::from([("label".to_string(), vec![PID_LABEL.to_string()])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    for c in docker.list_containers(Some(options)).await.unwrap_or_default() {
        let pid = c
            .labels
            .as_ref()
            .and_then(|l| l.get(PID_LABEL))
            .cloned()
            .unwrap_or_default();
        if !pid.is_empty() && !Path::new("/proc").join(&pid).exists() {
            let _ = docker
                .remove_container(
                    c.id.as_deref().unwrap_or_default(),
                    Some(RemoveContainerOptionsBuilder::new().force(true).v(true).build()),
                )
                .await;
        }
    }
}

/// Removes every container of the test `id` from `docker`, its database
/// server's too.
pub(super) async fn remove_labelled(docker: &Docker, id: &str) {
    let filters = HashMap::from([("label".to_string(), vec![format!("{TEST_LABEL}={id}")])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let db_filters = HashMap::from([("label".to_string(), vec![format!("{}={id}", postgres::DB_LABEL)])]);
    let db_options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&db_filters)
        .build();
    let mut containers = docker.list_containers(Some(options)).await.unwrap_or_default();
    containers.extend(docker.list_containers(Some(db_options)).await.unwrap_or_default());
    for c in containers {
        let _ = docker
            .remove_container(
                c.id.as_deref().unwrap_or_default(),
                Some(RemoveContainerOptionsBuilder::new().force(true).v(true).build()),
            )
            .await;
    }
    // Named volumes the test made (with its label), once no container uses them.
    let options = bollard::query_parameters::ListVolumesOptionsBuilder::new()
        .filters(&filters)
        .build();
    if let Ok(list) = docker.list_volumes(Some(options)).await {
        for v in list.volumes.unwrap_or_default() {
            let _ = docker
                .remove_volume(&v.name, None::<bollard::query_parameters::RemoveVolumeOptions>)
                .await;
        }
    }
    // Networks the test made (with its label), once its containers are gone.
    let options = bollard::query_parameters::ListNetworksOptionsBuilder::new()
        .filters(&filters)
        .build();
    for n in docker.list_networks(Some(options)).await.unwrap_or_default() {
        let _ = docker.remove_network(n.id.as_deref().unwrap_or_default()).await;
    }
}
