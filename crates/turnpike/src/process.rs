//! The process around the server: pid file, node id, signals, and the `stop`/`health`
//! commands that act on a running instance.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rustix::process::{kill_process, test_kill_process, Pid, Signal};

use crate::config::Config;

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether the process exists and is not a zombie waiting to be reaped.
fn alive(pid: i32) -> bool {
    if Pid::from_raw(pid).is_none_or(|p| test_kill_process(p).is_err()) {
        return false;
    }
    // /proc/<pid>/stat: "pid (comm) STATE ..."
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')).unwrap_or(true),
        Err(_) => true,
    }
}

/// The pid file of a running instance; removed when dropped.
pub(crate) struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        if let Some(pid) = read_pid(path) {
            if alive(pid) && pid != std::process::id() as i32 {
                let prefix = path.parent().map(|p| p.display().to_string()).unwrap_or_default();
                bail!("Turnpike is already running in {prefix} (pid {pid})");
            }
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { path: path.to_owned() })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The node id: `node_id` if configured, else the one stored in the prefix (created once).
pub(crate) fn node_id(cfg: &Config) -> Result<String> {
    if let Some(id) = &cfg.node_id {
        if uuid::Uuid::parse_str(id).is_err() {
            bail!("node_id must be a valid UUID, got '{id}'");
        }
        return Ok(id.to_ascii_lowercase());
    }
    let path = cfg.prefix.join("node.id");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if uuid::Uuid::parse_str(existing).is_ok() {
            return Ok(existing.to_owned());
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, &id).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

#[derive(Clone, Copy)]
pub(crate) enum Graceful {
    Term,
    Quit,
}

/// `turnpike stop` / `quit`: signals the instance of this prefix and waits for it to exit.
pub(crate) fn stop(cfg: &Config, how: Graceful) -> Result<ExitCode> {
    let path = cfg.pid_file();
    let Some(pid) = read_pid(&path).filter(|p| alive(*p)) else {
        bail!("Turnpike is not running at {}", cfg.prefix.display());
    };
    let signal = match how {
        Graceful::Term => Signal::TERM,
        Graceful::Quit => Signal::QUIT,
    };
    let p = Pid::from_raw(pid).context("invalid pid")?;
    kill_process(p, signal).with_context(|| format!("cannot signal process {pid}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while alive(pid) {
        if Instant::now() > deadline {
            bail!("Turnpike (pid {pid}) did not stop within 60 seconds");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("Turnpike stopped");
    Ok(ExitCode::SUCCESS)
}

/// `turnpike health`.
pub(crate) fn health(cfg: &Config) -> Result<ExitCode> {
    match read_pid(&cfg.pid_file()).filter(|p| alive(*p)) {
        Some(_) => {
            println!("turnpike.......running\n\nTurnpike is healthy at {}", cfg.prefix.display());
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!(
                "turnpike.......not running\n\nTurnpike is not running at {}",
                cfg.prefix.display()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Waits for SIGTERM, SIGINT or SIGQUIT; returns its name.
pub(crate) async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut quit = signal(SignalKind::quit()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    tokio::select! {
        _ = recv(&mut term) => "SIGTERM",
        _ = recv(&mut quit) => "SIGQUIT",
        _ = recv(&mut int) => "SIGINT",
    }
}
