//! The secondary `failover up` creates, as a create request: what both the
//! run and its dry run build.

use crate::engine::Engine;
use crate::events::Events;
use crate::handoff::Failure;
use crate::names::{LABEL_PRIMARY, LABEL_ROLE};
use crate::spec::{self, CloneRequest};

use super::member::Member;
use super::{Hosts, PairOptions, ROLE_SECONDARY};

/// The secondary `failover up` creates: a clone of the primary on `image`,
/// publishing the node's port on the secondary port (on the host's
/// network: listening on it by the node's own setting; on a Docker network
/// only: asked inside), labelled a member of the pair, waiting forever in
/// the bolt era, without `--rm`. Also where cl-maint will ask it.
pub async fn spec<E: Engine>(
    hosts: Hosts<'_, E>,
    opts: &PairOptions,
    primary: &Member,
    image: String,
    events: &Events,
) -> Result<(spec::CloneSpec, String), Failure> {
    let (p, s) = (&primary.name, &opts.names.secondary);
    let Some(image_config) = hosts
        .primary
        .inspect_image(&primary.image_id)
        .await
        .ok()
        .flatten()
        .and_then(|i| i.config)
    else {
        return Err(Failure::new(format!(
            "the image {p} runs is not on its engine any more, so its defaults cannot be told apart"
        )));
    };
    let bolt = crate::node::lock::is_bolt(primary.generation, primary.version.as_deref());
    let seat = crate::members::port::seat(
        &hosts.secondary.reach(),
        &primary.inspect,
        s,
        primary.node_port,
        opts.secondary_port,
        primary.version.as_deref(),
    )
    .map_err(Failure::new)?;
    let mut set_env = Vec::new();
    if bolt {
        set_env.push((
            "DATABASE_TIMEOUT".to_string(),
            crate::node::lock::WAIT_FOREVER.to_string(),
        ));
    }
    set_env.extend(seat.env);
    let request = CloneRequest {
        name: s.clone(),
        image,
        http_host_port: seat.publish,
        set_env,
        labels: vec![
            (LABEL_PRIMARY.to_string(), p.clone()),
            (LABEL_ROLE.to_string(), ROLE_SECONDARY.to_string()),
        ],
        beside: true,
    };
    let mut spec = spec::clone_spec(&primary.inspect, &image_config, &request)
        .map_err(|e| Failure::new(format!("cannot clone {p}: {e}")))?;
    // A standby must survive its stops: the switchovers stop it and start it again.
    if let Some(host) = spec.body.host_config.as_mut()
        && host.auto_remove == Some(true)
    {
        host.auto_remove = Some(false);
        events.note(&format!(
            "{p} runs with --rm; {s} is created without it, as a standby must survive its stops"
        ));
    }
    Ok((spec, seat.addr))
}
