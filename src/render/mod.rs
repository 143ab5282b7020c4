//! Rendering: the human and JSON forms of reports, apart from the domain
//! types they show. Nothing here reads the engine.

pub mod report;
pub mod table;
