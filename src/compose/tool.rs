//! Asking Compose itself which labels it would give a service: its config
//! hash depends on the whole merged service (and, in v1, the local image
//! id), so cl-maint does not compute it; `docker-compose config --hash`
//! (v1) or `docker compose config --hash` (v2) does, in the project's
//! directory, on the node's engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::{CONFIG_HASH, Edit, IMAGE};

/// How long Compose may take to answer.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A copy of an edited file beside the original, removed when dropped.
struct Beside(PathBuf);

impl Beside {
    fn write(original: &Path, text: &str) -> Result<Beside, String> {
        let name = original.file_name().and_then(|n| n.to_str()).unwrap_or("compose.yml");
        let path = original.with_file_name(format!(".{name}.cl-maint-{}", std::process::id()));
        std::fs::write(&path, text).map_err(|e| format!("cannot write {} ({e})", path.display()))?;
        Ok(Beside(path))
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An image as the labels name it: its id, and its digest when known.
#[derive(Clone, Copy, Debug)]
pub struct ImageIds<'a> {
    /// `sha256:…`.
    pub id: &'a str,
    /// `repo@sha256:…` or `sha256:…`.
    pub digest: Option<&'a str>,
}

/// The labels Compose would give the container of `edit`'s service once
/// the edit is written, on the engine at `engine` (which must have the new
/// image: Compose v1 hashes its id). `old` are the container's labels now.
pub async fn labels(
    edit: &Edit,
    engine: &str,
    old: &HashMap<String, String>,
    old_image: ImageIds<'_>,
    new_image: ImageIds<'_>,
) -> Result<Vec<(String, String)>, String> {
    let s = &edit.service;
    let mut files = s.config_files.clone();
    let mut env_file = s.dotenv().filter(|p| p.exists());
    let mut _copy = None;
    if let Some(change) = &edit.change {
        let copy = Beside::write(&change.path, &change.after)?;
        if let Some(f) = files.iter_mut().find(|f| **f == change.path) {
            *f = copy.0.clone();
        } else {
            env_file = Some(copy.0.clone());
        }
        _copy = Some(copy);
    }
    let (program, mut args) = if s.is_v2() {
        ("docker", vec!["compose".to_string()])
    } else {
        ("docker-compose", Vec::new())
    };
    args.extend(["-p".to_string(), s.project.clone()]);
    if let Some(dir) = &s.working_dir {
        args.extend(["--project-directory".to_string(), dir.display().to_string()]);
    }
    for f in &files {
        args.extend(["-f".to_string(), f.display().to_string()]);
    }
    if let Some(e) = &env_file {
        args.extend(["--env-file".to_string(), e.display().to_string()]);
    }
    args.extend(["config".to_string(), format!("--hash={}", s.service)]);
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&args)
        .env("DOCKER_HOST", engine)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(dir) = &s.working_dir {
        cmd.current_dir(dir);
    }
    if let Some(var) = &edit.var {
        cmd.env_remove(var);
    }
    let shown = format!("{program} {}", args.join(" "));
    let out = match tokio::time::timeout(TIMEOUT, cmd.output()).await {
        Err(_) => return Err(format!("`{shown}` did not answer within {}s", TIMEOUT.as_secs())),
        Ok(Err(e)) => {
            return Err(format!(
                "cannot run `{shown}` ({e}): is Compose installed where cl-maint runs?"
            ));
        }
        Ok(Ok(out)) => out,
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let hash = stdout.lines().find_map(|l| {
        let (name, hash) = l.trim().split_once(char::is_whitespace)?;
        (name == s.service).then(|| hash.trim().to_string())
    });
    let Some(hash) = hash.filter(|_| out.status.success()) else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
        return Err(format!("`{shown}` failed: {}", last.trim()));
    };
    let mut labels = vec![(CONFIG_HASH.to_string(), hash)];
    if let Some(before) = old.get(IMAGE) {
        labels.push((IMAGE.to_string(), image_label(before, old_image, new_image)));
    }
    Ok(labels)
}

/// Compose v2's image label for the new image, in the form the old label
/// has (an image id, or in newer versions a digest).
fn image_label(before: &str, old: ImageIds<'_>, new: ImageIds<'_>) -> String {
    let bare = |d: &str| d.rsplit('@').next().unwrap_or(d).to_string();
    match (old.digest, new.digest) {
        (Some(od), Some(nd)) if before == od => nd.to_string(),
        (Some(od), Some(nd)) if before == bare(od) => bare(nd),
        _ => new.id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_label_keeps_its_form() {
        let old = ImageIds {
            id: "sha256:aaa",
            digest: Some("r/c@sha256:ddd"),
        };
        let new = ImageIds {
            id: "sha256:bbb",
            digest: Some("r/c@sha256:eee"),
        };
        assert_eq!(image_label("sha256:aaa", old, new), "sha256:bbb");
        assert_eq!(image_label("r/c@sha256:ddd", old, new), "r/c@sha256:eee");
        assert_eq!(image_label("sha256:ddd", old, new), "sha256:eee");
        let undigested = ImageIds {
            id: "sha256:bbb",
            digest: None,
        };
        assert_eq!(image_label("r/c@sha256:ddd", old, undigested), "sha256:bbb");
    }
}
