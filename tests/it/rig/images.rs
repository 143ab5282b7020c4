//! The node double's images: built once per test run from a statically linked
//! binary, packaged `FROM scratch` through the Engine API (a build from a tar
//! context), pushed to the registry, and then removed locally so that every
//! test pulls them for real.
//!
//! The repository name carries a hash of the binary and the Dockerfile, so a
//! changed double gets new images and an unchanged one is not rebuilt: across
//! processes, a registry that already has the tags is the cache.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder, RemoveImageOptionsBuilder};
use futures::StreamExt;

use super::registry;

/// The version the tests start nodes on.
pub const OLD: &str = "1.0.0";
/// The version the tests upgrade to; `latest` points here too.
pub const NEW: &str = "1.1.0";
/// A new version whose node exits at once (a bad release).
pub const CRASH: &str = "1.1.0-crash";
/// A new version whose node never logs a lock-wait line.
pub const SILENT: &str = "1.1.0-silent";
/// A new version whose node takes the lock, migrates, then crashes.
pub const CRASH_AFTER_LOCK: &str = "1.1.0-crashlock";
/// A tag no test pulls (for `--dry-run`, which must not pull it).
pub const NEVER_PULLED: &str = "1.1.0-dryrun";
/// [`OLD`] and [`NEW`] as images that declare their version (an OCI label
/// and `CHAINLINK_VERSION`), as some operators' own builds do; every other
/// image carries no version, like Chainlink's: only its binary knows.
pub const LABELLED_OLD: &str = "1.0.0-labelled";
/// See [`LABELLED_OLD`].
pub const LABELLED_NEW: &str = "1.1.0-labelled";
/// A 2.x node (configured by TOML, lease only), and the release after it.
pub const V2_OLD: &str = "2.9.0";
/// See [`V2_OLD`].
pub const V2_NEW: &str = "2.10.0";
/// A tag that names no version (like `latest`), on [`V2_NEW`]: only the
/// image's binary says what it is.
pub const V2_STABLE: &str = "stable";
/// Whether the image of `tag` runs a 2.x node (configured by TOML).
pub fn is_v2(tag: &str) -> bool {
    tag.starts_with("2.") || tag == V2_STABLE
}

/// Every tag pushed, with the version its binary reports, its fault, and
/// whether the image declares its version.
const TAGS: [(&str, &str, &str, bool); 12] = [
    (OLD, OLD, "", false),
    (NEW, NEW, "", false),
    ("latest", NEW, "", false),
    (CRASH, NEW, "exit-at-start", false),
    (SILENT, NEW, "silent-wait", false),
    (CRASH_AFTER_LOCK, NEW, "crash-after-lock", false),
    (NEVER_PULLED, NEW, "", false),
    (LABELLED_OLD, OLD, "", true),
    (LABELLED_NEW, NEW, "", true),
    (V2_OLD, V2_OLD, "", false),
    (V2_NEW, V2_NEW, "", false),
    (V2_STABLE, V2_NEW, "", false),
];

/// The uid the real Chainlink image runs as.
pub const NODE_UID: &str = "14933";

/// Chainlink's image: no version label, no version env. The version is the
/// binary's: the double reads it from `/usr/local/share/chainlink/version`
/// (`X@SHA`) when no `CHAINLINK_VERSION` is set.
const DOCKERFILE: &str = r#"FROM scratch
ARG FAULT
COPY chainlink /usr/local/bin/chainlink
COPY chainlink /usr/local/bin/curl
COPY version /usr/local/share/chainlink/version
ENV PATH=/usr/local/bin CL_DOUBLE_FAULT=${FAULT}
WORKDIR /home/chainlink
USER 14933
EXPOSE 6688
HEALTHCHECK --interval=2s --timeout=2s --retries=1 CMD ["chainlink", "healthcheck"]
ENTRYPOINT ["chainlink"]
CMD ["local", "node"]
"#;

/// What the labelled variant adds: the version as an env and an OCI label.
const LABELLED_LINES: &str = r#"ARG VERSION
ARG COMMIT
ENV CHAINLINK_VERSION=${VERSION} CHAINLINK_COMMIT=${COMMIT}
LABEL org.opencontainers.image.title="cl-node-double" org.opencontainers.image.version="${VERSION}"
"#;

/// The Dockerfile of an image, labelled or like Chainlink's. Chainlink's
/// image has `curl` (the double answers to that name too); the labelled
/// variant has none, so that tests see probes fall back to cl-maint's own.
fn dockerfile(labelled: bool) -> String {
    if labelled {
        DOCKERFILE
            .replacen("ARG FAULT\n", &format!("ARG FAULT\n{LABELLED_LINES}"), 1)
            .replacen("COPY chainlink /usr/local/bin/curl\n", "", 1)
    } else {
        DOCKERFILE.to_string()
    }
}

/// Where the double's images live.
#[derive(Clone, Debug)]
pub struct Images {
    /// `127.0.0.1:PORT/cl-node-double-HASH`.
    pub repo: String,
}

impl Images {
    /// The full reference of a tag.
    pub fn reference(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repo)
    }
}

/// The commit a version's image reports (image default `CHAINLINK_COMMIT`).
pub fn commit_of(version: &str) -> String {
    format!("d0b1e{}", version.replace('.', ""))
}

/// Builds the double, its images and pushes them, unless the registry has
/// them already. Runs once per test process (the caller caches the result).
pub async fn prepare(rig_dir: &Path) -> Result<Images, String> {
    let registry = registry::ensure(rig_dir).await?;
    let _lock = FileLock::take(&rig_dir.join("images.lock"))?;
    let binary = build_double(rig_dir)?;
    let bytes = std::fs::read(&binary).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (bytes.as_slice(), DOCKERFILE, LABELLED_LINES, TAGS).hash(&mut hasher);
    let name = format!("cl-node-double-{:012x}", hasher.finish() & 0xffff_ffff_ffff);
    let images = Images {
        repo: format!("{registry}/{name}"),
    };
    let present = registry::tags(&registry, &name).await;
    if TAGS.iter().all(|(t, ..)| present.iter().any(|p| p == t)) {
        return Ok(images);
    }
    let docker = super::connect().await?;
    for (tag, version, fault, labelled) in TAGS {
        let reference = images.reference(tag);
        build_image(&docker, &bytes, &reference, version, fault, labelled).await?;
        push_image(&docker, &images.repo, tag).await?;
    }
    // Untag locally: tests must pull from the registry (a real pull).
    for (tag, ..) in TAGS {
        untag(&docker, &images, tag).await;
    }
    Ok(images)
}

/// Removes `<repo>:<tag>` from the engine (the registry keeps it); an image
/// left with no tag and no container is deleted.
pub async fn untag(docker: &Docker, images: &Images, tag: &str) {
    let _ = docker
        .remove_image(
            &images.reference(tag),
            Some(RemoveImageOptionsBuilder::new().build()),
            None,
        )
        .await;
}

/// Builds every tag of the double's image under `repo` on the engine only
/// (no registry): for the demo on machines without `docker-registry`.
pub async fn build_local(rig_dir: &Path, repo: &str) -> Result<Images, String> {
    let _lock = FileLock::take(&rig_dir.join("images.lock"))?;
    let binary = build_double(rig_dir)?;
    let bytes = std::fs::read(&binary).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    let docker = super::connect().await?;
    let images = Images { repo: repo.to_string() };
    for (tag, version, fault, labelled) in TAGS {
        build_image(&docker, &bytes, &images.reference(tag), version, fault, labelled).await?;
    }
    Ok(images)
}

/// `cargo build --release` of the double, linked statically.
fn build_double(rig_dir: &Path) -> Result<PathBuf, String> {
    let target_dir = rig_dir.join("double-target");
    let dir = build_static(
        &["--release", "-p", "cl-node-double"],
        &target_dir,
        &[],
        "the node double",
    )?;
    Ok(dir.join("release").join("cl-node-double"))
}

/// `cargo build ARGS` linked statically for this machine, into
/// `target_dir` (with `env` set); returns `target_dir/<triple>`, where the
/// profile's folder is. `what` names it in the error.
pub fn build_static(args: &[&str], target_dir: &Path, env: &[(&str, &str)], what: &str) -> Result<PathBuf, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let triple = host_triple()?;
    let output = Command::new(&cargo)
        .current_dir(workspace)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .envs(env.iter().copied())
        .args(["build", "--quiet"])
        .args(args)
        .args(["--target", &triple, "--target-dir"])
        .arg(target_dir)
        .output()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building {what} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir.join(triple))
}

fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run {rustc}: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| "rustc -vV printed no host triple".to_string())
}

/// A tar with the Dockerfile, the binary as `chainlink`, and its version
/// file (`X@SHA`).
fn build_context(dockerfile: &str, binary: &[u8], version_line: &str) -> Result<Vec<u8>, String> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut append = |name: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, name, data)
    };
    append("Dockerfile", dockerfile.as_bytes(), 0o644).map_err(|e| e.to_string())?;
    append("chainlink", binary, 0o755).map_err(|e| e.to_string())?;
    append("version", format!("{version_line}\n").as_bytes(), 0o644).map_err(|e| e.to_string())?;
    tar.into_inner().map_err(|e| e.to_string())
}

async fn build_image(
    docker: &Docker,
    binary: &[u8],
    reference: &str,
    version: &str,
    fault: &str,
    labelled: bool,
) -> Result<(), String> {
    let commit = commit_of(version);
    let dockerfile = dockerfile(labelled);
    let context = build_context(&dockerfile, binary, &format!("{version}@{commit}"))?;
    let args = HashMap::from([
        ("VERSION".to_string(), version.to_string()),
        ("COMMIT".to_string(), commit),
        ("FAULT".to_string(), fault.to_string()),
    ]);
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(reference)
        .rm(true)
        .forcerm(true)
        .buildargs(&args)
        .build();
    let body = bollard::body_full(context.into());
    let mut stream = docker.build_image(options, None, Some(body));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| format!("building {reference}: {e}"))?;
        if let Some(detail) = info.error_detail {
            return Err(format!("building {reference}: {}", detail.message.unwrap_or_default()));
        }
    }
    Ok(())
}

/// Pushes `<repo>:<tag>` to the registry.
pub async fn push_image(docker: &Docker, repo: &str, tag: &str) -> Result<(), String> {
    let options = PushImageOptionsBuilder::new().tag(tag).build();
    let mut stream = docker.push_image(repo, Some(options), None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| format!("pushing {repo}:{tag}: {e}"))?;
        if let Some(detail) = info.error_detail {
            return Err(format!("pushing {repo}:{tag}: {}", detail.message.unwrap_or_default()));
        }
    }
    Ok(())
}

/// An exclusive `flock` on a file, held until dropped: serialises image
/// preparation between test processes.
pub struct FileLock(#[allow(dead_code)] std::fs::File);

impl FileLock {
    pub fn take(path: &Path) -> Result<FileLock, String> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!(
                "cannot lock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(FileLock(file))
    }
}
