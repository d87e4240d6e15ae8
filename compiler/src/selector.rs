//! Kubernetes label selectors (the syntax of `kubectl get -l`), over a
//! cluster's `labels`: `key=value` (or `==`), `key!=value`,
//! `key in (a,b)`, `key notin (a,b)`, `key` (exists), `!key` (absent),
//! requirements joined by commas, all of which must hold.

use std::collections::BTreeMap;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

/// A parsed selector: every requirement must hold. Empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses `text`; the error says what is wrong, in words.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(Selector { requirements });
        }
        for part in split_top(text)? {
            let part = part.trim();
            if part.is_empty() {
                return Err("an empty requirement (two commas, or a comma at an end)".to_string());
            }
            requirements.push(requirement(part)?);
        }
        Ok(Selector { requirements })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }
}

/// Splits at commas outside parentheses.
fn split_top(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("a `)` without its `(`".to_string());
                }
            }
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("a `(` without its `)`".to_string());
    }
    out.push(&text[start..]);
    Ok(out)
}

fn requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::Absent(key_of(key.trim())?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(key_of(k.trim())?, value_of(v.trim())?));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(key_of(k.trim())?, value_of(v.trim())?));
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if let [key, rest] = words.as_slice() {
        let rest = rest.trim();
        let (op, list) = rest
            .split_once(char::is_whitespace)
            .map_or_else(|| rest.find('(').map_or((rest, ""), |i| (&rest[..i], &rest[i..])), |(op, list)| (op, list));
        let values = set_of(list.trim())?;
        return match op {
            "in" => Ok(Requirement::In(key_of(key)?, values)),
            "notin" => Ok(Requirement::NotIn(key_of(key)?, values)),
            other => Err(format!("`{other}` is not an operator: use =, ==, !=, in or notin")),
        };
    }
    Ok(Requirement::Exists(key_of(part)?))
}

fn set_of(list: &str) -> Result<Vec<String>, String> {
    let inner = list
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| format!("`{list}`: a set of values is written in parentheses, `(a,b)`"))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for v in &values {
        value_of(v)?;
    }
    Ok(values)
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of
/// at most 63 characters.
fn key_of(key: &str) -> Result<String, String> {
    let name = key.rsplit_once('/').map_or(key, |(_, n)| n);
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok { Ok(key.to_string()) } else { Err(format!("`{key}` is not a label key")) }
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_`, `.`,
/// starting and ending alphanumeric.
fn value_of(value: &str) -> Result<String, String> {
    let ok = value.is_empty()
        || (value.len() <= 63
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric())
            && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    if ok { Ok(value.to_string()) } else { Err(format!("`{value}` is not a label value")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_operator_matches_as_kubectl_does() {
        let canary = labels(&[("env", "canary"), ("tier", "gold")]);
        let prod = labels(&[("env", "prod")]);
        let cases = [
            ("env=canary", true, false),
            ("env==canary", true, false),
            ("env!=canary", false, true),
            ("env in (canary, qa)", true, false),
            ("env notin (canary,qa)", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("env in (prod),!tier", false, true),
            ("", true, true),
        ];
        for (text, on_canary, on_prod) in cases {
            let s = Selector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(s.matches(&canary), on_canary, "{text} on canary");
            assert_eq!(s.matches(&prod), on_prod, "{text} on prod");
        }
    }

    #[test]
    fn bad_selectors_say_why() {
        for (text, why) in [
            ("env in canary", "parentheses"),
            ("env in (a", "without its `)`"),
            ("env=a b", "not a label value"),
            ("env,,tier", "empty requirement"),
            ("env like (a)", "not an operator"),
            ("-env", "not a label key"),
        ] {
            let e = Selector::parse(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
