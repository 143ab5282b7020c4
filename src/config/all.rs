//! `cl-maint upgrade --all`: every node of the config file, one after
//! another, stopping at the first failure; one combined report whose exit
//! code is the first failure's (or 0).

use serde::Serialize;

use crate::report::Report;

/// One node's part of the combined report.
#[derive(Clone, Debug, Serialize)]
pub struct NodeRun {
    /// The node's name in the file.
    pub node: String,
    /// Its container.
    pub container: String,
    /// `upgraded`, `up-to-date`, … from its report, or `skipped` when an
    /// earlier node failed.
    pub outcome: String,
    /// Its exit code (`null` when skipped).
    pub exit_code: Option<i32>,
    /// Its whole report (`null` when skipped).
    pub report: Option<Report>,
}

/// The combined report.
#[derive(Clone, Debug, Serialize)]
pub struct AllReport {
    /// `upgrade --all`.
    pub command: String,
    /// The first failure's exit code, or 0.
    pub exit_code: i32,
    /// The node whose upgrade failed, if one did.
    pub failed_node: Option<String>,
    /// Each node in order.
    pub nodes: Vec<NodeRun>,
}

impl AllReport {
    /// A report for `nodes` (name, container), none run yet.
    pub fn new(nodes: &[(String, String)]) -> AllReport {
        AllReport {
            command: "upgrade --all".to_string(),
            exit_code: crate::exit::OK,
            failed_node: None,
            nodes: nodes
                .iter()
                .map(|(node, container)| NodeRun {
                    node: node.clone(),
                    container: container.clone(),
                    outcome: "skipped".to_string(),
                    exit_code: None,
                    report: None,
                })
                .collect(),
        }
    }

    /// Records node `index`'s report; returns whether to go on (it did not fail).
    pub fn record(&mut self, index: usize, report: Report) -> bool {
        let ok = report.exit_code == crate::exit::OK;
        if let Some(run) = self.nodes.get_mut(index) {
            run.outcome = serde_json::to_value(report.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            run.exit_code = Some(report.exit_code);
            if !ok && self.failed_node.is_none() {
                self.exit_code = report.exit_code;
                self.failed_node = Some(run.node.clone());
            }
            run.report = Some(report);
        }
        ok
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise the report: {e}\"}}"))
    }

    /// The human text: a summary line, one line a node, then each report.
    pub fn to_human(&self) -> String {
        let done = self
            .nodes
            .iter()
            .filter(|n| n.exit_code == Some(crate::exit::OK))
            .count();
        let mut out = match &self.failed_node {
            None => format!("upgrade --all: {done} of {} nodes done\n", self.nodes.len()),
            Some(node) => format!(
                "upgrade --all: FAILED at node {node}; {done} of {} nodes done, the rest not touched\n",
                self.nodes.len()
            ),
        };
        for n in &self.nodes {
            out.push_str(&format!("  {:<20} {:<24} {}\n", n.node, n.container, n.outcome));
        }
        for n in self.nodes.iter().filter(|n| n.report.is_some()) {
            out.push_str(&format!("\n[{}]\n", n.node));
            if let Some(report) = &n.report {
                out.push_str(&report.to_human());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Outcome;

    #[test]
    fn stops_at_the_first_failure_and_takes_its_code() {
        let nodes = [
            ("a".to_string(), "ca".to_string()),
            ("b".to_string(), "cb".to_string()),
            ("c".to_string(), "cc".to_string()),
        ];
        let mut all = AllReport::new(&nodes);
        assert!(all.record(0, Report::new("upgrade", "ca", Outcome::Upgraded)));
        assert!(!all.record(1, Report::new("upgrade", "cb", Outcome::PullFailed)));
        assert_eq!(all.exit_code, crate::exit::PULL_FAILED);
        assert_eq!(all.failed_node.as_deref(), Some("b"));
        let json: serde_json::Value = serde_json::from_str(&all.to_json()).unwrap();
        assert_eq!(json["nodes"][0]["outcome"], "upgraded");
        assert_eq!(json["nodes"][1]["outcome"], "pull-failed");
        assert_eq!(json["nodes"][2]["outcome"], "skipped");
        assert!(json["nodes"][2]["report"].is_null());
        let text = all.to_human();
        assert!(
            text.starts_with("upgrade --all: FAILED at node b; 1 of 3 nodes done"),
            "{text}"
        );
    }
}
