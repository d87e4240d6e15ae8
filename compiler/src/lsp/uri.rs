//! `file:` URIs and paths.
//!
//! Editors percent-encode paths (`my fleet/a.kdl` is `file:///my%20fleet/a.kdl`);
//! the server decodes them to find a file's directory and encodes the paths
//! of files it reports on that no editor opened. An open document keeps the
//! URI its editor gave, so replies name it exactly as the editor does.

use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str};

/// Everything but unreserved characters and `/` is encoded in a path.
const PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The local path a `file:` URI names, or `None` for other schemes
/// (`untitled:`, …) and remote hosts.
pub fn to_path(uri: &str) -> Option<PathBuf> {
    let (scheme, rest) = uri.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("file") {
        return None;
    }
    let rest = rest.strip_prefix("//")?;
    let path = match rest.find('/') {
        Some(0) => rest,
        Some(i) if rest[..i].eq_ignore_ascii_case("localhost") => &rest[i..],
        _ => return None,
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let bytes: Vec<u8> = percent_decode_str(path).collect();
    bytes_to_path(bytes)
}

/// Whether `uri` is a `file:` URI without a path: what Neovim sends for a
/// buffer that has no name yet.
pub fn is_unnamed(uri: &str) -> bool {
    uri.split_once(':')
        .is_some_and(|(scheme, rest)| scheme.eq_ignore_ascii_case("file") && rest.trim_start_matches('/').is_empty())
}

#[cfg(unix)]
fn bytes_to_path(bytes: Vec<u8>) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

#[cfg(not(unix))]
fn bytes_to_path(bytes: Vec<u8>) -> Option<PathBuf> {
    String::from_utf8(bytes).ok().map(PathBuf::from)
}

/// The `file:` URI of an absolute path.
pub fn from_path(path: &Path) -> String {
    #[cfg(unix)]
    let encoded = {
        use std::os::unix::ffi::OsStrExt;
        percent_encoding::percent_encode(path.as_os_str().as_bytes(), PATH).to_string()
    };
    #[cfg(not(unix))]
    let encoded = percent_encoding::utf8_percent_encode(&path.to_string_lossy().replace('\\', "/"), PATH).to_string();
    if encoded.starts_with('/') { format!("file://{encoded}") } else { format!("file:///{encoded}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_and_percent_signs_round_trip() {
        let p = Path::new("/tmp/my fleet/100%/ä.kdl");
        let uri = from_path(p);
        assert_eq!(uri, "file:///tmp/my%20fleet/100%25/%C3%A4.kdl");
        assert_eq!(to_path(&uri).as_deref(), Some(p));
        assert_eq!(to_path("file://localhost/a%20b.kdl").as_deref(), Some(Path::new("/a b.kdl")));
        assert_eq!(to_path("FILE:///x.kdl").as_deref(), Some(Path::new("/x.kdl")));
        assert_eq!(to_path("untitled:Untitled-1"), None);
        assert_eq!(to_path("file://server/share/x.kdl"), None);
        assert!(is_unnamed("file://") && is_unnamed("file:") && !is_unnamed("file:///x.kdl"));
    }
}
