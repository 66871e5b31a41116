//! `tributary serve`: load the config, start the engine, run until SIGINT or SIGTERM.
//!
//! Once every listener is bound it prints one `listening` line per listener and then `ready` on
//! standard output, so scripts and tests know where it listens (ports may be 0 in the config).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use crate::app::Engine;
use crate::config::{Config, LogFormat};

pub fn run(config_path: &Path, data_dir: Option<PathBuf>, cut_damaged_log: bool) -> ExitCode {
    let mut config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = data_dir {
        config.store.data_dir = dir;
    }
    config.store.cut_damaged_log = cut_damaged_log;
    // Whatever the engine and its libraries create (the store's files, the tree's tables) is the owner's
    // alone: it holds patient data and secrets.
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
    init_logging(&config);
    super::runtime().block_on(async {
        let engine = match Engine::start(&config).await {
            Ok(engine) => engine,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        for (channel, addr) in &engine.mllp {
            println!("listening channel={channel} mllp={addr}");
        }
        println!("listening http={}", engine.http);
        println!("ready");
        wait_for_signal().await;
        tracing::info!("shutting down");
        engine.shutdown().await;
        ExitCode::SUCCESS
    })
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
