//! Link options of the `hcpc` executable.
//!
//! On Linux with glibc the executable is linked position-dependent
//! (`-no-pie`). A position-independent build makes the dynamic loader
//! apply about 26,000 relocations at every start, writing to some 120
//! pages of tables and vtables that the dependencies bring (Unicode tables
//! of `regex`, serde field lists, panic locations): 0.8 to 1 ms of a
//! 3 ms `render` of one cluster. Shared libraries, heap and stack keep
//! their randomised addresses; only the executable's own image is fixed,
//! as for Go programs built with default flags (README, Speed).
//! `HCPC_PIE=1` at build time keeps the platform's default instead.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HCPC_PIE");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let keep_pie = std::env::var_os("HCPC_PIE").is_some_and(|v| !v.is_empty() && v != "0");
    if target_os == "linux" && target_env == "gnu" && !keep_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
