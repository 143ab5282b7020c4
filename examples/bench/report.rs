//! What the benchmark prints of its samples: per kind and generation, the
//! table of every method, cl-maint's phases, the baselines' failures, the
//! ratios, and the verdict on each of the targets.

use std::fmt::Write as _;

use crate::Gen;
use crate::stats::{self, Kind, Method, Sample, Summary};

/// The tables, phases, failures, ratios and target verdicts of one kind,
/// per generation, in Markdown.
pub fn report(samples: &[Sample], kind: Kind, gens: &[Gen], methods: &[Method]) -> String {
    let mut out = String::new();
    for &generation in gens {
        let group = |m: Method| {
            samples
                .iter()
                .filter(move |s| s.kind == kind && s.generation == generation && s.method == m)
        };
        if samples.iter().all(|s| s.kind != kind || s.generation != generation) {
            continue;
        }
        let _ = writeln!(out, "\n### {} era, {}\n", generation.env(), kind.label());
        let rows: Vec<(Method, Summary)> = methods.iter().map(|&m| (m, Summary::of(group(m)))).collect();
        out.push_str(&stats::table(kind, &rows));
        out.push('\n');
        for &m in methods {
            let ok: Vec<&Sample> = group(m).filter(|s| s.error.is_none()).collect();
            let _ = writeln!(out, "- {} phases (p50): {}", m.label(kind), stats::phases(&ok));
        }
        for &m in methods {
            let mut reasons: Vec<(String, usize)> = Vec::new();
            for e in group(m).filter_map(|s| s.error.as_ref()) {
                match reasons.iter_mut().find(|(r, _)| r == e) {
                    Some((_, n)) => *n += 1,
                    None => reasons.push((e.clone(), 1)),
                }
            }
            for (reason, n) in reasons {
                let _ = writeln!(out, "- {} failed {n}×: {reason}", m.label(kind));
            }
        }
        let find = |m: Method| rows.iter().find(|(x, _)| *x == m).map(|(_, s)| s);
        let Some(clm) = find(Method::ClMaint) else { continue };
        for other in [Method::Manual, Method::Recreate] {
            if let Some(o) = find(other) {
                let _ = writeln!(
                    out,
                    "- cl-maint / {}: gap {} (p50), total {} (p50)",
                    other.label(kind),
                    stats::ratio(&clm.gaps, &o.gaps),
                    stats::ratio(&clm.totals, &o.totals)
                );
            }
        }
        out.push_str(&targets(
            generation,
            kind,
            clm,
            find(Method::Manual),
            find(Method::Recreate),
        ));
    }
    out
}

/// The verdict on each of the targets for cl-maint's figures, one
/// Markdown list item a line.
pub fn targets(
    generation: Gen,
    kind: Kind,
    clm: &Summary,
    manual: Option<&Summary>,
    recreate: Option<&Summary>,
) -> String {
    let mut out = String::new();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let bound = (generation.retry() + generation.boot()).as_secs_f64() * 1000.0 + 50.0;
    let gap_max = clm.gaps.iter().copied().fold(0.0, f64::max);
    let _ = writeln!(
        out,
        "- target gap ≤ retry {} ms + boot {} ms + 50 ms = {bound:.0} ms: max {gap_max:.0} ms, {}",
        generation.retry().as_millis(),
        generation.boot().as_millis(),
        verdict(gap_max <= bound && !clm.gaps.is_empty())
    );
    let over_max = clm.overhead.iter().copied().fold(0.0, f64::max);
    let per = match kind {
        Kind::Upgrade => "per upgrade",
        Kind::Switchover => "per switchover (the round trip's two commands)",
    };
    let _ = writeln!(
        out,
        "- target overhead ≤ 1 s {per}: p50 {:.2} s, max {:.2} s, {}",
        stats::percentile(&clm.overhead, 50.0) / 1000.0,
        over_max / 1000.0,
        verdict(over_max <= 1000.0 && !clm.overhead.is_empty())
    );
    let _ = writeln!(out, "- overlaps: {}, {}", clm.overlaps, verdict(clm.overlaps == 0));
    let p50 = |v: &[f64]| stats::percentile(v, 50.0);
    if let Some(m) = manual {
        if m.ok == 0 {
            let _ = writeln!(
                out,
                "- target beats the manual procedure on gap and total: not comparable, the manual procedure failed in all {} runs",
                m.failed
            );
        } else {
            let (gap, manual_gap) = (p50(&clm.gaps), p50(&m.gaps));
            let (total, manual_total) = (p50(&clm.totals), p50(&m.totals));
            let ok = gap < manual_gap && total < manual_total;
            let caveat = if m.failed > 0 {
                format!(
                    " (against the {} of {} manual runs that finished)",
                    m.ok,
                    m.ok + m.failed
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "- target beats the manual procedure on gap and total: gap {:.0} against {:.0} ms, total {:.2} against {:.2} s (p50){caveat}, {}",
                gap,
                manual_gap,
                total / 1000.0,
                manual_total / 1000.0,
                verdict(ok)
            );
        }
    }
    if let Some(r) = recreate {
        let ok = p50(&clm.gaps) < p50(&r.gaps);
        let _ = writeln!(
            out,
            "- target gap a fraction of {}'s: {}, {}",
            Method::Recreate.label(kind),
            stats::ratio(&clm.gaps, &r.gaps),
            verdict(ok)
        );
    }
    out
}
