//! Robustness properties of the compiler front to back:
//!
//! - no input, however malformed, makes `compile_sources` panic;
//! - every diagnostic about a malformed file points inside that file and
//!   says how to fix it;
//! - rendering the same input twice gives the same bytes;
//! - a rendered fleet never holds two objects with one (kind, namespace, name).
//!
//! Case counts are kept small so `cargo test` stays quick; set
//! `HCPC_ROBUSTNESS_CASES=N` to run N cases of every property.
//! Inputs that once crashed the fuzz target (`compiler/fuzz/`) are kept
//! here as plain regression tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hcpc::cli::load::{Compiled, compile_sources};
use hcpc::cli::printer::{github_line, render_human};
use hcpc::render::{masked, yaml};
use hcpc::source::SourceMap;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use crate::support::{fleet_gen, repo};

/// Cases per property: `default`, unless `HCPC_ROBUSTNESS_CASES` says otherwise.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("HCPC_ROBUSTNESS_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// A directory with the secrets generated fleets refer to; fleets are
/// compiled as if their files lived in it (only the secrets are written).
fn fleet_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = repo().join("target/test-robustness");
        fleet_gen::write_secrets(&dir).expect("write secrets");
        dir
    })
}

fn compile_files(files: &[(PathBuf, String)]) -> Compiled {
    let mut sources = SourceMap::default();
    for (path, text) in files {
        sources.add(path.clone(), text.clone());
    }
    compile_sources(sources)
}

fn compile_one(path: &Path, text: &str) -> Compiled {
    compile_files(&[(path.to_path_buf(), text.to_string())])
}

/// A generated fleet as in-memory files.
fn generated(clusters: usize, per_file: usize) -> Vec<(PathBuf, String)> {
    fleet_gen::fleet_files(clusters, per_file).into_iter().map(|(name, text)| (fleet_dir().join(name), text)).collect()
}

/// Every diagnostic has a primary span inside its file's text, on character
/// boundaries, and a non-empty help line; every label points inside its
/// file; and each of the CLI's diagnostic formats can draw it.
fn diagnostics_well_formed(c: &Compiled) -> Result<(), TestCaseError> {
    for d in c.diags.iter() {
        let primary = d.primary_span();
        prop_assert!(primary.is_some(), "{} has no primary span: {d:?}", d.code);
        for label in &d.labels {
            let s = label.span;
            prop_assert!((s.file.0 as usize) < c.sources.len(), "{} points at an unknown file: {d:?}", d.code);
            let text = &c.sources.get(s.file).text;
            let end = s.offset.checked_add(s.len);
            prop_assert!(end.is_some_and(|e| e <= text.len()), "{} span {s:?} is outside the file: {d:?}", d.code);
            prop_assert!(
                text.is_char_boundary(s.offset) && text.is_char_boundary(s.offset + s.len),
                "{} span {s:?} splits a character: {d:?}",
                d.code
            );
        }
        prop_assert!(d.help.as_deref().is_some_and(|h| !h.trim().is_empty()), "{} has no help: {d:?}", d.code);
        prop_assert!(!d.message.trim().is_empty(), "{} has no message", d.code);
        prop_assert!(!render_human(d, &c.sources, false).is_empty());
        prop_assert!(!github_line(d, &c.sources).is_empty());
        let located = d.locate(&c.sources);
        prop_assert!(located.line.is_some_and(|l| l >= 1));
    }
    Ok(())
}

/// (kind, namespace, name) of each rendered object, read from its body.
fn identities(c: &Compiled) -> Vec<(String, String, String)> {
    let field = |v: &serde_json::Value, path: &[&str]| -> String {
        path.iter().try_fold(v, |v, k| v.get(k)).and_then(|v| v.as_str()).unwrap_or("").to_string()
    };
    c.objects
        .iter()
        .map(|o| {
            (
                field(o.body(), &["kind"]),
                field(o.body(), &["metadata", "namespace"]),
                field(o.body(), &["metadata", "name"]),
            )
        })
        .collect()
}

fn rendered_yaml(c: &Compiled) -> String {
    let docs: Vec<_> = c.objects.iter().map(masked).collect();
    yaml::to_multi_yaml(docs.iter())
}

/// One fleet's files: path and text.
type Fleet = Vec<(PathBuf, String)>;

/// The example configurations: each directory under `examples/` is a fleet
/// (its `*.kdl` files, as the CLI reads a directory).
fn examples() -> &'static [Fleet] {
    static EXAMPLES: OnceLock<Vec<Fleet>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let read = |p: &Path| (p.to_path_buf(), std::fs::read_to_string(p).expect("example is UTF-8"));
        let is_kdl = |p: &Path| p.extension().is_some_and(|e| e == "kdl");
        let mut fleets = Vec::new();
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(repo().join("examples")).expect("examples/").flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&p)
                    .expect("example dir")
                    .flatten()
                    .map(|e| e.path())
                    .filter(|f| is_kdl(f))
                    .collect();
                files.sort();
                if !files.is_empty() {
                    fleets.push(files.iter().map(|f| read(f)).collect());
                }
            } else if is_kdl(&p) {
                fleets.push(vec![read(&p)]);
            }
        }
        assert!(!fleets.is_empty(), "examples/ has .kdl files");
        fleets
    })
}

/// Inputs to mutate: every example fleet, and a small generated fleet.
fn seeds() -> &'static [Fleet] {
    static SEEDS: OnceLock<Vec<Fleet>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out = examples().to_vec();
        out.push(generated(3, 2));
        out
    })
}

fn fleet_name(f: &Fleet) -> String {
    f.first().map(|(p, _)| p.display().to_string()).unwrap_or_default()
}

// ------------------------------------------------------------ no panics

/// Strings built from KDL's own punctuation and this language's words, so
/// that a fair share of them get past the parser into lowering.
fn kdl_ish() -> impl Strategy<Value = String> {
    const TOKENS: &[&str] = &[
        "cluster",
        "node-pool",
        "defaults",
        "infra",
        "storage",
        "group",
        "class",
        "snapshot-class",
        "host-device",
        "storage-class",
        "target",
        "dir",
        "kube",
        "release",
        "pull-secret",
        "ssh-key",
        "replicas=",
        "count=",
        "capacity=",
        "hosted=",
        "file=",
        "env=",
        "secret=",
        "size=",
        "autoscaling",
        "min=",
        "max=",
        "memory",
        "cores",
        "namespace",
        "labels",
        "root-volume",
        "etcd",
        "network",
        "fleet",
        "a",
        "b-c",
        "x1",
        "\"8Gi\"",
        "\"-1\"",
        "\"1e3Ei\"",
        "\"s/p\"",
        "\"\"",
        "#true",
        "#false",
        "#null",
        "#inf",
        "#-inf",
        "#nan",
        "0",
        "-1",
        "2",
        "1.5",
        "0x1F",
        "18446744073709551616",
        "{",
        "}",
        "{ }",
        ";",
        "=",
        " ",
        " ",
        "\n",
        "\t",
        "\\",
        "/-",
        "//c\n",
        "/*",
        "*/",
        "(t)",
        "\"",
        "#\"r\"#",
        "\"\"\"\n",
        "é",
        "\u{feff}",
        "\u{200b}",
        "\r\n",
    ];
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let c = compile_one(&fleet_dir().join("bytes.kdl"), &text);
        // A file without clusters is a fleet that owns nothing: warned, not refused.
        let no_clusters = c.diags.iter().any(|d| d.code == hcpc::diagnostic::Code::NoClusters);
        prop_assert!(c.diags.has_errors() || !c.objects.is_empty() || no_clusters);
        for d in c.diags.iter() {
            let _ = render_human(d, &c.sources, false);
            let _ = github_line(d, &c.sources);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(files in prop::collection::vec(any::<String>(), 1..4)) {
        let files: Vec<_> =
            files.into_iter().enumerate().map(|(i, t)| (fleet_dir().join(format!("s{i}.kdl")), t)).collect();
        let c = compile_files(&files);
        for d in c.diags.iter() {
            let _ = render_human(d, &c.sources, false);
            let _ = github_line(d, &c.sources);
        }
    }

    #[test]
    fn kdl_like_strings_never_panic_and_diagnose_well(files in prop::collection::vec(kdl_ish(), 1..3)) {
        let files: Vec<_> =
            files.into_iter().enumerate().map(|(i, t)| (fleet_dir().join(format!("k{i}.kdl")), t)).collect();
        let c = compile_files(&files);
        diagnostics_well_formed(&c)?;
    }
}

// ----------------------------------------------------- mutated examples

/// One edit to a valid file.
#[derive(Debug, Clone)]
enum Mutation {
    InsertByte(Index, u8),
    InsertToken(Index, &'static str),
    Delete(Index, usize),
    SwapRanges(Index, Index, usize),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    DeleteLine(Index),
    ReplaceValue(Index, &'static str),
}

/// Values of every KDL type and many malformed quantities and names.
const VALUES: &[&str] = &[
    "#true",
    "#false",
    "#null",
    "#inf",
    "#nan",
    "0",
    "-1",
    "1",
    "3",
    "11",
    "4294967296",
    "-9223372036854775809",
    "1.5",
    "1e400",
    "0b101",
    "0o7",
    "0xFFFFFFFFFFFFFFFFFF",
    "\"\"",
    "\"x\"",
    "\"8Gi\"",
    "\"0\"",
    "\"-8Gi\"",
    "\"8.5Gi\"",
    "\"1e3\"",
    "\"9999999999999999999Ei\"",
    "\"1m30s\"",
    "\"-5s\"",
    "\"10.0.0.0/33\"",
    "\"a/b\"",
    "\"/\"",
    "\"ns/\"",
    "\"~/x\"",
    "\"../../x\"",
    "word",
    "Upper-Case",
    "a.b.c",
    "(ty)\"v\"",
    "#\"raw\"#",
    "\"\"\"\nmulti\n\"\"\"",
    "\"\\u{10FFFF}\"",
    "\"é\"",
];

/// Tokens inserted anywhere.
const TOKENS: &[&str] = &[
    "{",
    "}",
    ";",
    "=",
    "\"",
    "\\",
    "/-",
    "/*",
    "*/",
    "//",
    "\n",
    "#",
    "(",
    ")",
    " x",
    " x=1",
    " replicas=0",
    " count=0",
    " capacity=0",
    " hosted=h",
    "\nnode-pool p replicas=1\n",
    "\ncluster c { }\n",
    "\ndefaults { }\n",
    "\ninfra { host-device d capacity=1 }\n",
    "\nstorage { class c hosted=c }\n",
    "\nhost-device d count=99\n",
    "\ngroup g { snapshot-class s hosted=s }\n",
    "\nautoscaling min=2 max=1\n",
    "é",
    "\u{0}",
    "\u{feff}",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::InsertByte(i, b)),
        (any::<Index>(), prop::sample::select(TOKENS)).prop_map(|(i, t)| Mutation::InsertToken(i, t)),
        (any::<Index>(), 1..24usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), any::<Index>(), 1..16usize).prop_map(|(a, b, n)| Mutation::SwapRanges(a, b, n)),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<Index>().prop_map(Mutation::DeleteLine),
        (any::<Index>(), prop::sample::select(VALUES)).prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
    ]
}

/// The nearest character boundary at or before `i`.
fn floor(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn pos(s: &str, i: &Index) -> usize {
    floor(s, i.index(s.len() + 1))
}

/// Byte ranges of values: a property's value (after `=`) or a node argument
/// (a token after a space on a line that already has a node name).
fn value_ranges(s: &str) -> Vec<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        // A value follows `=`, or a space after a node name or argument.
        let after_word = bytes[i] == b' ' && i > 0 && !matches!(bytes[i - 1], b' ' | b'\n' | b'\t' | b'{' | b';');
        let starts = (bytes[i] == b'=' || after_word)
            && i + 1 < bytes.len()
            && !matches!(bytes[i + 1], b' ' | b'\n' | b'{' | b'}' | b'/' | b'=');
        if starts {
            let start = i + 1;
            let mut end = start;
            let quoted = bytes[start] == b'"';
            if quoted {
                end += 1;
                while end < bytes.len() && bytes[end] != b'"' && bytes[end] != b'\n' {
                    end += 1;
                }
                end = (end + 1).min(bytes.len());
            } else {
                while end < bytes.len() && !matches!(bytes[end], b' ' | b'\n' | b';' | b'}' | b'=') {
                    end += 1;
                }
            }
            if end < bytes.len() && bytes[end] == b'=' {
                // A property key, not a value.
                i = end;
                continue;
            }
            out.push((start, end));
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn line_ranges(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < s.len() {
        out.push((start, s.len()));
    }
    out
}

fn apply(text: &mut String, m: &Mutation) {
    match m {
        Mutation::InsertByte(i, b) => {
            // Bytes that are not ASCII become U+FFFD: the source map holds text.
            let p = pos(text, i);
            let s = String::from_utf8_lossy(&[*b]).into_owned();
            text.insert_str(p, &s);
        }
        Mutation::InsertToken(i, t) => {
            let p = pos(text, i);
            text.insert_str(p, t);
        }
        Mutation::Delete(i, n) => {
            let a = pos(text, i);
            let b = floor(text, a + n);
            text.replace_range(a..b, "");
        }
        Mutation::SwapRanges(a, b, n) => {
            let (mut x, mut y) = (pos(text, a), pos(text, b));
            if x > y {
                std::mem::swap(&mut x, &mut y);
            }
            let xe = floor(text, (x + n).min(y));
            let ye = floor(text, y + n);
            let first = text[x..xe].to_string();
            let second = text[y..ye].to_string();
            text.replace_range(y..ye, &first);
            text.replace_range(x..xe, &second);
        }
        Mutation::DuplicateLine(i) => {
            let lines = line_ranges(text);
            if !lines.is_empty() {
                let (a, b) = lines[i.index(lines.len())];
                let line = text[a..b].to_string();
                text.insert_str(b, &line);
            }
        }
        Mutation::SwapLines(a, b) => {
            let mut lines: Vec<String> = line_ranges(text).into_iter().map(|(a, b)| text[a..b].to_string()).collect();
            if !lines.is_empty() {
                let (x, y) = (a.index(lines.len()), b.index(lines.len()));
                lines.swap(x, y);
                *text = lines.concat();
            }
        }
        Mutation::DeleteLine(i) => {
            let lines = line_ranges(text);
            if !lines.is_empty() {
                let (a, b) = lines[i.index(lines.len())];
                text.replace_range(a..b, "");
            }
        }
        Mutation::ReplaceValue(i, v) => {
            let values = value_ranges(text);
            if !values.is_empty() {
                let (a, b) = values[i.index(values.len())];
                text.replace_range(a..b, v);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn mutated_examples_diagnose_well(
        seed in any::<Index>(),
        file in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let seeds = seeds();
        let mut fleet = seeds[seed.index(seeds.len())].clone();
        let n = fleet.len();
        let text = &mut fleet[file.index(n)].1;
        for m in &mutations {
            apply(text, m);
        }
        let c = compile_files(&fleet);
        diagnostics_well_formed(&c)?;
        if c.diags.has_errors() {
            prop_assert!(c.objects.is_empty(), "objects rendered despite errors");
        } else {
            // A mutation that keeps the file valid still renders unique objects.
            let ids = identities(&c);
            let unique: BTreeSet<_> = ids.iter().collect();
            prop_assert_eq!(unique.len(), ids.len());
        }
    }
}

#[test]
fn seeds_are_valid() {
    // The mutation property starts from valid files; if a seed stops
    // compiling, the property would test only error paths.
    for fleet in seeds() {
        let c = compile_files(fleet);
        let errors: Vec<_> = c.diags.iter().filter(|d| d.severity == hcpc::diagnostic::Severity::Error).collect();
        assert!(errors.is_empty(), "{} does not compile: {errors:?}", fleet_name(fleet));
        assert!(!c.objects.is_empty(), "{} renders nothing", fleet_name(fleet));
    }
}

#[test]
fn well_formedness_check_rejects_bad_diagnostics() {
    use hcpc::diagnostic::{Code, Diagnostic, Diagnostics};
    use hcpc::source::{FileId, Span};
    let file = FileId(0);
    let text = "cluster é\n";
    let good =
        Diagnostic::error(Code::InvalidName, "bad").label(Span { file, offset: 8, len: 2 }, "here").help("fix it");
    let bad = [
        Diagnostic::error(Code::InvalidName, "past the end").label(Span { file, offset: 8, len: 9 }, "x").help("h"),
        Diagnostic::error(Code::InvalidName, "mid-character").label(Span { file, offset: 9, len: 1 }, "x").help("h"),
        Diagnostic::error(Code::InvalidName, "no file")
            .label(Span { file: FileId(7), offset: 0, len: 0 }, "x")
            .help("h"),
        Diagnostic::error(Code::InvalidName, "no help").label(Span { file, offset: 0, len: 1 }, "x"),
        Diagnostic::error(Code::InvalidName, "no span").help("h"),
    ];
    let with = |d: Diagnostic| {
        let mut c = compile_one(&fleet_dir().join("check.kdl"), text);
        c.diags = Diagnostics::default();
        c.diags.push(d);
        c
    };
    assert!(diagnostics_well_formed(&with(good)).is_ok());
    for d in bad {
        let message = d.message.clone();
        assert!(diagnostics_well_formed(&with(d)).is_err(), "{message} was accepted");
    }
}

#[test]
fn value_ranges_find_values() {
    let text = "cluster a {\n    node-pool w replicas=2 {\n        memory \"8Gi\"\n    }\n}\n";
    let found: Vec<&str> = value_ranges(text).into_iter().map(|(a, b)| &text[a..b]).collect();
    assert_eq!(found, ["a", "w", "2", "\"8Gi\""]);
}

// ---------------------------------------------------------- determinism

#[test]
fn examples_render_identically_twice() {
    for fleet in examples() {
        let name = fleet_name(fleet);
        let a = compile_files(fleet);
        let b = compile_files(fleet);
        assert!(!a.objects.is_empty(), "{name} renders");
        assert_eq!(a.objects, b.objects, "{name}");
        assert_eq!(rendered_yaml(&a), rendered_yaml(&b), "{name}");
        assert_eq!(a.input_digest, b.input_digest, "{name}");
    }
}

proptest! {
    #![proptest_config(config(12))]

    #[test]
    fn fleets_render_identically_twice_and_in_any_file_layout(
        clusters in 1usize..24,
        per_file in 1usize..8,
        other_per_file in 1usize..8,
    ) {
        let a = compile_files(&generated(clusters, per_file));
        prop_assert!(!a.diags.has_errors(), "{:?}", a.diags.clone().sorted());
        let b = compile_files(&generated(clusters, per_file));
        let yaml_a = rendered_yaml(&a);
        prop_assert_eq!(&yaml_a, &rendered_yaml(&b));
        prop_assert_eq!(&a.input_digest, &b.input_digest);
        // Where the clusters are written does not change what is rendered.
        let c = compile_files(&generated(clusters, other_per_file));
        prop_assert_eq!(&yaml_a, &rendered_yaml(&c));
    }
}

// ----------------------------------------------------------- uniqueness

#[test]
fn generated_fleet_objects_are_unique() {
    let n = 120;
    let c = compile_files(&generated(n, 50));
    assert!(!c.diags.has_errors(), "{:?}", c.diags.clone().sorted());
    let ids = identities(&c);
    assert_eq!(ids.len(), fleet_gen::expected_objects(n));
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate objects in a rendered fleet");
    assert!(ids.iter().all(|(k, _, name)| !k.is_empty() && !name.is_empty()));
    // Every cluster's objects are there, under the cluster's namespace.
    for i in [0, 1, n - 1] {
        let name = fleet_gen::cluster_name(i);
        let ns = if i % 10 == 0 { format!("tenant-{:04}", i / 10) } else { "clusters".to_string() };
        for (kind, obj) in [
            ("HostedCluster", name.clone()),
            ("NodePool", format!("{name}-gpu")),
            ("Secret", format!("{name}-pull-secret")),
            ("Secret", format!("{name}-ssh-key")),
        ] {
            assert!(unique.contains(&(kind.to_string(), ns.clone(), obj.clone())), "{kind} {ns}/{obj} is missing");
        }
    }
}

/// A small fleet whose cluster and pool names are drawn from a few words
/// that can be joined into one another (`a` + `b-c` and `a-b` + `c` both
/// give the NodePool `a-b-c`).
#[derive(Debug, Clone)]
struct NameFleet {
    /// (cluster, namespace, pools)
    clusters: Vec<(&'static str, &'static str, Vec<&'static str>)>,
}

fn name_fleet() -> impl Strategy<Value = NameFleet> {
    let cluster = (
        prop::sample::select(&["a", "b", "a-b", "b-c", "c"][..]),
        prop::sample::select(&["x", "y"][..]),
        prop::collection::vec(prop::sample::select(&["b", "c", "b-c", "w"][..]), 1..4),
    );
    prop::collection::vec(cluster, 1..5).prop_map(|clusters| NameFleet { clusters })
}

impl NameFleet {
    fn text(&self) -> String {
        let mut t = String::from(
            "defaults {\n    release \"quay.io/openshift-release-dev/ocp-release:4.17.3-multi\"\n    \
             pull-secret file=\"secrets/pull-secret.json\"\n}\n",
        );
        for (name, ns, pools) in &self.clusters {
            t.push_str(&format!("cluster {name} {{\n    namespace {ns}\n"));
            for p in pools {
                t.push_str(&format!("    node-pool {p} replicas=1\n"));
            }
            t.push_str("}\n");
        }
        t
    }

    /// Whether two declarations clash: cluster names are unique across the
    /// fleet, and two pools may not render one NodePool.
    fn collides(&self) -> bool {
        let mut clusters = BTreeSet::new();
        let mut pools = BTreeSet::new();
        let mut clash = false;
        for (name, ns, ps) in &self.clusters {
            clash |= !clusters.insert(*name);
            for p in ps {
                clash |= !pools.insert((*ns, format!("{name}-{p}")));
            }
        }
        clash
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn colliding_names_are_errors_never_dropped_objects(fleet in name_fleet()) {
        let c = compile_one(&fleet_dir().join("names.kdl"), &fleet.text());
        diagnostics_well_formed(&c)?;
        if fleet.collides() {
            prop_assert!(c.diags.has_errors(), "a collision was not reported:\n{}", fleet.text());
            prop_assert!(
                c.diags.iter().any(|d| d.code == hcpc::diagnostic::Code::NameCollision),
                "no name collision diagnostic: {:?}",
                c.diags.clone().sorted()
            );
        } else {
            prop_assert!(!c.diags.has_errors(), "{:?}", c.diags.clone().sorted());
            let ids = identities(&c);
            let unique: BTreeSet<_> = ids.iter().collect();
            prop_assert_eq!(unique.len(), ids.len());
            let pools: usize = fleet.clusters.iter().map(|c| c.2.len()).sum();
            prop_assert_eq!(ids.iter().filter(|i| i.0 == "NodePool").count(), pools);
            prop_assert_eq!(ids.iter().filter(|i| i.0 == "HostedCluster").count(), fleet.clusters.len());
        }
    }
}

// ------------------------------------------------ fuzzing regressions

/// Inputs found by the fuzz target; each once panicked or produced a
/// malformed diagnostic.
const FUZZ_REGRESSIONS: &[&str] = &[];

#[test]
fn fuzz_regressions() {
    for (i, text) in FUZZ_REGRESSIONS.iter().enumerate() {
        let c = compile_one(&fleet_dir().join(format!("fuzz-{i}.kdl")), text);
        if let Err(e) = diagnostics_well_formed(&c) {
            panic!("regression {i}: {e}");
        }
    }
}

/// Deep nesting, found by the fuzz target. The `kdl` parser recurses once
/// per level and overflows the stack (the process aborts) at about 1,500
/// nested `{`, 3,000 chained `/-` or 10,000 nested `/*`, i.e. inputs of a
/// few kilobytes; and nested slashdashed children (`a /-{`) take time that
/// doubles per level (kdl-rs issue 177), so 18 levels of them, valid KDL
/// of 126 bytes, take seconds and 30 levels hours. Each must be a syntax
/// diagnostic instead. Run as a child process because a stack overflow
/// aborts the whole test binary.
#[test]
fn deep_nesting_is_a_diagnostic_not_a_crash() {
    assert_rejected_as_too_deep(&[
        ("braces", format!("cluster a {}{}", "a{".repeat(2_000), "}".repeat(2_001))),
        ("unclosed braces", "a{".repeat(2_000)),
        ("slashdash", format!("cluster a {}b", "/-".repeat(20_000))),
        ("spaced slashdash", format!("cluster a {}b", "/- ".repeat(20_000))),
        ("block comments", format!("{}{}", "/*".repeat(20_000), "*/".repeat(20_000))),
        ("slashdashed children", format!("{}{}", "a /-{\n".repeat(18), "}\n".repeat(18))),
        ("unclosed slashdashed children", "/- a {\n b\n".repeat(30)),
    ]);
}

/// Spellings of deep nesting that an earlier depth check in `parse`
/// missed, found by the fuzz target once that check was in: quotes that
/// KDL ends at the line's end (`"` and `#"` strings cannot span lines) were
/// read as strings running to the next quote, hiding the braces between
/// (16 levels of slashdashed children then take seconds, 30 levels hours);
/// comments between slashdashes broke the chain count; and a long run of
/// `(` overflows the stack of a debug build.
#[test]
fn deep_nesting_in_other_spellings_is_a_diagnostic() {
    assert_rejected_as_too_deep(&[
        ("raw string", format!("{}{}", "a /-{ #\"\n".repeat(16), "}".repeat(16))),
        ("quote before each block", "\"\na /-{\n".repeat(16)),
        ("slashdash and comment", format!("a {}b", "/-/*x*/".repeat(5_000))),
        ("parentheses", "a (".repeat(30_000)),
    ]);
}

/// Runs `hcpc check` on each input and expects exit 1 with a syntax
/// diagnostic about nesting: no abort, and no slow parse first.
fn assert_rejected_as_too_deep(cases: &[(&str, String)]) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in cases {
        let file = dir.path().join(format!("{}.kdl", name.replace(' ', "-")));
        std::fs::write(&file, text).expect("write input");
        let out = crate::support::hcpc().arg("check").arg(&file).output().expect("hcpc runs");
        let stderr = crate::support::stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: expected a diagnostic and exit 1, got {:?}\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains("hcpc::parse") && stderr.contains("nested"),
            "{name}: no syntax diagnostic about nesting:\n{stderr}"
        );
    }
}
