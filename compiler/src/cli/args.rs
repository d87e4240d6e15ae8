//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "hcpc",
    version,
    about = "Declarative compiler for OpenShift hosted control planes on OpenShift Virtualization",
    long_about = "hcpc compiles KDL descriptions of HyperShift hosted clusters (KubeVirt platform) into \
HostedCluster, NodePool, Secret and Namespace objects, shows what would change on the management \
cluster (plan) and makes it so (apply).",
    after_help = "Examples:\n  hcpc check examples/fleet\n  hcpc render examples/minimal\n  hcpc plan examples/fleet\n  hcpc apply examples/fleet --auto-approve"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to use colour: auto (a TTY and no NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (e.g. unchanged objects in plans).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and resolve the configuration; print diagnostics only.
    #[command(
        after_help = "Examples:\n  hcpc check\n  hcpc check fleet/ --format github\n  hcpc check fleet.kdl --deny-warnings"
    )]
    Check {
        #[command(flatten)]
        input: Input,
        /// Diagnostic format: human, json, or github (workflow annotations).
        #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
        format: DiagFormat,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print the desired objects as multi-document YAML, or write one file per object.
    #[command(
        after_help = "Examples:\n  hcpc render examples/minimal\n  hcpc render fleet/ -o out/\n  hcpc render fleet/ --show-secrets"
    )]
    Render {
        #[command(flatten)]
        input: Input,
        /// Write one YAML file per object into this directory instead of stdout.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Include Secret data (like hcp's --render-sensitive), with a new
        /// random etcd encryption key on every run (so the output is not
        /// deterministic). Never in plans.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Show what apply would change on the target.
    #[command(
        after_help = "Examples:\n  hcpc plan examples/fleet\n  hcpc plan --format markdown > plan.md\n  hcpc plan --format markdown --max-bytes 0 > full-plan.md\n  hcpc plan --out plan.json --detailed-exitcode"
    )]
    Plan {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        target: TargetArgs,
        /// Limit the plan to this cluster's objects (repeatable; a glob such as
        /// `prod-*`). For exceptions: the rest of the fleet is not planned.
        #[arg(long = "cluster", value_name = "NAME")]
        clusters: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Save the plan for `hcpc apply FILE`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Markdown only: the most bytes to print (default 65000, under GitHub's
        /// comment limit; 0 = no limit). What does not fit is left out, and said.
        #[arg(long, value_name = "N", value_parser = parse_max_bytes)]
        max_bytes: Option<usize>,
        /// Exit 2 when the plan has changes (0 = none, 1 = error).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Make the target match the configuration (or a saved plan).
    #[command(
        after_help = "Examples:\n  hcpc apply examples/fleet\n  hcpc apply plan.json --auto-approve\n  hcpc apply --wait --timeout 45m"
    )]
    Apply {
        /// A configuration file or directory, or a plan saved with `plan --out`.
        path: Option<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        /// Apply only this cluster's objects (repeatable; a glob such as
        /// `prod-*`). For exceptions: the rest of the fleet is not applied.
        #[arg(long = "cluster", value_name = "NAME")]
        clusters: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// Allow replacing objects whose immutable fields changed.
        #[arg(long)]
        allow_replace: bool,
        /// Take over fields owned by other field managers.
        #[arg(long)]
        force_conflicts: bool,
        /// How long to wait for the fleet lock (e.g. "30s").
        #[arg(long, default_value = "0s")]
        lock_timeout: String,
        /// How many objects to write at the same time (within one dependency
        /// level), and how many targets of a fleet to apply at the same time.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallelism: u16,
        /// Wait for HostedClusters to become Available and NodePools ready.
        #[arg(long)]
        wait: bool,
        /// Limit for --wait (e.g. "30m").
        #[arg(long, default_value = "30m")]
        timeout: String,
        /// Start no wave of the `rollout` after this one (an approval gate).
        #[arg(long, value_name = "NAME")]
        until_wave: Option<String>,
        /// A cluster that makes no progress in its upgrade for this long
        /// fails, and halts the rollout.
        #[arg(long, default_value = "90m")]
        rollout_timeout: String,
    },
    /// Delete what the fleet owns on its targets: every cluster, or those
    /// named with --cluster (as Terraform's destroy: the plan of every
    /// deletion, then confirmation).
    #[command(
        after_help = "Examples:\n  hcpc destroy my-fleet\n  hcpc destroy --cluster demo\n  hcpc destroy --cluster 'test-*' --auto-approve\n\nA cluster under prevent-destroy (the default) is refused: declare `prevent-destroy #false` in it and apply first."
    )]
    Destroy {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        target: TargetArgs,
        /// Destroy only this cluster (repeatable; a glob such as `test-*`).
        #[arg(long = "cluster", value_name = "NAME")]
        clusters: Vec<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// How long to wait for the fleet lock (e.g. "30s").
        #[arg(long, default_value = "0s")]
        lock_timeout: String,
        /// How many objects to delete at the same time.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallelism: u16,
        /// How long to wait for deleted HostedClusters to be gone before their
        /// Secrets are deleted (e.g. "30m").
        #[arg(long, default_value = "30m")]
        timeout: String,
    },
    /// The fleet at a glance: per cluster, in sync or not, health, versions, nodes and roll-out.
    #[command(
        after_help = "Examples:\n  hcpc status\n  hcpc status fleet/ --cluster 'prod-*' -v\n  hcpc status --format markdown\n  hcpc status --format html > status.html\n  hcpc status --watch\n  hcpc status --detailed-exitcode   # exit 2 when degraded or out of sync"
    )]
    Status {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        target: TargetArgs,
        /// Only this cluster (repeatable; a glob such as `prod-*`).
        #[arg(long = "cluster", value_name = "NAME")]
        clusters: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
        format: StatusFormat,
        /// Render again as the operator reports changes (one watch per kind per target), until interrupted.
        #[arg(long)]
        watch: bool,
        /// Exit 2 when a cluster is degraded or out of sync (0 = all fine, 1 = error).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Rewrite KDL files in canonical form, keeping comments.
    #[command(after_help = "Examples:\n  hcpc fmt\n  hcpc fmt fleet/ --check")]
    Fmt {
        #[command(flatten)]
        input: Input,
        /// Do not write; exit 1 if any file would change.
        #[arg(long)]
        check: bool,
    },
    /// Print the dependency graph as Graphviz DOT.
    #[command(after_help = "Example:\n  hcpc graph fleet/ | dot -Tsvg > fleet.svg")]
    Graph {
        #[command(flatten)]
        input: Input,
    },
    /// Write a hosted cluster's admin kubeconfig (from HostedCluster status).
    #[command(
        after_help = "Examples:\n  hcpc kubeconfig example -o example.kubeconfig\n  hcpc kubeconfig clusters/example --context mgmt > kubeconfig"
    )]
    Kubeconfig {
        /// The cluster's name (or NAMESPACE/NAME).
        cluster: String,
        /// Write to this file (mode 0600) instead of stdout.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        /// Configuration to find the cluster's namespace in.
        #[arg(long, default_value = ".")]
        config: PathBuf,
    },
    /// Print a hosted cluster's kubeadmin password (from HostedCluster status).
    #[command(
        after_help = "Examples:\n  hcpc kubeadmin-password example\n  hcpc kubeadmin-password clusters/example --context mgmt"
    )]
    KubeadminPassword {
        /// The cluster's name (or NAMESPACE/NAME).
        cluster: String,
        #[command(flatten)]
        target: TargetArgs,
        /// Configuration to find the cluster's namespace in.
        #[arg(long, default_value = ".")]
        config: PathBuf,
    },
    /// Print KDL for an existing HostedCluster, or write a fleet directory for a namespace or every cluster.
    #[command(
        after_help = "Examples:\n  hcpc import clusters/example > example.kdl\n  hcpc import clusters/example --context mgmt\n  hcpc import clusters -o fleet/\n  hcpc import --all --fleet mgmt-east -o fleet/"
    )]
    Import {
        /// NAMESPACE/NAME of one HostedCluster (printed), or a NAMESPACE (every HostedCluster in it, with -o).
        #[arg(value_name = "NAMESPACE[/NAME]", required_unless_present = "all")]
        cluster: Option<String>,
        /// Every HostedCluster on the management cluster (with -o and --fleet).
        #[arg(long, conflicts_with = "cluster")]
        all: bool,
        /// Write a fleet directory (new or empty): 00-fleet.kdl and one NAME.kdl per cluster.
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
        /// The fleet's name in 00-fleet.kdl (default: the namespace; required with --all).
        #[arg(long, value_name = "NAME")]
        fleet: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  hcpc completions bash > /etc/bash_completion.d/hcpc\n  hcpc completions zsh > \"${fpath[1]}/_hcpc\"\n  hcpc completions fish > ~/.config/fish/completions/hcpc.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Explain a diagnostic code, e.g. `hcpc explain hcpc::storage::snapshot_without_class`.
    #[command(
        after_help = "Examples:\n  hcpc explain\n  hcpc explain hcpc::device::over_capacity\n  hcpc explain storage::snapshot_without_class"
    )]
    Explain {
        /// The code; without it, list all codes.
        code: Option<String>,
    },
    /// Serve the language to editors over the Language Server Protocol (stdio).
    #[command(
        after_help = "Editors start it themselves; see docs/editors.md for Neovim, Helix, VS Code and Zed.\nExample:\n  hcpc lsp"
    )]
    Lsp {
        /// Accepted for editors that pass it; stdio is the only transport.
        #[arg(long)]
        stdio: bool,
    },
    /// Release the fleet's lock on every target, left by an apply that was killed.
    #[command(
        after_help = "Shows who holds each lock and asks first.\nExamples:\n  hcpc unlock\n  hcpc unlock fleet/ --yes"
    )]
    Unlock {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        target: TargetArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Print the RBAC a ServiceAccount needs to plan or apply this fleet, per kube target.
    #[command(
        after_help = "Roles in the fleet's namespaces grant its Secrets, HostedClusters and NodePools;\nno ClusterRole grants Secrets.\nExamples:\n  hcpc rbac fleet/ --service-account ci/hcpc-plan --read-only | kubectl apply -f -\n  hcpc rbac fleet/ --service-account ci/hcpc-apply | kubectl apply -f -"
    )]
    Rbac {
        #[command(flatten)]
        input: Input,
        #[command(flatten)]
        target: TargetArgs,
        /// The ServiceAccount to grant, as NAMESPACE/NAME.
        #[arg(long, value_name = "NAMESPACE/NAME")]
        service_account: String,
        /// Only what `plan` needs (the pull-request identity); without it, what `apply` needs too.
        #[arg(long)]
        read_only: bool,
    },
    /// Print the language schema as JSON.
    #[command(after_help = "Example:\n  hcpc schema > schema/language.json")]
    Schema,
}

#[derive(Debug, Args)]
pub struct Input {
    /// A .kdl file, or a directory whose *.kdl files form one fleet (default: current directory).
    pub path: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Override the configuration's top-level target (not a cluster's own): `kube`, `kube:CONTEXT` or `dir:PATH`.
    #[arg(long, conflicts_with = "context")]
    pub target: Option<String>,
    /// Use the management cluster through this kubeconfig context (same as `--target kube:CONTEXT`).
    #[arg(long)]
    pub context: Option<String>,
    /// Give up on a Kubernetes API request after this long, its retries included (e.g. "10s").
    #[arg(long, default_value = "30s", value_name = "DUR")]
    pub request_timeout: String,
}

impl TargetArgs {
    /// The target override (in `--target` syntax) and the request deadline.
    pub fn flags(&self) -> Result<crate::cli::target::TargetFlags, String> {
        let target = match (&self.target, &self.context) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(c)) => Some(format!("kube:{c}")),
            (None, None) => None,
        };
        let request_timeout = match crate::quantity::Duration::parse(&self.request_timeout) {
            Ok(d) if d.0 > 0 => std::time::Duration::from_nanos(d.0),
            Ok(_) => return Err("--request-timeout must be longer than 0s".to_string()),
            Err(e) => return Err(format!("--request-timeout {e}")),
        };
        Ok(crate::cli::target::TargetFlags { target, request_timeout })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagFormat {
    Human,
    Json,
    Github,
}

/// `--max-bytes`: 0 (no limit) or enough for the summary and closing lines.
fn parse_max_bytes(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("`{s}` is not a number of bytes"))?;
    let min = crate::plan::markdown::MIN_MAX_BYTES;
    if n != 0 && n < min {
        return Err(format!("{n} is too small to hold the plan's summary: use at least {min}, or 0 for no limit"));
    }
    Ok(n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Markdown,
    Json,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
    Markdown,
    Html,
}
