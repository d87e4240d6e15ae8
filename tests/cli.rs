//! The command line as a user meets it: exit codes, output formats, help.

use crate::support::{hcpc, repo, stderr, stdout, yaml_docs};

fn write(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("fleet.kdl");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_reports_every_independent_error_with_position_and_help() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "cluster example {\n    relase \"quay.io/x:1\"\n    node-pool w replicas=2 {\n        memory \"8GB\"\n    }\n}\n",
    );
    let o = hcpc().args(["check", "--format", "json"]).arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let codes: Vec<&str> = doc["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"hcpc::lower::unknown_node"), "{codes:?}");
    assert!(codes.contains(&"hcpc::lower::invalid_quantity"), "{codes:?}");
    assert!(codes.contains(&"hcpc::lower::missing_setting"), "{codes:?}");
    let unknown =
        doc["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "hcpc::lower::unknown_node").unwrap();
    assert_eq!((unknown["line"].as_u64(), unknown["column"].as_u64()), (Some(2), Some(5)));
    assert_eq!(unknown["help"], "did you mean `release`?");

    let human = hcpc().arg("check").arg(&f).output().unwrap();
    let err = stderr(&human);
    assert!(err.contains("fleet.kdl:2:5"), "{err}");
    assert!(err.contains("help: did you mean `release`?"), "{err}");
    assert!(!err.contains('\u{1b}'), "no colour without a terminal");
}

#[test]
fn github_format_prints_workflow_annotations() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "cluster Bad_Name {\n}\n");
    let o = hcpc().args(["check", "--format", "github"]).arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.starts_with("::error file="), "{out}");
    assert!(out.contains(",line=1,col=9,"), "{out}");
    assert!(out.contains("title=hcpc%3A%3Alower%3A%3Ainvalid_name"), "{out}");
}

#[test]
fn render_is_deterministic_and_masks_secrets_unless_asked() {
    let ex = repo().join("examples/minimal");
    let a = hcpc().arg("render").arg(&ex).output().unwrap();
    let b = hcpc().arg("render").arg(&ex).output().unwrap();
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout, "same input, same bytes");
    assert!(stdout(&a).contains("(sensitive)"));
    let shown = hcpc().args(["render", "--show-secrets"]).arg(&ex).output().unwrap();
    let docs = yaml_docs(&stdout(&shown));
    let pull = docs.iter().find(|d| d["metadata"]["name"] == "example-pull-secret").unwrap();
    assert!(pull["data"][".dockerconfigjson"].as_str().unwrap().starts_with("eyJ"));
}

#[test]
fn render_to_directory_writes_one_file_per_object() {
    let tmp = tempfile::tempdir().unwrap();
    let o = hcpc().args(["render", "-q", "-o"]).arg(tmp.path()).arg(repo().join("examples/minimal")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in [
        "_cluster/Namespace.clusters.yaml",
        "clusters/HostedCluster.example.yaml",
        "clusters/NodePool.example-workers.yaml",
    ] {
        assert!(tmp.path().join(f).is_file(), "{f}");
    }
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    assert_eq!(hcpc().arg("frobnicate").output().unwrap().status.code(), Some(1));
    assert_eq!(hcpc().arg("--help").output().unwrap().status.code(), Some(0));
    let missing = hcpc().args(["check", "/no/such/path.kdl"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("cannot read /no/such/path.kdl"));
}

#[test]
fn explain_and_completions_and_schema() {
    let o = hcpc().args(["explain", "hcpc::storage::snapshot_without_class"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("snapshot class has no storage class"));
    let c = hcpc().args(["completions", "bash"]).output().unwrap();
    assert!(stdout(&c).contains("hcpc"));
    let s = hcpc().arg("schema").output().unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    let names: Vec<&str> = schema["topLevel"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["target", "fleet", "defaults", "infra", "cluster", "profile", "rollout", "allow-paths-outside"]);
}

/// `hcpc explain` is a table of codes with what each means; every
/// explanation says how to fix it; a misspelt code is corrected.
#[test]
fn explain_lists_summaries_and_corrects_misspelt_codes() {
    let list = stdout(&hcpc().arg("explain").output().unwrap());
    let conflict = list.lines().find(|l| l.starts_with("hcpc::apply::conflict ")).expect("the conflict code is listed");
    assert!(conflict.contains("server-side apply conflict"), "{conflict}");
    for line in list.lines() {
        let (code, summary) = line.split_once("  ").unwrap_or((line, ""));
        assert!(!summary.trim().is_empty(), "no summary for {code}");
    }
    let o = hcpc().args(["explain", "apply::conflict"]).output().unwrap();
    assert!(stdout(&o).contains("--force-conflicts"), "{}", stdout(&o));
    for code in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let text = stdout(&hcpc().args(["explain", code]).output().unwrap());
        assert!(text.contains("Fix:"), "the explanation of {code} says no fix:\n{text}");
    }
    for (typo, meant) in [
        ("hcpc::apply::conflcit", "hcpc::apply::conflict"),
        ("snapshot_without_clas", "hcpc::storage::snapshot_without_class"),
    ] {
        let o = hcpc().args(["explain", typo]).output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(&format!("did you mean `{meant}`?")), "{typo}: {}", stderr(&o));
    }
}

/// Outside a fleet, a bare cluster name has no known namespace: the
/// command says so instead of reading `clusters/NAME` of whatever cluster
/// the kubeconfig points at.
#[test]
fn kubeconfig_outside_a_fleet_needs_the_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let o =
        hcpc().current_dir(tmp.path()).args(["kubeconfig", "demo"]).env("KUBECONFIG", "/nonexistent").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("cluster `demo` is not declared"), "{err}");
    assert!(err.contains("clusters/demo"), "the help shows the NAMESPACE/NAME form: {err}");
}

#[test]
fn graph_orders_objects_by_dependency() {
    let o = hcpc().arg("graph").arg(repo().join("examples/minimal")).output().unwrap();
    let dot = stdout(&o);
    assert!(dot.starts_with("digraph hcpc {"));
    let pos = |s: &str| dot.find(s).unwrap_or_else(|| panic!("{s} in {dot}"));
    assert!(pos("Namespace/clusters") < pos("HostedCluster/clusters/example"));
    assert!(pos("HostedCluster/clusters/example") < pos("NodePool/clusters/example-workers"));
}

#[test]
fn fmt_rewrites_in_canonical_form_keeping_comments() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "// the fleet\ncluster   example{\n  release \"q.io/r:1\"   // pinned\n\n\n  node-pool w replicas=2\n}\n",
    );
    let check = hcpc().args(["fmt", "--check"]).arg(&f).output().unwrap();
    assert_eq!(check.status.code(), Some(1));
    assert!(stdout(&check).contains("fleet.kdl"));
    let formatted = hcpc().arg("fmt").arg(&f).output().unwrap();
    assert_eq!(formatted.status.code(), Some(0));
    // The result on stdout, as `terraform fmt` prints it; nothing on stderr.
    assert_eq!(stdout(&formatted), "formatted 1 file\n");
    assert_eq!(stderr(&formatted), "");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("// the fleet") && text.contains("// pinned"), "{text}");
    assert!(text.contains("cluster example {\n    release"), "{text}");
    assert!(!text.contains("\n\n\n"), "{text}");
    assert_eq!(hcpc().args(["fmt", "--check"]).arg(&f).output().unwrap().status.code(), Some(0));
}

/// `schema/language.json` is the machine-readable language description;
/// it must be exactly what `hcpc schema` prints (regenerate with
/// `hcpc schema > schema/language.json`).
#[test]
fn committed_language_schema_is_current() {
    let o = hcpc().arg("schema").output().unwrap();
    let committed = std::fs::read_to_string(repo().join("schema/language.json")).unwrap();
    assert_eq!(stdout(&o), committed, "run `hcpc schema > schema/language.json`");
}

#[test]
fn absurd_nesting_is_a_diagnostic_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let depth = 20_000;
    for text in [
        format!("{}{}", "a {".repeat(depth), "}".repeat(depth)),
        format!("{}{}", "/* ".repeat(depth), "*/ ".repeat(depth)),
        format!("{}a", "/- ".repeat(depth)),
    ] {
        let f = write(tmp.path(), &text);
        for cmd in ["check", "fmt"] {
            let o = hcpc().arg(cmd).arg(&f).output().unwrap();
            assert_eq!(o.status.code(), Some(1), "{cmd}");
            assert!(stderr(&o).contains("nested"), "{cmd}");
        }
    }
}

#[test]
fn review_regressions_in_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "target kube \"out\"\ncluster a {\n    release \"q.io/r:1\"\n    pull-secret secret=p\n    node-pool w replicas=1\n}\n",
            "takes no a path",
        ),
        (
            "cluster a {\n    release \"q.io/r:1\"\n    pull-secret secret=p\n    labels \"bad key!\"=x\n    node-pool w replicas=1\n}\n",
            "not a valid key",
        ),
        (
            "cluster a {\n    release \"q.io/r:1\"\n    pull-secret secret=p\n    labels \"hcpc.openshift.io/cluster\"=b\n    node-pool w replicas=1\n}\n",
            "set by hcpc itself",
        ),
        (
            "cluster a {\n    release \"q.io/r:1\"\n    pull-secret secret=p\n    toleration key=k operator=Exists value=v\n    node-pool w replicas=1\n}\n",
            "operator=Exists takes no value",
        ),
        (
            "cluster a {\n    release \"q.io/r:1\"\n    pull-secret secret=p\n    network cluster-cidr=\"10.0.0.0/+8\"\n    node-pool w replicas=1\n}\n",
            "not a CIDR",
        ),
        (
            "cluster a {\n    release \"q.io/r:1\"\n    pull-secret secret=p\n    node-pool w replicas=1 {\n        memory \"0\"\n    }\n}\n",
            "has no unit",
        ),
        (
            "cluster a {\n    release \"q.io/r:1\"\n    pull-secret secret=p\n    node-pool w replicas=1 {\n        memory \"0Gi\"\n    }\n}\n",
            "hcpc::node_pool::memory_too_small",
        ),
        ("cluster a {\n    release quay.io/x:1\n}\n", "quote strings"),
    ];
    for (text, expected) in cases {
        let f = write(tmp.path(), text);
        let o = hcpc().arg("check").arg(&f).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{text}");
        assert!(stderr(&o).contains(expected), "{text}\n{}", stderr(&o));
    }
}

/// The executable is position-independent, so its image is randomised
/// like its heap and stack (docs/design.md): it holds
/// cluster-admin credentials.
#[test]
#[cfg(all(target_os = "linux", target_endian = "little"))]
fn linux_executable_is_position_independent() {
    let header = std::fs::read(env!("CARGO_BIN_EXE_hcpc")).unwrap();
    assert_eq!(&header[..4], b"\x7fELF");
    // e_type, little-endian: 2 is a fixed-address executable, 3 a
    // position-independent one.
    let e_type = u16::from_le_bytes([header[16], header[17]]);
    assert_eq!(e_type, 3, "ELF type of {}", env!("CARGO_BIN_EXE_hcpc"));
}

/// `hcpc render | head` and the like: a reader that stops early is not an
/// error. The output here is larger than a pipe's buffer, so hcpc is still
/// writing when the reader goes away.
#[test]
fn a_reader_that_stops_early_ends_each_printing_command_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    crate::support::fleet_gen::write_fleet(tmp.path(), 200, 50).expect("write fleet");
    for args in [&["render"][..], &["plan", "--format", "json"], &["graph"]] {
        let mut child =
            hcpc().args(args).arg(tmp.path()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The read end is closed here, as `head` closes it.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe") && !err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `hcpc apply --auto-approve 2>&1 | head`: the progress lines go nowhere
/// once the reader has gone, and the apply still finishes every write.
#[test]
fn apply_finishes_when_its_output_goes_away() {
    use std::io::Read;
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    crate::support::fleet_gen::write_fleet(tmp.path(), 100, 50).expect("write fleet");
    let mut child = hcpc()
        .args(["apply", "--auto-approve"])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stderr.take().unwrap().read_exact(&mut first).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let again = hcpc().args(["plan", "--detailed-exitcode"]).arg(tmp.path()).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "every object was written: {}", stdout(&again));
}

/// `check` says when its ok is offline only, and how many rules wait for
/// the management cluster; with the facts in `infra` it runs them itself.
#[test]
fn check_names_the_rules_that_need_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("pull-secret.json"), "{\"auths\":{}}\n").unwrap();
    let cluster = "cluster a {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"pull-secret.json\"\n    storage {\n        class rbd hosted=rbd\n    }\n    node-pool w replicas=2 {\n        root-volume cache=pvc storage-class=rbd\n    }\n}\n";
    let check = |text: &str, args: &[&str]| {
        std::fs::write(tmp.path().join("fleet.kdl"), text).unwrap();
        let mut all = vec!["check", "fleet.kdl"];
        all.extend_from_slice(args);
        crate::support::run_in(tmp.path(), &all)
    };
    let o = check(&format!("target kube\n{cluster}"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 cluster, 5 objects, checked offline; 9 rules need the management cluster: run plan"),
        "{}",
        stderr(&o)
    );
    let o = check(&format!("target kube\n{cluster}"), &["-v"]);
    assert!(stderr(&o).contains("hcpc::storage::cache_cannot_clone"), "-v names them: {}", stderr(&o));
    // CI formats say the same.
    let o = check(&format!("target kube\n{cluster}"), &["--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["needs_target"].as_array().map(Vec::len), Some(9), "{report:#}");
    let o = check(&format!("target kube\n{cluster}"), &["--format", "github"]);
    assert!(
        stdout(&o).lines().any(|l| l.starts_with("::notice title=hcpc check::checked offline: 9 rules")),
        "{}",
        stdout(&o)
    );
    let o = check(cluster, &[]);
    assert!(
        stderr(&o).contains("9 rules need facts about the infrastructure: declare them in `infra`"),
        "{}",
        stderr(&o)
    );

    // Declared in `infra`, the same rules run at check: the RWO class fails
    // the mapping and the cache.
    let infra = "infra {\n    storage-class rbd access=RWO default=#true\n    snapshot-class snap default=#true\n    nodes n count=3 cores=32 memory=\"128Gi\"\n}\n";
    let o = check(&format!("target kube\n{infra}{cluster}"), &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    for code in ["hcpc::storage::class_not_rwx", "hcpc::storage::cache_cannot_clone"] {
        assert!(stdout(&o).contains(code), "{code}: {}", stdout(&o));
    }
    let o = check(
        &format!(
            "target kube\n{}{cluster}",
            infra.replace("access=RWO", "access=RWX volume-mode=Block clone=csi-clone")
        ),
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("offline"), "every rule ran: {}", stderr(&o));
}

/// A context written in the file that the kubeconfig lacks: the message
/// names the closest context and where the file names it; a missing
/// kubeconfig is named as a plain path. Nothing contacts a server.
#[test]
fn kubeconfig_mistakes_are_named_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("fleet.kdl"),
        "fleet x\ntarget kube context=prodd\ncluster a {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret secret=p\n    node-pool w replicas=1\n}\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://127.0.0.1:1\nusers:\n- name: prod\n  user:\n    token: t\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: prod\ncurrent-context: prod\n",
    )
    .unwrap();
    let o = hcpc().current_dir(tmp.path()).env("KUBECONFIG", "kubeconfig").args(["plan", "."]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("no context `prodd`") && err.contains("did you mean `prod`?"), "{err}");
    assert!(err.contains("fleet.kdl:2:1"), "{err}");

    let o = hcpc()
        .current_dir(tmp.path())
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .args(["plan", "."])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("cannot read the kubeconfig /nonexistent/kubeconfig (from KUBECONFIG)"), "{err}");
    assert!(!err.contains("'\""), "{err}");
}
