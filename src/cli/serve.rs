//! `tributary serve`: load the config, start the engine, run until SIGINT or SIGTERM.
//!
//! Once every listener is bound it prints one `listening` line per listener and then `ready` on
//! standard output, so scripts and tests know where it listens (ports may be 0 in the config).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

use crate::app::Engine;
use crate::config::{Config, LogFormat};
use crate::traces::{self, Exporter, ExporterError};

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
    let exporter = match init_logging(&config) {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let code = super::runtime().block_on(async {
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
    });
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    code
}

/// The log output (stderr, text or JSON, filtered by `[log] level` or `RUST_LOG`) and, when
/// `[traces]` names a collector, the OTLP exporter, which alone takes the trace spans.
fn init_logging(config: &Config) -> Result<Option<Exporter>, ExporterError> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(&config.log.level))
        .add_directive(
            format!("{}=off", traces::TARGET)
                .parse()
                .expect("a valid directive"),
        );
    let log = match config.log.format {
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
    };
    let registry = tracing_subscriber::registry().with(log.with_filter(filter));
    match &config.traces.otlp_endpoint {
        None => {
            registry.init();
            Ok(None)
        }
        Some(endpoint) => {
            let (layer, exporter) = traces::otlp_layer(endpoint.get_ref(), &config.traces.service_name)?;
            let spans = Targets::new().with_target(traces::TARGET, tracing::Level::INFO);
            registry.with(layer.with_filter(spans)).init();
            Ok(Some(exporter))
        }
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
