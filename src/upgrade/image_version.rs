//! Which node version an image carries, and how cl-maint knows it.
//!
//! Chainlink's own images carry no version label and no version env: the
//! version is linked into the binary. cl-maint reads the image's metadata
//! first (an OCI `org.opencontainers.image.version` label or a
//! `CHAINLINK_VERSION` env, as some operators' images have), and otherwise
//! runs the image's `--version` in a one-off container: no network, no
//! mounts, not started by any restart policy, removed at once. The tag is
//! the last resort (`2.10.0` says what it is; `latest` says nothing).

use std::time::Duration;

use bollard::models::ImageInspect;
use futures::StreamExt;

use crate::engine::{CloneSpec, Engine};
use crate::names::{LABEL_PRIMARY, LABEL_ROLE, ROLE_VERSION};

pub use crate::node::version::Source;

/// How long the one-off `--version` may take before cl-maint gives up on it.
const VERSION_DEADLINE: Duration = Duration::from_secs(20);

/// The version `chainlink --version` printed (`chainlink version 2.10.0@sha`).
pub fn parse_version_output(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("chainlink version ")?;
        let version = rest.split(['@', ' ']).next()?.trim_start_matches('v');
        crate::node::version::Version::parse(version).map(|_| version.to_string())
    })
}

/// The version of `image` (already on `engine`), and where it came from:
/// metadata, else its binary's `--version`, else the tag. `owner` names the
/// node whose upgrade asks (for the one-off container's name and label);
/// `None` (a dry run, which changes nothing) starts no one-off container.
pub async fn learn<E: Engine>(
    engine: &E,
    reference: &str,
    image: Option<&ImageInspect>,
    tag: &str,
    owner: Option<&str>,
) -> Option<(String, Source)> {
    if let Some(v) = crate::node::image::version_of_image(image) {
        return Some((v, Source::Metadata));
    }
    if let (Some(image), Some(owner)) = (image, owner)
        && let Some(v) = run_version(engine, reference, image, owner).await
    {
        return Some((v, Source::Binary));
    }
    super::version_from_tag(tag).map(|v| (v, Source::Tag))
}

/// Runs `IMAGE --version` once; `None` when it printed no version in time or
/// could not run. The container is removed whatever happened.
async fn run_version<E: Engine>(engine: &E, reference: &str, image: &ImageInspect, owner: &str) -> Option<String> {
    remove_stale(engine, owner).await;
    let spec = version_spec(reference, image, owner);
    let id = engine.create(&spec).await.ok()?;
    let printed = async {
        engine.start(&id).await.ok()?;
        tokio::time::timeout(VERSION_DEADLINE, engine.exited(&id))
            .await
            .ok()?
            .ok()?;
        let mut lines = engine.log_lines(&id, false);
        let mut text = String::new();
        while let Some(Ok(line)) = lines.next().await {
            text.push_str(&line);
            text.push('\n');
        }
        parse_version_output(&text)
    }
    .await;
    let _ = engine.kill(&id, "SIGKILL").await;
    let _ = engine.remove(&id).await;
    printed
}

/// Removes one-off `--version` containers of `owner`'s that a killed run
/// left (the run lock keeps two runs on one node apart, so none is in use).
async fn remove_stale<E: Engine>(engine: &E, owner: &str) {
    let Ok(found) = engine.list_containers(&format!("{LABEL_PRIMARY}={owner}")).await else {
        return;
    };
    for c in found {
        let role = c.labels.as_ref().and_then(|l| l.get(LABEL_ROLE)).map(String::as_str);
        if role == Some(ROLE_VERSION)
            && let Some(id) = c.id.as_deref()
        {
            let _ = engine.kill(id, "SIGKILL").await;
            let _ = engine.remove(id).await;
        }
    }
}

/// The one-off container: the image's entrypoint with `--version` (or
/// `chainlink --version` when the image names no entrypoint), no network,
/// no restart, labelled as cl-maint's.
pub fn version_spec(reference: &str, image: &ImageInspect, owner: &str) -> CloneSpec {
    let has_entrypoint = image
        .config
        .as_ref()
        .and_then(|c| c.entrypoint.as_ref())
        .is_some_and(|e| !e.is_empty());
    let cmd = if has_entrypoint {
        vec!["--version".to_string()]
    } else {
        vec!["chainlink".to_string(), "--version".to_string()]
    };
    let labels = [
        (LABEL_PRIMARY.to_string(), owner.to_string()),
        (LABEL_ROLE.to_string(), ROLE_VERSION.to_string()),
    ];
    crate::spec::isolated(
        format!("{owner}-cl-maint-version-{}", std::process::id()),
        Some(reference.to_string()),
        Some(cmd),
        labels.into_iter().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_chainlink_version_prints() {
        assert_eq!(
            parse_version_output("chainlink version 2.10.0@b0ce6a1ac5e2\n").as_deref(),
            Some("2.10.0")
        );
        assert_eq!(
            parse_version_output("chainlink version v1.13.3@abc").as_deref(),
            Some("1.13.3")
        );
        assert_eq!(parse_version_output("exec format error"), None);
        assert_eq!(parse_version_output(""), None);
    }

    #[test]
    fn the_one_off_keeps_the_entrypoint_and_has_no_network() {
        let mut image = ImageInspect::default();
        let spec = version_spec("repo:latest", &image, "chainlink");
        assert_eq!(spec.body.cmd.clone().unwrap(), ["chainlink", "--version"]);
        image.config = Some(bollard::models::ImageConfig {
            entrypoint: Some(vec!["chainlink".into()]),
            ..Default::default()
        });
        let spec = version_spec("repo:latest", &image, "chainlink");
        assert_eq!(spec.body.cmd.clone().unwrap(), ["--version"]);
        let host = spec.body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert!(host.restart_policy.is_none() && host.binds.is_none());
        assert!(spec.name.starts_with("chainlink-cl-maint-version-"));
    }
}
