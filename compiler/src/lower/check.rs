//! Table-driven checks of nodes against the language schema
//! (`hcpc_schema::lang`): names, arity, value kinds, duplicates.
//!
//! Checking here, once, means the typed extraction in `mod.rs` can read
//! values without repeating error handling, and every node in every block
//! gets the same quality of diagnostic (closest name, expected kind).

use std::collections::HashMap;

use hcpc_schema::lang::{self, NodeSpec, ValueKind};
use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};

use crate::diagnostic::{Code, Diagnostic, Diagnostics, closest};
use crate::quantity::{Duration, IntOrPercent, Quantity};
use crate::source::{FileId, Span};

/// Checks a file's top-level nodes; each node's subtree is checked on its
/// own, in parallel when the fleet is `size` bytes large enough, and the
/// diagnostics come back in file order.
pub fn check_top_level(doc: &KdlDocument, file: FileId, size: usize) -> Diagnostics {
    let nodes: Vec<&KdlNode> = doc.nodes().iter().collect();
    let first = first_of_each(doc);
    let checked = crate::parallel::map(nodes, size, |node| {
        let mut diags = Diagnostics::default();
        if let Some(spec) = checked_node(node, &first, lang::TOP_LEVEL, file, "the top level", &mut diags) {
            check_node(node, spec, file, &mut diags);
        }
        diags
    });
    let mut diags = Diagnostics::default();
    for d in checked {
        diags.extend(d);
    }
    diags
}

/// Checks every node of `doc` against `specs`, recursively.
pub fn check_block(doc: &KdlDocument, specs: &[NodeSpec], file: FileId, context: &str, diags: &mut Diagnostics) {
    let first = first_of_each(doc);
    for node in doc.nodes() {
        if let Some(spec) = checked_node(node, &first, specs, file, context, diags) {
            check_node(node, spec, file, diags);
        }
    }
}

/// The first node of each name in `doc`.
fn first_of_each(doc: &KdlDocument) -> HashMap<&str, &KdlNode> {
    let mut first = HashMap::new();
    for node in doc.nodes() {
        first.entry(node.name().value()).or_insert(node);
    }
    first
}

/// The spec of `node` if it is known in `specs` and not a repeat of a
/// setting allowed once (both reported); `first` holds the first node of
/// each name in its block.
fn checked_node<'s>(
    node: &KdlNode,
    first: &HashMap<&str, &KdlNode>,
    specs: &'s [NodeSpec],
    file: FileId,
    context: &str,
    diags: &mut Diagnostics,
) -> Option<&'s NodeSpec> {
    let name = node.name().value();
    let Some(spec) = specs.iter().find(|s| s.name == name) else {
        let mut d = Diagnostic::error(Code::UnknownNode, format!("unknown node `{name}` in {context}"))
            .label(Span::new(file, node.name().span()), "not known here");
        d = match closest(name, specs.iter().map(|s| s.name)) {
            Some(c) => d.help(format!("did you mean `{c}`?")).suggest(Span::new(file, node.name().span()), c),
            None => d.help(format!("{context} takes: {}", specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", "))),
        };
        diags.push(d);
        return None;
    };
    if !spec.repeatable
        && let Some(first) = first.get(name).filter(|n| !std::ptr::eq(**n, node))
    {
        diags.push(
            Diagnostic::error(Code::DuplicateSetting, format!("`{name}` is set twice in {context}"))
                .label(Span::new(file, node.name().span()), "set again here")
                .label(Span::new(file, first.name().span()), "first set here")
                .help(format!("keep one `{name}`")),
        );
        return None;
    }
    Some(spec)
}

/// Checks one node: its arguments, properties and children.
pub fn check_node(node: &KdlNode, spec: &NodeSpec, file: FileId, diags: &mut Diagnostics) {
    let name = spec.name;
    let node_span = Span::new(file, node.name().span());
    let args: Vec<&KdlEntry> = node.entries().iter().filter(|e| e.name().is_none()).collect();
    for (i, entry) in args.iter().enumerate() {
        match spec.args.get(i) {
            Some(a) => {
                check_value(entry, a.value, &What { node: name, item: a.meta, property: false }, file, diags);
            }
            None => {
                let takes = match spec.args.len() {
                    0 => "no arguments".to_string(),
                    n => format!("{n} argument{}", if n == 1 { "" } else { "s" }),
                };
                let help = if spec.props.is_empty() && spec.free_props.is_none() {
                    format!("`{name}` takes {takes}")
                } else {
                    format!("`{name}` takes {takes}; settings are written as properties: {}", prop_list(spec))
                };
                diags.push(
                    Diagnostic::error(Code::UnexpectedArgument, format!("unexpected argument to `{name}`"))
                        .label(Span::new(file, entry.span()), "not expected")
                        .help(help),
                );
            }
        }
    }
    for a in spec.args.iter().skip(args.len()) {
        if a.required {
            diags.push(
                Diagnostic::error(Code::MissingArgument, format!("`{name}` needs {}", a.meta))
                    .label(node_span, format!("{} missing", a.meta))
                    .help(format!("write `{name} {}`{}", a.meta, kind_hint(a.value))),
            );
        }
    }
    let mut seen_props: HashMap<&str, &KdlEntry> = HashMap::new();
    for entry in node.entries() {
        let Some(key) = entry.name() else { continue };
        let key_name = key.value();
        if let Some(first) = seen_props.insert(key_name, entry) {
            diags.push(
                Diagnostic::error(Code::DuplicateSetting, format!("property `{key_name}` is given twice"))
                    .label(Span::new(file, entry.span()), "again here")
                    .label(Span::new(file, first.span()), "first here")
                    .help("keep one"),
            );
            continue;
        }
        if let Some(p) = spec.props.iter().find(|p| p.name == key_name) {
            check_value(entry, p.value, &What { node: name, item: key_name, property: true }, file, diags);
        } else if let Some(kind) = spec.free_props {
            check_value(entry, kind, &What { node: name, item: key_name, property: true }, file, diags);
        } else {
            let mut d = Diagnostic::error(Code::UnknownProperty, format!("unknown property `{key_name}` on `{name}`"))
                .label(Span::new(file, key.span()), "not known");
            d = match closest(key_name, spec.props.iter().map(|p| p.name)) {
                Some(c) => d.help(format!("did you mean `{c}=`?")).suggest(Span::new(file, key.span()), c),
                None if spec.props.is_empty() => d.help(format!("`{name}` takes no properties")),
                None => d.help(format!("`{name}` takes {}", prop_list(spec))),
            };
            diags.push(d);
        }
    }
    // `class "INFRA/HOSTED"` names its `hosted=` already: the argument's
    // own diagnostic takes it apart, and says so once.
    let hcp_mapping = matches!(name, "class" | "snapshot-class")
        && node.entries().iter().any(|e| e.name().is_none() && e.value().as_string().is_some_and(|v| v.contains('/')));
    for p in spec.props.iter().filter(|p| p.required && !(hcp_mapping && p.name == "hosted")) {
        if !seen_props.contains_key(p.name) {
            diags.push(
                Diagnostic::error(Code::MissingProperty, format!("`{name}` needs `{}=`", p.name))
                    .label(node_span, format!("no {}=", p.name))
                    .help(format!("add {}=…: {}", p.name, p.doc)),
            );
        }
    }
    match node.children() {
        Some(children) if spec.children.is_empty() => {
            diags.push(
                Diagnostic::error(Code::UnknownNode, format!("`{name}` takes no block"))
                    .label(Span::new(file, children.span()), "unexpected block")
                    .help(format!("write the settings of `{name}` as properties: {}", prop_list(spec))),
            );
        }
        Some(children) => check_block(children, spec.children, file, &format!("`{name}`"), diags),
        None => {}
    }
    if spec.needs_content && seen_props.is_empty() && node.children().is_none_or(|c| c.nodes().is_empty()) {
        diags.push(
            Diagnostic::error(Code::EmptyNode, format!("`{name}` says nothing")).label(node_span, "no settings").help(
                if spec.free_props.is_some() {
                    format!("write `{name} KEY=VALUE …`, or remove it")
                } else {
                    format!("give one of {}, or remove it", prop_list(spec))
                },
            ),
        );
    }
}

fn prop_list(spec: &NodeSpec) -> String {
    if spec.free_props.is_some() {
        return "KEY=VALUE pairs".to_string();
    }
    spec.props.iter().map(|p| format!("{}=", p.name)).collect::<Vec<_>>().join(", ")
}

fn kind_hint(kind: ValueKind) -> String {
    match kind {
        ValueKind::OneOf(words) => format!(" with one of: {}", words.join(", ")),
        ValueKind::Quantity => " with a quantity such as \"8Gi\"".to_string(),
        ValueKind::Duration => " with a duration such as \"90s\"".to_string(),
        ValueKind::Bool => " with #true or #false".to_string(),
        _ => String::new(),
    }
}

/// Checks one value against its kind; reports and returns false when it does not fit.
/// What a value is, for messages: `node-pool replicas=`, `release IMAGE`.
/// Written out only when there is a diagnostic.
pub struct What<'a> {
    pub node: &'a str,
    pub item: &'a str,
    pub property: bool,
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}{}", self.node, self.item, if self.property { "=" } else { "" })
    }
}

pub fn check_value(entry: &KdlEntry, kind: ValueKind, what: &What<'_>, file: FileId, diags: &mut Diagnostics) -> bool {
    let span = Span::new(file, entry.span());
    let value = entry.value();
    let wrong_type = |expected: &str, help: String| {
        Diagnostic::error(Code::WrongType, format!("`{what}` takes {expected}, not {}", describe(value)))
            .label(span, format!("expected {expected}"))
            .help(help)
    };
    // `'16Gi'` and `“16Gi”` are bare words in KDL, quote marks included.
    if let KdlValue::String(s) = value
        && let Some(inner) = crate::parse::typographic_quotes(s)
    {
        let fixed = crate::fmt::quote(inner);
        diags.push(
            Diagnostic::error(
                Code::WrongType,
                format!("the value of `{what}` is {s}, quote marks included: KDL does not read them as quotes"),
            )
            .label(span, "not KDL quotes")
            .help(format!("KDL uses straight double quotes: write {fixed}"))
            .suggest(span, entry_with(entry, &fixed)),
        );
        return false;
    }
    let err = match kind {
        ValueKind::String | ValueKind::Path => match value {
            KdlValue::String(s) if s.is_empty() => Some(
                Diagnostic::error(Code::InvalidValue, format!("`{what}` is empty"))
                    .label(span, "empty")
                    .help("give a value"),
            ),
            KdlValue::String(_) => None,
            KdlValue::Integer(n) => Some(
                wrong_type("a string", "quote it: \"…\"".to_string()).suggest(span, entry_with(entry, &format!("\"{n}\""))),
            ),
            _ => Some(wrong_type("a string", "quote it: \"…\"".to_string())),
        },
        ValueKind::Name | ValueKind::ObjectName => match value {
            // hcp's `--infra-storage-class-mapping=INFRA/HOSTED`, written as
            // the class: two names, not one to be "fixed" into `INFRA-HOSTED`.
            KdlValue::String(s)
                if matches!(what.node, "class" | "snapshot-class")
                    && !what.property
                    && s.split_once('/').is_some_and(|(infra, hosted)| {
                        dns1123_subdomain_problem(infra).is_none() && dns1123_subdomain_problem(hosted).is_none()
                    }) =>
            {
                let (infra, hosted) = s.split_once('/').unwrap_or_default();
                let fixed = format!("{} hosted={}", crate::fmt::quote(infra), crate::fmt::quote(hosted));
                Some(
                    Diagnostic::error(
                        Code::InvalidName,
                        format!("`{s}` is hcp's INFRA/HOSTED mapping; `{}` takes the two names apart", what.node),
                    )
                    .label(span, "two class names")
                    .help(format!("write `{} {fixed}`: the infrastructure's class, then its name in the hosted cluster", what.node))
                    .suggest(span, fixed),
                )
            }
            KdlValue::String(s) => {
                let problem =
                    if kind == ValueKind::Name { dns1123_label_problem(s) } else { dns1123_subdomain_problem(s) };
                problem.map(|p| {
                    let d = Diagnostic::error(Code::InvalidName, format!("`{s}` is not a valid name: {p}"))
                        .label(span, "invalid name");
                    match suggest_name(s) {
                        Some(fixed) if fixed != *s => d
                            .help(format!("names are lowercase letters, digits and `-`; e.g. `{fixed}`"))
                            .suggest(span, entry_with(entry, &crate::fmt::quote(&fixed))),
                        _ => d.help("names are lowercase letters, digits and `-`, starting and ending with a letter or digit"),
                    }
                })
            }
            _ => Some(wrong_type("a name", "write the name as a string".to_string())),
        },
        ValueKind::Count => match value {
            KdlValue::Integer(n) if *n < 0 => Some(
                Diagnostic::error(Code::InvalidValue, format!("`{what}` must be zero or more, not {n}"))
                    .label(span, "negative")
                    .help("use a number of 0 or more"),
            ),
            KdlValue::Integer(n) if *n > i128::from(i32::MAX) => Some(
                Diagnostic::error(Code::InvalidValue, format!("`{what}` is too large ({n})"))
                    .label(span, "too large")
                    .help(format!("use at most {}", i32::MAX)),
            ),
            KdlValue::Integer(_) => None,
            KdlValue::String(s) if s.parse::<u32>().is_ok() => Some(
                wrong_type("a number", format!("write the number without quotes: {s}")).suggest(span, entry_with(entry, s)),
            ),
            _ => Some(wrong_type("a whole number", "write a number such as 3".to_string())),
        },
        ValueKind::Bool => match value {
            KdlValue::Bool(_) => None,
            KdlValue::String(s) if s == "true" || s == "false" => Some(
                wrong_type("#true or #false", format!("KDL 2 booleans are written #{s}"))
                    .suggest(span, entry_with(entry, &format!("#{s}"))),
            ),
            _ => Some(wrong_type("#true or #false", "write #true or #false".to_string())),
        },
        ValueKind::Quantity => match value {
            KdlValue::String(s) if Quantity::is_unitless(s) => Some(
                Diagnostic::error(
                    Code::InvalidQuantity,
                    format!("\"{s}\" has no unit, so it means {s} {}", if s == "1" { "byte" } else { "bytes" }),
                )
                .label(span, "no unit")
                    .help(if s.contains('.') {
                        format!("write \"{s}Gi\" for gibibytes (or \"{s}Mi\")")
                    } else {
                        format!("write \"{s}Gi\" for gibibytes (or \"{s}Mi\"); the number without quotes, {s}, also means {s}Gi")
                    }),
            ),
            KdlValue::String(s) if binary_twin(s).is_some() && Quantity::parse(s).is_ok() => {
                let binary = binary_twin(s).unwrap_or_default();
                // Valid, and what Kubernetes stores; but OpenShift sizes
                // are binary, and `16G` is 14.9Gi.
                diags.push(
                    Diagnostic::warning(
                        Code::DecimalSize,
                        format!("\"{s}\" is in decimal units ({}); did you mean \"{binary}\"?", decimal_meaning(s)),
                    )
                    .label(span, "decimal units")
                    .help(format!("write \"{binary}\": memory and disk sizes are binary (Ki Mi Gi Ti), as `hcp` and the OpenShift docs give them"))
                    .suggest(span, entry_with(entry, &format!("\"{binary}\""))),
                );
                None
            }
            KdlValue::String(s) => Quantity::parse(s).err().map(|e| {
                Diagnostic::error(Code::InvalidQuantity, format!("invalid quantity for `{what}`: {e}"))
                    .label(span, "not a quantity")
                    .help(quantity_help(s))
            }),
            KdlValue::Integer(n) if *n < 0 => Some(
                Diagnostic::error(Code::InvalidQuantity, format!("`{what}` is negative ({n})"))
                    .label(span, "negative")
                    .help("a size must be zero or more"),
            ),
            KdlValue::Integer(n) if *n > i128::from(u32::MAX) => Some(
                Diagnostic::error(Code::InvalidQuantity, format!("`{what}` is too large ({n}Gi)"))
                    .label(span, "too large")
                    .help("a bare number means Gi; write a quantity string such as \"64Gi\""),
            ),
            KdlValue::Integer(_) => None,
            _ => Some(wrong_type("a quantity", "write a quantity such as \"8Gi\"".to_string())),
        },
        ValueKind::CountOrPercent => match value {
            KdlValue::Integer(n) if (1..=i128::from(u32::MAX)).contains(n) => None,
            KdlValue::String(s) if IntOrPercent::percent(s).is_some_and(|p| (1..=100).contains(&p)) => None,
            _ => Some(
                Diagnostic::error(Code::InvalidValue, format!("`{what}` takes a count of 1 or more or a percentage from \"1%\" to \"100%\", not {}", describe(value)))
                    .label(span, "not a count or percentage")
                    .help("write a number such as 2, or a percentage such as \"25%\""),
            ),
        },
        ValueKind::Duration => match value {
            KdlValue::String(s) => Duration::parse(s).err().map(|e| {
                Diagnostic::error(Code::InvalidDuration, format!("invalid duration for `{what}`: {e}"))
                    .label(span, "not a duration")
                    .help("units are ns, us, ms, s, m, h: \"90s\", \"1m30s\", \"2h\"")
            }),
            KdlValue::Integer(n) => Some(
                Diagnostic::error(Code::InvalidDuration, format!("`{what}` needs a unit"))
                    .label(span, "no unit")
                    .help(format!("write \"{n}s\" for seconds or \"{n}m\" for minutes")),
            ),
            _ => Some(wrong_type("a duration", "write a duration such as \"90s\"".to_string())),
        },
        ValueKind::OneOf(words) => match value {
            KdlValue::String(s) if words.contains(&s.as_str()) => None,
            KdlValue::String(s) if s == "arm64" && words == hcpc_schema::lang::ARCHES => Some(
                Diagnostic::error(Code::UnsupportedArch, "arm64 node pools are not supported on KubeVirt")
                    .label(span, "rejected by the NodePool CRD")
                    .help("the NodePool API allows arm64 only on AWS, Azure, Agent, GCP and None; use amd64, ppc64le or s390x"),
            ),
            KdlValue::String(s) => {
                let suggestion = words
                    .iter()
                    .find(|w| w.eq_ignore_ascii_case(s) || w.replace('-', "").eq_ignore_ascii_case(&s.replace('-', "")))
                    .copied()
                    .or_else(|| closest(s, words.iter().copied()));
                let d = Diagnostic::error(Code::InvalidValue, format!("`{s}` is not a valid value for `{what}`"))
                    .label(span, format!("expected one of: {}", words.join(", ")));
                Some(match suggestion {
                    Some(w) => d.help(format!("did you mean `{w}`?")).suggest(span, entry_with(entry, w)),
                    None => d.help(format!("use one of: {}", words.join(", "))),
                })
            }
            _ => Some(wrong_type(&format!("one of {}", words.join(", ")), format!("write one of: {}", words.join(", ")))),
        },
    };
    match err {
        Some(d) => {
            diags.push(d);
            false
        }
        None => true,
    }
}

/// `entry` rewritten with `value` (KDL source text) as its value: the
/// replacement for the whole entry's span, keeping a property's key.
fn entry_with(entry: &KdlEntry, value: &str) -> String {
    match entry.name() {
        Some(key) => format!("{}={value}", crate::fmt::quote(key.value())),
        None => value.to_string(),
    }
}

/// `16Gi` for `16G`: the binary unit of the same letter, for a size in
/// decimal units (`k M G T P E`); `None` for any other form.
fn binary_twin(s: &str) -> Option<String> {
    let (number, unit) = s.split_at(s.char_indices().last()?.0);
    let unit = unit.chars().next()?;
    let decimal = matches!(unit, 'k' | 'M' | 'G' | 'T' | 'P' | 'E');
    (decimal && !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .then(|| format!("{number}{}i", unit.to_ascii_uppercase()))
}

/// What a decimal size comes to in the binary unit of the same letter:
/// `16×10⁹ bytes, 14.9Gi`.
fn decimal_meaning(s: &str) -> String {
    let (number, unit) = s.split_at(s.len() - 1);
    let power = match unit {
        "k" => 1,
        "M" => 2,
        "G" => 3,
        "T" => 4,
        "P" => 5,
        _ => 6,
    };
    let n: f64 = number.parse().unwrap_or(0.0);
    let ratio = (1000f64 / 1024f64).powi(power);
    let exponent = ["³", "⁶", "⁹", "¹²", "¹⁵", "¹⁸"][power as usize - 1];
    format!("{number}×10{exponent} bytes, {:.1}{}i", n * ratio, unit.to_ascii_uppercase())
}

fn quantity_help(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    for (wrong, right) in [("gb", "G"), ("mb", "M"), ("tb", "T"), ("gi", "Gi"), ("mi", "Mi"), ("ti", "Ti"), ("g", "G")]
    {
        if let Some(num) = lower.strip_suffix(wrong)
            && !num.is_empty()
            && num.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            let bin = match right {
                "G" | "Gi" => "Gi",
                "M" | "Mi" => "Mi",
                _ => "Ti",
            };
            return format!(
                "write \"{num}{bin}\" (binary units: Ki Mi Gi Ti) or \"{num}{}\" (decimal units)",
                &bin[..1]
            );
        }
    }
    "write a Kubernetes quantity such as \"8Gi\" or \"500M\"".to_string()
}

fn describe(v: &KdlValue) -> String {
    match v {
        KdlValue::String(s) => format!("the string \"{s}\""),
        KdlValue::Integer(n) => format!("the number {n}"),
        KdlValue::Float(f) => format!("the number {f}"),
        KdlValue::Bool(b) => format!("#{b}"),
        KdlValue::Null => "#null".to_string(),
    }
}

/// Why `s` is not a DNS-1123 label, if it is not.
pub fn dns1123_label_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".to_string());
    }
    if s.len() > 63 {
        return Some(format!("it is {} characters long; at most 63 are allowed", s.len()));
    }
    if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Some("only lowercase letters, digits and `-` are allowed".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("it must start and end with a letter or digit".to_string());
    }
    None
}

/// Why `s` is not a DNS-1123 subdomain, if it is not.
pub fn dns1123_subdomain_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".to_string());
    }
    if s.len() > 253 {
        return Some(format!("it is {} characters long; at most 253 are allowed", s.len()));
    }
    for part in s.split('.') {
        if part.is_empty() {
            return Some("it has an empty part between dots".to_string());
        }
        if !part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Some("only lowercase letters, digits, `-` and `.` are allowed".to_string());
        }
        if part.starts_with('-') || part.ends_with('-') {
            return Some("each part must start and end with a letter or digit".to_string());
        }
    }
    None
}

fn suggest_name(s: &str) -> Option<String> {
    let mut fixed = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match fold_latin(c) {
            // A letter with a mark is the letter (`sëarch` is `search`).
            Some(base) => fixed.push_str(base),
            None if c.is_ascii_alphanumeric() || c == '-' || c == '.' => fixed.push(c),
            None => fixed.push('-'),
        }
    }
    let fixed = fixed.trim_matches('-').to_string();
    (!fixed.is_empty()).then_some(fixed)
}

/// The plain letters of a lowercase Latin letter with a diacritic or a
/// ligature (`é` → `e`, `ß` → `ss`), as a reader would spell it in ASCII.
fn fold_latin(c: char) -> Option<&'static str> {
    const FOLDS: &[(&str, &str)] = &[
        ("àáâãäåāăą", "a"),
        ("çćĉċč", "c"),
        ("ďđ", "d"),
        ("èéêëēĕėęě", "e"),
        ("ĝğġģ", "g"),
        ("ĥħ", "h"),
        ("ìíîïĩīĭįı", "i"),
        ("ĵ", "j"),
        ("ķ", "k"),
        ("ĺļľŀł", "l"),
        ("ñńņňŉ", "n"),
        ("òóôõöøōŏő", "o"),
        ("ŕŗř", "r"),
        ("śŝşš", "s"),
        ("ţťŧ", "t"),
        ("ùúûüũūŭůűų", "u"),
        ("ŵ", "w"),
        ("ýÿŷ", "y"),
        ("źżž", "z"),
        ("ß", "ss"),
        ("æ", "ae"),
        ("œ", "oe"),
        ("þ", "th"),
        ("ð", "d"),
    ];
    FOLDS.iter().find(|(from, _)| from.contains(c)).map(|(_, to)| *to)
}

#[cfg(test)]
mod name_tests {
    use super::suggest_name;

    #[test]
    fn names_with_marks_suggest_their_letters() {
        assert_eq!(suggest_name("sëarch").as_deref(), Some("search"));
        assert_eq!(suggest_name("Straße_Ost").as_deref(), Some("strasse-ost"));
        assert_eq!(suggest_name("ml😀").as_deref(), Some("ml"));
    }
}
