//! The one integration-test binary: every test here runs against a real Docker
//! Engine through the rig in `rig/`.

mod bad_input;
mod cli;
mod compose;
mod config;
mod db_faults;
mod double;
mod dry_runs;
mod endpoints;
mod engine_calls;
mod examples;
mod failover;
mod failover_hosts;
mod fault_kit;
mod faults_failover;
mod faults_interrupts;
mod faults_upgrade;
mod hooks;
mod image;
mod membership;
mod node_states;
mod postgres_rig;
mod reach;
mod recover;
mod registry_auth;
mod rig;
mod runlock;
mod secrets;
mod ssh_engine;
mod two_hosts;
mod upgrade;
mod upgrade_faults;
mod v2_nodes;
mod v2_topology;
