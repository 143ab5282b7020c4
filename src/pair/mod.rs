//! The failover pair: the primary (`chainlink`, on the node's main port) and
//! a permanent hot standby, the secondary (`secondary`, on port 6687 by
//! default), which waits for the database lock and takes over by itself when
//! the primary dies. The secondary may run on another Docker host sharing the
//! database.
//!
//! Every member's lock role is read from the node itself: a member holds the
//! lock when its HTTP port answers `/health`, waits when it serves no HTTP and
//! its log's last word on the lock is a waiting line.

pub mod dry;
pub mod health;
pub mod secondary;
pub mod status;
pub mod switch;
pub mod switch_plan;
pub mod up;
pub mod up_plan;
pub mod upgrade;
pub mod upgrade_checks;
pub mod upgrade_plan;

pub use crate::members::{
    Hosts, LockRole, Member, PairNames, PairView, Which, final_members, member, share_lock_file, view,
};

pub use crate::names::{DEFAULT_SECONDARY, ROLE_SECONDARY};

/// Settings of the pair commands.
#[derive(Clone, Debug)]
pub struct PairOptions {
    /// The members' names.
    pub names: PairNames,
    /// The host port the secondary publishes the node's port on.
    pub secondary_port: u16,
    /// How long a started member may take to log that it waits for the lock.
    pub wait_timeout: std::time::Duration,
    /// How long a takeover may take (the new holder answering HTTP).
    pub takeover_timeout: std::time::Duration,
    /// Grace period of a graceful stop.
    pub stop_timeout: std::time::Duration,
    /// `--dry-run`: show the plan, change nothing.
    pub dry_run: bool,
    /// The operator named the secondary (a flag or the config): it is then
    /// a member of the pair (see `members::sharing::membership`).
    pub secondary_named: bool,
}

impl PairOptions {
    /// Defaults for the pair `primary` / `secondary`.
    pub fn new(primary: &str, secondary: &str) -> PairOptions {
        PairOptions {
            names: PairNames {
                primary: primary.to_string(),
                secondary: secondary.to_string(),
            },
            secondary_port: 6687,
            wait_timeout: crate::handoff::Deadlines::DEFAULT.wait,
            takeover_timeout: crate::handoff::Deadlines::DEFAULT.takeover,
            stop_timeout: crate::handoff::Deadlines::DEFAULT.stop,
            dry_run: false,
            secondary_named: false,
        }
    }
}
