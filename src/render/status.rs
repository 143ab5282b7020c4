//! `cl-maint status` for people (a table of the members) and for programs
//! (JSON).

use crate::pair::status::Status;
use crate::render::table::member_table;

impl Status {
    /// One JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A table for people.
    pub fn to_human(&self) -> String {
        let mut out = member_table(&self.members);
        if self
            .members
            .iter()
            .any(|m| m.waiting() && m.docker_health.as_deref() == Some("unhealthy"))
        {
            out.push_str("(a member waiting for the lock is \"unhealthy\" to Docker by design: its health check asks its HTTP port)\n");
        }
        out.push_str(&format!("{}\n", self.summary));
        if let Some(run) = &self.run_in_progress {
            out.push_str(&format!("a cl-maint run is in progress: {}\n", run.describe()));
        }
        for s in &self.next_steps {
            out.push_str(&format!("  next: {s}\n"));
        }
        out
    }
}
