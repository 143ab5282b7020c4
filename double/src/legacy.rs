//! The environment variables a 2.x node refuses at boot ("Configuration with
//! legacy environment variables is no longer supported. TOML is required."),
//! the list cl-maint checks too (`src/node/legacy.rs`). Setting any of them,
//! even to an empty string, stops the node with `environment variable X must
//! not be set: unsupported with config v2`. `DATABASE_TIMEOUT` is not on it:
//! a 2.x node ignores it silently.

#[path = "../../src/node/legacy.rs"]
#[allow(dead_code)]
mod names;

/// The refused names: cl-maint's list, shared.
pub use names::LEGACY_VARS as LEGACY_ENV;

/// The node's error for the legacy variables `is_set` reports as set (`None`
/// when none is): one line for one variable, a multi-error list for several,
/// as the node's `validateEnv` prints them.
pub fn refusal(is_set: &dyn Fn(&str) -> bool) -> Option<String> {
    let set: Vec<&str> = LEGACY_ENV.iter().copied().filter(|n| is_set(n)).collect();
    let one = |n: &str| format!("environment variable {n} must not be set: unsupported with config v2");
    match set.as_slice() {
        [] => None,
        [n] => Some(format!("invalid environment: {}", one(n))),
        many => Some(format!(
            "invalid environment: {} errors:{}",
            many.len(),
            many.iter().map(|n| format!("\n\t- {}", one(n))).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_like_the_node() {
        assert_eq!(refusal(&|_| false), None);
        assert_eq!(
            refusal(&|n| n == "DATABASE_URL").unwrap(),
            "invalid environment: environment variable DATABASE_URL must not be set: unsupported with config v2"
        );
        assert_eq!(
            refusal(&|n| n == "LOG_LEVEL" || n == "DATABASE_URL" || n == "DATABASE_TIMEOUT").unwrap(),
            "invalid environment: 2 errors:\n\t- environment variable DATABASE_URL must not be set: unsupported with config v2\n\t- environment variable LOG_LEVEL must not be set: unsupported with config v2"
        );
        for name in [
            "CHAINLINK_PORT",
            "ETH_URL",
            "ETH_CHAIN_ID",
            "LINK_CONTRACT_ADDRESS",
            "CHAINLINK_TLS_PORT",
            "SECURE_COOKIES",
            "ALLOW_ORIGINS",
            "JSON_CONSOLE",
            "LOG_LEVEL",
            "LEASE_LOCK_DURATION",
            "LEASE_LOCK_REFRESH_INTERVAL",
            "ROOT",
            "SHUTDOWN_GRACE_PERIOD",
        ] {
            assert!(LEGACY_ENV.contains(&name), "{name}");
        }
        assert!(!LEGACY_ENV.contains(&"DATABASE_TIMEOUT"));
        assert!(!LEGACY_ENV.contains(&"CL_DATABASE_URL"));
    }
}
