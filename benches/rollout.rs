//! Rollout benchmark: `cargo bench -p hcpc --bench rollout`.
//!
//! A real kube-apiserver (the tests' envtest harness) with the HyperShift
//! operator stand-in (`tests/support/operator`, 1 s per control plane and
//! 1 s per NodePool roll-out), a fleet of 200 clusters × 3 NodePools
//! installed on one release, then one `hcpc apply --wait` moving it to the
//! next over three waves:
//!
//! - canary: 10 clusters, `max-parallel=5`
//! - early: 40 clusters, `max-parallel="50%"` (20)
//! - prod: the other 150, `max-parallel="50%"` (75)
//!
//! Each wave takes two batches of (control plane 1 s, then pools 1 s), so
//! the critical path the waves allow is 3 × 2 × 2 s = 12 s. Reported: wall
//! time against it, the API requests hcpc made, counted by the server
//! (`apiserver_request_total`) less the stand-in's own, and the CPU time
//! of the server, of hcpc and of the stand-in.
//!
//! The wall time is then taken apart along the chain of steps that really
//! bounded it, from the stand-in's timeline: each link is either hcpc
//! reacting (from the status that let a step go, as the server accepted
//! it, to the stand-in seeing hcpc's write) or the stand-in working (from
//! seeing a new release to its completing status accepted: the step's
//! delay plus its own writes).
//!
//! `HCPC_BENCH_BIN=PATH` picks the `hcpc` binary (default: the one built
//! with this bench's profile); `HCPC_BENCH_STEP_SECS=N` the stand-in's
//! step (default 1).
//!
//! Figures: docs/performance.md, A fleet upgrade (measure on an otherwise idle
//! machine: the server, the stand-in and hcpc share its cores).

#[allow(dead_code)]
#[path = "../tests/support/envtest/mod.rs"]
mod envtest;
#[allow(dead_code)]
#[path = "../tests/support/operator/mod.rs"]
mod operator;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use envtest::{DEFAULT_CONTEXT, Envtest};
use operator::{Delays, Event, Moment, Operator};

const OLD: &str = "quay.io/openshift-release-dev/ocp-release:4.19.3-x86_64";
const NEW: &str = "quay.io/openshift-release-dev/ocp-release:4.20.1-x86_64";
const CLUSTERS: usize = 200;
/// The waves: (first cluster, clusters, max-parallel), as `fleet` writes them.
const WAVES: [(usize, usize, usize); 3] = [(0, 10, 5), (10, 40, 20), (50, 150, 75)];
/// Each wave is two batches of two steps (control plane, then pools).
const STEPS_ON_THE_CRITICAL_PATH: u32 = 12;

/// The stand-in's step: 1 s, or `HCPC_BENCH_STEP_SECS` (longer steps show
/// how much of the overhead is fixed per step).
fn step() -> Duration {
    let secs = std::env::var("HCPC_BENCH_STEP_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    Duration::from_secs(secs)
}

/// This process's CPU time so far (the operator stand-in runs in it).
fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((field(11) + field(12)) * 10)
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

fn hcpc_binary() -> PathBuf {
    std::env::var_os("HCPC_BENCH_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hcpc")), PathBuf::from)
}

fn fleet(dir: &Path, ns: &str, release: &str) {
    // A copy beside the fleet: secret files must lie in the fleet's tree.
    let secret = dir.join("pull-secret.json");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/secrets/pull-secret.json"), &secret)
        .expect("copy the example pull secret");
    let mut kdl = format!(
        "target kube\nfleet rollout-bench\ndefaults {{\n    namespace {ns}\n    release \"{release}\"\n    pull-secret file=\"{}\"\n}}\n",
        secret.display()
    );
    for i in 0..CLUSTERS {
        let wave = match i {
            0..10 => "canary",
            10..50 => "early",
            _ => "prod",
        };
        debug_assert!(WAVES.iter().any(|(first, n, _)| (*first..first + n).contains(&i)));
        kdl.push_str(&format!(
            "cluster c{i:03} {{\n    labels wave={wave}\n    node-pool a replicas=1\n    node-pool b replicas=1\n    node-pool c replicas=1\n}}\n"
        ));
    }
    kdl.push_str(
        "rollout {\n    wave canary selector=\"wave=canary\" max-parallel=5\n    wave early selector=\"wave=early\" max-parallel=\"50%\"\n    wave prod max-parallel=\"50%\"\n}\n",
    );
    std::fs::write(dir.join("fleet.kdl"), kdl).expect("write fleet.kdl");
}

/// Clusters whose control plane and three pools report `release`.
fn settled(k: &Envtest, ns: &str, release: &str) -> usize {
    let version = operator::version_of(release);
    let hcs = k.list("hostedclusters", Some(ns));
    let pools = k.list("nodepools", Some(ns));
    hcs.iter()
        .filter(|hc| {
            let head = &hc["status"]["version"]["history"][0];
            let name = hc["metadata"]["name"].as_str().unwrap_or_default();
            head["image"] == release
                && head["state"] == "Completed"
                && pools
                    .iter()
                    .filter(|p| p["spec"]["clusterName"] == name)
                    .all(|p| p["status"]["version"] == version.as_str())
        })
        .count()
}

fn main() {
    let Some(k) = Envtest::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = k.write_kubeconfig(dir.path());
    let ns = "rollout-bench";
    k.ensure_namespace(ns);
    let sim =
        Operator::start(&k.kubeconfig_yaml(DEFAULT_CONTEXT), ns, Delays { control_plane: step(), node_pool: step() });
    let hcpc = |args: &[&str]| {
        // hcpc's own CPU time, where GNU time is installed.
        let timed = Path::new("/usr/bin/time").exists();
        let mut command = if timed { Command::new("/usr/bin/time") } else { Command::new(hcpc_binary()) };
        if timed {
            command.args(["-f", "hcpc CPU: %Us user, %Ss system, %MKB peak"]).arg(hcpc_binary());
        }
        let o = command
            .current_dir(dir.path())
            .env("KUBECONFIG", &kubeconfig)
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .expect("hcpc runs");
        assert!(o.status.success(), "hcpc {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        o
    };

    fleet(dir.path(), ns, OLD);
    hcpc(&["apply", "--auto-approve", "-q"]);
    let start = Instant::now();
    while settled(&k, ns, OLD) < CLUSTERS {
        assert!(start.elapsed() < Duration::from_secs(600), "the first install did not settle");
        std::thread::sleep(Duration::from_millis(500));
    }

    fleet(dir.path(), ns, NEW);
    let (before, sim_before, cpu_before, sim_cpu_before) =
        (k.request_counts(), sim.requests(), k.server_cpu(), own_cpu());
    let start = Instant::now();
    let out = hcpc(&["apply", "--auto-approve", "--wait", "--timeout", "20m"]);
    let wall = start.elapsed();
    let server_cpu = k.server_cpu().saturating_sub(cpu_before);
    let sim_cpu = own_cpu().saturating_sub(sim_cpu_before);
    let counts = k.request_counts().since(&before);
    let sim_requests = sim.requests() - sim_before;
    assert_eq!(settled(&k, ns, NEW), CLUSTERS, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(sim.violations().is_empty(), "pools ahead of their control plane: {:?}", sim.violations());
    let err = String::from_utf8_lossy(&out.stderr);
    let passes = err.lines().filter(|l| l.starts_with("rollout:")).count();
    let own_cpu = err.lines().rfind(|l| l.starts_with("hcpc CPU:")).unwrap_or("hcpc CPU: (not measured)");
    let critical_path = step() * STEPS_ON_THE_CRITICAL_PATH;
    println!("rollout of {CLUSTERS} clusters x 3 NodePools over 3 waves, {}s steps", step().as_secs());
    println!(
        "  wall {:.1}s, critical path {}s ({:.0}% over)",
        wall.as_secs_f64(),
        critical_path.as_secs(),
        (wall.as_secs_f64() / critical_path.as_secs_f64() - 1.0) * 100.0
    );
    println!("  summary lines printed: {passes}");
    println!("  {own_cpu}; operator stand-in {:.1}s", sim_cpu.as_secs_f64());
    println!(
        "  CPU: etcd and kube-apiserver {:.1}s ({:.0}% of the machine's {} cores over the run)",
        server_cpu.as_secs_f64(),
        server_cpu.as_secs_f64() / wall.as_secs_f64() / cores() * 100.0,
        cores()
    );
    println!(
        "  API requests: {} in all, {} by the operator stand-in, so {} by hcpc",
        counts.total(),
        sim_requests,
        counts.total().saturating_sub(sim_requests)
    );
    println!("  by verb and resource (both clients): {counts}");
    match Chain::of(&sim.timeline(), start, NEW) {
        Some(chain) => chain.print(),
        None => println!("  (the stand-in's timeline is incomplete: no critical chain)"),
    }
}

fn cluster_name(i: usize) -> String {
    format!("c{i:03}")
}

/// The chain of steps that bounded the wall time, link by link back from
/// the last cluster done to the apply's start.
struct Chain {
    /// From the apply's start to the first control plane write seen.
    first_write: Duration,
    /// hcpc reacting: a control plane done → its pools' write seen.
    pool_reactions: Vec<Duration>,
    /// hcpc reacting: a cluster (or wave) done → the next cluster's write seen.
    start_reactions: Vec<Duration>,
    /// The stand-in working: control plane steps, then NodePool steps.
    control_plane_steps: Vec<Duration>,
    node_pool_steps: Vec<Duration>,
}

impl Chain {
    fn of(timeline: &[Moment], start: Instant, image: &str) -> Option<Chain> {
        let first = |object: &str, event: &Event| {
            timeline.iter().find(|m| m.object == object && m.event == *event).map(|m| m.at)
        };
        let seen = Event::Release(image.to_string());
        let done = Event::Completed(image.to_string());
        let mut chain = Chain {
            first_write: Duration::ZERO,
            pool_reactions: vec![],
            start_reactions: vec![],
            control_plane_steps: vec![],
            node_pool_steps: vec![],
        };
        // Each cluster: its control plane (seen, done) and its last pool (seen, done).
        let mut clusters = Vec::new();
        for i in 0..CLUSTERS {
            let c = cluster_name(i);
            let hc = format!("HostedCluster/{c}");
            let (hc_seen, hc_done) = (first(&hc, &seen)?, first(&hc, &done)?);
            let pools = ["a", "b", "c"].map(|p| format!("NodePool/{c}-{p}"));
            let last = pools.iter().max_by_key(|p| first(p, &done))?;
            clusters.push((hc_seen, hc_done, first(last, &seen)?, first(last, &done)?));
        }
        // What let each cluster start: nothing (the first ones), the end of
        // the wave before, or the cluster of its wave whose end freed a slot.
        let enabler = |i: usize| -> Option<usize> {
            let (first, n, parallel) = *WAVES.iter().find(|(f, n, _)| (*f..f + n).contains(&i))?;
            let j = i - first;
            if j >= parallel {
                let mut ends: Vec<usize> = (first..first + n).collect();
                ends.sort_by_key(|&k| clusters[k].3);
                Some(ends[j - parallel])
            } else {
                (0..first).max_by_key(|&k| clusters[k].3)
            }
        };
        let mut at = (0..CLUSTERS).max_by_key(|&i| clusters[i].3)?;
        loop {
            let (hc_seen, hc_done, pool_seen, pool_done) = clusters[at];
            chain.node_pool_steps.push(pool_done.saturating_duration_since(pool_seen));
            chain.pool_reactions.push(pool_seen.saturating_duration_since(hc_done));
            chain.control_plane_steps.push(hc_done.saturating_duration_since(hc_seen));
            match enabler(at) {
                Some(before) => {
                    chain.start_reactions.push(hc_seen.saturating_duration_since(clusters[before].3));
                    at = before;
                }
                None => {
                    chain.first_write = hc_seen.saturating_duration_since(start);
                    return Some(chain);
                }
            }
        }
    }

    fn print(&self) {
        let sum = |d: &[Duration]| d.iter().sum::<Duration>().as_secs_f64();
        let range = |d: &[Duration]| {
            let ms = |d: Option<&Duration>| d.map_or(0, |d| d.as_millis());
            format!("{}–{} ms", ms(d.iter().min()), ms(d.iter().max()))
        };
        let hcpc = sum(&self.pool_reactions) + sum(&self.start_reactions);
        let stand_in = sum(&self.control_plane_steps) + sum(&self.node_pool_steps);
        println!("  the critical chain, {} clusters long:", self.control_plane_steps.len());
        println!("    before the first write (plan, locks): {:.1}s", self.first_write.as_secs_f64());
        println!(
            "    hcpc reacting: {hcpc:.1}s ({} control plane → pools, {}; {} cluster or wave done → next cluster, {})",
            self.pool_reactions.len(),
            range(&self.pool_reactions),
            self.start_reactions.len(),
            range(&self.start_reactions),
        );
        println!(
            "    the stand-in's steps: {stand_in:.1}s ({} control planes, {}; {} NodePool roll-outs, {})",
            self.control_plane_steps.len(),
            range(&self.control_plane_steps),
            self.node_pool_steps.len(),
            range(&self.node_pool_steps),
        );
    }
}
