//! Node versions (`2.10.0`, `v1.13.3`, `2.15.0-beta.1`) and their order.

use std::cmp::Ordering;
use std::fmt;

/// A parsed `major.minor.patch[-pre]` version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Patch number.
    pub patch: u64,
    /// Pre-release part after `-`, empty for a release.
    pub pre: String,
}

impl Version {
    /// Parses `1.2.3`, `v1.2.3`, `1.2` and `1.2.3-rc.1` (build metadata after
    /// `+` is ignored). Returns `None` for anything else (such as `latest`).
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim().trim_start_matches('v');
        let t = t.split('+').next().unwrap_or_default();
        let (core, pre) = t.split_once('-').unwrap_or((t, ""));
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre: pre.to_string(),
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            // A release sorts after its pre-releases.
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

/// Which way a move from one version to another goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// To a newer version, or the same one.
    Forward,
    /// Back within the same `major.minor` (`2.10.1` → `2.10.0`).
    PatchBack,
    /// Back across a minor or major version (`2.10.0` → `2.9.1`).
    Back,
}

/// The step from version `from` to `to`; `None` when either is unknown.
/// Only `major.minor.patch` count: a suffix names a variant of a release as
/// often as a pre-release of it (`2.10.0-plugins`), so it is no step.
pub fn step(from: &str, to: &str) -> Option<Step> {
    let (from, to) = (Version::parse(from)?, Version::parse(to)?);
    let core = |v: &Version| (v.major, v.minor, v.patch);
    Some(if core(&to) >= core(&from) {
        Step::Forward
    } else if (to.major, to.minor) == (from.major, from.minor) {
        Step::PatchBack
    } else {
        Step::Back
    })
}

/// Why a move from `from` to `to` is refused before any change, or `None`.
/// A node refuses a database a newer version has migrated, so going back
/// needs the snapshot taken before the upgrade; `force` allows a step back
/// within the same `major.minor`.
pub fn downgrade_refusal(from: &str, to: &str, force: bool) -> Option<(String, Vec<String>)> {
    let step = step(from, to)?;
    if step == Step::Forward || (step == Step::PatchBack && force) {
        return None;
    }
    let what = format!(
        "{to} is older than {from}, which the node runs: {from} may have migrated the database, and Chainlink refuses to start on a database a newer version has migrated"
    );
    let mut next = vec![
        format!(
            "to go back to {to}, restore the database snapshot taken before {from} was installed, then run {to} (docs/recovery.md, \"Going back to an older version\")"
        ),
        "check the tag, if an older version was not what you meant".to_string(),
    ];
    if step == Step::PatchBack {
        next.push(format!(
            "a step back within {}: run again with --force if {to} reads the database {from} left (its release notes say whether {from} added migrations)",
            to.rsplit_once('.').map_or(to, |(mm, _)| mm)
        ));
    } else {
        next.push("--force does not override this across minor or major versions".to_string());
    }
    Some((what, next))
}

/// `Starting Chainlink Node 2.10.0 at commit abc` → `2.10.0`.
pub fn started_version(line: &str) -> Option<String> {
    let message = super::logs::message(line);
    let rest = message.split("Starting Chainlink Node ").nth(1)?;
    let version = rest.split_whitespace().next()?;
    Version::parse(version).map(|_| version.to_string())
}

/// Where a version came from (JSON: its words, as [`Source::as_str`] gives).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Source {
    /// The image's OCI version label or its `CHAINLINK_VERSION` env.
    #[serde(rename = "image metadata")]
    Metadata,
    /// `chainlink --version`, run in a one-off container of the image.
    #[serde(rename = "chainlink --version")]
    Binary,
    /// The tag the image was asked for by.
    #[serde(rename = "tag")]
    Tag,
    /// The `Starting Chainlink Node X at commit Y` line of a running node.
    #[serde(rename = "start line")]
    StartLine,
}

impl Source {
    /// How reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Metadata => "image metadata",
            Source::Binary => "chainlink --version",
            Source::Tag => "tag",
            Source::StartLine => "start line",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_the_start_line() {
        assert_eq!(
            started_version(
                "2024-01-01T00:00:00Z [INFO]  Starting Chainlink Node 2.10.0 at commit 5ebb63266 cmd/shell.go:1"
            ),
            Some("2.10.0".to_string())
        );
        assert_eq!(started_version("Starting Chainlink Node unknown at commit x"), None);
    }

    #[test]
    fn downgrades_are_refused_and_a_patch_step_back_only_with_force() {
        assert_eq!(step("2.10.0", "2.11.0"), Some(Step::Forward));
        assert_eq!(step("2.10.0", "2.10.0"), Some(Step::Forward));
        assert_eq!(step("2.10.1", "2.10.0"), Some(Step::PatchBack));
        assert_eq!(step("2.10.0", "2.9.3"), Some(Step::Back));
        assert_eq!(step("2.10.0", "latest"), None);
        assert_eq!(step("2.10.0", "2.10.0-plugins"), Some(Step::Forward));
        assert_eq!(downgrade_refusal("2.10.0", "2.11.0", false), None);
        let (what, next) = downgrade_refusal("2.10.0", "2.9.3", true).expect("refused even with --force");
        assert!(what.starts_with("2.9.3 is older than 2.10.0"), "{what}");
        assert!(next[0].contains("restore the database snapshot"), "{next:?}");
        assert!(next[2].contains("--force does not override"), "{next:?}");
        let (_, next) = downgrade_refusal("2.10.1", "2.10.0", false).expect("refused without --force");
        assert!(
            next[2].contains("a step back within 2.10: run again with --force"),
            "{next:?}"
        );
        assert_eq!(downgrade_refusal("2.10.1", "2.10.0", true), None);
    }

    #[test]
    fn parses_and_orders() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("2.10.0") > v("2.9.1"));
        assert!(v("v1.13.3") < v("2.0.0"));
        assert!(v("2.15.0-beta.1") < v("2.15.0"));
        assert_eq!(v("1.2").to_string(), "1.2.0");
        assert_eq!(v("2.1.0+abc").to_string(), "2.1.0");
        assert_eq!(Version::parse("latest"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
    }
}
