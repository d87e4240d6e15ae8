//! Synthetic fleets for the `fleet` benchmark and the robustness tests.
//!
//! A fleet is one shared file (`00-fleet.kdl`: target, defaults, infra)
//! plus cluster files of at most `per_file` clusters each. Every cluster
//! has three node pools, storage groups, an ssh key, and one pool with
//! host devices; the infra block declares enough capacity for all of them,
//! so a generated fleet is valid and renders without diagnostics.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Default number of clusters per generated file.
pub const PER_FILE: usize = 100;

/// Pull secret written next to the fleet.
pub const PULL_SECRET: &str = r#"{"auths":{"quay.io":{"auth":"dXNlcjpwYXNz"}}}"#;
/// SSH public key written next to the fleet.
pub const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJlbmNobWFya2tleWZvcmhjcGNmbGVldHM bench@hcpc\n";

/// Name of the `i`-th cluster.
pub fn cluster_name(i: usize) -> String {
    format!("c{i:05}")
}

/// The host devices: resource names as NVIDIA's device plugin advertises
/// them (a management cluster's Nodes list no bare names).
pub const A100: &str = "nvidia.com/GA100_A100_PCIE_40GB";
pub const T4: &str = "nvidia.com/TU104GL_Tesla_T4";

/// How many of each host device `infra` declares for `clusters`: (A100,
/// T4). Per cluster the gpu pool has 1 VM × 2 a100 and 1 VM × 1 t4;
/// the capacity leaves a third spare, below the near-capacity warning.
pub fn device_capacity(clusters: usize) -> (usize, usize) {
    (3 * clusters + 8, 2 * clusters + 8)
}

/// The shared file: target, defaults and an infra inventory sized for `clusters`.
pub fn common_file(clusters: usize) -> String {
    let (a100, t4) = device_capacity(clusters);
    format!(
        r#"// Generated fleet of {clusters} clusters: shared settings.
target dir "rendered/"

defaults {{
    namespace clusters
    release "quay.io/openshift-release-dev/ocp-release:4.17.3-multi"
    pull-secret file="secrets/pull-secret.json"
    node-pool {{
        cores 2
        memory "8Gi"
    }}
}}

infra {{
    storage-class ocs-storagecluster-ceph-rbd access=RWX volume-mode=Block default=#true
    storage-class lvm-storageclass access=RWO
    storage-class nfs-rwx access=RWX
    snapshot-class ocs-storagecluster-rbdplugin-snapclass
    host-device "{A100}" capacity={a100}
    host-device "{T4}" capacity={t4}
}}
"#
    )
}

/// One cluster with three node pools. Every tenth cluster gets its own namespace.
pub fn cluster_block(i: usize, out: &mut String) {
    let name = cluster_name(i);
    let team = i % 7;
    let _ = writeln!(out, "cluster {name} {{");
    if i.is_multiple_of(10) {
        let _ = writeln!(out, "    namespace tenant-{:04}", i / 10);
    }
    let _ = write!(
        out,
        r#"    ssh-key file="secrets/id_ed25519.pub"
    labels team=team-{team} "example.com/cost-center"=cc-{i}
    etcd storage-class=lvm-storageclass size="8Gi"
    availability control-plane=highly-available
    storage {{
        group ceph {{
            class ocs-storagecluster-ceph-rbd hosted=ceph-rbd
            snapshot-class ocs-storagecluster-rbdplugin-snapclass hosted=ceph-snap
        }}
        class nfs-rwx hosted=nfs
    }}

    node-pool workers replicas=2

    node-pool infra replicas=3 {{
        cores 4
        memory "16Gi"
        root-volume storage-class=ocs-storagecluster-ceph-rbd size="64Gi" cache=pvc
        node-selector "example.com/role"=infra
    }}

    node-pool gpu replicas=1 {{
        memory "32Gi"
        host-device "{A100}" count=2
        host-device "{T4}"
        node-drain-timeout "5m"
    }}
}}

"#
    );
}

/// The fleet's files as (file name, text), in name order.
pub fn fleet_files(clusters: usize, per_file: usize) -> Vec<(String, String)> {
    let per_file = per_file.max(1);
    let mut files = vec![("00-fleet.kdl".to_string(), common_file(clusters))];
    let mut start = 0;
    while start < clusters {
        let end = (start + per_file).min(clusters);
        let mut text = format!("// Generated clusters {start} to {}.\n\n", end - 1);
        for i in start..end {
            cluster_block(i, &mut text);
        }
        files.push((format!("clusters-{:05}.kdl", start / per_file), text));
        start = end;
    }
    files
}

/// Writes the secrets a generated fleet refers to into `dir/secrets/`.
pub fn write_secrets(dir: &Path) -> std::io::Result<()> {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    std::fs::write(secrets.join("pull-secret.json"), PULL_SECRET)?;
    std::fs::write(secrets.join("id_ed25519.pub"), SSH_KEY)?;
    Ok(())
}

/// Writes a whole fleet (files and secrets) into `dir` and returns the paths
/// of its `.kdl` files in name order.
pub fn write_fleet(dir: &Path, clusters: usize, per_file: usize) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    write_secrets(dir)?;
    let mut paths = Vec::new();
    for (name, text) in fleet_files(clusters, per_file) {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        paths.push(p);
    }
    Ok(paths)
}

/// Objects a valid generated fleet renders: per cluster a pull secret, an
/// ssh key, an etcd key, a HostedCluster and three NodePools; plus one
/// Namespace per distinct namespace.
pub fn expected_objects(clusters: usize) -> usize {
    let tenants = clusters.div_ceil(10);
    let shared = usize::from(clusters > tenants);
    clusters * 7 + tenants + shared
}

/// Writes the whole fleet as one file (`fleet.kdl`: the shared settings,
/// then every cluster) with its secrets, and returns the file's path.
pub fn write_single_file(dir: &Path, clusters: usize) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    write_secrets(dir)?;
    let mut text = common_file(clusters);
    text.push('\n');
    for i in 0..clusters {
        cluster_block(i, &mut text);
    }
    let p = dir.join("fleet.kdl");
    std::fs::write(&p, text)?;
    Ok(p)
}
