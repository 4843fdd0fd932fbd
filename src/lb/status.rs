//! The daemon's status file (/run/haven/director/<table>/status): written
//! atomically by the daemon after every change, read by `haven director
//! status` and by the OCF agent's monitor (which must not fork).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub const RUN_DIR: &str = "/run/haven/director";

pub fn state_dir(table: &str) -> PathBuf {
    Path::new(RUN_DIR).join(table)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RealLine {
    pub vip: String,
    pub real: String,
    pub method: String,
    pub weight: u32,
    pub active_weight: u32,
    pub up: bool,
    pub failures: u32,
    pub last_check: u64,
    pub last_error: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceLine {
    pub label: String,
    pub scheduler: String,
    pub persistent: bool,
    pub on_fallback: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub fields: BTreeMap<String, String>,
    pub services: Vec<ServiceLine>,
    pub reals: Vec<RealLine>,
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn clean(s: &str) -> String {
    s.replace(['\t', '\n'], " ")
}

impl Status {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }

    pub fn set(&mut self, k: &str, v: impl ToString) {
        self.fields.insert(k.to_string(), clean(&v.to_string()));
    }

    pub fn render(&self) -> String {
        let mut out = String::from("haven-director-status 1\n");
        for (k, v) in &self.fields {
            out.push_str(&format!("{k}\t{v}\n"));
        }
        for s in &self.services {
            out.push_str(&format!(
                "service\t{}\t{}\t{}\t{}\n",
                clean(&s.label),
                s.scheduler,
                u8::from(s.persistent),
                u8::from(s.on_fallback)
            ));
        }
        for r in &self.reals {
            out.push_str(&format!(
                "real\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                r.vip,
                r.real,
                r.method,
                r.weight,
                r.active_weight,
                if r.up { "up" } else { "down" },
                r.failures,
                r.last_check,
                clean(&r.last_error)
            ));
        }
        out
    }

    pub fn parse(text: &str) -> Option<Status> {
        let mut lines = text.lines();
        if lines.next()? != "haven-director-status 1" {
            return None;
        }
        let mut st = Status::default();
        for line in lines {
            let f: Vec<&str> = line.split('\t').collect();
            match f.first().copied() {
                Some("service") if f.len() >= 5 => st.services.push(ServiceLine {
                    label: f[1].into(),
                    scheduler: f[2].into(),
                    persistent: f[3] == "1",
                    on_fallback: f[4] == "1",
                }),
                Some("real") if f.len() >= 10 => st.reals.push(RealLine {
                    vip: f[1].into(),
                    real: f[2].into(),
                    method: f[3].into(),
                    weight: f[4].parse().unwrap_or(0),
                    active_weight: f[5].parse().unwrap_or(0),
                    up: f[6] == "up",
                    failures: f[7].parse().unwrap_or(0),
                    last_check: f[8].parse().unwrap_or(0),
                    last_error: f[9].into(),
                }),
                Some(k) if f.len() == 2 => {
                    st.fields.insert(k.to_string(), f[1].to_string());
                }
                _ => {}
            }
        }
        Some(st)
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join("status.tmp");
        std::fs::write(&tmp, self.render())?;
        std::fs::rename(tmp, dir.join("status"))
    }

    pub fn read(dir: &Path) -> Option<Status> {
        Status::parse(&std::fs::read_to_string(dir.join("status")).ok()?)
    }

    /// The table the way `ipvsadm -L -n` shows it, plus each real server's
    /// health.
    pub fn display(&self) -> String {
        let now = now();
        let mut out = format!(
            "haven director (backend {}, table {}, pid {}, kernel table {})\n",
            self.get("backend").unwrap_or("?"),
            self.get("table").unwrap_or("?"),
            self.get("pid").unwrap_or("?"),
            match self.get("kernel_match") {
                Some("yes") => "as configured",
                Some("no") => "DIFFERS from the configuration",
                _ => "not checked yet",
            }
        );
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight Health  Failures LastCheck  LastError\n");
        for s in &self.services {
            let mut flags = String::new();
            if s.persistent {
                flags.push_str(" persistent");
            }
            if s.on_fallback {
                flags.push_str(" FALLBACK");
            }
            out.push_str(&format!("{} {}{}\n", s.label, s.scheduler, flags));
            let vip = s.label.split_whitespace().last().unwrap_or_default();
            for r in self.reals.iter().filter(|r| r.vip == vip) {
                let ago = if r.last_check == 0 {
                    "never".to_string()
                } else {
                    format!("{}s ago", now.saturating_sub(r.last_check))
                };
                out.push_str(&format!(
                    "  -> {:<28} {:<7} {:<6} {:<7} {:<8} {:<10} {}\n",
                    r.real,
                    r.method,
                    r.active_weight,
                    if r.up { "up" } else { "DOWN" },
                    r.failures,
                    ago,
                    r.last_error
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut s = Status::default();
        s.set("pid", 42);
        s.set("backend", "nftables");
        s.services.push(ServiceLine {
            label: "TCP  198.51.100.10:80".into(),
            scheduler: "wrr".into(),
            persistent: false,
            on_fallback: false,
        });
        s.reals.push(RealLine {
            vip: "198.51.100.10:80".into(),
            real: "203.0.113.11:80".into(),
            method: "Masq".into(),
            weight: 1,
            active_weight: 1,
            up: true,
            failures: 0,
            last_check: 5,
            last_error: "tab\there".into(),
        });
        let back = Status::parse(&s.render()).unwrap();
        assert_eq!(back.get("pid"), Some("42"));
        assert_eq!(back.reals[0].last_error, "tab here");
        assert_eq!(back.services, s.services);
        let shown = back.display();
        assert!(shown.contains("TCP  198.51.100.10:80 wrr") && shown.contains("203.0.113.11:80"), "{shown}");
    }
}
