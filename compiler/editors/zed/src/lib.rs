//! Starts `hcpc lsp` for KDL files: the binary from `lsp.hcpc.binary` in
//! Zed's settings, else `hcpc` from the `PATH`.

use zed_extension_api::{self as zed, LanguageServerId, Result, settings::LspSettings};

struct Hcpc;

impl zed::Extension for Hcpc {
    fn new() -> Self {
        Hcpc
    }

    fn language_server_command(&mut self, _id: &LanguageServerId, worktree: &zed::Worktree) -> Result<zed::Command> {
        let configured = LspSettings::for_worktree("hcpc", worktree).ok().and_then(|s| s.binary);
        let args = configured.as_ref().and_then(|b| b.arguments.clone()).unwrap_or_else(|| vec!["lsp".into()]);
        let command = match configured.and_then(|b| b.path) {
            Some(path) => path,
            None => worktree
                .which("hcpc")
                .ok_or("hcpc is not on the PATH: install it (`cargo install --locked --path compiler`) or set lsp.hcpc.binary.path")?,
        };
        Ok(zed::Command { command, args, env: worktree.shell_env() })
    }
}

zed::register_extension!(Hcpc);
