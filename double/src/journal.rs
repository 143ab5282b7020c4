//! The heartbeat journal on the shared volume: one line an event,
//! `<unix_ns> <client_id> <event> <version> [detail]`, appended with
//! `O_APPEND` so lines from several containers never interleave. Tests read it
//! to measure each handoff's gap and to prove no two nodes held the lock at
//! once.
//!
//! Events: `lock` (the lock was just taken), `renew <expires_ns>` (lease taken
//! or refreshed), `serve` (the real HTTP server is up), `beat` (still holding
//! and serving, every 10 ms), `unserve` (HTTP stopped), `unlock` (about to
//! release). `lock` is written after taking the lock and `unlock` before
//! releasing it, so the journal's intervals lie inside the real ones: if two
//! journal intervals overlap, two nodes really held the lock at once. Once
//! `unlock` is written the journal is closed: whichever thread writes it (a
//! graceful stop, a refusal, a lost or lapsing lease), no line follows it.
//!
//! The journal lives in `$ROOT`, or in the directory `CL_DOUBLE_JOURNAL`
//! names (tests that give each node a volume of its own share one journal
//! directory between them).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use crate::clock::now_ns;

/// The journal's file name inside its directory.
pub const FILE_NAME: &str = "cl-double-journal.log";

/// An open journal.
pub struct Journal {
    /// The file, `None` once `unlock` is written (or when it cannot be opened).
    file: Mutex<Option<File>>,
    client_id: String,
    version: String,
}

impl Journal {
    /// Opens (creating) the journal in `dir`. A journal that cannot be opened
    /// is reported once and then skipped: the node itself still works.
    pub fn open(dir: &Path, client_id: &str, version: &str) -> Journal {
        let file = OpenOptions::new().create(true).append(true).open(dir.join(FILE_NAME));
        if let Err(e) = &file {
            crate::logger::plain(&format!("cl-node-double: journal unavailable: {e}"));
        }
        Journal {
            file: Mutex::new(file.ok()),
            client_id: client_id.to_string(),
            version: version.to_string(),
        }
    }

    /// Appends one event line; after `unlock`, nothing more.
    pub fn record(&self, event: &str, detail: &str) {
        let line = if detail.is_empty() {
            format!("{} {} {event} {}\n", now_ns(), self.client_id, self.version)
        } else {
            format!("{} {} {event} {} {detail}\n", now_ns(), self.client_id, self.version)
        };
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = guard.as_mut() {
            let _ = f.write_all(line.as_bytes());
        }
        if event == "unlock" {
            *guard = None;
        }
    }
}
