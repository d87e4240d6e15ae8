//! What the HostedCluster and NodePool CRDs (their OpenAPI schemas and CEL
//! rules) and Kubernetes' own validation refuse, checked offline on the
//! settings the language lets through as plain strings or lists: a value
//! the API server would reject, or one it accepts but that can never work
//! (a node selector no node can carry), is an error here, before anything
//! is written.

use std::net::IpAddr;

use super::check::{dns1123_label_problem, dns1123_subdomain_problem};
use super::layers::Layers;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::source::Span;

/// `spec.networking.networkType` of the HostedCluster CRD.
pub const NETWORK_TYPES: &[&str] = &["OVNKubernetes", "OpenShiftSDN", "Calico", "Other"];
/// `spec.nodeSelector`: "nodeSelector map can have at most 20 entries".
pub const MAX_CONTROL_PLANE_SELECTORS: usize = 20;
/// `spec.tolerations`: maxItems.
pub const MAX_TOLERATIONS: usize = 25;
/// `spec.platform.kubevirt.additionalNetworks` of a NodePool: maxItems.
pub const MAX_ADDITIONAL_NETWORKS: usize = 20;
/// `spec.platform.kubevirt.hostDevices` of a NodePool: maxItems.
pub const MAX_HOST_DEVICES: usize = 10;
/// The smallest root volume the RHCOS image fits in, in GiB.
pub const MIN_ROOT_VOLUME_GIB: u64 = 16;
/// The pod network the renderer writes when `cluster-cidr` is not set.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.132.0.0/14";
/// The service network the renderer writes when `service-cidr` is not set.
pub const DEFAULT_SERVICE_CIDR: &str = "172.31.0.0/16";

/// The cluster-level rules (settings of `cluster` and `defaults`).
pub fn cluster(s: &Layers<'_>, diags: &mut Diagnostics) {
    cidr_syntax(s, diags);
    for (node, values_are_labels) in [("labels", true), ("annotations", false), ("control-plane-node-selector", true)] {
        check_map(s, node, values_are_labels, diags);
    }
    base_domain(s, diags);
    network(s, diags);
    selector_count(s, diags);
    tolerations(s, diags);
}

/// The pool-level rules (settings of `node-pool` and its defaults) of the
/// pool called `pool`.
pub fn pool(pool: &str, s: &Layers<'_>, diags: &mut Diagnostics) {
    root_volume_size(pool, s, diags);
    check_map(s, "node-selector", true, diags);
    let networks = s.nodes("additional-network");
    if networks.len() > MAX_ADDITIONAL_NETWORKS {
        diags.push(
            Diagnostic::error(
                Code::TooManyNetworks,
                format!("{} additional networks; a NodePool takes at most {MAX_ADDITIONAL_NETWORKS}", networks.len()),
            )
            .label(networks[MAX_ADDITIONAL_NETWORKS].span(), format!("network {}", MAX_ADDITIONAL_NETWORKS + 1))
            .help("the NodePool CRD allows 20 `additionalNetworks`: attach fewer networks, or split the pool"),
        );
    }
    host_device_count(pool, s, diags);
    additional_networks(pool, s, diags);
}

fn root_volume_size(pool: &str, s: &Layers<'_>, diags: &mut Diagnostics) {
    let Some(v) = s.prop("root-volume", "size") else { return };
    let Some(size) = v.quantity() else { return };
    if size.whole() < u128::from(MIN_ROOT_VOLUME_GIB) << 30 {
        diags.push(
            Diagnostic::error(
                Code::RootVolumeTooSmall,
                format!("root volume of `{pool}` is {size}; at least {MIN_ROOT_VOLUME_GIB}Gi is needed"),
            )
            .label(v.span(), "too small")
            .help(format!("use size=\"{MIN_ROOT_VOLUME_GIB}Gi\" or more: the RHCOS image does not fit in less")),
        );
    }
}

fn host_device_count(pool: &str, s: &Layers<'_>, diags: &mut Diagnostics) {
    let devices = s.nodes("host-device");
    if devices.len() > MAX_HOST_DEVICES {
        diags.push(
            Diagnostic::error(
                Code::TooManyHostDevices,
                format!(
                    "node pool `{pool}` has {} host devices; at most {MAX_HOST_DEVICES} are allowed",
                    devices.len()
                ),
            )
            .label(devices[MAX_HOST_DEVICES].span(), "the 11th")
            .help("the NodePool CRD allows 10 entries; raise `count=` on an entry instead of repeating a device"),
        );
    }
}

/// Each additional network names a NetworkAttachmentDefinition as
/// `namespace/name`; a pool without the default network needs one.
fn additional_networks(pool: &str, s: &Layers<'_>, diags: &mut Diagnostics) {
    let networks = s.nodes("additional-network");
    let mut named = 0;
    for net in networks.iter().filter_map(|n| n.arg(0).and_then(|v| v.string())) {
        named += 1;
        let ok = net
            .value
            .split_once('/')
            .is_some_and(|(ns, nad)| dns1123_label_problem(ns).is_none() && dns1123_subdomain_problem(nad).is_none());
        if !ok {
            diags.push(
                Diagnostic::error(Code::AdditionalNetworkFormat, format!("`{}` is not \"namespace/name\"", net.value))
                    .label(net.span, "expected namespace/name")
                    .help("name a NetworkAttachmentDefinition as \"namespace/name\", e.g. \"default/vlan-10\""),
            );
        }
    }
    if let Some(v) = s.arg("attach-default-network")
        && v.bool() == Some(false)
        && named == 0
    {
        diags.push(
            Diagnostic::error(Code::NoNetwork, format!("node pool `{pool}` would have no network"))
                .label(v.span(), "default network detached")
                .help("add `additional-network \"namespace/name\"`, or keep the default network"),
        );
    }
}

/// Every CIDR written is `address/prefix`.
fn cidr_syntax(s: &Layers<'_>, diags: &mut Diagnostics) {
    for key in ["cluster-cidr", "service-cidr", "machine-cidr"] {
        if let Some(v) = s.prop("network", key)
            && let Some(problem) = v.str().and_then(cidr_problem)
        {
            diags.push(
                Diagnostic::error(Code::InvalidValue, format!("`{key}` is not a CIDR: {problem}"))
                    .label(v.span(), "not a CIDR")
                    .help("write an address and prefix length, e.g. \"10.132.0.0/14\""),
            );
        }
    }
}

fn base_domain(s: &Layers<'_>, diags: &mut Diagnostics) {
    let Some(v) = s.arg("base-domain") else { return };
    let Some(domain) = v.str() else { return };
    if let Some(problem) = base_domain_problem(domain) {
        diags.push(
            Diagnostic::error(Code::InvalidBaseDomain, format!("`{domain}` is not a valid base domain: {problem}"))
                .label(v.span(), "not a domain name")
                .help("write a DNS name such as \"example.com\": letters, digits and `-` between dots, the last part letters only"),
        );
    }
}

/// The CRD's rule: `^(?:(?:[a-zA-Z0-9-]+\.)+[a-zA-Z]{2,}|[a-zA-Z0-9-]+)$`, at most 253 characters.
pub fn base_domain_problem(domain: &str) -> Option<String> {
    if domain.len() > 253 {
        return Some(format!("it is {} characters long; at most 253 are allowed", domain.len()));
    }
    let parts: Vec<&str> = domain.split('.').collect();
    let plain = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if let Some(bad) = parts.iter().find(|p| !plain(p)) {
        return Some(if bad.is_empty() {
            "it has an empty part (two dots, or a dot at either end)".to_string()
        } else {
            format!("`{bad}` may hold only letters, digits and `-`")
        });
    }
    match parts.as_slice() {
        [_] => None,
        [.., last] if last.len() >= 2 && last.chars().all(|c| c.is_ascii_alphabetic()) => None,
        [.., last] => Some(format!("the last part, `{last}`, must be two or more letters")),
        [] => None,
    }
}

fn network(s: &Layers<'_>, diags: &mut Diagnostics) {
    if let Some(v) = s.prop("network", "type")
        && let Some(t) = v.str()
        && !NETWORK_TYPES.contains(&t)
    {
        let same_case = NETWORK_TYPES.iter().find(|n| n.eq_ignore_ascii_case(t));
        let d = Diagnostic::error(
            Code::UnknownNetworkType,
            format!("`{t}` is not a network type the HostedCluster API accepts"),
        )
        .label(v.span(), "unknown network type");
        diags.push(match same_case {
            Some(fixed) => d.help(format!("write `{fixed}` (the API's spelling)")),
            None => d.help(format!("use one of: {}", NETWORK_TYPES.join(", "))),
        });
    }
    // The defaults the renderer writes when a CIDR is not set.
    let cidrs: Vec<(&str, Option<super::layers::ValueRef<'_>>, Option<Cidr>)> = [
        ("cluster-cidr", Some(DEFAULT_CLUSTER_CIDR)),
        ("service-cidr", Some(DEFAULT_SERVICE_CIDR)),
        ("machine-cidr", None),
    ]
    .into_iter()
    .filter_map(|(key, default)| {
        let v = s.prop("network", key);
        let text = v.and_then(|v| v.str()).or(default)?;
        Some((key, v, Cidr::parse(text)))
    })
    .collect();
    for (i, (a, va, ca)) in cidrs.iter().enumerate() {
        for (b, vb, cb) in &cidrs[i + 1..] {
            let (Some(ca), Some(cb)) = (ca, cb) else { continue };
            if !ca.overlaps(cb) {
                continue;
            }
            // Point at what was written; a default is named in the message.
            let Some(at) = vb.or(*va) else { continue };
            let what = if ca == cb { "the same range" } else { "overlapping ranges" };
            let mut d = Diagnostic::error(
                Code::OverlappingNetworks,
                format!("`{a}` ({}) and `{b}` ({}) are {what}", ca.text, cb.text),
            )
            .label(at.span(), what);
            if let (Some(va), Some(_)) = (va, vb) {
                d = d.label(va.span(), "this one");
            }
            diags.push(d.help(
                "the pod, service and machine networks must not overlap (the HostedCluster API refuses equal ones, and overlapping ones break routing): pick disjoint ranges",
            ));
        }
    }
}

/// An address range `address/prefix`; `None` from [`Cidr::parse`] when it
/// is not one (reported as `not a CIDR` elsewhere).
#[derive(Debug, PartialEq)]
struct Cidr {
    text: String,
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = s.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then(|| Cidr { text: s.to_string(), addr, prefix })
    }

    fn bits(&self) -> (u128, u32) {
        match self.addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, u32::from(self.prefix)),
            IpAddr::V6(a) => (u128::from(a), u32::from(self.prefix)),
        }
    }

    /// Whether one range contains the other's first address.
    fn overlaps(&self, other: &Cidr) -> bool {
        if self.addr.is_ipv4() != other.addr.is_ipv4() {
            return false;
        }
        // Both are left-aligned in 128 bits, so a prefix is the top bits.
        let ((a, pa), (b, pb)) = (self.bits(), other.bits());
        let prefix = pa.min(pb);
        let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
        a & mask == b & mask
    }
}

fn selector_count(s: &Layers<'_>, diags: &mut Diagnostics) {
    let selectors = s.map("control-plane-node-selector");
    if selectors.len() > MAX_CONTROL_PLANE_SELECTORS
        && let Some(n) = s.node("control-plane-node-selector")
    {
        diags.push(
            Diagnostic::error(
                Code::TooManySelectors,
                format!(
                    "the control plane node selector has {} entries; the HostedCluster API takes at most {MAX_CONTROL_PLANE_SELECTORS}",
                    selectors.len()
                ),
            )
            .label(n.span(), format!("{} entries", selectors.len()))
            .help("select the management nodes with fewer labels (one label per node role is usual)"),
        );
    }
}

fn tolerations(s: &Layers<'_>, diags: &mut Diagnostics) {
    let all = s.nodes("toleration");
    if all.len() > MAX_TOLERATIONS {
        diags.push(
            Diagnostic::error(
                Code::TooManyTolerations,
                format!("{} tolerations; the HostedCluster API takes at most {MAX_TOLERATIONS}", all.len()),
            )
            .label(all[MAX_TOLERATIONS].span(), format!("toleration {}", MAX_TOLERATIONS + 1))
            .help("tolerate fewer taints: a toleration without `key=` and with operator=Exists tolerates every taint"),
        );
    }
    for t in &all {
        if let (Some(op), Some(v)) = (t.prop("operator"), t.prop("value"))
            && op.str() == Some("Exists")
        {
            diags.push(
                Diagnostic::error(Code::ConflictingSettings, "a toleration with operator=Exists takes no value")
                    .label(v.span(), "value")
                    .label(op.span(), "operator=Exists")
                    .help("remove value=, or use operator=Equal"),
            );
        }
        let key = t.prop("key");
        let value = t.prop("value");
        let operator = t.prop("operator").and_then(|v| v.str());
        let mut problems = Vec::new();
        if let Some(k) = key
            && let Some(p) = k.str().and_then(label_key_problem)
        {
            problems.push((
                k.span(),
                format!("`{}` is not a valid taint key: {p}", k.str().unwrap_or_default()),
                "a taint key is a label key: `[prefix/]name`",
            ));
        }
        if let Some(v) = value
            && let Some(p) = v.str().filter(|s| !s.is_empty()).and_then(label_value_problem)
        {
            problems.push((
                v.span(),
                format!("`{}` is not a valid taint value: {p}", v.str().unwrap_or_default()),
                "a taint value is a label value: up to 63 letters, digits, `-`, `_`, `.`",
            ));
        }
        if key.is_none() && operator != Some("Exists") {
            problems.push((
                t.name_span(),
                "a toleration without `key=` must have operator=Exists".to_string(),
                "add `key=`, or write operator=Exists to tolerate every taint",
            ));
        }
        if let Some(secs) = t.prop("seconds")
            && t.prop("effect").and_then(|v| v.str()) != Some("NoExecute")
        {
            problems.push((
                secs.span(),
                "`seconds=` needs effect=NoExecute".to_string(),
                "tolerationSeconds only applies to NoExecute taints: add effect=NoExecute, or remove seconds=",
            ));
        }
        for (span, message, help) in problems {
            diags.push(Diagnostic::error(Code::InvalidToleration, message).label(span, "here").help(help));
        }
    }
}

/// Label keys and values as Kubernetes validates them; hcpc's own keys are reserved.
fn check_map(s: &Layers<'_>, node: &str, values_are_labels: bool, diags: &mut Diagnostics) {
    for n in s.all_nodes(node) {
        for entry in n.node.entries().iter().filter(|e| e.name().is_some()) {
            let Some(key) = entry.name().map(|k| k.value()) else { continue };
            let span = Span::new(n.file, entry.span());
            let problem = label_key_problem(key)
                .map(|p| format!("`{key}` is not a valid key: {p}"))
                .or_else(|| {
                    let owned = key.starts_with("applyset.kubernetes.io/")
                        || key.starts_with("hcpc.openshift.io/")
                        || key == hcpc_schema::labels::MANAGED_BY;
                    (owned && !node.ends_with("node-selector")).then(|| format!("`{key}` is set by hcpc itself"))
                })
                .or_else(|| {
                    let value = entry.value().as_string().unwrap_or("");
                    (values_are_labels && !value.is_empty())
                        .then(|| label_value_problem(value))
                        .flatten()
                        .map(|p| format!("`{value}` is not a valid label value: {p}"))
                });
            if let Some(message) = problem {
                diags.push(
                    Diagnostic::error(Code::InvalidLabel, message)
                        .label(span, "here")
                        .help("keys are `[prefix/]name`: name up to 63 characters of letters, digits, `-`, `_`, `.`; the prefix a DNS subdomain; label values likewise up to 63 characters"),
                );
            }
        }
    }
}

fn label_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 63 {
        return Some("it must be 1 to 63 characters".into());
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    if !name.chars().all(ok_char)
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Some("use letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit".into());
    }
    None
}

fn label_key_problem(key: &str) -> Option<String> {
    match key.rsplit_once('/') {
        Some((prefix, name)) => {
            dns1123_subdomain_problem(prefix).map(|p| format!("prefix {p}")).or_else(|| label_name_problem(name))
        }
        None => label_name_problem(key),
    }
}

fn label_value_problem(value: &str) -> Option<String> {
    label_name_problem(value)
}

fn cidr_problem(s: &str) -> Option<String> {
    let Some((addr, prefix)) = s.split_once('/') else {
        return Some("no `/prefix`".to_string());
    };
    let max = match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return Some(format!("`{addr}` is not an IP address")),
    };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max && prefix.chars().all(|c| c.is_ascii_digit()) => None,
        _ => Some(format!("`/{prefix}` is not a prefix length from 0 to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_domains_as_the_crd_reads_them() {
        for ok in ["example", "example.com", "sub.example.com", "a-b.c0.io"] {
            assert_eq!(base_domain_problem(ok), None, "{ok}");
        }
        for bad in ["example.c", "example.com.", "ex ample.com", "a..b.com", "example.c0m", "_x.com"] {
            assert!(base_domain_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn ranges_overlap_within_one_family() {
        let c = |s| Cidr::parse(s).unwrap();
        assert!(c("10.132.0.0/14").overlaps(&c("10.133.0.0/16")));
        assert!(c("10.133.0.0/16").overlaps(&c("10.132.0.0/14")));
        assert!(!c("10.132.0.0/14").overlaps(&c("10.136.0.0/16")));
        assert!(c("0.0.0.0/0").overlaps(&c("172.31.0.0/16")));
        assert!(!c("10.0.0.0/8").overlaps(&c("fd00::/8")));
        assert!(c("fd00::/8").overlaps(&c("fd01::/16")));
        assert!(!c("fd00::/16").overlaps(&c("fd01::/16")));
    }

    /// The checks moved here from the readers, through the whole stage:
    /// each (fleet text, code, message, what it points at).
    mod lowered {
        use super::super::super::test_support::lower_text;
        use crate::diagnostic::Code;

        fn cluster(body: &str) -> String {
            format!(
                "cluster a {{\n    release \"quay.io/openshift-release-dev/ocp-release:4.17.3-multi\"\n    pull-secret secret=ps\n{body}\n}}\n"
            )
        }

        fn pool(body: &str) -> String {
            cluster(&format!("    node-pool w replicas=1 {{\n{body}\n    }}"))
        }

        fn reported(text: &str, code: Code, message: &str, pointed: &str) {
            let l = lower_text(text);
            let (m, at) = l.only(code);
            assert_eq!((m.as_str(), at), (message, pointed), "{text}");
        }

        #[test]
        fn cidrs_are_address_and_prefix() {
            reported(
                &cluster("    network cluster-cidr=\"10.0.0.0/33\""),
                Code::InvalidValue,
                "`cluster-cidr` is not a CIDR: `/33` is not a prefix length from 0 to 32",
                "cluster-cidr=\"10.0.0.0/33\"",
            );
            reported(
                &cluster("    network service-cidr=\"10.0.0.0\""),
                Code::InvalidValue,
                "`service-cidr` is not a CIDR: no `/prefix`",
                "service-cidr=\"10.0.0.0\"",
            );
            reported(
                &cluster("    network machine-cidr=\"ten/8\""),
                Code::InvalidValue,
                "`machine-cidr` is not a CIDR: `ten` is not an IP address",
                "machine-cidr=\"ten/8\"",
            );
        }

        #[test]
        fn an_exists_toleration_takes_no_value() {
            reported(
                &cluster("    toleration key=k operator=Exists value=v"),
                Code::ConflictingSettings,
                "a toleration with operator=Exists takes no value",
                "value=v",
            );
        }

        #[test]
        fn labels_are_kubernetes_labels_and_hcpc_keeps_its_own() {
            reported(
                &cluster("    labels \"hcpc.openshift.io/fleet\"=x"),
                Code::InvalidLabel,
                "`hcpc.openshift.io/fleet` is set by hcpc itself",
                "\"hcpc.openshift.io/fleet\"=x",
            );
            reported(
                &cluster("    annotations \"-bad\"=x"),
                Code::InvalidLabel,
                "`-bad` is not a valid key: use letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit",
                "\"-bad\"=x",
            );
            reported(
                &pool("        node-selector zone=\"a b\""),
                Code::InvalidLabel,
                "`a b` is not a valid label value: use letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit",
                "zone=\"a b\"",
            );
            lower_text(&cluster("    annotations note=\"any text at all\"")).clean();
        }

        #[test]
        fn a_root_volume_holds_the_image() {
            reported(
                &pool("        root-volume size=\"8Gi\""),
                Code::RootVolumeTooSmall,
                "root volume of `w` is 8Gi; at least 16Gi is needed",
                "size=\"8Gi\"",
            );
            lower_text(&pool("        root-volume size=\"16Gi\"")).clean();
        }

        #[test]
        fn a_pool_takes_at_most_ten_host_devices() {
            let devices: String = (0..11).map(|i| format!("        host-device d{i}\n")).collect();
            let l = lower_text(&pool(devices.trim_end()));
            let (message, at) = l.only(Code::TooManyHostDevices);
            assert_eq!(
                (message.as_str(), at),
                ("node pool `w` has 11 host devices; at most 10 are allowed", "host-device d10")
            );
        }

        #[test]
        fn additional_networks_name_a_namespace_and_a_definition() {
            reported(
                &pool("        additional-network vlan"),
                Code::AdditionalNetworkFormat,
                "`vlan` is not \"namespace/name\"",
                "vlan",
            );
            lower_text(&pool("        additional-network \"default/vlan-10\"")).clean();
        }

        #[test]
        fn a_pool_keeps_a_network() {
            reported(
                &pool("        attach-default-network #false"),
                Code::NoNetwork,
                "node pool `w` would have no network",
                "#false",
            );
            let l = lower_text(&pool(
                "        attach-default-network #false\n        additional-network \"default/vlan-10\"",
            ));
            assert!(!l.clean().pool("a", "w").attach_default_network);
        }
    }
}
