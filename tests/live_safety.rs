//! What plan and apply must never do to a real management cluster, and
//! what they must say: no Secret value in any output (live values and
//! deletes included), no Secret deleted while a HostedCluster still names
//! it, no fight over a namespace two fleets share, no silent wait for the
//! lock. Against the real kube-apiserver (`support::envtest`).

use std::path::PathBuf;
use std::process::Output;

use base64::Engine;
use serde_json::{Value, json};

use crate::support::envtest::{Envtest, Scope};
use crate::support::{hcpc, stderr, stdout};

const RELEASE: &str = "quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64";

/// One configuration applied to the shared server, in its own namespace.
struct Fleet {
    k: &'static Envtest,
    scope: Scope,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Fleet {
    fn new(what: &str) -> Option<Fleet> {
        let k = Envtest::shared()?;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = k.write_kubeconfig(dir.path());
        Some(Fleet { k, scope: k.scope(what), dir, kubeconfig })
    }

    /// Another configuration (its own fleet name and directory) in the
    /// same namespace.
    fn sibling(&self, suffix: &str) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = self.k.write_kubeconfig(dir.path());
        let scope = Scope { namespace: self.scope.namespace.clone(), fleet: format!("{}-{suffix}", self.scope.fleet) };
        Fleet { k: self.k, scope, dir, kubeconfig }
    }

    fn ns(&self) -> &str {
        &self.scope.namespace
    }

    /// Writes a file beside the configuration.
    fn file(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    /// The configuration: this fleet's name and namespace, then `clusters`.
    fn write(&self, clusters: &str) {
        self.write_as(&self.scope.fleet, clusters);
    }

    fn write_as(&self, fleet: &str, clusters: &str) {
        self.file(
            "fleet.kdl",
            &format!(
                "target kube\nfleet {fleet}\ndefaults {{\n    namespace {}\n    release \"{RELEASE}\"\n}}\n{clusters}",
                self.ns()
            ),
        );
    }

    fn run(&self, args: &[&str]) -> Output {
        hcpc().current_dir(self.dir.path()).env("KUBECONFIG", &self.kubeconfig).args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(0), "hcpc {args:?}: {}{}", stdout(&o), stderr(&o));
        o
    }

    fn get(&self, plural: &str, name: &str) -> Option<Value> {
        self.k.get(plural, Some(self.ns()), name)
    }
}

/// Text without whitespace and miette's margin, so that a message matches
/// however the report wrapped it.
fn squeezed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace() && *c != '│').collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every output format, saved plans and apply, while a cluster's pull
/// secret and SSH key change and another cluster is destroyed: neither the
/// old (live) values, nor the new ones, nor the destroyed cluster's
/// Secrets, nor any etcd encryption key appear anywhere.
#[test]
fn no_secret_value_in_any_output_live_values_and_deletes_included() {
    let Some(f) = Fleet::new("secret-scan") else { return };
    let pull = |user: &str| format!("{{\"auths\":{{\"quay.io\":{{\"auth\":\"{}\"}}}}}}", b64(user.as_bytes()));
    let ssh =
        |n: u8| format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{}{n} user@example\n", "SecretSshKeyBody".repeat(2));
    f.file("pull-1.json", &pull("first-user:first-password"));
    f.file("pull-2.json", &pull("second-user:second-password"));
    f.file("ssh-1.pub", &ssh(1));
    f.file("ssh-2.pub", &ssh(2));
    let cluster = |name: &str, n: u8, extra: &str| {
        format!(
            "cluster {name} {{\n    pull-secret file=\"pull-{n}.json\"\n    ssh-key file=\"ssh-{n}.pub\"\n{extra}    node-pool w replicas=1\n}}\n"
        )
    };
    f.write(&(cluster("a", 1, "") + &cluster("b", 1, "    prevent-destroy #false\n")));
    f.ok(&["apply", "--auto-approve", "-q"]);
    let etcd_keys: Vec<String> = ["a", "b"]
        .iter()
        .map(|c| f.get("secrets", &format!("{c}-etcd-encryption-key")).unwrap()["data"]["key"].as_str().unwrap().into())
        .collect();

    // a's pull secret and SSH key change; b leaves the configuration.
    f.write(&cluster("a", 2, ""));
    let mut outputs = Vec::new();
    for format in ["text", "markdown", "json", "diff"] {
        for verbose in [false, true] {
            let mut args = vec!["plan", "--format", format];
            if verbose {
                args.push("-v");
            }
            let o = f.ok(&args);
            outputs.push(stdout(&o) + &stderr(&o));
        }
    }
    let diff = &outputs[6];
    assert!(diff.contains("-  .dockerconfigjson: (sensitive)"), "the update shows: {diff}");
    assert!(diff.contains("+  .dockerconfigjson: (sensitive, changed)"), "the update shows: {diff}");
    assert!(diff.contains(&format!("--- live/Secret/{}/b-etcd-encryption-key", f.ns())), "the delete shows: {diff}");
    let saved = f.ok(&["plan", "--out", "saved.plan"]);
    outputs.push(stdout(&saved) + &stderr(&saved));
    outputs.push(std::fs::read_to_string(f.dir.path().join("saved.plan")).unwrap());
    let applied = f.ok(&["apply", "saved.plan", "--auto-approve"]);
    outputs.push(stdout(&applied) + &stderr(&applied));
    assert!(f.get("secrets", "b-etcd-encryption-key").is_none(), "b's Secrets are destroyed");

    let mut forbidden: Vec<String> = etcd_keys;
    for text in [pull("first-user:first-password"), pull("second-user:second-password"), ssh(1), ssh(2)] {
        forbidden.push(b64(text.as_bytes()));
        forbidden.push(text.trim().to_string());
    }
    for user in ["first-user:first-password", "second-user:second-password"] {
        forbidden.push(user.to_string());
        forbidden.push(b64(user.as_bytes()));
    }
    forbidden.push("SecretSshKeyBody".to_string());
    for out in &outputs {
        for secret in &forbidden {
            assert!(!out.contains(secret.as_str()), "{secret} leaked in:\n{out}");
        }
    }
}

/// An apply that waits for the lock says who holds it, since when and
/// when it expires as this machine judges it; one that sees it expire
/// says it takes it over.
#[test]
fn waiting_for_the_lock_says_who_holds_it_and_until_when() {
    let Some(f) = Fleet::new("lock-wait") else { return };
    f.file("pull.json", "{\"auths\":{}}");
    f.write("cluster c {\n    pull-secret file=\"pull.json\"\n    node-pool w replicas=1\n}\n");
    f.ok(&["apply", "--auto-approve", "-q"]);
    let lease = |holder: &str, renewed: &str, seconds: u64| {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": format!("hcpc-lock-{}", f.scope.fleet), "namespace": f.ns()},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds, "acquireTime": "2026-01-02T03:04:05.000000Z", "renewTime": renewed},
        })
    };
    let now = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    f.k.create(&lease("someone@elsewhere/42", &now, 300));
    f.write("cluster c {\n    pull-secret file=\"pull.json\"\n    node-pool w replicas=2\n}\n");
    let o = f.run(&["apply", "--auto-approve", "--lock-timeout", "3s"]);
    assert_eq!(o.status.code(), Some(1));
    // The wait is progress (stdout); the refusal an error (stderr).
    let err = stdout(&o) + &stderr(&o);
    assert!(
        err.contains(&format!(
            "waiting for the fleet lock (Lease {}/hcpc-lock-{}), held by someone@elsewhere/42 since 2026-01-02T03:04:05Z",
            f.ns(),
            f.scope.fleet
        )),
        "{err}"
    );
    assert!(err.contains("last renewed") && err.contains("it expires unless renewed within 300s"), "{err}");
    assert!(err.contains("error[hcpc::apply::locked]: the fleet is locked by someone@elsewhere/42"), "{err}");
    assert!(err.contains("nothing was applied"), "{err}");
    assert_eq!(f.get("nodepools", "c-w").unwrap()["spec"]["replicas"], 1);

    // Its holder crashed: the Lease goes unchanged for its duration, as
    // this apply sees it, and is taken over, saying so.
    f.k.delete("leases", Some(f.ns()), &format!("hcpc-lock-{}", f.scope.fleet));
    f.k.create(&lease("crashed@elsewhere/7", "2026-01-02T03:04:05.000000Z", 1));
    let o = f.ok(&["apply", "--auto-approve", "--lock-timeout", "30s"]);
    let err = stderr(&o);
    assert!(err.contains("warning: took over the fleet lock"), "{err}");
    assert!(err.contains("from crashed@elsewhere/7 since 2026-01-02T03:04:05Z"), "{err}");
    assert!(err.contains("this apply saw it unchanged for 1s"), "{err}");
    assert_eq!(f.get("nodepools", "c-w").unwrap()["spec"]["replicas"], 2);
    assert!(f.get("leases", &format!("hcpc-lock-{}", f.scope.fleet)).is_none(), "the lock is released");
}

/// Pruning keeps a Secret a live HostedCluster outside the fleet still
/// names: another fleet's cluster (`pull-secret secret=…`) or one made by
/// hand. The plan says so, and apply leaves it.
#[test]
fn prune_keeps_secrets_that_live_clusters_still_name() {
    let Some(a) = Fleet::new("prune-refs") else { return };
    let b = a.sibling("b");
    let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJlbmNobWFya2tleWZvcmhjcGNmbGVldHM a@example\n";
    for f in [&a, &b] {
        f.file("pull.json", "{\"auths\":{}}");
        f.file("ssh.pub", ssh);
    }
    a.write("cluster one {\n    pull-secret file=\"pull.json\"\n    ssh-key file=\"ssh.pub\"\n    prevent-destroy #false\n    node-pool w replicas=1\n}\n");
    a.ok(&["apply", "--auto-approve", "-q"]);
    // Another fleet's cluster uses one's pull secret...
    b.write("cluster two {\n    pull-secret secret=one-pull-secret\n    node-pool w replicas=1\n}\n");
    b.ok(&["apply", "--auto-approve", "-q"]);
    // ...and a cluster made by hand (from one's own, renamed) its SSH key.
    let mut by_hand = a.get("hostedclusters", "one").unwrap();
    by_hand["metadata"] = json!({"name": "by-hand", "namespace": a.ns()});
    by_hand.as_object_mut().unwrap().remove("status");
    by_hand["spec"]["pullSecret"]["name"] = json!("two-pull-secret-made-elsewhere");
    by_hand["spec"]["secretEncryption"]["aescbc"]["activeKey"]["name"] = json!("by-hand-key");
    a.k.apply_as("someone", &by_hand);

    // Fleet a drops cluster one.
    a.write("cluster three {\n    pull-secret file=\"pull.json\"\n    node-pool w replicas=1\n}\n");
    let plan = a.ok(&["plan"]);
    let (out, err) = (stdout(&plan), stderr(&plan));
    let ns = a.ns();
    assert!(out.contains(&format!("- HostedCluster/{ns}/one")), "{out}");
    assert!(out.contains(&format!("- Secret/{ns}/one-etcd-encryption-key")), "{out}");
    assert!(!out.contains(&format!("- Secret/{ns}/one-pull-secret")), "still used by two: {out}");
    assert!(!out.contains(&format!("- Secret/{ns}/one-ssh-key")), "still used by by-hand: {out}");
    let kept = |secret: &str, hc: &str| {
        squeezed(&err).contains(&squeezed(&format!(
            "Secret/{ns}/{secret} is no longer declared, but HostedCluster/{ns}/{hc} still names it, so it is kept"
        )))
    };
    assert!(kept("one-pull-secret", "two") && kept("one-ssh-key", "by-hand"), "{err}");
    a.ok(&["apply", "--auto-approve", "-q"]);
    assert!(a.get("hostedclusters", "one").is_none());
    assert!(a.get("secrets", "one-etcd-encryption-key").is_none(), "unreferenced Secrets are pruned");
    assert!(a.get("secrets", "one-pull-secret").is_some(), "the pull secret two uses is kept");
    assert!(a.get("secrets", "one-ssh-key").is_some(), "the SSH key by-hand uses is kept");
    assert_eq!(b.run(&["plan", "--detailed-exitcode"]).status.code(), Some(0), "fleet b is untouched");
}

/// Two fleets with clusters in one namespace: the first claims the
/// Namespace, the second leaves it alone and says so, and both converge
/// instead of relabelling it on every apply.
#[test]
fn two_fleets_sharing_a_namespace_converge_and_say_so() {
    let Some(a) = Fleet::new("shared-ns") else { return };
    let b = a.sibling("b");
    for (f, name) in [(&a, "one"), (&b, "two")] {
        f.file("pull.json", "{\"auths\":{}}");
        f.write(&format!("cluster {name} {{\n    pull-secret file=\"pull.json\"\n    node-pool w replicas=1\n}}\n"));
        f.ok(&["apply", "--auto-approve", "-q"]);
    }
    let owner = |ns: &str| {
        a.k.get("namespaces", None, ns).unwrap()["metadata"]["labels"]["applyset.kubernetes.io/part-of"].clone()
    };
    let first = owner(a.ns());
    for _ in 0..2 {
        for f in [&a, &b] {
            let o = f.run(&["plan", "--detailed-exitcode"]);
            assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
            f.ok(&["apply", "--auto-approve", "-q"]);
            assert_eq!(owner(a.ns()), first, "the Namespace keeps its owner");
        }
    }
    let o = b.ok(&["plan"]);
    let said = format!("namespace `{}` is shared with another fleet (ApplySet {})", a.ns(), first.as_str().unwrap());
    assert!(squeezed(&stderr(&o)).contains(&squeezed(&said)), "{}", stderr(&o));
    assert!(!stderr(&a.ok(&["plan"])).contains("shared with another fleet"), "the owner has nothing to say");
}

/// Destroying a cluster counts every live NodePool naming it, also one
/// made by hand (no ApplySet label) with its `clusterName`: the plan must
/// not under-count what goes.
#[test]
fn destruction_counts_a_hand_made_node_pool_of_the_cluster() {
    let Some(f) = Fleet::new("hand-pool") else { return };
    f.file("pull.json", "{\"auths\":{}}");
    let keep = "cluster a {\n    pull-secret file=\"pull.json\"\n    node-pool w replicas=1\n}\n";
    f.write(&format!(
        "{keep}cluster x2 {{\n    pull-secret file=\"pull.json\"\n    prevent-destroy #false\n    node-pool w replicas=2\n}}\n"
    ));
    f.ok(&["apply", "--auto-approve", "-q"]);
    // A pool added by hand with kubectl, naming x2.
    f.k.apply_as(
        "kubectl-client-side-apply",
        &json!({"apiVersion": "hypershift.openshift.io/v1beta1", "kind": "NodePool",
                "metadata": {"name": "x2-extra", "namespace": f.ns()},
                "spec": {"clusterName": "x2", "replicas": 3, "management": {"upgradeType": "Replace"},
                         "platform": {"type": "KubeVirt"}, "release": {"image": RELEASE}}}),
    );
    f.write(keep);
    let o = f.ok(&["plan", "--format", "json"]);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let lost = &plan["destruction"]["clusters"][0];
    let pools: Vec<&str> =
        lost["node_pools"].as_array().unwrap().iter().filter_map(|p| p["id"]["name"].as_str()).collect();
    assert_eq!(pools, ["x2-extra", "x2-w"], "{plan:#}");
    assert_eq!(plan["destruction"]["vms_destroyed"], 5, "{plan:#}");
    let text = stdout(&f.ok(&["plan"]));
    assert!(text.contains(&format!("- NodePool/{}/x2-extra and its 3 VMs", f.ns())), "{text}");
    assert!(text.contains("VMs destroyed: 5"), "{text}");
}

/// A cluster one fleet owns, declared by a second fleet, is refused by
/// the second, never adopted: its plan fails naming the other ApplySet and
/// how to move the cluster on purpose, its apply writes nothing, and the
/// owner's plan stays `No changes.`
#[test]
fn a_cluster_of_another_fleet_is_refused_not_adopted() {
    let Some(x) = Fleet::new("owned") else { return };
    x.file("pull.json", "{\"auths\":{}}");
    let cluster = "cluster x1 {\n    pull-secret file=\"pull.json\"\n    node-pool w replicas=1\n}\n";
    x.write(cluster);
    x.ok(&["apply", "--auto-approve", "-q"]);
    let owner = x.get("hostedclusters", "x1").unwrap()["metadata"]["labels"]["applyset.kubernetes.io/part-of"].clone();

    let y = x.sibling("y");
    y.file("pull.json", "{\"auths\":{}}");
    y.write(&cluster.replace("replicas=1", "replicas=3"));
    let o = y.run(&["plan"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("hcpc::fleet::owned_by_other_fleet"), "{err}");
    assert!(
        err.contains(&format!("HostedCluster/{}/x1 is a member of another fleet (ApplySet applyset-", x.ns())),
        "{err}"
    );
    assert!(err.contains(owner.as_str().unwrap().trim_start_matches("applyset-")), "the owner is named: {err}");
    assert!(err.contains("it is not taken over") && err.contains("relabel it with this fleet's ApplySet"), "{err}");
    let o = y.run(&["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let hc = x.get("hostedclusters", "x1").unwrap();
    assert_eq!(hc["metadata"]["labels"]["applyset.kubernetes.io/part-of"], owner, "not adopted");
    assert_eq!(x.get("nodepools", "x1-w").unwrap()["spec"]["replicas"], 1, "nothing written");
    x.ok(&["plan", "--detailed-exitcode"]);
}

/// The plan foresees a server-side apply conflict: a Secret made by hand
/// (another field manager owns its data) is refused by the dry run, naming
/// that manager, before anything is written, unless `--force-conflicts`.
#[test]
fn the_plan_shows_a_conflict_with_another_manager() {
    let Some(f) = Fleet::new("conflict") else { return };
    f.file("pull.json", "{\"auths\":{}}");
    f.k.ensure_namespace(f.ns());
    let hand = base64::engine::general_purpose::STANDARD.encode("{\"auths\":{\"by-hand\":{}}}");
    f.k.apply_as(
        "kubectl-create",
        &json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                "metadata": {"name": "x9-pull-secret", "namespace": f.ns()},
                "data": {".dockerconfigjson": hand}}),
    );
    f.write("cluster x9 {\n    pull-secret file=\"pull.json\"\n    node-pool w replicas=1\n}\n");
    let o = f.run(&["plan"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("Secret/{}/x9-pull-secret would conflict with another field manager", f.ns())),
        "{err}"
    );
    assert!(err.contains("kubectl-create"), "the other manager is named: {err}");
    assert!(err.contains("--force-conflicts"), "{err}");
    let o = f.run(&["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(f.get("secrets", "x9-etcd-encryption-key").is_none(), "nothing was written: {}", stderr(&o));
    assert!(f.get("hostedclusters", "x9").is_none());
    f.ok(&["apply", "--auto-approve", "--force-conflicts", "-q"]);
    assert!(f.get("hostedclusters", "x9").is_some());
}
