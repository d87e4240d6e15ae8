//! `hcpc plan` and `hcpc apply` against the `dir` target, end to end, and
//! the immutable-field table checked against the real CRDs.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{conformance, hcpc, repo, stderr, stdout};

fn fleet(dir: &Path, replicas: u32, etcd_size: &str) {
    let secrets = crate::support::pull_secret_in(dir);
    let text = format!(
        "target dir \"out\"\ncluster example {{\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"{}\"\n    etcd size=\"{etcd_size}\"\n    node-pool workers replicas={replicas}\n}}\n",
        secrets.display()
    );
    std::fs::write(dir.join("fleet.kdl"), text).unwrap();
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    hcpc().current_dir(dir).args(args).output().unwrap()
}

#[test]
fn plan_apply_plan_again_is_quiet_then_shows_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    let first = run(dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(first.status.code(), Some(2), "{}", stderr(&first));
    assert!(stdout(&first).contains("Plan: 5 to add, 0 to change, 0 to replace, 0 to destroy."), "{}", stdout(&first));

    let apply = run(dir, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    assert!(dir.join("out/clusters/NodePool.example-workers.yaml").is_file());

    let again = run(dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}{}", stdout(&again), stderr(&again));
    assert!(stdout(&again).contains("No changes."));

    fleet(dir, 3, "8Gi");
    let edit = run(dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(edit.status.code(), Some(2));
    let out = stdout(&edit);
    assert!(out.contains("~ NodePool/clusters/example-workers"), "{out}");
    assert!(out.contains("spec.replicas: 2 → 3"), "{out}");
    assert!(!out.contains("(rolls"), "a replica change does not roll nodes: {out}");
    assert!(out.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."), "{out}");
}

/// `hcpc apply > log` keeps the plan, the progress and the result, as
/// Terraform's does; standard error is left for diagnostics.
#[test]
fn apply_prints_plan_progress_and_result_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    let apply = run(dir, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let out = stdout(&apply);
    for want in [
        "+ HostedCluster/clusters/example",
        "Plan: 5 to add, 0 to change, 0 to replace, 0 to destroy.",
        "+ NodePool/clusters/example-workers",
        "Apply complete! 5 added, 0 changed, 0 replaced, 0 destroyed.",
    ] {
        assert!(out.contains(want), "{want:?} not on stdout: {out}");
    }
    assert_eq!(stderr(&apply), "", "nothing but diagnostics on stderr");
    let bad = run(dir, &["apply", "--auto-approve", "--cluster", "nope"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("nope"), "an error is a diagnostic: {}", stderr(&bad));
}

#[test]
fn immutable_change_on_protected_cluster_is_refused_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    fleet(dir, 2, "16Gi");
    let plan = run(dir, &["plan"]);
    assert_eq!(plan.status.code(), Some(1));
    let err = stderr(&plan);
    assert!(err.contains("hcpc::plan::prevent_destroy"), "{err}");
    assert!(err.contains("Etcd PV storage size is immutable"), "{err}");
}

#[test]
fn secrets_never_appear_in_plans_or_saved_plans() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    let secret = std::fs::read_to_string(repo().join("examples/secrets/pull-secret.json")).unwrap();
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(secret.as_bytes());
    for format in ["text", "markdown", "json", "diff"] {
        let o = run(dir, &["plan", "--format", format, "--out", "saved.json"]);
        assert_eq!(o.status.code(), Some(0));
        let saved = std::fs::read_to_string(dir.join("saved.json")).unwrap();
        for text in [stdout(&o), stderr(&o), saved] {
            assert!(!text.contains(&encoded) && !text.contains("ZmFrZTpmYWtl"), "secret leaked in {format}");
        }
    }
}

#[test]
fn stale_saved_plan_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    assert_eq!(run(dir, &["plan", "--out", "p.json"]).status.code(), Some(0));
    fleet(dir, 4, "8Gi");
    let o = run(dir, &["apply", "p.json", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("stale"), "{}", stderr(&o));
    assert!(!dir.join("out").exists(), "a refused plan must not write anything");
}

#[test]
fn apply_without_terminal_or_approval_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    let o = run(dir, &["apply"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--auto-approve"));
    assert!(!dir.join("out").exists());
}

#[test]
fn removed_cluster_is_destroyed_only_when_unprotected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    // A foreign file in the target is never touched.
    std::fs::write(
        dir.join("out/clusters/Secret.foreign.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: foreign\n  namespace: clusters\n",
    )
    .unwrap();
    let secrets = crate::support::pull_secret_in(dir);
    std::fs::write(
        dir.join("fleet.kdl"),
        format!("target dir \"out\"\ncluster other {{\n    release \"q.io/r:1\"\n    pull-secret file=\"{}\"\n    node-pool w replicas=1\n}}\n", secrets.display()),
    )
    .unwrap();
    let o = run(dir, &["plan"]);
    assert_eq!(o.status.code(), Some(1), "protected cluster must not be destroyed");
    assert!(stderr(&o).contains("prevent-destroy"));
}

/// The bundled table of immutable fields must contain every `self == oldSelf`
/// rule under `spec` of the real CRDs that applies to KubeVirt clusters.
#[test]
fn immutable_table_matches_the_crds() {
    fn walk(schema: &serde_json::Value, path: String, out: &mut BTreeSet<String>) {
        if let Some(rules) = schema.get("x-kubernetes-validations").and_then(|v| v.as_array()) {
            for r in rules {
                let rule = r.get("rule").and_then(|v| v.as_str()).unwrap_or("").replace(' ', "");
                if rule == "self==oldSelf" || rule == "oldSelf==\"\"||self==oldSelf" {
                    out.insert(path.clone());
                }
            }
        }
        if let Some(props) = schema.get("properties").and_then(|v| v.as_object()) {
            for (k, v) in props {
                walk(v, if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out);
            }
        }
    }
    let table: BTreeSet<String> =
        hcpc_schema::immutable::IMMUTABLE_FIELDS.iter().map(|f| format!("{}:{}", f.kind, f.path)).collect();
    for (file, kind) in
        [("hostedclusters-Hypershift-Default.crd.yaml", "HostedCluster"), ("nodepools-Default.crd.yaml", "NodePool")]
    {
        let text = std::fs::read_to_string(conformance().join("crds").join(file)).unwrap();
        let crd: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut paths = BTreeSet::new();
        walk(schema, String::new(), &mut paths);
        // The parts of the spec hcpc renders; sub-fields of storageDriver
        // are covered by the rule on storageDriver itself.
        const RENDERED: &[&str] = &[
            "spec.etcd.",
            "spec.networking.clusterNetwork",
            "spec.networking.serviceNetwork",
            "spec.networking.machineNetwork",
            "spec.platform.kubevirt.",
            "spec.platform.type",
            "spec.fips",
            "spec.controllerAvailabilityPolicy",
            "spec.olmCatalogPlacement",
            "spec.infraID",
            "spec.dns.baseDomain",
            "spec.arch",
            "spec.clusterName",
            "spec.management.upgradeType",
        ];
        let relevant: Vec<_> = paths
            .iter()
            .filter(|p| RENDERED.iter().any(|r| p.starts_with(r)))
            .filter(|p| !p.starts_with("spec.platform.kubevirt.storageDriver."))
            .filter(|p| !p.starts_with("spec.dns.baseDomainPrefix") || table.contains(&format!("{kind}:{p}")))
            .collect();
        // Every table entry is a real rule of the CRD (nothing invented).
        for entry in table.iter().filter(|e| e.starts_with(&format!("{kind}:"))) {
            let path = entry.split_once(':').map(|x| x.1).unwrap_or_default();
            // `spec.services` has a spec-level rule; `credentials` is documented
            // immutable without a rule of its own (see schema/src/immutable.rs).
            let documented = ["spec.services", "spec.platform.kubevirt.credentials"];
            assert!(paths.contains(path) || documented.contains(&path), "{entry} is not an immutable rule of {file}");
        }
        for p in relevant {
            assert!(
                table.contains(&format!("{kind}:{p}")),
                "immutable field {kind} {p} is missing from schema/src/immutable.rs"
            );
        }
    }
}

#[test]
fn concurrent_applies_on_a_directory_take_turns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(dir.join("out/.hcpc.lock"), "pid 1\n").unwrap();
    let o = run(dir, &["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("locked by another apply (pid 1"), "{}", stderr(&o));
    assert!(!dir.join("out/clusters").exists(), "nothing written while locked");
    // The holder finishes while the second apply waits.
    let lock = dir.join("out/.hcpc.lock");
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        std::fs::remove_file(lock).unwrap();
    });
    let o = run(dir, &["apply", "--auto-approve", "-q", "--lock-timeout", "30s"]);
    releaser.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!dir.join("out/.hcpc.lock").exists(), "lock released");
}

#[test]
fn a_label_removed_from_the_configuration_shows_as_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    let kdl = std::fs::read_to_string(dir.join("fleet.kdl")).unwrap();
    std::fs::write(dir.join("fleet.kdl"), kdl.replace("    etcd", "    labels team=x\n    etcd")).unwrap();
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    std::fs::write(dir.join("fleet.kdl"), kdl).unwrap();
    let o = run(dir, &["plan"]);
    assert!(stdout(&o).contains("- metadata.labels.team = \"x\""), "{}", stdout(&o));
}

/// On a terminal, apply shows the plan and asks; only `yes` applies.
/// (`script` from util-linux gives the binary a pseudo-terminal.)
#[test]
fn apply_asks_for_yes_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    let bin = env!("CARGO_BIN_EXE_hcpc");
    let ask = |answer: &str| {
        let mut child = std::process::Command::new("script")
            .args(["-qec", &format!("{bin} apply"), "/dev/null"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("script(1) from util-linux is installed");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(format!("{answer}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let no = ask("no");
    assert!(
        String::from_utf8_lossy(&no.stdout).contains("Only `yes` is accepted"),
        "{}",
        String::from_utf8_lossy(&no.stdout)
    );
    assert!(!dir.join("out/clusters").exists(), "answering no changes nothing");
    let yes = ask("yes");
    assert!(
        String::from_utf8_lossy(&yes.stdout).contains("Apply complete!"),
        "{}",
        String::from_utf8_lossy(&yes.stdout)
    );
    assert!(dir.join("out/clusters/HostedCluster.example.yaml").is_file());
}

#[test]
fn deleted_and_extra_secret_data_is_never_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    use std::os::unix::fs::PermissionsExt;
    let key_file = dir.join("out/clusters/Secret.example-etcd-encryption-key.yaml");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600, "Secret files are private");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let key_value = key.lines().find_map(|l| l.trim().strip_prefix("key: ")).unwrap().to_string();
    // An extra data key appears in the pull secret; the cluster then leaves the configuration.
    let pull = dir.join("out/clusters/Secret.example-pull-secret.yaml");
    let text = std::fs::read_to_string(&pull).unwrap().replace("\ndata:\n", "\ndata:\n  id_rsa: UFJJVkFURUtFWQ==\n");
    std::fs::write(&pull, text).unwrap();
    let with_extra = run(dir, &["plan", "--format", "json"]);
    assert!(!stdout(&with_extra).contains("UFJJVkFURUtFWQ"), "{}", stdout(&with_extra));
    let secrets = crate::support::pull_secret_in(dir);
    std::fs::write(
        dir.join("fleet.kdl"),
        format!("target dir \"out\"\ncluster other {{\n    release \"q.io/r:1\"\n    pull-secret file=\"{}\"\n    prevent-destroy #false\n    node-pool w replicas=1\n}}\n", secrets.display()),
    )
    .unwrap();
    // Unprotect the old cluster by hand, as a prior apply with prevent-destroy #false would.
    let hc = dir.join("out/clusters/HostedCluster.example.yaml");
    let t = std::fs::read_to_string(&hc).unwrap().replace("    hcpc.openshift.io/prevent-destroy: \"true\"\n", "");
    std::fs::write(&hc, t).unwrap();
    for format in ["text", "markdown", "json", "diff"] {
        let o = run(dir, &["plan", "--format", format]);
        let out = stdout(&o) + &stderr(&o);
        assert!(out.contains("example-etcd-encryption-key"), "{format}: {out}");
        assert!(
            !out.contains(&key_value) && !out.contains("UFJJVkFURUtFWQ") && !out.contains("eyJhdXRocyI6"),
            "{format} leaks: {out}"
        );
    }
}

#[test]
fn a_file_in_the_wrong_place_is_refused_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    std::fs::write(
        dir.join("out/clusters/NodePool.sneaky.yaml"),
        "apiVersion: hypershift.openshift.io/v1beta1\nkind: NodePool\nmetadata:\n  name: notes\n  namespace: ../victim\n",
    )
    .unwrap();
    let o = run(dir, &["plan"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("NodePool.sneaky.yaml holds NodePool/../victim/notes"), "{}", stderr(&o));
}

#[test]
fn unreadable_secret_sources_are_diagnostics_not_hangs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let fifo = dir.join("pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::fs::write(
        dir.join("fleet.kdl"),
        "cluster a {\n    release \"q.io/r:1\"\n    pull-secret file=\"pipe\"\n    node-pool w replicas=1\n}\n",
    )
    .unwrap();
    let o = run(dir, &["check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
}

/// An apply that waited for the lock re-plans under it and refuses when
/// another apply changed the target meanwhile (no etcd key is ever rewritten).
#[test]
fn an_apply_that_waited_refuses_a_changed_target() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    fleet(dir, 3, "8Gi");
    std::fs::write(dir.join("out/.hcpc.lock"), "pid 1\n").unwrap();
    let out = dir.join("out");
    let other = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let np = out.join("clusters/NodePool.example-workers.yaml");
        let text = std::fs::read_to_string(&np).unwrap().replace("replicas: 2", "replicas: 5");
        std::fs::write(&np, text).unwrap();
        std::fs::remove_file(out.join(".hcpc.lock")).unwrap();
    });
    let o = run(dir, &["apply", "--auto-approve", "--lock-timeout", "30s"]);
    other.join().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("changed while this apply waited for the lock"), "{}", stderr(&o));
    let np = std::fs::read_to_string(dir.join("out/clusters/NodePool.example-workers.yaml")).unwrap();
    assert!(np.contains("replicas: 5"), "nothing applied");
}

fn write_kdl(dir: &Path, body: &str) {
    let secrets = crate::support::pull_secret_in(dir);
    std::fs::write(
        dir.join("fleet.kdl"),
        format!(
            "target dir \"out\"\ndefaults {{\n    release \"q.io/r:4.18\"\n    pull-secret file=\"{}\"\n}}\n{body}",
            secrets.display()
        ),
    )
    .unwrap();
}

#[test]
fn review_regressions_in_planning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let kubeconfig = dir.join("infra.kubeconfig");
    std::fs::copy(repo().join("examples/secrets/infra-kubeconfig.yaml"), &kubeconfig).unwrap();

    // One commit may not unprotect a cluster and replace it.
    write_kdl(dir, "cluster a {\n    node-pool w replicas=1\n}\n");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    write_kdl(dir, "cluster a {\n    prevent-destroy #false\n    fips #true\n    node-pool w replicas=1\n}\n");
    let o = run(dir, &["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("hcpc::plan::prevent_destroy"), "{}", stderr(&o));

    // Unprotected first (its own apply), then the change plans as a replacement.
    write_kdl(dir, "cluster a {\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    // Adding external infrastructure forces replacement, like the fields inside it.
    write_kdl(
        dir,
        &format!(
            "cluster a {{\n    prevent-destroy #false\n    infra-cluster namespace=vms kubeconfig-file=\"{}\"\n    node-pool w replicas=1\n}}\n",
            kubeconfig.display()
        ),
    );
    let o = run(dir, &["plan"]);
    assert!(
        stdout(&o).contains("spec.platform.kubevirt.credentials") && stdout(&o).contains("forces replacement"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );

    // A Secret hcpc created and the cluster still references is not pruned.
    write_kdl(dir, "cluster a {\n    pull-secret secret=a-pull-secret\n    node-pool w replicas=1\n}\n");
    let o = run(dir, &["plan"]);
    assert!(!stdout(&o).contains("- Secret/clusters/a-pull-secret"), "{}", stdout(&o));
}

#[test]
fn review_regressions_in_the_language() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Two pools rendering one NodePool is an error, not a silently dropped pool.
    write_kdl(
        dir,
        "cluster a {\n    node-pool x replicas=1 object-name=shared\n    node-pool y replicas=1 object-name=shared\n}\n",
    );
    let o = run(dir, &["check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("render NodePool `shared`"), "{}", stderr(&o));

    // A cluster's own release wins over the pool defaults.
    write_kdl(
        dir,
        "defaults {\n    node-pool {\n        release \"q.io/r:4.17\"\n    }\n}\ncluster a {\n    release \"q.io/r:4.19\"\n    node-pool w replicas=1\n    node-pool old replicas=1 {\n        release \"q.io/r:4.16\"\n    }\n}\n",
    );
    let txt = std::fs::read_to_string(dir.join("fleet.kdl")).unwrap();
    std::fs::write(
        dir.join("fleet.kdl"),
        txt.replacen(
            "defaults {\n    release \"q.io/r:4.18\"",
            "defaults {\n    release \"q.io/r:4.18\"\n    node-pool {\n        release \"q.io/r:4.17\"\n    }",
            1,
        )
        .replacen("defaults {\n    node-pool {\n        release \"q.io/r:4.17\"\n    }\n}\n", "", 1),
    )
    .unwrap();
    let o = run(dir, &["render"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let docs = crate::support::yaml_docs(&stdout(&o));
    let release =
        |name: &str| docs.iter().find(|d| d["metadata"]["name"] == name).unwrap()["spec"]["release"]["image"].clone();
    assert_eq!(release("a"), "q.io/r:4.19");
    assert_eq!(release("a-w"), "q.io/r:4.19", "the cluster's own release beats pool defaults");
    assert_eq!(release("a-old"), "q.io/r:4.16", "a pool's own release beats everything");
}

/// A saved plan is known by its content, whatever its file is called.
#[test]
fn a_saved_plan_is_recognised_by_content_not_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    for name in ["p.bin", "plan", "reviewed.plan.txt"] {
        assert_eq!(run(dir, &["plan", "--out", name, "-q"]).status.code(), Some(0));
    }
    let o = run(dir, &["apply", "p.bin", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("hcpc::parse::syntax"), "{}", stderr(&o));
    assert!(dir.join("out/clusters/NodePool.example-workers.yaml").is_file());
    // Those made before the apply are now stale, and refused as plans.
    let o = run(dir, &["apply", "plan", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("hcpc::plan::stale"), "{}", stderr(&o));

    // JSON that is not a plan is not read as KDL either.
    std::fs::write(dir.join("other.json"), "{\"hello\": 1}\n").unwrap();
    let o = run(dir, &["apply", "other.json", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("other.json is JSON but not a plan saved by `hcpc plan --out`"), "{}", stderr(&o));
}

/// A saved plan edited by hand (desired objects, a field value, the
/// summary, a change left out) is refused, and nothing is written.
#[test]
fn an_edited_saved_plan_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 1, "8Gi");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    fleet(dir, 2, "8Gi");
    assert_eq!(run(dir, &["plan", "--out", "p.json", "-q"]).status.code(), Some(0));
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("p.json")).unwrap()).unwrap();
    let pool = dir.join("out/clusters/NodePool.example-workers.yaml");
    let before = std::fs::read_to_string(&pool).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit, &str); 4] = [
        (
            "desired replicas",
            |p| {
                let np = p["targets"][0]["desired"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|o| o["kind"] == "NodePool")
                    .unwrap();
                np["spec"]["replicas"] = serde_json::json!(50);
            },
            "its desired objects are not what the configuration renders",
        ),
        (
            "a field value",
            |p| {
                let c = p["targets"][0]["plan"]["changes"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|c| c["action"] == "update")
                    .unwrap();
                c["fields"][0]["after"] = serde_json::json!(50);
            },
            "its recorded change to NodePool/clusters/example-workers is not what a fresh plan shows",
        ),
        ("the summary", |p| p["targets"][0]["plan"]["summary"]["change"] = serde_json::json!(0), "its summary"),
        (
            "a change left out",
            |p| p["targets"][0]["plan"]["changes"].as_array_mut().unwrap().retain(|c| c["action"] != "update"),
            "it records nothing for NodePool/clusters/example-workers, which a fresh plan includes",
        ),
    ];
    for (what, edit, reason) in edits {
        let mut edited = original.clone();
        edit(&mut edited);
        std::fs::write(dir.join("edited.json"), serde_json::to_string_pretty(&edited).unwrap()).unwrap();
        let o = run(dir, &["apply", "edited.json", "--auto-approve"]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
        assert!(stderr(&o).contains(reason), "{what}: {}", stderr(&o));
        assert_eq!(std::fs::read_to_string(&pool).unwrap(), before, "{what}: nothing may be written");
    }
    // Untouched, it applies.
    let o = run(dir, &["apply", "p.json", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&pool).unwrap().contains("replicas: 2"));
}

/// Waiting for a directory's lock says who holds it and since when; a
/// lock left by a process of this host that no longer runs is taken over.
#[test]
fn a_directory_lock_names_its_holder_and_a_dead_holder_is_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fleet(dir, 2, "8Gi");
    let lock = dir.join("out/.hcpc.lock");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(&lock, "hcpc@elsewhere/42\n").unwrap();
    let o = run(dir, &["apply", "--auto-approve", "--lock-timeout", "1s"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("waiting for the fleet lock") && out.contains("held by hcpc@elsewhere/42 since "), "{out}");
    assert!(out.contains("ago)"), "says how long it has been held: {out}");
    assert!(stderr(&o).contains("hcpc::apply::locked"), "{}", stderr(&o));

    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&lock, format!("hcpc@{host}/{pid}\n")).unwrap();
    let o = run(dir, &["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("warning: took over the fleet lock out/.hcpc.lock from hcpc@{host}/{pid}"))
            && stderr(&o).contains("which is no longer running"),
        "{}",
        stderr(&o)
    );
    assert!(!lock.exists(), "released");
}

/// Two clusters applied; then one is replaced (an immutable etcd change)
/// with one of its pools replaced too, and the other removed.
fn replace_and_destroy(dir: &Path) {
    let secrets = crate::support::pull_secret_in(dir);
    let cluster = |name: &str, body: &str| {
        format!(
            "cluster {name} {{\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"{}\"\n    prevent-destroy #false\n{body}}}\n",
            secrets.display()
        )
    };
    let example = |size: &str, arch: &str| {
        cluster(
            "example",
            &format!(
                "    etcd size=\"{size}\"\n    node-pool workers replicas=2\n    node-pool gpu {{\n        autoscaling min=1 max=4\n        arch {arch}\n    }}\n"
            ),
        )
    };
    let other = cluster("other", "    availability control-plane=single-replica\n    node-pool w replicas=3\n");
    std::fs::write(dir.join("fleet.kdl"), format!("target dir \"out\"\n{}{other}", example("8Gi", "amd64"))).unwrap();
    let o = run(dir, &["apply", "--auto-approve", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::write(dir.join("fleet.kdl"), format!("target dir \"out\"\n{}", example("16Gi", "s390x"))).unwrap();
}

/// A replaced or destroyed HostedCluster lists what goes with it (its
/// NodePools and their VMs, its etcd volumes, its workloads) in every
/// view; the markdown comment says it first; totals count the VMs.
#[test]
fn replace_and_destroy_are_told_in_words() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    replace_and_destroy(dir);
    let text = run(dir, &["plan", "--color", "never"]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    crate::examples::assert_golden("plan__replace_and_destroy.txt", &stdout(&text));
    let md = stdout(&run(dir, &["plan", "--format", "markdown"]));
    let first_section = md.split("\n#### ").nth(1).unwrap_or_default();
    assert!(first_section.starts_with("Destroyed by this plan"), "destruction comes first:\n{md}");
    crate::examples::assert_golden("plan__replace_and_destroy.md", &md);
    let json: serde_json::Value = serde_json::from_str(&stdout(&run(dir, &["plan", "--format", "json"]))).unwrap();
    assert_eq!(json["impact"]["vms_destroyed"], 3, "other's pool");
    assert_eq!(json["impact"]["vms_replaced"], 6, "example's two pools: 2 VMs and at most 4");
    let part = serde_json::json!({"destruction": json["destruction"], "impact": json["impact"]});
    crate::examples::assert_golden(
        "plan__replace_and_destroy.json",
        &(serde_json::to_string_pretty(&part).unwrap() + "\n"),
    );
}

/// NodePools replaced together (an immutable change on each) say how many
/// VMs go, apart from any roll-out, and the totals count them.
#[test]
fn replaced_node_pools_count_their_vms() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let secrets = crate::support::pull_secret_in(dir);
    let write = |arch: &str| {
        let cluster = |name: &str| {
            format!(
                "cluster {name} {{\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"{}\"\n    node-pool workers replicas=3 {{\n        arch {arch}\n    }}\n}}\n",
                secrets.display()
            )
        };
        std::fs::write(dir.join("fleet.kdl"), format!("target dir \"out\"\n{}{}", cluster("a"), cluster("b"))).unwrap();
    };
    write("amd64");
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    write("s390x");
    let o = run(dir, &["plan", "--color", "never"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("-/+ 2 NodePools  (forces replacement)"), "{text}");
    assert!(text.contains("This replaces 6 VMs."), "{text}");
    assert!(text.contains("VMs replaced: 6"), "{text}");
    assert!(!text.contains("Nodes that will roll"), "a replacement is not a roll-out: {text}");
}

/// Clusters `names`, each with `prevent-destroy` as `protected` says.
fn clusters(dir: &Path, names: &[&str], protected: bool) {
    let secrets = crate::support::pull_secret_in(dir);
    let mut text = "target dir \"out\"\n".to_string();
    for name in names {
        text.push_str(&format!(
            "cluster {name} {{\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"{}\"\n    prevent-destroy #{protected}\n    node-pool w replicas=1\n}}\n",
            secrets.display()
        ));
    }
    std::fs::write(dir.join("fleet.kdl"), text).unwrap();
}

/// `hcpc destroy`, as Terraform's: the plan of every deletion, then
/// confirmation; prevent-destroy refuses; `--cluster` destroys only those.
#[test]
fn destroy_plans_every_deletion_and_honours_prevent_destroy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hc = |name: &str| dir.join(format!("out/clusters/HostedCluster.{name}.yaml"));
    clusters(dir, &["a", "b", "c"], true);
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));

    let refused = run(dir, &["destroy", "--auto-approve"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("hcpc::plan::prevent_destroy"), "{}", stderr(&refused));
    assert!(hc("a").is_file() && hc("b").is_file(), "a refused destroy deletes nothing");

    clusters(dir, &["a", "b", "c"], false);
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    let asks = run(dir, &["destroy"]);
    assert_eq!(asks.status.code(), Some(1), "no terminal to confirm on");
    assert!(stderr(&asks).contains("--auto-approve"), "{}", stderr(&asks));

    let one = run(dir, &["destroy", "--cluster", "a", "--auto-approve"]);
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    let out = stdout(&one);
    assert!(out.contains("- HostedCluster/clusters/a"), "{out}");
    assert!(!out.contains("HostedCluster/clusters/b"), "only the named cluster: {out}");
    assert!(out.contains("Destroy complete! 4 destroyed."), "{out}");
    assert!(!hc("a").exists() && hc("b").is_file() && hc("c").is_file());

    let rest = run(dir, &["destroy", "--auto-approve"]);
    assert_eq!(rest.status.code(), Some(0), "{}", stderr(&rest));
    assert!(stdout(&rest).contains("Destroy complete! 8 destroyed."), "{}", stdout(&rest));
    assert!(!hc("b").exists() && !hc("c").exists());
    // The configuration is unchanged: the next apply recreates them.
    let back = run(dir, &["plan"]);
    assert!(stdout(&back).contains("Plan: 12 to add"), "{}", stdout(&back));
}

/// Removing the last cluster of a fleet is planned as its deletion, with
/// a warning, not refused.
#[test]
fn a_fleet_without_clusters_plans_the_deletion_of_what_it_owns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    clusters(dir, &["last"], false);
    assert_eq!(run(dir, &["apply", "--auto-approve", "-q"]).status.code(), Some(0));
    clusters(dir, &[], false);
    let check = run(dir, &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(stderr(&check).contains("hcpc::lower::no_clusters"), "{}", stderr(&check));
    let plan = run(dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    assert!(stdout(&plan).contains("- HostedCluster/clusters/last"), "{}", stdout(&plan));
    let apply = run(dir, &["apply", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    assert!(!dir.join("out/clusters/HostedCluster.last.yaml").exists());
}
