fn main() -> std::process::ExitCode {
    hcpc::cli::main()
}
