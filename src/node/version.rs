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

/// `Starting Chainlink Node 2.10.0 at commit abc` → `2.10.0`.
pub fn started_version(line: &str) -> Option<String> {
    let message = super::logs::message(line);
    let rest = message.split("Starting Chainlink Node ").nth(1)?;
    let version = rest.split_whitespace().next()?;
    Version::parse(version).map(|_| version.to_string())
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
