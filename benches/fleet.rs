//! Fleet benchmark: `cargo bench -p hcpc --bench fleet`.
//!
//! Generates fleets of N clusters × 3 node pools (N = 1, 10, 100, 1,000,
//! 10,000) in two layouts, one file and 16 files, and measures
//!
//! - each pipeline stage in process (read+parse, lower+resolve, render,
//!   YAML), median of several runs;
//! - whole runs of the release `hcpc` binary (`check` and `render` of each
//!   fleet, `render examples/minimal`): median wall time, CPU time and
//!   peak RSS;
//! - with `HCP_BIN` naming an `hcp` binary, `hcp create cluster kubevirt
//!   --render` of the same one cluster in the same run, and the ratio;
//!
//! and compares the medians with the performance targets.
//!
//! Environment:
//! - `HCPC_BENCH_QUICK=1`: N up to 1000 and fewer runs.
//! - `HCPC_BENCH_BIN=PATH`: the `hcpc` binary to run (default: the one
//!   cargo built for this bench, `<target>/release/hcpc`).
//! - `HCPC_BENCH_KEEP=DIR`: write the fleets into DIR and keep them.
//! - `HCP_BIN=PATH`: an `hcp` binary to compare one cluster with.
//!
//! Peak RSS is measured by re-running this binary as a small intermediate
//! process that starts `hcpc`, waits for it and reads
//! `getrusage(RUSAGE_CHILDREN)`: with exactly one child, that is the
//! child's own peak.

#[allow(dead_code)]
mod fleet_gen;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use hcpc::cli::load::read_sources;
use hcpc::ir::{InfraCredentials, SecretSource};
use hcpc::lower::{LowerInput, lower};
use hcpc::parse::parse;
use hcpc::render::{SecretValues, render, write_objects_yaml};
use hcpc::resolve::{ResolvedFleet, resolve};

/// Set in the intermediate process; its arguments are the command to measure.
const CHILD_ENV: &str = "HCPC_BENCH_MEASURE";

/// How many cluster files the split layout has (plus `00-fleet.kdl` with
/// the shared settings).
const SPLIT_FILES: usize = 16;

/// One generated fleet.
struct Fleet {
    clusters: usize,
    /// "1 file" or "16 files".
    layout: &'static str,
    dir: PathBuf,
    /// In-process and whole-process runs.
    runs: (usize, usize),
}

fn main() -> ExitCode {
    if std::env::var_os(CHILD_ENV).is_some() {
        return measure_child();
    }
    let quick = std::env::var_os("HCPC_BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0");
    let bin = match hcpc_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let keep = std::env::var_os("HCPC_BENCH_KEEP").map(PathBuf::from);
    let tmp;
    let root: &Path = match &keep {
        Some(dir) => dir,
        None => {
            tmp = tempfile::Builder::new().prefix("hcpc-bench-").tempdir().expect("temp dir");
            tmp.path()
        }
    };

    print_machine(&bin, quick);

    // (clusters, in-process runs, whole-process runs)
    let sizes: &[(usize, usize, usize)] = if quick {
        &[(1, 5, 11), (10, 5, 5), (100, 3, 5), (1000, 3, 5)]
    } else {
        &[(1, 15, 21), (10, 15, 11), (100, 9, 9), (1000, 5, 9), (10_000, 3, 5)]
    };
    let mut fleets = Vec::new();
    for &(n, inproc, whole) in sizes {
        let dir = root.join(format!("fleet-{n}-single"));
        fleet_gen::write_single_file(&dir, n).expect("write fleet");
        fleets.push(Fleet { clusters: n, layout: "1 file", dir, runs: (inproc, whole) });
        if n >= SPLIT_FILES {
            let dir = root.join(format!("fleet-{n}-split"));
            fleet_gen::write_fleet(&dir, n, n.div_ceil(SPLIT_FILES)).expect("write fleet");
            fleets.push(Fleet { clusters: n, layout: "16 files", dir, runs: (inproc, whole) });
        }
    }

    println!();
    println!("In-process stages, median milliseconds (runs in brackets)");
    println!(
        "{:>8} {:>9} {:>9} {:>8} | {:>10} {:>13} {:>9} {:>9} | {:>9}",
        "clusters", "layout", "KiB", "objects", "read+parse", "lower+resolve", "render", "yaml", "sum"
    );
    for f in &fleets {
        let s = stages(&f.dir, f.runs.0);
        println!(
            "{:>8} {:>9} {:>9} {:>8} | {:>10} {:>13} {:>9} {:>9} | {:>9}  [{}]",
            f.clusters,
            f.layout,
            s.bytes / 1024,
            s.objects,
            ms(s.parse),
            ms(s.lower_resolve),
            ms(s.render),
            ms(s.yaml),
            ms(s.parse + s.lower_resolve + s.render + s.yaml),
            f.runs.0,
        );
        assert_eq!(s.objects, fleet_gen::expected_objects(f.clusters), "fleet of {} renders every object", f.clusters);
    }

    println!();
    println!("Whole process ({}), median of runs", bin.display());
    println!("{:<36} {:>5} {:>10} {:>10} {:>14}", "command", "runs", "wall ms", "CPU ms", "peak RSS MiB");
    let row = |label: &str, bin: &Path, args: &[&str], dir: &Path, runs: usize| -> Measured {
        let m = measure(bin, args, dir, runs);
        println!("{label:<36} {runs:>5} {:>10} {:>10} {:>14.1}", ms(m.wall), ms(m.cpu), mib(m.rss_kib));
        m
    };
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let minimal = row("render examples/minimal", &bin, &["render", "minimal"], &example, sizes[0].2);
    let mut results = Vec::new();
    for f in &fleets {
        let c = row(&format!("check {} clusters, {}", f.clusters, f.layout), &bin, &["check", "."], &f.dir, f.runs.1);
        let r = row(&format!("render {} clusters, {}", f.clusters, f.layout), &bin, &["render", "."], &f.dir, f.runs.1);
        results.push((f.clusters, f.layout, c, r));
    }
    let one = results.iter().find(|r| r.0 == 1).map(|r| r.3).expect("one cluster");
    let hcp = hcp_binary().map(|hcp| {
        let secrets = fleets[0].dir.join("secrets/pull-secret.json");
        let args = [
            "create",
            "cluster",
            "kubevirt",
            "--render",
            "--name",
            "c00000",
            "--node-pool-replicas",
            "2",
            "--memory",
            "8Gi",
            "--cores",
            "2",
            "--release-image",
            "quay.io/openshift-release-dev/ocp-release:4.17.3-multi",
            "--pull-secret",
        ];
        let mut args: Vec<&str> = args.to_vec();
        let secrets = secrets.display().to_string();
        args.push(&secrets);
        row("hcp create cluster kubevirt --render", &hcp, &args, &fleets[0].dir, sizes[0].2)
    });

    println!();
    println!("Targets");
    let worst_one = one.wall.max(minimal.wall);
    let worst_one_rss = one.rss_kib.max(minimal.rss_kib);
    verdict(
        "render of one cluster <= 4 ms wall (position-independent executable)",
        format!("{} ms", ms(worst_one)),
        worst_one <= Duration::from_millis(4),
    );
    verdict(
        "render of one cluster <= 8 MiB peak RSS",
        format!("{:.1} MiB", mib(worst_one_rss)),
        mib(worst_one_rss) <= 8.0,
    );
    if let Some(h) = hcp {
        println!(
            "  same run: hcp {} ms, {:.1} MiB; hcpc is {:.0}x faster",
            ms(h.wall),
            mib(h.rss_kib),
            h.wall.as_secs_f64() / one.wall.as_secs_f64().max(1e-9)
        );
    }
    let get = |n: usize, layout: &str| results.iter().find(|r| r.0 == n && r.1 == layout);
    if let Some((_, _, c, r)) = get(1000, "1 file") {
        verdict(
            "check, 1,000 clusters, 1 file <= 0.35 s",
            format!("{} ms", ms(c.wall)),
            c.wall <= Duration::from_millis(350),
        );
        verdict(
            "render, 1,000 clusters, 1 file <= 0.40 s and <= 150 MiB",
            format!("{} ms, {:.1} MiB", ms(r.wall), mib(r.rss_kib)),
            r.wall <= Duration::from_millis(400) && mib(r.rss_kib) <= 150.0,
        );
    }
    if let Some((_, _, _, r)) = get(1000, "16 files") {
        verdict(
            "render, 1,000 clusters, 16 files <= 0.25 s",
            format!("{} ms", ms(r.wall)),
            r.wall <= Duration::from_millis(250),
        );
    }
    if let Some((_, _, _, r)) = get(10_000, "16 files") {
        verdict(
            "render, 10,000 clusters, 16 files <= 2.5 s",
            format!("{} ms", ms(r.wall)),
            r.wall <= Duration::from_millis(2500),
        );
    }
    let renders: Vec<(usize, Measured)> =
        results.iter().filter(|r| r.1 == "16 files" || r.0 < SPLIT_FILES).map(|r| (r.0, r.3)).collect();
    linear_memory(&renders);
    println!("load average at the end: {}", load_average());
    ExitCode::SUCCESS
}

fn verdict(what: &str, got: String, ok: bool) {
    println!("  {:<4} {what}: {got}", if ok { "PASS" } else { "MISS" });
}

/// Memory grows linearly when the cost per added cluster does not rise with
/// fleet size: the slope over the largest step is at most 1.5 times the
/// slope over the previous one.
fn linear_memory(renders: &[(usize, Measured)]) {
    let pts: Vec<(f64, f64)> = renders.iter().map(|(n, m)| (*n as f64, m.rss_kib as f64)).collect();
    let slopes: Vec<(String, f64)> =
        pts.windows(2).map(|w| (format!("{}->{}", w[0].0, w[1].0), (w[1].1 - w[0].1) / (w[1].0 - w[0].0))).collect();
    let text = slopes.iter().map(|(r, s)| format!("{r}: {s:.1} KiB/cluster")).collect::<Vec<_>>().join(", ");
    let ok = match slopes.as_slice() {
        [.., (_, a), (_, b)] => *b <= a.max(1.0) * 1.5,
        _ => true,
    };
    let first = pts.first().map_or(0.0, |p| p.0);
    let last = pts.last().map_or(0.0, |p| p.0);
    verdict(&format!("peak RSS of render grows linearly from {first} to {last} clusters"), text, ok);
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

// ---------------------------------------------------------------- stages

struct Stages {
    bytes: usize,
    objects: usize,
    parse: Duration,
    lower_resolve: Duration,
    render: Duration,
    yaml: Duration,
}

fn stages(dir: &Path, runs: usize) -> Stages {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let (mut parse_t, mut lower_t, mut render_t, mut yaml_t) = (vec![], vec![], vec![], vec![]);
    let (mut bytes, mut objects) = (0, 0);
    for _ in 0..runs {
        let t = Instant::now();
        let sources = read_sources(dir).expect("read fleet");
        let (parsed, diags) = parse(&sources);
        parse_t.push(t.elapsed());
        assert!(diags.is_empty(), "generated fleet parses");

        let t = Instant::now();
        let (fleet, diags) = lower(&LowerInput { sources: &sources, files: &parsed, home: home.as_deref() });
        let (resolved, rdiags) = resolve(fleet);
        lower_t.push(t.elapsed());
        assert!(
            !diags.has_errors() && !rdiags.has_errors(),
            "generated fleet resolves: {:?} {:?}",
            diags.sorted(),
            rdiags.sorted()
        );

        let secrets = read_secrets(&resolved);
        let t = Instant::now();
        let objs = render(&resolved, &secrets);
        render_t.push(t.elapsed());

        let t = Instant::now();
        let mut text = Vec::new();
        write_objects_yaml(&objs, false, &mut text).expect("writing to memory");
        yaml_t.push(t.elapsed());

        bytes = sources.iter().map(|(_, f)| f.text.len()).sum();
        objects = objs.len();
        std::hint::black_box(text);
    }
    Stages {
        bytes,
        objects,
        parse: median(parse_t),
        lower_resolve: median(lower_t),
        render: median(render_t),
        yaml: median(yaml_t),
    }
}

/// The secret files of a resolved fleet, read as the CLI reads them.
fn read_secrets(resolved: &ResolvedFleet) -> SecretValues {
    let mut values = SecretValues::new();
    for c in &resolved.fleet.clusters {
        let mut sources = vec![c.pull_secret.value.clone()];
        sources.extend(c.ssh_key.as_ref().map(|k| k.value.clone()));
        if let Some(InfraCredentials::KubeconfigFile(f)) = c.infra_cluster.as_ref().map(|i| &i.credentials) {
            sources.push(SecretSource::File(f.value.clone()));
        }
        for s in sources {
            if let SecretSource::File(p) = &s
                && !values.contains_key(&s)
            {
                let bytes = std::fs::read(p).expect("secret file");
                values.insert(s, bytes);
            }
        }
    }
    values
}

// --------------------------------------------------------- whole process

#[derive(Clone, Copy)]
struct Measured {
    wall: Duration,
    /// User plus system time of the process (all its threads).
    cpu: Duration,
    rss_kib: u64,
}

/// The `hcp` binary to compare with, from `HCP_BIN`.
fn hcp_binary() -> Option<PathBuf> {
    let bin = PathBuf::from(std::env::var_os("HCP_BIN").filter(|b| !b.is_empty())?);
    if bin.is_file() {
        Some(bin)
    } else {
        eprintln!("HCP_BIN={} is not a file; skipping the comparison with hcp", bin.display());
        None
    }
}

/// The `hcpc` binary to run.
fn hcpc_binary() -> Result<PathBuf, String> {
    let bin = match std::env::var_os("HCPC_BENCH_BIN") {
        Some(b) => PathBuf::from(b),
        None => PathBuf::from(env!("CARGO_BIN_EXE_hcpc")),
    };
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "no hcpc binary at {}: build it with `cargo build --release -p hcpc` or set HCPC_BENCH_BIN",
            bin.display()
        ))
    }
}

/// Median wall time and median peak RSS of `runs` runs of `bin args` in `dir`
/// (after one warm-up run).
fn measure(bin: &Path, args: &[&str], dir: &Path, runs: usize) -> Measured {
    let me = std::env::current_exe().expect("own path");
    let once = || -> Measured {
        let out = Command::new(&me)
            .env(CHILD_ENV, "1")
            .env("NO_COLOR", "1")
            .arg(bin)
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::inherit())
            .output()
            .expect("run the measuring process");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut f = text.split_whitespace().map(|w| w.parse::<u64>().unwrap_or(u64::MAX));
        let (Some(nanos), Some(rss), Some(cpu), Some(code)) = (f.next(), f.next(), f.next(), f.next()) else {
            panic!("measuring process printed {text:?}");
        };
        assert_eq!(code, 0, "`hcpc {}` in {} failed", args.join(" "), dir.display());
        Measured { wall: Duration::from_nanos(nanos), cpu: Duration::from_micros(cpu), rss_kib: rss }
    };
    once();
    let all: Vec<Measured> = (0..runs).map(|_| once()).collect();
    Measured {
        wall: median(all.iter().map(|m| m.wall).collect()),
        cpu: median(all.iter().map(|m| m.cpu).collect()),
        rss_kib: median(all.iter().map(|m| m.rss_kib).collect()),
    }
}

/// The intermediate process: runs its arguments once with stdout discarded
/// and prints `<wall ns> <peak RSS KiB> <CPU µs> <exit code>`.
fn measure_child() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let Some((bin, rest)) = args.split_first() else { return ExitCode::FAILURE };
    let t = Instant::now();
    let out = Command::new(bin).args(rest).stdout(Stdio::null()).stderr(Stdio::piped()).output();
    let wall = t.elapsed();
    let Ok(out) = out else { return ExitCode::FAILURE };
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).ok();
    let rss = usage.map_or(0, |u| u64::try_from(u.max_rss()).unwrap_or(0));
    let micros = |t: nix::sys::time::TimeVal| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec()).unwrap_or(0)
    };
    let cpu = usage.map_or(0, |u| micros(u.user_time()) + micros(u.system_time()));
    let code = out.status.code().unwrap_or(-1);
    if code != 0 {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    println!("{} {rss} {cpu} {code}", wall.as_nanos());
    ExitCode::SUCCESS
}

// ------------------------------------------------------------------ misc

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn print_machine(bin: &Path, quick: bool) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown".to_string());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0)))
        .unwrap_or(0);
    println!("hcpc fleet benchmark{}", if quick { " (quick: HCPC_BENCH_QUICK)" } else { "" });
    println!("machine: {cores} cores (nproc), CPU {cpu}, {:.1} GiB memory", mem as f64 / 1024.0 / 1024.0);
    println!("binary:  {}", bin.display());
    println!("load:    {} (other work on the machine inflates wall times; CPU times less so)", load_average());
    println!("fleets:  N clusters x 3 node pools, in 1 file or in {SPLIT_FILES} files plus a shared one");
}
