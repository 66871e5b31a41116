//! Who may try again now: the in-memory counters behind issue #12's answer to lockout abuse and
//! request floods. Two kinds, each in a map of bounded size (so many addresses or usernames
//! cannot grow memory without end):
//!
//! - [`SignInThrottle`]: failed sign-ins per account (the typed username, known or not, so a
//!   reply never tells whether an account exists) and per client address. Past a number of
//!   failures within a window, each further attempt must wait: 1 s, then 2, 4, ... up to a cap.
//!   Nothing is locked: once the wait has passed the right password works, so a stranger can
//!   slow an account down but not shut its owner out.
//! - [`RequestLimiter`]: a token bucket per client address for every API request.
//!
//! Both are per process and forgotten on restart, which costs an attacker nothing they could
//! not get by waiting, and keeps the store free of per-attempt writes from strangers. Time is
//! passed in (a monotonic `Instant`) so the rules are tested without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{CredentialsConfig, RateLimitConfig};

/// The most keys one map holds; past it the idle ones are dropped, then (if every key is busy)
/// half of them: a flood of fresh keys may cost some keys their history, never memory.
const MAX_KEYS: usize = 65_536;

/// A map of at most `MAX_KEYS` entries.
#[derive(Debug)]
struct Bounded<K, V> {
    map: HashMap<K, V>,
}

impl<K: Eq + Hash, V> Bounded<K, V> {
    fn new() -> Self {
        Bounded { map: HashMap::new() }
    }

    /// The entry for `key`, made with `fresh` when missing; `idle` says which entries may go
    /// when the map is full.
    fn entry(&mut self, key: K, fresh: impl FnOnce() -> V, idle: impl Fn(&V) -> bool) -> &mut V {
        if self.map.len() >= MAX_KEYS && !self.map.contains_key(&key) {
            self.map.retain(|_, v| !idle(v));
            if self.map.len() >= MAX_KEYS / 2 {
                // Every entry is busy: drop half of them (the map's order is random).
                let mut n = 0;
                self.map.retain(|_, _| {
                    n += 1;
                    n % 2 == 0
                });
            }
        }
        self.map.entry(key).or_insert_with(fresh)
    }
}

/// Locks a mutex; a panic elsewhere while it was held leaves counters that are still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// IPv6 clients hold whole /64 networks: they are counted by that prefix, else one client
/// would have billions of fresh addresses.
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)),
        v4 => v4,
    }
}

/// Failures of one account or address.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// No attempt before this.
    wait_until: Option<Instant>,
}

/// The sign-in waits (see the module doc).
#[derive(Debug)]
pub struct SignInThrottle {
    account_free: u32,
    address_free: u32,
    max_wait: Duration,
    window: Duration,
    accounts: Mutex<Bounded<String, Failures>>,
    addresses: Mutex<Bounded<IpAddr, Failures>>,
}

impl SignInThrottle {
    pub fn new(config: &CredentialsConfig) -> SignInThrottle {
        SignInThrottle {
            account_free: config.max_failed_sign_ins.max(1),
            address_free: config.address_failed_sign_ins.max(1),
            max_wait: Duration::from_secs(u64::from(config.sign_in_delay_max_seconds.max(1))),
            window: Duration::from_secs(u64::from(config.failure_window_seconds.max(1))),
            accounts: Mutex::new(Bounded::new()),
            addresses: Mutex::new(Bounded::new()),
        }
    }

    /// The account key of a typed username: trimmed and lowercased, as sign-in looks it up.
    pub fn account(username: &str) -> String {
        username.trim().to_lowercase()
    }

    /// Starts an attempt: refused with the wait still to run, if any; else counted at once as
    /// a failure, in the same critical section as the check, so that many attempts sent
    /// together cannot all pass before the first of them is known to have failed. An attempt
    /// that turns out not to have failed is taken back with [`SignInThrottle::not_failed`].
    pub fn begin(&self, account: Option<&str>, address: IpAddr, now: Instant) -> Result<(), Duration> {
        // Always addresses before accounts, so two callers never wait on each other.
        let mut addresses = lock(&self.addresses);
        let mut accounts = lock(&self.accounts);
        let remaining = |f: Option<&Failures>| {
            f.and_then(|f| f.wait_until)
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero())
        };
        let key = client_key(address);
        let wait =
            remaining(addresses.map.get(&key)).max(account.and_then(|a| remaining(accounts.map.get(a))));
        if let Some(wait) = wait {
            return Err(wait);
        }
        self.count(&mut addresses, key, self.address_free, now);
        if let Some(account) = account {
            self.count(&mut accounts, account.to_string(), self.account_free, now);
        }
        Ok(())
    }

    /// Takes back the failure [`SignInThrottle::begin`] counted for an attempt that did not
    /// fail: a completed sign-in forgets the account's failures; the address only loses this
    /// one (one success does not excuse the other guesses made from there).
    pub fn not_failed(&self, account: Option<&str>, address: IpAddr, signed_in: bool) {
        let take_back = |f: &mut Failures, free: u32| {
            f.count = f.count.saturating_sub(1);
            if f.count < free {
                f.wait_until = None;
            }
        };
        if let Some(f) = lock(&self.addresses).map.get_mut(&client_key(address)) {
            take_back(f, self.address_free);
        }
        if let Some(account) = account {
            let mut accounts = lock(&self.accounts);
            if signed_in {
                accounts.map.remove(account);
            } else if let Some(f) = accounts.map.get_mut(account) {
                take_back(f, self.account_free);
            }
        }
    }

    fn count<K: Eq + Hash>(
        &self,
        map: &mut Bounded<K, Failures>,
        key: K,
        free: u32,
        now: Instant,
    ) -> Option<Duration> {
        let window = self.window;
        let fresh = || Failures {
            count: 0,
            last: now,
            wait_until: None,
        };
        let idle = |f: &Failures| now.saturating_duration_since(f.last) > window;
        let entry = map.entry(key, fresh, idle);
        if now.saturating_duration_since(entry.last) > window {
            *entry = fresh();
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count < free {
            return None;
        }
        // The free-th failure waits 1 s, each further one twice as long, up to the cap.
        let doublings = (entry.count - free).min(30);
        let wait = Duration::from_secs(1u64 << doublings).min(self.max_wait);
        entry.wait_until = Some(now + wait);
        Some(wait)
    }

    /// How long `account` must still wait, for the staff view of a member's sign-in state.
    pub fn account_wait(&self, account: &str, now: Instant) -> Option<Duration> {
        lock(&self.accounts)
            .map
            .get(account)
            .and_then(|f| f.wait_until)
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The per-address request budget (see the module doc).
#[derive(Debug)]
pub struct RequestLimiter {
    enabled: bool,
    per_second: f64,
    burst: f64,
    buckets: Mutex<Bounded<IpAddr, Bucket>>,
}

impl RequestLimiter {
    pub fn new(config: &RateLimitConfig) -> RequestLimiter {
        RequestLimiter {
            enabled: config.enabled,
            per_second: f64::from((*config.per_second.get_ref()).max(1)),
            burst: f64::from((*config.burst.get_ref()).max(1)),
            buckets: Mutex::new(Bounded::new()),
        }
    }

    /// Takes one request from `address`'s budget, or says how long until there is one.
    pub fn take(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let (rate, burst) = (self.per_second, self.burst);
        let level =
            |b: &Bucket| (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(burst);
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.entry(
            client_key(address),
            || Bucket {
                tokens: burst,
                at: now,
            },
            |b| level(b) >= burst,
        );
        bucket.tokens = level(bucket);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
    }
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(free: u32, max: u32) -> SignInThrottle {
        let config = CredentialsConfig {
            max_failed_sign_ins: free,
            address_failed_sign_ins: 100,
            sign_in_delay_max_seconds: max,
            failure_window_seconds: 60,
            ..CredentialsConfig::default()
        };
        SignInThrottle::new(&config)
    }

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn waits_grow_from_the_free_failures_on_up_to_the_cap_and_end() {
        let t = throttle(3, 5);
        let jane = Some("jane");
        let mut now = Instant::now();
        // Three failures are free; the third makes the next attempt wait 1 s.
        for _ in 0..3 {
            assert!(t.begin(jane, HOME, now).is_ok());
        }
        assert_eq!(t.begin(jane, HOME, now), Err(Duration::from_secs(1)));
        assert_eq!(t.account_wait("jane", now), Some(Duration::from_secs(1)));
        assert!(t.begin(Some("bob"), HOME, now).is_ok(), "per account");
        t.not_failed(Some("bob"), HOME, false);
        // Each further failure doubles the wait, up to the cap.
        for wait in [2, 4, 5, 5] {
            now += t.account_wait("jane", now).unwrap();
            assert!(t.begin(jane, HOME, now).is_ok(), "the wait passes");
            assert_eq!(t.begin(jane, HOME, now), Err(Duration::from_secs(wait)));
        }
        // Failures older than the window are forgotten.
        now += Duration::from_secs(61);
        assert!(t.begin(jane, HOME, now).is_ok());
        assert!(t.begin(jane, HOME, now).is_ok());
        assert!(t.begin(jane, HOME, now).is_ok());
        assert!(t.begin(jane, HOME, now).is_err());
        t.not_failed(jane, HOME, true);
        assert_eq!(t.account_wait("jane", now), None);
    }

    #[test]
    fn an_address_waits_after_its_own_failures_whatever_the_accounts() {
        let config = CredentialsConfig {
            address_failed_sign_ins: 2,
            ..CredentialsConfig::default()
        };
        let t = SignInThrottle::new(&config);
        let now = Instant::now();
        assert!(t.begin(Some("a"), HOME, now).is_ok());
        assert!(t.begin(Some("b"), HOME, now).is_ok());
        assert_eq!(
            t.begin(Some("c"), HOME, now),
            Err(Duration::from_secs(1)),
            "any account from there"
        );
        let elsewhere: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(t.begin(Some("c"), elsewhere, now).is_ok());
        // One IPv6 /64 is one client.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
    }

    #[test]
    fn attempts_sent_together_are_counted_before_they_are_checked() {
        let t = throttle(3, 60);
        let now = Instant::now();
        let jane = Some("jane");
        // Three attempts under way at once, none settled yet: the fourth must wait.
        for _ in 0..3 {
            assert!(t.begin(jane, HOME, now).is_ok());
        }
        assert_eq!(t.begin(jane, HOME, now), Err(Duration::from_secs(1)));
        // One of them was the right password after all: the account starts afresh, and the
        // address's count loses that one.
        t.not_failed(jane, HOME, true);
        assert!(t.begin(jane, HOME, now).is_ok());
        t.not_failed(jane, HOME, false);
        assert_eq!(t.account_wait("jane", now), None);
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let config = RateLimitConfig {
            enabled: true,
            per_second: toml::Spanned::new(0..0, 2),
            burst: toml::Spanned::new(0..0, 3),
        };
        let limiter = RequestLimiter::new(&config);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(HOME, now).is_ok());
        }
        let wait = limiter.take(HOME, now).unwrap_err();
        assert_eq!(retry_after_seconds(wait), 1);
        assert!(limiter.take(HOME, now + Duration::from_millis(500)).is_ok());
        assert!(
            limiter.take("192.0.2.1".parse().unwrap(), now).is_ok(),
            "per address"
        );
    }

    #[test]
    fn the_maps_stay_bounded_under_many_addresses() {
        let limiter = RequestLimiter::new(&RateLimitConfig::default());
        let now = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 10_000) {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(i));
            let _ = limiter.take(address, now);
        }
        assert!(lock(&limiter.buckets).map.len() <= MAX_KEYS);
    }
}
