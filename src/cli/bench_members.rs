//! `tributary bench members`: member search on a large synced population.
//!
//! Loads P synthetic patients (default 1,000,000) straight through the domain functions into a
//! fresh store in a temporary folder (large batches, not over MLLP: this measures search, not
//! ingest), enrolls M of them (default all) and activates half, then times member searches by
//! name, birth date, MRN, email and mobile phone, each with and without a status filter, and
//! prints p50 / p99 / max per kind. Searches run on one thread against the store as the API
//! reads it (the same call `GET /api/members` makes).

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use crate::config::MembersConfig;
use crate::core::Deliveries;
use crate::domain::accounts::Accounts;
use crate::domain::accounts::enrollment::{self, Method};
use crate::domain::accounts::members::{self, Contact, Criteria, Preference};
use crate::domain::accounts::tokens;
use crate::domain::identity::secrets::{self, TokenKey};
use crate::domain::mpi::patients;
use crate::domain::op::Op;
use crate::domain::resources::change::{self, ResourceChange};
use crate::store::{EmbeddedStore, Keyspace, Overlay, Store};

#[derive(Args)]
pub struct MembersBenchArgs {
    /// Synced patients to load.
    #[arg(long, default_value_t = 1_000_000)]
    patients: usize,
    /// How many of them are enrolled (half of those are then activated).
    #[arg(long)]
    members: Option<usize>,
    /// Searches per kind.
    #[arg(long, default_value_t = 2_000)]
    searches: usize,
    /// Results asked for per search (the API's default page).
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Store folder (default: a temporary folder, removed afterwards). `/dev/shm/...` keeps a
    /// large run off a small disk.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Store the patients in full: with their FHIR version history and FHIR search index too,
    /// which member search never reads (by default only the records and the identifier index
    /// are kept, to fit a 1,000,000-patient run in a few GB).
    #[arg(long)]
    full_patients: bool,
    /// Only search: the store in --data-dir already holds an earlier run's patients and members
    /// (same --patients and --members), as a run with --data-dir leaves it.
    #[arg(long)]
    search_only: bool,
}

/// Builds the search for member `i`.
type MakeCriteria = Box<dyn Fn(usize) -> Criteria>;

const FAMILIES: usize = 5_000;
const GIVENS: usize = 400;
const BATCH: usize = 5_000;

/// A deterministic pseudo-random sequence (no dependency, same data every run).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pronounceable made-up names: family `i` and given `j` are the same in every run.
fn syllables(mut n: usize, parts: usize) -> String {
    const S: [&str; 20] = [
        "ka", "lo", "mi", "ra", "ten", "sa", "vo", "lin", "da", "ber", "no", "hu", "gar", "el", "tis", "ma",
        "ro", "an", "qui", "zen",
    ];
    let mut out = String::new();
    for _ in 0..parts {
        out.push_str(S[n % S.len()]);
        n /= S.len();
    }
    let mut chars = out.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn family(i: usize) -> String {
    syllables(i % FAMILIES, 3)
}

fn given(i: usize) -> String {
    syllables((i / FAMILIES) % GIVENS + 7, 2)
}

fn birth(i: usize) -> String {
    let day = (i * 7919) % 29_000;
    let date =
        chrono::NaiveDate::from_ymd_opt(1940, 1, 1).expect("a date") + chrono::Duration::days(day as i64);
    date.format("%Y-%m-%d").to_string()
}

fn mrn(i: usize) -> String {
    format!("MRN{i:08}")
}

fn email(i: usize) -> String {
    format!("patient{i}@example.org")
}

fn phone(i: usize) -> String {
    format!("+1 617 {:03} {:04}", 200 + (i / 10_000) % 800, i % 10_000)
}

fn patient(i: usize) -> serde_json::Value {
    json!({
        "resourceType": "Patient",
        "identifier": [
            { "system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": format!("{}", 1_000_000_000 + i) },
            { "system": "urn:oid:2.16.840.1.113883.3.9999.2", "value": mrn(i), "type": { "coding": [{ "code": "MR" }] } }
        ],
        "name": [{ "family": family(i), "given": [given(i)] }],
        "birthDate": birth(i),
        "gender": if i.is_multiple_of(2) { "female" } else { "male" },
        "telecom": [
            { "system": "phone", "value": phone(i), "use": "mobile" },
            { "system": "email", "value": email(i) }
        ],
    })
}

/// Runs the benchmark (the loading and searching are blocking work, off the async threads).
pub async fn bench_members(args: MembersBenchArgs) -> Result<(), String> {
    tokio::task::spawn_blocking(move || bench(args))
        .await
        .map_err(|e| e.to_string())?
}

fn bench(args: MembersBenchArgs) -> Result<(), String> {
    let temp = tempfile_dir()?;
    let dir = args.data_dir.clone().unwrap_or_else(|| temp.clone());
    let store = EmbeddedStore::open(&dir).map_err(|e| e.to_string())?;
    let templates = Path::new("config/templates");
    let accounts = Accounts::with(MembersConfig::default(), TokenKey::from_bytes([3; 32]), templates)
        .map_err(|e| format!("{e} (run from the repository folder)"))?;
    let n = args.patients;
    let m = args.members.unwrap_or(n).min(n);
    println!(
        "bench members: {n} patients, {m} members (half activated), store in {}",
        dir.display()
    );

    if !args.search_only {
        load(&store, &accounts, &args, n, m)?;
    }
    search(&store, &args, m)?;
    drop(store);
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    Ok(())
}

/// Loads `n` patients, enrolls `m`, activates every second one, and checkpoints the log into tables.
fn load(
    store: &EmbeddedStore,
    accounts: &Accounts,
    args: &MembersBenchArgs,
    n: usize,
    m: usize,
) -> Result<(), String> {
    let started = Instant::now();
    let mut seq = store.journal_last_seq() + 1;
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for start in (0..n).step_by(BATCH) {
        let mut tx = Overlay::new(store);
        let t = now();
        for i in start..(start + BATCH).min(n) {
            change::apply(&mut tx, &ResourceChange::Upsert { resource: patient(i) }, &t)
                .map_err(|e| e.to_string())?;
        }
        let mut writes = tx.into_writes();
        if !args.full_patients {
            writes
                .ops
                .retain(|(k, _, _)| matches!(k, Keyspace::Patient | Keyspace::IdentifierIndex));
        }
        store.commit(writes).map_err(|e| e.to_string())?;
        if (start / BATCH) % 40 == 39 {
            store.sync().map_err(|e| e.to_string())?;
            println!("  {} patients loaded ({:.0?})", start + BATCH, started.elapsed());
        }
    }
    store.sync().map_err(|e| e.to_string())?;
    println!("loaded {n} patients in {:.1?}", started.elapsed());

    // Enroll, and activate every second member (a password hash made once: argon2 is slow on
    // purpose, and this measures search).
    let started = Instant::now();
    let password = secrets::hash_password("bench password");
    for start in (0..m).step_by(BATCH) {
        let mut tx = Overlay::new(store);
        let t = now();
        for i in start..(start + BATCH).min(m) {
            let id = patient_id(store, i)?;
            let mut deliveries = Deliveries::default();
            let mut op = Op::new(&mut tx, &mut deliveries, &t, seq, "client:bench");
            seq += 1;
            let contact = Contact {
                email: Some(email(i)),
                mobile: Some(phone(i)),
                carrier: None,
                preference: Preference::Email,
                locales: vec!["en".into()],
            };
            let (member, _) = enrollment::enroll(
                &mut op,
                accounts,
                enrollment::Request {
                    patient_id: id,
                    contact,
                    proxy_only: false,
                    method: Method::PointOfCare,
                    passphrase_hash: None,
                    passphrase: None,
                },
            )
            .map_err(|e| e.to_string())?;
            if !i.is_multiple_of(2) {
                let token = tokens::derive(accounts, &member.token.nonce);
                tokens::activate(&mut op, accounts, &token, &format!("user{i}"), password.clone())
                    .map_err(|e| e.to_string())?;
            }
        }
        store.commit(tx.into_writes()).map_err(|e| e.to_string())?;
        if (start / BATCH) % 40 == 39 {
            store.sync().map_err(|e| e.to_string())?;
            println!("  {} members enrolled ({:.0?})", start + BATCH, started.elapsed());
        }
    }
    store.sync().map_err(|e| e.to_string())?;
    println!("enrolled {m} members in {:.1?}", started.elapsed());
    // Measure the steady state: the log checkpointed into tables (as a running engine's store
    // maintenance does at every full log segment), and the caches warm.
    let started = Instant::now();
    store.checkpoint().map_err(|e| e.to_string())?;
    let mut warm = Mix(7);
    for _ in 0..args.searches {
        let i = warm.below(m.max(1));
        let criteria = Criteria {
            mrn: Some(mrn(i)),
            ..Default::default()
        };
        members::search(store, &criteria, args.limit).map_err(|e| e.to_string())?;
    }
    println!("checkpoint and warm-up in {:.1?}", started.elapsed());
    Ok(())
}

/// Times every kind of search, unfiltered and by status.
fn search(store: &EmbeddedStore, args: &MembersBenchArgs, m: usize) -> Result<(), String> {
    let n = args.patients;

    let kinds: Vec<(&str, MakeCriteria)> = vec![
        (
            "name (family)",
            Box::new(|i| Criteria {
                name: Some(family(i)),
                ..Default::default()
            }),
        ),
        (
            "name (family + given)",
            Box::new(|i| Criteria {
                name: Some(format!("{} {}", family(i), given(i))),
                ..Default::default()
            }),
        ),
        (
            "name prefix (3 letters)",
            Box::new(|i| Criteria {
                name: Some(family(i)[..3].to_string()),
                ..Default::default()
            }),
        ),
        (
            "birth date",
            Box::new(|i| Criteria {
                birth_date: Some(birth(i)),
                ..Default::default()
            }),
        ),
        (
            "MRN",
            Box::new(|i| Criteria {
                mrn: Some(mrn(i)),
                ..Default::default()
            }),
        ),
        (
            "email",
            Box::new(|i| Criteria {
                email: Some(email(i)),
                ..Default::default()
            }),
        ),
        (
            "mobile phone",
            Box::new(|i| Criteria {
                phone: Some(phone(i)),
                ..Default::default()
            }),
        ),
        (
            "name + birth date",
            Box::new(|i| Criteria {
                name: Some(family(i)),
                birth_date: Some(birth(i)),
                ..Default::default()
            }),
        ),
    ];
    println!(
        "\n{:<26} {:<10} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "search", "status", "p50 ms", "p99 ms", "max ms", "searches", "hits/q"
    );
    let mut mix = Mix(42);
    let mut worst = Duration::ZERO;
    for (name, make) in &kinds {
        for status in [None, Some("pending"), Some("activated")] {
            let mut times = Vec::with_capacity(args.searches);
            let mut hits = 0usize;
            for _ in 0..args.searches {
                let i = mix.below(m.max(1));
                let mut criteria = make(i);
                criteria.status = status.map(str::to_string);
                let t = Instant::now();
                let found = members::search(store, &criteria, args.limit).map_err(|e| e.to_string())?;
                times.push(t.elapsed());
                hits += found.len();
                let expected = match status {
                    Some("pending") => i.is_multiple_of(2),
                    Some("activated") => !i.is_multiple_of(2),
                    _ => true,
                };
                let exact = matches!(*name, "MRN" | "email" | "mobile phone");
                if exact
                    && expected
                    && !found
                        .iter()
                        .any(|f| f.patient_id == patient_id(store, i).unwrap_or_default())
                {
                    return Err(format!("{name} search for member {i} did not find it"));
                }
            }
            times.sort();
            let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
            worst = worst.max(pct(0.99));
            println!(
                "{:<26} {:<10} {:>9.3} {:>9.3} {:>9.3} {:>9} {:>8.1}",
                name,
                status.unwrap_or("any"),
                pct(0.50).as_secs_f64() * 1e3,
                pct(0.99).as_secs_f64() * 1e3,
                times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
                times.len(),
                hits as f64 / times.len() as f64
            );
        }
    }
    println!(
        "\nworst p99: {:.3} ms (target: under 5 ms) with {n} patients, {m} members, limit {}",
        worst.as_secs_f64() * 1e3,
        args.limit
    );
    Ok(())
}

fn patient_id(store: &EmbeddedStore, i: usize) -> Result<String, String> {
    let found = patients::search_identifier(store, Some("urn:oid:2.16.840.1.113883.3.9999.2"), &mrn(i), 1)
        .map_err(|e| e.to_string())?;
    found
        .first()
        .and_then(|p| p["id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("patient {i} was not loaded"))
}

fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("tributary-bench-members-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}
