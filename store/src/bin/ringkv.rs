//! `ringkv node | cluster | put | get | delete | status` — see `store::cli`.

use clap::Parser;

/// The store's request path allocates small buffers at a high rate on many threads; glibc's
/// allocator cost 14% of all CPU at capacity (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = match store::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return std::process::ExitCode::from(if usage { store::cli::EXIT_USAGE } else { 0 });
        }
    };
    store::cli::main_with(cli)
}
