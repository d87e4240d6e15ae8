//! hcpc: a declarative compiler for HyperShift hosted clusters on
//! OpenShift Virtualization.
//!
//! The pipeline, one module per stage, data flowing one way:
//!
//! ```text
//! *.kdl ─parse─▶ KDL trees ─lower─▶ ir::Fleet ─resolve─▶ ResolvedFleet
//!       ─render─▶ desired objects ─diff (live)─▶ plan ─apply─▶ live state
//! ```
//!
//! Stages never print and never touch the disk or network; `cli` does IO
//! and `live`/`apply` talk to the target.

/// hcpc's own `eprintln!` and `eprint!`, in scope in every module below:
/// std's panic when standard error cannot be written (`hcpc apply 2>&1 |
/// head` once `head` has exited), and a panic between two writes to the
/// management cluster would leave an apply half-done. Messages that cannot
/// be shown are dropped; the work goes on.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// See `eprintln!` above.
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

pub mod cli;
pub mod diagnostic;
pub mod fmt;
pub mod interrupt;
pub mod ir;
pub mod live;
pub mod lower;
pub mod lsp;
pub mod object;
mod parallel;
pub mod parse;
pub mod plan;
pub mod printable;
pub mod quantity;
pub mod release;
pub mod render;
pub mod resolve;
pub mod selector;
pub mod source;
pub mod status;

/// The language schema as JSON (`hcpc schema`; also `schema/language.json`).
pub fn schema_json() -> serde_json::Value {
    serde_json::json!({
        "version": 1,
        "topLevel": hcpc_schema::lang::TOP_LEVEL,
    })
}
