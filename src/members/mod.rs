//! The model of a node's containers: the primary (the node's own container,
//! on its main port), the secondary (a permanent hot standby) and whatever
//! an interrupted run left, each with its lock role as the node itself shows
//! it. Observing them only reads the engine.
//!
//! A member holds the lock when its HTTP port answers `/health`, waits when
//! it serves no HTTP and its log's last word on the lock is a waiting line.

pub mod member;
pub mod port;
pub mod sharing;

use crate::engine::{Engine, EngineError, EngineResult, state_of, summary_name};
use crate::names::{LABEL_PRIMARY, LABEL_ROLE, is_leftover, old_name, standby_name};

pub use member::{LockRole, Member};

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
    same_lock_file(hosts.split(), a, b)
}

/// [`share_lock_file`] for members on one engine (`split` false) or two.
pub fn same_lock_file(split: bool, a: &Member, b: &Member) -> bool {
    !split
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

/// A container an earlier, interrupted run left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// Its name.
    pub name: String,
    /// Its role (`standby`, `old`), from its label or its name.
    pub role: String,
    /// Its state (`running`, `exited`, …).
    pub state: String,
}

/// Containers an interrupted run left for `primary` on this engine: those
/// carrying cl-maint's label (but for a secondary, which is meant to stay,
/// and the run lock),
/// and those with the names cl-maint gives its temporary containers.
pub async fn leftovers<E: Engine>(engine: &E, primary: &str) -> EngineResult<Vec<Leftover>> {
    let mut leftovers = Vec::new();
    for c in engine.list_containers(&format!("{LABEL_PRIMARY}={primary}")).await? {
        let name = summary_name(&c);
        let role = c
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_ROLE))
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        if !is_leftover(&name, &role) {
            continue;
        }
        leftovers.push(Leftover {
            name,
            role,
            state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        });
    }
    for (name, role) in [(standby_name(primary), "standby"), (old_name(primary), "old")] {
        if !leftovers.iter().any(|l| l.name == name)
            && let Some(c) = engine.inspect_container(&name).await?
        {
            leftovers.push(Leftover {
                name,
                role: role.to_string(),
                state: state_of(&c).status,
            });
        }
    }
    Ok(leftovers)
}

/// Reads every member and leftover.
pub async fn members<E: Engine>(hosts: Hosts<'_, E>, names: &PairNames) -> Result<Vec<Member>, EngineError> {
    let view = view(hosts, names).await?;
    let mut members: Vec<Member> = [view.primary, view.secondary].into_iter().flatten().collect();
    let mut engines = vec![hosts.primary];
    if hosts.split() {
        engines.push(hosts.secondary);
    }
    for engine in engines {
        for left in leftovers(engine, &names.primary).await? {
            if members
                .iter()
                .any(|m| m.name == left.name && m.host == engine.endpoint())
            {
                continue;
            }
            if let Some(m) = member::observe(
                engine,
                &format!("{} (left by an interrupted run)", left.role),
                &left.name,
            )
            .await?
            {
                members.push(m);
            }
        }
    }
    Ok(members)
}

/// The members as they are now, for the end of a report (empty when the
/// engine cannot be read).
pub async fn final_members<E: Engine>(hosts: Hosts<'_, E>, names: &PairNames) -> Vec<Member> {
    members(hosts, names).await.unwrap_or_default()
}
