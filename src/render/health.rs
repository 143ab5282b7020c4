//! `cl-maint health` for people (the holder's checks and chosen metrics as
//! tables) and for programs (JSON).

use crate::pair::health::HealthReport;
use crate::render::table::table;

impl HealthReport {
    /// One JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Tables for people.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        if !self.checks.is_empty() {
            let mut rows = vec![vec!["CHECK".to_string(), "STATUS".into(), "OUTPUT".into()]];
            for c in &self.checks {
                let status = if c.passing { "passing" } else { "FAILING" };
                rows.push(vec![c.name.clone(), status.into(), c.output.clone()]);
            }
            out.push_str(&table(&rows));
        }
        if let Some(metrics) = &self.metrics {
            let mut rows = vec![vec!["METRIC".to_string(), "VALUE".into()]];
            for s in metrics {
                rows.push(vec![format!("{}{}", s.name, s.labels), s.value.clone()]);
            }
            out.push_str(&table(&rows));
            for m in &self.metrics_missing {
                out.push_str(&format!("(the node exports no metric {m})\n"));
            }
        }
        out.push_str(&format!("{}\n", self.summary));
        for s in &self.next_steps {
            out.push_str(&format!("  next: {s}\n"));
        }
        out
    }
}
