//! Logging the way ocf-shellfuncs does it: a "LEVEL: message" line on stderr
//! (Pacemaker captures it into its log), syslog when HA_LOGFACILITY names a
//! facility, and HA_LOGFILE / HA_DEBUGLOG files. Debug lines only when
//! HA_DEBUG is on. Nothing here forks (no `logger`).

use nix::syslog::{self as nixlog, Facility, LogFlags, Severity};
use std::ffi::CString;
use std::io::Write;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Err,
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARNING",
            Level::Err => "ERROR",
        }
    }
    fn severity(self) -> Severity {
        match self {
            Level::Debug => Severity::LOG_DEBUG,
            Level::Info => Severity::LOG_INFO,
            Level::Warn => Severity::LOG_WARNING,
            Level::Err => Severity::LOG_ERR,
        }
    }
}

struct Logger {
    /// "vip(my_vip)", like ocf-shellfuncs' "IPaddr2(my_vip)".
    ident: String,
    debug: bool,
    syslog: bool,
    logfile: Option<String>,
    debuglog: Option<String>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn facility(name: &str) -> Option<Facility> {
    Some(match name.to_ascii_lowercase().as_str() {
        "daemon" => Facility::LOG_DAEMON,
        "user" => Facility::LOG_USER,
        "local0" => Facility::LOG_LOCAL0,
        "local1" => Facility::LOG_LOCAL1,
        "local2" => Facility::LOG_LOCAL2,
        "local3" => Facility::LOG_LOCAL3,
        "local4" => Facility::LOG_LOCAL4,
        "local5" => Facility::LOG_LOCAL5,
        "local6" => Facility::LOG_LOCAL6,
        "local7" => Facility::LOG_LOCAL7,
        // nix has no LOG_AUTHPRIV; syslog daemons (Debian's rsyslog
        // included) file auth and authpriv together.
        "authpriv" | "auth" => Facility::LOG_AUTH,
        _ => return None,
    })
}

/// Set up logging for one agent action. Safe to call once; later calls are
/// ignored (the first configuration wins).
pub fn init(agent: &str, instance: &str) {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let ident = if instance.is_empty() { agent.to_string() } else { format!("{agent}({instance})") };
    let debug = var("HA_DEBUG").is_some_and(|v| v != "0" && v != "false");
    let syslog = match var("HA_LOGFACILITY").as_deref().and_then(facility) {
        Some(fac) => {
            // openlog keeps the pointer: the ident string must live for the
            // whole process, so it is leaked on purpose (once per process).
            if let Ok(c) = CString::new(format!("haven-{agent}")) {
                let leaked: &'static CString = Box::leak(Box::new(c));
                nixlog::openlog(Some(leaked.as_c_str()), LogFlags::LOG_PID, fac).is_ok()
            } else {
                false
            }
        }
        None => false,
    };
    let _ = LOGGER.set(Logger { ident, debug, syslog, logfile: var("HA_LOGFILE"), debuglog: var("HA_DEBUGLOG") });
}

pub fn log(level: Level, msg: &str) {
    let Some(l) = LOGGER.get() else {
        // Before init (e.g. argument errors): stderr only.
        eprintln!("{}: {msg}", level.tag());
        return;
    };
    if level == Level::Debug && !l.debug {
        return;
    }
    eprintln!("{}: {msg}", level.tag());
    log_to_sinks(l, level, msg);
}

/// The reason Pacemaker shows next to a failed action (crm_mon "exit-reason").
pub fn exit_reason(msg: &str) {
    // Pacemaker reads the line that starts with this marker; one line only.
    let one_line = msg.replace('\n', " ");
    eprintln!("ocf-exit-reason:{one_line}");
    if let Some(l) = LOGGER.get() {
        log_to_sinks(l, Level::Err, &one_line);
    }
}

fn log_to_sinks(l: &Logger, level: Level, msg: &str) {
    if l.syslog {
        let line = format!("{}: {}: {}", l.ident, level.tag(), msg.replace('\0', " "));
        let _ = nixlog::syslog(level.severity(), line.as_str());
    }
    let file = if level == Level::Debug { l.debuglog.as_ref().or(l.logfile.as_ref()) } else { l.logfile.as_ref() };
    if let Some(path) = file {
        append(path, &format!("{} {}[{}]: {}: {}\n", timestamp(), l.ident, std::process::id(), level.tag(), msg));
    }
}

fn append(path: &str, line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// "YYYY-MM-DDTHH:MM:SSZ" in UTC, computed without a time crate.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::ocf::log::log($crate::ocf::log::Level::Info, &format!($($t)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::ocf::log::log($crate::ocf::log::Level::Warn, &format!($($t)*)) };
}
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::ocf::log::log($crate::ocf::log::Level::Debug, &format!($($t)*)) };
}
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::ocf::log::log($crate::ocf::log::Level::Err, &format!($($t)*)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
    }
}
