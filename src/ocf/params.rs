//! Typed parameter specs, declared once per agent: the meta-data XML and
//! the validation of OCF_RESKEY_* values both come from them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What a parameter holds. Each kind knows how to parse and validate a value
/// and which OCF content type describes it in meta-data.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Free text; may not contain NUL or newlines (values end up in logs and
    /// argv vectors, never in a shell).
    String,
    Integer {
        min: i64,
        max: i64,
    },
    Boolean,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    IpAddr,
    /// An absolute path.
    Path,
    /// A duration: a number with an optional unit (ms, s, m, h); a bare number
    /// is in `unit`.
    Duration {
        unit: TimeUnit,
    },
    /// A network interface name (as the kernel accepts: 1-15 bytes, no '/',
    /// ':' or whitespace).
    Interface,
    /// Agent-specific syntax: `check` returns the normalised value or why
    /// the text is malformed. `hint` is the syntax shown in meta-data.
    Custom {
        check: fn(&str) -> Result<Value, String>,
        hint: &'static str,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    Millis,
    Seconds,
}

/// One parameter of one agent.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub unique: bool,
    /// The default as an operator would type it (shown in meta-data and
    /// applied when the parameter is absent).
    pub default: Option<&'static str>,
    /// Accepted for compatibility with the agent haven replaces, but refused
    /// (with this reason) when set to anything other than its default.
    pub unsupported: Option<&'static str>,
}

impl ParamSpec {
    /// A plain optional string parameter; agents adjust fields from here.
    pub const fn new(name: &'static str, kind: Kind, shortdesc: &'static str, longdesc: &'static str) -> Self {
        ParamSpec { name, shortdesc, longdesc, kind, required: false, unique: false, default: None, unsupported: None }
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
    pub const fn unsupported(mut self, reason: &'static str) -> Self {
        self.unsupported = Some(reason);
        self
    }
}

/// A validated value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
    Path(PathBuf),
    Duration(Duration),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamError {
    #[error("parameter '{name}' is required but not set")]
    Missing { name: &'static str },
    #[error("parameter '{name}' has an invalid value {value:?}: {why}")]
    Malformed { name: &'static str, value: String, why: String },
    #[error("parameter '{name}' is not supported by haven (set to {value:?}): {why}")]
    Unsupported { name: &'static str, value: String, why: &'static str },
    #[error("parameters '{first}' and '{second}' cannot be used together: {why}")]
    Conflict { first: &'static str, second: &'static str, why: String },
    /// An agent asked for a parameter its own spec lacks: a bug, reported
    /// instead of a panic.
    #[error("internal: parameter '{name}' is not declared as {expected}")]
    Undeclared { name: &'static str, expected: &'static str },
}

/// Pacemaker's boolean spellings (crm_str_to_boolean) plus ocf_is_true's
/// "ja"; case-insensitive.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" | "ja" => Some(true),
        "false" | "off" | "no" | "n" | "0" | "nein" => Some(false),
        _ => None,
    }
}

/// Parse "1500", "1500ms", "2s", "1m", "1h" (and "2 s"); a bare number is in
/// `unit`. Pacemaker's own interval syntax uses the same suffixes.
pub fn parse_duration(s: &str, unit: TimeUnit) -> Option<Duration> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let d = match suffix.trim() {
        "" => match unit {
            TimeUnit::Millis => Duration::from_millis(n),
            TimeUnit::Seconds => Duration::from_secs(n),
        },
        "ms" | "msec" => Duration::from_millis(n),
        "s" | "sec" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.checked_mul(60)?),
        "h" | "hr" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    Some(d)
}

/// Check an interface name the way the kernel's dev_valid_name() does.
pub fn check_interface(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 15 {
        return Err("an interface name has 1 to 15 characters".into());
    }
    if s == "." || s == ".." {
        return Err("not an interface name".into());
    }
    if let Some(c) = s.chars().find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control()) {
        return Err(format!("an interface name cannot contain {c:?}"));
    }
    Ok(())
}

impl Kind {
    fn parse(&self, raw: &str) -> Result<Value, String> {
        match *self {
            Kind::String => {
                if raw.contains(['\0', '\n', '\r']) {
                    Err("control characters are not allowed".into())
                } else {
                    Ok(Value::Str(raw.to_string()))
                }
            }
            Kind::Integer { min, max } => match raw.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Value::Int(n)),
                Ok(_) => Err(format!("must be between {min} and {max}")),
                Err(_) => Err("not an integer".into()),
            },
            Kind::Boolean => parse_bool(raw)
                .map(Value::Bool)
                .ok_or_else(|| "not a boolean (use true/false, yes/no, on/off, 1/0)".into()),
            Kind::Enum(choices) => {
                let t = raw.trim();
                if choices.contains(&t) {
                    Ok(Value::Str(t.to_string()))
                } else {
                    Err(format!("must be one of: {}", choices.join(", ")))
                }
            }
            Kind::IpAddr => {
                raw.trim().parse::<IpAddr>().map(Value::Ip).map_err(|_| "not an IPv4 or IPv6 address".into())
            }
            Kind::Path => {
                if !raw.starts_with('/') {
                    Err("must be an absolute path".into())
                } else if raw.contains(['\0', '\n']) {
                    Err("control characters are not allowed".into())
                } else {
                    Ok(Value::Path(PathBuf::from(raw)))
                }
            }
            Kind::Duration { unit } => parse_duration(raw, unit)
                .map(Value::Duration)
                .ok_or_else(|| "not a duration (e.g. 500ms, 2s, 1m)".into()),
            Kind::Interface => check_interface(raw.trim()).map(|()| Value::Str(raw.trim().to_string())),
            Kind::Custom { check, .. } => check(raw),
        }
    }

    /// The OCF content type. Only string, integer and boolean are valid in
    /// both ra-api-1.dtd and metadata.rng, so everything else is "string".
    pub fn content_type(&self) -> &'static str {
        match self {
            Kind::Integer { .. } => "integer",
            Kind::Boolean => "boolean",
            _ => "string",
        }
    }

    /// A line appended to the long description that spells out the syntax.
    pub fn syntax_hint(&self) -> Option<String> {
        match *self {
            Kind::Integer { min, max } if max == i64::MAX => Some(format!("An integer, at least {min}.")),
            Kind::Integer { min, max } => Some(format!("An integer from {min} to {max}.")),
            Kind::Enum(choices) => Some(format!("One of: {}.", choices.join(", "))),
            Kind::Duration { unit: TimeUnit::Millis } => {
                Some("A duration: milliseconds, or a number with ms, s or m.".into())
            }
            Kind::Duration { unit: TimeUnit::Seconds } => {
                Some("A duration: seconds, or a number with ms, s, m or h.".into())
            }
            Kind::Custom { hint, .. } => Some(hint.to_string()),
            _ => None,
        }
    }
}

/// Validated parameters of one action: every declared parameter with a value
/// (set or default), typed.
#[derive(Clone, Debug, Default)]
pub struct Params {
    values: BTreeMap<&'static str, Value>,
    /// Parameters explicitly set in the environment (vs. defaults).
    set: Vec<&'static str>,
    /// Set parameters the spec does not declare (typos, usually).
    pub unknown: Vec<String>,
}

impl Params {
    /// Validate raw OCF_RESKEY_* values against `specs`. Empty values count
    /// as unset, as in the shell agents ("${OCF_RESKEY_x:-default}").
    pub fn parse(specs: &'static [ParamSpec], raw: &BTreeMap<String, String>) -> Result<Params, ParamError> {
        let mut out = Params::default();
        for spec in specs {
            let given = raw.get(spec.name).filter(|v| !v.is_empty());
            if let (Some(value), Some(why)) = (given, spec.unsupported) {
                let is_default = spec.default.is_some_and(|d| same_value(spec, value, d));
                if !is_default {
                    return Err(ParamError::Unsupported { name: spec.name, value: value.clone(), why });
                }
            }
            let text = match (given, spec.default) {
                (Some(v), _) => {
                    out.set.push(spec.name);
                    v.as_str()
                }
                (None, Some(d)) if !d.is_empty() => d,
                (None, _) if spec.required => return Err(ParamError::Missing { name: spec.name }),
                (None, _) => continue,
            };
            let value = spec.kind.parse(text).map_err(|why| ParamError::Malformed {
                name: spec.name,
                value: text.to_string(),
                why,
            })?;
            out.values.insert(spec.name, value);
        }
        out.unknown = raw.keys().filter(|k| !specs.iter().any(|s| s.name == k.as_str())).cloned().collect();
        Ok(out)
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.set.contains(&name)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn str(&self, name: &'static str) -> Result<Option<&str>, ParamError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(_) => Err(ParamError::Undeclared { name, expected: "text" }),
        }
    }

    pub fn int(&self, name: &'static str) -> Result<Option<i64>, ParamError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(Value::Int(n)) => Ok(Some(*n)),
            Some(_) => Err(ParamError::Undeclared { name, expected: "integer" }),
        }
    }

    /// A boolean; absent without default counts as false.
    pub fn flag(&self, name: &'static str) -> Result<bool, ParamError> {
        match self.values.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ParamError::Undeclared { name, expected: "boolean" }),
        }
    }

    pub fn bool(&self, name: &'static str) -> Result<Option<bool>, ParamError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ParamError::Undeclared { name, expected: "boolean" }),
        }
    }

    pub fn ip(&self, name: &'static str) -> Result<Option<IpAddr>, ParamError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(Value::Ip(ip)) => Ok(Some(*ip)),
            Some(_) => Err(ParamError::Undeclared { name, expected: "IP address" }),
        }
    }

    pub fn path(&self, name: &'static str) -> Result<Option<&std::path::Path>, ParamError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(Value::Path(p)) => Ok(Some(p)),
            Some(_) => Err(ParamError::Undeclared { name, expected: "path" }),
        }
    }

    pub fn duration(&self, name: &'static str) -> Result<Option<Duration>, ParamError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(Value::Duration(d)) => Ok(Some(*d)),
            Some(_) => Err(ParamError::Undeclared { name, expected: "duration" }),
        }
    }
}

/// Whether `value` means the same as `default` for this parameter (so that
/// "false" and "no" both leave an unsupported boolean at its default).
fn same_value(spec: &ParamSpec, value: &str, default: &str) -> bool {
    match (spec.kind.parse(value), spec.kind.parse(default)) {
        (Ok(a), Ok(b)) => a == b,
        _ => value.trim() == default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SPECS: [ParamSpec; 6] = [
        ParamSpec::new("ip", Kind::IpAddr, "IP", "The address.").required().unique(),
        ParamSpec::new("count", Kind::Integer { min: 0, max: 10 }, "Count", "How many.").default("5"),
        ParamSpec::new("fast", Kind::Boolean, "Fast", "Go fast.").default("false"),
        ParamSpec::new("mode", Kind::Enum(&["a", "b"]), "Mode", "Which mode."),
        ParamSpec::new("wait", Kind::Duration { unit: TimeUnit::Millis }, "Wait", "How long.").default("200"),
        ParamSpec::new("mac", Kind::String, "MAC", "CLUSTERIP mac.").default("").unsupported("CLUSTERIP is gone"),
    ];

    fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_apply_and_types_parse() {
        let p = Params::parse(&SPECS, &raw(&[("ip", "2001:db8::7"), ("fast", "YES"), ("wait", "2s")])).unwrap();
        assert_eq!(p.ip("ip").unwrap(), Some("2001:db8::7".parse().unwrap()));
        assert_eq!(p.int("count").unwrap(), Some(5));
        assert!(p.flag("fast").unwrap());
        assert_eq!(p.duration("wait").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(p.str("mode").unwrap(), None);
        assert!(p.is_set("fast") && !p.is_set("count"));
    }

    #[test]
    fn errors_name_the_parameter_and_value() {
        let e = Params::parse(&SPECS, &raw(&[])).unwrap_err();
        assert_eq!(e, ParamError::Missing { name: "ip" });
        assert!(e.to_string().contains("'ip'"));
        let e = Params::parse(&SPECS, &raw(&[("ip", "198.51.100.7; reboot")])).unwrap_err();
        assert!(e.to_string().contains("'ip'") && e.to_string().contains("reboot"), "{e}");
        let e = Params::parse(&SPECS, &raw(&[("ip", "198.51.100.7"), ("count", "11")])).unwrap_err();
        assert!(e.to_string().contains("between 0 and 10"), "{e}");
        let e = Params::parse(&SPECS, &raw(&[("ip", "198.51.100.7"), ("fast", "maybe")])).unwrap_err();
        assert!(e.to_string().contains("'fast'"), "{e}");
        let e = Params::parse(&SPECS, &raw(&[("ip", "198.51.100.7"), ("mode", "c")])).unwrap_err();
        assert!(e.to_string().contains("one of: a, b"), "{e}");
    }

    #[test]
    fn unsupported_refused_only_when_set() {
        assert!(Params::parse(&SPECS, &raw(&[("ip", "198.51.100.7"), ("mac", "")])).is_ok());
        let e = Params::parse(&SPECS, &raw(&[("ip", "198.51.100.7"), ("mac", "01:02:03:04:05:06")])).unwrap_err();
        assert!(matches!(e, ParamError::Unsupported { name: "mac", .. }));
        assert!(e.to_string().contains("CLUSTERIP is gone"));
    }

    #[test]
    fn unknown_parameters_are_collected() {
        let p = Params::parse(&SPECS, &raw(&[("ip", "198.51.100.7"), ("nci", "eth0")])).unwrap();
        assert_eq!(p.unknown, vec!["nci"]);
    }

    #[test]
    fn booleans_in_every_spelling() {
        for t in ["true", "TRUE", "on", "yes", "Y", "1", "ja"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "Off", "no", "n", "0"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("2"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("150", TimeUnit::Millis), Some(Duration::from_millis(150)));
        assert_eq!(parse_duration("3", TimeUnit::Seconds), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m", TimeUnit::Millis), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms", TimeUnit::Seconds), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("-1", TimeUnit::Seconds), None);
        assert_eq!(parse_duration("5 parsecs", TimeUnit::Seconds), None);
    }

    #[test]
    fn interface_names() {
        assert!(check_interface("eth0").is_ok());
        assert!(check_interface("veth-haven-1234").is_ok());
        assert!(check_interface("eth0;reboot").is_ok(), "not a shell: ';' is legal in a name");
        assert!(check_interface("averyveryverylongname").is_err());
        assert!(check_interface("eth0:1").is_err());
        assert!(check_interface("a b").is_err());
        assert!(check_interface("").is_err());
    }
}
