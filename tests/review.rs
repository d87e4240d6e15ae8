//! Plans a reviewer reads at fleet scale, end to end against the `dir`
//! target: identical changes grouped, the unusual edit on its own, impact
//! totals, and a markdown comment that stays within its byte budget and
//! renders as intended (checked with a CommonMark parser with GitHub's
//! tables).
//!
//! One generated fleet of 200 clusters is applied once; each test plans an
//! edit of its own copy. Golden files: `tests/snapshots/review__*`
//! (`HCPC_UPDATE_GOLDEN=1` rewrites them).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde_json::Value;

use crate::examples::assert_golden;
use crate::support::{fleet_gen, repo, run_in, stderr, stdout};

const CLUSTERS: usize = 200;
/// GitHub's limit for a comment, in characters.
const GITHUB_COMMENT_CHARS: usize = 65_536;

/// The generated fleet of 200 clusters, applied to its `rendered/` directory.
fn applied() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = repo().join("target/test-review/fleet");
        let _ = std::fs::remove_dir_all(&dir);
        fleet_gen::write_fleet(&dir, CLUSTERS, fleet_gen::PER_FILE).expect("write fleet");
        let o = run_in(&dir, &["apply", "--auto-approve", "-q"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        dir
    })
}

/// A copy of the applied fleet to edit.
fn fleet_copy() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    copy(applied(), tmp.path());
    tmp
}

fn edit(dir: &Path, file: &str, f: impl FnOnce(String) -> String) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = f(text.clone());
    assert_ne!(edited, text, "the edit of {file} changed nothing");
    std::fs::write(path, edited).unwrap();
}

/// `text` with the first `from` after `anchor` replaced by `to`.
fn replace_after(text: &str, anchor: &str, from: &str, to: &str) -> String {
    let start = text.find(anchor).unwrap_or_else(|| panic!("{anchor} not found"));
    let at = start + text[start..].find(from).unwrap_or_else(|| panic!("{from} not found after {anchor}"));
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

fn plan(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    let o = run_in(dir, &all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

fn plan_json(dir: &Path) -> Value {
    serde_json::from_str(&plan(dir, &["--format", "json"])).expect("the JSON plan parses")
}

/// The markdown renders as intended: within `max_bytes` and GitHub's
/// character limit; every fenced code block and `<details>` element is
/// closed (no markup is swallowed by a code block, and the closing line is
/// a paragraph of its own); every table line belongs to a table.
fn assert_renders(md: &str, max_bytes: usize) {
    assert!(md.len() <= max_bytes, "{} bytes, over {max_bytes}", md.len());
    assert!(md.chars().count() <= GITHUB_COMMENT_CHARS);
    let (mut in_code, mut details, mut opened, mut tables, mut rows) = (false, 0i64, 0, 0, 0);
    let mut paragraphs = Vec::new();
    let mut in_paragraph = false;
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                assert!(matches!(kind, CodeBlockKind::Fenced(_)), "an indented code block: {md}");
                in_code = true;
            }
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Text(t) if in_code => {
                for markup in ["<details>", "</details>", "#### ", "**", "Unchanged:"] {
                    assert!(!t.lines().any(|l| l.starts_with(markup)), "a code block swallowed `{markup}`:\n{t}");
                }
            }
            Event::Html(h) | Event::InlineHtml(h) => {
                opened += h.matches("<details>").count();
                details += h.matches("<details>").count() as i64 - h.matches("</details>").count() as i64;
                assert!(details >= 0, "</details> before <details>");
            }
            Event::Start(Tag::Table(_)) => tables += 1,
            Event::Start(Tag::TableRow | Tag::TableHead) => rows += 1,
            Event::Start(Tag::Paragraph) => {
                in_paragraph = true;
                paragraphs.push(String::new());
            }
            Event::End(TagEnd::Paragraph) => in_paragraph = false,
            Event::Text(t) | Event::Code(t) if in_paragraph => {
                if let Some(p) = paragraphs.last_mut() {
                    p.push_str(&t);
                }
            }
            _ => {}
        }
    }
    assert!(!in_code, "a code block is not closed");
    assert_eq!(details, 0, "a <details> element is not closed");
    assert_eq!(opened, md.matches("<details>").count(), "a <details> tag was not parsed as HTML");
    assert_eq!(tables, md.lines().filter(|l| l.starts_with("|---")).count(), "a table did not parse");
    let table_lines = md.lines().filter(|l| l.starts_with("| ") && l.ends_with(" |")).count();
    assert_eq!(rows, table_lines, "a table row did not parse as one");
    let last = paragraphs.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("Unchanged:")
            || last.starts_with("Left out")
            || last.starts_with("Plan:")
            || last.starts_with("No changes"),
        "the closing line is not a paragraph of its own: {last:?}"
    );
}

/// Every distinct field change of an update is printed in the markdown.
fn assert_every_change_visible(md: &str, json: &Value) {
    let show = |v: &Value| match v {
        Value::Null => "(none)".to_string(),
        v => v.to_string(),
    };
    let mut seen = BTreeSet::new();
    for c in json["changes"].as_array().unwrap() {
        if !["update", "replace"].contains(&c["action"].as_str().unwrap()) {
            continue;
        }
        for f in c["fields"].as_array().unwrap() {
            let line = format!("~ {}: {} → {}", f["path"].as_str().unwrap(), show(&f["before"]), show(&f["after"]));
            if seen.insert(line.clone()) {
                assert!(md.contains(&line), "not shown: {line}");
            }
        }
    }
}

fn count(json: &Value, action: &str) -> usize {
    json["changes"].as_array().unwrap().iter().filter(|c| c["action"] == action).count()
}

#[test]
fn a_release_bump_over_200_clusters_reads_as_one_change() {
    let tmp = fleet_copy();
    let dir = tmp.path();
    edit(dir, "00-fleet.kdl", |t| t.replace("4.17.3-multi", "4.17.4-multi"));

    let md = plan(dir, &["--format", "markdown"]);
    assert_renders(&md, 65_000);
    assert_golden("review__release_bump.md", &md);
    // 800 listed changes would be about 100 KB; the grouped change and the
    // capacity table (its GPU rows named as the device plugin names them)
    // about 2 KB.
    assert!(md.len() < 2_200, "one grouped change, not 800: {} bytes", md.len());
    assert!(md.contains("**`~` 200 HostedClusters and 600 NodePools** (rolls 1,200 nodes)"), "{md}");
    assert!(
        md.contains("- **Nodes that will roll:** 1,200 in 200 clusters (6 in each of `c00000` … `c00199`)"),
        "{md}"
    );
    assert!(md.contains("- **Control planes changing release:** 200 ("), "{md}");
    let text = plan(dir, &[]);
    assert_golden("review__release_bump.txt", &text);

    // JSON keeps every object and adds the groups and the totals.
    let json = plan_json(dir);
    assert_every_change_visible(&md, &json);
    assert_eq!(count(&json, "update"), 4 * CLUSTERS);
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["objects"].as_array().unwrap().len(), 4 * CLUSTERS);
    assert_eq!(json["impact"]["nodes_rolling"], 6 * CLUSTERS);
    let per_cluster = json["impact"]["nodes_rolling_by_cluster"].as_object().unwrap();
    assert_eq!(per_cluster.len(), CLUSTERS);
    assert!(per_cluster.values().all(|n| n == 6), "2 + 3 + 1 nodes per cluster");
    assert_eq!(json["impact"]["release_changes"].as_array().unwrap().len(), CLUSTERS);

    // -v lists every object on its own again.
    let verbose = plan(dir, &["-v"]);
    assert_eq!(verbose.matches("  ~ NodePool/").count(), 3 * CLUSTERS);
    assert_eq!(verbose.matches("  ~ HostedCluster/").count(), CLUSTERS);
    let verbose_md = plan(dir, &["-v", "--format", "markdown"]);
    assert_renders(&verbose_md, 65_000);
    assert!(verbose_md.contains("**Left out to stay under 65,000 bytes:**"), "{verbose_md}");
    let unlimited = plan(dir, &["-v", "--format", "markdown", "--max-bytes", "0"]);
    assert!(unlimited.len() > 200_000 && !unlimited.contains("Left out"), "{} bytes", unlimited.len());
    assert_eq!(unlimited.matches("<details>").count(), 4 * CLUSTERS);
}

#[test]
fn one_odd_edit_among_100_identical_ones_stands_out() {
    let tmp = fleet_copy();
    let dir = tmp.path();
    // The first file holds clusters 0 to 99: more memory for every infra pool.
    edit(dir, "clusters-00000.kdl", |t| {
        let t = t.replace("memory \"16Gi\"", "memory \"24Gi\"");
        replace_after(&t, "cluster c00042 {", "cores 4", "cores 6")
    });
    let md = plan(dir, &["--format", "markdown"]);
    assert_renders(&md, 65_000);
    assert_golden("review__odd_edit.md", &md);
    assert_golden("review__odd_edit.txt", &plan(dir, &[]));
    let json = plan_json(dir);
    assert_every_change_visible(&md, &json);
    assert_eq!(count(&json, "update"), 100);
    let shared = md.split("#### Changes to single objects").next().unwrap();
    assert!(shared.contains("**`~` 100 NodePools** (rolls 300 nodes)"), "{md}");
    assert!(shared.contains("- NodePool `c00000-infra` … `c00099-infra`"), "{md}");
    let single = md.split("#### Changes to single objects").nth(1).expect("the odd edit on its own");
    assert!(single.contains("**`~ NodePool/clusters/c00042-infra`** (rolls 3 nodes)"), "{md}");
    assert!(single.contains("~ spec.platform.kubevirt.compute.cores: 4 → 6"), "{md}");
    assert!(!single.contains("c00041"), "only the odd object is on its own: {single}");
}

/// Removes clusters `range` from the configuration after unprotecting
/// them on the target, as an apply with `prevent-destroy #false` would.
fn remove_clusters(dir: &Path, range: std::ops::Range<usize>) {
    for i in range.clone() {
        let name = fleet_gen::cluster_name(i);
        let ns = if i.is_multiple_of(10) { format!("tenant-{:04}", i / 10) } else { "clusters".to_string() };
        edit(&dir.join("rendered").join(ns), &format!("HostedCluster.{name}.yaml"), |t| {
            t.replace("    hcpc.openshift.io/prevent-destroy: \"true\"\n", "")
        });
    }
    edit(dir, "clusters-00001.kdl", |t| {
        let start = t.find(&format!("cluster {} {{", fleet_gen::cluster_name(range.start))).unwrap();
        let end = t.find(&format!("cluster {} {{", fleet_gen::cluster_name(range.end))).unwrap_or(t.len());
        format!("{}{}", &t[..start], &t[end..])
    });
}

fn add_clusters(dir: &Path, range: std::ops::Range<usize>) {
    let mut text = String::new();
    for i in range {
        fleet_gen::cluster_block(i, &mut text);
    }
    std::fs::write(dir.join("clusters-new.kdl"), text).unwrap();
}

/// Ten clusters removed, five added, one pool scaled.
fn mixed(dir: &Path) {
    remove_clusters(dir, 190..200);
    add_clusters(dir, 200..205);
    edit(dir, "clusters-00000.kdl", |t| {
        replace_after(&t, "cluster c00003 {", "workers replicas=2", "workers replicas=5")
    });
}

#[test]
fn creates_and_deletes_are_grouped_by_kind_and_shape() {
    let tmp = fleet_copy();
    let dir = tmp.path();
    mixed(dir);
    let md = plan(dir, &["--format", "markdown"]);
    assert_renders(&md, 65_000);
    assert_golden("review__mixed.md", &md);
    assert_golden("review__mixed.txt", &plan(dir, &[]));
    let json = plan_json(dir);
    assert_every_change_visible(&md, &json);
    // 5 clusters of 7 objects, and the Namespace of c00200.
    assert_eq!(count(&json, "create"), 36);
    assert_eq!(count(&json, "delete"), 70);
    assert!(md.contains("**Plan: 36 to add, 1 to change, 0 to replace, 70 to destroy.**"), "{md}");
    let destroyed: Vec<String> = (190..200).map(|i| format!("`{}`", fleet_gen::cluster_name(i))).collect();
    assert!(
        md.contains(&format!("10 HostedClusters ({})", destroyed.join(", "))),
        "destroyed clusters, each named: {md}"
    );
    assert!(md.contains("**`+` 5 HostedClusters**"), "{md}");
    // One representative list of the shared values, the differing ones per object.
    assert_eq!(md.matches("spec.platform.kubevirt.storageDriver.type = \"Manual\"").count(), 1, "{md}");
    assert!(md.contains("| `tenant-0020/c00200` | `\"cc-200\"` |"), "{md}");
    // Each created or deleted object is in exactly one group.
    let mut grouped = BTreeSet::new();
    for g in json["groups"].as_array().unwrap().iter().filter(|g| g["action"] != "update") {
        for id in g["objects"].as_array().unwrap() {
            assert!(grouped.insert(id.to_string()), "{id} in two groups");
        }
    }
    assert_eq!(grouped.len(), 36 + 70);
}

#[test]
fn the_markdown_budget_boundary() {
    let tmp = fleet_copy();
    let dir = tmp.path();
    mixed(dir);
    // The size of the whole comment (the same pieces as under any budget).
    let whole = plan(dir, &["--format", "markdown", "--max-bytes", "100000000"]);
    let size = whole.len();
    assert!(size > 5_000 && size < 65_000, "{size}");
    let just_fits = plan(dir, &["--format", "markdown", "--max-bytes", &size.to_string()]);
    assert_eq!(just_fits, whole, "a comment of exactly the budget is printed whole");
    assert_golden("review__budget_fits.md", &just_fits);

    let over = plan(dir, &["--format", "markdown", "--max-bytes", &(size - 1).to_string()]);
    assert_renders(&over, size - 1);
    assert_golden("review__budget_over.md", &over);
    assert!(over.contains("**Left out to stay under"), "{over}");
    assert!(over.contains("`hcpc plan --format markdown --max-bytes 0`"), "{over}");
    // The summary, totals and shared changes come first and stay.
    let head = whole.split("#### Changes to single objects").next().unwrap();
    assert!(over.starts_with(head), "the summary and groups are kept whole");

    // A small budget keeps the summary and the totals.
    let small = plan(dir, &["--format", "markdown", "--max-bytes", "2000"]);
    assert_renders(&small, 2_000);
    assert!(small.contains("- **Destroys:** ") && small.contains("Left out"), "{small}");

    let o = run_in(dir, &["plan", "--format", "markdown", "--max-bytes", "100"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("too small to hold the plan's summary"), "{}", stderr(&o));
    let o = run_in(dir, &["plan", "--max-bytes", "5000"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--format markdown only"), "{}", stderr(&o));
}

/// The text of every inline code span.
fn code_spans(md: &str) -> Vec<String> {
    Parser::new_ext(md, Options::ENABLE_TABLES)
        .filter_map(|e| match e {
            Event::Code(c) => Some(c.to_string()),
            _ => None,
        })
        .collect()
}

/// Values that look like markup (backticks, `|`, HTML) stay text, in code
/// blocks, in code spans and in table cells.
#[test]
fn markup_in_values_is_escaped() {
    const WEIRD: &str = "``` </details> |x| <b>";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet_gen::write_secrets(dir).unwrap();
    let cluster = |name: &str, note: &str, release: &str| {
        format!(
            "cluster {name} {{\n    annotations \"example.com/note\"=\"{note}\"\n    release \"{release}\"\n    node-pool w replicas=1\n}}\n"
        )
    };
    let head = "target dir \"out\"\ndefaults {\n    pull-secret file=\"secrets/pull-secret.json\"\n}\n";
    let first = format!("{head}{}{}", cluster("a", "v1", "q.io/r:1"), cluster("b", "v1", "q.io/r:1"));
    std::fs::write(dir.join("fleet.kdl"), first).unwrap();
    assert_eq!(run_in(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    // (A release cannot carry markup: `check` refuses it.)
    let mut next = format!("{head}{}{}", cluster("a", WEIRD, "q.io/r:1"), cluster("b", WEIRD, "q.io/r:2"));
    for (name, note) in [("c", "1|2"), ("d", "`3`"), ("e", "<i>4</i>")] {
        next.push_str(&cluster(name, note, "q.io/r:1"));
    }
    std::fs::write(dir.join("fleet.kdl"), next).unwrap();
    let md = plan(dir, &["--format", "markdown"]);
    assert_renders(&md, 65_000);
    assert_golden("review__markup.md", &md);
    assert!(
        md.contains(
            "````diff\n~ metadata.annotations[\"example.com/note\"]: \"v1\" → \"``` </details> |x| <b>\"\n````"
        ),
        "{md}"
    );
    let spans = code_spans(&md);
    for note in ["1|2", "`3`", "<i>4</i>"] {
        let value = serde_json::to_string(note).unwrap();
        assert!(spans.contains(&value), "{value} is not one intact code span: {spans:?}");
    }
}
