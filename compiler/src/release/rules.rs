//! The version rules of releases, offline (a cluster against its own
//! pools) and against the live HostedCluster (downgrades, minor skips) and
//! the versions the management cluster's HyperShift operator supports.
//!
//! Sources (docs/language.md, "Version rules"): the NodePool skew policy of
//! OpenShift's hosted control planes documentation ("Hosted cluster and
//! node pool version skew policy"), HyperShift's "Versioning Support"
//! reference (the `supported-versions` ConfigMap) and OpenShift's update
//! rules (no downgrades; control plane updates one minor at a time).

use serde_json::Value;

use super::{Pin, ReleaseImage, Version};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::Cluster;
use crate::object::{Kind, LiveObject, ObjectId};
use crate::source::{Span, Spanned};

/// How many minors a NodePool may trail a control plane of this version:
/// 2 on a 4.even control plane, 1 on a 4.odd one.
pub fn allowed_skew(control_plane: &Version) -> u64 {
    if control_plane.minor.is_multiple_of(2) { 2 } else { 1 }
}

/// The offline rules of one cluster: releases without a version (warning),
/// digests (note: rules skipped), and each pool against the cluster.
pub fn check_cluster(c: &Cluster, diags: &mut Diagnostics) {
    if c.release.is_missing() {
        return;
    }
    let mut seen: Vec<Span> = Vec::new();
    for release in std::iter::once(&c.release).chain(c.node_pools.iter().map(|p| &p.release)) {
        if release.is_missing() || seen.contains(&release.span) {
            continue;
        }
        seen.push(release.span);
        if let Some(d) = unversioned(release) {
            diags.push(d);
        }
    }
    if let Some(cluster) = c.release.version() {
        for p in &c.node_pools {
            if let Some(pool) = p.release.version() {
                pool_rules(c, cluster, &c.release.span, &p.name.value, pool, p.release.span, diags);
            }
        }
    }
}

/// A release whose version hcpc cannot tell: a warning for a tag without
/// one, a note for a digest.
fn unversioned(release: &Spanned<ReleaseImage>) -> Option<Diagnostic> {
    match release.pin() {
        Pin::Tag { version: Some(_), .. } => None,
        Pin::Digest { .. } => Some(
            Diagnostic::note(Code::ReleaseDigest, "the version rules are skipped for a release pinned by digest")
                .label(release.span, "no version in a digest")
                .help("a digest names one exact image but not its OpenShift version; `plan` takes the version from the live HostedCluster's status where the cluster runs this image, and checks the rules then"),
        ),
        Pin::Tag { tag, version: None } => Some(
            Diagnostic::warning(Code::ReleaseWithoutVersion, format!("the release tag `{tag}` names no OpenShift version"))
                .label(release.span, "no version in this tag")
                .help(format!(
                    "`{tag}` can point at another release tomorrow, and the version rules (pool skew, downgrades) cannot be checked: name the release, e.g. `{}:4.18.5-multi`, or pin it by digest",
                    release.name()
                )),
        ),
    }
}

/// One pool against its cluster's version (`cluster_span`: where that
/// version was written, or the cluster's release line).
pub fn pool_rules(
    c: &Cluster,
    cluster: &Version,
    cluster_span: &Span,
    pool_name: &str,
    pool: &Version,
    pool_span: Span,
    diags: &mut Diagnostics,
) {
    let name = &c.name.value;
    if pool > cluster {
        diags.push(
            Diagnostic::error(
                Code::PoolNewerThanCluster,
                format!("node pool `{pool_name}` of cluster `{name}` runs {pool}, newer than its control plane's {cluster}"),
            )
            .label(pool_span, format!("newer than {cluster}"))
            .label(*cluster_span, "the control plane's release")
            .help(format!(
                "a NodePool may never be newer than its HostedCluster: upgrade the cluster's `release` first, or give the pool {cluster} or older"
            )),
        );
        return;
    }
    let allowed = allowed_skew(cluster);
    let behind = if pool.major == cluster.major { cluster.minor - pool.minor } else { u64::MAX };
    if behind > allowed {
        let parity = if cluster.minor.is_multiple_of(2) { "even" } else { "odd" };
        let oldest = format!("{}.{}", cluster.major, cluster.minor.saturating_sub(allowed));
        let how_far =
            if behind == u64::MAX { "a major version".to_string() } else { format!("{behind} minor versions") };
        diags.push(
            Diagnostic::error(
                Code::PoolSkew,
                format!(
                    "node pool `{pool_name}` of cluster `{name}` runs {pool}, {how_far} behind its control plane's {cluster}"
                ),
            )
            .label(pool_span, format!("more than {allowed} minor behind"))
            .label(*cluster_span, "the control plane's release")
            .help(format!(
                "on a {}.{} control plane ({parity} minor) a NodePool may trail by at most {allowed} minor version{}: give the pool {oldest} or newer, or keep the control plane on an older release until the pool is upgraded",
                cluster.major,
                cluster.minor,
                if allowed == 1 { "" } else { "s" }
            )),
        );
    }
}

/// What the live HostedCluster runs: the newest entry of its
/// `status.version.history` (the release being rolled out or done), else
/// `status.version.desired`, else its `spec.release.image`. With the image
/// it runs, so that a digest can be matched.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRelease {
    pub version: Option<Version>,
    pub image: Option<String>,
    /// Where it came from, for messages: "status.version.history[0]".
    pub source: &'static str,
}

impl LiveRelease {
    pub fn of(hosted_cluster: &Value) -> Option<LiveRelease> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        for (path, source) in [
            ("/status/version/history/0", "status.version.history[0]"),
            ("/status/version/desired", "status.version.desired"),
        ] {
            if let Some(entry) = hosted_cluster.pointer(path) {
                let version = text(entry.get("version")).and_then(|v| Version::from_tag(&v));
                let image = text(entry.get("image"));
                if version.is_some() {
                    return Some(LiveRelease { version, image, source });
                }
            }
        }
        let image = text(hosted_cluster.pointer("/spec/release/image"))?;
        let version = ReleaseImage::parse(&image).ok().and_then(|r| r.version().cloned());
        Some(LiveRelease { version, image: Some(image), source: "spec.release.image" })
    }
}

/// How the note of a HostedCluster's change allowed to skip a minor starts:
/// the plan views show such notes next to the change.
pub const MINOR_SKIP_NOTE: &str = "allow-minor-skip";

/// What the live rules found for one cluster: diagnostics, and a note for
/// its HostedCluster's change in the plan.
#[derive(Debug, Default)]
pub struct LiveFindings {
    pub diags: Diagnostics,
    pub change_note: Option<String>,
}

/// A cluster's desired release against its live HostedCluster: no
/// downgrade, at most one minor at a time unless `allow-minor-skip`; and
/// for a release pinned by digest, the pool rules with the version the
/// live status gives for that image.
pub fn check_live(c: &Cluster, live: &LiveRelease, target: &str) -> LiveFindings {
    let mut out = LiveFindings::default();
    if c.release.is_missing() {
        return out;
    }
    let desired = match (c.release.version(), &live.version) {
        (Some(v), _) => v.clone(),
        // A digest the cluster already runs: its version is the live one.
        (None, Some(v)) if c.release.is_digest() && live.image.as_deref() == Some(c.release.as_str()) => {
            for p in &c.node_pools {
                if let Some(pool) = p.release.version() {
                    pool_rules(c, v, &c.release.span, &p.name.value, pool, p.release.span, &mut out.diags);
                }
            }
            return out;
        }
        _ => return out,
    };
    let Some(running) = &live.version else { return out };
    let name = &c.name.value;
    if desired < *running {
        out.diags.push(
            Diagnostic::error(
                Code::ControlPlaneDowngrade,
                format!("cluster `{name}` runs {running} on {target}; its release {desired} would downgrade the control plane"),
            )
            .label(c.release.span, format!("older than the running {running}"))
            .help(format!(
                "OpenShift does not downgrade: keep `release` at {running} or newer (the live version is the HostedCluster's {})",
                live.source
            )),
        );
        return out;
    }
    let jump = if desired.major == running.major { desired.minor - running.minor } else { u64::MAX };
    if jump > 1 {
        let skipped = if jump == u64::MAX {
            format!("from {} to {}", running.major, desired.major)
        } else {
            (running.minor + 1..desired.minor).map(|m| format!("{}.{m}", running.major)).collect::<Vec<_>>().join(", ")
        };
        if c.allow_minor_skip {
            out.change_note = Some(format!("{MINOR_SKIP_NOTE}: {running} → {desired} skips {skipped}"));
            out.diags.push(
                Diagnostic::note(
                    Code::MinorSkip,
                    format!("cluster `{name}` goes from {running} to {desired} on {target}, skipping {skipped}, as `allow-minor-skip` allows"),
                )
                .label(c.release.span, format!("skips {skipped}"))
                .help("make sure this release's update graph offers the jump from the running version; remove `allow-minor-skip` once the upgrade is done"),
            );
        } else {
            out.diags.push(
                Diagnostic::error(
                    Code::MinorSkip,
                    format!(
                        "cluster `{name}` runs {running} on {target}; its release {desired} skips {skipped}"
                    ),
                )
                .label(c.release.span, format!("skips {skipped}"))
                .help(format!(
                    "control planes are upgraded one minor version at a time: release {}.{} first; if this release's update graph allows the jump, say so with `allow-minor-skip #true` in the cluster",
                    running.major,
                    running.minor + 1
                )),
            );
        }
    }
    out
}

/// [`check_live`] for every cluster whose HostedCluster is live on this
/// target; with the notes for their changes in the plan, by object.
pub fn check_live_fleet(
    clusters: &[Cluster],
    live: &[LiveObject],
    target: &str,
) -> (Diagnostics, Vec<(ObjectId, String)>) {
    let by_id: std::collections::HashMap<&ObjectId, &LiveObject> =
        live.iter().filter(|l| l.id.kind == Kind::HostedCluster).map(|l| (&l.id, l)).collect();
    let mut diags = Diagnostics::default();
    let mut notes = Vec::new();
    for c in clusters {
        let id = ObjectId::new(Kind::HostedCluster, &c.namespace.value, &c.name.value);
        let Some(running) = by_id.get(&id).and_then(|l| LiveRelease::of(&l.body)) else { continue };
        let found = check_live(c, &running, target);
        diags.extend(found.diags);
        if let Some(n) = found.change_note {
            notes.push((id, n));
        }
    }
    (diags, notes)
}

/// The minors the HyperShift operator of a management cluster supports,
/// from its `supported-versions` ConfigMap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SupportedVersions {
    /// Not a kube target: nothing to check.
    #[default]
    NotApplicable,
    /// The list (`["4.19", "4.18", …]`, as published).
    Listed(Vec<String>),
    /// No ConfigMap, or one hcpc cannot read: why.
    Unknown(String),
}

/// Each cluster whose release minor the operator does not list is an error;
/// an unknown list is one note for the target.
pub fn check_supported(clusters: &[Cluster], supported: &SupportedVersions, target: &str, diags: &mut Diagnostics) {
    match supported {
        SupportedVersions::NotApplicable => {}
        SupportedVersions::Unknown(why) => diags.push(
            Diagnostic::note(
                Code::SupportedVersionsUnknown,
                format!("{target}: {why}; the releases are not checked against the versions its HyperShift operator supports"),
            )
            .help("the HyperShift operator publishes ConfigMap `supported-versions` in namespace `hypershift`; hcpc needs `get` on it to check releases"),
        ),
        SupportedVersions::Listed(list) => {
            for c in clusters {
                let Some(v) = c.release.version() else { continue };
                let minor = v.minor_string();
                if !list.contains(&minor) {
                    diags.push(
                        Diagnostic::error(
                            Code::UnsupportedVersion,
                            format!(
                                "cluster `{}`: release {v} is not supported by the HyperShift operator of {target}, which supports {}",
                                c.name.value,
                                list.join(", ")
                            ),
                        )
                        .label(c.release.span, format!("{minor} is not supported there"))
                        .help(format!(
                            "choose a release of {} (ConfigMap hypershift/supported-versions), or upgrade the HyperShift operator (multicluster engine) first",
                            list.join(", ")
                        )),
                    );
                }
            }
        }
    }
}

/// Reads the `supported-versions` key of the ConfigMap's data: a JSON
/// object `{"versions": ["4.19", …]}`.
pub fn parse_supported(config_map: &Value) -> SupportedVersions {
    let Some(raw) = config_map.pointer("/data/supported-versions").and_then(Value::as_str) else {
        return SupportedVersions::Unknown(
            "ConfigMap hypershift/supported-versions has no `supported-versions` key".into(),
        );
    };
    let versions = serde_json::from_str::<Value>(raw).ok().and_then(|v| {
        v.get("versions")?.as_array()?.iter().map(|s| s.as_str().map(str::to_string)).collect::<Option<Vec<_>>>()
    });
    match versions {
        Some(list) if !list.is_empty() => SupportedVersions::Listed(list),
        _ => SupportedVersions::Unknown(
            "ConfigMap hypershift/supported-versions does not hold a JSON list of versions under `versions`".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "q.io/ocp/release@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// One cluster `a` on `release` (pool `w` on `pool`, if given) and what
    /// lowering it reported.
    fn cluster(release: &str, pool: Option<&str>, extra: &str) -> (Cluster, Vec<Code>) {
        let pool = pool.map(|p| format!(" {{\n        release \"{p}\"\n    }}")).unwrap_or_default();
        let text = format!(
            "cluster a {{\n    release \"{release}\"\n    pull-secret secret=p\n{extra}    node-pool w replicas=1{pool}\n}}\n"
        );
        let mut sources = crate::source::SourceMap::default();
        sources.add("fleet.kdl".into(), text);
        let (mut fleet, diags) = crate::cli::load::front(&sources);
        (fleet.clusters.remove(0), diags.iter().map(|d| d.code).collect())
    }

    fn live(version: &str, image: &str) -> LiveRelease {
        LiveRelease {
            version: Version::from_tag(version),
            image: Some(image.into()),
            source: "status.version.history[0]",
        }
    }

    fn codes(d: &Diagnostics) -> Vec<(Code, crate::diagnostic::Severity)> {
        d.iter().map(|d| (d.code, d.severity)).collect()
    }

    #[test]
    fn offline_rules_find_pools_newer_or_too_far_behind() {
        assert_eq!(cluster("q.io/r:4.18.5", Some("q.io/r:4.18.6"), "").1, [Code::PoolNewerThanCluster]);
        assert_eq!(cluster("q.io/r:4.18.5", Some("q.io/r:4.16.0"), "").1, Vec::<Code>::new());
        assert_eq!(cluster("q.io/r:4.18.5", Some("q.io/r:4.15.9"), "").1, [Code::PoolSkew]);
        assert_eq!(cluster("q.io/r:4.17.5", Some("q.io/r:4.15.9"), "").1, [Code::PoolSkew]);
        assert_eq!(cluster("q.io/r:4.17.5", Some("q.io/r:4.16.30"), "").1, Vec::<Code>::new());
        assert_eq!(cluster("q.io/r:latest", None, "").1, [Code::ReleaseWithoutVersion]);
        assert_eq!(cluster(DIGEST, None, "").1, [Code::ReleaseDigest]);
        assert_eq!(cluster("q.io/r:4.18.5 multi", None, "").1, [Code::InvalidRelease]);
    }

    #[test]
    fn live_rules_refuse_downgrades_and_skips_unless_allowed() {
        use crate::diagnostic::Severity::{Error, Note};
        let (c, _) = cluster("q.io/r:4.18.1", None, "");
        assert_eq!(codes(&check_live(&c, &live("4.18.2", "x"), "t").diags), [(Code::ControlPlaneDowngrade, Error)]);
        assert!(check_live(&c, &live("4.17.9", "x"), "t").diags.is_empty());
        assert_eq!(codes(&check_live(&c, &live("4.16.9", "x"), "t").diags), [(Code::MinorSkip, Error)]);
        let (c, _) = cluster("q.io/r:4.18.1", None, "    allow-minor-skip #true\n");
        let found = check_live(&c, &live("4.16.9", "x"), "t");
        assert_eq!(codes(&found.diags), [(Code::MinorSkip, Note)]);
        assert_eq!(found.change_note.as_deref(), Some("allow-minor-skip: 4.16.9 → 4.18.1 skips 4.17"));
    }

    #[test]
    fn a_digest_the_cluster_runs_takes_the_live_version_for_the_pool_rules() {
        let (c, _) = cluster(DIGEST, Some("q.io/r:4.15.0"), "");
        assert_eq!(codes(&check_live(&c, &live("4.18.2", DIGEST), "t").diags).len(), 1);
        assert_eq!(check_live(&c, &live("4.18.2", DIGEST), "t").diags.iter().next().unwrap().code, Code::PoolSkew);
        // Another image: its version is unknown, nothing is checked.
        assert!(check_live(&c, &live("4.18.2", "q.io/r:4.18.2"), "t").diags.is_empty());
    }

    #[test]
    fn skew_is_two_minors_on_even_and_one_on_odd() {
        assert_eq!(allowed_skew(&Version::from_tag("4.18.5").unwrap()), 2);
        assert_eq!(allowed_skew(&Version::from_tag("4.17.5").unwrap()), 1);
    }

    #[test]
    fn the_live_release_prefers_the_status_history() {
        let hc = json!({
            "spec": {"release": {"image": "q.io/ocp/release:4.17.1-multi"}},
            "status": {"version": {
                "desired": {"image": "q.io/ocp/release:4.18.2-multi", "version": "4.18.2"},
                "history": [{"image": "q.io/ocp/release:4.18.2-multi", "version": "4.18.2", "state": "Partial"}]
            }}
        });
        let live = LiveRelease::of(&hc).unwrap();
        assert_eq!(live.version.unwrap().to_string(), "4.18.2");
        assert_eq!(live.source, "status.version.history[0]");
        let spec_only = json!({"spec": {"release": {"image": "q.io/ocp/release:4.17.1-multi"}}});
        assert_eq!(LiveRelease::of(&spec_only).unwrap().version.unwrap().to_string(), "4.17.1");
    }

    #[test]
    fn supported_versions_are_read_from_the_configmap_data() {
        let cm = json!({"data": {"supported-versions": "{\"versions\":[\"4.19\",\"4.18\"]}"}});
        assert_eq!(parse_supported(&cm), SupportedVersions::Listed(vec!["4.19".into(), "4.18".into()]));
        assert!(matches!(parse_supported(&json!({"data": {}})), SupportedVersions::Unknown(_)));
        let bad = json!({"data": {"supported-versions": "[4.19]"}});
        assert!(matches!(parse_supported(&bad), SupportedVersions::Unknown(_)));
    }
}
