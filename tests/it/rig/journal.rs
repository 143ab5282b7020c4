//! Reads the double's heartbeat journal into figures: who held the lock when,
//! each handoff's unavailability, and any overlap (two holders at once).
//!
//! Line format (see `double/src/journal.rs`):
//! `<unix_ns> <client_id> <event> <version> [detail]`.

use std::collections::BTreeMap;
use std::path::Path;

/// The journal's file name in the volume directory.
pub const FILE_NAME: &str = "cl-double-journal.log";

/// One process's time holding the lock.
#[derive(Clone, Debug)]
pub struct Tenure {
    /// The process's client id.
    pub client: String,
    /// Its version.
    pub version: String,
    /// When it took the lock.
    pub lock_ns: u128,
    /// When its real HTTP server came up (None if it never did).
    pub serve_ns: Option<u128>,
    /// The last moment it was known to serve (its `unserve`, else its last beat).
    pub last_serving_ns: Option<u128>,
    /// The last moment it was known to hold the lock (`unlock`, else its last event).
    pub end_ns: u128,
    /// Whether it released the lock itself (`unlock` written).
    pub released: bool,
    /// The latest lease expiry it recorded (lease era).
    pub lease_expiry_ns: Option<u128>,
}

/// Two tenures that overlapped.
#[derive(Clone, Debug)]
#[expect(dead_code, reason = "read through Debug in assertion messages")]
pub struct Overlap {
    /// The earlier holder.
    pub first: String,
    /// The later holder.
    pub second: String,
    /// For how long both held the lock.
    pub overlap_ms: f64,
}

/// One handoff: from a holder that stopped serving to the next that served.
#[derive(Clone, Debug)]
pub struct Handoff {
    /// The version handing over.
    pub from_version: String,
    /// The version taking over.
    pub to_version: String,
    /// Time with no node serving.
    pub gap_ms: f64,
}

/// Everything the journal says.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Tenures in the order the lock was taken.
    pub tenures: Vec<Tenure>,
    /// Every pair of tenures that overlapped (must be empty).
    pub overlaps: Vec<Overlap>,
    /// Each handoff between consecutive serving tenures.
    pub handoffs: Vec<Handoff>,
}

/// Reads the journal in `dir` (an absent journal has no tenures).
pub fn read(dir: &Path) -> Figures {
    let text = std::fs::read_to_string(dir.join(FILE_NAME)).unwrap_or_default();
    figures(&text)
}

/// Computes the figures from the journal's text.
pub fn figures(text: &str) -> Figures {
    let mut by_client: BTreeMap<String, Tenure> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(ts), Some(client), Some(event), Some(version)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(ts) = ts.parse::<u128>() else { continue };
        let detail = parts.next().unwrap_or_default();
        let tenure = by_client.entry(client.to_string()).or_insert_with(|| Tenure {
            client: client.to_string(),
            version: version.to_string(),
            lock_ns: ts,
            serve_ns: None,
            last_serving_ns: None,
            end_ns: ts,
            released: false,
            lease_expiry_ns: None,
        });
        tenure.end_ns = tenure.end_ns.max(ts);
        match event {
            "lock" => tenure.lock_ns = ts,
            "serve" => {
                tenure.serve_ns = Some(ts);
                tenure.last_serving_ns = Some(ts);
            }
            "beat" | "unserve" => tenure.last_serving_ns = Some(ts),
            "renew" => tenure.lease_expiry_ns = detail.parse().ok(),
            "unlock" => tenure.released = true,
            _ => {}
        }
    }
    let mut tenures: Vec<Tenure> = by_client.into_values().collect();
    tenures.sort_by_key(|t| t.lock_ns);
    let mut overlaps = Vec::new();
    for (i, a) in tenures.iter().enumerate() {
        for b in &tenures[i + 1..] {
            if b.lock_ns < a.end_ns && a.lock_ns < b.end_ns {
                let both = a.end_ns.min(b.end_ns) - a.lock_ns.max(b.lock_ns);
                overlaps.push(Overlap {
                    first: a.client.clone(),
                    second: b.client.clone(),
                    overlap_ms: both as f64 / 1e6,
                });
            }
        }
    }
    let serving: Vec<&Tenure> = tenures.iter().filter(|t| t.serve_ns.is_some()).collect();
    let handoffs = serving
        .windows(2)
        .map(|w| Handoff {
            from_version: w[0].version.clone(),
            to_version: w[1].version.clone(),
            gap_ms: (w[1].serve_ns.unwrap_or_default() as f64 - w[0].last_serving_ns.unwrap_or_default() as f64) / 1e6,
        })
        .collect();
    Figures {
        tenures,
        overlaps,
        handoffs,
    }
}

impl Figures {
    /// Asserts that no two nodes ever held the lock at once and that every
    /// handoff left no node serving for at most `bound`; returns the figures.
    pub fn assert_safe(self, bound: std::time::Duration) -> Figures {
        assert!(self.overlaps.is_empty(), "two holders at once: {:?}", self.overlaps);
        let bound_ms = bound.as_secs_f64() * 1000.0;
        for h in &self.handoffs {
            assert!(
                h.gap_ms <= bound_ms,
                "handoff gap {:.0} ms > retry + boot + margin = {bound_ms:.0} ms: {self:?}",
                h.gap_ms
            );
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_tenures_give_one_handoff_and_no_overlap() {
        let text = "\
1000000000 a lock 1.0.0
1100000000 a serve 1.0.0
1200000000 a beat 1.0.0
1300000000 a unserve 1.0.0
1300000001 a unlock 1.0.0
1350000000 b lock 1.1.0
1400000000 b renew 1.1.0 11350000000
1700000000 b serve 1.1.0
1710000000 b beat 1.1.0
";
        let f = figures(text);
        assert_eq!(f.tenures.len(), 2);
        assert!(f.overlaps.is_empty());
        assert_eq!(f.handoffs.len(), 1);
        assert!((f.handoffs[0].gap_ms - 400.0).abs() < 1e-6);
        assert_eq!(f.tenures[1].lease_expiry_ns, Some(11_350_000_000));
        assert!(f.tenures[0].released && !f.tenures[1].released);
    }

    #[test]
    fn concurrent_holders_are_an_overlap() {
        let text = "\
1000000000 a lock 1.0.0
1100000000 a serve 1.0.0
1500000000 b lock 1.1.0
1600000000 a beat 1.0.0
1700000000 b serve 1.1.0
";
        let f = figures(text);
        assert_eq!(f.overlaps.len(), 1);
        assert!((f.overlaps[0].overlap_ms - 100.0).abs() < 1e-6);
    }
}
