//! OpenShift release image references: the one parser of
//! `REGISTRY/REPOSITORY:TAG` and `REGISTRY/REPOSITORY@sha256:DIGEST`, and
//! the OpenShift version a tag carries (`4.18.5-x86_64`, `4.18.5-multi`).
//!
//! The syntax is that of container image references (the grammar of the
//! `distribution/reference` package that registries and the kubelet use):
//! lowercase repository path components, a tag of at most 128 word
//! characters, dots and dashes, a digest of an algorithm and its hex. The
//! HostedCluster and NodePool CRDs only refuse spaces and a first character
//! that is not a word character; what passes them and not this grammar
//! fails later, when the operator pulls the image.

pub mod rules;

use std::cmp::Ordering;
use std::fmt;

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::source::{Span, Spanned};

/// A release image reference, parsed. Made only by [`ReleaseImage::parse`]
/// (or [`ReleaseImage::missing`]), so a reference in the IR is always
/// well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseImage {
    /// As written.
    text: String,
    /// Length of the name (registry and repository) at the start of `text`.
    name_len: usize,
    pin: Pin,
}

/// What picks the image within its repository: a release always names
/// one (a reference without either would get whatever `latest` is today).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// A tag, and the OpenShift version it names, if it names one.
    Tag { tag: String, version: Option<Version> },
    /// A digest (`sha256:…`): one exact image whose version the reference
    /// does not say. A tag written before it is kept but does not count.
    Digest { digest: String },
}

/// An OpenShift version: `4.18.5`, `4.18.0-rc.1`, `4.18.0-0.nightly-…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// The pre-release part (`rc.1`, `ec.2`), which sorts before the release.
    pub pre: Option<String>,
}

/// Why a reference is not one: where (byte offset and length in the
/// reference) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub len: usize,
    /// What is wrong, for the message: "has a space in it".
    pub problem: String,
    /// Short, for the label under the span.
    pub label: &'static str,
    /// The corrected reference, when there is exactly one likely fix.
    pub fix: Option<String>,
}

/// Architecture suffixes of OpenShift release tags.
const ARCHES: &[&str] = &["x86_64", "aarch64", "ppc64le", "s390x", "multi", "arm64", "amd64"];

/// Longest tag the grammar allows.
const MAX_TAG: usize = 128;
/// Longest name (registry and repository) the grammar allows.
const MAX_NAME: usize = 255;
/// What the HostedCluster and NodePool CRDs allow for `spec.release.image`.
const MAX_IMAGE: usize = 253;

impl ReleaseImage {
    pub fn parse(text: &str) -> Result<ReleaseImage, SyntaxError> {
        let err = |offset: usize, len: usize, problem: String, label: &'static str| SyntaxError {
            offset,
            len: len.max(1),
            problem,
            label,
            fix: None,
        };
        if text.is_empty() {
            return Err(err(0, 0, "is empty".into(), "empty"));
        }
        if let Some((at, c)) = text.char_indices().find(|(_, c)| c.is_whitespace()) {
            let fix = text.trim();
            let fix = if fix.contains(char::is_whitespace) {
                // `…:4.17.3 multi`: the version and architecture joined by `-`.
                let joined = fix.split_whitespace().collect::<Vec<_>>().join("-");
                ReleaseImage::parse(&joined).ok().map(|_| joined)
            } else {
                ReleaseImage::parse(fix).ok().map(|_| fix.to_string())
            };
            let (what, label) =
                if c == ' ' { ("a space".to_string(), "space") } else { (format!("whitespace ({c:?})"), "whitespace") };
            return Err(SyntaxError { fix, ..err(at, c.len_utf8(), format!("has {what} in it"), label) });
        }
        if text.len() > MAX_IMAGE {
            return Err(err(
                MAX_IMAGE,
                text.len() - MAX_IMAGE,
                format!("is {} characters long; HostedClusters and NodePools take at most {MAX_IMAGE}", text.len()),
                "too long",
            ));
        }
        // name [":" tag] ["@" digest]
        let (before_digest, digest) = match text.find('@') {
            Some(at) => (&text[..at], Some((at + 1, &text[at + 1..]))),
            None => (text, None),
        };
        let last_slash = before_digest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match before_digest[last_slash..].find(':') {
            Some(i) => {
                (&before_digest[..last_slash + i], Some((last_slash + i + 1, &before_digest[last_slash + i + 1..])))
            }
            None => (before_digest, None),
        };
        check_name(name).map_err(|(offset, len, problem, label)| {
            // An uppercase repository has one likely fix: the same in lowercase.
            let fix = (label == "uppercase")
                .then(|| {
                    let r = registry_len(name);
                    format!("{}{}{}", &text[..r], text[r..name.len()].to_lowercase(), &text[name.len()..])
                })
                .filter(|f| ReleaseImage::parse(f).is_ok());
            SyntaxError { fix, ..err(offset, len, problem, label) }
        })?;
        let tag = match tag {
            Some((at, "")) => return Err(err(at - 1, 1, "has an empty tag after `:`".into(), "empty tag")),
            Some((at, tag)) => {
                if let Some(i) = tag
                    .char_indices()
                    .find(|&(i, c)| !(c.is_ascii_alphanumeric() || c == '_' || (i > 0 && (c == '.' || c == '-'))))
                    .map(|(i, _)| i)
                {
                    let c = tag[i..].chars().next().unwrap_or('?');
                    let problem = if i == 0 {
                        format!("has a tag starting with `{c}`; a tag starts with a letter, digit or `_`")
                    } else {
                        format!("has `{c}` in its tag; a tag holds letters, digits, `_`, `.` and `-`")
                    };
                    return Err(err(at + i, c.len_utf8(), problem, "not allowed in a tag"));
                }
                if tag.len() > MAX_TAG {
                    return Err(err(
                        at,
                        tag.len(),
                        format!("has a tag of {} characters; at most {MAX_TAG}", tag.len()),
                        "too long",
                    ));
                }
                Some(tag)
            }
            None => None,
        };
        let pin = match (digest, tag) {
            (Some((at, d)), _) => {
                check_digest(d).map_err(|(offset, len, problem, label)| err(at + offset, len, problem, label))?;
                Pin::Digest { digest: d.to_string() }
            }
            (None, Some(tag)) => Pin::Tag { tag: tag.to_string(), version: Version::from_tag(tag) },
            (None, None) => return Err(not_an_image(text, name, tag)),
        };
        if registry_len(name) == 0 {
            return Err(not_an_image(text, name, tag));
        }
        Ok(ReleaseImage { text: text.to_string(), name_len: name.len(), pin })
    }

    /// Stands in for a release that is missing or did not parse, once that
    /// was reported, so the rest of the cluster is still checked. Errors
    /// stop rendering, so it never reaches an object; the version rules
    /// skip it.
    pub fn missing() -> ReleaseImage {
        ReleaseImage { text: String::new(), name_len: 0, pin: Pin::Tag { tag: String::new(), version: None } }
    }

    pub fn is_missing(&self) -> bool {
        self.text.is_empty()
    }

    /// The reference as written: what `spec.release.image` gets.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Registry and repository, without tag or digest.
    pub fn name(&self) -> &str {
        &self.text[..self.name_len]
    }

    pub fn pin(&self) -> &Pin {
        &self.pin
    }

    /// The OpenShift version its tag names; `None` for a digest, an
    /// untagged reference or a tag without a version (`latest`).
    pub fn version(&self) -> Option<&Version> {
        match &self.pin {
            Pin::Tag { version, .. } => version.as_ref(),
            _ => None,
        }
    }

    pub fn is_digest(&self) -> bool {
        matches!(self.pin, Pin::Digest { .. })
    }
}

/// What names the image within its repository, for a short view: the tag
/// (`4.20.1-x86_64`) or the digest (`sha256:…`); the whole text when it
/// does not parse (a registry's port is not a tag).
pub fn short(release: &str) -> &str {
    match ReleaseImage::parse(release) {
        Ok(r) => {
            let start = if r.is_digest() { release.rfind('@').map_or(0, |at| at + 1) } else { r.name_len + 1 };
            release.get(start..).unwrap_or(release)
        }
        Err(_) => release,
    }
}

/// A `release` value as written, parsed; a syntax error is reported at the
/// offending characters and the value stands in as [`ReleaseImage::missing`].
pub fn lower(value: Spanned<String>, diags: &mut Diagnostics) -> Spanned<ReleaseImage> {
    match ReleaseImage::parse(&value.value) {
        Ok(r) => Spanned::new(r, value.span),
        Err(e) => {
            let at = inner_span(value.span, &value.value, e.offset, e.len);
            let mut d =
                Diagnostic::error(Code::InvalidRelease, format!("the release image `{}` {}", value.value, e.problem))
                    .label(at, e.label);
            d = match &e.fix {
                Some(fix) => d.help(format!("write `{fix}`")).suggest(value.span, format!("{fix:?}")),
                None => d.help(
                    "a release is an image: `REGISTRY/REPOSITORY:TAG` (e.g. `quay.io/openshift-release-dev/ocp-release:4.19.3-multi`) or `REGISTRY/REPOSITORY@sha256:DIGEST`",
                ),
            };
            diags.push(d);
            Spanned::new(ReleaseImage::missing(), value.span)
        }
    }
}

/// The OpenShift release repository, which a short or bare release most
/// likely meant.
const OCP_RELEASE: &str = "quay.io/openshift-release-dev/ocp-release";

/// A reference with no registry (`4.19`, `latest`, `ocp-release:4.19.3-multi`)
/// or with neither tag nor digest: the API server takes it, and the
/// operator then pulls whatever a default registry serves under that name.
/// The fix is offered when the meaning is plain: a full version, or the
/// OpenShift release repository without its registry.
fn not_an_image(text: &str, name: &str, tag: Option<&str>) -> SyntaxError {
    let registry = registry_len(name) > 0;
    let fix = if registry {
        None
    } else if let Some(v) = Version::from_tag(text).filter(|_| tag.is_none()) {
        let arch = text.strip_prefix(&v.to_string()).filter(|a| !a.is_empty()).unwrap_or("-multi");
        Some(format!("{OCP_RELEASE}:{v}{arch}"))
    } else {
        let repository = name.rsplit('/').next().unwrap_or(name);
        let rest = &text[name.len()..];
        (repository == "ocp-release" && !rest.is_empty()).then(|| format!("{OCP_RELEASE}{rest}"))
    };
    let version_only = text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let (problem, label) = if registry {
        ("has no tag or digest, so the registry would serve whatever `latest` is today".to_string(), "no tag")
    } else if version_only {
        ("is a version, not an image: hcpc does not look releases up".to_string(), "not an image")
    } else {
        ("is not an image reference: it names no registry".to_string(), "not an image")
    };
    SyntaxError {
        offset: 0,
        len: text.len().max(1),
        problem,
        label,
        fix: fix.filter(|f| ReleaseImage::parse(f).is_ok()),
    }
}

/// The span of `len` bytes at `offset` within a string value written at
/// `whole`: exact for a quoted string without escapes (or a bare one),
/// else the whole value.
fn inner_span(whole: Span, value: &str, offset: usize, len: usize) -> Span {
    let start = if whole.len == value.len() + 2 {
        1
    } else if whole.len == value.len() {
        0
    } else {
        return whole;
    };
    // Widened to whole characters: a label never splits one.
    let mut from = offset.min(value.len());
    while !value.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (from + len.max(1)).min(value.len());
    while !value.is_char_boundary(to) {
        to += 1;
    }
    Span { file: whole.file, offset: whole.offset + start + from, len: (to - from).max(1) }
}

impl fmt::Display for ReleaseImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Registry (optional) and repository path. Errors as (offset, len,
/// problem, label).
fn check_name(name: &str) -> Result<(), (usize, usize, String, &'static str)> {
    if name.is_empty() {
        return Err((0, 1, "has no repository before the tag or digest".into(), "no repository"));
    }
    if name.len() > MAX_NAME {
        return Err((
            0,
            name.len(),
            format!("has a name of {} characters; at most {MAX_NAME}", name.len()),
            "too long",
        ));
    }
    let mut offset = registry_len(name);
    if offset > 0 {
        check_registry(&name[..offset - 1])?;
    }
    for part in name[offset..].split('/') {
        if part.is_empty() {
            return Err((
                offset.saturating_sub(1),
                1,
                "has an empty path component (`//` or a `/` at an end)".into(),
                "empty component",
            ));
        }
        if let Some((i, c)) = part.char_indices().find(|(_, c)| c.is_ascii_uppercase()) {
            return Err((
                offset + i,
                c.len_utf8(),
                "has an uppercase letter in its repository; repository names are lowercase".into(),
                "uppercase",
            ));
        }
        if let Some(i) = component_problem(part) {
            let c = part[i..].chars().next().unwrap_or('?');
            return Err((
                offset + i,
                c.len_utf8(),
                format!(
                    "has `{c}` where its repository allows none; a path component is lowercase letters and digits, separated by `.`, `_`, `__` or dashes"
                ),
                "not allowed here",
            ));
        }
        offset += part.len() + 1;
    }
    Ok(())
}

/// The length of the registry and its `/` at the start of a name (0 when
/// there is none): the first part is a registry when more follow and it
/// looks like a host (a dot, a port, `localhost`, an IPv6 address).
fn registry_len(name: &str) -> usize {
    match name.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') => {
            first.len() + 1
        }
        _ => 0,
    }
}

/// Where a path component breaks `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn component_problem(part: &str) -> Option<usize> {
    let b = part.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return Some(i.min(b.len().saturating_sub(1)));
        }
        if i == b.len() {
            return None;
        }
        let sep = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return Some(i),
        }
        if i == b.len() {
            return Some(sep);
        }
    }
}

/// `host[:port]`: DNS labels of letters, digits and inner dashes, or a
/// bracketed IPv6 address.
fn check_registry(registry: &str) -> Result<(), (usize, usize, String, &'static str)> {
    let bad = |i: usize, what: &str| {
        Err((i, 1, format!("has a registry `{registry}` that is not a host name: {what}"), "not a host"))
    };
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some(end) = rest.find(']') else { return bad(0, "`[` without `]`") };
        if !rest[..end].chars().all(|c| c.is_ascii_hexdigit() || c == ':') || end == 0 {
            return bad(1, "not an IPv6 address");
        }
        (&registry[..end + 2], registry[end + 2..].strip_prefix(':').map(|p| (end + 3, p)))
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (h, Some((h.len() + 1, p))),
            None => (registry, None),
        }
    };
    if !host.starts_with('[') {
        let mut offset = 0;
        for label in host.split('.') {
            let b = label.as_bytes();
            if b.is_empty() {
                return bad(offset, "an empty label");
            }
            if let Some(i) = b.iter().position(|c| !(c.is_ascii_alphanumeric() || *c == b'-')) {
                return bad(offset + i, "a character other than letters, digits, `-` and `.`");
            }
            if b[0] == b'-' || b[b.len() - 1] == b'-' {
                return bad(offset, "a label starting or ending with `-`");
            }
            offset += label.len() + 1;
        }
    }
    if let Some((at, port)) = port
        && (port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()))
    {
        return bad(at, "the port is not a number");
    }
    Ok(())
}

/// `sha256:` and 64 lowercase hex digits (or `sha512:` and 128).
fn check_digest(d: &str) -> Result<(), (usize, usize, String, &'static str)> {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return Err((
            0,
            d.len(),
            "has a digest without an algorithm; write `@sha256:` and 64 hex digits".into(),
            "not a digest",
        ));
    };
    let want = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err((
                0,
                algorithm.len(),
                format!("has a digest of algorithm `{algorithm}`; release images are pinned by `sha256`"),
                "unknown algorithm",
            ));
        }
    };
    let at = algorithm.len() + 1;
    if let Some(i) = hex.bytes().position(|c| !(c.is_ascii_digit() || (b'a'..=b'f').contains(&c))) {
        return Err((
            at + i,
            1,
            format!("has a {algorithm} digest with a character that is not a lowercase hex digit"),
            "not hex",
        ));
    }
    if hex.len() != want {
        return Err((
            at,
            hex.len(),
            format!("has a {algorithm} digest of {} hex digits instead of {want}", hex.len()),
            "wrong length",
        ));
    }
    Ok(())
}

impl Version {
    /// A version as the HostedCluster status writes it (`4.18.5`), or a
    /// release tag's (`4.18.5-x86_64`, `4.18.0-rc.1-multi`): three numbers,
    /// then an optional pre-release part; a known architecture suffix is
    /// not part of the version.
    pub fn from_tag(tag: &str) -> Option<Version> {
        let (core, rest) = match tag.split_once('-') {
            Some((c, r)) => (c, Some(r)),
            None => (tag, None),
        };
        let mut numbers = core.split('.');
        let mut number = || -> Option<u64> {
            let n = numbers.next()?;
            (!n.is_empty() && n.len() <= 9 && n.bytes().all(|c| c.is_ascii_digit())).then(|| n.parse().ok())?
        };
        let (major, minor, patch) = (number()?, number()?, number()?);
        if numbers.next().is_some() {
            return None;
        }
        let pre = match rest {
            None => None,
            Some(r) if ARCHES.contains(&r) => None,
            Some(r) => {
                let r = ARCHES.iter().find_map(|a| r.strip_suffix(a).and_then(|p| p.strip_suffix('-'))).unwrap_or(r);
                if r.is_empty() {
                    return None;
                }
                Some(r.to_string())
            }
        };
        Some(Version { major, minor, patch, pre })
    }

    /// `4.18`, as the supported-versions list names it.
    pub fn minor_string(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(p) = &self.pre {
            write!(f, "-{p}")?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(|| {
            match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => pre_cmp(a, b),
            }
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pre-release parts compared by dot-separated identifiers, numbers as
/// numbers (so `rc.10` follows `rc.9`), as semantic versioning orders them.
fn pre_cmp(a: &str, b: &str) -> Ordering {
    let mut x = a.split('.');
    let mut y = b.split('.');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(s: &str) -> Version {
        Version::from_tag(s).unwrap()
    }

    #[test]
    fn tags_carry_the_openshift_version_without_the_architecture() {
        for (tag, want) in [
            ("4.18.5-x86_64", "4.18.5"),
            ("4.18.5-multi", "4.18.5"),
            ("4.18.5-s390x", "4.18.5"),
            ("4.18.5-aarch64", "4.18.5"),
            ("4.18.5-ppc64le", "4.18.5"),
            ("4.18.5", "4.18.5"),
            ("4.18.0-rc.1-x86_64", "4.18.0-rc.1"),
            ("4.18.0-ec.2", "4.18.0-ec.2"),
        ] {
            let r = ReleaseImage::parse(&format!("quay.io/openshift-release-dev/ocp-release:{tag}")).unwrap();
            assert_eq!(r.version().map(ToString::to_string).as_deref(), Some(want), "{tag}");
            assert_eq!(r.name(), "quay.io/openshift-release-dev/ocp-release");
        }
        for tag in ["latest", "4.18", "v4.18.5", "4.18.5.1", "stable"] {
            let r = ReleaseImage::parse(&format!("quay.io/ocp/release:{tag}")).unwrap();
            assert_eq!(r.version(), None, "{tag}");
        }
    }

    #[test]
    fn digests_name_no_version() {
        let hex = "a".repeat(64);
        let r = ReleaseImage::parse(&format!("quay.io/openshift-release-dev/ocp-release@sha256:{hex}")).unwrap();
        assert!(r.is_digest());
        assert_eq!(r.version(), None);
        let r = ReleaseImage::parse(&format!("quay.io/ocp/release:4.18.5-multi@sha256:{hex}")).unwrap();
        assert!(r.is_digest(), "the digest wins over the tag");
        assert_eq!(ReleaseImage::parse("localhost:5000/release:4.18.5").unwrap().name(), "localhost:5000/release");
        assert!(ReleaseImage::parse("[fd00::1]:5000/ocp/release:4.18.5").is_ok());
    }

    #[test]
    fn short_names_come_from_the_parser() {
        assert_eq!(short("quay.io/openshift-release-dev/ocp-release:4.20.1-x86_64"), "4.20.1-x86_64");
        assert_eq!(short("registry.local:5000/ocp/release:4.20.1-multi"), "4.20.1-multi");
        let hex = "a".repeat(64);
        assert_eq!(short(&format!("registry.local:5000/ocp/release@sha256:{hex}")), format!("sha256:{hex}"));
        assert_eq!(short(&format!("q.io/r:4.20.1@sha256:{hex}")), format!("sha256:{hex}"));
    }

    #[test]
    fn a_release_is_an_image_with_a_registry_and_a_tag_or_digest() {
        for (text, fix) in [
            ("4.19", None),
            ("latest", None),
            ("r:1", None),
            ("4.19.3", Some("quay.io/openshift-release-dev/ocp-release:4.19.3-multi")),
            ("4.19.3-x86_64", Some("quay.io/openshift-release-dev/ocp-release:4.19.3-x86_64")),
            ("ocp-release:4.19.3-x86_64", Some("quay.io/openshift-release-dev/ocp-release:4.19.3-x86_64")),
            (
                "openshift-release-dev/ocp-release:4.19.3-multi",
                Some("quay.io/openshift-release-dev/ocp-release:4.19.3-multi"),
            ),
            ("quay.io/ocp/release", None),
        ] {
            let e = ReleaseImage::parse(text).unwrap_err();
            assert_eq!((e.offset, e.len), (0, text.len()), "{text}");
            assert_eq!(e.fix.as_deref(), fix, "{text}");
        }
        assert_eq!(ReleaseImage::parse("quay.io/ocp/release").unwrap_err().label, "no tag");
        assert!(ReleaseImage::parse("localhost/release:1").is_ok());
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = ReleaseImage::parse("quay.io/openshift-release-dev/ocp-release:4.17.3 multi").unwrap_err();
        assert_eq!((e.offset, e.len), (48, 1));
        assert_eq!(e.fix.as_deref(), Some("quay.io/openshift-release-dev/ocp-release:4.17.3-multi"));
        let e = ReleaseImage::parse("quay.io/ocp/release:").unwrap_err();
        assert_eq!((e.offset, e.label), (19, "empty tag"));
        let e = ReleaseImage::parse("quay.io/OpenShift/release:4.18.5").unwrap_err();
        assert_eq!((e.offset, e.label), (8, "uppercase"));
        assert_eq!(e.fix.as_deref(), Some("quay.io/openshift/release:4.18.5"));
        let e = ReleaseImage::parse("quay.io/ocp/release@sha256:abc").unwrap_err();
        assert_eq!(e.label, "wrong length");
        let e = ReleaseImage::parse(&format!("quay.io/ocp/release@sha256:{}", "A".repeat(64))).unwrap_err();
        assert_eq!(e.label, "not hex");
        let e = ReleaseImage::parse("quay.io/ocp/release@md5:abc").unwrap_err();
        assert_eq!(e.label, "unknown algorithm");
        let e = ReleaseImage::parse("quay.io/ocp/release:4.18.5+x").unwrap_err();
        assert_eq!((e.offset, e.label), (26, "not allowed in a tag"));
        assert!(ReleaseImage::parse("").is_err());
        assert!(ReleaseImage::parse("quay.io/ocp//release:1").is_err());
        assert!(ReleaseImage::parse("quay.io/ocp/release-:1").is_err());
        assert!(ReleaseImage::parse("quay_io:x/ocp:1").is_err());
        assert!(ReleaseImage::parse(":4.18.5").is_err());
        assert!(ReleaseImage::parse(&format!("q.io/{}:1", "a".repeat(250))).is_err());
    }

    #[test]
    fn versions_order_as_openshift_releases_do() {
        assert!(version("4.18.5") > version("4.18.4"));
        assert!(version("4.18.0") > version("4.18.0-rc.1"));
        assert!(version("4.18.0-rc.10") > version("4.18.0-rc.9"));
        assert!(version("4.19.0-ec.1") > version("4.18.30"));
        assert_eq!(version("4.18.5-x86_64"), version("4.18.5-multi"));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_keeps_the_text(s in "\\PC{0,80}") {
            if let Ok(r) = ReleaseImage::parse(&s) {
                proptest::prop_assert_eq!(r.as_str(), s.as_str());
                proptest::prop_assert!(r.name().len() <= s.len());
            } else if let Err(e) = ReleaseImage::parse(&s) {
                proptest::prop_assert!(e.offset + e.len <= s.len().max(1));
            }
        }

        #[test]
        fn well_formed_references_parse(
            registry in "[a-z][a-z0-9]{0,8}(\\.[a-z]{2,5}){1,2}(:[0-9]{1,5})?",
            path in "[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}){0,2}",
            version in (0u64..10, 0u64..40, 0u64..100),
            arch in proptest::sample::select(vec!["", "-x86_64", "-multi", "-s390x", "-aarch64", "-ppc64le"]),
        ) {
            let text = format!("{registry}/{path}:{}.{}.{}{arch}", version.0, version.1, version.2);
            let r = ReleaseImage::parse(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e:?}")))?;
            let v = r.version().unwrap();
            proptest::prop_assert_eq!((v.major, v.minor, v.patch), version);
        }
    }
}
