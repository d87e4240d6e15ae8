//! Label and field selectors for LIST: `k=v`, `k==v`, `k!=v`, `k`, `!k`,
//! `k in (a,b)`, `k notin (a,b)`, comma meaning AND. Field selectors support
//! `metadata.name` and `metadata.namespace` with `=`, `==` and `!=`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

#[derive(Debug, Clone, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// Splits on commas that are not inside `( ... )`.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn parse_values(list: &str) -> Option<Vec<String>> {
    let inner = list.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let part = part.trim();
    let bad = || format!("unable to parse requirement: {part:?}");
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        return if valid_key(key) { Ok(Requirement::NotExists(key.into())) } else { Err(bad()) };
    }
    for (op, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((key, values)) = part.split_once(op) {
            let key = key.trim();
            let values = parse_values(values).ok_or_else(bad)?;
            if !valid_key(key) {
                return Err(bad());
            }
            return Ok(if negated {
                Requirement::NotIn(key.into(), values)
            } else {
                Requirement::In(key.into(), values)
            });
        }
    }
    for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = part.split_once(op) {
            let (key, value) = (key.trim(), value.trim());
            if !valid_key(key) {
                return Err(bad());
            }
            return Ok(if negated {
                Requirement::NotEquals(key.into(), value.into())
            } else {
                Requirement::Equals(key.into(), value.into())
            });
        }
    }
    if valid_key(part) { Ok(Requirement::Exists(part.into())) } else { Err(bad()) }
}

impl Selector {
    /// Parses a selector; an empty string selects everything.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        if !text.trim().is_empty() {
            for part in split_top_level(text) {
                requirements.push(parse_requirement(part)?);
            }
        }
        Ok(Selector { requirements })
    }

    /// Parses a field selector, accepting only the fields the server indexes
    /// for every type.
    pub fn parse_fields(text: &str) -> Result<Selector, String> {
        let selector = Selector::parse(text)?;
        for requirement in &selector.requirements {
            match requirement {
                Requirement::Equals(key, _) | Requirement::NotEquals(key, _)
                    if key == "metadata.name" || key == "metadata.namespace" => {}
                other => return Err(format!("field label not supported: {other:?}")),
            }
        }
        Ok(selector)
    }

    /// Whether a label set satisfies every requirement.
    pub fn matches_labels(&self, labels: Option<&Value>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
        })
    }

    /// Whether an object satisfies a field selector built by [`parse_fields`].
    pub fn matches_fields(&self, obj: &Value) -> bool {
        let get = |key: &str| {
            let field = key.strip_prefix("metadata.").unwrap_or(key);
            obj.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str).unwrap_or("")
        };
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == v,
            Requirement::NotEquals(k, v) => get(k) != v,
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let labels = json!({"env": "prod", "tier": "db"});
        let sel = |s: &str| Selector::parse(s).map(|s| s.matches_labels(Some(&labels)));
        assert_eq!(sel("env=prod"), Ok(true));
        assert_eq!(sel("env==prod,tier=db"), Ok(true));
        assert_eq!(sel("env!=prod"), Ok(false));
        assert_eq!(sel("tier"), Ok(true));
        assert_eq!(sel("!tier"), Ok(false));
        assert_eq!(sel("env in (dev, prod)"), Ok(true));
        assert_eq!(sel("env notin (dev,prod)"), Ok(false));
        assert_eq!(sel("missing notin (a)"), Ok(true));
        assert_eq!(sel(""), Ok(true));
        assert!(Selector::parse("a in b").is_err());
    }

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}});
        let Ok(sel) = Selector::parse_fields("metadata.name=a,metadata.namespace!=x") else {
            panic!("selector did not parse");
        };
        assert!(sel.matches_fields(&obj));
        assert!(Selector::parse_fields("spec.x=1").is_err());
    }
}
