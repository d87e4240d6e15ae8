//! `hcpc render`: the desired objects as YAML.

use std::path::Path;

use crate::cli::exit;
use crate::cli::load::compile;
use crate::cli::printer::Style;
use crate::render::{DesiredObject, masked, yaml};

pub fn run(path: &Path, output: Option<&Path>, show_secrets: bool, style: Style) -> u8 {
    let Some(compiled) = super::report(compile(path), style) else { return exit::ERROR };
    let body = |o: &DesiredObject| if show_secrets { o.body.clone() } else { masked(o) };
    match output {
        None => {
            let docs: Vec<_> = compiled.objects.iter().map(body).collect();
            print!("{}", yaml::to_multi_yaml(docs.iter()));
            exit::OK
        }
        Some(dir) => {
            let files: Vec<(std::path::PathBuf, String)> = compiled
                .objects
                .iter()
                .map(|o| (dir.join(crate::live::dir::relative_path(&o.id)), yaml::to_yaml(&body(o))))
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
    }
}
