//! Which lock a node uses, from its log and its settings.

use super::logs::Generation;

/// The value of `DATABASE_TIMEOUT` that makes a bolt-era node wait for the
/// lock as long as it takes.
pub const WAIT_FOREVER: &str = "0";

/// Whether a node uses the bolt-era file lock: its log says so, or (when
/// its log shows no waiting line) it sets `DATABASE_TIMEOUT`, the bolt-era
/// knob.
pub fn is_bolt(generation: Option<Generation>, env: &[String]) -> bool {
    let sets_timeout = env.iter().any(|e| e.starts_with("DATABASE_TIMEOUT="));
    generation == Some(Generation::Bolt) || (generation.is_none() && sets_timeout)
}
