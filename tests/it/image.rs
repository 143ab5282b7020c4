//! cl-maint as a container image: the static binary `FROM scratch`
//! (`examples/image/Dockerfile`), run with the engine's socket on the
//! default bridge network, upgrades a node end to end. The node's port on
//! the host's loopback is not the container's: cl-maint asks it through
//! the engine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures::StreamExt;

use crate::rig::images::{FileLock, build_static};
use crate::rig::{Gen, NEW, OLD, Rig, free_port, rig_dir};

/// Builds cl-maint linked statically (a build of its own, beside the one
/// running the tests; no debug info, to keep the image small).
fn build_cl_maint(rig_dir: &Path) -> Result<PathBuf, String> {
    let _lock = FileLock::take(&rig_dir.join("cl-maint-static.lock"))?;
    let target_dir = rig_dir.join("cl-maint-static-target");
    let env = [("CARGO_PROFILE_DEV_DEBUG", "false")];
    let dir = build_static(
        &["--locked", "--bin", "cl-maint"],
        &target_dir,
        &env,
        "a static cl-maint",
    )?;
    Ok(dir.join("debug").join("cl-maint"))
}

/// The documented Dockerfile and the binary, as a build context.
fn context(binary: &Path) -> Vec<u8> {
    let dockerfile = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/image/Dockerfile"))
        .expect("examples/image/Dockerfile");
    let bytes = std::fs::read(binary).expect("the static binary");
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data, mode) in [("Dockerfile", &dockerfile, 0o644), ("cl-maint", &bytes, 0o755)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, name, data.as_slice()).expect("tar");
    }
    tar.into_inner().expect("tar")
}

/// The image, removed when dropped.
struct Image<'a> {
    rig: &'a Rig,
    reference: String,
}

impl Drop for Image<'_> {
    fn drop(&mut self) {
        let (docker, reference) = (self.rig.docker.clone(), self.reference.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            let options = RemoveImageOptionsBuilder::new().force(true).build();
            rt.block_on(docker.remove_image(&reference, Some(options), None)).ok()
        })
        .join();
    }
}

async fn build_image<'a>(rig: &'a Rig) -> Image<'a> {
    let binary = tokio::task::spawn_blocking(|| build_cl_maint(&rig_dir()))
        .await
        .expect("the build thread")
        .unwrap_or_else(|e| panic!("{e}"));
    let image = Image {
        rig,
        reference: format!("cl-maint-it:{}", rig.id),
    };
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(&image.reference)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = rig
        .docker
        .build_image(options, None, Some(bollard::body_full(context(&binary).into())));
    while let Some(item) = stream.next().await {
        let info = item.unwrap_or_else(|e| panic!("building {}: {e}", image.reference));
        assert!(
            info.error_detail.is_none(),
            "building {}: {:?}",
            image.reference,
            info.error_detail
        );
    }
    image
}

/// The engine's socket on this machine, to mount into the container.
fn socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_string(),
        _ => "/var/run/docker.sock".to_string(),
    }
}

/// Runs the image with `args` and returns (exit code, stdout).
async fn run(rig: &Rig, image: &Image<'_>, args: &[&str]) -> (i64, String) {
    let name = format!("{}-cl-maint-image-{}", rig.id, free_port());
    let body = ContainerCreateBody {
        image: Some(image.reference.clone()),
        cmd: Some(args.iter().map(|a| a.to_string()).collect()),
        labels: Some(rig.labels()),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:/var/run/docker.sock", socket())]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    let created = rig.docker.create_container(Some(options), body).await.expect("create");
    rig.docker.start_container(&created.id, None).await.expect("start");
    let code = match tokio::time::timeout(
        Duration::from_secs(120),
        rig.docker.wait_container(&created.id, None).next(),
    )
    .await
    .expect("cl-maint in its container ends")
    {
        Some(Ok(r)) => r.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        other => panic!("waiting for {name}: {other:?}"),
    };
    let logs = LogsOptionsBuilder::new().stdout(true).stderr(false).build();
    let mut stream = rig.docker.logs(&created.id, Some(logs));
    let mut out = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    (code, out)
}

#[tokio::test]
async fn the_image_upgrades_a_node_end_to_end() {
    let rig = Rig::new("image").await;
    let node = crate::upgrade::primary(&rig, Gen::Lease, &[]).await;
    let image = build_image(&rig).await;
    let port = free_port().to_string();
    let args = [
        "upgrade",
        "--container",
        &node.name,
        "--secondary",
        "no-such-secondary",
        "--tag",
        NEW,
        "--standby-port",
        &port,
        "--json",
    ];
    let (code, out) = run(&rig, &image, &args).await;
    let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!((code, report["outcome"].as_str()), (0, Some("upgraded")), "{report}");
    assert_eq!(report["from"]["version"], OLD);
    let probes = report["probes"].to_string();
    assert!(probes.contains("curl inside") && !probes.contains("direct"), "{report}");
    assert_eq!(rig.wait_serving(&node, Duration::from_secs(20)).await.status, 200);
    let (code, out) = run(&rig, &image, &["status", "--container", &node.name, "--json"]).await;
    let status: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!((code, status["verdict"].as_str()), (0, Some("one-holder")), "{status}");
    assert!(rig.journal().overlaps.is_empty());
}

/// From its image, cl-maint (static, in a container) asks a node whose
/// image has no curl through its own probe: the helper's image is built
/// from the static binary itself.
#[tokio::test]
async fn the_image_asks_a_node_without_curl_with_its_own_probe() {
    let rig = Rig::new("image-nocurl").await;
    let node = crate::reach::network_only(&rig, crate::rig::LABELLED_OLD).await;
    let image = build_image(&rig).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, out) = run(&rig, &image, &["status", "--container", &node.name, "--json"]).await;
        let status: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        if code == 0 && status["holder"] == node.name.as_str() {
            assert!(status.to_string().contains("container://"), "{status}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
