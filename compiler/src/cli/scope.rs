//! `--cluster NAME|GLOB` on `plan` and `apply`: a plan limited to some
//! clusters' objects. The fleet is compiled, locked and read whole; only
//! what is diffed (and so shown, dry-run, written and pruned) is limited.
//! Like Terraform's `-target`, it is for exceptions: the plan says so at
//! its top.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::object::{Kind, LiveObject};
use crate::render::DesiredObject;
use hcpc_schema::labels;

/// Whether `name` matches `pattern`: `*` any run of characters, `?` any
/// one character, everything else itself.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Greedy with backtracking to the last `*`: linear in practice.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(c) if *c == '?' || *c == n[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// The cluster an object belongs to, by hcpc's cluster label.
fn cluster_of(live: &LiveObject) -> Option<&str> {
    live.body.pointer("/metadata/labels").and_then(|m| m.get(labels::CLUSTER)).and_then(Value::as_str)
}

/// Every cluster name the fleet knows on one target: declared, or live in
/// its ApplySet (a cluster no longer declared can still be limited to, so
/// that it alone is destroyed).
pub fn known<'a>(desired: &'a [DesiredObject], live: &'a [LiveObject]) -> impl Iterator<Item = &'a str> {
    desired.iter().filter_map(|o| o.cluster.as_deref()).chain(live.iter().filter_map(cluster_of))
}

/// The clusters `patterns` select among `known`, or why not: a pattern
/// that matches nothing is an error, with the closest name.
pub fn select(patterns: &[String], known: &BTreeSet<String>) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for p in patterns {
        let hits: Vec<&String> = known.iter().filter(|k| matches(p, k)).collect();
        if hits.is_empty() {
            let help = match crate::diagnostic::closest(p, known.iter().map(String::as_str)) {
                Some(c) => format!("did you mean `{c}`?"),
                None if known.is_empty() => "the fleet has no clusters".to_string(),
                None => format!("the fleet's clusters are {}", list(known.iter().map(String::as_str), 8)),
            };
            return Err(format!(
                "error: --cluster `{p}` matches no cluster of the fleet; nothing was planned\n  help: {help}"
            ));
        }
        out.extend(hits.into_iter().cloned());
    }
    Ok(out)
}

/// The objects of the selected clusters: desired objects they declare
/// (and the Namespaces those live in), live objects labelled as theirs
/// or desired by them. Anything else is neither diffed nor pruned.
pub fn restrict(
    desired: &[DesiredObject],
    live: &[LiveObject],
    clusters: &BTreeSet<String>,
) -> (Vec<DesiredObject>, Vec<LiveObject>) {
    let selected = |c: Option<&str>| c.is_some_and(|c| clusters.contains(c));
    let namespaces: BTreeSet<&str> =
        desired.iter().filter(|o| selected(o.cluster.as_deref())).map(|o| o.id.namespace.as_str()).collect();
    let kept: Vec<DesiredObject> = desired
        .iter()
        .filter(|o| {
            selected(o.cluster.as_deref())
                || (o.cluster.is_none() && o.id.kind == Kind::Namespace && namespaces.contains(o.id.name.as_str()))
        })
        .cloned()
        .collect();
    let ids: BTreeSet<_> = kept.iter().map(|o| &o.id).collect();
    let live = live.iter().filter(|l| selected(cluster_of(l)) || ids.contains(&l.id)).cloned().collect();
    (kept, live)
}

/// What the fleet requests once a limited plan is applied: the selected
/// clusters as configured, every other cluster as it is live (its pending
/// changes are not applied). `limited_live`: what [`restrict`] kept.
pub fn demand_after(
    fleet: &crate::ir::Fleet,
    live: &[LiveObject],
    limited_live: &[LiveObject],
    clusters: &BTreeSet<String>,
) -> crate::resolve::capacity::demand::Demand {
    let selected = crate::ir::Fleet {
        clusters: fleet.clusters.iter().filter(|c| clusters.contains(&c.name.value)).cloned().collect(),
        ..fleet.clone()
    };
    let mut demand = crate::resolve::capacity::demand::Demand::of_fleet(&selected);
    let kept: BTreeSet<_> = limited_live.iter().map(|l| &l.id).collect();
    let others: Vec<&Value> = live.iter().filter(|l| !kept.contains(&l.id)).map(|l| &l.body).collect();
    let rest = crate::resolve::capacity::demand::Demand::of_objects(&others, fleet);
    demand.pools.extend(rest.pools);
    demand.control_planes.extend(rest.control_planes);
    demand
}

/// `a, b, c and 4 more`.
fn list<'a>(names: impl Iterator<Item = &'a str>, most: usize) -> String {
    let names: Vec<&str> = names.collect();
    if names.len() <= most {
        return names.join(", ");
    }
    format!("{} and {} more", names[..most].join(", "), names.len() - most)
}

/// The warning at the top of a limited plan, in text (`markdown`: as a
/// quoted paragraph); empty when the plan is not limited.
pub fn banner(clusters: &[String], markdown: bool) -> String {
    if clusters.is_empty() {
        return String::new();
    }
    let n = clusters.len();
    let names = list(clusters.iter().map(String::as_str), 10);
    let head = format!("Limited to {n} cluster{} (--cluster): {names}.", if n == 1 { "" } else { "s" });
    let body = "Changes to the fleet's other clusters are not shown, checked or applied, and their objects are never pruned. \
                Limit a plan only for exceptions, such as recovering one cluster; plan the whole fleet before and after.";
    if markdown { format!("> **Warning:** {head} {body}\n\n") } else { format!("Warning: {head}\n  {body}\n\n") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("prod-*", "prod-a"));
        assert!(matches("prod-*", "prod-"));
        assert!(!matches("prod-*", "staging-a"));
        assert!(matches("*-gpu", "prod-eu-gpu"));
        assert!(matches("p?od-*-gpu", "prod-eu-gpu"));
        assert!(!matches("prod", "prod-a"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("*", "anything"));
    }

    #[test]
    fn a_pattern_matching_nothing_names_the_closest_cluster() {
        let known: BTreeSet<String> = ["prod-a", "prod-b", "staging"].map(String::from).into();
        assert_eq!(select(&["prod-*".into()], &known).unwrap().len(), 2);
        let e = select(&["prod-c".into(), "prdo-a".into()], &known).unwrap_err();
        assert!(e.contains("`prod-c` matches no cluster") && e.contains("did you mean `prod-a`?"), "{e}");
        let e = select(&["xyzzy-*".into()], &known).unwrap_err();
        assert!(e.contains("the fleet's clusters are prod-a, prod-b, staging"), "{e}");
    }
}
