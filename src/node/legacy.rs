//! Environment variables of v1's configuration that Chainlink 2.0 and later
//! refuse at boot: setting one, even to an empty string, stops a 2.x node
//! with `environment variable X must not be set: unsupported with config
//! v2`. `DATABASE_TIMEOUT` is not among them: a 2.x node ignores it.
//!
//! The node refuses a longer list; these are the variables env-configured
//! v1 nodes set in practice (the maintenance guide's and the `.env`
//! examples' ones). The node double refuses the same list.

/// The refused names cl-maint knows of, sorted.
pub const LEGACY_VARS: &[&str] = &[
    "ALLOW_ORIGINS",
    "CHAINLINK_DEV",
    "CHAINLINK_PORT",
    "CHAINLINK_TLS_HOST",
    "CHAINLINK_TLS_PORT",
    "DATABASE_LOCKING_MODE",
    "DATABASE_URL",
    "ETH_CHAIN_ID",
    "ETH_URL",
    "FEATURE_EXTERNAL_INITIATORS",
    "FEATURE_OFFCHAIN_REPORTING",
    "JSON_CONSOLE",
    "LEASE_LOCK_DURATION",
    "LEASE_LOCK_REFRESH_INTERVAL",
    "LINK_CONTRACT_ADDRESS",
    "LOG_LEVEL",
    "MIN_INCOMING_CONFIRMATIONS",
    "MIN_OUTGOING_CONFIRMATIONS",
    "ROOT",
    "SECURE_COOKIES",
    "SHUTDOWN_GRACE_PERIOD",
];

/// Whether `name` is a legacy variable a 2.x node refuses.
pub fn is_legacy(name: &str) -> bool {
    LEGACY_VARS.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_leaves_database_timeout_alone() {
        assert!(LEGACY_VARS.windows(2).all(|w| w[0] < w[1]), "sorted, for binary_search");
        assert!(is_legacy("DATABASE_URL") && is_legacy("ROOT") && is_legacy("CHAINLINK_PORT"));
        assert!(!is_legacy("DATABASE_TIMEOUT") && !is_legacy("CL_DATABASE_URL") && !is_legacy("CL_CONFIG"));
    }
}
