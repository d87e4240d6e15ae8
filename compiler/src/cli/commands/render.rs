//! `hcpc render`: the desired objects as YAML.

use std::path::Path;

use crate::cli::exit;
use crate::cli::load::compile;
use crate::cli::output;
use crate::cli::printer::Style;
use crate::render::write_objects_yaml;

pub fn run(path: &Path, output: Option<&Path>, show_secrets: bool, style: Style) -> u8 {
    let Some(mut compiled) = super::report(compile(path), style) else { return exit::ERROR };
    if show_secrets {
        // Shown Secrets must deploy: a fresh random etcd key each run, as
        // apply would generate (so this output is not deterministic).
        for o in compiled.objects.iter_mut().filter(|o| o.create_only) {
            match crate::live::generate_key() {
                Ok(serde_json::Value::String(key)) => o.fill_key(key),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::ERROR;
                }
            }
        }
    }
    let code = match output {
        None => output::finish(write_objects_yaml(&compiled.objects, show_secrets, &mut std::io::stdout().lock())),
        Some(dir) => {
            let files: Vec<(std::path::PathBuf, String, bool)> = compiled
                .objects
                .iter()
                .map(|o| {
                    let mut text = String::new();
                    o.write_yaml(&mut text, show_secrets);
                    // Secret files are the owner's only, as a `dir` target writes them.
                    (dir.join(crate::live::dir::relative_path(&o.id)), text, o.sensitive)
                })
                .collect();
            let written = files.iter().try_for_each(|(path, text, private)| {
                crate::live::dir::write_file(path, text.as_bytes(), *private)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            });
            match written {
                Ok(()) => {
                    if !style.quiet {
                        eprintln!("wrote {} objects to {}", files.len(), dir.display());
                    }
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::ERROR
                }
            }
        }
    };
    // The process ends next: freeing the fleet object by object would only cost time.
    std::mem::forget(compiled);
    code
}
