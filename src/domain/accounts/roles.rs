//! Who may call the member-account API: the staff roles the seeds name, external systems with
//! scopes, and the table of API clients (keys kept only as SHA-256 hashes) that says who a key is.

use crate::config::ApiClientConfig;
use crate::domain::identity::secrets;

/// A role a caller carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Point-of-care enrollment: searches the synced patients and enrolls one.
    DirectEnrollmentUser,
    /// Manages members: tokens, contact details, (de)activation, password reset, proxies.
    MemberAccountManager,
    /// Works the enrollment request queue.
    RequestAgent,
    /// Works the enrollment exception queue.
    ExceptionAgent,
    /// Site configuration (member settings) and the audit trail.
    ConfigurationManager,
    /// A system, allowed what its scopes say.
    ExternalSystem,
    /// Runs the interfaces: reads the journal, follows deliveries, retries or discards dead
    /// letters.
    IntegrationAnalyst,
    /// Scrapes `/metrics` (a Prometheus server): counts and latencies, no patient data.
    MetricsReader,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "direct-enrollment-user" => Role::DirectEnrollmentUser,
            "member-account-manager" => Role::MemberAccountManager,
            "enrollment-request-agent" => Role::RequestAgent,
            "enrollment-exception-agent" => Role::ExceptionAgent,
            "configuration-manager" => Role::ConfigurationManager,
            "external-system" => Role::ExternalSystem,
            "integration-analyst" => Role::IntegrationAnalyst,
            "metrics-reader" => Role::MetricsReader,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::DirectEnrollmentUser => "direct-enrollment-user",
            Role::MemberAccountManager => "member-account-manager",
            Role::RequestAgent => "enrollment-request-agent",
            Role::ExceptionAgent => "enrollment-exception-agent",
            Role::ConfigurationManager => "configuration-manager",
            Role::ExternalSystem => "external-system",
            Role::IntegrationAnalyst => "integration-analyst",
            Role::MetricsReader => "metrics-reader",
        }
    }
}

/// What an external system may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Automated enrollment.
    Enroll,
    /// The portal acting for a (prospective) member.
    SelfService,
    /// Invitations to enroll (issue #7).
    Invite,
    /// Patient tasks: create, follow and update them (issue #7).
    Tasks,
    /// The FHIR endpoint: read, search, history, PIXm.
    FhirRead,
    /// The FHIR endpoint: create, update, delete, transactions, PMIR feeds (and read).
    FhirWrite,
}

impl Scope {
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "enroll" => Some(Scope::Enroll),
            "self-service" => Some(Scope::SelfService),
            "invite" => Some(Scope::Invite),
            "tasks" => Some(Scope::Tasks),
            "fhir-read" => Some(Scope::FhirRead),
            "fhir-write" => Some(Scope::FhirWrite),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scope::Enroll => "enroll",
            Scope::SelfService => "self-service",
            Scope::Invite => "invite",
            Scope::Tasks => "tasks",
            Scope::FhirRead => "fhir-read",
            Scope::FhirWrite => "fhir-write",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub roles: Vec<Role>,
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// How the audit trail and the journal name this caller.
    pub fn actor(&self) -> String {
        format!("client:{}", self.name)
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// An external system holding `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.has(Role::ExternalSystem) && self.scopes.contains(&scope)
    }
}

/// The API clients in force: the config's, replaced whole when the config is read again
/// (SIGHUP). A request authenticates against the set in force when it arrives.
#[derive(Debug, Default)]
pub struct LiveClients(std::sync::RwLock<Clients>);

impl LiveClients {
    pub fn new(clients: Clients) -> LiveClients {
        LiveClients(std::sync::RwLock::new(clients))
    }

    /// The caller this key belongs to, among the clients in force.
    pub fn authenticate(&self, key: &str) -> Option<Caller> {
        self.0.read().ok()?.authenticate(key)
    }

    /// Puts `clients` in force instead; returns how many there are.
    pub fn replace(&self, clients: Clients) -> usize {
        let count = clients.entries.len();
        if let Ok(mut in_force) = self.0.write() {
            *in_force = clients;
        }
        count
    }
}

/// The configured API clients, found by key.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    entries: Vec<(String, Caller)>,
}

impl Clients {
    pub fn from_config(clients: &[ApiClientConfig]) -> Clients {
        Clients {
            entries: clients
                .iter()
                .map(|c| {
                    (
                        c.key_sha256.get_ref().to_ascii_lowercase(),
                        Caller {
                            name: c.name.get_ref().clone(),
                            roles: c.roles.iter().filter_map(|r| Role::parse(r.get_ref())).collect(),
                            scopes: c
                                .scopes
                                .iter()
                                .filter_map(|s| Scope::parse(s.get_ref()))
                                .collect(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// The caller this key belongs to. Every entry is compared, in constant time, so the time
    /// taken says nothing about which (or whether one) matched.
    pub fn authenticate(&self, key: &str) -> Option<Caller> {
        let hash = secrets::sha256_hex(key);
        let mut found = None;
        for (stored, caller) in &self.entries {
            if secrets::same(stored, &hash) {
                found = Some(caller.clone());
            }
        }
        found
    }
}
