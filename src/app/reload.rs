//! The MLLP listeners as the config has them, and putting a reloaded config in force without a
//! restart: on SIGHUP, or when the console asks.
//!
//! A reload reads the config file again and validates it whole (syntax, rules, each
//! destination's adapter, the mappings against its channels, a socket for every new listen
//! address); if anything fails, nothing changes and the error says why. Otherwise it puts in
//! force, in this order: the API clients; the channels (a listener whose address and listener
//! settings stay keeps its socket and connections and takes the new channels, routes and ACK
//! settings for the next frame; one whose settings changed is stopped and started again; one no
//! longer named stops; a new address starts listening); the destinations (fan-out, then the
//! workers, replaced whole once the old ones finish the delivery in hand); the scheduled jobs
//! (replaced whole once a run under way finishes). Every SIGHUP also reads each listener's TLS
//! certificate and key again. Other sections (`[http]`, `[store]`, `[members]`, ...) are read at
//! start only. On a store several nodes share, a reload asked of one node reloads every node,
//! each from its own config file (`reload_generation`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tributary_adapter_core::tls::ServerTls;

use super::StartError;
use crate::config::live_mappings::LiveMappings;
use crate::config::{ChannelConfig, Config, SourceKind};
use crate::core::CommitterHandle;
use crate::handlers::inbound::ListenerInbound;
use crate::handlers::live_listener::LiveListener;
use crate::handlers::replies::AckPolicy;
use crate::handlers::reprocess::Listeners;
use crate::handlers::route::Route;
use crate::outbox::{Fanout, Outbox};
use crate::schedule::Schedules;
use crate::store::Store;

/// What every listener's inbound side is given, whatever the config.
#[derive(Clone)]
pub(super) struct Shared {
    pub mappings: Arc<LiveMappings>,
    pub committer: CommitterHandle,
    pub store: Arc<dyn Store>,
    /// Told to stop when the engine stops.
    pub stopped: watch::Receiver<bool>,
}

/// One MLLP listener running.
pub(super) struct RunningListener {
    /// The address the config names (port 0 stays 0 here; `bound` is the real one).
    addr: SocketAddr,
    pub bound: SocketAddr,
    pub names: Vec<String>,
    /// The listener's own settings (TLS, frame size, timeouts, caps, peers), to tell whether a
    /// reload changes them.
    settings: String,
    live: Arc<LiveListener>,
    tls: Option<ServerTls>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The channels grouped by the address they listen on, in config order: one listener each.
pub(super) fn listeners(config: &Config) -> Vec<(SocketAddr, Vec<&ChannelConfig>)> {
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

/// The listener-level settings of the channels at one address (the first one's: channels
/// sharing a listener agree on them, checked at load).
fn listener_settings(channels: &[&ChannelConfig]) -> String {
    let source = &channels[0].source;
    format!(
        "{:?} {:?} {:?} {:?} {:?}",
        source.tls.as_ref().map(|t| t.get_ref()),
        source.max_frame_bytes.get_ref(),
        source.idle_timeout_secs,
        source.max_connections.get_ref(),
        source.allowed_peer_networks()
    )
}

/// The inbound side of the channels at one address, as the config has them.
fn inbound_side(channels: &[&ChannelConfig], config: &Config, shared: &Shared) -> ListenerInbound {
    let names: Vec<String> = channels.iter().map(|c| c.name.get_ref().clone()).collect();
    ListenerInbound {
        routes: channels.iter().map(|c| Route::new(c)).collect(),
        mappings: shared.mappings.clone(),
        max_frame_bytes: *channels[0].source.max_frame_bytes.get_ref(),
        committer: shared.committer.clone(),
        store: shared.store.clone(),
        unrouted: names.join("|").into(),
        rejected_head_bytes: config.journal.rejected_head_bytes,
        // Channels sharing a listener agree on these (checked at load).
        unrouted_acks: Arc::new(AckPolicy::new(names.join("|"), channels[0].ack_settings(), None)),
        on_filtered: *channels[0].on_filtered.get_ref(),
    }
}

pub(super) async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind {
        addr,
        what: what.to_string(),
        source,
    })
}

/// A listener's TLS from its settings (checked at config load; read again here).
pub(super) fn load_tls(
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

/// Starts the listener of the channels at `addr` on `socket` (bound already).
pub(super) fn start_listener(
    addr: SocketAddr,
    socket: TcpListener,
    channels: &[&ChannelConfig],
    config: &Config,
    shared: &Shared,
) -> Result<RunningListener, StartError> {
    let names: Vec<String> = channels.iter().map(|c| c.name.get_ref().clone()).collect();
    let what = format!("channel {}", names.join(", "));
    let bound = socket.local_addr().map_err(|source| StartError::Bind {
        addr,
        what: what.clone(),
        source,
    })?;
    let source = &channels[0].source;
    let tls = load_tls(source.tls.as_ref(), &what)?;
    let settings = tributary_adapter_mllp::ListenerConfig {
        bind: bound,
        max_frame: *source.max_frame_bytes.get_ref(),
        idle_timeout: Duration::from_secs(source.idle_timeout_secs),
        max_connections: *source.max_connections.get_ref(),
        tls: tls.clone(),
        allowed_peers: source.allowed_peer_networks(),
    };
    let live = Arc::new(LiveListener::new(inbound_side(channels, config, shared)));
    let (stop, mut stopped_here) = watch::channel(false);
    let mut engine_stopped = shared.stopped.clone();
    let shutdown = async move {
        tokio::select! {
            _ = stopped_here.wait_for(|stop| *stop) => {}
            _ = engine_stopped.wait_for(|stop| *stop) => {}
        }
    };
    let handler = live.clone();
    let task_what = what.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = tributary_adapter_mllp::serve(socket, settings, handler, shutdown).await {
            tracing::error!(listener = %task_what, error = %e, "listener failed");
        }
    });
    tracing::info!(
        channels = %names.join(", "),
        addr = %bound,
        tls = source.tls.is_some(),
        "MLLP listener started"
    );
    Ok(RunningListener {
        addr,
        bound,
        names,
        settings: listener_settings(channels),
        live,
        tls,
        stop,
        task,
    })
}

impl RunningListener {
    /// Stops accepting, lets each connection finish its message, and waits until it has.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        tracing::info!(channels = %self.names.join(", "), addr = %self.bound, "MLLP listener stopped");
    }
}

/// A request to reload, from the console: answered with what came of it.
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

/// Everything a reload changes, owned by the task that reloads.
pub(super) struct Reloader {
    pub path: PathBuf,
    pub shared: Shared,
    pub listeners: Vec<RunningListener>,
    pub registry: Arc<Listeners>,
    pub http_tls: Option<ServerTls>,
    pub accounts: Arc<crate::domain::accounts::Accounts>,
    pub setup: Arc<crate::api::console::ConsoleSetup>,
    pub fanout: Arc<Fanout>,
    pub outbox: Arc<Outbox>,
    pub schedules: Arc<Schedules>,
}

impl Reloader {
    /// The channels of each listener, for reprocessing.
    pub fn register(&self) {
        self.registry.replace(
            self.listeners
                .iter()
                .map(|l| (l.names.clone(), l.live.clone()))
                .collect(),
        );
    }

    /// Reloads on SIGHUP and on the console's request until the engine stops; then stops the
    /// listeners and waits for them.
    pub async fn run(mut self, mut requests: mpsc::Receiver<ReloadRequest>) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => Some(hangup),
            Err(error) => {
                tracing::warn!(%error, "no SIGHUP handler; the config reloads only from the console");
                None
            }
        };
        let mut stopped = self.shared.stopped.clone();
        // On a shared store a reload asked of any node reloads every node.
        let cluster = self.shared.store.shared();
        let mut generation = match cluster {
            true => super::reload_generation::current(&self.shared.store).unwrap_or(0),
            false => 0,
        };
        let mut poll = tokio::time::interval(super::reload_generation::POLL);
        loop {
            let (answer, asked_here) = tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                Some(()) = async { hangup.as_mut()?.recv().await } => {
                    self.reload_tls();
                    (None, true)
                }
                Some(request) = requests.recv() => (Some(request), true),
                _ = poll.tick(), if cluster => {
                    match super::reload_generation::current(&self.shared.store) {
                        Ok(newer) if newer > generation => {
                            tracing::info!(generation = newer, "config reload asked of another node");
                            generation = newer;
                            self.reload_tls();
                            (None, false)
                        }
                        _ => continue,
                    }
                }
            };
            if cluster && asked_here {
                match super::reload_generation::announce(&self.shared.committer).await {
                    Ok(announced) => generation = announced,
                    Err(error) => tracing::error!(%error, "the other nodes could not be told to reload"),
                }
            }
            let outcome = self.reload().await.map_err(|e| e.to_string());
            match &outcome {
                Ok(summary) => tracing::info!(config = %self.path.display(), %summary, "config reloaded"),
                Err(error) => tracing::error!(%error, "config reload failed; the config in force stays"),
            }
            self.setup.reloaded(outcome.clone());
            if let Some(answer) = answer {
                let _ = answer.send(outcome);
            }
        }
        for listener in self.listeners.drain(..) {
            listener.stop().await;
        }
    }

    /// Every listener's certificate and key, read again: later handshakes use the new ones. A
    /// listener whose files are broken keeps the ones in force.
    fn reload_tls(&self) {
        let all = self
            .listeners
            .iter()
            .filter_map(|l| l.tls.as_ref())
            .chain(&self.http_tls);
        for tls in all {
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

    /// Reads and checks the config, then puts it in force; see the module doc. Returns what is
    /// in force.
    async fn reload(&mut self) -> Result<String, ReloadError> {
        let config = Config::load(&self.path)?;
        crate::outbox::check(&config)?;
        let mappings = self.shared.mappings.check(&config)?;
        // Every new address is bound before anything changes: one that cannot be is the
        // whole reload's failure.
        let wanted = listeners(&config);
        let mut sockets = vec![];
        for (addr, channels) in &wanted {
            if !self.listeners.iter().any(|l| l.addr == *addr) {
                let what = format!("channel {}", channel_names(channels));
                sockets.push((*addr, bind(*addr, &what).await?));
            }
        }

        self.shared.mappings.reconfigure(&config, mappings);
        let clients = self
            .accounts
            .clients
            .replace(crate::domain::accounts::roles::Clients::from_config(
                &config.api_clients,
            ));
        let failures = self.reload_listeners(&config, &wanted, sockets).await;
        self.register();
        self.setup.in_force(&config);
        self.fanout.reload(&config);
        let destinations = self.outbox.reload(&config, &self.shared.committer).await?;
        let jobs = self.schedules.reload(&config).await;
        let in_force = format!(
            "{clients} API clients, {} channels on {} listeners, {destinations} destinations, {jobs} scheduled jobs in force",
            config.channels.len(),
            self.listeners.len()
        );
        match failures.is_empty() {
            true => Ok(in_force),
            false => Err(ReloadError::Listeners { in_force, failures }),
        }
    }

    /// Keeps, restarts, stops and starts listeners to match `wanted`; returns what failed (a
    /// listener restarted on its address that could not bind it again).
    async fn reload_listeners(
        &mut self,
        config: &Config,
        wanted: &[(SocketAddr, Vec<&ChannelConfig>)],
        mut sockets: Vec<(SocketAddr, TcpListener)>,
    ) -> Vec<StartError> {
        let mut failures = vec![];
        let mut kept = vec![];
        for running in std::mem::take(&mut self.listeners) {
            match wanted.iter().find(|(addr, _)| *addr == running.addr) {
                Some((_, channels)) if listener_settings(channels) == running.settings => {
                    running.live.replace(inbound_side(channels, config, &self.shared));
                    let names = channels.iter().map(|c| c.name.get_ref().clone()).collect();
                    kept.push(RunningListener { names, ..running });
                }
                Some(_) => {
                    // Its own settings changed: started again on the same address below.
                    let addr = running.addr;
                    running.stop().await;
                    match bind(addr, "a restarted listener").await {
                        Ok(socket) => sockets.push((addr, socket)),
                        Err(e) => failures.push(e),
                    }
                }
                None => running.stop().await,
            }
        }
        for (addr, socket) in sockets {
            let Some((_, channels)) = wanted.iter().find(|(a, _)| *a == addr) else {
                continue;
            };
            match start_listener(addr, socket, channels, config, &self.shared) {
                Ok(listener) => kept.push(listener),
                Err(e) => failures.push(e),
            }
        }
        self.listeners = kept;
        failures
    }
}

/// Why a reload did not put the whole config in force.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    /// The file does not read or validate, or a destination's adapter cannot be built: nothing
    /// changed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The mappings folder does not agree with the new channels: nothing changed.
    #[error(transparent)]
    Mappings(#[from] crate::config::live_mappings::MappingsError),
    /// A new listen address cannot be bound: nothing changed.
    #[error(transparent)]
    Bind(#[from] StartError),
    /// The config is in force, but listeners restarted on their address could not start again.
    #[error("{in_force}; but {}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Listeners {
        in_force: String,
        failures: Vec<StartError>,
    },
}

fn channel_names(channels: &[&ChannelConfig]) -> String {
    channels
        .iter()
        .map(|c| c.name.get_ref().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
