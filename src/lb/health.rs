//! Health of every real server: checks run concurrently on a bounded pool
//! of threads (a slow server holds one worker until its timeout, never the
//! others), results come back on a channel, and a real server goes down
//! after `failurecount` failed checks and up after one good check.

use super::config::{CheckType, Config};
use super::table::Health;
use crate::probe::Probe;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Workers at most: enough for thousands of real servers per interval on
/// loopback-fast networks, small enough for 64 KiB stacks to stay cheap.
pub const MAX_WORKERS: usize = 512;

#[derive(Clone, Debug)]
pub struct RealState {
    pub up: bool,
    pub failures: u32,
    pub checks: u64,
    pub last_check: Option<SystemTime>,
    pub last_error: Option<String>,
    pub in_flight: bool,
    pub next_due: Instant,
}

impl RealState {
    fn new() -> RealState {
        // Down until the first check passes: never send clients to a real
        // server nobody has looked at.
        RealState {
            up: false,
            failures: 0,
            checks: 0,
            last_check: None,
            last_error: None,
            in_flight: false,
            next_due: Instant::now(),
        }
    }
}

struct Job {
    key: (usize, usize),
    generation: u64,
    probe: Option<Probe>,
    always_up: bool,
    /// A file in maintenancedir names this real server: down, unchecked.
    maintenance: bool,
    addr: SocketAddr,
    timeout: Duration,
}

pub struct Outcome {
    key: (usize, usize),
    generation: u64,
    result: Result<(), String>,
}

/// Identity of a real server across reloads.
fn identity(cfg: &Config, v: usize, r: usize) -> (SocketAddr, SocketAddr) {
    (cfg.virtuals[v].addr, cfg.virtuals[v].reals[r].addr)
}

/// ldirectord's maintenance files: `ip:port` or `ip` in the directory.
fn in_maintenance(dir: &std::path::Path, addr: SocketAddr) -> bool {
    let ip = match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => a.ip().to_string(),
    };
    dir.join(format!("{ip}:{}", addr.port())).exists() || dir.join(&ip).exists()
}

pub struct Checker {
    pub states: HashMap<(usize, usize), RealState>,
    jobs: Sender<Job>,
    results: Receiver<Outcome>,
    /// Bumped on reload: results of checks started before are dropped.
    generation: u64,
}

/// A change of a real server's health, for the log.
pub struct Transition {
    pub virtual_addr: SocketAddr,
    pub real: SocketAddr,
    pub up: bool,
    pub why: String,
}

impl Health for Checker {
    fn is_up(&self, v: usize, r: usize) -> bool {
        self.states.get(&(v, r)).is_some_and(|s| s.up)
    }
}

impl Checker {
    pub fn new(cfg: &Config) -> Checker {
        // Hundreds of threads would each get a malloc arena of their own
        // (tens of MiB resident for nothing): two are plenty for checks.
        // SAFETY: mallopt only tunes the allocator; called before the
        // workers start.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        let total: usize = cfg.virtuals.iter().map(|v| v.reals.len()).sum();
        let workers = total.clamp(1, MAX_WORKERS);
        let (jobs, job_rx) = channel::<Job>();
        let (result_tx, results) = channel::<Outcome>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for _ in 0..workers {
            let rx = job_rx.clone();
            let tx = result_tx.clone();
            let spawned =
                std::thread::Builder::new().name("haven-check".into()).stack_size(128 * 1024).spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let result = match (&job.probe, job.always_up) {
                        _ if job.maintenance => Err("in maintenance (a file in maintenancedir names it)".to_string()),
                        (_, true) => Ok(()),
                        (None, false) => Err("checktype = off".to_string()),
                        (Some(p), false) => p.run(job.addr, job.timeout).map_err(|e| e.to_string()),
                    };
                    if tx.send(Outcome { key: job.key, generation: job.generation, result }).is_err() {
                        return;
                    }
                });
            if spawned.is_err() {
                break; // fewer workers; checks queue up but still run
            }
        }
        let mut c = Checker { states: HashMap::new(), jobs, results, generation: 0 };
        c.reset(cfg, None);
        c
    }

    /// Fit the state to a (new) configuration, keeping what is known about
    /// real servers that are still configured.
    pub fn reset(&mut self, cfg: &Config, old: Option<&Config>) {
        self.generation += 1;
        let mut kept: HashMap<(SocketAddr, SocketAddr), RealState> = HashMap::new();
        if let Some(old) = old {
            for (&(v, r), s) in &self.states {
                if v < old.virtuals.len() && r < old.virtuals[v].reals.len() {
                    let mut s = s.clone();
                    s.in_flight = false;
                    kept.insert(identity(old, v, r), s);
                }
            }
        }
        self.states.clear();
        for (v, virt) in cfg.virtuals.iter().enumerate() {
            for r in 0..virt.reals.len() {
                let s = kept.remove(&identity(cfg, v, r)).unwrap_or_else(RealState::new);
                self.states.insert((v, r), s);
            }
        }
    }

    /// Queue every check that is due.
    pub fn dispatch(&mut self, cfg: &Config) {
        let now = Instant::now();
        for (&(v, r), s) in self.states.iter_mut() {
            if s.in_flight || s.next_due > now {
                continue;
            }
            let virt = &cfg.virtuals[v];
            let real = &virt.reals[r];
            let probe = virt.probe_for(real, s.checks);
            let timeout = probe.as_ref().map_or(virt.checktimeout, |p| virt.timeout_for(p));
            let job = Job {
                key: (v, r),
                generation: self.generation,
                always_up: virt.checktype == CheckType::On,
                maintenance: cfg.maintenancedir.as_deref().is_some_and(|d| in_maintenance(d, real.addr)),
                probe,
                addr: virt.check_addr(real),
                timeout,
            };
            if self.jobs.send(job).is_ok() {
                s.in_flight = true;
                s.next_due = now + virt.checkinterval;
            }
        }
    }

    /// Wait up to `wait` for results; apply them. Returns the transitions.
    pub fn collect(&mut self, cfg: &Config, wait: Duration) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut first = true;
        loop {
            let next = if first { self.results.recv_timeout(wait).ok() } else { self.results.try_recv().ok() };
            first = false;
            let Some(o) = next else { break };
            if o.generation != self.generation {
                continue;
            }
            let Some(s) = self.states.get_mut(&o.key) else { continue };
            s.in_flight = false;
            s.checks += 1;
            s.last_check = Some(SystemTime::now());
            let (v, r) = o.key;
            let virt = &cfg.virtuals[v];
            match o.result {
                Ok(()) => {
                    s.failures = 0;
                    s.last_error = None;
                    if !s.up {
                        s.up = true;
                        out.push(Transition {
                            virtual_addr: virt.addr,
                            real: virt.reals[r].addr,
                            up: true,
                            why: "check passed".into(),
                        });
                    }
                }
                Err(e) => {
                    s.failures += 1;
                    s.last_error = Some(e.clone());
                    let first_check = s.checks == 1;
                    if s.up && s.failures >= virt.failurecount {
                        s.up = false;
                        out.push(Transition { virtual_addr: virt.addr, real: virt.reals[r].addr, up: false, why: e });
                    } else if first_check {
                        // Never up yet: say why once.
                        out.push(Transition { virtual_addr: virt.addr, real: virt.reals[r].addr, up: false, why: e });
                    }
                }
            }
        }
        out
    }

    /// True when every real server has been checked at least once.
    pub fn all_checked(&self) -> bool {
        self.states.values().all(|s| s.checks > 0)
    }

    pub fn pending(&self) -> usize {
        self.states.values().filter(|s| s.in_flight).count()
    }
}
