//! The `tributary` binary: see `tributary --help`.

fn main() -> std::process::ExitCode {
    tributary::main()
}
