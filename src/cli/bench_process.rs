//! The process a benchmark measures: the engine or a null server, started as a child `tributary`
//! process so that its CPU time and memory are its own (the load generator's are not mixed in),
//! read from `/proc/<pid>`.
//!
//! CPU time is what a benchmark reports first: user + system time of every thread of the
//! process, background ones included, over the measured window and until the process goes idle
//! after it (work a store defers is still work for the messages that caused it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The config of an engine a benchmark starts: its store in `data`, HTTP on a free loopback
/// port without rate limits, warnings only, the mappings of `mappings`, then `rest` (clients,
/// feeds, jobs).
pub(super) fn engine_config(data: &Path, mappings: &Path, rest: &str) -> Result<String, String> {
    let mappings = std::path::absolute(mappings).map_err(|e| format!("{}: {e}", mappings.display()))?;
    Ok(format!(
        "[store]\ndata_dir = {:?}\n[http]\nbind = \"127.0.0.1:0\"\n[http.rate_limit]\nenabled = false\n\
         [log]\nlevel = \"warn\"\n[mappings]\ndir = {:?}\n{rest}",
        data.display().to_string(),
        mappings.display().to_string(),
    ))
}

/// An `[[api_clients]]` entry: `name`, the hash of `key`, one `role`.
pub(super) fn client_toml(name: &str, key: &str, role: &str) -> String {
    format!(
        "[[api_clients]]\nname = \"{name}\"\nkey_sha256 = \"{}\"\nroles = [\"{role}\"]\n",
        crate::domain::identity::secrets::sha256_hex(key)
    )
}

/// A running child process under measurement.
pub(super) struct Measured {
    child: Child,
    pid: u32,
    /// Its MLLP listeners, by channel name (`null` for the null server).
    pub mllp: Vec<(String, SocketAddr)>,
    /// Its HTTP listener, when it has one.
    pub http: Option<SocketAddr>,
    /// The folder it owns (config and store), removed at stop.
    dir: Option<PathBuf>,
}

/// CPU time used so far, and the thread that used it, by thread name.
#[derive(Debug, Clone, Default)]
pub(super) struct CpuSample {
    pub total: Duration,
    pub by_thread: BTreeMap<String, Duration>,
}

impl Measured {
    /// Starts `tributary serve` on `config` (written to `<dir>/bench.toml`; the store in `dir`
    /// too, removed at stop) and waits until it is ready.
    pub async fn engine(config: &str, dir: PathBuf) -> Result<Measured, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let config_path = dir.join("bench.toml");
        std::fs::write(&config_path, config).map_err(|e| format!("{}: {e}", config_path.display()))?;
        let mut command = Command::new(current_exe()?);
        command.arg("serve").arg("--config").arg(&config_path);
        Measured::spawn(command, Some(dir)).await
    }

    /// Starts a null MLLP server (`tributary bench null-mllp`): it answers every frame AA without
    /// reading it, this machine's ceiling.
    pub async fn null_mllp() -> Result<Measured, String> {
        let mut command = Command::new(current_exe()?);
        command.args(["bench", "null-mllp"]);
        Measured::spawn(command, None).await
    }

    async fn spawn(mut command: Command, dir: Option<PathBuf>) -> Result<Measured, String> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start the engine: {e}"))?;
        let pid = child.id().ok_or("the engine exited at once")?;
        let stdout = child.stdout.take().ok_or("no standard output")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut mllp, mut http) = (vec![], None);
        let ready = async {
            while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
                if line == "ready" {
                    return Ok(());
                }
                let Some(rest) = line.strip_prefix("listening ") else {
                    continue;
                };
                let mut channel = "null".to_string();
                for word in rest.split(' ') {
                    if let Some(name) = word.strip_prefix("channel=") {
                        channel = name.to_string();
                    } else if let Some(addr) = word.strip_prefix("mllp=") {
                        mllp.push((channel.clone(), addr.parse().map_err(|e| format!("{addr}: {e}"))?));
                    } else if let Some(addr) = word.strip_prefix("http=") {
                        http = Some(addr.parse().map_err(|e| format!("{addr}: {e}"))?);
                    }
                }
            }
            Err("the engine stopped before it was ready (its errors are above)".to_string())
        };
        tokio::time::timeout(Duration::from_secs(60), ready)
            .await
            .map_err(|_| "the engine was not ready within 60 s".to_string())??;
        // Whatever it prints later is not read: let it go nowhere rather than fill the pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Measured {
            child,
            pid,
            mllp,
            http,
            dir,
        })
    }

    /// The process's CPU time so far, in all and by thread name (numbered thread pools, such as
    /// `tokio-runtime-worker-3`, are summed under their name without the number).
    pub fn cpu(&self) -> CpuSample {
        cpu_of(self.pid)
    }

    /// CPU time once the process has gone idle: sampled every 100 ms until two samples in a row
    /// are equal (at most 30 s), so work it deferred is counted.
    pub async fn cpu_when_idle(&self) -> CpuSample {
        let mut last = self.cpu();
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.cpu();
            if now.total == last.total {
                return now;
            }
            last = now;
        }
        last
    }

    /// Resident memory now, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        rss_of(self.pid)
    }

    /// Stops it (SIGTERM, then SIGKILL after 20 s) and removes its folder.
    pub async fn stop(mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// CPU time of a process by pid (also for an engine the benchmark did not start): the total from
/// `/proc/<pid>/stat` (threads that ended included), the split from each live thread's.
pub(super) fn cpu_of(pid: u32) -> CpuSample {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let mut sample = CpuSample {
        total: stat_cpu(&proc_dir.join("stat"))
            .map(|(_, used)| used)
            .unwrap_or_default(),
        by_thread: BTreeMap::new(),
    };
    let Ok(tasks) = std::fs::read_dir(proc_dir.join("task")) else {
        return sample;
    };
    for task in tasks.flatten() {
        if let Some((name, used)) = stat_cpu(&task.path().join("stat")) {
            // Numbered pools (`worker-3`) are summed under one name.
            let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
            *sample.by_thread.entry(name.to_string()).or_default() += used;
        }
    }
    sample
}

/// The name and user + system time in a `stat` file of proc(5).
fn stat_cpu(path: &Path) -> Option<(String, Duration)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // `pid (comm) state ...`: the name may hold spaces, so split after its closing bracket.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // Fields after the name start at 3 (state); utime is 14 and stime 15, in clock ticks.
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    let used = Duration::from_nanos((ticks(14) + ticks(15)) * 1_000_000_000 / per_second);
    Some((stat[open + 1..close].to_string(), used))
}

impl CpuSample {
    /// What was used between `earlier` and this sample.
    pub fn since(&self, earlier: &CpuSample) -> CpuSample {
        CpuSample {
            total: self.total.saturating_sub(earlier.total),
            by_thread: self
                .by_thread
                .iter()
                .map(|(name, used)| {
                    let before = earlier.by_thread.get(name).copied().unwrap_or_default();
                    (name.clone(), used.saturating_sub(before))
                })
                .filter(|(_, used)| !used.is_zero())
                .collect(),
        }
    }
}

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn current_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the tributary binary: {e}"))
}

/// Resident memory of a process by pid, in bytes.
pub(super) fn rss_of(pid: u32) -> u64 {
    proc_status_kb(pid, "VmRSS:") * 1024
}
