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

pub mod cli;
pub mod diagnostic;
pub mod fmt;
pub mod ir;
pub mod live;
pub mod lower;
pub mod lsp;
pub mod object;
mod parallel;
pub mod parse;
pub mod plan;
pub mod quantity;
pub mod release;
pub mod render;
pub mod resolve;
pub mod source;

/// The language schema as JSON (`hcpc schema`; also `schema/language.json`).
pub fn schema_json() -> serde_json::Value {
    serde_json::json!({
        "version": 1,
        "topLevel": hcpc_schema::lang::TOP_LEVEL,
    })
}
