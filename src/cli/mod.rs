//! The `tributary` command line: `serve`, `check-config`, `send` and `bench`.

mod api_key;
mod bench;
mod bench_console;
mod bench_fhir;
mod bench_members;
mod bench_news;
mod bench_notices;
mod bench_outbox;
mod bench_process;
mod mapping;
mod send;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::mapping::MappingSet;

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
        /// Recovery cuts the log where it is damaged even when intact records follow (they are
        /// lost): only when the machine lost power, so that nothing after the damage was ever
        /// acknowledged. Without it such a log is refused.
        #[arg(long)]
        cut_damaged_log: bool,
    },
    /// Validate the configuration without starting anything.
    CheckConfig {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Send HL7 v2 files over MLLP and print each ACK.
    Send(send::SendArgs),
    /// Mapping tools.
    #[command(subcommand)]
    Mapping(mapping::MappingCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Make an API key: the key on stderr (once), its `[[api_clients]]` entry on stdout.
    ApiKey(api_key::ApiKeyArgs),
}

/// Runs the command line; the exit code says whether it worked.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            data_dir,
            cut_damaged_log,
        } => serve::run(&config, data_dir, cut_damaged_log),
        Command::CheckConfig { config } => check_config(&config),
        Command::Mapping(command) => mapping::run(command),
        Command::Send(args) => runtime().block_on(send::run(args)),
        Command::Bench(command) => runtime().block_on(bench::run(command)),
        Command::ApiKey(args) => api_key::run(args),
    }
}

/// Validates the config and every mapping it names, starting nothing.
fn check_config(path: &std::path::Path) -> ExitCode {
    let checked = Config::load(path).map_err(|e| e.to_string()).and_then(|config| {
        let mappings = MappingSet::load(&config.mappings.dir).map_err(|e| e.to_string())?;
        config
            .check_mappings(&mappings, &crate::handlers::message_kinds())
            .map_err(|e| e.to_string())?;
        crate::outbox::check(&config).map_err(|e| e.to_string())?;
        Ok((config, mappings))
    });
    match checked {
        Ok((config, mappings)) => {
            println!(
                "{}: ok ({} channels, {} destinations, {} mappings)",
                path.display(),
                config.channels.len(),
                config.destinations.len(),
                mappings.names().len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}
