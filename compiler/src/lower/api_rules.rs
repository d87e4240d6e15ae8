//! What the HostedCluster and NodePool CRDs (their OpenAPI schemas and CEL
//! rules) and Kubernetes' own validation refuse, checked offline on the
//! settings the language lets through as plain strings or lists: a value
//! the API server would reject, or one it accepts but that can never work
//! (a node selector no node can carry), is an error here, before anything
//! is written.

use std::net::IpAddr;

use super::layers::Layers;
use super::{check_map, label_key_problem, label_value_problem};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};

/// `spec.networking.networkType` of the HostedCluster CRD.
pub const NETWORK_TYPES: &[&str] = &["OVNKubernetes", "OpenShiftSDN", "Calico", "Other"];
/// `spec.nodeSelector`: "nodeSelector map can have at most 20 entries".
pub const MAX_CONTROL_PLANE_SELECTORS: usize = 20;
/// `spec.tolerations`: maxItems.
pub const MAX_TOLERATIONS: usize = 25;
/// `spec.platform.kubevirt.additionalNetworks` of a NodePool: maxItems.
pub const MAX_ADDITIONAL_NETWORKS: usize = 20;

/// The cluster-level rules (settings of `cluster` and `defaults`).
pub fn cluster(s: &Layers<'_>, diags: &mut Diagnostics) {
    base_domain(s, diags);
    network(s, diags);
    selector_count(s, diags);
    tolerations(s, diags);
}

/// The pool-level rules (settings of `node-pool` and its defaults).
pub fn pool(s: &Layers<'_>, diags: &mut Diagnostics) {
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
    let cidrs: Vec<(&str, Option<super::layers::ValueRef<'_>>, Option<Cidr>)> =
        [("cluster-cidr", Some("10.132.0.0/14")), ("service-cidr", Some("172.31.0.0/16")), ("machine-cidr", None)]
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
}
