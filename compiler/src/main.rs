/// mimalloc instead of the system allocator: compiling a large fleet makes
/// millions of small allocations, and mimalloc makes them (and freeing
/// them) markedly cheaper (README, Speed).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hcpc::cli::main()
}
