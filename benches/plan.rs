//! Live benchmark: `cargo bench -p hcpc --bench plan`.
//!
//! Starts a real kube-apiserver with etcd (the tests' envtest harness, so
//! the same binaries: `KUBEBUILDER_ASSETS`, `../shared/envtest`, etcd on
//! PATH), applies a generated fleet of N clusters × 3 node pools with the
//! release `hcpc` binary, writes status onto every HostedCluster and
//! NodePool as the HyperShift operator would, then measures whole-process
//! runs of a no-change `hcpc plan` of the same fleet: wall time, hcpc's own
//! CPU time, and the API requests it made, counted by the server
//! (`apiserver_request_total` in `/metrics`). Also times the server's own
//! LISTs of the fleet, so the client's share is visible.
//!
//! Targets for N = 1,000 on two cores: plan ≤ 2 s wall with ≤ 20 requests;
//! apply ≤ 30 s.
//!
//! Environment: `HCPC_BENCH_QUICK=1` measures N = 100 and 1,000 only, with
//! fewer runs; `HCPC_BENCH_SIZES=10,1000` picks the sizes;
//! `HCPC_BENCH_BIN=PATH` picks the `hcpc` binary.
//!
//! `HCPC_BENCH_DRY_RUN=1` instead measures what the server-side dry run
//! costs: a 1,000-cluster create (plan and apply on an empty server) and a
//! release bump of 200 clusters (plan, against a no-change plan of the
//! same fleet), with the server-side applies each sent.
//!
//! `HCPC_BENCH_TARGETS=N` instead compares a no-change plan of N clusters
//! on one management cluster with the same N split over two (N/2 each,
//! every other cluster naming the second with its own `target`), each
//! management cluster a server of its own. Target: two targets no slower
//! than one, as they are read at the same time.

#[allow(dead_code)]
#[path = "../tests/support/envtest/mod.rs"]
mod envtest;
#[allow(dead_code)]
#[path = "fleet_gen.rs"]
mod fleet_gen;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams};
use nix::sys::resource::{UsageWho, getrusage};
use serde_json::json;

use envtest::{Envtest, RequestCounts};

fn hcpc_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HCPC_BENCH_BIN") {
        return PathBuf::from(p);
    }
    // The bench executable lives in <target>/release/deps/.
    let exe = std::env::current_exe().expect("current exe");
    let release = exe.parent().and_then(Path::parent).expect("target/release");
    let bin = release.join("hcpc");
    if !bin.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "hcpc", "--bin", "hcpc"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the release hcpc failed");
    }
    bin
}

/// The infrastructure the generated fleet declares, as the cluster offers it.
fn seed_inventory(k: &Envtest, clusters: usize) {
    seed_devices(k, clusters);
    // One default StorageClass, the fleet's: the harness's own default
    // beside it would be a warning for every cluster.
    k.delete("storageclasses", None, envtest::DEFAULT_STORAGE_CLASS);
    for (name, rwx, block) in
        [("ocs-storagecluster-ceph-rbd", true, true), ("lvm-storageclass", false, false), ("nfs-rwx", true, false)]
    {
        // The fleet relies on the default class, as the generated `infra` declares.
        let mut class = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name}, "provisioner": "bench"});
        if name == "ocs-storagecluster-ceph-rbd" {
            class["metadata"]["annotations"] = json!({"storageclass.kubernetes.io/is-default-class": "true"});
        }
        k.apply_as("bench", &class);
        let modes = if rwx { vec!["ReadWriteMany", "ReadWriteOnce"] } else { vec!["ReadWriteOnce"] };
        k.apply_as(
            "bench",
            &json!({
                "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile", "metadata": {"name": name},
                "status": {"claimPropertySets": [{"accessModes": modes, "volumeMode": if block { "Block" } else { "Filesystem" }}]},
            }),
        );
    }
    k.apply_as(
        "bench",
        &json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
                "metadata": {"name": "ocs-storagecluster-rbdplugin-snapclass"}, "driver": "bench", "deletionPolicy": "Delete"}),
    );
}

/// What the management cluster says about the fleet's host devices, as
/// its `infra` declares them: a Node advertising them (big enough for the
/// whole fleet, so node capacity fits) and the KubeVirt resource
/// permitting them. Discovered facts win over `infra`: without these the
/// plan refuses the GPU pools.
fn seed_devices(k: &Envtest, clusters: usize) {
    let (a100, t4) = fleet_gen::device_capacity(clusters);
    k.apply_as("bench", &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "bench-gpu"}}));
    let mut all = json!({"cpu": "1000000", "memory": "100000Ti", "pods": "1000000", "devices.kubevirt.io/kvm": "1k"});
    all[fleet_gen::A100] = json!(a100.to_string());
    all[fleet_gen::T4] = json!(t4.to_string());
    k.set_status_as("kubelet", "nodes", None, "bench-gpu", json!({"allocatable": all, "capacity": all}));
    k.ensure_namespace("openshift-cnv");
    let permitted = json!([
        {"pciVendorSelector": "10DE:20B0", "resourceName": fleet_gen::A100, "externalResourceProvider": true},
        {"pciVendorSelector": "10DE:1EB8", "resourceName": fleet_gen::T4, "externalResourceProvider": true},
    ]);
    k.apply_as(
        "bench",
        &json!({"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
                "metadata": {"name": "kubevirt-kubevirt-hyperconverged", "namespace": "openshift-cnv"},
                "spec": {"configuration": {"permittedHostDevices": {"pciHostDevices": permitted}}}}),
    );
}

/// A condition as the HyperShift operator writes it.
fn condition(kind: &str, i: usize) -> serde_json::Value {
    json!({"type": kind, "status": "True", "reason": "AsExpected", "observedGeneration": 1,
           "lastTransitionTime": "2026-01-01T00:00:00Z",
           "message": format!("All is well: {kind} reconciled by the operator (pass {i})")})
}

/// Writes status onto every HostedCluster and NodePool through the status
/// subresource, as the operator would on a management cluster: conditions,
/// versions and endpoints that a plan must read past.
fn operator_status(k: &Envtest) {
    const HC_CONDITIONS: [&str; 16] = [
        "Available",
        "Progressing",
        "Degraded",
        "ReconciliationActive",
        "ReconciliationSucceeded",
        "ValidConfiguration",
        "SupportedHostedCluster",
        "ValidHostedControlPlaneConfiguration",
        "ValidReleaseImage",
        "IgnitionEndpointAvailable",
        "EtcdAvailable",
        "KubeAPIServerAvailable",
        "InfrastructureReady",
        "ExternalDNSReachable",
        "ClusterVersionAvailable",
        "ValidKubeVirtInfraNetworkMTU",
    ];
    const NP_CONDITIONS: [&str; 12] = [
        "Ready",
        "AllMachinesReady",
        "AllNodesHealthy",
        "ValidReleaseImage",
        "ValidPlatformImage",
        "ValidMachineConfig",
        "ValidTuningConfig",
        "UpdateManagementEnabled",
        "ReconciliationActive",
        "AutoscalingEnabled",
        "UpdatingVersion",
        "UpdatingConfig",
    ];
    let hc_status = |name: &str| {
        json!({
            "conditions": HC_CONDITIONS.iter().enumerate().map(|(i, c)| condition(c, i)).collect::<Vec<_>>(),
            "version": {"desired": {"image": "quay.io/openshift-release-dev/ocp-release:4.17.3-multi", "version": "4.17.3"},
                        "observedGeneration": 1, "availableUpdates": null,
                        "history": [{"state": "Completed", "version": "4.17.3", "verified": false,
                                     "image": "quay.io/openshift-release-dev/ocp-release:4.17.3-multi",
                                     "startedTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:30:00Z"}]},
            "kubeconfig": {"name": format!("{name}-admin-kubeconfig")},
            "kubeadminPassword": {"name": format!("{name}-kubeadmin-password")},
            "controlPlaneEndpoint": {"host": format!("api.{name}.apps.example.com"), "port": 6443},
            "ignitionEndpoint": format!("ignition-server-clusters-{name}.apps.example.com"),
            "oauthCallbackURLTemplate": format!("https://oauth-clusters-{name}.apps.example.com:443/oauth2callback/[identity-provider-name]"),
            "payloadArch": "Multi",
        })
    };
    let np_status = || {
        json!({
            "conditions": NP_CONDITIONS.iter().enumerate().map(|(i, c)| condition(c, i)).collect::<Vec<_>>(),
            "replicas": 2, "version": "4.17.3",
        })
    };
    let objects: Vec<(&str, String, String)> = ["hostedclusters", "nodepools"]
        .into_iter()
        .flat_map(|plural| {
            k.list(plural, None).into_iter().map(move |o| {
                let ns = o["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
                (plural, ns, o["metadata"]["name"].as_str().unwrap_or_default().to_string())
            })
        })
        .collect();
    // A few writers at a time, as an operator's workers would.
    std::thread::scope(|s| {
        for chunk in objects.chunks(objects.len().div_ceil(4).max(1)) {
            s.spawn(move || {
                for (plural, ns, name) in chunk {
                    let status = if *plural == "hostedclusters" { hc_status(name) } else { np_status() };
                    k.set_status_as("hypershift-operator", plural, Some(ns), name, status);
                }
            });
        }
    });
}

/// CPU time (user + system) of the children waited for so far.
fn children_cpu() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(usage.user_time()) + tv(usage.system_time())
}

/// Runs `hcpc plan` of an applied fleet through `run`, which must find no
/// changes; returns its wall and CPU time.
fn no_change_plan(run: &impl Fn(&[&str]) -> std::process::Output) -> (Duration, Duration) {
    let cpu = children_cpu();
    let start = Instant::now();
    let plan = run(&["plan", "--detailed-exitcode", "."]);
    let wall = start.elapsed();
    let cpu = children_cpu() - cpu;
    assert_eq!(
        plan.status.code(),
        Some(0),
        "an applied fleet plans as no changes: {}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
    (wall, cpu)
}

/// The kinds a plan reads: other requests in `/metrics` are the server's
/// own housekeeping (it renews its own Leases, for one).
fn hcpc_requests(counts: &RequestCounts) -> RequestCounts {
    let kinds = [
        "namespaces",
        "secrets",
        "hostedclusters",
        "nodepools",
        "storageclasses",
        "storageprofiles",
        "volumesnapshotclasses",
        "nodes",
        "kubevirts",
        "configmaps",
    ];
    RequestCounts(
        counts.0.iter().filter(|((_, r, _), _)| kinds.contains(&r.as_str())).map(|(k, v)| (k.clone(), *v)).collect(),
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// Times one LIST of each fleet kind across namespaces: consistent (from
/// etcd) and from the watch cache (`resourceVersion=0`).
fn server_lists(k: &Envtest, runs: usize) -> Vec<(String, Duration, Duration)> {
    let kinds = [
        ("hostedclusters", "hypershift.openshift.io", "v1beta1", "HostedCluster"),
        ("nodepools", "hypershift.openshift.io", "v1beta1", "NodePool"),
        ("secrets", "", "v1", "Secret"),
    ];
    k.block_on(async |client| {
        let mut out = Vec::new();
        for (plural, group, version, kind) in kinds {
            let ar = kube::discovery::ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
                kind: kind.into(),
                plural: plural.into(),
            };
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let time = async |params: ListParams| {
                let mut times = Vec::new();
                for _ in 0..runs {
                    let start = Instant::now();
                    api.list(&params).await.expect("LIST");
                    times.push(start.elapsed());
                }
                median(times)
            };
            let consistent = time(ListParams::default()).await;
            let cached = time(ListParams::default().match_any()).await;
            out.push((plural.to_string(), consistent, cached));
        }
        out
    })
}

/// A generated fleet of `n` clusters in `dir`, every other cluster on
/// context `west` when `split` (the others on the fleet's target).
fn write_split_fleet(dir: &Path, n: usize, split: bool) {
    fleet_gen::write_secrets(dir).expect("secrets");
    for (name, mut text) in fleet_gen::fleet_files(n, 100) {
        if split {
            for i in (1..n).step_by(2) {
                let head = format!("cluster {} {{\n", fleet_gen::cluster_name(i));
                text = text.replace(&head, &format!("{head}    target kube context=west\n"));
            }
        }
        std::fs::write(dir.join(name), text).expect("write fleet");
    }
}

/// One management cluster with `n` clusters against two with `n / 2` each.
fn two_targets(bin: &Path, n: usize, runs: usize) {
    println!("no-change plan of {n} clusters × 3 pools: one management cluster, then two with {} each", n / 2);
    let mut results = Vec::new();
    for split in [false, true] {
        let (Some(east), west) = (Envtest::start(), if split { Envtest::start() } else { None }) else { return };
        seed_inventory(&east, n);
        let dir = tempfile::tempdir().expect("temp dir");
        write_split_fleet(dir.path(), n, split);
        let mut kubeconfig = vec![dir.path().join("east.kubeconfig")];
        std::fs::write(&kubeconfig[0], east.kubeconfig_yaml("east")).expect("kubeconfig");
        if let Some(west) = &west {
            seed_inventory(west, n);
            kubeconfig.push(dir.path().join("west.kubeconfig"));
            std::fs::write(&kubeconfig[1], west.kubeconfig_yaml("west")).expect("kubeconfig");
        }
        let kubeconfig = std::env::join_paths(&kubeconfig).expect("KUBECONFIG");
        let run = |args: &[&str]| {
            Command::new(bin)
                .current_dir(dir.path())
                .env("KUBECONFIG", &kubeconfig)
                .env("NO_COLOR", "1")
                .args(args)
                .args(["--target", "kube:east"])
                .output()
                .expect("hcpc runs")
        };
        let start = Instant::now();
        let apply = run(&["apply", "--auto-approve", "-q", "."]);
        let apply_time = start.elapsed();
        assert!(apply.status.success(), "apply failed: {}", String::from_utf8_lossy(&apply.stderr));
        let (mut walls, mut cpus, mut requests) = (Vec::new(), Vec::new(), 0);
        for _ in 0..runs {
            let before: Vec<RequestCounts> =
                [Some(&east), west.as_ref()].into_iter().flatten().map(Envtest::request_counts).collect();
            let (wall, cpu) = no_change_plan(&run);
            walls.push(wall);
            cpus.push(cpu);
            requests = [Some(&east), west.as_ref()]
                .into_iter()
                .flatten()
                .zip(&before)
                .map(|(k, b)| hcpc_requests(&k.request_counts().since(b)).total())
                .sum();
        }
        let (wall, cpu) = (median(walls), median(cpus));
        let label = if split { format!("2 targets × {}", n / 2) } else { format!("1 target × {n}") };
        println!("\n{label}");
        println!("  apply:               {:>8}", secs(apply_time));
        println!("  no-change plan wall: {:>8}   (median of {runs})", secs(wall));
        println!("  hcpc CPU in plan:    {:>8}", secs(cpu));
        println!("  plan requests:       {:>8}   (all servers)", requests);
        results.push(wall);
    }
    let verdict = if results[1] <= results[0] { "PASS" } else { "MISS" };
    println!("\n  {verdict}: two targets {} vs one {}", secs(results[1]), secs(results[0]));
}

fn main() {
    // `cargo test --benches` runs this with `--list`-like arguments: do nothing then.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::var_os("HCPC_BENCH_DRY_RUN").is_some() {
        dry_run_cost(&hcpc_binary());
        return;
    }
    if let Some(n) = std::env::var("HCPC_BENCH_TARGETS").ok().and_then(|n| n.parse().ok()) {
        let runs = if std::env::var_os("HCPC_BENCH_QUICK").is_some() { 3 } else { 5 };
        two_targets(&hcpc_binary(), n, runs);
        return;
    }
    let quick = std::env::var_os("HCPC_BENCH_QUICK").is_some();
    let sizes: Vec<usize> = match std::env::var("HCPC_BENCH_SIZES") {
        Ok(list) => list.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) if quick => vec![100, 1000],
        Err(_) => vec![10, 100, 1000],
    };
    let runs = if quick { 3 } else { 5 };
    let bin = hcpc_binary();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("plan and apply against a real kube-apiserver ({cores} cores)");
    for n in sizes {
        // A fresh server per size: the request counts and LIST times are the fleet's alone.
        let Some(k) = Envtest::start() else { return };
        seed_inventory(&k, n);
        let dir = tempfile::tempdir().expect("temp dir");
        fleet_gen::write_fleet(dir.path(), n, 100).expect("write fleet");
        let kubeconfig = k.write_kubeconfig(dir.path());
        let run = |args: &[&str]| {
            Command::new(&bin)
                .current_dir(dir.path())
                .env("KUBECONFIG", &kubeconfig)
                .env("NO_COLOR", "1")
                .args(args)
                .args(["--target", "kube"])
                .output()
                .expect("hcpc runs")
        };
        let objects = fleet_gen::expected_objects(n);
        let cpu = children_cpu();
        let start = Instant::now();
        let apply = run(&["apply", "--auto-approve", "-q", "."]);
        let apply_time = start.elapsed();
        let apply_cpu = children_cpu() - cpu;
        assert!(apply.status.success(), "apply failed: {}", String::from_utf8_lossy(&apply.stderr));
        operator_status(&k);

        let mut walls = Vec::new();
        let mut cpus = Vec::new();
        let mut requests = RequestCounts::default();
        for _ in 0..runs {
            let before = k.request_counts();
            let (wall, cpu) = no_change_plan(&run);
            walls.push(wall);
            cpus.push(cpu);
            requests = hcpc_requests(&k.request_counts().since(&before));
        }
        let (wall, cpu) = (median(walls), median(cpus));
        println!("\n{n} clusters × 3 pools ({objects} objects)");
        println!("  apply:               {:>8}   target ≤ 30s at 1,000", secs(apply_time));
        println!("  hcpc CPU in apply:   {:>8}", secs(apply_cpu));
        println!("  no-change plan wall: {:>8}   target ≤ 2s at 1,000 (median of {runs})", secs(wall));
        println!("  hcpc CPU in plan:    {:>8}", secs(cpu));
        println!("  plan requests:       {:>8}   target ≤ 20 ({requests})", requests.total());
        for (kind, consistent, cached) in server_lists(&k, runs) {
            println!("  server LIST {kind:<15} consistent {:>6}, watch cache {:>6}", secs(consistent), secs(cached));
        }
        if n >= 1000 {
            let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
            println!(
                "  {}: plan ≤ 2s; {}: ≤ 20 requests; {}: apply ≤ 30s",
                verdict(wall <= Duration::from_secs(2)),
                verdict(requests.total() <= 20),
                verdict(apply_time <= Duration::from_secs(30))
            );
        }
    }
}

/// Server-side applies (`APPLY` requests, dry runs included) in `counts`.
fn applies(counts: &RequestCounts) -> u64 {
    counts.0.iter().filter(|((verb, ..), _)| verb == "APPLY").map(|(_, n)| *n as u64).sum()
}

/// The dry run's cost: a 1,000-cluster create and a 200-cluster release bump.
fn dry_run_cost(bin: &Path) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("server-side dry run against a real kube-apiserver ({cores} cores)");
    for (n, bump) in [(1000, false), (200, true)] {
        let Some(k) = Envtest::start() else { return };
        seed_inventory(&k, n);
        let dir = tempfile::tempdir().expect("temp dir");
        let files = fleet_gen::write_fleet(dir.path(), n, 100).expect("write fleet");
        let kubeconfig = k.write_kubeconfig(dir.path());
        let run = |args: &[&str]| {
            let before = k.request_counts();
            let start = Instant::now();
            let o = Command::new(bin)
                .current_dir(dir.path())
                .env("KUBECONFIG", &kubeconfig)
                .env("NO_COLOR", "1")
                .args(args)
                .args(["--target", "kube"])
                .output()
                .expect("hcpc runs");
            let wall = start.elapsed();
            assert!(o.status.code() != Some(1), "hcpc {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
            (wall, hcpc_requests(&k.request_counts().since(&before)))
        };
        if !bump {
            let (plan, plan_requests) = run(&["plan", "."]);
            let (apply, apply_requests) = run(&["apply", "--auto-approve", "-q", "."]);
            println!("\n{n}-cluster create ({} objects)", fleet_gen::expected_objects(n));
            println!("  plan:  {:>8}, {} server-side applies (dry runs)", secs(plan), applies(&plan_requests));
            println!(
                "  apply: {:>8}, {} server-side applies (dry runs and writes)",
                secs(apply),
                applies(&apply_requests)
            );
            continue;
        }
        let (_, _) = run(&["apply", "--auto-approve", "-q", "."]);
        operator_status(&k);
        let mut still = Vec::new();
        for _ in 0..3 {
            still.push(run(&["plan", "--detailed-exitcode", "."]).0);
        }
        for f in &files {
            let text = std::fs::read_to_string(f).expect("read fleet file");
            std::fs::write(f, text.replace("4.17.3-multi", "4.17.4-multi")).expect("write fleet file");
        }
        let mut bumped = Vec::new();
        let mut requests = RequestCounts::default();
        for _ in 0..3 {
            let (wall, counts) = run(&["plan", "--detailed-exitcode", "."]);
            bumped.push(wall);
            requests = counts;
        }
        println!("\n{n}-cluster release bump");
        println!("  no-change plan:    {:>8} (median of 3), no dry run", secs(median(still)));
        println!("  release-bump plan: {:>8} (median of 3), {} dry runs", secs(median(bumped)), applies(&requests));
    }
}
