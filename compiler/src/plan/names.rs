//! Lists of object names made short enough to read: fleets name clusters
//! with numbers (`c00000` … `c00199`), so consecutive numbers collapse into
//! one run, and a missing one shows as a gap (`c00000 … c00041, c00043 …`).

use std::collections::BTreeSet;

use crate::object::{Kind, ObjectId};

/// One entry of a compact list: a name, or consecutive numbered names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    One(String),
    /// `first … last`, `count` names (at least 3).
    Range {
        first: String,
        last: String,
        count: usize,
    },
}

/// A name split around its last group of digits: `c00042-workers` is
/// (`c`, 42, `-workers`), with the digits' width kept so `c9` and `c10`
/// are not taken for `c09` and `c10`.
fn split(name: &str) -> Option<(&str, u128, usize, &str)> {
    let end = name.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = name[..end].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
    let digits = &name[start..end];
    let n = digits.parse().ok()?;
    Some((&name[..start], n, digits.len(), &name[end..]))
}

/// Up to this many names are listed one by one; past it, as ranges.
pub const LIST_ALL: usize = 10;

/// The names sorted, every one listed when they are at most [`LIST_ALL`],
/// else with consecutive numbers collapsed into ranges.
pub fn compact<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Run> {
    let keyed = sorted(names);
    if keyed.len() > LIST_ALL {
        return collapse(&keyed);
    }
    keyed.iter().map(|k| Run::One(k.4.to_string())).collect()
}

/// Names with their sort key: prefix, suffix, digits' width, number.
type Keyed<'a> = (&'a str, &'a str, usize, u128, &'a str);

fn sorted<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Keyed<'a>> {
    let mut keyed: Vec<Keyed<'a>> = names
        .into_iter()
        .map(|name| match split(name) {
            Some((prefix, n, width, suffix)) => (prefix, suffix, width, n, name),
            None => (name, "", 0, 0, name),
        })
        .collect();
    keyed.sort();
    keyed
}

/// Sorts the names and collapses runs of 3 or more consecutive numbers.
pub fn runs<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Run> {
    collapse(&sorted(names))
}

fn collapse(keyed: &[Keyed<'_>]) -> Vec<Run> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < keyed.len() {
        let mut j = i;
        while j + 1 < keyed.len() {
            let (a, b) = (&keyed[j], &keyed[j + 1]);
            let next = a.2 > 0 && (a.0, a.1, a.2) == (b.0, b.1, b.2) && a.3.checked_add(1) == Some(b.3);
            if !next {
                break;
            }
            j += 1;
        }
        if j - i >= 2 {
            out.push(Run::Range { first: keyed[i].4.to_string(), last: keyed[j].4.to_string(), count: j - i + 1 });
        } else {
            out.extend(keyed[i..=j].iter().map(|k| Run::One(k.4.to_string())));
        }
        i = j + 1;
    }
    out
}

/// The objects of one kind in a group, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindMembers {
    pub kind: Kind,
    pub count: usize,
    /// The namespaces the objects are in (empty for Namespaces).
    pub namespaces: BTreeSet<String>,
    /// Names, without namespaces (see `namespaces`).
    pub runs: Vec<Run>,
    /// Runs not listed because of `cap`.
    pub more_runs: usize,
    /// Objects in the runs not listed.
    pub more_objects: usize,
}

/// Splits `ids` by kind (in kind order) and lists each kind compactly,
/// with at most `cap` runs per kind when a cap is given.
pub fn by_kind<'a>(ids: impl IntoIterator<Item = &'a ObjectId>, cap: Option<usize>) -> Vec<KindMembers> {
    let ids: Vec<&ObjectId> = ids.into_iter().collect();
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let of_kind: Vec<&ObjectId> = ids.iter().copied().filter(|id| id.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let namespaces: BTreeSet<String> =
            of_kind.iter().filter(|id| !id.namespace.is_empty()).map(|id| id.namespace.clone()).collect();
        let mut runs = compact(of_kind.iter().map(|id| id.name.as_str()));
        let (mut more_runs, mut more_objects) = (0, 0);
        if let Some(cap) = cap.filter(|c| runs.len() > *c) {
            let hidden = runs.split_off(cap);
            more_runs = hidden.len();
            more_objects = hidden.iter().map(Run::count).sum();
        }
        out.push(KindMembers { kind, count: of_kind.len(), namespaces, runs, more_runs, more_objects });
    }
    out
}

impl Run {
    pub fn count(&self) -> usize {
        match self {
            Run::One(_) => 1,
            Run::Range { count, .. } => *count,
        }
    }
}

/// `HostedCluster` → `HostedClusters` when `n` is not 1.
pub fn kind_count(kind: Kind, n: usize) -> String {
    format!("{} {}{}", thousands(n as u64), kind, if n == 1 { "" } else { "s" })
}

/// "200 HostedClusters and 600 NodePools".
pub fn kinds_phrase(members: &[KindMembers]) -> String {
    let parts: Vec<String> = members.iter().map(|m| kind_count(m.kind, m.count)).collect();
    match parts.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Where the objects are: `in clusters`, `in a, b`, `in 21 namespaces`;
/// `name` prints one namespace.
pub fn namespace_note(m: &KindMembers, name: impl Fn(&str) -> String) -> Option<String> {
    match m.namespaces.len() {
        0 => None,
        1..=NAMESPACES_LISTED => {
            Some(format!("in {}", m.namespaces.iter().map(|n| name(n)).collect::<Vec<_>>().join(", ")))
        }
        n => Some(format!("in {n} namespaces")),
    }
}

/// Up to this many namespaces are named.
const NAMESPACES_LISTED: usize = 3;

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1 node" / "2 nodes".
pub fn plural(n: u64, word: &str) -> String {
    format!("{} {word}{}", thousands(n), if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(runs: &[Run]) -> String {
        runs.iter()
            .map(|r| match r {
                Run::One(n) => n.clone(),
                Run::Range { first, last, count } => format!("{first}…{last}({count})"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    #[test]
    fn consecutive_numbers_collapse_and_gaps_show() {
        let names: Vec<String> = (0..200).filter(|i| *i != 42).map(|i| format!("c{i:05}-workers")).collect();
        assert_eq!(
            show(&runs(names.iter().map(String::as_str))),
            "c00000-workers…c00041-workers(42), c00043-workers…c00199-workers(157)"
        );
    }

    #[test]
    fn pools_of_each_kind_make_their_own_runs() {
        let names: Vec<String> =
            (0..3).flat_map(|i| ["gpu", "infra"].map(|p| format!("c{i}-{p}"))).chain(["zeta".into()]).collect();
        assert_eq!(show(&runs(names.iter().map(String::as_str))), "c0-gpu…c2-gpu(3), c0-infra…c2-infra(3), zeta");
    }

    #[test]
    fn two_neighbours_and_different_widths_are_not_ranges() {
        assert_eq!(show(&runs(["a1", "a2", "b"])), "a1, a2, b");
        assert_eq!(show(&runs(["c8", "c9", "c10", "c11"])), "c8, c9, c10, c11");
    }

    #[test]
    fn ten_names_or_fewer_are_all_listed() {
        let ten: Vec<String> = (0..10).map(|i| format!("c{i:02}")).collect();
        assert_eq!(show(&compact(ten.iter().map(String::as_str))), "c00, c01, c02, c03, c04, c05, c06, c07, c08, c09");
        let eleven: Vec<String> = (0..11).map(|i| format!("c{i:02}")).collect();
        assert_eq!(show(&compact(eleven.iter().map(String::as_str))), "c00…c10(11)");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1200), "1,200");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
