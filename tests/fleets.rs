//! One fleet over two management clusters: two real kube-apiservers with
//! the HyperShift CRDs (the shared [`Envtest`] server as `east`, a server
//! of the test's own as `west`), driven through the `hcpc` binary. One
//! plan and one apply over both; a cluster moved between them; pruning on
//! one only; one of them failing or gone mid-plan and mid-apply;
//! concurrent applies.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::envtest::Envtest;
use crate::support::fault_proxy::FaultProxy;
use crate::support::{hcpc, stderr, stdout};

const RELEASE: &str = "quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64";

/// A fleet directory whose kubeconfig has two contexts, `east` and `west`.
struct Two {
    dir: tempfile::TempDir,
    /// `KUBECONFIG`: one file per context.
    kubeconfig: String,
    ns: String,
    fleet: String,
}

impl Two {
    /// `east_proxy`: reach east through this fault proxy.
    fn new(east: &Envtest, west: &Envtest, what: &str, east_proxy: Option<&FaultProxy>) -> Two {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, yaml: String| -> PathBuf {
            let p = dir.path().join(name);
            std::fs::write(&p, yaml).unwrap();
            p
        };
        let e = write(
            "east.kubeconfig",
            east_proxy.map_or_else(|| east.kubeconfig_yaml("east"), |p| p.kubeconfig_yaml("east")),
        );
        let w = write("west.kubeconfig", west.kubeconfig_yaml("west"));
        let scope = east.scope(what);
        Two { kubeconfig: format!("{}:{}", e.display(), w.display()), dir, ns: scope.namespace, fleet: scope.fleet }
    }

    /// `fleet.kdl`: east is the fleet's target, then `body`.
    fn write(&self, body: &str) {
        let secret = crate::support::pull_secret_in(self.dir.path());
        std::fs::write(
            self.dir.path().join("fleet.kdl"),
            format!(
                "target kube context=east\nfleet {fleet}\ndefaults {{\n    namespace {ns}\n    release \"{RELEASE}\"\n    pull-secret file=\"{secret}\"\n    prevent-destroy #false\n}}\n{body}",
                fleet = self.fleet,
                ns = self.ns,
                secret = secret.display(),
            ),
        )
        .unwrap();
    }

    fn run_in(&self, dir: &Path, args: &[&str]) -> Output {
        hcpc().current_dir(dir).env("KUBECONFIG", &self.kubeconfig).args(args).output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_in(self.dir.path(), args)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(0), "hcpc {args:?}:\n{}{}", stdout(&o), stderr(&o));
        o
    }

    fn hc(&self, on: &Envtest, name: &str) -> Option<Value> {
        on.get("hostedclusters", Some(&self.ns), name)
    }
}

/// `a` on east (the fleet's target), `b` on west (its own).
const A_EAST_B_WEST: &str = "cluster a {\n    node-pool workers replicas=1\n}\ncluster b {\n    target kube context=west\n    node-pool workers replicas=2\n}\n";

#[test]
fn one_plan_and_one_apply_over_two_management_clusters() {
    let (Some(east), Some(west)) = (Envtest::shared(), Envtest::start()) else { return };
    let t = Two::new(east, &west, "fleet2", None);
    t.write(A_EAST_B_WEST);

    let plan = t.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}{}", stdout(&plan), stderr(&plan));
    let out = stdout(&plan);
    let (east_name, west_name) = (format!("kube:east ({})", east.url()), format!("kube:west ({})", west.url()));
    for expected in [
        format!("── Target {east_name} ──"),
        format!("── Target {west_name} ──"),
        format!("  {east_name}: Plan: 5 to add, 0 to change, 0 to replace, 0 to destroy."),
        format!("  {west_name}: Plan: 5 to add, 0 to change, 0 to replace, 0 to destroy."),
        "Plan: 10 to add, 0 to change, 0 to replace, 0 to destroy, over 2 targets.".to_string(),
    ] {
        assert!(out.contains(&expected), "missing `{expected}` in:\n{out}");
    }
    // Sections in target order: east before west.
    assert!(out.find("── Target kube:east").unwrap() < out.find("── Target kube:west").unwrap(), "{out}");
    assert!(t.hc(east, "a").is_none() && t.hc(&west, "b").is_none(), "plan changes nothing");

    // Every format, read as a reviewer would.
    let json: Value = serde_json::from_str(&stdout(&t.ok(&["plan", "--format", "json"]))).unwrap();
    assert_eq!(json["format_version"], "3");
    assert_eq!(json["summary"]["add"], 10);
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["target"], east_name.as_str());
    assert_eq!(targets[1]["target"], west_name.as_str());
    assert!(targets[1]["changes"].as_array().unwrap().iter().any(|c| c["id"]["name"] == "b"), "{json}");
    let md = stdout(&t.ok(&["plan", "--format", "markdown"]));
    assert!(md.starts_with("## hcpc plan for 2 targets\n"), "{md}");
    assert!(md.contains(&format!("| `{east_name}` | 5 | 0 | 0 | 0 | 0 |")), "{md}");
    assert!(md.contains("| **fleet** | **10** | **0** | **0** | **0** | **0** |"), "{md}");
    assert!(md.contains(&format!("### hcpc plan for `{west_name}`")), "{md}");

    let apply = t.ok(&["apply", "--auto-approve"]);
    let out = stdout(&apply);
    assert!(out.contains("Apply complete! 10 added"), "{out}");
    assert!(out.contains(&format!("{west_name}: Apply complete! 5 added")), "{out}");
    assert!(out.contains(&format!("{west_name}: + Namespace/{}", t.ns)), "the lock's Namespace is reported: {out}");
    assert!(out.contains(&format!("{west_name}: + HostedCluster/{}/b", t.ns)), "lines name their target: {out}");
    assert!(t.hc(east, "a").is_some() && t.hc(east, "b").is_none(), "a on east only");
    assert!(t.hc(&west, "b").is_some() && t.hc(&west, "a").is_none(), "b on west only");
    // One ApplySet parent and one released Lease per target.
    let parent = format!("hcpc-fleet-{}", t.fleet);
    for k in [east, &west] {
        assert!(k.get("secrets", Some(&t.ns), &parent).is_some(), "ApplySet parent on {}", k.url());
    }

    let again = t.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}{}", stdout(&again), stderr(&again));
    assert!(stdout(&again).contains("No changes. All 2 targets match the configuration."), "{}", stdout(&again));

    // The same name and namespace on both targets is two clusters.
    t.write(&format!("{A_EAST_B_WEST}cluster twin {{\n    node-pool workers replicas=1\n}}\ncluster twin {{\n    target kube context=west\n    node-pool workers replicas=1\n}}\n"));
    let twins = t.ok(&["plan"]);
    assert!(
        stdout(&twins).contains("Plan: 8 to add, 0 to change, 0 to replace, 0 to destroy, over 2 targets."),
        "{}",
        stdout(&twins)
    );
    // …but twice on one target is a collision, with file, line and column.
    t.write(&format!("{A_EAST_B_WEST}cluster a {{\n    node-pool workers replicas=1\n}}\n"));
    let twice = t.run(&["plan"]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        stderr(&twice).contains("cluster `a` is declared twice") && stderr(&twice).contains("fleet.kdl:"),
        "{}",
        stderr(&twice)
    );

    // Pruning on one target never touches the other.
    t.write("cluster b {\n    target kube context=west\n    node-pool workers replicas=2\n}\n");
    let prune = t.ok(&["plan", "--format", "json"]);
    let json: Value = serde_json::from_str(&stdout(&prune)).unwrap();
    assert_eq!(json["targets"][0]["summary"]["destroy"], 4, "{json}");
    assert_eq!(json["targets"][1]["summary"]["destroy"], 0, "{json}");
    t.ok(&["apply", "--auto-approve", "-q"]);
    assert!(t.hc(east, "a").is_none(), "a pruned from east");
    assert!(t.hc(&west, "b").is_some(), "b kept on west");

    // A move: destroyed on west, created on east, with a new etcd key.
    // (West stays in the fleet through `c`, or hcpc would not look there.)
    let old_key = west.get("secrets", Some(&t.ns), "b-etcd-encryption-key").unwrap()["data"]["key"].clone();
    let west_c = "cluster c {\n    target kube context=west\n    node-pool workers replicas=1\n}\n";
    t.write(&format!("cluster b {{\n    node-pool workers replicas=2\n}}\n{west_c}"));
    let plan = t.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let out = stdout(&plan);
    assert!(
        out.contains(&format!(
            "HyperShift cannot migrate a hosted cluster between management clusters: HostedCluster/{}/b is destroyed on {west_name} and created on {east_name}",
            t.ns
        )),
        "{out}"
    );
    assert!(out.contains(&format!("HostedCluster/{}/b  (moves to {east_name})", t.ns)), "{out}");
    let md = stdout(&t.ok(&["plan", "--format", "markdown"]));
    assert!(md.contains("#### Moves between management clusters") && md.contains("cannot migrate"), "{md}");
    let refused = t.run(&["apply", "--auto-approve"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("--allow-replace"), "{}", stderr(&refused));
    assert!(t.hc(&west, "b").is_some() && t.hc(east, "b").is_none(), "nothing moved");
    t.ok(&["apply", "--auto-approve", "--allow-replace", "-q"]);
    assert!(t.hc(east, "b").is_some(), "b created on east");
    assert!(t.hc(&west, "b").is_none(), "b destroyed on west");
    let new_key = east.get("secrets", Some(&t.ns), "b-etcd-encryption-key").unwrap()["data"]["key"].clone();
    assert!(new_key.is_string() && new_key != old_key, "the etcd key is never copied");
    t.ok(&["plan", "--detailed-exitcode"]);

    // Moving a protected cluster is refused, in words.
    t.write(&format!("cluster b {{\n    prevent-destroy #true\n    node-pool workers replicas=2\n}}\n{west_c}"));
    t.ok(&["apply", "--auto-approve", "-q"]);
    t.write(
        "cluster b {\n    target kube context=west\n    prevent-destroy #true\n    node-pool workers replicas=2\n}\n",
    );
    let protected = t.run(&["plan"]);
    assert_eq!(protected.status.code(), Some(1));
    // As read, whatever the line breaks of the terminal rendering.
    let err: Vec<String> = stderr(&protected).split_whitespace().filter(|w| *w != "│").map(str::to_string).collect();
    let err = err.join(" ");
    assert!(err.contains("hcpc::plan::prevent_destroy"), "{err}");
    assert!(err.contains(&format!("moves from {east_name} to {west_name}, which destroys it")), "{err}");
    assert!(err.contains("HyperShift cannot migrate a hosted cluster"), "{err}");
}

#[test]
fn an_unreachable_or_failing_target_is_named_and_a_rerun_converges() {
    let (Some(east), Some(west)) = (Envtest::shared(), Envtest::start()) else { return };
    let proxy = FaultProxy::start(east);
    let t = Two::new(east, &west, "down2", Some(&proxy));
    t.write(A_EAST_B_WEST);
    let east_name = format!("kube:east ({})", proxy.url());

    // East answers nothing: the plan fails, naming it; nothing is planned.
    proxy.faults().fail_matching("*", "", 503, 1_000_000);
    let o = t.run(&["plan", "--request-timeout", "10s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains(&east_name) && !err.contains("kube:west"), "names the failing target only: {err}");
    assert!(stdout(&o).is_empty(), "no partial plan: {}", stdout(&o));
    proxy.faults().clear();
    // East goes away mid-plan: discovery answered, the LISTs do not.
    proxy.faults().fail_matching("GET", "hostedclusters", 503, 1_000_000);
    let o = t.run(&["plan", "--request-timeout", "10s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("cannot read {east_name}")), "{err}");
    assert!(err.contains("nothing was planned") && stdout(&o).is_empty(), "{err}");
    proxy.faults().clear();

    // East fails mid-apply (its HostedCluster is refused): west's work
    // stops too, the report names each target, exit 1.
    proxy.faults().fail_matching("PATCH", "/hostedclusters/", 500, 1_000_000);
    let o = t.run(&["apply", "--auto-approve", "--request-timeout", "10s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("error: {east_name}: HostedCluster/{}/a", t.ns)), "{err}");
    assert!(err.contains(&format!("{east_name}: not applied:")), "{err}");
    assert!(err.contains("kube:west") && err.contains("run apply again"), "{err}");
    assert!(t.hc(east, "a").is_none());
    proxy.faults().clear();
    t.ok(&["apply", "--auto-approve", "-q"]);
    assert!(t.hc(east, "a").is_some() && t.hc(&west, "b").is_some());
    t.ok(&["plan", "--detailed-exitcode"]);

    // West stops altogether: the plan fails naming it.
    drop(west);
    let o = t.run(&["plan", "--request-timeout", "10s"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("kube:west"), "{}", stderr(&o));
}

#[test]
fn saved_plans_record_every_target() {
    let (Some(east), Some(west)) = (Envtest::shared(), Envtest::start()) else { return };
    let t = Two::new(east, &west, "saved2", None);
    t.write(A_EAST_B_WEST);
    t.ok(&["plan", "--out", "p.json"]);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(t.dir.path().join("p.json")).unwrap()).unwrap();
    assert_eq!(saved["targets"].as_array().map(Vec::len), Some(2));
    // A saved plan whose targets are not the fleet's is refused.
    t.write("cluster a {\n    node-pool workers replicas=1\n}\ncluster b {\n    node-pool workers replicas=2\n}\n");
    let o = t.run(&["apply", "p.json", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("stale") && stderr(&o).contains("the plan was made for targets"), "{}", stderr(&o));
    assert!(t.hc(east, "a").is_none() && t.hc(&west, "b").is_none(), "nothing applied");
    t.write(A_EAST_B_WEST);
    t.ok(&["apply", "p.json", "--auto-approve", "-q"]);
    assert!(t.hc(east, "a").is_some() && t.hc(&west, "b").is_some());
}

/// Two applies at once over both targets, one of them naming west as the
/// fleet's target: locks are taken in target order, so neither waits for
/// the other forever; the state converges.
#[test]
fn concurrent_applies_over_two_targets_never_deadlock() {
    let (Some(east), Some(west)) = (Envtest::shared(), Envtest::start()) else { return };
    let t = Two::new(east, &west, "race2", None);
    t.write(A_EAST_B_WEST);
    let other = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(t.dir.path().join("fleet.kdl")).unwrap();
    // Same fleet, written the other way round.
    let swapped = text
        .replace("target kube context=east\n", "target kube context=west\n")
        .replace("cluster a {\n", "cluster a {\n    target kube context=east\n")
        .replace("cluster b {\n    target kube context=west\n", "cluster b {\n")
        // Its own copy of the pull secret: secret files stay in the fleet's tree.
        .replace(&t.dir.path().display().to_string(), &other.path().display().to_string());
    crate::support::pull_secret_in(other.path());
    std::fs::write(other.path().join("fleet.kdl"), swapped).unwrap();
    let spawn = |dir: &Path| {
        hcpc()
            .current_dir(dir)
            .env("KUBECONFIG", &t.kubeconfig)
            .args(["apply", "--auto-approve", "-q", "--lock-timeout", "60s"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(t.dir.path()), spawn(other.path()));
    let outcomes = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
    // One applies; the other applies too or, having waited, finds the
    // targets changed and applies nothing.
    assert!(outcomes.iter().any(|o| o.status.success()), "{}\n{}", stderr(&outcomes[0]), stderr(&outcomes[1]));
    for o in &outcomes {
        assert!(o.status.success() || stderr(o).contains("hcpc::plan::stale"), "{}", stderr(o));
    }
    t.ok(&["plan", "--detailed-exitcode"]);
    assert!(t.hc(east, "a").is_some() && t.hc(&west, "b").is_some());
}

/// `target` in a cluster is checked like the top-level one: once per
/// block, `kube` or `dir`, with file, line and column.
#[test]
fn a_cluster_target_is_checked_like_the_top_level_one() {
    let dir = tempfile::tempdir().unwrap();
    let secret = crate::support::pull_secret_in(dir.path());
    std::fs::write(
        dir.path().join("fleet.kdl"),
        format!(
            "defaults {{\n    release \"{RELEASE}\"\n    pull-secret file=\"{}\"\n}}\ncluster a {{\n    target kube context=x\n    target dir \"y\"\n    node-pool w replicas=1\n}}\ncluster b {{\n    target ssh \"z\"\n    node-pool w replicas=1\n}}\n",
            secret.display()
        ),
    )
    .unwrap();
    let o = hcpc().current_dir(dir.path()).args(["check", "fleet.kdl"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("hcpc::lower::duplicate_setting") && err.contains("`target` is set twice in `cluster`"),
        "{err}"
    );
    assert!(err.contains("fleet.kdl:7:5") && err.contains("help: keep one `target`"), "{err}");
    assert!(err.contains("`ssh` is not a valid value for `target KIND`") && err.contains("fleet.kdl:11:12"), "{err}");
}

/// Two contexts of one server are one management cluster: planning them
/// as two targets would have each prune the other's clusters.
#[test]
fn two_names_for_one_management_cluster_are_refused() {
    let Some(east) = Envtest::shared() else { return };
    let t = Two::new(east, east, "same2", None);
    t.write(A_EAST_B_WEST);
    let o = t.run(&["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("are the same management cluster") && err.contains("kube:west"), "{err}");
    assert!(stdout(&o).is_empty());
}

/// `--cluster` over two targets: only the named cluster's target changes,
/// the other's pending change stays pending.
#[test]
fn cluster_limit_spans_targets() {
    let (Some(east), Some(west)) = (Envtest::shared(), Envtest::start()) else { return };
    let t = Two::new(east, &west, "fleet-limit", None);
    t.write(A_EAST_B_WEST);
    t.ok(&["apply", "--auto-approve", "-q"]);
    t.write(&A_EAST_B_WEST.replace("replicas=1", "replicas=3").replace("replicas=2", "replicas=4"));
    let json: Value = serde_json::from_str(&stdout(&t.ok(&["plan", "--cluster", "b", "--format", "json"]))).unwrap();
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(json["summary"]["change"], 1, "{json}");
    assert!(targets.iter().all(|p| p["limited_to"] == serde_json::json!(["b"])), "{json}");
    t.ok(&["apply", "--cluster", "b", "--auto-approve", "-q"]);
    let replicas =
        |on: &Envtest, name: &str| on.get("nodepools", Some(&t.ns), name).unwrap()["spec"]["replicas"].clone();
    assert_eq!(replicas(&west, "b-workers"), 4);
    assert_eq!(replicas(east, "a-workers"), 1, "a's change on east is left pending");
}
