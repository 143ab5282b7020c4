//! An upgrade of a Compose-managed node brings its project along (see
//! `compose`): the edit is prepared before anything changes, the labels
//! Compose would give the edited service are asked of Compose once the new
//! image is on the engine, and the edit is written once the node runs it.

use std::collections::HashMap;

use bollard::models::ContainerInspectResponse;

use crate::compose::{self, Edit, ImageIds, Mode, Service};
use crate::engine::Engine;
use crate::node::image::digest_for;
use crate::report::{ComposeRun, ImageInfo};

use super::preflight::Refusal;

/// The Compose side of one node's upgrade.
#[derive(Clone, Debug)]
pub struct Along {
    /// The node's container name.
    pub node: String,
    /// The edit, unless the operator said `--compose ignore`.
    pub edit: Option<Edit>,
    /// What the report keeps.
    pub run: ComposeRun,
    /// The labels the container has now.
    labels: HashMap<String, String>,
    /// The image it runs now, and the one it is upgraded to.
    images: (String, String),
    /// The id of the image it runs now.
    image_id: String,
    /// The labels its replacement was given (see [`Along::labels`]).
    applied: Vec<(String, String)>,
}

/// What an upgrade of `container` (running `running`, to `target`) does
/// about its Compose project: `Ok(None)` when Compose does not manage it,
/// a refusal when the project cannot be brought along (before any change).
/// `local`: cl-maint runs on the engine's host, where the project's files
/// are (elsewhere, a file at the same path is not the project's).
pub fn prepare(
    container: &ContainerInspectResponse,
    node: &str,
    (running, target): (&str, &str),
    mode: Mode,
    local: bool,
) -> Result<Option<Along>, Refusal> {
    let labels = container
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    let Some(service) = Service::of(Some(&labels)) else {
        return Ok(None);
    };
    let prepared = if local {
        compose::prepare(&service, running, target)
    } else {
        Err(compose::Blocked {
            kind: compose::Kind::Unreadable,
            reason: "cannot read the project's files: they are on the engine's host, and cl-maint does not run there"
                .into(),
            by_hand: format!(
                "in the Compose file on the engine's host, set the `image:` of service `{}` to `{target}`",
                service.service
            ),
        })
    };
    let run = |edit: String, ignored, already| ComposeRun {
        project: service.project.clone(),
        service: service.service.clone(),
        edit,
        already,
        written: false,
        labels_updated: false,
        ignored,
    };
    let along = |edit, run| Along {
        node: node.to_string(),
        edit,
        run,
        labels: labels.clone(),
        images: (running.to_string(), target.to_string()),
        applied: Vec::new(),
        image_id: container.image.clone().unwrap_or_default(),
    };
    match (mode, prepared) {
        (Mode::Ignore, p) => {
            let by_hand = match p {
                Ok(e) => e.what,
                Err(b) => b.by_hand,
            };
            Ok(Some(along(None, run(by_hand, true, false))))
        }
        (Mode::Update, Ok(edit)) => {
            let (what, already) = (edit.what.clone(), edit.change.is_none());
            Ok(Some(along(Some(edit), run(what, false, already))))
        }
        (Mode::Update, Err(blocked)) => Err(refusal(node, &service, blocked)),
    }
}

fn refusal(node: &str, service: &Service, blocked: compose::Blocked) -> Refusal {
    let dir = service
        .working_dir
        .as_ref()
        .map_or_else(|| "the project's directory".to_string(), |d| d.display().to_string());
    let unreadable = blocked.kind == compose::Kind::Unreadable;
    let mut fix = Vec::new();
    if unreadable {
        fix.push(format!(
            "run cl-maint where the project's files are (on the engine's host, in {dir}), so it can update them"
        ));
        fix.push(format!(
            "or make the edit yourself ({}), run the upgrade with `--compose ignore`, then `docker-compose up -d` in {dir}: Compose recreates {node} once, on the new image",
            blocked.by_hand
        ));
    } else {
        fix.push(format!(
            "make the edit yourself ({}), then run the upgrade again: cl-maint finds the project naming the new image and gives {node} the labels Compose expects",
            blocked.by_hand
        ));
        fix.push(
            "or run with `--compose ignore` to upgrade the container alone (the next `docker-compose up` may then bring the old image back)"
                .into(),
        );
    }
    Refusal {
        reason: format!(
            "{node} is run by Docker Compose ({}), and cl-maint cannot bring its project along: {}",
            service.describe(),
            blocked.reason
        ),
        fix,
        tail: Vec::new(),
    }
}

impl Along {
    /// The warning `--compose ignore` gives.
    pub fn ignored_warning(&self) -> Option<String> {
        self.run.ignored.then(|| {
            format!(
                "{} is run by Docker Compose ({}/{}), and its project was left naming the old image (--compose ignore): the next `docker-compose up` that recreates it brings the old image back, which refuses a migrated database; make the edit: {}",
                self.node, self.run.project, self.run.service, self.run.edit
            )
        })
    }

    /// The labels Compose gives the service once the edit is written, on
    /// the node's `engine` (which has the new image `to`), kept for
    /// [`Along::settle`]. `Ok(empty)` with `--compose ignore`.
    pub async fn labels<E: Engine>(&mut self, engine: &E, to: &ImageInfo) -> Result<Vec<(String, String)>, String> {
        let Some(edit) = &self.edit else {
            return Ok(Vec::new());
        };
        let image = engine.inspect_image(&self.image_id).await.ok().flatten();
        let from_digest = image.and_then(|i| digest_for(&i, &self.images.0));
        let old = ImageIds {
            id: &self.image_id,
            digest: from_digest.as_deref(),
        };
        let new = ImageIds {
            id: &to.id,
            digest: to.digest.as_deref(),
        };
        let labels = compose::labels(edit, &engine.docker_host(), &self.labels, old, new).await?;
        self.run.labels_updated = !labels.is_empty();
        self.applied = labels.clone();
        Ok(labels)
    }

    /// After the run: writes the edit when the node's container now is the
    /// replacement with the new labels: the upgrade succeeded (`upgraded`),
    /// or went forward past the point of no return and then stopped. Left
    /// as it was, the project would recreate the node on the old image.
    /// `Some` is the warning to give.
    pub async fn settle<E: Engine>(&mut self, engine: &E, upgraded: bool) -> Option<String> {
        if self.edit.is_none() || self.applied.is_empty() {
            return None;
        }
        let runs_relabelled = upgraded || {
            let now = engine.inspect_container(&self.node).await.ok().flatten();
            let labels = now.and_then(|c| c.config).and_then(|c| c.labels).unwrap_or_default();
            self.applied.iter().all(|(k, v)| labels.get(k) == Some(v))
        };
        if !runs_relabelled {
            return None;
        }
        self.write().err()
    }

    /// Writes the edit (the node runs the new image now): `Err` is the
    /// warning to give when it could not be written.
    pub fn write(&mut self) -> Result<(), String> {
        let Some(change) = self.edit.as_ref().and_then(|e| e.change.as_ref()) else {
            return Ok(());
        };
        // A file changed since it was read (the other member of a pair
        // in the same project, or the operator) is read and edited again,
        // as long as it still names what the node ran.
        let written = compose::write(change).or_else(|first| {
            let service = &self.edit.as_ref().expect("an edit").service;
            match compose::prepare(service, &self.images.0, &self.images.1) {
                Ok(Edit { change: Some(c), .. }) => compose::write(&c),
                Ok(Edit { change: None, .. }) => Ok(()),
                Err(_) => Err(first),
            }
        });
        match written {
            Ok(()) => {
                self.run.written = true;
                Ok(())
            }
            Err(e) => Err(format!(
                "the Compose project of {} was not updated: {e}; make the edit yourself: {}",
                self.node, self.run.edit
            )),
        }
    }
}

/// When Compose runs the node in `c` (named `node`) and its project names
/// another image than the one the container runs (an upgrade with
/// `--compose ignore`, an interrupted one, an edit made by hand): what
/// differs, and the edit that makes them agree. `None` when they agree or
/// the project's files cannot be read from here.
pub fn drift(c: &ContainerInspectResponse, node: &str, local: bool) -> Option<(String, String)> {
    if !local {
        return None;
    }
    let labels = c.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
    let service = Service::of(Some(&labels))?;
    let running = c.config.as_ref().and_then(|c| c.image.clone())?;
    let blocked = compose::prepare(&service, &running, &running).err()?;
    if blocked.kind != compose::Kind::Drift {
        return None;
    }
    Some((
        format!(
            "{node} is run by Docker Compose ({}), and its project does not name the image {node} runs: {}",
            service.describe(),
            blocked.reason
        ),
        format!(
            "make the project name what runs ({}): the next `docker-compose up` that recreates {node} would otherwise bring back the image the project names",
            blocked.by_hand
        ),
    ))
}

/// What went wrong, and what to do, when Compose could not give the
/// labels of `node`'s service (`e`); nothing was changed.
pub fn labels_failed(node: &str, e: &str) -> (String, Vec<String>) {
    (
        format!("{node} is run by Docker Compose, and Compose could not say which labels the upgraded service gets: {e}"),
        vec![
            "run `docker-compose config` in the project's directory to see what Compose says, fix it, and run the upgrade again".into(),
            "or run with `--compose ignore` to upgrade the container alone (the next `docker-compose up` may then bring the old image back)".into(),
        ],
    )
}

/// Puts `labels` on a create request's labels.
pub fn relabel(body: &mut bollard::models::ContainerCreateBody, labels: &[(String, String)]) {
    let all = body.labels.get_or_insert_with(HashMap::new);
    for (k, v) in labels {
        all.insert(k.clone(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container with Compose's labels for a project in `/nonexistent`.
    fn composed() -> ContainerInspectResponse {
        let labels = HashMap::from([
            ("com.docker.compose.project".to_string(), "node".to_string()),
            ("com.docker.compose.service".to_string(), "chainlink".to_string()),
            (
                "com.docker.compose.project.working_dir".to_string(),
                "/nonexistent".to_string(),
            ),
            (
                "com.docker.compose.project.config_files".to_string(),
                "docker-compose.yml".to_string(),
            ),
        ]);
        ContainerInspectResponse {
            config: Some(bollard::models::ContainerConfig {
                image: Some("r/chainlink:1.0.0".into()),
                labels: Some(labels),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn away_from_the_engines_host_the_project_is_not_touched() {
        let c = composed();
        let images = ("r/chainlink:1.0.0", "r/chainlink:1.1.0");
        let r = prepare(&c, "chainlink", images, Mode::Update, false).unwrap_err();
        assert!(r.reason.contains("on the engine's host"), "{}", r.reason);
        assert!(
            r.fix[0].contains("run cl-maint where the project's files are"),
            "{:?}",
            r.fix
        );
        assert!(r.fix[1].contains("set the `image:` of service `chainlink` to `r/chainlink:1.1.0`"));
        // `--compose ignore` goes on, and says what to do.
        let a = prepare(&c, "chainlink", images, Mode::Ignore, false).unwrap().unwrap();
        assert!(a.ignored_warning().unwrap().contains("r/chainlink:1.1.0"));
        // Not Compose's: nothing to do.
        let plain = ContainerInspectResponse::default();
        assert!(
            prepare(&plain, "chainlink", images, Mode::Update, true)
                .unwrap()
                .is_none()
        );
        // `status` says nothing it cannot read.
        assert_eq!(drift(&c, "chainlink", false), None);
        assert_eq!(drift(&c, "chainlink", true), None);
    }
}
