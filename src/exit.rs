//! Exit codes: the one table, in one place. Documented in `docs/exit-codes.md`.

/// Done, or nothing to do.
pub const OK: i32 = 0;
/// A failure not covered by a more specific code.
pub const FAILURE: i32 = 1;
/// The command line was not understood (clap's own code for usage errors).
pub const USAGE: i32 = 2;
/// Refused before any change: a preflight check failed.
pub const REFUSED: i32 = 3;
/// The Docker Engine did not answer.
pub const ENGINE_UNREACHABLE: i32 = 4;
/// Failed, and everything was rolled back to the state before the run.
pub const ROLLED_BACK: i32 = 5;
/// Failed in a state that needs a human; the report lists what is left.
pub const NEEDS_HUMAN: i32 = 6;
/// The new image could not be pulled (registry unreachable, no such tag,
/// credentials refused); nothing was changed.
pub const PULL_FAILED: i32 = 7;
/// No container answers as the node's lock holder: the node is down.
pub const NO_HOLDER: i32 = 8;
/// More than one container answers as the lock holder: two nodes may be active.
pub const SEVERAL_HOLDERS: i32 = 9;
/// The lock holder answers, but one of its health checks fails.
pub const CHECK_FAILING: i32 = 10;
/// Another cl-maint run on the same node is in progress (it holds the run
/// lock); nothing was changed.
pub const RUN_LOCKED: i32 = 11;
/// Interrupted (Ctrl-C / SIGTERM) and left consistent.
pub const INTERRUPTED: i32 = 130;

/// Every code with its meaning, for `--help` and the docs.
pub const TABLE: [(i32, &str); 13] = [
    (OK, "done, or nothing to do"),
    (FAILURE, "failed (no more specific code applies)"),
    (USAGE, "the command line was not understood"),
    (REFUSED, "refused before any change (a preflight check failed)"),
    (ENGINE_UNREACHABLE, "the Docker Engine did not answer"),
    (ROLLED_BACK, "failed and rolled back to the state before the run"),
    (
        NEEDS_HUMAN,
        "failed in a state that needs a human; the report says what is left",
    ),
    (PULL_FAILED, "the new image could not be pulled; nothing was changed"),
    (NO_HOLDER, "no container answers as the lock holder: the node is down"),
    (
        SEVERAL_HOLDERS,
        "more than one container answers as the lock holder: two nodes may be active",
    ),
    (CHECK_FAILING, "the lock holder answers but a health check fails"),
    (
        RUN_LOCKED,
        "another cl-maint run on the same node is in progress; nothing was changed",
    ),
    (INTERRUPTED, "interrupted, and left in a consistent state"),
];

#[cfg(test)]
mod tests {
    /// The documented table (docs/exit-codes.md) says what this file says.
    #[test]
    fn docs_match_the_table() {
        let doc = include_str!("../docs/exit-codes.md");
        for (code, meaning) in super::TABLE {
            let row = format!("| {code} | {meaning} |");
            assert!(doc.contains(&row), "docs/exit-codes.md lacks the row {row:?}");
        }
        let rows = doc.lines().filter(|l| l.starts_with("| ") && l.ends_with(" |")).count();
        assert_eq!(rows, super::TABLE.len() + 1, "one header row plus one row a code");
    }
}
