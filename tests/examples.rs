//! The examples in `examples/`: each one checks cleanly, renders the same
//! bytes every time, and a few are pinned by golden files in
//! `tests/snapshots/` so that any change to what they render shows up in
//! review. Regenerate the golden files with `HCPC_UPDATE_GOLDEN=1 cargo
//! test -p hcpc --test e2e examples errors` and read the diff.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{repo, run_in, stderr, stdout, yaml_docs};

/// The documented procedures, one example each (SPEC §3 and the docs).
const REQUIRED: &[&str] = &[
    "minimal",
    "storage-mapping",
    "snapshot-class",
    "snapshot-groups",
    "root-volume",
    "image-cache",
    "etcd-storage-class",
    "gpu",
    "host-devices",
    "external-infra",
    "autoscaling",
    "capacity",
    "fleet",
    "multi-region",
    "profiles",
    "rollout",
];

/// Examples that are meant to show a warning or a note, with the code they show.
const EXPECTED_WARNINGS: &[(&str, &str)] = &[
    // Every pool with host devices gets the Technology Preview note.
    ("capacity", "hcpc::device::technology_preview"),
    ("gpu", "hcpc::device::technology_preview"),
    ("host-devices", "hcpc::device::technology_preview"),
    ("fleet", "hcpc::device::technology_preview"),
    ("profiles", "hcpc::device::technology_preview"),
    // A storage class mapped without a snapshot class: the guest gets none.
    ("storage-mapping", "hcpc::storage::no_snapshot_mapping"),
];

/// Every example: each directory under `examples/` that holds `.kdl` files
/// is one fleet, as the CLI and the language server (which treats a file's
/// directory as its fleet) both read it. A loose `.kdl` file directly in
/// `examples/` would make the whole directory one fleet to an editor, so
/// there must be none.
fn examples() -> Vec<PathBuf> {
    let dir = repo().join("examples");
    let entries: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("examples/").filter_map(Result::ok).map(|e| e.path()).collect();
    let loose: Vec<&PathBuf> = entries.iter().filter(|p| is_kdl(p)).collect();
    assert!(loose.is_empty(), "each example is its own directory; loose files in examples/: {loose:?}");
    let mut out: Vec<PathBuf> = entries
        .into_iter()
        .filter(|p| p.is_dir() && std::fs::read_dir(p).is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| is_kdl(&e.path())))))
        .collect();
    out.sort();
    out
}

fn is_kdl(p: &Path) -> bool {
    p.extension().is_some_and(|x| x == "kdl")
}

fn name(p: &Path) -> String {
    p.file_name().expect("a file name").to_string_lossy().into_owned()
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn every_documented_procedure_has_an_example() {
    let names: Vec<String> = examples().iter().map(|p| name(p)).collect();
    for want in REQUIRED {
        assert!(names.iter().any(|n| n == want), "examples/{want} is missing (have {names:?})");
    }
}

/// `examples/README.md` says what each example shows: every example
/// directory has its row there, and the table names no example that is gone.
#[test]
fn examples_readme_lists_every_example() {
    let readme = std::fs::read_to_string(repo().join("examples/README.md")).expect("examples/README.md");
    let listed: Vec<&str> =
        readme.lines().filter_map(|l| l.strip_prefix("| [`")).filter_map(|l| l.split('`').next()).collect();
    let mut have: Vec<String> = examples().iter().map(|p| name(p)).collect();
    have.sort();
    let mut listed_sorted: Vec<String> = listed.iter().map(|s| (*s).to_owned()).collect();
    listed_sorted.sort();
    assert_eq!(listed_sorted, have, "examples/README.md's table and the example directories differ");
}

/// Each example file starts with a comment saying what it shows.
#[test]
fn every_example_file_explains_itself() {
    for p in examples() {
        let files: Vec<PathBuf> = if p.is_dir() {
            let mut f: Vec<PathBuf> = std::fs::read_dir(&p)
                .expect("dir")
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| is_kdl(p))
                .collect();
            f.sort();
            f
        } else {
            vec![p.clone()]
        };
        for f in files {
            let text = std::fs::read_to_string(&f).expect("example");
            let header: Vec<&str> = text.lines().take_while(|l| l.starts_with("//")).collect();
            assert!(header.len() >= 2, "{}: no header comment saying what it shows", f.display());
        }
    }
}

/// Examples are what users copy: each is in the form `hcpc fmt` writes, so
/// copying one and running `fmt --check` in CI passes.
#[test]
fn every_example_is_in_canonical_form() {
    let mut problems = Vec::new();
    for p in examples() {
        let out = run_in(&repo(), &["fmt", arg(&p), "--check"]);
        if out.status.code() != Some(0) {
            problems.push(format!("{}: {}{}", name(&p), stdout(&out), stderr(&out)));
        }
    }
    assert!(problems.is_empty(), "not in canonical form (run `hcpc fmt examples/NAME`):\n{}", problems.join("\n"));
}

#[test]
fn every_example_checks_without_errors_or_unexpected_warnings() {
    let mut problems = Vec::new();
    for p in examples() {
        let out = run_in(&repo(), &["check", arg(&p), "--format", "json"]);
        let report: Value = match serde_json::from_str(&stdout(&out)) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{}: no JSON report ({e}); stderr:\n{}", name(&p), stderr(&out)));
                continue;
            }
        };
        if out.status.code() != Some(0) {
            problems.push(format!("{}: exit {:?}: {report:#}", name(&p), out.status.code()));
            continue;
        }
        let mut codes: Vec<&str> =
            report["diagnostics"].as_array().into_iter().flatten().filter_map(|d| d["code"].as_str()).collect();
        codes.sort_unstable();
        let mut expected: Vec<&str> =
            EXPECTED_WARNINGS.iter().filter(|(f, _)| *f == name(&p)).map(|(_, c)| *c).collect();
        expected.sort_unstable();
        if codes != expected {
            problems.push(format!("{}: diagnostics {codes:?}, expected {expected:?}: {report:#}", name(&p)));
        }
        // The human summary agrees.
        let human = run_in(&repo(), &["check", arg(&p)]);
        if human.status.code() != Some(0) || !stderr(&human).contains("ok (0 errors") {
            problems.push(format!("{}: human check says:\n{}", name(&p), stderr(&human)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn every_example_renders_deterministically() {
    for p in examples() {
        for extra in [&[][..], &["--show-secrets"][..]] {
            let mut args = vec!["render", arg(&p)];
            args.extend_from_slice(extra);
            let first = run_in(&repo(), &args);
            assert_eq!(first.status.code(), Some(0), "{}: {}", name(&p), stderr(&first));
            assert!(!first.stdout.is_empty(), "{}: rendered nothing", name(&p));
            let second = run_in(&repo(), &args);
            let same = |o: &std::process::Output| without_etcd_keys(&stdout(o));
            assert_eq!(same(&first), same(&second), "{}: two renders differ", name(&p));
            // From another working directory: paths are relative to the file.
            let elsewhere = run_in(&std::env::temp_dir(), &args);
            assert_eq!(same(&first), same(&elsewhere), "{}: render depends on the working directory", name(&p));
        }
    }
}

/// The rendered stream without the etcd encryption keys' values, which
/// `--show-secrets` draws at random on every run.
pub fn without_etcd_keys(text: &str) -> String {
    text.split("\n---\n")
        .map(|doc| {
            if doc.contains("-etcd-encryption-key\n") {
                doc.lines().filter(|l| !l.starts_with("  key: ")).map(|l| format!("{l}\n")).collect::<String>()
            } else {
                format!("{doc}\n")
            }
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Without `--show-secrets` no Secret data is printed.
#[test]
fn example_renders_mask_secret_data() {
    for p in examples() {
        let out = run_in(&repo(), &["render", arg(&p)]);
        for o in yaml_docs(&stdout(&out)).iter().filter(|o| o["kind"] == "Secret") {
            for (k, v) in o["data"].as_object().into_iter().flatten() {
                assert_eq!(v, "(sensitive)", "{}: Secret {} data.{k} is printed", name(&p), o["metadata"]["name"]);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Golden files
// ---------------------------------------------------------------------------

/// Compares `actual` with `tests/snapshots/<file>` byte for byte; with
/// `HCPC_UPDATE_GOLDEN=1` writes it instead.
pub fn assert_golden(file: &str, actual: &str) {
    let path = repo().join("tests/snapshots").join(file);
    if std::env::var_os("HCPC_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create tests/snapshots");
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with HCPC_UPDATE_GOLDEN=1 to create it", path.display()));
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual);
        panic!(
            "{} is out of date (run with HCPC_UPDATE_GOLDEN=1 and review the diff):\n{}",
            path.display(),
            diff.unified_diff().context_radius(3).header("golden", "actual")
        );
    }
}

fn golden_render(example: &str) {
    let out = run_in(&repo(), &["render", &format!("examples/{example}")]);
    assert_eq!(out.status.code(), Some(0), "{example}: {}", stderr(&out));
    let file = format!("examples__{example}.yaml");
    assert_golden(&file, &stdout(&out));
}

#[test]
fn golden_minimal() {
    golden_render("minimal");
}

#[test]
fn golden_snapshot_groups() {
    golden_render("snapshot-groups");
}

#[test]
fn golden_host_devices() {
    golden_render("host-devices");
}

#[test]
fn golden_external_infra() {
    golden_render("external-infra");
}

#[test]
fn golden_fleet() {
    golden_render("fleet");
}

// ---------------------------------------------------------------------------
// What the fleet example claims
// ---------------------------------------------------------------------------

/// Copies `examples/fleet` and `examples/secrets` into a temporary
/// directory, so that a test can change one file of the fleet.
fn fleet_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    // A checkout of the repository: `../secrets` is inside its tree.
    std::fs::create_dir(tmp.path().join(".git")).expect("mkdir .git");
    for sub in ["fleet", "secrets"] {
        let to = tmp.path().join(sub);
        std::fs::create_dir_all(&to).expect("mkdir");
        for e in std::fs::read_dir(repo().join("examples").join(sub)).expect("read").filter_map(Result::ok) {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
    tmp
}

/// The fleet uses eight of its ten shared A100s; three more anywhere are over capacity,
/// and the error names every contributing pool across clusters.
#[test]
fn fleet_shares_gpu_capacity_across_clusters() {
    let tmp = fleet_copy();
    let ml = tmp.path().join("fleet/ml.kdl");
    let text = std::fs::read_to_string(&ml).expect("ml.kdl");
    assert!(text.contains("autoscaling min=1 max=4"));
    std::fs::write(&ml, text.replace("autoscaling min=1 max=4", "autoscaling min=1 max=7")).expect("write");

    let out = run_in(tmp.path(), &["check", "fleet", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let diags: Vec<&Value> =
        report["diagnostics"].as_array().expect("list").iter().filter(|d| d["severity"] == "error").collect();
    assert_eq!(diags.len(), 1, "{report:#}");
    let d = diags[0];
    assert_eq!(d["code"], "hcpc::device::over_capacity");
    assert!(d["message"].as_str().is_some_and(|m| m.contains("needs 11") && m.contains("has 10")), "{d:#}");
    let labels: Vec<&str> = d["labels"].as_array().expect("labels").iter().filter_map(|l| l["text"].as_str()).collect();
    assert!(labels.iter().any(|l| l.starts_with("ml-train/gpu")), "{labels:?}");
    assert!(labels.iter().any(|l| l.starts_with("ml-serve/gpu")), "{labels:?}");
}

/// Pool defaults reach every pool that does not override them.
#[test]
fn fleet_pool_defaults_are_inherited() {
    let out = run_in(&repo(), &["render", "examples/fleet"]);
    let docs = yaml_docs(&stdout(&out));
    let pools: Vec<&Value> = docs.iter().filter(|o| o["kind"] == "NodePool").collect();
    assert_eq!(pools.len(), 5, "{pools:#?}");
    for np in &pools {
        let kv = &np["spec"]["platform"]["kubevirt"];
        let name = np["metadata"]["name"].as_str().unwrap_or_default();
        assert_eq!(np["spec"]["management"]["autoRepair"], true, "{name}");
        assert_eq!(kv["rootVolume"]["persistent"]["size"], "64Gi", "{name}");
        let (cores, memory) = match name {
            "search-workers" => (8, "32Gi"),
            "ml-train-gpu" => (16, "64Gi"),
            "ml-serve-gpu" => (4, "32Gi"),
            _ => (4, "16Gi"),
        };
        assert_eq!(kv["compute"]["cores"], cores, "{name}");
        assert_eq!(kv["compute"]["memory"], memory, "{name}");
    }
    let hcs: Vec<&Value> = docs.iter().filter(|o| o["kind"] == "HostedCluster").collect();
    assert_eq!(hcs.len(), 4);
    for hc in hcs {
        let etcd = &hc["spec"]["etcd"]["managed"]["storage"]["persistentVolume"];
        assert_eq!(etcd["storageClassName"], "lvm-storageclass");
        assert_eq!(etcd["size"], "16Gi");
    }
}

/// The fleet over two management clusters plans each one in its own
/// section, without any cluster (its targets are directories), and the
/// fleet's total covers both.
#[test]
fn multi_region_plans_two_management_clusters() {
    let out = run_in(&repo(), &["plan", "examples/multi-region", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "── Target dir:rendered/multi-region/east ──",
        "── Target dir:rendered/multi-region/west ──",
        "Plan: 22 to add, 0 to change, 0 to replace, 0 to destroy, over 2 targets.",
    ] {
        assert!(text.contains(want), "missing `{want}`:\n{text}");
    }
    let east = &text[text.find("Target dir:rendered/multi-region/east").unwrap()
        ..text.find("Target dir:rendered/multi-region/west").unwrap()];
    assert!(
        east.contains("HostedClusters") && east.contains("checkout-east") && !east.contains("checkout-west"),
        "{east}"
    );
}
