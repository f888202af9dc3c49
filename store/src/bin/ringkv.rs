//! `ringkv node | cluster | put | get | delete | status` — see `store::cli`.

use clap::Parser;

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
