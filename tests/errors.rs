//! Bad inputs: every mistake of `conformance/hcp/ERRORS.md` that hcpc's
//! language can express, written in KDL, must be a diagnostic: exit code 1,
//! no panic, a stable code at the right line and column (`--format json`),
//! and a human report (`NO_COLOR=1`) that underlines the right span and says
//! how to fix it (`help:`).
//!
//! Cases of ERRORS.md that the language cannot express at all:
//! - map-no-slash, map-two-slashes, snap-no-slash: a mapping is
//!   `class INFRA hosted=GUEST`, not an `infra/guest` string; the nearest
//!   mistakes (no `hosted=`, a `/` inside a name) are in the table.
//! - map-two-groups, map-unknown-then-group, map-GROUP-uppercase-and-space
//!   (the spelling part): a mapping belongs to the `group` block it is
//!   written in, so there is no `,group=` option to repeat, misspell or pad
//!   with spaces.
//! - hostdev-count-equals: `count=2` is the language's own syntax.
//! - hostdev-count-plus: `+3` is a valid KDL integer; hcpc reads count 3,
//!   as hcp does.
//! - additional-network-no-name-key, additional-network-comma: there is no
//!   `name:` prefix and one network per `additional-network` node.
//! - pausedUntil-bad, pausedUntil-true: hcpc has no pausedUntil.
//! - wait-with-zero-replicas: `check` and `render` do not wait.
//! - vm-node-selector-repeat, accessmodes-two, hostdev-repeat-same,
//!   mapping-repeat-same's hcp behaviour and the other exit-0 cases of
//!   ERRORS.md that are not mistakes (memory-8192Mi, rootvol-16, arch-s390x,
//!   base-domain-set, node-drain-90s, …) are accepted by hcpc too.
//!
//! A few cases have no ERRORS.md counterpart but guard the same kind of
//! mistake (`—` in the table).

use std::path::Path;

use serde_json::Value;

use crate::examples::assert_golden;
use crate::support::{run_in, stderr, stdout};

const HEAD: &str = "cluster example {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"pull-secret.json\"\n";

/// A cluster whose own settings (from line 4, indented 4) are `body`.
fn cluster(body: &str) -> String {
    let lines: String = body.lines().map(|l| format!("    {l}\n")).collect();
    format!("{HEAD}{lines}}}\n")
}

/// A cluster with one pool `node-pool workers replicas=2` (line 4) whose
/// settings (from line 5, indented 8) are `body`.
fn pool(body: &str) -> String {
    let lines: String = body.lines().map(|l| format!("        {l}\n")).collect();
    format!("{HEAD}    node-pool workers replicas=2 {{\n{lines}    }}\n}}\n")
}

/// One bad input and the diagnostic it must produce.
struct Case {
    /// The ERRORS.md case it mirrors, or `—`.
    mirrors: &'static str,
    input: String,
    code: &'static str,
    /// 1-based line and column of the diagnostic's primary span.
    at: (u64, u64),
}

fn case(mirrors: &'static str, input: String, code: &'static str, at: (u64, u64)) -> Case {
    Case { mirrors, input, code, at }
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let storage = |inner: &str| cluster(&format!("storage {{\n{}\n}}\nnode-pool workers replicas=2", indent(inner)));
    let eleven: String = (1..=11).map(|i| format!("host-device d{i}\n")).collect();
    let fifty_one: String = (1..=51).map(|i| format!("class infra-{i} hosted=guest-{i}\n")).collect();
    vec![
        // Storage mappings (cluster line 4 is `storage {`).
        case("map-no-slash", storage("class ceph-rbd"), "hcpc::lower::missing_property", (5, 9)),
        case("snap-no-slash", storage("snapshot-class snap"), "hcpc::lower::missing_property", (5, 9)),
        case("map-two-slashes", storage("class \"a/b\" hosted=c"), "hcpc::lower::invalid_name", (5, 15)),
        case("map-unknown-option", storage("class a hosted=b foo=bar"), "hcpc::lower::unknown_property", (5, 26)),
        case("map-group-no-equals", storage("class a hosted=b group"), "hcpc::lower::unexpected_argument", (5, 26)),
        case("map-group-two-equals", storage("class a hosted=b group=\"x=y\""), "hcpc::lower::unknown_property", (5, 26)),
        case("map-empty-sides", storage("class \"\" hosted=\"\""), "hcpc::lower::invalid_name", (5, 15)),
        case("map-group-empty-value", storage("group \"\" {\n    class a hosted=b\n}"), "hcpc::lower::invalid_name", (5, 15)),
        case("map-GROUP-uppercase-and-space", storage("group G1 {\n    class a hosted=b\n}"), "hcpc::lower::invalid_name", (5, 15)),
        case("map-group-on-infra-side", storage("class \"a,group=g\" hosted=b"), "hcpc::lower::invalid_name", (5, 15)),
        case("snap-group-without-matching-sc-group",
            storage("group a {\n    class sc1 hosted=gsc1\n}\ngroup zzz {\n    snapshot-class vsc1 hosted=gvsc1\n}"),
            "hcpc::storage::snapshot_without_class", (9, 28)),
        case("(scenario 04: lone snapshot class)", storage("snapshot-class snap hosted=s"), "hcpc::storage::snapshot_without_class", (5, 24)),
        case("mapping-repeat-same", storage("class a hosted=b\nclass a hosted=b"), "hcpc::storage::duplicate_mapping", (6, 15)),
        case("mapping-repeat-same", storage("class a hosted=b\nclass c hosted=b"), "hcpc::storage::duplicate_hosted_name", (6, 17)),
        case("—", storage(&fifty_one), "hcpc::storage::too_many_mappings", (55, 15)),
        case("—", storage("driver none\nclass a hosted=b"), "hcpc::storage::driver_conflict", (5, 9)),
        // Host devices (pool settings from line 5).
        case("hostdev-count0", pool("host-device gpu count=0"), "hcpc::device::count", (5, 25)),
        case("hostdev-countabc", pool("host-device gpu count=\"abc\""), "hcpc::lower::wrong_type", (5, 25)),
        case("hostdev-count-neg", pool("host-device gpu count=-1"), "hcpc::lower::invalid_value", (5, 25)),
        case("hostdev-three-parts", pool("host-device gpu count=2 extra=1"), "hcpc::lower::unknown_property", (5, 33)),
        case("hostdev-COUNT-upper", pool("host-device gpu COUNT=2"), "hcpc::lower::unknown_property", (5, 25)),
        case("hostdev-empty-name", pool("host-device \"\" count=2"), "hcpc::lower::invalid_value", (5, 21)),
        case("hostdev-eleven", pool(&eleven), "hcpc::node_pool::too_many_host_devices", (15, 9)),
        case("(docs: --host-device-name=\"nvidia-a100,count:2\")", pool("host-device \"nvidia-a100,count:2\""), "hcpc::device::invalid_name", (5, 21)),
        // Replicas (cluster line 4 is the pool).
        case("replicas-neg1", cluster("node-pool workers replicas=-1"), "hcpc::lower::invalid_value", (4, 23)),
        case("replicas-neg5", cluster("node-pool workers replicas=-5"), "hcpc::lower::invalid_value", (4, 23)),
        case("replicas-abc", cluster("node-pool workers replicas=abc"), "hcpc::lower::wrong_type", (4, 23)),
        case("—", cluster("node-pool workers"), "hcpc::lower::missing_setting", (4, 15)),
        case("—", cluster("node-pool workers {\n    autoscaling min=0 max=3\n}"), "hcpc::node_pool::autoscaling_range", (5, 9)),
        // Compute.
        case("memory-8GB", pool("memory \"8GB\""), "hcpc::lower::invalid_quantity", (5, 16)),
        case("memory-abc", pool("memory \"abc\""), "hcpc::lower::invalid_quantity", (5, 16)),
        case("memory-lower-gi", pool("memory \"8gi\""), "hcpc::lower::invalid_quantity", (5, 16)),
        case("memory-negative", pool("memory \"-1Gi\""), "hcpc::lower::invalid_quantity", (5, 16)),
        case("memory-empty", pool("memory \"\""), "hcpc::lower::invalid_quantity", (5, 16)),
        case("—", pool("memory \"16\""), "hcpc::lower::invalid_quantity", (5, 16)),
        case("—", pool("memory \"512Mi\""), "hcpc::node_pool::memory_too_small", (5, 16)),
        case("cores-0", pool("cores 0"), "hcpc::lower::invalid_value", (5, 15)),
        case("cores-neg", pool("cores -1"), "hcpc::lower::invalid_value", (5, 15)),
        case("qos-foo", pool("qos-class foo"), "hcpc::lower::invalid_value", (5, 19)),
        case("qos-guaranteed-lower", pool("qos-class Guaranteed"), "hcpc::lower::invalid_value", (5, 19)),
        case("qos-empty", pool("qos-class \"\""), "hcpc::lower::invalid_value", (5, 19)),
        // Root volume.
        case("cache-foo", pool("root-volume cache=foo"), "hcpc::lower::invalid_value", (5, 21)),
        case("cache-lowercase-pvc", pool("root-volume cache=PVC"), "hcpc::lower::invalid_value", (5, 21)),
        case("rootvol-15", pool("root-volume size=15"), "hcpc::node_pool::root_volume_too_small", (5, 21)),
        case("—", pool("root-volume size=\"64\""), "hcpc::lower::invalid_quantity", (5, 21)),
        case("volmode-foo", pool("root-volume volume-mode=foo"), "hcpc::lower::invalid_value", (5, 21)),
        case("volmode-block-lower", pool("root-volume volume-mode=block"), "hcpc::lower::invalid_value", (5, 21)),
        case("accessmodes-bogus", pool("root-volume access-mode=Bogus"), "hcpc::lower::invalid_value", (5, 21)),
        // Networking.
        case("multiqueue-foo", pool("network-multiqueue foo"), "hcpc::lower::wrong_type", (5, 28)),
        case("multiqueue-empty", pool("network-multiqueue \"\""), "hcpc::lower::wrong_type", (5, 28)),
        case("attach-default-false-no-additional", pool("attach-default-network #false"), "hcpc::node_pool::no_network", (5, 32)),
        case("attach-default-space-false", pool("attach-default-network false"), "hcpc::parse::syntax", (5, 32)),
        case("additional-network-unknown-key", pool("additional-network \"foo:bar\""), "hcpc::node_pool::additional_network_format", (5, 28)),
        case("additional-network-no-name-key", pool("additional-network nad1"), "hcpc::node_pool::additional_network_format", (5, 28)),
        case("vm-node-selector-bad", pool("node-selector rolekubevirt"), "hcpc::lower::unexpected_argument", (5, 23)),
        // Pool management.
        case("arch-bad", pool("arch sparc"), "hcpc::lower::invalid_value", (5, 14)),
        case("arch-arm64", pool("arch arm64"), "hcpc::node_pool::unsupported_arch", (5, 14)),
        case("upgrade-type-bad", pool("upgrade-type Foo"), "hcpc::lower::invalid_value", (5, 22)),
        case("—", pool("node-drain-timeout \"ninety\""), "hcpc::lower::invalid_duration", (5, 28)),
        // Cluster settings (from line 4).
        case("infra-ns-without-kubeconfig", cluster("infra-cluster namespace=guest-vms"), "hcpc::lower::missing_property", (4, 5)),
        case("infra-kubeconfig-without-ns", cluster("infra-cluster kubeconfig-file=\"infra.yaml\""), "hcpc::lower::missing_property", (4, 5)),
        case("infra-kubeconfig-missing-file", cluster("infra-cluster namespace=guest-vms kubeconfig-file=\"nope.yaml\""), "hcpc::input::secret_source", (4, 39)),
        case("etcd-size-bad", cluster("etcd size=\"8GB\""), "hcpc::lower::invalid_quantity", (4, 10)),
        case("—", cluster("etcd size=\"1\"\nnode-pool workers replicas=2"), "hcpc::lower::invalid_quantity", (4, 10)),
        case("—", cluster("etcd size=\"512Mi\"\nnode-pool workers replicas=2"), "hcpc::etcd::size_too_small", (4, 10)),
        case("toleration-bad", cluster("toleration key=a effect=Sometimes"), "hcpc::lower::invalid_value", (4, 22)),
        case("toleration-no-equals", cluster("toleration NoSchedule"), "hcpc::lower::unexpected_argument", (4, 16)),
        case("cp-availability-bad", cluster("availability control-plane=Foo"), "hcpc::lower::invalid_value", (4, 18)),
        case("annotations-bad", cluster("annotations novalue"), "hcpc::lower::unexpected_argument", (4, 17)),
        case("ssh-and-generate", cluster("ssh-key file=\"pull-secret.json\" env=SSH_KEY"), "hcpc::lower::conflicting_settings", (4, 13)),
        // Required settings and names.
        case("name-uppercase", HEAD.replace("example", "Example") + "}\n", "hcpc::lower::invalid_name", (1, 9)),
        case("missing-name", HEAD.replace("example ", "") + "}\n", "hcpc::lower::missing_argument", (1, 1)),
        case("missing-pull-secret", "cluster example {\n    release \"quay.io/x/y:1\"\n}\n".into(), "hcpc::lower::missing_setting", (1, 9)),
        case("release-image-omitted", "cluster example {\n    pull-secret file=\"pull-secret.json\"\n}\n".into(), "hcpc::lower::missing_setting", (1, 9)),
        case("pullsecret-missing-file", HEAD.replace("pull-secret.json", "nope.json") + "}\n", "hcpc::input::secret_source", (3, 17)),
        case("pullsecret-not-json", HEAD.replace("pull-secret.json", "fleet.kdl") + "}\n", "hcpc::input::secret_format", (3, 17)),
        case("sshkey-not-a-public-key", cluster("ssh-key file=\"pull-secret.json\""), "hcpc::input::secret_format", (4, 13)),
        // What the CRDs and Kubernetes' own validation refuse (`lower/api_rules.rs`).
        case("—", pool("node-selector \"kubernetes.io/hostname\"=\"has space\""), "hcpc::lower::invalid_label", (5, 23)),
        case("—", pool("node-selector \"bad key!\"=x"), "hcpc::lower::invalid_label", (5, 23)),
        case("—", cluster("labels team=\"a/b\""), "hcpc::lower::invalid_label", (4, 12)),
        case("—", cluster("control-plane-node-selector \"-role\"=infra"), "hcpc::lower::invalid_label", (4, 33)),
        case("—", cluster("base-domain \"example.c0m\""), "hcpc::cluster::invalid_base_domain", (4, 17)),
        case("—", cluster("base-domain \"my domain.com\""), "hcpc::cluster::invalid_base_domain", (4, 17)),
        case("—", cluster("network type=Cilium"), "hcpc::network::unknown_type", (4, 13)),
        case("—", cluster("network service-cidr=\"10.132.0.0/14\""), "hcpc::network::overlapping", (4, 13)),
        case("—", cluster("network machine-cidr=\"172.31.128.0/17\""), "hcpc::network::overlapping", (4, 13)),
        case("—", cluster(&format!("control-plane-node-selector {}", (0..21).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(" "))), "hcpc::cluster::too_many_node_selectors", (4, 5)),
        case("—", cluster(&"toleration operator=Exists\n".repeat(26)), "hcpc::cluster::too_many_tolerations", (29, 5)),
        case("—", cluster("toleration key=\"bad key\" operator=Exists"), "hcpc::cluster::invalid_toleration", (4, 16)),
        case("—", cluster("toleration key=k value=\"a b\""), "hcpc::cluster::invalid_toleration", (4, 22)),
        case("—", cluster("toleration effect=NoSchedule"), "hcpc::cluster::invalid_toleration", (4, 5)),
        case("—", cluster("toleration key=k seconds=30 effect=NoSchedule"), "hcpc::cluster::invalid_toleration", (4, 22)),
        case("—", pool(&(1..=21).map(|i| format!("additional-network \"default/net-{i}\"\n")).collect::<String>()), "hcpc::node_pool::too_many_networks", (25, 9)),
        case("positional-garbage", cluster("node-pool workers replicas=2") + "somethingelse\n", "hcpc::lower::unknown_node", (6, 1)),
        // Release images and versions (the cluster's release is line 2, 4.20.0).
        case("(issue: `release \"…:4.17.3 multi\"`)", HEAD.replace("4.20.0-x86_64", "4.17.3 multi") + "}\n", "hcpc::release::invalid_reference", (2, 62)),
        case("—", HEAD.replace("4.20.0-x86_64", "") + "}\n", "hcpc::release::invalid_reference", (2, 55)),
        case("—", HEAD.replace("openshift-release-dev", "OpenShift-release-dev") + "}\n", "hcpc::release::invalid_reference", (2, 22)),
        case("—", HEAD.replace(":4.20.0-x86_64", "@sha256:abc") + "}\n", "hcpc::release::invalid_reference", (2, 63)),
        case("—", pool("release \"quay.io/openshift-release-dev/ocp-release:4.20.1-x86_64\""), "hcpc::release::pool_newer_than_cluster", (5, 17)),
        case("—", pool("release \"quay.io/openshift-release-dev/ocp-release:4.17.9-x86_64\""), "hcpc::release::pool_skew", (5, 17)),
    ]
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// A temporary directory with `pull-secret.json` and `fleet.kdl` = `input`.
fn workspace(input: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    std::fs::write(tmp.path().join("pull-secret.json"), "{\"auths\":{}}\n").expect("write");
    std::fs::write(tmp.path().join("fleet.kdl"), input).expect("write");
    tmp
}

/// Checks one case; returns what is wrong with hcpc's answer, if anything.
fn check_case(c: &Case) -> Result<(), String> {
    let tmp = workspace(&c.input);
    let dir = tmp.path();
    let json = run_in(dir, &["check", "fleet.kdl", "--format", "json"]);
    no_panic(&json)?;
    if json.status.code() != Some(1) {
        return Err(format!("exit {:?}, expected 1\n{}", json.status.code(), stdout(&json)));
    }
    let report: Value = serde_json::from_str(&stdout(&json)).map_err(|e| format!("no JSON report: {e}"))?;
    let diags = report["diagnostics"].as_array().cloned().unwrap_or_default();
    let found = diags
        .iter()
        .find(|d| d["code"] == c.code && d["line"].as_u64() == Some(c.at.0) && d["column"].as_u64() == Some(c.at.1));
    let Some(d) = found else {
        let got: Vec<String> = diags
            .iter()
            .map(|d| format!("{} at {}:{} ({})", d["code"], d["line"], d["column"], d["message"]))
            .collect();
        return Err(format!("no {} at {}:{}; got:\n    {}", c.code, c.at.0, c.at.1, got.join("\n    ")));
    };
    if diags.iter().any(|d| d["help"].as_str().is_none_or(str::is_empty)) {
        return Err(format!("a diagnostic without help: {report:#}"));
    }
    if d["file"] != "fleet.kdl" {
        return Err(format!("file is {}", d["file"]));
    }
    check_human(dir, c)
}

fn no_panic(o: &std::process::Output) -> Result<(), String> {
    if o.status.code() == Some(101) || stderr(o).contains("panicked") {
        return Err(format!("hcpc panicked:\n{}", stderr(o)));
    }
    Ok(())
}

/// The human report has the code, the location, an underline starting at
/// the right column, and a `help:` line.
fn check_human(dir: &Path, c: &Case) -> Result<(), String> {
    let out = run_in(dir, &["check", "fleet.kdl"]);
    no_panic(&out)?;
    if out.status.code() != Some(1) {
        return Err(format!("human check: exit {:?}", out.status.code()));
    }
    let text = stderr(&out);
    if text.contains('\u{1b}') {
        return Err("colour escape codes with NO_COLOR=1".into());
    }
    let location = format!("[fleet.kdl:{}:{}]", c.at.0, c.at.1);
    let block = report_blocks(&text)
        .into_iter()
        .find(|b| b.first().is_some_and(|h| h.trim() == c.code) && b.iter().any(|l| l.contains(&location)))
        .ok_or_else(|| format!("no {} report at {location} in:\n{text}", c.code))?;
    if !block.iter().any(|l| l.trim_start().starts_with("help: ")) {
        return Err(format!("no `help:` line in:\n{}", block.join("\n")));
    }
    let col = underline_column(&block, c.at.0).ok_or_else(|| format!("no underline in:\n{}", block.join("\n")))?;
    if !col.contains(&c.at.1) {
        return Err(format!("underlines start at columns {col:?}, not {}:\n{}", c.at.1, block.join("\n")));
    }
    Ok(())
}

/// Splits a human report into one block per diagnostic (each starts with
/// its code on a line of its own).
fn report_blocks(text: &str) -> Vec<Vec<&str>> {
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("hcpc::") && !t.contains(' ') {
            blocks.push(Vec::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push(line);
        }
    }
    blocks
}

/// The 1-based columns (in the source line) where underlines start under
/// source line `line` of a report block.
fn underline_column(block: &[&str], line: u64) -> Option<Vec<u64>> {
    let prefix = format!("{line} │ ");
    let at = block.iter().position(|l| l.trim_start().starts_with(&prefix))?;
    let chars: Vec<char> = block[at].chars().collect();
    let bar = chars.iter().position(|&c| c == '│')?;
    let text_start = bar + 2;
    let under: Vec<char> = block.get(at + 1)?.chars().collect();
    if under.get(bar) != Some(&'·') {
        return None;
    }
    let mut starts = Vec::new();
    for (i, ch) in under.iter().enumerate().skip(text_start) {
        let prev = under[i - 1];
        if matches!(ch, '─' | '┬' | '▲') && !matches!(prev, '─' | '┬') {
            starts.push((i - text_start + 1) as u64);
        }
    }
    (!starts.is_empty()).then_some(starts)
}

#[test]
fn every_expressible_hcp_mistake_is_a_diagnostic() {
    let cases = cases();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            check_case(c)
                .err()
                .map(|e| format!("[{}] expecting {}:\n  {e}\n--- input ---\n{}", c.mirrors, c.code, c.input))
        })
        .collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

/// Each case is an error on its own account: the same input with the bad
/// setting taken out checks cleanly, so the table cannot pass on a broken
/// base file.
#[test]
fn the_base_files_are_valid() {
    for input in [pool("cores 2"), cluster("node-pool workers replicas=2")] {
        let tmp = workspace(&input);
        let out = run_in(tmp.path(), &["check", "fleet.kdl"]);
        assert_eq!(out.status.code(), Some(0), "{input}\n{}", stderr(&out));
    }
}

/// Independent mistakes are reported together, in source order.
#[test]
fn independent_errors_are_reported_at_once() {
    let tmp = workspace(&pool("memory \"8GB\"\ncores 0\narch sparc\nqos-class foo"));
    let out = run_in(tmp.path(), &["check", "fleet.kdl", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let lines: Vec<u64> =
        report["diagnostics"].as_array().expect("list").iter().filter_map(|d| d["line"].as_u64()).collect();
    assert_eq!(report["errors"], 4, "{report:#}");
    assert_eq!(lines, [5, 6, 7, 8]);
}

/// One fact that warns once per cluster (here a default class that is not
/// RWX) is drawn three times on a terminal and the rest counted, so a large
/// fleet's output stays readable; the totals and `--format json` keep
/// every one.
#[test]
fn repeated_warnings_are_drawn_three_times_and_counted() {
    let mut input = String::from(
        "target dir \"out\"\ninfra {\n    storage-class lvm access=RWO default=#true\n    snapshot-class snap default=#true\n}\n\
         defaults {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.1-x86_64\"\n    pull-secret file=\"pull-secret.json\"\n}\n",
    );
    for i in 1..=6 {
        input.push_str(&format!("cluster c{i} {{\n    node-pool w replicas=1\n}}\n"));
    }
    let tmp = workspace(&input);
    let out = run_in(tmp.path(), &["check", "fleet.kdl"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("hands the default class to KubeVirt CSI").count(), 3, "{err}");
    assert!(err.contains("cluster `c3` hands") && !err.contains("cluster `c4` hands"), "{err}");
    assert!(
        err.contains(
            "hcpc::storage::default_class_not_rwx: 3 more warnings like the 3 above, not drawn (`--format json` lists every one)"
        ),
        "{err}"
    );
    assert!(err.contains("ok (0 errors, 12 warnings)"), "{err}");

    let json = run_in(tmp.path(), &["check", "fleet.kdl", "--format", "json"]);
    let report: Value = serde_json::from_str(&stdout(&json)).expect("JSON");
    let all = report["diagnostics"].as_array().expect("list");
    assert_eq!(all.iter().filter(|d| d["code"] == "hcpc::storage::default_class_not_rwx").count(), 6);
}

/// `render` refuses what `check` refuses, with the same exit code, and
/// prints no objects.
#[test]
fn render_refuses_bad_input() {
    let tmp = workspace(&pool("host-device gpu count=0"));
    let out = run_in(tmp.path(), &["render", "fleet.kdl"]);
    no_panic(&out).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).trim().is_empty(), "{}", stdout(&out));
    assert!(stderr(&out).contains("hcpc::device::count"));
}

// ---------------------------------------------------------------------------
// Golden human reports: layout regressions show up as a diff.
// ---------------------------------------------------------------------------

fn golden_report(name: &str, input: &str) {
    let tmp = workspace(input);
    let out = run_in(tmp.path(), &["check", "fleet.kdl"]);
    no_panic(&out).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_golden(&format!("errors__{name}.txt"), &stderr(&out));
}

#[test]
fn golden_snapshot_group_without_class() {
    golden_report(
        "snapshot_group_without_class",
        &cluster(
            "storage {\n    group ceph {\n        class ceph-rbd hosted=rbd\n    }\n    group nfs {\n        snapshot-class nfs-snap hosted=nfs-snap\n    }\n}\nnode-pool workers replicas=2",
        ),
    );
}

#[test]
fn golden_host_device_over_capacity() {
    let input = "infra {\n    host-device nvidia-a100 capacity=4\n}\n\n".to_string()
        + &pool("host-device nvidia-a100 count=2")
        + "\ncluster other {\n    release \"quay.io/openshift-release-dev/ocp-release:4.20.0-x86_64\"\n    pull-secret file=\"pull-secret.json\"\n    node-pool gpu {\n        autoscaling min=1 max=3\n        host-device nvidia-a100\n    }\n}\n";
    golden_report("host_device_over_capacity", &input);
}

#[test]
fn golden_quantity_typo() {
    golden_report("quantity_typo", &pool("memory \"8GB\"\nroot-volume size=15"));
}

#[test]
fn golden_secret_formats() {
    let tmp = workspace(&cluster("ssh-key file=\"id_ed25519\""));
    std::fs::write(tmp.path().join("pull-secret.json"), "{\"registry\": \"quay.io\"}\n").unwrap();
    std::fs::write(
        tmp.path().join("id_ed25519"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = run_in(tmp.path(), &["check", "fleet.kdl"]);
    no_panic(&out).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).contains("b3BlbnNzaC1rZXktdjE"), "the key is never quoted");
    assert_golden("errors__secret_formats.txt", &stderr(&out));
}

/// A node selector no node can carry, and networks the API refuses.
#[test]
fn golden_api_rules() {
    golden_report(
        "api_rules",
        &cluster(
            "network service-cidr=\"10.132.0.0/14\" type=ovnkubernetes\nnode-pool workers replicas=2 {\n    node-selector \"kubernetes.io/hostname\"=\"has space\"\n}",
        ),
    );
}

/// Every offline release rule in one report: a syntax error with its fix,
/// a pool newer than its cluster, one too far behind an odd minor, a tag
/// without a version (warning) and a digest (note).
#[test]
fn golden_release_rules() {
    let image = |tag: &str| format!("quay.io/openshift-release-dev/ocp-release{tag}");
    let input = HEAD.replace(&image(":4.20.0-x86_64"), &image(":4.17.3 multi"))
        + "    node-pool workers replicas=2\n}\n"
        + &format!(
            "cluster odd {{\n    release \"{}\"\n    pull-secret file=\"pull-secret.json\"\n    node-pool newer replicas=1 {{\n        release \"{}\"\n    }}\n    node-pool old replicas=1 {{\n        release \"{}\"\n    }}\n    node-pool fine replicas=1 {{\n        release \"{}\"\n    }}\n}}\n",
            image(":4.19.2-multi"),
            image(":4.19.3-multi"),
            image(":4.17.30-multi"),
            image(":4.18.0-multi"),
        )
        + &format!(
            "cluster floating {{\n    release \"{}\"\n    pull-secret file=\"pull-secret.json\"\n    node-pool w replicas=1\n}}\ncluster pinned {{\n    release \"{}@sha256:{}\"\n    pull-secret file=\"pull-secret.json\"\n    node-pool w replicas=1\n}}\n",
            image(":latest"),
            image(""),
            "0123456789abcdef".repeat(4)
        );
    golden_report("release_rules", &input);
}

/// Release strings that are not images are errors, never written: a bare
/// minor, `latest`, a repository without its registry (fixed when the
/// meaning is plain), and the help shows a real reference.
#[test]
fn golden_release_not_an_image() {
    let input = ["4.19", "latest", "ocp-release:4.19.3-x86_64", "4.19.3"]
        .iter()
        .enumerate()
        .map(|(i, release)| {
            format!(
                "cluster c{i} {{\n    release \"{release}\"\n    pull-secret file=\"pull-secret.json\"\n    node-pool w replicas=1\n}}\n"
            )
        })
        .collect::<String>();
    golden_report("release_not_an_image", &input);
}

/// Unquoted quantities in properties get the same "must be quoted"
/// message and fix as in arguments, and one does not hide the next.
#[test]
fn golden_unquoted_quantities() {
    let input = HEAD.to_string()
        + "    etcd size=16Gi\n    node-pool workers replicas=2 {\n        root-volume size=64Gi\n        memory 16Gi\n    }\n}\n";
    golden_report("unquoted_quantities", &input);
}

/// Mistakes of people coming from `hcp` and word processors: decimal
/// sizes (a warning with the binary unit), hcp's `INFRA/HOSTED` class
/// mapping, and quotes that are not KDL's.
#[test]
fn golden_first_day_values() {
    let input = HEAD.to_string()
        + "    storage {\n        class \"ocs-storagecluster-ceph-rbd/ceph-rbd\"\n    }\n"
        + "    node-pool a replicas=1 {\n        memory \"16G\"\n    }\n"
        + "    node-pool b replicas=1 {\n        memory '16Gi'\n    }\n"
        + "    node-pool c replicas=1 {\n        memory “16Gi”\n    }\n}\n";
    golden_report("first_day_values", &input);
}

#[test]
fn golden_kdl_syntax() {
    golden_report("kdl_syntax", &pool("attach-default-network false"));
}

/// A block left open is told to be closed, not to quote strings.
#[test]
fn golden_kdl_unclosed_block() {
    let input = pool("memory \"8Gi\"") + "\ncluster other {\n    node-pool w replicas=1 {\n";
    golden_report("kdl_unclosed_block", &input);
}

/// The underline reader finds where miette's underline starts.
#[test]
fn underline_column_reads_miette_layout() {
    let block = [
        "hcpc::lower::invalid_quantity",
        "   ╭─[fleet.kdl:5:16]",
        " 4 │     node-pool workers replicas=2 {",
        " 5 │         memory \"8GB\"",
        "   ·                ──┬──",
        "   ·                  ╰── not a quantity",
    ];
    assert_eq!(underline_column(&block, 5), Some(vec![16]));
    assert_eq!(underline_column(&block, 4), None);
}
