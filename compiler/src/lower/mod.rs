//! Stage 2: KDL syntax trees → typed IR ([`crate::ir::Fleet`]).
//!
//! First every node is checked against the language schema (`check`), then
//! the typed values are read through layers (`layers`): a cluster's own
//! settings over `defaults`. Checks that need only one cluster or pool
//! (required settings, ranges, conflicting settings) happen here; checks
//! across clusters happen in `resolve`.
//!
//! One module per concern: `cluster` and `pool` read the typed values,
//! `infra` the inventory and targets, `profiles` and `rollout` their
//! blocks; the checks sit together in `check` (against the language
//! schema) and `api_rules` (what the HyperShift API and Kubernetes refuse).

#![deny(clippy::disallowed_methods)]

mod api_rules;
mod check;
mod cluster;
mod infra;
mod layers;
mod pool;
mod profiles;
mod rollout;

use std::path::Path;

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ir::*;
use crate::parse::ParsedFile;
use crate::source::{SourceMap, Span};

pub use check::{dns1123_label_problem, dns1123_subdomain_problem};
use cluster::{Layer, lower_cluster};
use layers::{Layers, NodeRef};
use profiles::Profiles;

/// What lowering needs besides the syntax trees.
pub struct LowerInput<'a> {
    pub sources: &'a SourceMap,
    pub files: &'a [ParsedFile],
    /// The home directory, for `~/` in paths.
    pub home: Option<&'a Path>,
}

/// Lowers every file into one fleet.
pub fn lower(input: &LowerInput<'_>) -> (Fleet, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut tops: Vec<NodeRef<'_>> = Vec::new();
    for f in input.files {
        let dir = input.sources.get(f.file).dir();
        tops.extend(f.doc.nodes().iter().map(|node| NodeRef { node, file: f.file, dir }));
    }
    // Work proportional to the input, to decide whether to use all cores.
    let size: usize = input.files.iter().map(|f| input.sources.get(f.file).text.len()).sum();
    for f in input.files {
        diags.extend(check::check_top_level(&f.doc, f.file, size));
    }
    let once = |name: &str, diags: &mut Diagnostics| -> Option<NodeRef<'_>> {
        let found: Vec<&NodeRef<'_>> = tops.iter().filter(|n| n.node.name().value() == name).collect();
        // Within one file `check_block` already reported repeats; across files do it here.
        if let [first, .., last] = found.as_slice()
            && first.file != last.file
        {
            diags.push(
                Diagnostic::error(Code::DuplicateSetting, format!("`{name}` is declared in two files"))
                    .label(last.name_span(), "declared again here")
                    .label(first.name_span(), "first declared here")
                    .help(format!("a fleet has one `{name}`; keep it in one file")),
            );
        }
        found.first().map(|n| **n)
    };
    let defaults = once("defaults", &mut diags);
    let infra_node = once("infra", &mut diags);
    let target = once("target", &mut diags);
    let fleet_node = once("fleet", &mut diags);
    let rollout_node = once("rollout", &mut diags);
    let allow_outside = once("allow-paths-outside", &mut diags);

    let defaults_block = defaults.and_then(|d| d.children());
    let pool_defaults = defaults_block.and_then(|b| Layers::new([Some(b)]).node("node-pool"));
    let defaults_layer = Layer { block: defaults_block, pool_defaults };
    let profiles = Profiles::collect(&tops, &mut diags);

    // Each cluster is lowered on its own (in parallel for large fleets);
    // diagnostics keep declaration order.
    let cluster_nodes: Vec<&NodeRef<'_>> = tops.iter().filter(|n| n.node.name().value() == "cluster").collect();
    let lowered = crate::parallel::map(cluster_nodes, size, |n| {
        let mut diags = Diagnostics::default();
        let c = lower_cluster(n, &profiles, defaults_layer, input.home, &mut diags);
        (c, diags)
    });
    let mut clusters = Vec::with_capacity(lowered.len());
    for (c, d) in lowered {
        diags.extend(d);
        clusters.extend(c);
    }
    let all_parsed = input.files.len() == input.sources.len();
    // Not an error: removing the last cluster is how a fleet's clusters
    // are deleted (prevent-destroy still guards each).
    if clusters.is_empty() && all_parsed && !diags.has_errors() {
        let mut d = Diagnostic::warning(
            Code::NoClusters,
            "no `cluster` is declared: `plan` and `apply` delete every cluster this fleet made",
        )
        .help(
            "to add one, declare `cluster NAME { release …; pull-secret file=…; node-pool workers replicas=2 }`; to delete the clusters on purpose, `hcpc destroy` says so",
        );
        if let Some((id, _)) = input.sources.iter().next() {
            d = d.label(Span { file: id, offset: 0, len: 0 }, "in this fleet");
        }
        diags.push(d);
    }

    let fleet_name = fleet_node.and_then(|n| n.arg(0)).and_then(|v| v.str()).unwrap_or("default");
    let default_ns = defaults_block
        .and_then(|b| Layers::new([Some(b)]).arg("namespace"))
        .and_then(|v| v.str())
        .unwrap_or("clusters");
    let fleet_ns = fleet_node.and_then(|n| n.prop("namespace")).and_then(|v| v.str()).unwrap_or(default_ns);
    let fleet = Fleet {
        name: fleet_name.to_string(),
        named: fleet_node.is_some(),
        namespace: fleet_ns.to_string(),
        target: target.and_then(|t| infra::lower_target(&t, input.home, &mut diags)),
        inventory: infra_node.map(|i| infra::lower_inventory(&i, &mut diags)).unwrap_or_default(),
        clusters,
        rollout: rollout_node.and_then(|r| rollout::lower_rollout(&r, &mut diags)),
        allow_paths_outside: allow_outside.map(|n| n.name_span()),
    };
    (fleet, diags)
}

/// Lowering one file of KDL text, for the unit tests of each module.
#[cfg(test)]
mod test_support {
    use super::{LowerInput, lower};
    use crate::diagnostic::{Code, Diagnostic, Severity};
    use crate::ir::{Cluster, Fleet, NodePool};
    use crate::source::SourceMap;

    /// A lowered fleet and its diagnostics, sorted as they are printed.
    pub struct Lowered {
        pub fleet: Fleet,
        pub diags: Vec<Diagnostic>,
        text: String,
    }

    /// Lowers `text` as the only file of a fleet in `/fleet`.
    pub fn lower_text(text: &str) -> Lowered {
        let mut sources = SourceMap::default();
        sources.add("/fleet/fleet.kdl".into(), text.to_string());
        let (files, parse_diags) = crate::parse::parse(&sources);
        assert!(parse_diags.is_empty(), "the test's KDL parses: {:?}", parse_diags.sorted());
        let (fleet, diags) = lower(&LowerInput { sources: &sources, files: &files, home: None });
        Lowered { fleet, diags: diags.sorted(), text: text.to_string() }
    }

    impl Lowered {
        pub fn cluster(&self, name: &str) -> &Cluster {
            let found = self.fleet.clusters.iter().find(|c| c.name.value == name);
            found.unwrap_or_else(|| panic!("cluster `{name}` is lowered; diagnostics: {:#?}", self.diags))
        }

        pub fn pool(&self, cluster: &str, name: &str) -> &NodePool {
            let c = self.cluster(cluster);
            let found = c.node_pools.iter().find(|p| p.name.value == name);
            found.unwrap_or_else(|| panic!("pool `{name}` of `{cluster}` is lowered; diagnostics: {:#?}", self.diags))
        }

        /// No error: defaults and layers are all that is being tested.
        pub fn clean(&self) -> &Self {
            let errors: Vec<_> = self.diags.iter().filter(|d| d.severity == Severity::Error).collect();
            assert!(errors.is_empty(), "no error expected: {errors:#?}");
            self
        }

        /// The one diagnostic of `code`, as (message, the text its first
        /// label points at); every one also says how to fix it.
        pub fn only(&self, code: Code) -> (String, &str) {
            let found: Vec<&Diagnostic> = self.diags.iter().filter(|d| d.code == code).collect();
            let [d] = found.as_slice() else {
                panic!("one {code:?} expected, got {}: {:#?}", found.len(), self.diags);
            };
            assert!(d.help.as_deref().is_some_and(|h| !h.is_empty()), "{code:?} has a help: {d:#?}");
            let span = d.primary_span().unwrap_or_else(|| panic!("{code:?} points at the input: {d:#?}"));
            (d.message.clone(), &self.text[span.offset..span.offset + span.len])
        }
    }
}
