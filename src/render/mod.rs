//! Rendering: the human and JSON forms of what the commands return (a run's
//! report, `status`, `health`), apart from the types they show. It sits
//! above the commands; nothing below imports it, and nothing here reads the
//! engine.

pub mod health;
pub mod report;
pub mod status;
pub mod table;
