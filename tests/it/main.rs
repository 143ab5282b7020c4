//! The one integration-test binary: every test here runs against a real Docker
//! Engine through the rig in `rig/`.

mod cli;
mod double;
mod endpoints;
mod failover;
mod failover_hosts;
mod registry_auth;
mod rig;
mod two_hosts;
mod upgrade;
mod upgrade_faults;
