//! Which lock a node uses, from its log and its version, and what a
//! bolt-era node's `DATABASE_TIMEOUT` must be for it to wait its turn.

use std::time::Duration;

use super::logs::Generation;
use super::version::Version;

/// The value of `DATABASE_TIMEOUT` that makes a bolt-era node wait for the
/// lock as long as it takes.
pub const WAIT_FOREVER: &str = "0";

/// Whether a node uses the bolt-era file lock: its log's waiting line says
/// so; without one, its version does (the bolt era ended with 0.6).
/// `DATABASE_TIMEOUT` alone decides nothing: operators who followed the
/// maintenance guide still set it on lease-era nodes, which ignore it.
pub fn is_bolt(generation: Option<Generation>, version: Option<&str>) -> bool {
    match generation {
        Some(g) => g == Generation::Bolt,
        None => version
            .and_then(Version::parse)
            .is_some_and(|v| (v.major, v.minor) < (0, 6)),
    }
}

/// A bolt-era node's `DATABASE_TIMEOUT` as `env` sets it (the last entry
/// wins), if it does.
pub fn database_timeout(env: &[String]) -> Option<&str> {
    env.iter().rev().find_map(|e| e.strip_prefix("DATABASE_TIMEOUT="))
}

/// The `DATABASE_TIMEOUT` a bolt-era node that cl-maint starts must get so
/// that it can wait `needed` for the lock: `None` when the operator's value
/// already lets it (0, waiting forever, or at least `needed`), else the
/// value to set (`needed`: the smallest change that makes the handoff
/// possible; an unset or unreadable value counts as the default 500 ms).
pub fn wait_timeout_for(env: &[String], needed: Duration) -> Option<String> {
    match database_timeout(env).map(super::godur::parse) {
        Some(Ok(d)) if d.is_zero() || d >= needed => None,
        _ => Some(super::godur::format(needed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_from_the_log_else_the_version_never_the_timeout() {
        assert!(is_bolt(Some(Generation::Bolt), Some("2.10.0")));
        assert!(!is_bolt(Some(Generation::Lease), Some("0.5.0")));
        assert!(is_bolt(None, Some("0.5.9")));
        assert!(!is_bolt(None, Some("0.6.0")));
        assert!(!is_bolt(None, Some("1.0.0")));
        assert!(
            !is_bolt(None, None),
            "unknown is not bolt: DATABASE_TIMEOUT alone decides nothing"
        );
    }

    #[test]
    fn the_operators_timeout_is_kept_when_it_lets_the_node_wait() {
        let env = |v: &str| vec![format!("DATABASE_TIMEOUT={v}")];
        let needed = Duration::from_secs(435);
        assert_eq!(wait_timeout_for(&env("0"), needed), None);
        assert_eq!(wait_timeout_for(&env("1h"), needed), None);
        assert_eq!(wait_timeout_for(&env("7m15s"), needed), None);
        assert_eq!(wait_timeout_for(&env("30s"), needed).as_deref(), Some("7m15s"));
        assert_eq!(wait_timeout_for(&[], needed).as_deref(), Some("7m15s"), "unset: 500 ms");
        assert_eq!(wait_timeout_for(&env("soon"), needed).as_deref(), Some("7m15s"));
    }
}
