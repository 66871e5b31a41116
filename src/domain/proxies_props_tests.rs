//! Property test: random sequences of proxy-relationship actions (create between members or
//! patients without accounts, register a proxy, revoke, the expiry job, time passing) never
//! reach an illegal state. After every step: each relationship is listed for both parties and
//! has its RelatedPerson saying whether it is active; the expiry index holds exactly the active
//! ones; no pair has two relationships granting access at once; a relationship only ever moves
//! from active to revoked or expired; after the expiry job nothing active is past its expiry.
//!
//! It runs the domain functions directly on an in-memory store (the HTTP layer adds only roles
//! and parsing, tested over the wire in tests/it/members_proxies.rs).

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::config::MembersConfig;
use crate::core::{self as commit_core, Projections};
use crate::domain::accounts::Accounts;
use crate::domain::accounts::members::{self, Contact, Preference};
use crate::domain::identity::secrets::TokenKey;
use crate::domain::op::Op;
use crate::domain::proxies::{self, Enrollment, NewRelationship, Party, Registration, Stored, Who};
use crate::domain::refusal::Refusal;
use crate::domain::resources::change::{self, ResourceChange};
use crate::domain::resources::{self, Current};
use crate::store::{Keyspace, MemoryStore, Reader};

const PATIENTS: usize = 4;

#[derive(Debug, Clone)]
enum Action {
    /// Principal, proxy (patients by number), seconds until it expires, the code's index.
    Create(usize, usize, i64, usize),
    /// Principal, and a person to register as the proxy.
    Register(usize, i64),
    /// The k-th relationship made so far (modulo their number).
    Revoke(usize),
    /// The `proxy-expiry` job.
    ExpireJob,
    Wait(i64),
}

fn action() -> impl Strategy<Value = Action> {
    let p = 0..PATIENTS;
    prop_oneof![
        4 => (p.clone(), p.clone(), -1i64..6, 0usize..3).prop_map(|(a, b, s, c)| Action::Create(a, b, s, c)),
        1 => (p.clone(), 1i64..6).prop_map(|(a, s)| Action::Register(a, s)),
        2 => (0usize..8).prop_map(Action::Revoke),
        2 => Just(Action::ExpireJob),
        2 => (0i64..4).prop_map(Action::Wait),
    ]
}

struct World {
    store: MemoryStore,
    /// The domain's projections, run on every action as the committer runs them.
    projections: Projections,
    accounts: Accounts,
    ids: Vec<String>,
    made: Vec<String>,
    /// Each relationship's stored status as last seen.
    seen: BTreeMap<String, Stored>,
    seq: u64,
    clock: chrono::DateTime<chrono::Utc>,
}

impl World {
    fn new() -> World {
        let store = MemoryStore::new();
        let config = MembersConfig {
            email_destination: Some(toml::Spanned::new(0..0, "member-email".to_string())),
            ..MembersConfig::default()
        };
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
        let accounts = Accounts::with(config, TokenKey::from_bytes([7; 32]), &templates).unwrap();
        let mut world = World {
            store,
            accounts,
            ids: vec![],
            made: vec![],
            seen: BTreeMap::new(),
            seq: 0,
            clock: chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .unwrap()
                .to_utc(),
            projections: crate::domain::projections().into(),
        };
        for i in 0..PATIENTS {
            let patient = json!({
                "resourceType": "Patient",
                "identifier": [{ "system": "urn:oid:1.2.3", "value": format!("MRN{i}") }],
                "name": [{ "family": format!("Family{i}"), "given": ["Pat"] }],
                "telecom": [{ "system": "email", "value": format!("p{i}@example.org") }],
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

    fn expiry_in(&self, seconds: i64) -> String {
        (self.clock + chrono::Duration::seconds(seconds)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    fn step(&mut self, action: &Action) {
        let codes = ["PRN", "GRD", "SPS"];
        match action {
            Action::Create(a, b, seconds, code) => {
                let new = NewRelationship {
                    principal: party(Who::Patient(self.ids[*a].clone())),
                    proxy: party(Who::Patient(self.ids[*b].clone())),
                    relationship: codes[*code].into(),
                    expires_at: self.expiry_in(*seconds),
                    reason: "prop".into(),
                };
                let same = a == b;
                let past = *seconds < 1;
                match self.run(|op, accounts| proxies::create(op, accounts, new)) {
                    Ok(created) => {
                        assert!(!same && !past, "{action:?} was allowed");
                        self.made
                            .push(created.relationship["id"].as_str().unwrap().to_string());
                    }
                    Err(refusal) => assert!(
                        same || past || refusal.code == "already-related",
                        "{action:?}: {refusal}"
                    ),
                }
            }
            Action::Register(a, seconds) => {
                let mut proxy = party(Who::Register(Registration {
                    family: "Roe".into(),
                    given: vec!["Richard".into()],
                    birth_date: Some("1960-02-29".into()),
                    gender: None,
                }));
                proxy.enroll.as_mut().unwrap().contact = Some(Contact {
                    email: Some(format!("r{}@example.org", self.seq)),
                    mobile: None,
                    carrier: None,
                    preference: Preference::Email,
                    locales: vec![],
                });
                let new = NewRelationship {
                    principal: party(Who::Patient(self.ids[*a].clone())),
                    proxy,
                    relationship: "GRD".into(),
                    expires_at: self.expiry_in(*seconds),
                    reason: "prop".into(),
                };
                let created = self
                    .run(|op, accounts| proxies::create(op, accounts, new))
                    .unwrap_or_else(|r| panic!("{action:?}: {r}"));
                let registered = created.registered.expect("a registered proxy");
                let member = members::load(&self.store, &registered).unwrap().unwrap();
                assert!(member.proxy_only);
                self.made
                    .push(created.relationship["id"].as_str().unwrap().to_string());
            }
            Action::Revoke(k) => {
                if self.made.is_empty() {
                    return;
                }
                let id = self.made[k % self.made.len()].clone();
                let before = proxies::load(&self.store, &id).unwrap().unwrap();
                let was_active = before.grants(&self.now());
                let revoked = self.run(|op, accounts| proxies::revoke(op, accounts, &id, "prop"));
                // Judged at the command's own time, a moment after `now` above.
                let after = proxies::load(&self.store, &id).unwrap().unwrap();
                match revoked {
                    Ok(_) => assert_eq!(after.status, Stored::Revoked),
                    Err(r) => {
                        assert_eq!(r.code, "not-active", "{r}");
                        assert!(!was_active || !after.grants(&self.now()));
                        assert_eq!(after, before, "a refused revocation changes nothing");
                    }
                }
            }
            Action::ExpireJob => loop {
                let due = proxies::due(&self.store, &self.now(), 100).unwrap();
                if due.is_empty() {
                    break;
                }
                self.run(|op, accounts| {
                    for id in &due {
                        proxies::expire(op, accounts, id)?;
                    }
                    Ok(())
                })
                .unwrap();
                assert!(proxies::due(&self.store, &self.now(), 100).unwrap().is_empty());
            },
            Action::Wait(seconds) => self.clock += chrono::Duration::seconds(*seconds),
        }
    }

    fn check(&mut self, after_job: bool) {
        let now = self.now();
        let all: Vec<proxies::Relationship> = self
            .store
            .scan_prefix(Keyspace::Proxy, &[], usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).unwrap())
            .collect();
        assert_eq!(
            all.len(),
            self.made.len(),
            "every relationship made is kept, no other"
        );
        let expiry: Vec<String> = self
            .store
            .scan_prefix(Keyspace::ProxyExpiry, &[], usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect();
        let mut expected: Vec<String> = all
            .iter()
            .filter(|r| r.status == Stored::Active)
            .map(|r| format!("{}\0{}", r.expires_at, r.id))
            .collect();
        expected.sort();
        assert_eq!(expiry, expected, "the expiry index holds exactly the active ones");
        let mut granting: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in &all {
            for party in [&r.principal, &r.proxy] {
                assert!(
                    members::load(&self.store, party).unwrap().is_some(),
                    "{party} is a member"
                );
                assert!(
                    proxies::of_member(&self.store, party).unwrap().contains(r),
                    "{} is listed for {party}",
                    r.id
                );
            }
            if r.grants(&now) {
                *granting
                    .entry((r.principal.clone(), r.proxy.clone()))
                    .or_default() += 1;
            }
            match resources::read(&self.store, "RelatedPerson", &r.id).unwrap() {
                Some(Current::Live(person)) => {
                    assert_eq!(person["active"], Value::Bool(r.status == Stored::Active));
                    assert_eq!(person["patient"]["reference"], format!("Patient/{}", r.principal));
                }
                other => panic!("{}: no RelatedPerson: {other:?}", r.id),
            }
            if let Some(before) = self.seen.get(&r.id)
                && *before != Stored::Active
            {
                assert_eq!(*before, r.status, "{}: an ended relationship stays ended", r.id);
            }
            assert_eq!(r.status != Stored::Active, r.ended_at.is_some());
            if after_job {
                // Stored active and granting nothing would mean the job missed it.
                assert!(
                    r.status != Stored::Active || r.grants(&now),
                    "{}: active and past its expiry after the job",
                    r.id
                );
            }
            self.seen.insert(r.id.clone(), r.status);
        }
        assert!(
            granting.values().all(|n| *n <= 1),
            "one granting relationship per pair: {granting:?}"
        );
    }
}

fn party(who: Who) -> Party {
    Party {
        who,
        enroll: Some(Enrollment {
            contact: None,
            proxy_only: None,
            passphrase_hash: None,
            passphrase: None,
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_proxy_actions_never_reach_an_illegal_state(actions in proptest::collection::vec(action(), 1..30)) {
        let mut world = World::new();
        for action in &actions {
            world.step(action);
            world.check(matches!(action, Action::ExpireJob));
        }
    }
}
