//! The second image of the soak's back-and-forth: the double's `1.1.0` with
//! one more label, so the same version under another tag and digest.
//!
//! A real A→B→A between versions cannot be soaked: once 1.1.0 has held the
//! lock the database is migrated, and the node (the double as the real one)
//! refuses to start 1.0.0 on it. So the first upgrade is the real migration
//! 1.0.0 → 1.1.0, and every later one alternates between two images of
//! 1.1.0 that differ in id and digest: for cl-maint each is a new image
//! (nothing is skipped as up to date, no `--force`), for the node the same
//! version.

use crate::{Bench, images};

/// The variant's tag, in the double's repository.
pub const VARIANT: &str = "1.1.0-soak";

/// What the upgrades alternate between, and why, for the output.
pub const EXPLANATION: &str = "Upgrades: the first is the real migration 1.0.0 -> 1.1.0; after it they alternate \
     1.1.0 <-> 1.1.0-soak (the same version under another tag and digest), because the node refuses \
     to run 1.0.0 on a database 1.1.0 has migrated, so a real downgrade cannot be cycled.";

/// The next image of the back-and-forth after `current` (a tag).
pub fn next_after(current: &str) -> &'static str {
    if current == images::NEW { VARIANT } else { images::NEW }
}

/// Builds the variant and pushes it to the registry, so that cl-maint pulls
/// it for real like the other tags.
pub async fn prepare(bench: &Bench) -> Result<(), String> {
    crate::common::push_variant(&bench.docker, &bench.images, VARIANT).await
}
