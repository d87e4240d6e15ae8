//! `hcpc status` against a real kube-apiserver with the HyperShift operator
//! stand-in writing status: the counts and what is not fine (text,
//! markdown, JSON), `--detailed-exitcode` for a scheduled job, `--cluster`,
//! `--watch` following an upgrade, and the HTML page rendered by headless
//! Chromium.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::examples::assert_golden;
use crate::support::envtest::DEFAULT_CONTEXT;
use crate::support::live_fleet::{LiveFleet, RELEASE};
use crate::support::operator::{Delays, Failure, Operator};
use crate::support::{repo, stderr, stdout};

const NEW: &str = "quay.io/openshift-release-dev/ocp-release:4.20.1-x86_64";

struct Env {
    fleet: LiveFleet,
    operator: Operator,
}

fn env(what: &str) -> Option<Env> {
    let fleet = LiveFleet::new(what)?;
    fleet.k.ensure_namespace(fleet.ns());
    let operator = Operator::start(&fleet.k.kubeconfig_yaml(DEFAULT_CONTEXT), fleet.ns(), Delays::default());
    Some(Env { fleet, operator })
}

/// A cluster with one pool of one node; on `release` when given.
fn cluster(name: &str, release: Option<&str>, labels: &str) -> String {
    let release = release.map(|r| format!("    release \"{r}\"\n")).unwrap_or_default();
    let labels = if labels.is_empty() { String::new() } else { format!("    labels {labels}\n") };
    format!("cluster {name} {{\n{release}{labels}    node-pool workers replicas=1\n}}\n")
}

impl Env {
    fn hc(&self, name: &str) -> Value {
        self.fleet.k.get("hostedclusters", Some(self.fleet.ns()), name).unwrap_or(Value::Null)
    }

    /// Whether the stand-in reports `name` on `image`, its pool included.
    fn settled(&self, name: &str, image: &str) -> bool {
        let head = &self.hc(name)["status"]["version"]["history"][0];
        let pool = self.fleet.k.get("nodepools", Some(self.fleet.ns()), &format!("{name}-workers")).unwrap_or_default();
        head["image"] == image
            && head["state"] == "Completed"
            && pool["status"]["version"] == crate::support::operator::version_of(image)
    }

    fn until(&self, what: &str, limit: Duration, done: impl Fn(&Env) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(start.elapsed() < limit, "{what} not within {}s", limit.as_secs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `hcpc status ARGS`: (exit code, standard output).
    fn status(&self, args: &[&str]) -> (i32, String) {
        let mut all = vec!["status"];
        all.extend_from_slice(args);
        let o = self.fleet.run(&all);
        assert!(o.status.code() != Some(1), "hcpc {all:?} failed:\n{}{}", stdout(&o), stderr(&o));
        (o.status.code().unwrap_or(-1), stdout(&o))
    }

    /// Four clusters installed on RELEASE; then a2 upgrading to NEW and
    /// failing, a3 upgrading to NEW slowly, and b1's labels changed in
    /// the configuration and not applied.
    fn troubled_fleet(&self) {
        let names = ["a1", "a2", "a3", "b1"];
        let body: String = names.iter().map(|n| cluster(n, None, "")).collect();
        self.fleet.write_fleet(&body);
        self.fleet.ok(&["apply", "--auto-approve"]);
        self.until("install", Duration::from_secs(60), |e| names.iter().all(|n| e.settled(n, RELEASE)));
        self.operator
            .fail("a2", Failure::Degraded { reason: "EtcdUnhealthy".into(), message: "etcd lost quorum".into() });
        self.operator
            .set_delays(Delays { control_plane: Duration::from_secs(600), node_pool: Duration::from_millis(800) });
        let upgrading = [cluster("a1", None, ""), cluster("a2", Some(NEW), ""), cluster("a3", Some(NEW), "")].concat();
        self.fleet.write_fleet(&(upgrading.clone() + &cluster("b1", None, "")));
        self.fleet.ok(&["apply", "--auto-approve"]);
        self.until("a2 degraded, a3 upgrading", Duration::from_secs(30), |e| {
            let degraded = e.hc("a2")["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Degraded" && c["status"] == "True"));
            let a3 = &e.hc("a3")["status"]["version"]["history"][0];
            degraded && a3["image"] == NEW && a3["state"] == "Partial"
        });
        self.fleet.write_fleet(&(upgrading + &cluster("b1", None, "tier=gold")));
    }
}

/// The first screen: counts, then only the clusters that are not fine,
/// each with why; the same as markdown for a pull request; JSON carries
/// every cluster with its conditions, pools and roll-out.
#[test]
fn status_leads_with_counts_and_lists_what_is_not_fine() {
    let Some(e) = env("status-views") else { return };
    e.troubled_fleet();

    let (code, text) = e.status(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("4 clusters: 2 healthy · 1 upgrading · 1 degraded · 1 out of sync\n"),
        "counts first:\n{text}"
    );
    assert!(!text.contains("a1"), "a healthy cluster in sync is not listed without -v:\n{text}");
    assert_golden("status__troubled.txt", &text);

    let (_, verbose) = e.status(&["-v"]);
    assert!(verbose.contains("healthy: a1\n"), "-v lists every cluster:\n{verbose}");

    let (_, markdown) = e.status(&["--format", "markdown"]);
    let markdown = regex::Regex::new(r"observed [0-9TZ:-]+").unwrap().replace(&markdown, "observed TIME");
    assert_golden("status__troubled.md", &markdown);

    let (_, json) = e.status(&["--format", "json"]);
    let doc: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(doc["counts"]["clusters"], 4);
    let by_name = |n: &str| doc["clusters"].as_array().unwrap().iter().find(|c| c["name"] == n).cloned().unwrap();
    let a1 = by_name("a1");
    assert_eq!(a1["health"], "healthy");
    assert_eq!(a1["version"]["running"], "4.20.0");
    assert_eq!(a1["node_pools"][0]["name"], "workers");
    assert_eq!(a1["node_pools"][0]["ready"], 1);
    let a2 = by_name("a2");
    assert_eq!(a2["health"], "degraded");
    let degraded = a2["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Degraded").cloned().unwrap();
    assert_eq!((degraded["status"].as_str(), degraded["reason"].as_str()), (Some("True"), Some("EtcdUnhealthy")));
    assert_eq!(a2["version"]["desired"], "4.20.1");
    assert_eq!(a2["version"]["state"], "Partial");
    assert_eq!(a2["rollout"]["state"], "failed", "{a2:#}");
    assert_eq!(by_name("a3")["rollout"]["state"], "control-plane");
    assert_eq!(by_name("b1")["sync"]["change"].as_u64().map(|n| n > 0), Some(true));
}

/// A scheduled job: exit 2 while anything is degraded or out of sync, 0
/// for the clusters that are fine.
#[test]
fn status_detailed_exitcode_and_cluster_filter() {
    let Some(e) = env("status-exit") else { return };
    e.troubled_fleet();
    assert_eq!(e.status(&["--detailed-exitcode"]).0, 2);
    let (code, text) = e.status(&["--detailed-exitcode", "--cluster", "a1"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("1 cluster: 1 healthy\n"), "{text}");
    let (code, text) = e.status(&["--detailed-exitcode", "--cluster", "a*"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.starts_with("3 clusters: 1 healthy · 1 upgrading · 1 degraded\n"), "{text}");
}

/// `--watch` re-renders as the operator reports: an upgrade applied while
/// it runs shows upgrading, then healthy on the new version.
#[test]
fn status_watch_follows_an_upgrade() {
    let Some(e) = env("status-watch") else { return };
    e.fleet.write_fleet(&cluster("w1", None, ""));
    e.fleet.ok(&["apply", "--auto-approve"]);
    e.until("install", Duration::from_secs(60), |e| e.settled("w1", RELEASE));
    e.operator.set_delays(Delays { control_plane: Duration::from_secs(2), node_pool: Duration::from_secs(1) });

    let mut child = e
        .fleet
        .command(&["status", "--watch", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("start hcpc status --watch");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::Null));
        }
    });
    let next = |what: &str, want: &dyn Fn(&Value) -> bool| -> Value {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let left = Duration::from_secs(60).saturating_sub(start.elapsed());
            match rx.recv_timeout(left) {
                Ok(v) if want(&v) => return v,
                Ok(v) => seen.push(v["counts"].clone()),
                Err(_) => panic!("no view where {what} within 60s; counts seen: {seen:?}"),
            }
        }
    };
    let first = next("the first view", &|_| true);
    assert_eq!(first["counts"]["healthy"], 1, "{first:#}");

    e.fleet.write_fleet(&cluster("w1", Some(NEW), ""));
    e.fleet.ok(&["apply", "--auto-approve", "--wait", "--timeout", "60s"]);
    next("w1 upgrading", &|v| v["counts"]["upgrading"] == 1);
    let done = next("w1 healthy on 4.20.1", &|v| {
        v["counts"]["healthy"] == 1 && v["clusters"][0]["version"]["running"] == "4.20.1"
    });
    assert_eq!(done["counts"]["out_of_sync"], 0, "re-planned after the apply: {done:#}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Debian's `chromium`, or `CHROMIUM`; `None` outside CI when missing.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("CHROMIUM").map(PathBuf::from).or_else(|| {
        ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
            std::env::var_os("PATH")
                .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
        })
    });
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"));
    if found.is_none() {
        assert!(!ci, "CI is set, so headless Chromium is required (Debian package `chromium`)");
        eprintln!("chromium is not installed: skipped");
    }
    found
}

/// Headless Chromium on `page` with `args` (`--dump-dom`, `--screenshot=…`).
fn browse(browser: &Path, profile: &Path, page: &str, args: &[&str]) -> String {
    let o = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(page)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(o.status.success(), "chromium failed: {}", stderr(&o));
    stdout(&o)
}

/// The HTML page in a real browser: counts, one row per cluster with its
/// state, the filter from the address chosen by its script, and a
/// timeline of the latest upgrade (control plane, then the pool).
#[test]
fn status_html_page_in_headless_chromium() {
    let Some(browser) = chromium() else { return };
    let Some(e) = env("status-html") else { return };
    e.troubled_fleet();
    let (_, html) = e.status(&["--format", "html"]);
    assert!(!html.contains("http://") && !html.contains("https://"), "no external assets");
    let dir = e.fleet.dir.path();
    let file = dir.join("status.html");
    std::fs::write(&file, &html).unwrap();
    let profile = tempfile::tempdir().unwrap();

    let url = format!("file://{}#degraded", file.display());
    let dom = browse(&browser, profile.path(), &url, &["--dump-dom"]);
    let counts = regex::Regex::new(r#"data-count="(\w[\w-]*)"><b>(\d+)</b>"#).unwrap();
    let shown: Vec<(String, String)> =
        counts.captures_iter(&dom).map(|c| (c[1].to_string(), c[2].to_string())).collect();
    for want in [("healthy", "2"), ("upgrading", "1"), ("degraded", "1"), ("pending", "1")] {
        assert!(shown.contains(&(want.0.to_string(), want.1.to_string())), "count {want:?} in {shown:?}");
    }
    let rows =
        regex::Regex::new(r#"<tr data-state="([\w-]+)" data-sync="([\w-]+)" data-cluster="(\w+)"( hidden="")?>"#)
            .unwrap();
    let rows: Vec<(String, String, bool)> =
        rows.captures_iter(&dom).map(|c| (c[3].to_string(), c[1].to_string(), c.get(4).is_some())).collect();
    assert_eq!(
        rows,
        [
            ("a1".to_string(), "healthy".to_string(), true),
            ("a2".to_string(), "degraded".to_string(), false),
            ("a3".to_string(), "upgrading".to_string(), true),
            ("b1".to_string(), "healthy".to_string(), true),
        ],
        "#degraded shows only the degraded cluster"
    );
    assert!(dom.contains("EtcdUnhealthy"), "the failing condition is on the page");
    // Every cluster's install (control plane, then its pool); a2 and a3's
    // upgrades under way.
    let bars = regex::Regex::new(r#"class="(bar[\w ]*)" data-what="([\w ]+)""#).unwrap();
    let bars: Vec<(String, String)> = bars.captures_iter(&dom).map(|c| (c[1].to_string(), c[2].to_string())).collect();
    assert!(bars.contains(&("bar open".to_string(), "control plane".to_string())), "{bars:?}");
    assert!(bars.contains(&("bar pool".to_string(), "workers".to_string())), "{bars:?}");

    let shots = repo().join("target/status");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    browse(
        &browser,
        profile.path(),
        &format!("file://{}", file.display()),
        &[&format!("--screenshot={}", png.display()), "--window-size=1280,900"],
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "a screenshot of the page at {} ({size} bytes)", png.display());
}

/// Bad input stops `status` as it stops `check`: the diagnostic with its
/// place, exit 1, nothing on standard output; so does a flag that does not
/// apply.
#[test]
fn status_of_a_broken_configuration_says_where_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.kdl"), "cluster a {\n    node-pool workers replicas=\"two\"\n}\n").unwrap();
    let o = crate::support::run_in(dir.path(), &["status", "--target", "dir:out"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(stderr(&o).contains("fleet.kdl:2:"), "{}", stderr(&o));

    let o = crate::support::run_in(dir.path(), &["status", "--watch", "--format", "html"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--watch does not apply to --format html"), "{}", stderr(&o));
}

/// A fleet over a management cluster and a directory: every cluster is
/// shown with its target, from one read of each.
#[test]
fn status_covers_every_target_of_the_fleet() {
    let Some(e) = env("status-targets") else { return };
    let body = cluster("k1", None, "") + "cluster d1 {\n    target dir \"lab\"\n    node-pool workers replicas=1\n}\n";
    e.fleet.write_fleet(&body);
    e.fleet.ok(&["apply", "--auto-approve"]);
    e.until("install", Duration::from_secs(60), |e| e.settled("k1", RELEASE));
    let (code, json) = e.status(&["--format", "json", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{json}");
    let doc: Value = serde_json::from_str(&json).unwrap();
    let seen: Vec<(String, String, String)> = doc["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let target = c["target"].as_str().unwrap_or_default();
            (
                c["name"].as_str().unwrap_or_default().into(),
                target.split(':').next().unwrap_or_default().into(),
                c["health"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("d1".into(), "dir".into(), "no-status".into()), ("k1".into(), "kube".into(), "healthy".into())],
        "{json}"
    );
    let (_, text) = e.status(&["-v"]);
    assert!(text.starts_with("2 clusters: 1 healthy · 1 no status\n"), "{text}");
    assert!(text.contains("\n  on dir:"), "each cluster says its target:\n{text}");
}

/// `--watch` whose WATCHes the server refuses a few times (503) says so
/// once on standard error, retries, says when the watch works again, and
/// goes on showing the fleet.
#[test]
fn status_watch_says_a_failing_watch_once_and_goes_on() {
    let Some(mut e) = env("status-watch-retried") else { return };
    e.fleet.write_fleet(&cluster("w1", None, ""));
    e.fleet.ok(&["apply", "--auto-approve"]);
    let proxy = crate::support::fault_proxy::FaultProxy::start(e.fleet.k);
    e.fleet.kubeconfig = proxy.write_kubeconfig(e.fleet.dir.path());
    proxy.faults().fail_matching("GET", "watch=true", 503, 3);
    let mut child = e
        .fleet
        .command(&["status", "--watch", "--format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start hcpc status --watch");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let start = Instant::now();
    while !lines.iter().any(|l: &String| l.contains("the watch works again")) {
        let left = Duration::from_secs(30).saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(running, "status --watch ended: {lines:#?}");
    assert!(lines.iter().any(|l| l.contains("the watch works again")), "{lines:#?}");
    let said: Vec<&String> = lines.iter().filter(|l| l.contains("cannot watch")).collect();
    assert_eq!(said.len(), 1, "one line per streak, not per retry: {lines:#?}");
    assert!(said[0].starts_with("warning: kube:") && said[0].contains("in all namespaces: 503"), "{lines:#?}");
}
