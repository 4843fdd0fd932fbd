//! The instance's parameters, typed, and the values services and templates
//! get from them.

use crate::ocf::params::{ParamError, Params};
use std::net::IpAddr;
use std::path::PathBuf;

/// Where per-instance runtime state lives (logs, state, rendered files).
pub const RUN_ROOT: &str = "/run/haven/instance";

#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub hostname: String,
    pub ip: IpAddr,
    pub datadir: String,
    pub config: PathBuf,
    pub user: Option<String>,
    pub promotion_score: i64,
}

impl Config {
    pub fn from_params(p: &Params) -> Result<Config, ParamError> {
        let name = p.str("name")?.ok_or(ParamError::Missing { name: "name" })?.to_string();
        let datadir = p.str("datadir")?.ok_or(ParamError::Missing { name: "datadir" })?.to_string();
        let hostname = p.str("hostname")?.map_or_else(|| name.clone(), str::to_string);
        let ip = p.ip("ip")?.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let config = p.path("config")?.map_or_else(|| PathBuf::from(&datadir).join("instance.toml"), PathBuf::from);
        Ok(Config {
            hostname,
            ip,
            config,
            user: p.str("user")?.map(str::to_string),
            promotion_score: p.int("promotion_score")?.unwrap_or(10),
            name,
            datadir,
        })
    }

    /// /run/haven/instance/<name>
    pub fn run_dir(&self) -> PathBuf {
        PathBuf::from(RUN_ROOT).join(&self.name)
    }

    /// The values `{{...}}` placeholders stand for.
    pub fn vars(&self) -> Vars {
        Vars {
            name: self.name.clone(),
            hostname: self.hostname.clone(),
            ip: self.ip,
            datadir: self.datadir.clone(),
            rundir: self.run_dir().display().to_string(),
        }
    }
}

/// What placeholders in an instance file expand to.
#[derive(Clone, Debug)]
pub struct Vars {
    pub name: String,
    pub hostname: String,
    pub ip: IpAddr,
    pub datadir: String,
    pub rundir: String,
}

/// The placeholders an instance file may use, for messages.
pub const PLACEHOLDERS: &str = "{{name}}, {{hostname}}, {{ip}}, {{ip_literal}}, {{datadir}}, {{rundir}}";

impl Vars {
    fn lookup(&self, key: &str) -> Option<String> {
        Some(match key {
            "name" => self.name.clone(),
            "hostname" => self.hostname.clone(),
            "ip" => self.ip.to_string(),
            // What a listen directive or URL needs: [2001:db8::5] for IPv6.
            "ip_literal" => match self.ip {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            },
            "datadir" => self.datadir.clone(),
            "rundir" => self.rundir.clone(),
            _ => return None,
        })
    }

    /// Replace every `{{key}}` in `text`. An unknown key is an error naming
    /// it, with the byte offset where it starts (for line numbers). Plain
    /// text substitution: nothing is ever interpreted by a shell.
    pub fn expand(&self, text: &str) -> Result<String, (usize, String)> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err((offset + start, "unterminated placeholder '{{' (no closing '}}')".into()));
            };
            let key = after[..end].trim();
            match self.lookup(key) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err((offset + start, format!("unknown placeholder {{{{{key}}}}} (known: {PLACEHOLDERS})")))
                }
            }
            let consumed = start + 2 + end + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(ip: &str) -> Vars {
        Vars {
            name: "web1".into(),
            hostname: "web1.example.org".into(),
            ip: ip.parse().unwrap(),
            datadir: "/srv/web1".into(),
            rundir: "/run/haven/instance/web1".into(),
        }
    }

    #[test]
    fn expands_known_placeholders_only() {
        let v = vars("198.51.100.80");
        assert_eq!(
            v.expand("listen {{ip_literal}}:80; root {{ datadir }}/htdocs;").unwrap(),
            "listen 198.51.100.80:80; root /srv/web1/htdocs;"
        );
        assert_eq!(vars("2001:db8::5").expand("{{ip_literal}}:80 {{ip}}").unwrap(), "[2001:db8::5]:80 2001:db8::5");
        assert_eq!(v.expand("events { worker_connections 64; }").unwrap(), "events { worker_connections 64; }");
        let (at, why) = v.expand("ab {{nope}}").unwrap_err();
        assert_eq!(at, 3);
        assert!(why.contains("nope") && why.contains("{{ip}}"), "{why}");
        assert!(v.expand("x {{ip").is_err());
        assert_eq!(v.expand("$(id) `id` ; |").unwrap(), "$(id) `id` ; |");
    }
}
