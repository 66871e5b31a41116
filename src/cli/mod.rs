//! The `tributary` command line: `serve`, `check-config`, `send` and `bench`.

mod bench;
mod send;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG_PATH};

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "A healthcare interface engine: HL7 v2 and FHIR in, a member store, a durable outbox out."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine: MLLP listeners, the HTTP API and the store.
    Serve {
        /// The engine configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Store folder, instead of the config's `store.data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate the configuration without starting anything.
    CheckConfig {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Send HL7 v2 files over MLLP and print each ACK.
    Send(send::SendArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Runs the command line; the exit code says whether it worked.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, data_dir } => serve::run(&config, data_dir),
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(loaded) => {
                println!(
                    "{}: ok ({} channel{})",
                    config.display(),
                    loaded.channels.len(),
                    if loaded.channels.len() == 1 { "" } else { "s" }
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Send(args) => runtime().block_on(send::run(args)),
        Command::Bench(command) => runtime().block_on(bench::run(command)),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}
