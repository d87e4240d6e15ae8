//! Fuzz target `check`: any bytes through parse, lower, resolve and render.
//!
//! The input is split on NUL bytes (which KDL forbids anyway) into up to
//! four files of one fleet; bytes that are not UTF-8 are replaced by U+FFFD.
//! Besides panics, the target fails when a diagnostic does not point inside
//! its file or has no help line (SPEC §1), or when valid input renders two
//! objects with one identity.

#![no_main]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use hcpc::cli::load::compile_sources;
use hcpc::cli::printer::{github_line, render_human};
use hcpc::render::{masked, yaml};
use hcpc::source::SourceMap;
use libfuzzer_sys::fuzz_target;

/// The directory the input files are placed in. It and its parent hold the
/// secrets the seed files name (`secrets/pull-secret.json`,
/// `secrets/id_ed25519.pub`, `secrets/infra-kubeconfig.yaml`, and the same
/// under `../`), so valid inputs get as far as rendering.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("hcpc-fuzz-{}", std::process::id()));
        let files = root.join("fleet");
        for d in [&root, &files] {
            let secrets = d.join("secrets");
            std::fs::create_dir_all(&secrets).expect("create fuzz dir");
            for (name, text) in [
                ("pull-secret.json", r#"{"auths":{"r.example":{"auth":"dTpw"}}}"#),
                ("id_ed25519.pub", "ssh-ed25519 AAAAfuzz fuzz@hcpc\n"),
                ("infra-kubeconfig.yaml", "apiVersion: v1\nkind: Config\nclusters: []\n"),
            ] {
                std::fs::write(secrets.join(name), text).expect("write secret");
            }
        }
        files
    })
}

fuzz_target!(|data: &[u8]| {
    let mut sources = SourceMap::default();
    for (i, part) in data.split(|b| *b == 0).take(4).enumerate() {
        let text = match std::str::from_utf8(part) {
            Ok(s) => s.to_string(),
            Err(_) => String::from_utf8_lossy(part).into_owned(),
        };
        sources.add(dir().join(format!("f{i}.kdl")), text);
    }
    let c = compile_sources(sources);
    for d in c.diags.iter() {
        assert!(!d.labels.is_empty(), "{} has no span: {d:?}", d.code);
        for l in &d.labels {
            assert!((l.span.file.0 as usize) < c.sources.len(), "{} names an unknown file: {d:?}", d.code);
            let text = &c.sources.get(l.span.file).text;
            let end = l.span.offset.checked_add(l.span.len).expect("span end overflows");
            assert!(end <= text.len(), "{} span {:?} outside its file of {} bytes: {d:?}", d.code, l.span, text.len());
            assert!(
                text.is_char_boundary(l.span.offset) && text.is_char_boundary(end),
                "{} span {:?} splits a character: {d:?}",
                d.code,
                l.span
            );
        }
        assert!(d.help.as_deref().is_some_and(|h| !h.trim().is_empty()), "{} has no help: {d:?}", d.code);
        let _ = render_human(d, &c.sources, false);
        let _ = github_line(d, &c.sources);
    }
    if !c.diags.has_errors() {
        let mut seen = BTreeSet::new();
        for o in &c.objects {
            let m = &o.body()["metadata"];
            let id = (o.body()["kind"].to_string(), m["namespace"].to_string(), m["name"].to_string());
            assert!(seen.insert(id.clone()), "two objects render as {id:?}");
        }
        let docs: Vec<_> = c.objects.iter().map(masked).collect();
        let _ = yaml::to_multi_yaml(docs.iter());
    }
});
