/// With `--features mimalloc`, mimalloc instead of the system allocator:
/// compiling a large fleet makes millions of small allocations, which it
/// makes about 20% cheaper in CPU time, but it commits its arena eagerly,
/// which costs a one-cluster run 6 MiB of memory (docs/performance.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hcpc::cli::main()
}
