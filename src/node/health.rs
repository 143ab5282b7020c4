//! The node's `/health` document (JSON:API):
//! `{"data":[{"type":"checks","id":N,"attributes":{"name":N,"status":"passing"|"failing","output":T}}]}`.

use serde::{Deserialize, Serialize};

/// One health check as the node reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// The check's name, such as `EVM.1.HeadTracker`.
    pub name: String,
    /// Whether the node reports it as passing.
    pub passing: bool,
    /// The node's explanation (empty when passing).
    pub output: String,
}

#[derive(Deserialize)]
struct Doc {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    attributes: Attributes,
}

#[derive(Deserialize)]
struct Attributes {
    #[serde(default)]
    name: Option<String>,
    status: String,
    #[serde(default)]
    output: String,
}

/// Parses a `/health` body into checks, failing ones first, then by name.
pub fn parse(body: &str) -> Result<Vec<Check>, serde_json::Error> {
    let doc: Doc = serde_json::from_str(body)?;
    let mut checks: Vec<Check> = doc
        .data
        .into_iter()
        .map(|i| Check {
            name: i.attributes.name.unwrap_or(i.id),
            passing: i.attributes.status == "passing",
            output: i.attributes.output,
        })
        .collect();
    checks.sort_by(|a, b| a.passing.cmp(&b.passing).then_with(|| a.name.cmp(&b.name)));
    Ok(checks)
}

/// Whether an HTTP status from `/health` means the node holds the database
/// lock: 200 (all passing), 207 (some failing, v2.9+), 503 (some failing,
/// before v2.9) and 204 (migrations running right after taking the lock,
/// v2.15+). A node waiting for the lock serves no HTTP at all.
pub fn status_means_holding(status: u16) -> bool {
    matches!(status, 200 | 204 | 207 | 503)
}

/// Whether an HTTP status from `/health` means the node's real server is up
/// (holding the lock and past migrations): 200, 207 or (before v2.9) 503.
pub fn status_means_serving(status: u16) -> bool {
    matches!(status, 200 | 207 | 503)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_failing_first() {
        let body = r#"{"data":[
          {"type":"checks","id":"A","attributes":{"name":"A","status":"passing","output":""}},
          {"type":"checks","id":"B","attributes":{"name":"B","status":"failing","output":"down"}}]}"#;
        let checks = parse(body).unwrap();
        assert_eq!(checks[0].name, "B");
        assert!(!checks[0].passing);
        assert_eq!(checks[0].output, "down");
        assert!(checks[1].passing);
    }

    #[test]
    fn holding_statuses() {
        for s in [200, 204, 207, 503] {
            assert!(status_means_holding(s));
        }
        for s in [0, 404, 401, 500] {
            assert!(!status_means_holding(s));
        }
    }
}
