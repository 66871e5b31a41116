//! Engine configuration: loading `tributary.toml` and validating it before anything starts,
//! including that every channel's mapping exists and fits its channel.
//!
//! Every error names the file, the line and the key, so an analyst can fix it without reading
//! Rust. Unknown keys are errors (a typo must not silently fall back to a default).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

mod bills;
mod branding;
mod consents;
mod destinations;
mod engagement;
mod identity;
pub(crate) mod live_mappings;
mod members;
mod messages;
mod news;
mod proxies;
mod rate_limit;
mod records;
mod schedule;
mod store;
mod traces;

pub use destinations::{DestinationConfig, RetryConfig, event_resource_type};

/// What a kind of inbound message (its handler, in `crate::handlers`) accepts from a channel's
/// mapping: check-config holds each channel's mapping to the kinds the channel takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageKind {
    /// MSH-9.1.
    pub message_type: &'static str,
    /// The FHIR resource types its mappings may write; none for a message answered before any
    /// channel (a query).
    pub resource_types: &'static [&'static str],
}

impl MessageKind {
    pub fn accepts(&self, resource_type: &str) -> bool {
        self.resource_types.contains(&resource_type)
    }
}
pub use bills::BillsConfig;
pub use branding::{BrandingConfig, BrandingTexts};
pub use consents::{ConsentSwitches, ConsentsConfig};
pub use engagement::EngagementConfig;
pub use identity::{CredentialsConfig, IdentityProviderConfig};
pub use members::{ApiClientConfig, MembersConfig, ROLES, SCOPES};
pub use messages::{MESSAGE_CATEGORIES, MessageDestinations, MessageSwitches, MessagesConfig};
pub use news::NewsConfig;
pub use proxies::{ProxiesConfig, ROLE_CODE_SYSTEM};
pub use rate_limit::RateLimitConfig;
pub use records::{RecordSwitches, RecordsConfig, SUMMARY_TYPES};
pub use schedule::{JOBS, JobConfig, parse_cron};
pub use store::{PasswordError, StoreConfig};
pub use traces::TracesConfig;

use tributary_adapter_core::tls::{ServerTlsConfig, server_config};

use crate::mapping::{Condition, MappingSet, SourceKind as MappingSource, TargetKind};

pub const DEFAULT_CONFIG_PATH: &str = "config/tributary.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// `[traces]`: the OTLP collector spans are sent to, if any (issue #18).
    #[serde(default)]
    pub traces: TracesConfig,
    #[serde(default)]
    pub commit: CommitConfig,
    #[serde(default)]
    pub journal: JournalConfig,
    #[serde(default)]
    pub mappings: MappingsConfig,
    #[serde(default)]
    pub fhir: FhirConfig,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    #[serde(default)]
    pub schedule: Vec<JobConfig>,
    #[serde(default)]
    pub members: MembersConfig,
    #[serde(default)]
    pub api_clients: Vec<ApiClientConfig>,
    #[serde(default)]
    pub engagement: EngagementConfig,
    /// `[records]`: where a member's cancellation of an appointment goes (issue #16).
    #[serde(default)]
    pub records: RecordsConfig,
    /// `[branding]`: the portal's titles and palette until a Configuration Manager saves others
    /// (issue #17).
    #[serde(default)]
    pub branding: BrandingConfig,
    /// `[bills]`: the payment gateway a member pays a bill at (issue #17).
    #[serde(default)]
    pub bills: BillsConfig,
    /// `[news]`: the feeds the `news-poll` job fetches (issue #17).
    #[serde(default)]
    pub news: NewsConfig,
    /// `[consents]`: where a member's changed consent goes, and what members may do (issue #17).
    #[serde(default)]
    pub consents: ConsentsConfig,
    /// `[messages]`: where members' messages go, and which directions of messaging the site
    /// offers (issue #17).
    #[serde(default)]
    pub messages: MessagesConfig,
    /// `[credentials]`: which credentials members sign in with, two-factor, the waits after failed sign-ins (issues #6, #12).
    #[serde(default)]
    pub credentials: CredentialsConfig,
    #[serde(default)]
    pub identity_providers: Vec<IdentityProviderConfig>,
    /// `[proxies]`: the relationship types of proxy relationships (issue #6).
    #[serde(default)]
    pub proxies: ProxiesConfig,
    /// The file and text this was read from, to locate errors found after parsing.
    #[serde(skip)]
    origin: Origin,
}

#[derive(Debug, Clone, Default)]
struct Origin {
    file: String,
    text: String,
}

/// `[journal]`: what the journal keeps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Of a message rejected before any channel took it (unreadable, unroutable, from a sender
    /// a channel does not allow), only this many bytes are journaled: an unauthenticated sender
    /// cannot fill the disk with whole messages.
    #[serde(default = "default_rejected_head_bytes")]
    pub rejected_head_bytes: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            rejected_head_bytes: default_rejected_head_bytes(),
        }
    }
}

fn default_rejected_head_bytes() -> usize {
    4096
}

/// The FHIR endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirConfig {
    /// The mapping a posted Patient (and a PMIR patient feed) goes through, as an upstream feed:
    /// it then updates the patient its identifiers name, as an ADT would. Without it a posted
    /// Patient is stored as given.
    #[serde(default)]
    pub patient_feed_mapping: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingsConfig {
    /// Folder of the mapping files, their tables and golden tests; relative paths are taken from
    /// the working directory.
    #[serde(default = "default_mappings_dir")]
    pub dir: PathBuf,
}

impl Default for MappingsConfig {
    fn default() -> Self {
        MappingsConfig {
            dir: default_mappings_dir(),
        }
    }
}

fn default_mappings_dir() -> PathBuf {
    PathBuf::from("mappings")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_http_bind")]
    pub bind: Spanned<String>,
    /// Largest request body accepted, in bytes; a larger one is a 413.
    #[serde(default = "default_body_limit")]
    pub max_body_bytes: Spanned<usize>,
    /// Longest request target (path and query) accepted, in bytes; a longer one is a 414.
    #[serde(default = "default_uri_limit")]
    pub max_uri_bytes: Spanned<usize>,
    /// Largest header section accepted (each field's name and value), in bytes; a larger one is
    /// a 431.
    #[serde(default = "default_header_limit")]
    pub max_header_bytes: Spanned<usize>,
    /// `[http.rate_limit]`: requests per client address.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Most HTTP connections open at once; more are accepted and closed at once. Default: derived
    /// from the process's file-descriptor limit at start (see `engine::fd_budget`), so that the
    /// MLLP listeners always keep room.
    #[serde(default)]
    pub max_connections: Option<Spanned<usize>>,
    /// A connection with no request in progress and no bytes either way for this long is closed.
    #[serde(default = "default_keep_alive_timeout")]
    pub keep_alive_timeout_secs: Spanned<u64>,
    /// A request's headers must be complete this long after the server starts waiting for it
    /// (connection open, or the previous response sent); a slower client is disconnected.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: Spanned<u64>,
    /// `[http.tls]`: serve HTTPS (and optionally require client certificates); absent, plain HTTP.
    #[serde(default)]
    pub tls: Option<Spanned<ServerTlsConfig>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: default_http_bind(),
            max_body_bytes: default_body_limit(),
            max_uri_bytes: default_uri_limit(),
            max_header_bytes: default_header_limit(),
            rate_limit: RateLimitConfig::default(),
            max_connections: None,
            keep_alive_timeout_secs: default_keep_alive_timeout(),
            header_read_timeout_secs: default_header_read_timeout(),
            tls: None,
        }
    }
}

/// hyper answers a request target longer than this with its own bare 414, before the router.
pub const HYPER_MAX_URI_BYTES: usize = 65534;

/// Highest `http.max_header_bytes`: with the longest target it stays under hyper's read buffer
/// (about 408 KiB for the whole request head), past which hyper answers a bare 431 itself.
pub const MAX_HEADER_LIMIT: usize = 256 * 1024;

fn default_keep_alive_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 5)
}

fn default_header_read_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 10)
}

fn default_http_bind() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8080".to_string())
}

fn default_body_limit() -> Spanned<usize> {
    Spanned::new(0..0, 4 * 1024 * 1024)
}

fn default_uri_limit() -> Spanned<usize> {
    Spanned::new(0..0, 8 * 1024)
}

fn default_header_limit() -> Spanned<usize> {
    Spanned::new(0..0, 16 * 1024)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `tributary=debug,warn`.
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
            format: LogFormat::Text,
        }
    }
}

fn default_log_level() -> String {
    "info".to_string()
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitConfig {
    /// Most messages made durable by one fsync.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
}

impl Default for CommitConfig {
    fn default() -> Self {
        CommitConfig {
            max_batch: default_max_batch(),
        }
    }
}

fn default_max_batch() -> usize {
    1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: Spanned<String>,
    /// Which mapping (a file `<mapping>.map` in the mappings folder) turns this channel's
    /// messages into store changes.
    pub mapping: Spanned<String>,
    pub source: SourceConfig,
    /// Which messages this channel takes; channels sharing a listener are tried in order.
    #[serde(default)]
    pub filter: FilterConfig,
    /// Destinations (by name) told of every patient this channel's messages change.
    #[serde(default)]
    pub destinations: Vec<Spanned<String>>,
    /// The senders this channel accepts messages from: `APP` (MSH-3.1) or `APP^FACILITY`
    /// (MSH-3.1 and MSH-4.1). A message the channel takes from anyone else is rejected (AR).
    /// Empty: any sender.
    #[serde(default)]
    pub allowed_senders: Vec<Spanned<String>>,
    /// `auto`: MSH-15/MSH-16 choose original or enhanced mode; `original`: always one
    /// AA/AE/AR, for senders that ask for enhanced mode but cannot take it.
    #[serde(default)]
    pub ack_mode: AckMode,
    /// Answer on the connection even when MSH-15 asks for no accept ACK (NE/NE): some senders
    /// block until a reply comes whatever they asked for.
    #[serde(default)]
    pub answer_ne_ne: bool,
    /// An `mllp` destination (by name) that application ACKs go to, when MSH-16 asks for one
    /// (enhanced mode): they are messages of their own, delivered by the outbox.
    #[serde(default)]
    pub application_ack_destination: Option<Spanned<String>>,
    /// This channel's senders use enhanced mode: an `application_ack_destination` is then
    /// required (unless `ack_mode` is `original`).
    #[serde(default)]
    pub senders_use_enhanced_mode: Option<Spanned<bool>>,
    /// A message no channel's filter takes: `accept` (AA, journaled as `filtered`) or `reject`
    /// (AR 200/201). Channels sharing a listener must agree.
    #[serde(default = "default_on_filtered")]
    pub on_filtered: Spanned<OnFiltered>,
    /// MSH-12 of an ACK when the message's own version is unreadable or not HL7 v2 (a garbage
    /// MSH-12 cannot be echoed). Channels sharing a listener must agree.
    #[serde(default = "default_hl7_version")]
    pub default_hl7_version: Spanned<String>,
}

/// `channels[].ack_mode`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    #[default]
    Auto,
    Original,
}

/// `channels[].on_filtered`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFiltered {
    #[default]
    Accept,
    Reject,
}

fn default_on_filtered() -> Spanned<OnFiltered> {
    Spanned::new(0..0, OnFiltered::Accept)
}

fn default_hl7_version() -> Spanned<String> {
    Spanned::new(0..0, crate::hl7::DEFAULT_VERSION.to_owned())
}

impl ChannelConfig {
    /// How this channel answers (the ACK module's view of its keys).
    pub fn ack_settings(&self) -> crate::hl7::AckSettings {
        crate::hl7::AckSettings {
            original_mode: self.ack_mode == AckMode::Original,
            answer_unasked: self.answer_ne_ne,
            default_version: self.default_hl7_version.get_ref().clone(),
        }
    }
}

/// A message passes when it matches every part given (an empty list matches anything).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// `ADT^A08` (type and event), `ADT^*` or `ADT` (any event of the type).
    #[serde(default)]
    pub message_types: Vec<Spanned<String>>,
    /// MSH-3.1 values.
    #[serde(default)]
    pub sending_applications: Vec<String>,
    /// MSH-4.1 values.
    #[serde(default)]
    pub sending_facilities: Vec<String>,
    /// A condition in the mapping language, e.g. `PID-3[1].4.1 == "UCRMPI"`.
    #[serde(default)]
    pub condition: Option<Spanned<String>>,
}

/// Where a channel's messages come from. One flat table for every kind: serde cannot keep the
/// line numbers of an internally tagged enum's fields, and errors must name their line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: Spanned<SourceKind>,
    pub bind: Spanned<String>,
    /// Largest frame accepted; a larger one is answered with AR and never held whole in memory.
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: Spanned<usize>,
    /// A connection that completes no frame for this long (counted from the last whole frame,
    /// or from the connection's opening) is closed: trickling bytes does not keep it open.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Most connections open at once on this listener; more are accepted and closed at once.
    #[serde(default = "default_source_max_connections")]
    pub max_connections: Spanned<usize>,
    /// `[channels.source.tls]`: MLLP inside TLS (and optionally client certificates required).
    #[serde(default)]
    pub tls: Option<Spanned<ServerTlsConfig>>,
    /// Addresses and networks (`10.1.0.0/16`, `192.0.2.7`) connections are taken from; any
    /// other is closed before a byte is read. Empty: anyone who can reach the port.
    #[serde(default)]
    pub allowed_peers: Vec<Spanned<String>>,
}

impl SourceConfig {
    /// `allowed_peers` parsed (validated at load).
    pub fn allowed_peer_networks(&self) -> Vec<tributary_adapter_mllp::IpNet> {
        self.allowed_peers
            .iter()
            .filter_map(|p| tributary_adapter_mllp::parse_peer(p.get_ref()).ok())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Mllp,
}

fn default_max_frame() -> Spanned<usize> {
    Spanned::new(0..0, 1024 * 1024)
}

fn default_idle_timeout() -> u64 {
    300
}

fn default_source_max_connections() -> Spanned<usize> {
    Spanned::new(0..0, tributary_adapter_mllp::DEFAULT_MAX_CONNECTIONS)
}

/// A configuration problem, located in its file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: 0,
            key: "-".into(),
            message: format!("cannot read the file: {e}"),
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `file` is only used in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let located = |span: Option<std::ops::Range<usize>>, key: String, message: String| ConfigError {
            file: file.to_string(),
            line: span.map(|s| line_of(text, s.start)).unwrap_or(0),
            key,
            message,
        };
        let config: Config = toml::from_str(text).map_err(|e| {
            let key = key_in_message(e.message()).unwrap_or_else(|| "-".into());
            located(e.span(), key, e.message().trim().to_string())
        })?;
        let mut config = config;
        config.origin = Origin {
            file: file.to_string(),
            text: text.to_string(),
        };
        config.validate()?;
        Ok(config)
    }

    /// An error at `span` of the file this config came from.
    /// An error at `name` (under `key`) unless a `[[destinations]]` entry of that name exists.
    pub(super) fn require_destination(&self, key: String, name: &Spanned<String>) -> Result<(), ConfigError> {
        if self
            .destinations
            .iter()
            .any(|d| d.name.get_ref() == name.get_ref())
        {
            return Ok(());
        }
        Err(self.error_at(
            name.span(),
            key,
            format!("no destination named `{}` is defined", name.get_ref()),
        ))
    }

    /// The file this config was read from, and its text as read.
    pub fn source(&self) -> (&str, &str) {
        (&self.origin.file, &self.origin.text)
    }

    pub fn error_at(&self, span: std::ops::Range<usize>, key: String, message: String) -> ConfigError {
        ConfigError {
            file: self.origin.file.clone(),
            line: line_of(&self.origin.text, span.start),
            key,
            message,
        }
    }

    /// Checks every channel's mapping: it exists, reads HL7 v2 and writes a FHIR resource of a
    /// type the messages the channel takes change (`kinds`: what each kind of message accepts,
    /// from `crate::handlers`); and every destination's mapping reads FHIR.
    pub fn check_mappings(&self, mappings: &MappingSet, kinds: &[MessageKind]) -> Result<(), ConfigError> {
        for (i, channel) in self.channels.iter().enumerate() {
            let name = channel.mapping.get_ref();
            let taken: Vec<&str> = channel
                .filter
                .message_types
                .iter()
                .map(|t| t.get_ref().split('^').next().unwrap_or(""))
                .collect();
            // The kinds of message the channel takes that a mapping changes the store for.
            let changing: Vec<&MessageKind> = kinds
                .iter()
                .filter(|k| !k.resource_types.is_empty())
                .filter(|k| taken.is_empty() || taken.contains(&k.message_type))
                .collect();
            let problem = match mappings.get(name) {
                None => Some(format!(
                    "no mapping `{name}` in {} (found: {})",
                    self.mappings.dir.display(),
                    mappings.names().join(", ")
                )),
                Some(mapping) if mapping.source != MappingSource::Hl7v2 => Some(format!(
                    "mapping `{name}` does not read HL7 v2, which an MLLP channel receives"
                )),
                Some(mapping) => match &mapping.target {
                    TargetKind::Fhir { resource_type }
                        if changing.iter().any(|k| k.accepts(resource_type)) || resource_type == "Bundle" =>
                    {
                        None
                    }
                    target => Some(format!(
                        "mapping `{name}` writes {}, but the messages this channel takes change {}",
                        match target {
                            TargetKind::Fhir { resource_type } => format!("a FHIR {resource_type}"),
                            TargetKind::Hl7v2 { .. } => "HL7 v2".to_string(),
                        },
                        changing
                            .iter()
                            .map(|k| format!("{} ({})", k.resource_types.join(", "), k.message_type))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )),
                },
            };
            if let Some(message) = problem {
                return Err(self.error_at(channel.mapping.span(), format!("channels[{i}].mapping"), message));
            }
        }
        for (i, destination) in self.destinations.iter().enumerate() {
            let Some(name) = &destination.mapping else {
                continue;
            };
            let problem = match mappings.get(name.get_ref()) {
                None => Some(format!(
                    "no mapping `{}` in {} (found: {})",
                    name.get_ref(),
                    self.mappings.dir.display(),
                    mappings.names().join(", ")
                )),
                Some(mapping) if mapping.source != MappingSource::Fhir => Some(format!(
                    "mapping `{}` does not read FHIR, and a destination is sent a FHIR Patient",
                    name.get_ref()
                )),
                Some(_) => None,
            };
            if let Some(message) = problem {
                return Err(self.error_at(name.span(), format!("destinations[{i}].mapping"), message));
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let located = |span, key, message| self.error_at(span, key, message);
        check_bind(&self.http.bind, "http.bind", &located)?;
        self.store.validate(&located)?;
        self.validate_http_limits()?;
        self.validate_http()?;
        let mut names: Vec<&str> = Vec::new();
        let mut listeners: Vec<(SocketAddr, &SourceConfig)> = Vec::new();
        let mut listeners_channels: Vec<(SocketAddr, &ChannelConfig)> = Vec::new();
        for (i, channel) in self.channels.iter().enumerate() {
            let key = |k: &str| format!("channels[{i}].{k}");
            let name = channel.name.get_ref();
            if !valid_name(name) {
                return Err(located(
                    channel.name.span(),
                    key("name"),
                    format!("`{name}` is not a valid channel name (letters, digits, - and _)"),
                ));
            }
            if names.contains(&name.as_str()) {
                return Err(located(
                    channel.name.span(),
                    key("name"),
                    format!("a channel named `{name}` is defined twice"),
                ));
            }
            names.push(name);
            let source = &channel.source;
            let addr = check_bind(&source.bind, &key("source.bind"), &located)?;
            // Channels on one address share its listener, so they must agree on its settings.
            let shared = listeners.iter().find(|(a, _)| *a == addr);
            if let Some((_, first)) = shared
                && (first.max_frame_bytes.get_ref() != source.max_frame_bytes.get_ref()
                    || first.idle_timeout_secs != source.idle_timeout_secs
                    || first.max_connections.get_ref() != source.max_connections.get_ref()
                    || first.tls.as_ref().map(Spanned::get_ref) != source.tls.as_ref().map(Spanned::get_ref)
                    || first.allowed_peer_networks() != source.allowed_peer_networks())
            {
                return Err(located(
                    source.bind.span(),
                    key("source.bind"),
                    format!(
                        "{addr} is shared with an earlier channel whose max_frame_bytes, idle_timeout_secs, max_connections, tls or allowed_peers differ"
                    ),
                ));
            }
            // What a listener does with a message no channel takes, and the version it answers
            // unreadable ones in, are the listener's: its channels must agree on them too.
            let first_channel = listeners_channels.iter().find(|(a, _)| *a == addr);
            if let Some((_, first)) = first_channel
                && (first.on_filtered.get_ref() != channel.on_filtered.get_ref()
                    || first.default_hl7_version.get_ref() != channel.default_hl7_version.get_ref())
            {
                return Err(located(
                    source.bind.span(),
                    key("source.bind"),
                    format!(
                        "{addr} is shared with an earlier channel whose on_filtered or default_hl7_version differ"
                    ),
                ));
            }
            listeners_channels.push((addr, channel));
            listeners.push((addr, source));
            if !crate::hl7::KNOWN_VERSIONS.contains(&channel.default_hl7_version.get_ref().as_str()) {
                return Err(located(
                    channel.default_hl7_version.span(),
                    key("default_hl7_version"),
                    format!(
                        "`{}` is not an HL7 v2 version ({})",
                        channel.default_hl7_version.get_ref(),
                        crate::hl7::KNOWN_VERSIONS.join(", ")
                    ),
                ));
            }
            if let Some(destination) = &channel.application_ack_destination {
                let found = self
                    .destinations
                    .iter()
                    .find(|d| d.name.get_ref() == destination.get_ref());
                let why = match found {
                    None => Some(format!(
                        "no destination named `{}` is defined",
                        destination.get_ref()
                    )),
                    Some(d) if d.kind.get_ref() != "mllp" => Some(format!(
                        "destination `{}` is of kind `{}`; application ACKs go over MLLP",
                        destination.get_ref(),
                        d.kind.get_ref()
                    )),
                    Some(_) => None,
                };
                if let Some(why) = why {
                    return Err(located(
                        destination.span(),
                        key("application_ack_destination"),
                        why,
                    ));
                }
            }
            if let Some(enhanced) = &channel.senders_use_enhanced_mode
                && *enhanced.get_ref()
                && channel.ack_mode != AckMode::Original
                && channel.application_ack_destination.is_none()
            {
                return Err(located(
                    enhanced.span(),
                    key("senders_use_enhanced_mode"),
                    "enhanced-mode senders want application ACKs as messages of their own: name the mllp destination they go to in application_ack_destination, or set ack_mode = \"original\"".into(),
                ));
            }
            for sender in &channel.allowed_senders {
                let parts: Vec<&str> = sender.get_ref().split('^').collect();
                if parts.len() > 2 || parts.iter().any(|p| p.trim().is_empty()) {
                    return Err(located(
                        sender.span(),
                        key("allowed_senders"),
                        format!(
                            "`{}` is not a sender like UCR (MSH-3) or UCR^UCRHIE (MSH-3^MSH-4)",
                            sender.get_ref()
                        ),
                    ));
                }
            }
            for message_type in &channel.filter.message_types {
                if !valid_message_type(message_type.get_ref()) {
                    return Err(located(
                        message_type.span(),
                        key("filter.message_types"),
                        format!(
                            "`{}` is not a message type like ADT^A08, ADT^* or ADT",
                            message_type.get_ref()
                        ),
                    ));
                }
            }
            if let Some(condition) = &channel.filter.condition
                && let Err(why) = Condition::parse(condition.get_ref())
            {
                return Err(located(
                    condition.span(),
                    key("filter.condition"),
                    format!("`{}` is not a condition: {why}", condition.get_ref()),
                ));
            }
            for destination in &channel.destinations {
                if !self
                    .destinations
                    .iter()
                    .any(|d| d.name.get_ref() == destination.get_ref())
                {
                    return Err(located(
                        destination.span(),
                        key("destinations"),
                        format!("no destination named `{}` is defined", destination.get_ref()),
                    ));
                }
            }
            check_tls(source.tls.as_ref(), &key("source.tls"), &located)?;
            for peer in &source.allowed_peers {
                if let Err(why) = tributary_adapter_mllp::parse_peer(peer.get_ref()) {
                    return Err(located(peer.span(), key("source.allowed_peers"), why));
                }
            }
            if *source.max_connections.get_ref() == 0 {
                return Err(located(
                    source.max_connections.span(),
                    key("source.max_connections"),
                    "must be at least 1".into(),
                ));
            }
            if *source.max_frame_bytes.get_ref() < 1024 {
                return Err(located(
                    source.max_frame_bytes.span(),
                    key("source.max_frame_bytes"),
                    "must be at least 1024".into(),
                ));
            }
        }
        self.validate_destinations()?;
        self.validate_schedule()?;
        self.validate_engagement()?;
        self.validate_records()?;
        self.validate_branding()?;
        self.validate_bills()?;
        self.validate_news()?;
        self.validate_traces()?;
        self.validate_consents()?;
        self.validate_messages()?;
        self.validate_identity()?;
        self.validate_rate_limit()?;
        self.validate_proxies()?;
        self.validate_members()
    }

    /// The request limits of `[http]`: each within what the router can enforce and answer itself.
    fn validate_http_limits(&self) -> Result<(), ConfigError> {
        let http = &self.http;
        for (key, value, min, max) in [
            ("http.max_body_bytes", &http.max_body_bytes, 1024, usize::MAX),
            (
                "http.max_uri_bytes",
                &http.max_uri_bytes,
                256,
                HYPER_MAX_URI_BYTES,
            ),
            (
                "http.max_header_bytes",
                &http.max_header_bytes,
                1024,
                MAX_HEADER_LIMIT,
            ),
        ] {
            let n = *value.get_ref();
            if n < min || n > max {
                let message = if max == usize::MAX {
                    format!("must be at least {min}")
                } else {
                    format!("must be between {min} and {max}")
                };
                return Err(self.error_at(value.span(), key.into(), message));
            }
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        let http = &self.http;
        check_tls(http.tls.as_ref(), "http.tls", &|span, key, message| {
            self.error_at(span, key, message)
        })?;
        if let Some(max) = &http.max_connections
            && *max.get_ref() == 0
        {
            return Err(self.error_at(
                max.span(),
                "http.max_connections".into(),
                "must be at least 1".into(),
            ));
        }
        for (value, name) in [
            (&http.keep_alive_timeout_secs, "http.keep_alive_timeout_secs"),
            (&http.header_read_timeout_secs, "http.header_read_timeout_secs"),
        ] {
            if *value.get_ref() == 0 {
                return Err(self.error_at(value.span(), name.into(), "must be at least 1".into()));
            }
        }
        // The header-read timer also runs while a kept-alive connection waits for its next
        // request, so it bounds the idle time too: a longer keep-alive would never apply.
        if http.keep_alive_timeout_secs.get_ref() > http.header_read_timeout_secs.get_ref() {
            return Err(self.error_at(
                http.keep_alive_timeout_secs.span(),
                "http.keep_alive_timeout_secs".into(),
                format!(
                    "must not exceed http.header_read_timeout_secs ({}), which also bounds the wait for the next request",
                    http.header_read_timeout_secs.get_ref()
                ),
            ));
        }
        Ok(())
    }

    fn validate_schedule(&self) -> Result<(), ConfigError> {
        for (i, job) in self.schedule.iter().enumerate() {
            let key = |k: &str| format!("schedule[{i}].{k}");
            let name = job.job.get_ref().as_str();
            if !JOBS.contains(&name) {
                return Err(self.error_at(
                    job.job.span(),
                    key("job"),
                    format!("`{name}` is not a job (known: {})", JOBS.join(", ")),
                ));
            }
            if let Err(why) = parse_cron(job.cron.get_ref()) {
                return Err(self.error_at(job.cron.span(), key("cron"), why));
            }
            if name == "journal-retention" && job.keep_days.is_none_or(|d| d == 0) {
                return Err(self.error_at(
                    job.job.span(),
                    key("keep_days"),
                    "journal-retention needs keep_days (at least 1)".into(),
                ));
            }
            if name == "dead-letter-digest" {
                let Some(destination) = &job.destination else {
                    return Err(self.error_at(
                        job.job.span(),
                        key("destination"),
                        "dead-letter-digest needs the destination the digest goes to".into(),
                    ));
                };
                self.require_destination(key("destination"), destination)?;
            }
        }
        Ok(())
    }

    fn validate_destinations(&self) -> Result<(), ConfigError> {
        let mut names: Vec<&str> = Vec::new();
        for (i, destination) in self.destinations.iter().enumerate() {
            let key = |k: &str| format!("destinations[{i}].{k}");
            let name = destination.name.get_ref();
            if !valid_name(name) {
                return Err(self.error_at(
                    destination.name.span(),
                    key("name"),
                    format!("`{name}` is not a valid destination name (letters, digits, - and _)"),
                ));
            }
            if names.contains(&name.as_str()) {
                return Err(self.error_at(
                    destination.name.span(),
                    key("name"),
                    format!("a destination named `{name}` is defined twice"),
                ));
            }
            names.push(name);
            for event in &destination.events {
                if event_resource_type(event.get_ref()).is_none() {
                    return Err(self.error_at(
                        event.span(),
                        key("events"),
                        format!(
                            "`{}` is not an event (events are `<ResourceType>-changed`, e.g. `Patient-changed`, `Appointment-changed`; `patient-changed` is `Patient-changed`)",
                            event.get_ref(),
                        ),
                    ));
                }
            }
            if destination.retry.max_attempts == 0 {
                return Err(self.error_at(
                    destination.name.span(),
                    key("retry.max_attempts"),
                    "must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }

    /// The http bind address (validated at load).
    pub fn http_bind(&self) -> SocketAddr {
        self.http.bind.get_ref().parse().expect("validated at load")
    }
}

impl SourceConfig {
    pub fn bind_addr(&self) -> SocketAddr {
        self.bind.get_ref().parse().expect("validated at load")
    }
}

/// Channel and destination names: letters, digits, `-` and `_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `ADT^A08`, `ADT^*` or `ADT`.
fn valid_message_type(text: &str) -> bool {
    let code = |c: &str| c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit());
    match text.split_once('^') {
        Some((message_type, event)) => code(message_type) && (event == "*" || code(event)),
        None => code(text),
    }
}

fn check_bind(
    bind: &Spanned<String>,
    key: &str,
    located: &impl Fn(std::ops::Range<usize>, String, String) -> ConfigError,
) -> Result<SocketAddr, ConfigError> {
    bind.get_ref().parse::<SocketAddr>().map_err(|_| {
        located(
            bind.span(),
            key.to_string(),
            format!("`{}` is not an address like 127.0.0.1:2575", bind.get_ref()),
        )
    })
}

/// Reads a listener's TLS files now, so a wrong path or a bad PEM stops the start with its line.
fn check_tls(
    tls: Option<&Spanned<ServerTlsConfig>>,
    key: &str,
    located: &impl Fn(std::ops::Range<usize>, String, String) -> ConfigError,
) -> Result<(), ConfigError> {
    match tls {
        Some(tls) => server_config(tls.get_ref())
            .map(|_| ())
            .map_err(|error| located(tls.span(), key.to_string(), error.to_string())),
        None => Ok(()),
    }
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The key toml names in messages like "unknown field `bindd`" or "missing field `bind`".
fn key_in_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[store]
data_dir = "./data"

[http]
bind = "127.0.0.1:8080"

[[channels]]
name = "ucr-adt"
mapping = "ucr-adt-patient"
[channels.source]
kind = "mllp"
bind = "127.0.0.1:2575"
"#;

    #[test]
    fn the_shipped_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH);
        let config = Config::load(&path).unwrap();
        assert_eq!(config.channels.len(), 10);
        assert_eq!(config.http_bind().to_string(), "127.0.0.1:8080");
        assert_eq!(config.mappings.dir, PathBuf::from("mappings"));
    }

    #[test]
    fn a_good_config_parses_with_defaults() {
        let config = Config::parse(GOOD, "t.toml").unwrap();
        let source = &config.channels[0].source;
        assert_eq!(*source.kind.get_ref(), SourceKind::Mllp);
        assert_eq!(*source.max_frame_bytes.get_ref(), 1024 * 1024);
        assert_eq!(source.idle_timeout_secs, 300);
        assert_eq!(*source.max_connections.get_ref(), 100);
        assert_eq!(config.commit.max_batch, 1024);
        assert!(config.http.max_connections.is_none());
        assert_eq!(*config.http.keep_alive_timeout_secs.get_ref(), 5);
        assert_eq!(*config.http.header_read_timeout_secs.get_ref(), 10);
    }

    #[test]
    fn connection_limits_are_checked_with_their_line() {
        let text = GOOD.replace(
            "bind = \"127.0.0.1:8080\"",
            "bind = \"127.0.0.1:8080\"\nmax_connections = 0",
        );
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (7, "http.max_connections"), "{err}");
        let text = GOOD.replace(
            "bind = \"127.0.0.1:8080\"",
            "bind = \"127.0.0.1:8080\"\nkeep_alive_timeout_secs = 30\nheader_read_timeout_secs = 10",
        );
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (7, "http.keep_alive_timeout_secs"),
            "{err}"
        );
        let err = Config::parse(&format!("{GOOD}max_connections = 0\n"), "t.toml").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (14, "channels[0].source.max_connections"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let text = GOOD.replace("bind = \"127.0.0.1:2575\"", "bindd = \"127.0.0.1:2575\"");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(err.key, "bindd");
        assert_eq!(err.line, 13);
        assert!(err.to_string().starts_with("t.toml:13: bindd:"), "{err}");
    }

    #[test]
    fn a_bad_address_is_named_with_its_line() {
        let text = GOOD.replace("127.0.0.1:2575", "localhost-2575");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(err.line, 13);
        assert_eq!(err.key, "channels[0].source.bind");
    }

    #[test]
    fn the_http_request_limits_default_and_are_checked_with_their_line() {
        let config = Config::parse(GOOD, "t.toml").unwrap();
        assert_eq!(*config.http.max_body_bytes.get_ref(), 4 * 1024 * 1024);
        assert_eq!(*config.http.max_uri_bytes.get_ref(), 8 * 1024);
        assert_eq!(*config.http.max_header_bytes.get_ref(), 16 * 1024);
        let with = |keys: &str| {
            GOOD.replace(
                "bind = \"127.0.0.1:8080\"",
                &format!("bind = \"127.0.0.1:8080\"\n{keys}"),
            )
        };
        let config = Config::parse(&with("max_uri_bytes = 2048\nmax_header_bytes = 4096"), "t.toml").unwrap();
        assert_eq!(*config.http.max_uri_bytes.get_ref(), 2048);
        assert_eq!(*config.http.max_header_bytes.get_ref(), 4096);
        for (keys, key, line) in [
            ("max_body_bytes = 10", "http.max_body_bytes", 7),
            ("max_uri_bytes = 70000", "http.max_uri_bytes", 7),
            (
                "max_uri_bytes = 2048\nmax_header_bytes = 100",
                "http.max_header_bytes",
                8,
            ),
        ] {
            let err = Config::parse(&with(keys), "t.toml").unwrap_err();
            assert_eq!((err.key.as_str(), err.line), (key, line), "{err}");
        }
        let err = Config::parse(&with("max_uri_byte = 2048"), "t.toml").unwrap_err();
        assert_eq!(err.key, "max_uri_byte");
    }

    #[test]
    fn the_log_segment_size_defaults_and_is_checked_with_its_line() {
        let config = Config::parse(GOOD, "t.toml").unwrap();
        assert_eq!(config.store.options().log_segment_bytes, 16 * 1024 * 1024);
        let with = |value: &str| {
            GOOD.replace(
                "data_dir = \"./data\"",
                &format!("data_dir = \"./data\"\nlog_segment_bytes = {value}"),
            )
        };
        let config = Config::parse(&with("65536"), "t.toml").unwrap();
        assert_eq!(config.store.options().log_segment_bytes, 65536);
        for value in ["65535", "0", "1073741825"] {
            let err = Config::parse(&with(value), "t.toml").unwrap_err();
            assert_eq!(
                (err.key.as_str(), err.line),
                ("store.log_segment_bytes", 4),
                "{err}"
            );
            assert!(err.message.contains("between 65536 and 1073741824"), "{err}");
        }
        let err = Config::parse(&with("-1"), "t.toml").unwrap_err();
        assert_eq!(err.line, 4, "{err}");
    }

    #[test]
    fn a_wrong_type_and_a_bad_message_type_filter_are_refused() {
        let text = GOOD.replace("[store]", "[commit]\nmax_batch = \"many\"\n[store]");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        let text = format!("{GOOD}[channels.filter]\nmessage_types = [\"ADT^A08\", \"adt-a01\"]\n");
        let err = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (15, "channels[0].filter.message_types"),
            "{err}"
        );
    }

    #[test]
    fn a_filter_condition_is_compiled_at_load() {
        let good = format!("{GOOD}[channels.filter]\ncondition = 'MSH-4 == \"UCRHIE\"'\n");
        assert!(Config::parse(&good, "t.toml").is_ok());
        let bad = format!("{GOOD}[channels.filter]\ncondition = 'MSH-4 =='\n");
        let err = Config::parse(&bad, "t.toml").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (15, "channels[0].filter.condition"),
            "{err}"
        );
    }

    #[test]
    fn channels_sharing_an_address_must_agree_on_its_settings() {
        let second = "\n[[channels]]\nname = \"other\"\nmapping = \"m\"\n[channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:2575\"\n";
        assert!(Config::parse(&format!("{GOOD}{second}"), "t.toml").is_ok());
        let err = Config::parse(&format!("{GOOD}{second}idle_timeout_secs = 5\n"), "t.toml").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (20, "channels[1].source.bind"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_channel_names_are_refused() {
        let second = "\n[[channels]]\nname = \"ucr-adt\"\nmapping = \"ucr-adt-patient\"\n[channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:2576\"\n";
        let err = Config::parse(&format!("{GOOD}{second}"), "t.toml").unwrap_err();
        assert_eq!(err.key, "channels[1].name");
        assert_eq!(err.line, 16);
    }

    #[test]
    fn ack_keys_default_and_are_checked_with_their_line() {
        let config = Config::parse(GOOD, "t.toml").unwrap();
        let channel = &config.channels[0];
        assert_eq!(channel.ack_mode, AckMode::Auto);
        assert!(!channel.answer_ne_ne);
        assert_eq!(*channel.on_filtered.get_ref(), OnFiltered::Accept);
        assert_eq!(channel.ack_settings().default_version, "2.5");

        let keys = "ack_mode = \"original\"\nanswer_ne_ne = true\non_filtered = \"reject\"\ndefault_hl7_version = \"2.4\"\n";
        let text = GOOD.replacen("[channels.source]", &format!("{keys}[channels.source]"), 1);
        let config = Config::parse(&text, "t.toml").unwrap();
        let settings = config.channels[0].ack_settings();
        assert!(settings.original_mode && settings.answer_unasked);
        assert_eq!(settings.default_version, "2.4");
        assert_eq!(*config.channels[0].on_filtered.get_ref(), OnFiltered::Reject);

        let cases = [
            (
                "default_hl7_version = \"3.0\"\n",
                "channels[0].default_hl7_version",
            ),
            ("ack_mode = \"enhanced\"\n", "channels[0].ack_mode"),
            ("on_filtered = \"drop\"\n", "channels[0].on_filtered"),
            (
                "application_ack_destination = \"nowhere\"\n",
                "channels[0].application_ack_destination",
            ),
            (
                "senders_use_enhanced_mode = true\n",
                "channels[0].senders_use_enhanced_mode",
            ),
        ];
        for (line, key) in cases {
            let text = GOOD.replacen("[channels.source]", &format!("{line}[channels.source]"), 1);
            let err = Config::parse(&text, "t.toml").unwrap_err();
            assert_eq!(err.line, 11, "{err}");
            // A value that is none of an enum's names is reported by serde with the names it takes.
            assert!(err.key == key || err.message.contains("expected"), "{err}");
        }
        // Enhanced-mode senders are fine with a return destination, or answered in original mode.
        let http = "\n[[destinations]]\nname = \"back\"\nkind = \"http\"\n";
        let mllp = "\n[[destinations]]\nname = \"back\"\nkind = \"mllp\"\n";
        let keys = "senders_use_enhanced_mode = true\napplication_ack_destination = \"back\"\n";
        let with = |keys: &str, destination: &str| {
            format!(
                "{}{destination}",
                GOOD.replacen("[channels.source]", &format!("{keys}[channels.source]"), 1)
            )
        };
        assert!(Config::parse(&with(keys, mllp), "t.toml").is_ok());
        let err = Config::parse(&with(keys, http), "t.toml").unwrap_err();
        assert_eq!(err.key, "channels[0].application_ack_destination", "{err}");
        let original = "senders_use_enhanced_mode = true\nack_mode = \"original\"\n";
        assert!(Config::parse(&with(original, ""), "t.toml").is_ok());
        // Channels sharing a listener agree on what it does with messages no channel takes.
        let second = "\n[[channels]]\nname = \"other\"\nmapping = \"m\"\non_filtered = \"reject\"\n[channels.source]\nkind = \"mllp\"\nbind = \"127.0.0.1:2575\"\n";
        let err = Config::parse(&format!("{GOOD}{second}"), "t.toml").unwrap_err();
        assert_eq!(err.key, "channels[1].source.bind", "{err}");
    }
}
