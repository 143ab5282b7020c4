//! Plain-text tables for people.

use crate::members::Member;
use crate::time::human_duration;

/// The members as a table (with a HOST column when they run on two engines).
pub fn member_table(members: &[Member]) -> String {
    {
        let split = members.iter().any(|m| m.host != members[0].host);
        let mut rows = vec![
            vec![
                "NAME", "ROLE", "IMAGE", "VERSION", "STATE", "PORT", "LOCK", "HEALTH", "UPTIME",
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
        ];
        if split {
            rows[0].insert(0, "HOST".into());
        }
        for m in members {
            let mut row = vec![
                m.name.clone(),
                m.role.clone(),
                m.image.clone(),
                m.version.clone().unwrap_or_else(|| "?".into()),
                m.state.clone(),
                m.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                m.lock.word().to_string(),
                m.docker_health.clone().unwrap_or_else(|| "-".into()),
                m.uptime_s.map(human_duration).unwrap_or_else(|| "-".into()),
            ];
            if split {
                row.insert(0, m.host.clone());
            }
            rows.push(row);
        }
        if members.is_empty() {
            String::new()
        } else {
            table(&rows)
        }
    }
}

/// Left-aligned columns, two spaces apart.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::LockRole;
    use crate::members::member::sample;

    #[test]
    fn the_table_has_a_host_column_only_for_two_hosts() {
        let mut b = sample("secondary", "secondary", LockRole::Waiting);
        let one = member_table(&[sample("primary", "chainlink", LockRole::Holding), b.clone()]);
        assert!(one.starts_with("NAME"), "{one}");
        b.host = "tcp://10.0.0.2:2376".into();
        let two = member_table(&[sample("primary", "chainlink", LockRole::Holding), b]);
        assert!(two.starts_with("HOST"), "{two}");
    }
}
