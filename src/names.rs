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
/// stay, unless an interrupted pair upgrade renamed it aside) and not the
/// run lock (it belongs to a run).
pub fn is_leftover(name: &str, role: &str) -> bool {
    let renamed_aside = name.ends_with(&old_name(""));
    !((role == ROLE_SECONDARY && !renamed_aside) || role == ROLE_LOCK)
}
