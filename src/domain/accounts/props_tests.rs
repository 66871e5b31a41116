//! Property test: random sequences of member-account actions, with a clock that moves (one
//! "hour" is one second, so tokens expire), never reach an illegal state. After every step:
//! statuses follow the life cycle, credentials exist exactly for activated members, the token
//! index and the search index agree with the member records, superseded and used tokens never
//! work, and the audit trail only ever grows.
//!
//! It runs the domain functions directly on an in-memory store (the HTTP layer adds only roles
//! and parsing, tested over the wire elsewhere).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;
use serde_json::json;

use crate::config::MembersConfig;
use crate::core::{self as commit_core, Projections};
use crate::domain::accounts::Accounts;
use crate::domain::accounts::audit::{self, AuditRecord};
use crate::domain::accounts::enrollment::{self, Method};
use crate::domain::accounts::members::{self, Contact, Preference, Status};
use crate::domain::accounts::tokens::{self, Purpose};
use crate::domain::identity::secrets::{self, TokenKey};
use crate::domain::op::Op;
use crate::domain::refusal::Refusal;
use crate::domain::resources::change::{self, ResourceChange};
use crate::store::{Keyspace, MemoryStore, Reader};

const PATIENTS: usize = 3;

#[derive(Debug, Clone)]
enum Action {
    Enroll(usize),
    Resend(usize),
    Renew(usize, u32),
    Regenerate(usize, u32, bool),
    /// Activate with the current token (true) or an older one (false); the username index.
    Activate(usize, bool, usize),
    Deactivate(usize, bool),
    Reactivate(usize),
    StartReset(usize),
    /// Finish with the latest reset token (true) or an older one.
    FinishReset(usize, bool),
    EditContact(usize),
    /// Seconds pass.
    Wait(u32),
}

fn action() -> impl Strategy<Value = Action> {
    let p = 0..PATIENTS;
    prop_oneof![
        3 => p.clone().prop_map(Action::Enroll),
        1 => p.clone().prop_map(Action::Resend),
        1 => (p.clone(), 0u32..6).prop_map(|(p, h)| Action::Renew(p, h)),
        1 => (p.clone(), 0u32..6, any::<bool>()).prop_map(|(p, h, n)| Action::Regenerate(p, h, n)),
        3 => (p.clone(), any::<bool>(), 0usize..2).prop_map(|(p, c, u)| Action::Activate(p, c, u)),
        1 => (p.clone(), any::<bool>()).prop_map(|(p, m)| Action::Deactivate(p, m)),
        1 => p.clone().prop_map(Action::Reactivate),
        1 => p.clone().prop_map(Action::StartReset),
        1 => (p.clone(), any::<bool>()).prop_map(|(p, l)| Action::FinishReset(p, l)),
        1 => p.clone().prop_map(Action::EditContact),
        1 => (0u32..4).prop_map(Action::Wait),
    ]
}

struct World {
    store: MemoryStore,
    /// The domain's projections, run on every action as the committer runs them.
    projections: Projections,
    accounts: Accounts,
    ids: Vec<String>,
    seq: u64,
    clock: chrono::DateTime<chrono::Utc>,
    /// Every activation token each patient was ever sent, latest last.
    tokens: BTreeMap<String, Vec<String>>,
    resets: BTreeMap<String, Vec<String>>,
    audit: Vec<AuditRecord>,
    password_hash: String,
}

impl World {
    fn new(password_hash: String) -> World {
        let store = MemoryStore::new();
        let config = MembersConfig {
            hour_seconds: 1,
            pending_user_expiration_hours: toml::Spanned::new(0..0, 3),
            max_expiration_reset_hours: toml::Spanned::new(0..0, 4),
            email_destination: Some(toml::Spanned::new(0..0, "member-email".to_string())),
            ..MembersConfig::default()
        };
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
        let accounts = Accounts::with(config, TokenKey::from_bytes([9; 32]), &templates).unwrap();
        let mut world = World {
            store,
            accounts,
            ids: vec![],
            seq: 0,
            clock: chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .unwrap()
                .to_utc(),
            tokens: BTreeMap::new(),
            resets: BTreeMap::new(),
            audit: vec![],
            password_hash,
            projections: crate::domain::projections().into(),
        };
        for i in 0..PATIENTS {
            let patient = json!({
                "resourceType": "Patient",
                "identifier": [{ "system": "urn:oid:1.2.3", "value": format!("MRN{i}") }],
                "name": [{ "family": format!("Family{i}"), "given": ["Pat"] }],
                "birthDate": "1990-01-0".to_string() + &(i + 1).to_string(),
            });
            let now = world.now();
            let projections = world.projections.clone();
            let ids = commit_core::run_direct(&world.store, &projections, &now, 0, |ctx| {
                change::apply(ctx.tx, &ResourceChange::Upsert { resource: patient }, ctx.now)
            })
            .unwrap();
            world.ids.push(ids[0].clone());
        }
        world
    }

    fn now(&self) -> String {
        self.clock.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// Runs one action as a command: kept if it succeeds, dropped if refused.
    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Op<'_, '_>, &Accounts) -> Result<T, Refusal>,
    ) -> Result<T, Refusal> {
        self.seq += 1;
        self.clock += chrono::Duration::milliseconds(10);
        let now = self.now();
        // As a committer command runs it: one stage, with the domain's projections.
        let accounts = &self.accounts;
        commit_core::run_direct(&self.store, &self.projections, &now, self.seq, |ctx| {
            let mut op = Op::from_ctx(ctx, "client:prop");
            f(&mut op, accounts)
        })
    }

    fn member(&self, p: usize) -> Option<members::Member> {
        members::load(&self.store, &self.ids[p]).unwrap()
    }

    fn current_token(&self, p: usize) -> Option<String> {
        self.member(p)
            .map(|m| tokens::derive(&self.accounts, &m.token.nonce))
    }

    fn step(&mut self, action: &Action) {
        let before = (0..PATIENTS).map(|p| self.member(p)).collect::<Vec<_>>();
        match action.clone() {
            Action::Enroll(p) => {
                let id = self.ids[p].clone();
                let result = self.run(|op, a| {
                    enrollment::enroll(
                        op,
                        a,
                        enrollment::Request {
                            patient_id: id,
                            contact: contact(p),
                            proxy_only: false,
                            method: Method::PointOfCare,
                            passphrase_hash: None,
                            passphrase: None,
                        },
                    )
                });
                assert_eq!(
                    result.is_ok(),
                    before[p].is_none(),
                    "enroll succeeds exactly when not enrolled"
                );
                if result.is_ok() {
                    let token = self.current_token(p).unwrap();
                    self.tokens.entry(self.ids[p].clone()).or_default().push(token);
                }
            }
            Action::Resend(p) => {
                let id = self.ids[p].clone();
                let result = self.run(|op, a| tokens::resend(op, a, &id, None, None));
                if result.is_ok() {
                    assert_eq!(before[p].as_ref().unwrap().status, Status::Pending);
                    assert_eq!(
                        self.member(p).unwrap().token,
                        before[p].as_ref().unwrap().token,
                        "resend keeps the token"
                    );
                }
            }
            Action::Renew(p, hours) => {
                let id = self.ids[p].clone();
                let result = self.run(|op, a| tokens::renew(op, a, &id, 0, hours, "prop"));
                assert!(result.is_err() || (1..=4).contains(&hours));
            }
            Action::Regenerate(p, hours, notify) => {
                let id = self.ids[p].clone();
                let result = self.run(|op, a| tokens::regenerate(op, a, &id, 0, hours, "prop", notify, None));
                if result.is_ok() {
                    let token = self.current_token(p).unwrap();
                    let all = self.tokens.entry(self.ids[p].clone()).or_default();
                    assert!(!all.contains(&token), "a regenerated token is new");
                    all.push(token);
                }
            }
            Action::Activate(p, current, u) => {
                let Some(all) = self.tokens.get(&self.ids[p]).cloned() else {
                    return;
                };
                let token = if current {
                    all.last().unwrap().clone()
                } else {
                    all[0].clone()
                };
                let username = format!("user{u}");
                let hash = self.password_hash.clone();
                let result = self.run(|op, a| tokens::activate(op, a, &token, &username, hash));
                let was = before[p].clone().unwrap();
                let latest = token == *all.last().unwrap();
                if result.is_ok() {
                    assert_eq!(was.status, Status::Pending, "only a pending member activates");
                    assert!(latest, "only the latest token activates");
                    assert!(
                        !tokens::passed(&was.token.expires_at, &self.now()),
                        "an expired token never activates"
                    );
                } else if let Err(refusal) = &result {
                    if !latest {
                        assert!(
                            matches!(refusal.code, "token-superseded" | "token-used" | "token-expired"),
                            "{refusal}"
                        );
                    }
                    if was.status.activated() && latest {
                        assert_eq!(refusal.code, "token-used");
                    }
                }
            }
            Action::Deactivate(p, minor) => {
                let id = self.ids[p].clone();
                let result = self.run(|op, _| members::deactivate(op, &id, minor, "prop"));
                let was = before[p].as_ref().map(|m| m.status);
                assert_eq!(result.is_ok(), was == Some(Status::Active));
            }
            Action::Reactivate(p) => {
                let id = self.ids[p].clone();
                let result = self.run(|op, _| members::reactivate(op, &id, "prop"));
                let was = before[p].as_ref().map(|m| m.status);
                assert_eq!(
                    result.is_ok(),
                    matches!(was, Some(Status::Inactive | Status::InactiveMinor))
                );
            }
            Action::StartReset(p) => {
                let id = self.ids[p].clone();
                let token = secrets::new_token();
                let t = token.clone();
                let result = self.run(|op, a| tokens::start_reset(op, a, &id, &t, "prop.reset", None));
                let was = before[p].as_ref().map(|m| m.status);
                assert_eq!(result.is_ok(), was == Some(Status::Active));
                if result.is_ok() {
                    self.resets.entry(self.ids[p].clone()).or_default().push(token);
                }
            }
            Action::FinishReset(p, latest) => {
                let Some(all) = self.resets.get(&self.ids[p]).cloned() else {
                    return;
                };
                let token = if latest {
                    all.last().unwrap().clone()
                } else {
                    all[0].clone()
                };
                let hash = self.password_hash.clone();
                let result = self.run(|op, a| tokens::finish_reset(op, a, &token, hash));
                if result.is_ok() {
                    assert_eq!(token, *all.last().unwrap(), "only the latest reset link works");
                    assert_eq!(before[p].as_ref().unwrap().status, Status::Active);
                }
            }
            Action::EditContact(p) => {
                let id = self.ids[p].clone();
                let mut c = contact(p);
                c.email = Some(format!("edited{p}@example.org"));
                let result = self.run(|op, _| members::edit_contact(op, &id, c, "prop"));
                assert_eq!(result.is_ok(), before[p].is_some());
            }
            Action::Wait(seconds) => self.clock += chrono::Duration::seconds(i64::from(seconds)),
        }
    }

    fn check(&mut self) {
        let all_index: Vec<Vec<u8>> = self
            .store
            .scan_prefix(Keyspace::MemberIndex, &[], usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut usernames = BTreeSet::new();
        for p in 0..PATIENTS {
            let id = self.ids[p].clone();
            let Some(m) = self.member(p) else {
                assert!(!self.tokens.contains_key(&id));
                assert!(
                    all_index
                        .iter()
                        .all(|k| !k.ends_with(format!("\0{id}").as_bytes()))
                );
                continue;
            };
            match m.status {
                Status::Pending => {
                    assert!(m.username.is_none() && m.password_hash.is_none() && m.activated_at.is_none());
                    assert!(m.token.used_at.is_none());
                    assert!(m.reset.is_none());
                }
                _ => {
                    let name = m.username.clone().expect("an activated member has a username");
                    assert!(
                        m.password_hash.is_some() && m.activated_at.is_some() && m.token.used_at.is_some()
                    );
                    let owner = self
                        .store
                        .get(Keyspace::UsernameIndex, name.to_lowercase().as_bytes())
                        .unwrap()
                        .expect("the username is indexed");
                    assert_eq!(owner, id.as_bytes());
                    assert!(usernames.insert(name.to_lowercase()), "usernames are unique");
                }
            }
            // The token index agrees with the record; the token itself is nowhere in the store.
            let token = tokens::derive(&self.accounts, &m.token.nonce);
            assert_eq!(m.token.hash, self.accounts.key.hash(&token));
            assert_eq!(self.tokens[&id].last(), Some(&token));
            let entry: tokens::Entry = serde_json::from_slice(
                &self
                    .store
                    .get(Keyspace::TokenIndex, m.token.hash.as_bytes())
                    .unwrap()
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(
                (entry.patient_id.as_str(), entry.purpose, entry.generation),
                (id.as_str(), Purpose::Activation, m.token.generation)
            );
            assert!(!serde_json::to_string(&m).unwrap().contains(&token));
            // Older tokens never pass the check.
            let now = self.now();
            for old in &self.tokens[&id][..self.tokens[&id].len() - 1] {
                let refused =
                    tokens::check(&self.store, &self.accounts, old, Purpose::Activation, &now).unwrap_err();
                assert_eq!(refused.code, "token-superseded");
            }
            // The search index holds exactly the member's terms, under its current status.
            let mine: BTreeSet<&Vec<u8>> = all_index
                .iter()
                .filter(|k| k.ends_with(format!("\0{id}").as_bytes()))
                .collect();
            assert_eq!(mine.len(), m.index_terms.len(), "{:?}", m.index_terms);
            let group = if m.status.activated() { b'A' } else { b'P' };
            assert!(mine.iter().all(|k| k[1] == group));
            let filter = if m.status.activated() {
                "activated"
            } else {
                "pending"
            };
            let found = members::search(
                &self.store,
                &members::Criteria {
                    mrn: Some(format!("mrn{p}")),
                    status: Some(filter.into()),
                    ..Default::default()
                },
                10,
            )
            .unwrap();
            assert_eq!(found.len(), 1);
        }
        // Append-only audit trail.
        let trail = audit::list(
            &self.store,
            &audit::Query {
                limit: usize::MAX,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(trail.len() >= self.audit.len());
        assert_eq!(
            trail[..self.audit.len()],
            self.audit[..],
            "audit records are never rewritten"
        );
        self.audit = trail;
    }
}

fn contact(p: usize) -> Contact {
    Contact {
        email: Some(format!("p{p}@example.org")),
        mobile: None,
        carrier: None,
        preference: Preference::Email,
        locales: vec!["en".into()],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_action_sequences_never_reach_an_illegal_state(actions in prop::collection::vec(action(), 1..40)) {
        let hash = PASSWORD_HASH.with(|h| h.clone());
        let mut world = World::new(hash);
        for action in &actions {
            world.step(action);
            world.check();
        }
    }
}

thread_local! {
    static PASSWORD_HASH: String = secrets::hash_password("a long password");
}
