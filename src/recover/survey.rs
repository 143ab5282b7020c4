//! What an interrupted run left, read from the engine and the nodes
//! themselves, and the decision of what to do about it (pure).

use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use crate::engine::Engine;
use crate::interrupt::Interrupt;
use crate::node::logs::{self, Event};
use crate::pair::member::{self, LockRole, Member};

/// How often the settle loop looks again.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// A container as recover sees it: the member, and what its log says about
/// its life.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The container.
    pub m: Member,
    /// It runs and its log's last word is that it shuts down (a stop is in
    /// flight).
    pub stopping: bool,
    /// Its log shows it booted at some point (so it held the lock then).
    pub booted: bool,
}

impl Seen {
    /// Whether it answers as the lock holder.
    pub fn holds(&self) -> bool {
        self.m.lock == LockRole::Holding
    }
}

/// Reads a container by name (`None`: no such container).
pub async fn look<E: Engine>(engine: &E, role: &str, name: &str) -> crate::engine::EngineResult<Option<Seen>> {
    let Some(m) = member::observe(engine, role, name).await? else {
        return Ok(None);
    };
    let (mut booted, mut last) = (false, None);
    let mut lines = engine.log_lines(&m.id, false);
    while let Some(Ok(line)) = lines.next().await {
        match logs::classify(&line) {
            Some(Event::Booted) => {
                booted = true;
                last = Some(Event::Booted);
            }
            Some(e) => last = Some(e),
            None => {}
        }
    }
    let stopping = m.running && last == Some(Event::ShuttingDown);
    Ok(Some(Seen { m, stopping, booted }))
}

/// Whether what was seen is at rest: no stop in flight, and either someone
/// holds the lock (a container still starting then can only wait) or
/// nothing runs that could take it.
pub fn at_rest(seen: &[&Seen]) -> bool {
    if seen.iter().any(|s| s.stopping) {
        return false;
    }
    seen.iter().any(|s| s.holds()) || !seen.iter().any(|s| s.m.running)
}

/// Looks again (with `again`) until [`at_rest`] or the deadline: a stop the
/// interrupted run asked for goes on without it, and the standby then takes
/// over by itself. Returns the last look and whether it was at rest.
pub async fn settle<T, F, Fut>(within: Duration, interrupt: &Interrupt, mut again: F) -> Result<(T, bool), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(T, bool), String>>,
{
    let deadline = Instant::now() + within;
    loop {
        let (seen, rest) = again().await?;
        if rest || Instant::now() >= deadline || interrupt.is_set() {
            return Ok((seen, rest));
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// The single node's containers after an interrupted `upgrade`.
#[derive(Clone, Debug, Default)]
pub struct Single {
    /// The container under the node's name (the original, or the new one
    /// an interrupted upgrade created).
    pub primary: Option<Seen>,
    /// The temporary standby.
    pub standby: Option<Seen>,
    /// The original, renamed out of the way.
    pub old: Option<Seen>,
}

impl Single {
    /// Every container there is.
    pub fn all(&self) -> Vec<&Seen> {
        [&self.primary, &self.standby, &self.old]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Whether the new version has held the lock: the standby holds or
    /// booted, or the original was renamed (the upgrade renames it only
    /// once the standby holds the lock: see `upgrade/overlap.rs`).
    pub fn new_version_held(&self) -> bool {
        self.old.is_some() || self.standby.as_ref().is_some_and(|s| s.holds() || s.booted)
    }
}

/// What recover does with a single node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The node holds the lock and nothing is left.
    NothingToDo,
    /// The container under the node's name holds the lock: remove what is
    /// left (`on_new`: it runs the new version).
    CleanUp {
        /// Whether it is the new version.
        on_new: bool,
    },
    /// The standby holds the lock with the new version: do what the
    /// upgrade would have done next (rename the original, recreate the node
    /// on the new image, hand the lock back, clean up).
    Forward,
    /// Nobody holds the lock, the new version never did: start the
    /// untouched original.
    StartOriginal,
    /// Nobody holds the lock, the new version did: start the standby, then
    /// go forward.
    StartStandby,
    /// Nobody holds the lock, the new node exists: start it.
    StartNew,
    /// More than one holds the lock.
    SeveralHolders,
    /// Cannot decide safely (why).
    Human(String),
}

/// Decides. Pure.
pub fn decide(s: &Single, at_rest: bool) -> Decision {
    let holders: Vec<&Seen> = s.all().into_iter().filter(|x| x.holds()).collect();
    let is = |x: &Option<Seen>, h: &Seen| x.as_ref().is_some_and(|x| x.m.id == h.m.id);
    match holders.as_slice() {
        [] if !at_rest => Decision::Human(
            "no container holds the lock and one still runs without holding it (starting, stopping or waiting for a lock nothing releases)"
                .into(),
        ),
        [] if !s.new_version_held() && s.primary.is_some() => Decision::StartOriginal,
        [] if s.standby.is_some() && s.new_version_held() => Decision::StartStandby,
        [] if s.primary.is_some() && s.old.is_some() => Decision::StartNew,
        [] => Decision::Human("no container holds the lock and none can be started safely".into()),
        [h] if is(&s.primary, h) => {
            if s.standby.is_none() && s.old.is_none() {
                Decision::NothingToDo
            } else {
                Decision::CleanUp {
                    on_new: s.old.is_some(),
                }
            }
        }
        [h] if is(&s.standby, h) => {
            if s.primary.is_none() && s.old.is_none() {
                Decision::Human(
                    "the standby holds the lock but neither the original nor its renamed copy exists, so the node's own settings are unknown"
                        .into(),
                )
            } else {
                Decision::Forward
            }
        }
        [_] => Decision::Human("the renamed original holds the lock".into()),
        _ => Decision::SeveralHolders,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, lock: LockRole, booted: bool) -> Option<Seen> {
        let m = Member {
            image: "img".into(),
            version: None,
            state: "running".into(),
            port: None,
            addr: None,
            ..crate::members::member::sample("x", name, lock)
        };
        Some(Seen {
            m,
            stopping: false,
            booted,
        })
    }

    use LockRole::*;

    #[test]
    fn before_the_handoff_the_original_wins() {
        let s = Single {
            primary: seen("n", Holding, true),
            standby: seen("s", Waiting, false),
            old: None,
        };
        assert_eq!(decide(&s, true), Decision::CleanUp { on_new: false });
        let s = Single {
            standby: seen("s", Stopped, false),
            ..s
        };
        assert_eq!(decide(&s, true), Decision::CleanUp { on_new: false });
        let alone = Single {
            primary: seen("n", Holding, true),
            ..Default::default()
        };
        assert_eq!(decide(&alone, true), Decision::NothingToDo);
        // Nobody holds, the standby never booted: the original is started again.
        let down = Single {
            primary: seen("n", Stopped, true),
            standby: seen("s", Stopped, false),
            old: None,
        };
        assert_eq!(decide(&down, true), Decision::StartOriginal);
    }

    #[test]
    fn after_the_new_version_held_the_way_is_forward() {
        for (primary, old) in [
            (seen("n", Stopped, true), None),
            (None, seen("o", Stopped, true)),
            (seen("n", Waiting, false), seen("o", Stopped, true)),
            (seen("n", Stopped, false), seen("o", Stopped, true)),
        ] {
            let s = Single {
                primary,
                standby: seen("s", Holding, true),
                old,
            };
            assert_eq!(decide(&s, true), Decision::Forward, "{s:?}");
        }
        // The standby booted (held), then stopped: never back to the original.
        let s = Single {
            primary: seen("n", Stopped, true),
            standby: seen("s", Stopped, true),
            old: None,
        };
        assert_eq!(decide(&s, true), Decision::StartStandby);
        let s = Single {
            primary: seen("n", Holding, true),
            standby: seen("s", Stopped, true),
            old: seen("o", Stopped, true),
        };
        assert_eq!(decide(&s, true), Decision::CleanUp { on_new: true });
        let s = Single {
            primary: seen("n", Stopped, true),
            standby: None,
            old: seen("o", Stopped, true),
        };
        assert_eq!(decide(&s, true), Decision::StartNew);
    }

    #[test]
    fn unsafe_states_need_a_human() {
        let two = Single {
            primary: seen("n", Holding, true),
            standby: seen("s", Holding, true),
            old: None,
        };
        assert_eq!(decide(&two, true), Decision::SeveralHolders);
        let moving = Single {
            primary: seen("n", Stopped, true),
            standby: seen("s", Waiting, false),
            old: None,
        };
        assert!(matches!(decide(&moving, false), Decision::Human(_)));
        let orphan = Single {
            standby: seen("s", Holding, true),
            ..Default::default()
        };
        assert!(matches!(decide(&orphan, true), Decision::Human(_)));
        let rest = [seen("a", Holding, true).unwrap(), seen("b", Unknown, false).unwrap()];
        assert!(at_rest(&rest.iter().collect::<Vec<_>>()));
        let rest = [seen("a", Stopped, true).unwrap(), seen("b", Unknown, false).unwrap()];
        assert!(!at_rest(&rest.iter().collect::<Vec<_>>()));
        let mut stopping = seen("a", Holding, true).unwrap();
        stopping.stopping = true;
        assert!(!at_rest(&[&stopping]));
        let rest = [seen("a", Holding, true).unwrap(), seen("b", Waiting, false).unwrap()];
        assert!(at_rest(&rest.iter().collect::<Vec<_>>()));
        let rest = [seen("a", Stopped, true).unwrap(), seen("b", Waiting, false).unwrap()];
        assert!(!at_rest(&rest.iter().collect::<Vec<_>>()));
    }
}
