//! The composition root: starting and stopping the whole application. It opens the store,
//! loads the mappings, registers the projections and starts the committer, one MLLP listener per
//! address (shared by the channels on it), the outbox workers, the scheduled jobs and the HTTP
//! API; and shuts them down in order (stop accepting, finish what is in flight, sync).
//!
//! Nothing else builds these parts or wires them together; nothing below imports this module.

pub(crate) mod fd_budget;
mod http_server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tributary_adapter_core::tls::ServerTls;

use crate::config::live_mappings::LiveMappings;
use crate::config::{ChannelConfig, Config, SourceKind};
use crate::core::{CommitterHandle, Projections};
use crate::handlers::inbound::ListenerInbound;
use crate::handlers::replies::AckPolicy;
use crate::handlers::route::Route;
use crate::outbox::{Fanout, Outbox};
use crate::store::{EmbeddedStore, Store};

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
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open_with(
            &config.store.data_dir,
            &config.store.options(),
        )?);
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
        projections.push(Arc::new(Fanout::new(config, mappings.clone())));
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
        let outbox = Arc::new(Outbox::start(
            config,
            store.clone(),
            handle.clone(),
            accounts.key.sealing_key(),
            stopped.clone(),
            &mut tasks,
        )?);
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

        let mut mllp = vec![];
        let mut inbound_sides = crate::handlers::reprocess::Listeners::default();
        // Every listener's TLS, reloaded together on SIGHUP.
        let mut tls_listeners = vec![];
        for (addr, channels) in listeners(config) {
            let names: Vec<String> = channels.iter().map(|c| c.name.get_ref().clone()).collect();
            let what = format!("channel {}", names.join(", "));
            let listener = bind(addr, &what).await?;
            let bound = listener.local_addr().map_err(|source| StartError::Bind {
                addr,
                what: what.clone(),
                source,
            })?;
            let source = &channels[0].source;
            let tls = load_tls(source.tls.as_ref(), &what)?;
            tls_listeners.extend(tls.clone());
            let settings = tributary_adapter_mllp::ListenerConfig {
                bind: bound,
                max_frame: *source.max_frame_bytes.get_ref(),
                idle_timeout: Duration::from_secs(source.idle_timeout_secs),
                max_connections: *source.max_connections.get_ref(),
                tls,
                allowed_peers: source.allowed_peer_networks(),
            };
            let handler = Arc::new(ListenerInbound {
                routes: channels.iter().map(|c| Route::new(c)).collect(),
                mappings: mappings.clone(),
                max_frame_bytes: *source.max_frame_bytes.get_ref(),
                committer: handle.clone(),
                store: store.clone(),
                unrouted: names.join("|").into(),
                rejected_head_bytes: config.journal.rejected_head_bytes,
                // Channels sharing a listener agree on these (checked at load).
                unrouted_acks: Arc::new(AckPolicy::new(names.join("|"), channels[0].ack_settings(), None)),
                on_filtered: *channels[0].on_filtered.get_ref(),
            });
            inbound_sides.add(names.clone(), handler.clone());
            let shutdown = stopped_signal(stopped.clone());
            tasks.spawn(async move {
                if let Err(e) = tributary_adapter_mllp::serve(listener, settings, handler, shutdown).await {
                    tracing::error!(listener = %what, error = %e, "listener failed");
                }
            });
            tracing::info!(
                channels = %names.join(", "),
                addr = %bound,
                tls = source.tls.is_some(),
                "MLLP listener started"
            );
            mllp.extend(names.into_iter().map(|name| (name, bound)));
        }
        crate::schedule::start(
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
        let listener = bind(http_addr, "HTTP").await?;
        let http = listener.local_addr().map_err(|source| StartError::Bind {
            addr: http_addr,
            what: "HTTP".into(),
            source,
        })?;
        let state = crate::api::AppState {
            listeners: Arc::new(inbound_sides),
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
        tasks.spawn(reload_clients_on_hangup(
            state.members.clone(),
            state.setup.clone(),
            PathBuf::from(config.source().0),
            stopped_signal(stopped.clone()),
        ));
        // HSTS goes with TLS on the listener (`[http.tls]`).
        let app = crate::api::router(
            state,
            crate::api::Options::of(&config.http, config.http.tls.is_some()),
        );
        let http_tls = load_tls(config.http.tls.as_ref(), "HTTP")?;
        tls_listeners.extend(http_tls.clone());
        if !tls_listeners.is_empty() {
            tasks.spawn(reload_tls_on_hangup(
                tls_listeners,
                stopped_signal(stopped.clone()),
            ));
        }
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

/// The channels grouped by the address they listen on, in config order: one listener each.
fn listeners(config: &Config) -> Vec<(SocketAddr, Vec<&ChannelConfig>)> {
    let mut grouped: Vec<(SocketAddr, Vec<&ChannelConfig>)> = vec![];
    for channel in &config.channels {
        let SourceKind::Mllp = channel.source.kind.get_ref();
        let addr = channel.source.bind_addr();
        match grouped.iter_mut().find(|(a, _)| *a == addr) {
            Some((_, channels)) => channels.push(channel),
            None => grouped.push((addr, vec![channel])),
        }
    }
    grouped
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind {
        addr,
        what: what.to_string(),
        source,
    })
}

/// A listener's TLS from its settings (checked at config load; read again here).
fn load_tls(
    settings: Option<&toml::Spanned<tributary_adapter_core::tls::ServerTlsConfig>>,
    what: &str,
) -> Result<Option<ServerTls>, StartError> {
    settings
        .map(|settings| {
            ServerTls::load(settings.get_ref()).map_err(|source| StartError::Tls {
                what: what.to_string(),
                source,
            })
        })
        .transpose()
}

/// Reads every listener's certificate and key again on SIGHUP (with the mappings): later
/// handshakes use the new ones. A listener whose files are broken keeps the ones in force.
async fn reload_tls_on_hangup(listeners: Vec<ServerTls>, stopped: impl std::future::Future<Output = ()>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(error) => {
            tracing::warn!(%error, "no SIGHUP handler; TLS certificates are not reloaded");
            return;
        }
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            received = hangup.recv() => if received.is_none() { return },
        }
        for tls in &listeners {
            match tls.reload() {
                Ok(()) => tracing::info!(cert = %tls.settings().cert.display(), "TLS certificate reloaded"),
                Err(error) => tracing::error!(
                    cert = %tls.settings().cert.display(),
                    %error,
                    "TLS reload failed; keeping the certificate in force"
                ),
            }
        }
    }
}

/// Reads the config file again on SIGHUP and puts its `[[api_clients]]` in force (a key added
/// works, a key removed stops working, at once). A config that does not validate changes
/// nothing; what happened is logged and shown on the console's configuration page.
async fn reload_clients_on_hangup(
    accounts: Arc<crate::domain::accounts::Accounts>,
    setup: Arc<crate::api::console::ConsoleSetup>,
    path: PathBuf,
    stopped: impl std::future::Future<Output = ()>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(error) => {
            tracing::warn!(%error, "no SIGHUP handler; API clients are not reloaded");
            return;
        }
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            received = hangup.recv() => if received.is_none() { return },
        }
        let outcome = match Config::load(&path) {
            Ok(config) => {
                let count = accounts
                    .clients
                    .replace(crate::domain::accounts::roles::Clients::from_config(
                        &config.api_clients,
                    ));
                tracing::info!(clients = count, config = %path.display(), "API clients reloaded");
                Ok(count)
            }
            Err(error) => {
                tracing::error!(%error, "config reload failed; the API clients in force stay");
                Err(error.to_string())
            }
        };
        setup.reloaded(outcome);
    }
}

/// Resolves when the engine is told to stop.
async fn stopped_signal(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
