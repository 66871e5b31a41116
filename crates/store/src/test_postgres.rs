//! A throwaway PostgreSQL server for tests (feature `test-postgres`): `initdb` into a temp
//! folder, the server on a free loopback port, a fresh database per test.
//!
//! It needs PostgreSQL's server programs (Debian's `postgresql`; `.ci/run` installs it when
//! absent), found on PATH or under `/usr/lib/postgresql/<version>/bin`. Run as root, the server
//! runs as the `postgres` user, as PostgreSQL requires. It is started through `setpriv
//! --pdeathsig`, from a thread that lives as long as the test process, so it stops when the
//! tests end however they end; a folder left by an earlier run that died is removed.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The user the tests connect as (trust authentication on loopback).
pub const USER: &str = "tributary";

/// A running test server. Dropping it stops it and removes its folder.
pub struct TestServer {
    /// Its loopback port.
    pub port: u16,
    dir: PathBuf,
    running: Mutex<Option<u32>>,
}

/// What the keeper thread is asked to do: start a server (the answer is its pid), or stop one.
enum Order {
    Start(PathBuf, u16, mpsc::Sender<Result<u32, String>>),
    Stop(u32, mpsc::Sender<()>),
}

/// The server's children are started by one thread that never ends, as `--pdeathsig` follows the
/// thread that started them, not the process.
fn keeper() -> &'static Mutex<mpsc::Sender<Order>> {
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Order>>> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let (orders, inbox) = mpsc::channel::<Order>();
        std::thread::Builder::new()
            .name("test-postgres".into())
            .spawn(move || {
                let mut children: Vec<Child> = vec![];
                for order in inbox {
                    match order {
                        Order::Start(dir, port, answer) => {
                            let started = spawn_server(&dir, port).map(|child| {
                                let pid = child.id();
                                children.push(child);
                                pid
                            });
                            let _ = answer.send(started);
                        }
                        Order::Stop(pid, answer) => {
                            if let Some(at) = children.iter().position(|c| c.id() == pid) {
                                let mut child = children.remove(at);
                                let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
                                let _ = child.wait();
                            }
                            let _ = answer.send(());
                        }
                    }
                }
                // The sender lives in a static: this thread ends with the process.
            })
            .expect("the test-postgres thread starts");
        Mutex::new(orders)
    })
}

/// The folder of PostgreSQL's server programs.
fn bin_dir() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
        .unwrap_or_default();
    debian.sort();
    debian.reverse();
    on_path
        .into_iter()
        .chain(debian)
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
        .ok_or_else(|| {
            "PostgreSQL's server programs (initdb, postgres) were not found on PATH or under \
             /usr/lib/postgresql: install them (Debian: apt-get install postgresql; .ci/run does)"
                .to_string()
        })
}

/// The uid and gid of the `postgres` user when running as root (PostgreSQL refuses root).
fn server_user() -> Result<Option<(u32, u32)>, String> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres") && fields.len() > 3)
        .and_then(|fields| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
        .map(Some)
        .ok_or_else(|| "running as root, and there is no `postgres` user to run the server as".into())
}

fn as_server_user(command: &mut Command) -> Result<(), String> {
    if let Some((uid, gid)) = server_user()? {
        command.uid(uid).gid(gid);
    }
    Ok(())
}

fn spawn_server(dir: &Path, port: u16) -> Result<Child, String> {
    let bin = bin_dir()?;
    let mut command = Command::new("setpriv");
    command
        .args(["--pdeathsig", "INT", "--"])
        .arg(bin.join("postgres"))
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("server.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        );
    as_server_user(&mut command)?;
    command.spawn().map_err(|e| format!("start postgres: {e}"))
}

/// Removes the folders of earlier test processes that are gone.
fn remove_stale(base: &Path) {
    for dir in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let pid = dir
            .file_name()
            .to_string_lossy()
            .split('-')
            .next()
            .map(str::to_owned);
        if let Some(pid) = pid
            && !Path::new("/proc").join(&pid).exists()
        {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }
}

fn free_port() -> Result<u16, String> {
    let socket = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl TestServer {
    /// The server shared by every test of this process.
    pub fn shared() -> &'static TestServer {
        static SHARED: OnceLock<TestServer> = OnceLock::new();
        SHARED.get_or_init(|| TestServer::start().unwrap_or_else(|e| panic!("{e}")))
    }

    /// A server of its own (a test that stops and restarts it).
    pub fn start() -> Result<TestServer, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join("tributary-test-postgres");
        std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        remove_stale(&base);
        let dir = base.join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some((uid, gid)) = server_user()? {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let mut initdb = Command::new(bin_dir()?.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_server_user(&mut initdb)?;
        let done = initdb.output().map_err(|e| format!("initdb: {e}"))?;
        if !done.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&done.stderr)
            ));
        }
        let server = TestServer {
            port: free_port()?,
            dir,
            running: Mutex::new(None),
        };
        server.resume()?;
        Ok(server)
    }

    /// Starts the server again after [`TestServer::stop`], on the same port and data.
    pub fn resume(&self) -> Result<(), String> {
        let (answer, answered) = mpsc::channel();
        keeper()
            .lock()
            .map_err(|e| e.to_string())?
            .send(Order::Start(self.dir.clone(), self.port, answer))
            .map_err(|e| e.to_string())?;
        let pid = answered.recv().map_err(|e| e.to_string())??;
        *self.running.lock().map_err(|e| e.to_string())? = Some(pid);
        let deadline = Instant::now() + Duration::from_secs(30);
        // Listening is not enough: it refuses sessions while it starts up.
        while self.run_sql("postgres", "SELECT 1").is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "the test server did not listen within 30 s; see {}",
                    self.dir.join("server.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the server (a fast shutdown: connections are cut, work in flight rolled back).
    pub fn stop(&self) {
        let Some(pid) = self.running.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        let (answer, answered) = mpsc::channel();
        if let Ok(keeper) = keeper().lock()
            && keeper.send(Order::Stop(pid, answer)).is_ok()
        {
            let _ = answered.recv();
        }
    }

    /// A URL for database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` in database `name`, on a thread of its own: the caller may be inside a runtime,
    /// where another cannot block.
    pub fn run_sql(&self, name: &str, sql: &str) -> Result<(), String> {
        let (url, sql) = (self.url(name), sql.to_string());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(connection);
                client.batch_execute(&sql).await.map_err(|e| e.to_string())
            })
        })
        .join()
        .map_err(|_| "the SQL thread panicked".to_string())?
    }

    /// Creates a new empty database and returns its URL.
    pub fn new_database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.run_sql("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(&name)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
