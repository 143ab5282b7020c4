//! What `recover` does to a pair, decided from what was seen. Pure.
//!
//! The member holding the lock keeps it. For each member with a renamed
//! original (`NAME-cl-maint-old`, left by an interrupted pair upgrade): when
//! the holder runs the original's version, the new version never held the
//! lock and the original goes back under its name; otherwise the member
//! stays on (or is recreated on) the holder's version and the original is
//! removed (or kept with `--keep-old`).

use super::survey::Seen;

/// Both members (primary, secondary) and their renamed originals, as seen.
#[derive(Clone, Debug, Default)]
pub struct Look {
    /// The members under their own names.
    pub members: [Option<Seen>; 2],
    /// Their renamed originals.
    pub olds: [Option<Seen>; 2],
}

impl Look {
    /// Every container seen.
    pub fn all(&self) -> Vec<&Seen> {
        self.members.iter().chain(self.olds.iter()).flatten().collect()
    }
}

/// What to do with one member whose original was renamed aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restore {
    /// The new version never held the lock: remove the member under the
    /// name and rename the original back.
    OriginalBack,
    /// No member under the name, and the holder runs the original's version:
    /// rename the original back.
    RenameBack,
    /// The member under the name is on the holder's version: the original
    /// is no longer needed (removed, or kept with `--keep-old`).
    DropOriginal,
    /// No member under the name, and the holder runs a newer version:
    /// recreate the member from the original on the holder's image.
    Recreate,
}

/// Why `recover` will not touch the pair, and how the run ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// More than one container answers as the holder.
    SeveralHolders,
    /// Nothing holds the lock, or a start or stop is still in flight.
    NoHolder,
    /// A renamed original (member `index`) holds the lock.
    OldHolds(usize),
}

/// The plan: which container holds (its id), and per member what to
/// restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairPlan {
    /// The holder's container id.
    pub holder_id: String,
    /// Per member (primary, secondary): what to restore, when its original
    /// was renamed aside.
    pub restore: [Option<Restore>; 2],
}

/// Decides. `at_rest`: no stop or takeover is in flight.
pub fn decide(look: &Look, at_rest: bool) -> Result<PairPlan, Stop> {
    let holders: Vec<&Seen> = look.all().into_iter().filter(|s| s.holds()).collect();
    let holder = match holders.as_slice() {
        [one] if at_rest => *one,
        [_, _, ..] => return Err(Stop::SeveralHolders),
        _ => return Err(Stop::NoHolder),
    };
    if let Some(i) = (0..2).find(|i| look.olds[*i].as_ref().is_some_and(|o| o.m.id == holder.m.id)) {
        return Err(Stop::OldHolds(i));
    }
    let mut restore = [None, None];
    for (i, r) in restore.iter_mut().enumerate() {
        let Some(old) = &look.olds[i] else { continue };
        let holder_is_old_version = old.m.image_id == holder.m.image_id;
        *r = Some(match &look.members[i] {
            Some(c) if holder_is_old_version && c.m.id != holder.m.id => Restore::OriginalBack,
            Some(_) => Restore::DropOriginal,
            None if holder_is_old_version => Restore::RenameBack,
            None => Restore::Recreate,
        });
    }
    Ok(PairPlan {
        holder_id: holder.m.id.clone(),
        restore,
    })
}

/// A container as recover sees it, for unit tests: `name` on `image` (as
/// reference and id), booted at some point.
#[cfg(test)]
pub(crate) fn sample_seen(name: &str, lock: crate::members::LockRole, image: &str) -> Option<Seen> {
    let mut m = crate::members::member::sample("member", name, lock);
    m.image = image.into();
    m.image_id = image.into();
    Some(Seen {
        m,
        stopping: false,
        booted: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::member::LockRole;

    fn seen(name: &str, lock: LockRole, image: &str) -> Option<Seen> {
        sample_seen(name, lock, image)
    }

    #[test]
    fn one_holder_at_rest_or_nothing() {
        let mut look = Look::default();
        look.members[0] = seen("chainlink", LockRole::Holding, "old");
        look.members[1] = seen("secondary", LockRole::Holding, "old");
        assert_eq!(decide(&look, true), Err(Stop::SeveralHolders));
        look.members[1] = seen("secondary", LockRole::Waiting, "old");
        assert_eq!(decide(&look, false), Err(Stop::NoHolder), "not at rest");
        let plan = decide(&look, true).expect("a plan");
        assert_eq!(plan.holder_id, "chainlink-id");
        assert_eq!(plan.restore, [None, None]);
        look.members[0] = seen("chainlink", LockRole::Stopped, "old");
        assert_eq!(decide(&look, true), Err(Stop::NoHolder));
    }

    #[test]
    fn before_the_new_version_held_the_originals_come_back() {
        // The secondary (old version) holds; the primary was recreated on the
        // new image and its original renamed aside.
        let mut look = Look::default();
        look.members[0] = seen("chainlink", LockRole::Waiting, "new");
        look.olds[0] = seen("chainlink-cl-maint-old", LockRole::Stopped, "old");
        look.members[1] = seen("secondary", LockRole::Holding, "old");
        assert_eq!(
            decide(&look, true).unwrap().restore,
            [Some(Restore::OriginalBack), None]
        );
        look.members[0] = None;
        assert_eq!(decide(&look, true).unwrap().restore, [Some(Restore::RenameBack), None]);
    }

    #[test]
    fn after_the_new_version_held_the_way_is_forward() {
        let mut look = Look::default();
        look.members[0] = seen("chainlink", LockRole::Holding, "new");
        look.members[1] = seen("secondary", LockRole::Waiting, "new");
        look.olds[0] = seen("chainlink-cl-maint-old", LockRole::Stopped, "old");
        look.olds[1] = seen("secondary-cl-maint-old", LockRole::Stopped, "old");
        assert_eq!(
            decide(&look, true).unwrap().restore,
            [Some(Restore::DropOriginal), Some(Restore::DropOriginal)]
        );
        look.members[1] = None;
        assert_eq!(
            decide(&look, true).unwrap().restore,
            [Some(Restore::DropOriginal), Some(Restore::Recreate)]
        );
        // A renamed original holding the lock is left to a human.
        let mut look = Look::default();
        look.olds[1] = seen("secondary-cl-maint-old", LockRole::Holding, "old");
        look.members[0] = seen("chainlink", LockRole::Waiting, "old");
        assert_eq!(decide(&look, true), Err(Stop::OldHolds(1)));
    }
}
