#!/usr/bin/env bash
# Fills corpus/check/ with seed inputs for the `check` fuzz target: every
# examples/**/*.kdl file, plus a few feature-rich fleets written below.
# The corpus is generated: do not commit it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$here/corpus/check"
mkdir -p "$out"

find "$repo/examples" -name '*.kdl' -print0 | while IFS= read -r -d '' f; do
    rel="${f#"$repo"/examples/}"
    cp "$f" "$out/example-${rel//\//-}"
done

# A directory of examples is one fleet: join its files with NUL, which the
# target splits on.
for d in "$repo"/examples/*/; do
    files=("$d"*.kdl)
    [ -e "${files[0]}" ] || continue
    name="$(basename "$d")"
    : > "$out/fleet-$name.kdl"
    for i in "${!files[@]}"; do
        [ "$i" -gt 0 ] && printf '\0' >> "$out/fleet-$name.kdl"
        cat "${files[$i]}" >> "$out/fleet-$name.kdl"
    done
done

cat > "$out/seed-full.kdl" <<'KDL'
target kube context="mgmt"
fleet prod namespace=hcpc-system
defaults {
    namespace clusters
    release "quay.io/openshift-release-dev/ocp-release:4.17.3-multi"
    pull-secret file="secrets/pull-secret.json"
    node-pool {
        cores 2
        memory "8Gi"
    }
}
infra {
    storage-class ocs-storagecluster-ceph-rbd access=RWX volume-mode=Block default=#true
    storage-class lvm-storageclass access=RWO
    storage-class nfs-rwx access=RWX
    snapshot-class ocs-storagecluster-rbdplugin-snapclass
    host-device nvidia-a100 capacity=8
    host-device nvidia-t4 capacity=4
}
cluster example {
    ssh-key file="secrets/id_ed25519.pub"
    base-domain example.com
    network cluster-cidr="10.132.0.0/14" service-cidr="172.31.0.0/16" machine-cidr="192.168.0.0/24" type=OVNKubernetes
    availability control-plane=single-replica infrastructure=highly-available
    fips #false
    labels team=payments "example.com/tier"=gold
    annotations "example.com/owner"=alice
    control-plane-node-selector "node-role.kubernetes.io/infra"=yes
    etcd storage-class=lvm-storageclass size="8Gi"
    prevent-destroy #false
    storage {
        group ceph {
            class ocs-storagecluster-ceph-rbd hosted=ceph-rbd
            snapshot-class ocs-storagecluster-rbdplugin-snapclass hosted=ceph-snap
        }
        class nfs-rwx hosted=nfs
    }
    node-pool workers replicas=2
    node-pool gpu replicas=3 {
        memory "16Gi"
        qos-class guaranteed
        root-volume storage-class=ocs-storagecluster-ceph-rbd size="64Gi" access-mode=RWX volume-mode=Block cache=pvc
        host-device nvidia-a100 count=2
        host-device nvidia-t4
        network-multiqueue #false
        additional-network "default/vlan-10"
        node-selector "example.com/gpu"=a100
        arch amd64
        auto-repair #true
        upgrade-type in-place
        node-drain-timeout "1m30s"
        node-volume-detach-timeout "90s"
    }
    node-pool scale {
        autoscaling min=1 max=3
        release "quay.io/openshift-release-dev/ocp-release:4.17.4-multi"
    }
}
KDL

cat > "$out/seed-two-clusters.kdl" <<'KDL'
target dir "rendered/"
defaults {
    release "quay.io/openshift-release-dev/ocp-release:4.17.3-multi"
    pull-secret file="secrets/pull-secret.json"
}
cluster a {
    namespace team-a
    infra-cluster namespace=vms kubeconfig-secret=infra-kubeconfig
    storage { driver none }
    node-pool w replicas=0
}
cluster b {
    pull-secret secret=existing-pull-secret
    storage {
        class lvm-storageclass hosted=lvm
        snapshot-class snap hosted=snap
    }
    node-pool w replicas=1 {
        attach-default-network #false
        additional-network "net/nad"
    }
}
KDL

echo "seeded $(find "$out" -type f | wc -l) files in $out"
