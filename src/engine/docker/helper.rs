//! The probe that works on every engine: when a node's image has no `curl`,
//! cl-maint runs its own probe (`cl-maint __probe get`) in a helper
//! container that shares the node's network namespace
//! (`--network container:ID`).
//!
//! The helper's image is cl-maint itself, built on the engine `FROM
//! scratch` from this very executable (with the shared libraries it has
//! loaded, when it is not static), tagged `cl-maint-probe:HASH`. A helper
//! is bound to one start of its node (a namespace does not survive a
//! restart), is removed by the engine when it exits (`--rm`), and exits by
//! itself two minutes after its last probe, so a killed run leaves nothing
//! running for long.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{BuildImageOptionsBuilder, CreateContainerOptionsBuilder};
use futures::{FutureExt, StreamExt};
use sha2::Digest;

use super::DockerEngine;
use super::exec::{Ask, Failed, answer};
use crate::engine::Engine;
use crate::names::LABEL_ROLE;
use crate::probe::{Answer, NoAnswer};

/// The build of the helper's image, awaited by every probe that needs it.
pub(super) type ImageBuild = futures::future::Shared<futures::future::BoxFuture<'static, Result<String, String>>>;

/// The role label of a helper container.
pub const ROLE_PROBE: &str = "probe";

/// How long building the helper's image and starting a helper may take.
const SETUP: Duration = Duration::from_secs(120);

/// The helper image's tag: cl-maint's version and a hash of this
/// executable's size and modification time (hashing a debug build's
/// contents takes seconds).
fn tag() -> Result<String, String> {
    let meta =
        std::fs::metadata("/proc/self/exe").map_err(|e| format!("cannot read cl-maint's own executable ({e})"))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let id = format!("{}-{:?}", meta.len(), modified);
    Ok(format!(
        "cl-maint-probe:{}-{}",
        env!("CARGO_PKG_VERSION"),
        &hex(&sha2::Sha256::digest(id.as_bytes()))[..12]
    ))
}

/// The helper's image: this executable, its libraries and loader, `/tmp`.
fn context() -> Result<Vec<u8>, String> {
    let exe = std::fs::read("/proc/self/exe").map_err(|e| format!("cannot read cl-maint's own executable ({e})"))?;
    let mut files: Vec<(String, Vec<u8>)> = vec![("rootfs/cl-maint".into(), exe.clone())];
    let mut wanted: Vec<String> = interpreter(&exe).into_iter().collect();
    if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
        wanted.extend(
            maps.lines()
                .filter_map(|l| l.split_whitespace().nth(5))
                .filter(|p| p.starts_with('/') && p.contains(".so"))
                .map(str::to_string),
        );
    }
    wanted.sort();
    wanted.dedup();
    for path in wanted {
        let data = std::fs::read(&path).map_err(|e| format!("cannot read {path} ({e})"))?;
        files.push((format!("rootfs{path}"), data));
    }
    let dockerfile = "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/cl-maint\", \"__probe\"]\nCMD [\"agent\"]\n";
    files.push(("Dockerfile".into(), dockerfile.as_bytes().to_vec()));
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o1777);
    header.set_size(0);
    header.set_cksum();
    tar.append_data(&mut header, "rootfs/tmp/", std::io::empty())
        .map_err(|e| e.to_string())?;
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, &name, data.as_slice())
            .map_err(|e| e.to_string())?;
    }
    tar.into_inner().map_err(|e| e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ELF interpreter (`PT_INTERP`) a dynamic executable names.
fn interpreter(elf: &[u8]) -> Option<String> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?) as usize);
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?) as usize);
    if elf.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let (phoff, size, count) = (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?);
    (0..count).find_map(|i| {
        let ph = phoff + i * size;
        (u32::from_le_bytes(elf.get(ph..ph + 4)?.try_into().ok()?) == 3).then_some(())?;
        let (offset, len) = (u64_at(ph + 8)?, u64_at(ph + 32)?);
        let text = elf.get(offset..offset + len)?;
        Some(String::from_utf8_lossy(text).trim_end_matches('\0').to_string())
    })
}

/// The helper's image on the engine, built once per run in a task of its
/// own: a probe that gives up waiting does not stop the build.
async fn image(engine: &DockerEngine) -> Result<String, String> {
    let build = {
        let mut slot = engine.helper_image.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| {
            let docker = engine.docker.clone();
            tokio::spawn(build(docker))
                .map(|joined| joined.unwrap_or_else(|e| Err(e.to_string())))
                .boxed()
                .shared()
        })
        .clone()
    };
    let built = build.await;
    if built.is_err() {
        // A failure (a brief engine error) is not kept: the next probe
        // tries again.
        *engine.helper_image.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
    built
}

/// Builds the helper's image unless the engine has it.
async fn build(docker: bollard::Docker) -> Result<String, String> {
    let tag = tag()?;
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(tag);
    }
    let context = tokio::task::spawn_blocking(context)
        .await
        .map_err(|e| e.to_string())??;
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(&tag)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| format!("building {tag}: {e}"))?;
        if let Some(detail) = info.error_detail {
            return Err(format!("building {tag}: {}", detail.message.unwrap_or_default()));
        }
    }
    prune(&docker).await;
    Ok(tag)
}

/// The helper images of other cl-maint versions among `tags`: builds of
/// this version are kept (another binary of it, a test's static build
/// beside a debug one, may be using its own right now).
fn stale(tags: impl IntoIterator<Item = String>) -> Vec<String> {
    let ours = format!("cl-maint-probe:{}-", env!("CARGO_PKG_VERSION"));
    tags.into_iter()
        .filter(|t| t.starts_with("cl-maint-probe:") && !t.starts_with(&ours))
        .collect()
}

/// Removes the helper images of other cl-maint versions that no container
/// uses: the engine refuses to remove one in use, and that refusal is left
/// alone.
async fn prune(docker: &bollard::Docker) {
    let filters = HashMap::from([("reference", vec!["cl-maint-probe"])]);
    let options = bollard::query_parameters::ListImagesOptionsBuilder::new()
        .filters(&filters)
        .build();
    let Ok(images) = docker.list_images(Some(options)).await else {
        return;
    };
    for tag in stale(images.into_iter().flat_map(|i| i.repo_tags)) {
        let _ = docker
            .remove_image(&tag, None::<bollard::query_parameters::RemoveImageOptions>, None)
            .await;
    }
}

/// Starts a helper in the namespace of container `id` (started at
/// `started`); returns its name.
async fn start(engine: &DockerEngine, id: &str, started: &str) -> Result<String, String> {
    let image = image(engine).await?;
    let start_hash = hex(&sha2::Sha256::digest(started.as_bytes()));
    let name = format!("cl-maint-probe-{}-{}", &id[..12.min(id.len())], &start_hash[..8]);
    // An earlier run's helper of this very start serves as well.
    let earlier = engine.inspect_container(&name).await.ok().flatten();
    if earlier.and_then(|c| c.state).and_then(|s| s.running) == Some(true) {
        return Ok(name);
    }
    let _ = engine.remove(&name).await;
    let body = ContainerCreateBody {
        image: Some(image),
        labels: Some(HashMap::from([(LABEL_ROLE.to_string(), ROLE_PROBE.to_string())])),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{id}")),
            auto_remove: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    let created = engine
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| format!("creating {name}: {e}"))?;
    engine
        .docker
        .start_container(&created.id, None)
        .await
        .map_err(|e| format!("starting {name}: {e}"))?;
    Ok(name)
}

/// The helper of `key` (a container id and its start), started when there
/// is none; one start at a time, so two probes never race for one name.
async fn helper_for(engine: &DockerEngine, key: &(String, String)) -> Result<String, String> {
    let _one_at_a_time = engine.helper_start.lock().await;
    let known = engine
        .helpers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(key)
        .cloned();
    if let Some(h) = known {
        return Ok(h);
    }
    let started = tokio::time::timeout(SETUP, start(engine, &key.0, &key.1))
        .await
        .unwrap_or_else(|_| Err(format!("not ready within {}s", SETUP.as_secs())))?;
    engine
        .helpers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone(), started.clone());
    Ok(started)
}

/// The probe `ask`, from a helper.
pub(super) async fn get(engine: &DockerEngine, ask: &Ask<'_>) -> Result<Answer, NoAnswer> {
    let (addr, name, port, path, timeout) = (ask.addr, ask.name, ask.port, ask.path, ask.timeout);
    let refused = || NoAnswer::Connect {
        addr: addr.to_string(),
        source: std::io::ErrorKind::ConnectionRefused.into(),
    };
    let target = engine
        .inspect_container(name)
        .await
        .ok()
        .flatten()
        .ok_or_else(refused)?;
    let state = target.state.clone().unwrap_or_default();
    if state.running != Some(true) {
        return Err(refused());
    }
    let key = (
        target.id.clone().unwrap_or_default(),
        state.started_at.unwrap_or_default(),
    );
    let started = |e: String| NoAnswer::NoResponse {
        addr: addr.to_string(),
        reason: format!("{name}'s image has no curl, and cl-maint could not start its probe container: {e}"),
    };
    let helper = helper_for(engine, &key).await.map_err(started)?;
    let mut cmd = vec![
        "/cl-maint".to_string(),
        "__probe".into(),
        "get".into(),
        port.to_string(),
        path.to_string(),
        timeout.as_millis().to_string(),
    ];
    if ask.bearer.is_some() {
        cmd.push("headers-on-stdin".into());
    }
    let mut ran = ask.run(engine, &helper, cmd.clone()).await;
    let mut helper = helper;
    if let Err(Failed::Gone(_)) = ran {
        // The helper is gone (it exits two minutes after its last probe):
        // forget it and start another.
        engine.helpers.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        helper = helper_for(engine, &key).await.map_err(started)?;
        ran = ask.run(engine, &helper, cmd).await;
    }
    let ran = ran.map_err(|failed| match failed {
        Failed::TimedOut => ask.timed_out(),
        Failed::Gone(e) | Failed::Engine(e) => NoAnswer::NoResponse {
            addr: addr.to_string(),
            reason: format!("cl-maint's probe container {helper}: {e}"),
        },
    })?;
    answer(addr, &ran, timeout)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_other_versions_helper_images_are_pruned() {
        let ours = format!("cl-maint-probe:{}-abc", env!("CARGO_PKG_VERSION"));
        let tags = [ours, "cl-maint-probe:0.0.1-abc".into(), "other:0.0.1-abc".into()];
        assert_eq!(super::stale(tags), vec!["cl-maint-probe:0.0.1-abc".to_string()]);
    }

    #[test]
    fn the_interpreter_of_this_test_binary_is_found_or_it_is_static() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        if let Some(path) = super::interpreter(&exe) {
            assert!(path.starts_with('/') && std::path::Path::new(&path).exists(), "{path}");
        }
    }
}
