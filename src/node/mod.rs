//! What cl-maint knows about the Chainlink node, as data plus small functions:
//! which log lines mean what across lock generations and log formats, the
//! `/health` document, versions, and Go durations. Nothing here does I/O.

pub mod config;
pub mod godur;
pub mod health;
pub mod image;
pub mod legacy;
pub mod lock;
pub mod logs;
pub mod version;
