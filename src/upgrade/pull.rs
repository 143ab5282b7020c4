//! Getting the target image onto an engine: the pull policy, the pull itself
//! within its deadline (giving up on an interrupt), and what a failure means
//! for the operator. Shared by the single-node and the pair upgrade.

use tokio::time::timeout;

use crate::engine::Engine;
use crate::events::Events;
use crate::interrupt::Interrupt;
use crate::report::Outcome;

use super::options::{PullPolicy, UpgradeOptions};

/// Why the image is not on the engine; nothing was changed.
#[derive(Clone, Debug)]
pub struct PullFailure {
    /// `pull-failed`, or `interrupted`.
    pub outcome: Outcome,
    /// What happened (may hold registry messages: redact before printing).
    pub what: String,
    /// What to do.
    pub next_steps: Vec<String>,
}

/// Makes `target` available on `engine` as `opts.pull` says; `have` is
/// whether the engine already has it.
pub async fn ensure_image<E: Engine>(
    engine: &E,
    target: &str,
    have: bool,
    opts: &UpgradeOptions,
    events: &Events,
    interrupt: &Interrupt,
) -> Result<(), PullFailure> {
    let pull = match opts.pull {
        PullPolicy::Always => true,
        PullPolicy::Missing => !have,
        PullPolicy::Never => false,
    };
    if !pull {
        if !have {
            return Err(PullFailure {
                outcome: Outcome::PullFailed,
                what: format!(
                    "{target} is not on the engine {} and --pull never forbids pulling it",
                    engine.endpoint()
                ),
                next_steps: vec!["load the image (`docker load`) or pull it, or use --pull missing".into()],
            });
        }
        let policy = if opts.pull == PullPolicy::Never {
            "never"
        } else {
            "missing"
        };
        events.step(&format!("using {target} from the engine (--pull {policy})"));
        return Ok(());
    }
    events.step(&format!("pulling {target} on {}", engine.endpoint()));
    let show = |p: crate::engine::PullProgress| events.pull(&p);
    let pulled = tokio::select! {
        r = timeout(opts.pull_timeout, engine.pull(target, &show)) => r,
        _ = interrupt.wait() => {
            events.pull_done();
            return Err(PullFailure {
                outcome: Outcome::Interrupted,
                what: "interrupted during the pull".into(),
                next_steps: Vec::new(),
            });
        }
    };
    events.pull_done();
    let what = match pulled {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("the pull did not finish within {}s", opts.pull_timeout.as_secs()),
    };
    Err(PullFailure {
        outcome: Outcome::PullFailed,
        what,
        next_steps: vec![
            format!("check that the tag exists: {target}"),
            format!(
                "check the registry is reachable and your credentials: `docker login {}`",
                crate::reference::registry(target)
            ),
        ],
    })
}
