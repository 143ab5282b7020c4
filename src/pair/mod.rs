//! The failover pair: the primary (`chainlink`, on the node's main port) and
//! a permanent hot standby, the secondary (`secondary`, on port 6687 by
//! default), which waits for the database lock and takes over by itself when
//! the primary dies. The secondary may run on another Docker host sharing the
//! database.
//!
//! Every member's lock role is read from the node itself: a member holds the
//! lock when its HTTP port answers `/health`, waits when it serves no HTTP and
//! its log's last word on the lock is a waiting line.

pub mod health;
pub mod member;
pub mod status;
pub mod steps;
pub mod switch;
pub mod up;
pub mod upgrade;
pub mod upgrade_plan;

use crate::engine::Engine;

pub use member::{LockRole, Member};

/// The role label value of a secondary cl-maint created.
pub const ROLE_SECONDARY: &str = "secondary";

/// The default name of the secondary, as in Chainlink's failover example.
pub const DEFAULT_SECONDARY: &str = "secondary";

/// The two Docker Engines of a pair (the same one when the secondary runs on
/// the primary's host).
pub struct Hosts<'a, E: Engine> {
    /// The engine running the primary.
    pub primary: &'a E,
    /// The engine running the secondary.
    pub secondary: &'a E,
}

impl<E: Engine> Clone for Hosts<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E: Engine> Copy for Hosts<'_, E> {}

impl<'a, E: Engine> Hosts<'a, E> {
    /// Both members on one engine.
    pub fn one(engine: &'a E) -> Self {
        Hosts {
            primary: engine,
            secondary: engine,
        }
    }

    /// The primary's engine, and the secondary's when it is another one.
    pub fn new(primary: &'a E, secondary: Option<&'a E>) -> Self {
        Hosts {
            primary,
            secondary: secondary.unwrap_or(primary),
        }
    }

    /// Whether the secondary runs on another engine.
    pub fn split(&self) -> bool {
        self.primary.endpoint() != self.secondary.endpoint()
    }

    /// The engine of a member.
    pub fn of(&self, which: Which) -> &'a E {
        match which {
            Which::Primary => self.primary,
            Which::Secondary => self.secondary,
        }
    }
}

/// Whether two members provably share the bolt-era lock file: both on one
/// engine, with `ROOT` on the same volume or host directory.
pub fn share_lock_file<E: Engine>(hosts: Hosts<'_, E>, a: &Member, b: &Member) -> bool {
    !hosts.split()
        && crate::spec::data_dir_on_host(&a.inspect)
            .is_some_and(|d| crate::spec::data_dir_on_host(&b.inspect).as_ref() == Some(&d))
}

/// A member of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Which {
    /// The node's own container, on the main port.
    Primary,
    /// The hot standby.
    Secondary,
}

impl Which {
    /// The other member.
    pub fn other(self) -> Which {
        match self {
            Which::Primary => Which::Secondary,
            Which::Secondary => Which::Primary,
        }
    }

    /// `primary` / `secondary`.
    pub fn word(self) -> &'static str {
        match self {
            Which::Primary => "primary",
            Which::Secondary => "secondary",
        }
    }
}

/// The names of the pair and the secondary's port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairNames {
    /// The primary's container name.
    pub primary: String,
    /// The secondary's container name.
    pub secondary: String,
}

impl PairNames {
    /// The name of a member.
    pub fn of(&self, which: Which) -> &str {
        match which {
            Which::Primary => &self.primary,
            Which::Secondary => &self.secondary,
        }
    }
}

/// Both members as they are now (`None`: no such container).
#[derive(Clone, Debug)]
pub struct PairView {
    /// The primary.
    pub primary: Option<Member>,
    /// The secondary.
    pub secondary: Option<Member>,
}

impl PairView {
    /// A member.
    pub fn of(&self, which: Which) -> Option<&Member> {
        match which {
            Which::Primary => self.primary.as_ref(),
            Which::Secondary => self.secondary.as_ref(),
        }
    }

    /// The members that answer as the lock holder.
    pub fn holders(&self) -> Vec<Which> {
        [Which::Primary, Which::Secondary]
            .into_iter()
            .filter(|w| self.of(*w).is_some_and(|m| m.lock == LockRole::Holding))
            .collect()
    }
}

/// Reads both members.
pub async fn view<E: Engine>(hosts: Hosts<'_, E>, names: &PairNames) -> crate::engine::EngineResult<PairView> {
    let (primary, secondary) = tokio::join!(
        member::observe(hosts.primary, Which::Primary.word(), &names.primary),
        member::observe(hosts.secondary, Which::Secondary.word(), &names.secondary),
    );
    Ok(PairView {
        primary: primary?,
        secondary: secondary?,
    })
}

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
            wait_timeout: std::time::Duration::from_secs(120),
            takeover_timeout: std::time::Duration::from_secs(300),
            stop_timeout: std::time::Duration::from_secs(15),
        }
    }
}

/// The members as they are now, for the end of a report (empty when the
/// engine cannot be read).
pub async fn final_members<E: Engine>(hosts: Hosts<'_, E>, names: &PairNames) -> Vec<Member> {
    status::members(hosts, names).await.unwrap_or_default()
}
