//! The `tributary` binary: see `tributary --help`.

/// mimalloc instead of the system allocator: measured in `bench mllp` (README "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tributary::main()
}
