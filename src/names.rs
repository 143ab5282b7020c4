//! The names and labels of the containers cl-maint makes beside a node, and
//! of the pair. A leaf: it imports nothing of the crate.

/// Label naming the primary a cl-maint container belongs to.
pub const LABEL_PRIMARY: &str = "io.cl-maint.primary";
/// Label naming a cl-maint container's role (`standby`, `secondary`, `lock`).
pub const LABEL_ROLE: &str = "io.cl-maint.role";

/// The role label value of a secondary cl-maint created.
pub const ROLE_SECONDARY: &str = "secondary";
/// The role label value of the run lock's container.
pub const ROLE_LOCK: &str = "lock";
/// The role label value of the one-off container that asks an image its
/// `--version` (no network, no mounts: it never touches the node's data).
pub const ROLE_VERSION: &str = "version";

/// The default name of the secondary, as in Chainlink's failover example.
pub const DEFAULT_SECONDARY: &str = "secondary";

/// The temporary standby's name.
pub fn standby_name(primary: &str) -> String {
    format!("{primary}-cl-maint-standby")
}

/// The old primary's name while it is the rollback point.
pub fn old_name(primary: &str) -> String {
    format!("{primary}-cl-maint-old")
}

/// The run lock's container name for the node `primary`.
pub fn lock_name(primary: &str) -> String {
    format!("{primary}-cl-maint-lock")
}

/// Whether a container of `primary`'s with role label `role` and name
/// `name` is something an interrupted run left: not a secondary (meant to
/// stay, unless an interrupted pair upgrade renamed it aside), not the run
/// lock (it belongs to a run), and not a one-off `--version` (harmless; the
/// next run that needs one removes it).
pub fn is_leftover(name: &str, role: &str) -> bool {
    let renamed_aside = name.ends_with(&old_name(""));
    !((role == ROLE_SECONDARY && !renamed_aside) || role == ROLE_LOCK || role == ROLE_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_interrupted_run_left() {
        assert!(is_leftover("chainlink-cl-maint-standby", "standby"));
        assert!(is_leftover("secondary-cl-maint-old", ROLE_SECONDARY), "renamed aside");
        assert!(!is_leftover("secondary", ROLE_SECONDARY));
        assert!(!is_leftover("chainlink-cl-maint-lock", ROLE_LOCK));
        assert!(!is_leftover("chainlink-cl-maint-version-42", ROLE_VERSION));
    }
}
