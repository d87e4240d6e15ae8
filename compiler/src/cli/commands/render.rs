//! `hcpc render`: the desired objects as YAML.

use std::path::Path;

use crate::cli::exit;
use crate::cli::load::compile;
use crate::cli::output;
use crate::cli::printer::Style;
use crate::render::write_objects_yaml;

pub fn run(path: &Path, output: Option<&Path>, show_secrets: bool, style: Style) -> u8 {
    let Some(compiled) = super::report(compile(path), style) else { return exit::ERROR };
    let code = match output {
        None => output::finish(write_objects_yaml(&compiled.objects, show_secrets, &mut std::io::stdout().lock())),
        Some(dir) => {
            let files: Vec<(std::path::PathBuf, String)> = compiled
                .objects
                .iter()
                .map(|o| {
                    let mut text = String::new();
                    o.write_yaml(&mut text, show_secrets);
                    (dir.join(crate::live::dir::relative_path(&o.id)), text)
                })
                .collect();
            match crate::live::dir::write_all(&files) {
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
