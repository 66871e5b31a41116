//! The file-descriptor budget: how many connections each listener may hold so that the process
//! never runs out of descriptors, and the HL7 feeds always keep room whatever HTTP clients do.
//!
//! Every open connection costs one descriptor. Without caps, enough idle HTTP connections use up
//! the process's limit, and from then on nothing can be opened: not a new MLLP connection, not an
//! outbound one, not a store file. So at start the soft limit is raised to the hard one, and the
//! connections are shared out: each MLLP listener's cap, a fixed reserve for everything else
//! (store files, outbound deliveries, logs), and the HTTP cap (by default what remains, at most
//! half the limit). The sum must fit under the limit, or the engine does not start.

use crate::config::Config;

/// Descriptors kept for all that is not an inbound connection: the store's files, one connection
/// per outbound destination and its HTTP client pools, the journal segments, stdio.
pub(crate) const RESERVE: u64 = 256;

/// How the descriptors are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdBudget {
    /// The process's soft limit on open files (after raising it).
    pub limit: u64,
    /// The HTTP listener's connection cap.
    pub http: usize,
    /// The sum of every MLLP listener's cap.
    pub mllp: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum FdBudgetError {
    #[error(
        "the connection caps do not fit the file-descriptor limit {limit}: HTTP {http} + MLLP {mllp} + \
         reserve {RESERVE} = {total}; lower http.max_connections or channels[].source.max_connections, \
         or raise the limit (ulimit -n)"
    )]
    TooMany {
        limit: u64,
        http: u64,
        mllp: u64,
        total: u64,
    },
}

/// Raises the soft limit on open files to the hard limit and returns the limit then in force.
/// A failure to read or raise it leaves the limit as it was (and is logged): the budget is then
/// planned for the lower figure.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    // `None` is "unlimited"; Linux never reports that for files, but plan as if it were large.
    let soft = current.current.unwrap_or(u64::from(u32::MAX));
    let Some(hard) = current.maximum else {
        return soft;
    };
    if soft >= hard {
        return soft;
    }
    let raised = rustix::process::Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => hard,
        Err(error) => {
            tracing::warn!(%error, soft, hard, "could not raise the open-file limit; keeping it");
            soft
        }
    }
}

/// Shares `limit` descriptors out among the listeners `config` names (one per distinct MLLP
/// address, as the engine starts them) and the HTTP API.
pub(crate) fn plan(config: &Config, limit: u64) -> Result<FdBudget, FdBudgetError> {
    let mut addresses = vec![];
    let mut mllp: u64 = 0;
    for channel in &config.channels {
        let addr = channel.source.bind_addr();
        if !addresses.contains(&addr) {
            addresses.push(addr);
            mllp = mllp.saturating_add(*channel.source.max_connections.get_ref() as u64);
        }
    }
    let left = limit.saturating_sub(RESERVE).saturating_sub(mllp);
    let http = match &config.http.max_connections {
        Some(cap) => *cap.get_ref() as u64,
        // Half the limit at most: HTTP clients are many and anonymous, and half is plenty.
        None => left.min(limit / 2),
    };
    let total = http.saturating_add(mllp).saturating_add(RESERVE);
    if http == 0 || total > limit {
        return Err(FdBudgetError::TooMany {
            limit,
            http,
            mllp,
            total,
        });
    }
    Ok(FdBudget {
        limit,
        http: usize::try_from(http).unwrap_or(usize::MAX),
        mllp: usize::try_from(mllp).unwrap_or(usize::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(http: &str, sources: &[(&str, &str)]) -> Config {
        let mut text = format!("[http]\nbind = \"127.0.0.1:0\"\n{http}\n");
        for (i, (bind, extra)) in sources.iter().enumerate() {
            text.push_str(&format!(
                "[[channels]]\nname = \"c{i}\"\nmapping = \"m\"\n[channels.source]\nkind = \"mllp\"\nbind = \"{bind}\"\n{extra}\n"
            ));
        }
        Config::parse(&text, "t.toml").unwrap()
    }

    #[test]
    fn the_http_cap_defaults_to_half_the_limit_and_mllp_keeps_its_room() {
        let two = config("", &[("127.0.0.1:2575", ""), ("127.0.0.1:2576", "")]);
        assert_eq!(
            plan(&two, 20_000).unwrap(),
            FdBudget {
                limit: 20_000,
                http: 10_000,
                mllp: 200
            }
        );
        // A small limit: still half, as the listeners and the reserve fit in the other half.
        let budget = plan(&two, 1024).unwrap();
        assert_eq!(budget.http, 512);
        // Listeners with more room: HTTP gets what they and the reserve leave.
        let wide = config("", &[("127.0.0.1:2575", "max_connections = 400")]);
        assert_eq!(plan(&wide, 1024).unwrap().http, 1024 - 256 - 400);
        assert!(budget.http as u64 + budget.mllp as u64 + RESERVE <= budget.limit);
    }

    #[test]
    fn channels_sharing_a_listener_count_once() {
        let shared = config("", &[("127.0.0.1:2575", ""), ("127.0.0.1:2575", "")]);
        assert_eq!(plan(&shared, 20_000).unwrap().mllp, 100);
    }

    #[test]
    fn caps_over_the_limit_are_refused() {
        let big = config("max_connections = 19900", &[("127.0.0.1:2575", "")]);
        let error = plan(&big, 20_000).unwrap_err();
        assert!(error.to_string().contains("20256"), "{error}");
        let crowded = config("", &[("127.0.0.1:2575", "max_connections = 900")]);
        assert!(plan(&crowded, 1024).is_err());
    }
}
