//! The one integration-test binary: every test here runs against a real Docker
//! Engine through the rig in `rig/`.

mod cli;
mod double;
mod rig;
mod upgrade;
mod upgrade_faults;
