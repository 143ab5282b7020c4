//! Nodes run by Docker Compose.
//!
//! Compose knows its containers by their labels, and recreates one on the
//! next `up` when its `com.docker.compose.config-hash` label (v1: a hash
//! that includes the local image id; v2: with `com.docker.compose.image`)
//! no longer matches the file. A node upgraded behind Compose's back keeps
//! the old file and old labels: `up -d` then looks up to date, and the next
//! unrelated edit recreates the node on the **old** image, which refuses
//! the migrated database. So an upgrade of a Compose-managed node:
//!
//! 1. learns the project, service and files from the container's labels;
//! 2. before any change, prepares the edit: the service's `image:` in the
//!    file that sets it, or the variable it names in the `.env` beside the
//!    project ([`prepare`]), and refuses with the exact edit when it cannot;
//! 3. once the new image is on the engine, asks Compose itself for the
//!    labels it would give the service with the edited file ([`labels`]),
//!    which the recreated node gets;
//! 4. writes the edit once the node runs the new version ([`write`]).
//!
//! A clone under another name (the standby, a secondary) is not Compose's:
//! it carries none of these labels (`spec::clone_spec`).

mod files;
pub mod text;
mod tool;

use std::collections::HashMap;
use std::path::PathBuf;

pub use files::{Blocked, Edit, FileChange, Kind, prepare, write};
pub use tool::{ImageIds, labels};

/// Every label Compose sets starts with this.
pub const LABEL_PREFIX: &str = "com.docker.compose.";
/// The label Compose compares with the service's config.
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// The label Compose v2 compares with the service's image.
pub const IMAGE: &str = "com.docker.compose.image";

/// What cl-maint does about a Compose-managed node (`--compose`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Update the Compose file (or its `.env`) and the container's labels,
    /// or refuse before any change when that cannot be done.
    #[default]
    Update,
    /// Upgrade the container and leave the Compose file as it is (the
    /// report warns: the next `docker compose up` may bring the old image
    /// back).
    Ignore,
}

/// A container's place in a Compose project, from its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// `com.docker.compose.project`.
    pub project: String,
    /// `com.docker.compose.service`.
    pub service: String,
    /// The project's directory (`com.docker.compose.project.working_dir`).
    pub working_dir: Option<PathBuf>,
    /// The files, in the order Compose merged them
    /// (`com.docker.compose.project.config_files`).
    pub config_files: Vec<PathBuf>,
    /// The `.env` Compose v2 read (`…project.environment_file`).
    pub env_file: Option<PathBuf>,
    /// The Compose version that made the container (`1.29.2`, `2.24.0`).
    pub version: Option<String>,
}

impl Service {
    /// The Compose service a container with these labels belongs to, if
    /// any (a one-off `docker compose run` container belongs to none).
    pub fn of(labels: Option<&HashMap<String, String>>) -> Option<Service> {
        let labels = labels?;
        let get = |k: &str| labels.get(&format!("{LABEL_PREFIX}{k}")).filter(|v| !v.is_empty());
        if get("oneoff").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return None;
        }
        let working_dir = get("project.working_dir").map(PathBuf::from);
        let config_files = get("project.config_files")
            .map(|files| {
                files
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(|f| match &working_dir {
                        Some(dir) => dir.join(f),
                        None => PathBuf::from(f),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Service {
            project: get("project")?.clone(),
            service: get("service")?.clone(),
            env_file: get("project.environment_file")
                .and_then(|f| f.split(',').next_back())
                .map(PathBuf::from),
            working_dir,
            config_files,
            version: get("version").cloned(),
        })
    }

    /// Whether Compose v2 (`docker compose`) made the container.
    pub fn is_v2(&self) -> bool {
        self.version.as_deref().is_some_and(|v| !v.starts_with("1."))
    }

    /// The `.env` Compose reads for the project: the one v2 recorded, or
    /// `.env` in the project's directory.
    pub fn dotenv(&self) -> Option<PathBuf> {
        self.env_file
            .clone()
            .or_else(|| self.working_dir.as_ref().map(|d| d.join(".env")))
    }

    /// `project/service`, for messages.
    pub fn describe(&self) -> String {
        format!("Compose project {}, service {}", self.project, self.service)
    }
}

/// Whether `key` is a label Compose set.
pub fn is_compose_label(key: &str) -> bool {
    key.starts_with(LABEL_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{LABEL_PREFIX}{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn a_service_is_read_from_its_labels() {
        let l = labels(&[
            ("project", "node"),
            ("service", "chainlink"),
            ("project.working_dir", "/srv/node"),
            ("project.config_files", "docker-compose.yml,/etc/override.yml"),
            ("version", "1.29.2"),
            ("oneoff", "False"),
        ]);
        let s = Service::of(Some(&l)).unwrap();
        assert_eq!(s.describe(), "Compose project node, service chainlink");
        assert_eq!(
            s.config_files,
            vec![
                PathBuf::from("/srv/node/docker-compose.yml"),
                PathBuf::from("/etc/override.yml")
            ]
        );
        assert_eq!(s.dotenv(), Some(PathBuf::from("/srv/node/.env")));
        assert!(!s.is_v2());
    }

    #[test]
    fn one_offs_and_plain_containers_are_not_services() {
        let mut l = labels(&[("project", "node"), ("service", "chainlink"), ("oneoff", "True")]);
        assert_eq!(Service::of(Some(&l)), None);
        l.remove(&format!("{LABEL_PREFIX}oneoff"));
        assert!(Service::of(Some(&l)).is_some());
        assert_eq!(Service::of(Some(&HashMap::new())), None);
        assert_eq!(Service::of(None), None);
    }

    #[test]
    fn v2_labels_name_their_env_file() {
        let l = labels(&[
            ("project", "node"),
            ("service", "chainlink"),
            ("project.environment_file", "/srv/node/prod.env"),
            ("version", "2.24.0"),
        ]);
        let s = Service::of(Some(&l)).unwrap();
        assert!(s.is_v2());
        assert_eq!(s.dotenv(), Some(PathBuf::from("/srv/node/prod.env")));
    }
}
