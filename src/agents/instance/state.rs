//! What the agent remembers about an instance on this node, in
//! /run/haven/instance/<name>/state: the instance's identity (the node's
//! registry of instances, read by `haven instance list`), whether it is
//! started and promoted, and per service the process that runs it and how
//! to stop it. stop works from this record alone (the instance file may
//! be on a volume that is already gone), and trusts the cgroup over pids.

use super::config::Config;
use super::error::InstanceError;
use super::file::{InstanceFile, Role, Service};
use super::process::Ident;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceState {
    pub name: String,
    pub role: Role,
    pub optional: bool,
    /// The running process; None when not started.
    pub ident: Option<Ident>,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
}

impl ServiceState {
    pub fn of(s: &Service) -> ServiceState {
        ServiceState {
            name: s.name.clone(),
            role: s.role,
            optional: s.optional,
            ident: None,
            stop_signal: s.stop_signal,
            stop_timeout: s.stop_timeout,
        }
    }

    pub fn alive(&self) -> bool {
        self.ident.is_some_and(|i| i.alive())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub name: String,
    /// The Pacemaker resource (OCF_RESOURCE_INSTANCE) that manages it.
    pub resource: String,
    pub hostname: String,
    pub ip: String,
    pub datadir: String,
    pub config: String,
    pub cgroup: String,
    pub running: bool,
    pub promoted: bool,
    /// Seconds since the epoch of the last start.
    pub started: u64,
    pub services: Vec<ServiceState>,
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

impl State {
    /// A record of the instance as configured, not started.
    pub fn new(cfg: &Config, resource: &str, file: Option<&InstanceFile>, cgroup: &Path) -> State {
        let services = file.map(|f| f.services.iter().map(ServiceState::of).collect()).unwrap_or_default();
        State {
            name: cfg.name.clone(),
            resource: one_line(resource),
            hostname: cfg.hostname.clone(),
            ip: cfg.ip.to_string(),
            datadir: cfg.datadir.clone(),
            config: one_line(&cfg.config.display().to_string()),
            cgroup: one_line(&cgroup.display().to_string()),
            running: false,
            promoted: false,
            started: 0,
            services,
        }
    }

    pub fn service_mut(&mut self, name: &str) -> Option<&mut ServiceState> {
        self.services.iter_mut().find(|s| s.name == name)
    }

    /// The services that should be running now, in start order.
    pub fn expected(&self) -> impl Iterator<Item = &ServiceState> {
        self.services.iter().filter(move |s| s.role == Role::Any || self.promoted)
    }

    /// The order to stop in: promoted-only services (started last, at
    /// promote) first, each group in reverse file order.
    pub fn stop_order(&self) -> Vec<ServiceState> {
        let mut v: Vec<ServiceState> =
            self.services.iter().filter(|s| s.role == Role::Promoted).rev().cloned().collect();
        v.extend(self.services.iter().filter(|s| s.role == Role::Any).rev().cloned());
        v
    }

    pub fn render(&self) -> String {
        let mut s = String::from("# haven instance state: written by the instance agent; do not edit\n");
        for (k, v) in [
            ("name", self.name.as_str()),
            ("resource", &self.resource),
            ("hostname", &self.hostname),
            ("ip", &self.ip),
            ("datadir", &self.datadir),
            ("config", &self.config),
            ("cgroup", &self.cgroup),
        ] {
            s.push_str(&format!("{k}={v}\n"));
        }
        s.push_str(&format!("running={}\npromoted={}\nstarted={}\n", self.running, self.promoted, self.started));
        for svc in &self.services {
            let (pid, start) = svc.ident.map_or((0, 0), |i| (i.pid, i.start));
            s.push_str(&format!(
                "service={} {} {} {pid} {start} {} {}\n",
                svc.name,
                svc.role.as_str(),
                if svc.optional { "optional" } else { "required" },
                svc.stop_signal,
                svc.stop_timeout.as_millis()
            ));
        }
        s
    }

    /// Parse a record; None when it is not one (a torn or foreign file).
    pub fn parse(text: &str) -> Option<State> {
        let mut st = State {
            name: String::new(),
            resource: String::new(),
            hostname: String::new(),
            ip: String::new(),
            datadir: String::new(),
            config: String::new(),
            cgroup: String::new(),
            running: false,
            promoted: false,
            started: 0,
            services: Vec::new(),
        };
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (k, v) = line.split_once('=')?;
            match k {
                "name" => st.name = v.to_string(),
                "resource" => st.resource = v.to_string(),
                "hostname" => st.hostname = v.to_string(),
                "ip" => st.ip = v.to_string(),
                "datadir" => st.datadir = v.to_string(),
                "config" => st.config = v.to_string(),
                "cgroup" => st.cgroup = v.to_string(),
                "running" => st.running = v == "true",
                "promoted" => st.promoted = v == "true",
                "started" => st.started = v.parse().ok()?,
                "service" => {
                    let f: Vec<&str> = v.split(' ').collect();
                    if f.len() != 7 {
                        return None;
                    }
                    let pid: i32 = f[3].parse().ok()?;
                    let start: u64 = f[4].parse().ok()?;
                    st.services.push(ServiceState {
                        name: f[0].to_string(),
                        role: if f[1] == "promoted" { Role::Promoted } else { Role::Any },
                        optional: f[2] == "optional",
                        ident: (pid > 0).then_some(Ident { pid, start }),
                        stop_signal: f[5].parse().ok()?,
                        stop_timeout: Duration::from_millis(f[6].parse().ok()?),
                    });
                }
                _ => {}
            }
        }
        (!st.name.is_empty()).then_some(st)
    }
}

pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join("state")
}

/// The record in `run_dir`, if there is one.
pub fn read(run_dir: &Path) -> Result<Option<State>, InstanceError> {
    let p = path(run_dir);
    match std::fs::read_to_string(&p) {
        Ok(t) => Ok(State::parse(&t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InstanceError::Io(crate::error::IoError::new("read", p.display().to_string(), source))),
    }
}

/// Write the record atomically (a reader sees the old or the new one).
pub fn write(run_dir: &Path, st: &State) -> Result<(), InstanceError> {
    let err = |op, p: &Path| {
        let path = p.display().to_string();
        move |source| InstanceError::Io(crate::error::IoError::new(op, path, source))
    };
    std::fs::create_dir_all(run_dir).map_err(err("create", run_dir))?;
    let p = path(run_dir);
    let tmp = run_dir.join(".state.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err("create", &tmp))?;
    f.write_all(st.render().as_bytes()).map_err(err("write", &tmp))?;
    std::fs::rename(&tmp, &p).map_err(err("rename", &p))
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let st = State {
            name: "web1".into(),
            resource: "web1:0".into(),
            hostname: "web1.example.org".into(),
            ip: "2001:db8::80".into(),
            datadir: "/srv/web1".into(),
            config: "/srv/web1/instance.toml".into(),
            cgroup: "/sys/fs/cgroup/haven/instance/web1".into(),
            running: true,
            promoted: true,
            started: 1_700_000_000,
            services: vec![
                ServiceState {
                    name: "web".into(),
                    role: Role::Any,
                    optional: false,
                    ident: Some(Ident { pid: 1234, start: 98765 }),
                    stop_signal: 15,
                    stop_timeout: Duration::from_secs(10),
                },
                ServiceState {
                    name: "panel".into(),
                    role: Role::Promoted,
                    optional: true,
                    ident: None,
                    stop_signal: 2,
                    stop_timeout: Duration::from_millis(1500),
                },
            ],
        };
        assert_eq!(State::parse(&st.render()), Some(st.clone()));
        let order: Vec<String> = st.stop_order().into_iter().map(|s| s.name).collect();
        assert_eq!(order, ["panel", "web"]);
        assert!(State::parse("garbage").is_none());
    }
}
