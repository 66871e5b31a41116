//! The composition root: starting and stopping the whole application. It opens the store,
//! loads the mappings, registers the projections and starts the committer, one MLLP listener per
//! address (shared by the channels on it), the outbox workers, the scheduled jobs and the HTTP
//! API; and shuts them down in order (stop accepting, finish what is in flight, sync). The
//! listeners, outbox workers and jobs a reloaded config changes are `reload`'s.
//!
//! Nothing else builds these parts or wires them together; nothing below imports this module.

pub(crate) mod fd_budget;
mod http_server;
mod reload;
mod reload_generation;

pub use reload::ReloadRequest;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::config::live_mappings::LiveMappings;
use crate::core::{CommitterHandle, Projections};
use crate::outbox::{Fanout, Outbox};
use crate::store::{EmbeddedStore, PostgresStore, Store};

/// A started engine: where it listens, and the handle to stop it.
pub struct Engine {
    /// Channel name and bound address of each MLLP listener.
    pub mllp: Vec<(String, SocketAddr)>,
    pub http: SocketAddr,
    pub store: Arc<dyn Store>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    committer: Option<(CommitterHandle, std::thread::JoinHandle<()>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Mappings(#[from] crate::config::live_mappings::MappingsError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Password(#[from] crate::config::PasswordError),
    #[error("{0}")]
    Fds(#[from] fd_budget::FdBudgetError),
    #[error("{what}: {source}")]
    Tls {
        what: String,
        source: tributary_adapter_core::tls::TlsError,
    },
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind {
        addr: SocketAddr,
        what: String,
        source: std::io::Error,
    },
}

/// Opens the store the config names: the embedded one in `data_dir`, or PostgreSQL.
fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    Ok(match config.store.postgres()? {
        None => Arc::new(EmbeddedStore::open_with(
            &config.store.data_dir,
            &config.store.options(),
        )?),
        Some(postgres) => {
            let store = PostgresStore::open(&postgres.options)?;
            tracing::info!(
                schema_version = crate::store::known_schema_version(),
                journal_last_seq = store.journal_last_seq(),
                "store: PostgreSQL"
            );
            Arc::new(store)
        }
    })
}

impl Engine {
    /// Starts everything the config names. Returns once every listener is bound.
    pub async fn start(config: &Config) -> Result<Engine, StartError> {
        crate::outbox::check(config)?;
        let fd_limit = fd_budget::raise_fd_limit();
        let budget = fd_budget::plan(config, fd_limit)?;
        tracing::info!(
            fd_limit = budget.limit,
            http_max_connections = budget.http,
            mllp_max_connections = budget.mllp,
            reserve = fd_budget::RESERVE,
            "file-descriptor budget"
        );
        // Metrics are recorded from the first message on (README "Metrics").
        crate::metrics::install();
        let mappings = Arc::new(LiveMappings::load(config, crate::handlers::message_kinds())?);
        let store = open_store(config)?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(mappings.clone().watch(stopped_signal(stopped.clone())));
        let accounts = Arc::new(crate::domain::accounts::Accounts::load(config)?);
        // What follows from every change, in the order they feed each other: a patient's
        // member search entries, then the RelatedPersons of members who are proxies, the
        // notices of new records to their members, then what the destinations are sent about
        // every resource changed so far.
        let mut projections = crate::domain::projections();
        projections.push(Arc::new(crate::domain::records::notices::RecordNotices::new(
            accounts.clone(),
            config.records.switches(),
        )));
        let fanout = Arc::new(Fanout::new(config, mappings.clone()));
        projections.push(fanout.clone());
        let projections: Projections = projections.into();
        // The outbox's workers write through the committer, and the committer tells the outbox
        // what is durable: the outbox is set here once both exist.
        let started_outbox: Arc<OnceLock<Arc<Outbox>>> = Arc::new(OnceLock::new());
        let on_durable = {
            let outbox = started_outbox.clone();
            Arc::new(move |seq| {
                if let Some(outbox) = outbox.get() {
                    outbox.durable(seq);
                }
            })
        };
        let (handle, thread) =
            crate::core::start(store.clone(), config.commit.max_batch, projections, on_durable);
        let outbox = Outbox::start(
            config,
            store.clone(),
            handle.clone(),
            accounts.key.sealing_key(),
            stopped.clone(),
            &mut tasks,
        )?;
        let _ = started_outbox.set(outbox.clone());
        tasks.spawn({
            let (store, committer) = (store.clone(), handle.clone());
            async move {
                match crate::core::journal_index::backfill(store, committer).await {
                    Ok(0) => {}
                    Ok(indexed) => {
                        tracing::info!(entries = indexed, "indexed the journal kept before its index")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the journal's earlier entries could not be indexed")
                    }
                }
            }
        });

        let shared = reload::Shared {
            mappings: mappings.clone(),
            committer: handle.clone(),
            store: store.clone(),
            stopped: stopped.clone(),
        };
        let mut running = vec![];
        for (addr, channels) in reload::listeners(config) {
            let what = format!(
                "channel {}",
                channels
                    .iter()
                    .map(|c| c.name.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let socket = reload::bind(addr, &what).await?;
            running.push(reload::start_listener(addr, socket, &channels, config, &shared)?);
        }
        let mllp = running
            .iter()
            .flat_map(|l| l.names.iter().map(|name| (name.clone(), l.bound)))
            .collect();
        let schedules = crate::schedule::start(
            config,
            crate::schedule::JobContext {
                store: store.clone(),
                outbox: outbox.clone(),
                committer: handle.clone(),
                members: accounts.clone(),
                news: Arc::new(config.news.clone()),
            },
            stopped.clone(),
            &mut tasks,
        );
        let http_addr = config.http_bind();
        let listener = reload::bind(http_addr, "HTTP").await?;
        let http = listener.local_addr().map_err(|source| StartError::Bind {
            addr: http_addr,
            what: "HTTP".into(),
            source,
        })?;
        let (reload_requests, reload_asked) = tokio::sync::mpsc::channel(4);
        let registry = Arc::new(crate::handlers::reprocess::Listeners::default());
        let state = crate::api::AppState {
            listeners: registry.clone(),
            reload: reload_requests,
            store: store.clone(),
            outbox: outbox.clone(),
            committer: handle.clone(),
            engagement: Arc::new(config.engagement.clone()),
            records: Arc::new(config.records.clone()),
            branding: Arc::new(config.branding.clone()),
            news: Arc::new(config.news.clone()),
            consents: Arc::new(config.consents.clone()),
            messages: Arc::new(config.messages.clone()),
            bills: Arc::new(crate::api::BillsState::load(config)?),
            console: Arc::default(),
            setup: Arc::new(crate::api::console::ConsoleSetup::of(config)),
            tls: config.http.tls.is_some(),
            members: accounts,
            fhir: crate::api::fhir::FhirState {
                store: store.clone(),
                committer: handle.clone(),
                mappings: mappings.clone(),
                patient_feed_mapping: config
                    .fhir
                    .patient_feed_mapping
                    .as_ref()
                    .map(|m| m.get_ref().clone()),
                message_switches: config.messages.switches(),
            },
        };
        let (state_members, state_setup) = (state.members.clone(), state.setup.clone());
        // HSTS goes with TLS on the listener (`[http.tls]`).
        let app = crate::api::router(
            state,
            crate::api::Options::of(&config.http, config.http.tls.is_some()),
        );
        let http_tls = reload::load_tls(config.http.tls.as_ref(), "HTTP")?;
        let reloader = reload::Reloader {
            path: PathBuf::from(config.source().0),
            shared,
            listeners: running,
            registry,
            http_tls: http_tls.clone(),
            accounts: state_members,
            setup: state_setup,
            fanout,
            outbox: outbox.clone(),
            schedules,
        };
        reloader.register();
        tasks.spawn(reloader.run(reload_asked));
        let shutdown = stopped_signal(stopped.clone());
        let limits = http_server::HttpLimits {
            max_connections: budget.http,
            keep_alive: Duration::from_secs(*config.http.keep_alive_timeout_secs.get_ref()),
            header_read: Duration::from_secs(*config.http.header_read_timeout_secs.get_ref()),
        };
        tasks.spawn(http_server::serve(listener, app, limits, http_tls, shutdown));
        tracing::info!(addr = %http, tls = config.http.tls.is_some(), "HTTP API started");
        Ok(Engine {
            mllp,
            http,
            store,
            stop,
            tasks,
            committer: Some((handle, thread)),
        })
    }

    /// Stops accepting, lets in-flight messages finish and get their ACKs, then syncs the store.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        if let Some((handle, thread)) = self.committer.take() {
            drop(handle);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        if let Err(e) = self.store.checkpoint() {
            tracing::error!(error = %e, "final checkpoint failed");
        }
        tracing::info!("engine stopped");
    }
}

/// Resolves when the engine is told to stop.
async fn stopped_signal(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
