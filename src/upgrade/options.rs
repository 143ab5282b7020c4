//! What `cl-maint upgrade` was asked to do, validated before any I/O.

use std::time::Duration;

/// When to pull the target image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PullPolicy {
    /// Always pull (the tag may have moved, as `latest` does).
    #[default]
    Always,
    /// Pull only when the engine does not have the image.
    Missing,
    /// Never pull: use the image on the engine (air-gapped hosts, `docker load`).
    Never,
}

/// The validated request.
#[derive(Clone, Debug)]
pub struct UpgradeOptions {
    /// The node's container (`chainlink`).
    pub container: String,
    /// The image repository to upgrade to; `None`: the one the node runs now.
    pub image: Option<String>,
    /// The tag to upgrade to (`2.10.0`, `latest`).
    pub tag: String,
    /// The host port the temporary standby publishes the node's port on.
    pub standby_port: u16,
    /// How long the pull may take.
    pub pull_timeout: Duration,
    /// How long a new container may take to print its lock-wait line.
    pub wait_timeout: Duration,
    /// How long the takeover (the new holder answering HTTP) may take.
    pub takeover_timeout: Duration,
    /// The grace period of a graceful stop before SIGKILL.
    pub stop_timeout: Duration,
    /// Stop the old holder with SIGKILL, as the documented procedure does.
    pub kill: bool,
    /// Upgrade even when the pulled image is what the node runs now.
    pub force: bool,
    /// Keep the old container (stopped, renamed) after a successful upgrade.
    pub keep_old: bool,
    /// Print the plan and change nothing.
    pub dry_run: bool,
    /// When to pull the target image.
    pub pull: PullPolicy,
    /// The operator's commands before and after the upgrade.
    pub hooks: super::hooks::Hooks,
    /// What to do about a Compose-managed node's project.
    pub compose: crate::compose::Mode,
}

impl UpgradeOptions {
    /// Defaults for everything but the container and the tag.
    pub fn new(container: &str, tag: &str) -> UpgradeOptions {
        UpgradeOptions {
            container: container.to_string(),
            image: None,
            tag: tag.to_string(),
            standby_port: 6687,
            pull_timeout: Duration::from_secs(15 * 60),
            wait_timeout: crate::handoff::Deadlines::DEFAULT.wait,
            takeover_timeout: crate::handoff::Deadlines::DEFAULT.takeover,
            stop_timeout: crate::handoff::Deadlines::DEFAULT.stop,
            kill: false,
            force: false,
            keep_old: false,
            dry_run: false,
            pull: PullPolicy::Always,
            hooks: Default::default(),
            compose: Default::default(),
        }
    }
}

/// Docker's word grammar for tags and container names: letters, digits,
/// `_`, `.` and `-`, with a first character `first` accepts, at most `max`
/// characters.
fn docker_word(s: &str, max: usize, first: fn(char) -> bool) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().next().is_some_and(first)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Checks a tag against Docker's grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    if docker_word(tag, 128, |c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else if let Some((repository, version)) = tag.rsplit_once(':')
        && !version.contains('/')
        && validate_repository(repository).is_ok()
        && docker_word(version, 128, |c| c.is_ascii_alphanumeric() || c == '_')
    {
        Err(format!(
            "invalid tag {tag:?}: --tag takes the tag alone; give the repository with --image: `--image {repository} --tag {version}`"
        ))
    } else {
        Err(format!(
            "invalid tag {tag:?}: a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-' (for example 2.10.0 or latest)"
        ))
    }
}

/// Checks an image repository (`[registry[:port]/]path`, no tag, no digest).
pub fn validate_repository(repo: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid image repository {repo:?}: {why}"));
    if repo.is_empty() {
        return bad("it is empty");
    }
    if repo.contains('@') {
        return bad("drop the digest; give the tag with --tag");
    }
    let (domain, path) = crate::reference::split_domain(repo);
    if let Some(domain) = domain {
        let (host, port) = domain.split_once(':').unwrap_or((domain, ""));
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
            return bad("the registry host is not a host name or address");
        }
        if !port.is_empty() && port.parse::<u16>().is_err() {
            return bad("the registry port is not a number");
        }
    }
    if path.contains(':') {
        return bad("it carries a tag; give the repository with --image and the tag with --tag");
    }
    for component in path.split('/') {
        let ok = !component.is_empty()
            && component
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
            && component.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && component.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok {
            return bad("path components are lowercase letters, digits and '.', '_', '-' between them");
        }
    }
    Ok(())
}

/// Checks a container name against Docker's grammar.
pub fn validate_container_name(name: &str) -> Result<(), String> {
    if docker_word(name, usize::MAX, |c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!(
            "invalid container name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        for good in ["2.10.0", "latest", "v1.13.3", "2.15.0-beta.1", "_x"] {
            assert!(validate_tag(good).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", "ü", &"x".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
        // A whole reference: the message says how to split it.
        let e = validate_tag("smartcontract/chainlink:2.10.0").unwrap_err();
        assert!(e.ends_with("`--image smartcontract/chainlink --tag 2.10.0`"), "{e}");
        let e = validate_tag("127.0.0.1:5000/chainlink:2.10.0").unwrap_err();
        assert!(e.ends_with("`--image 127.0.0.1:5000/chainlink --tag 2.10.0`"), "{e}");
    }

    #[test]
    fn repositories() {
        for good in [
            "smartcontract/chainlink",
            "public.ecr.aws/chainlink/chainlink",
            "127.0.0.1:5000/chainlink",
            "localhost/x",
            "chainlink",
        ] {
            assert!(validate_repository(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Smartcontract/chainlink",
            "chainlink:2.1.0",
            "a//b",
            "x@sha256:abc",
            "host:port/x",
            "-a/b",
        ] {
            assert!(validate_repository(bad).is_err(), "{bad}");
        }
    }
}
