//! OCF action names, as Pacemaker and rgmanager pass them in `$1`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Monitor,
    /// rgmanager and LSB spelling of monitor.
    Status,
    ValidateAll,
    MetaData,
    Promote,
    Demote,
    Notify,
    Reload,
    MigrateTo,
    MigrateFrom,
    Recover,
    Usage,
    Methods,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "monitor" => Action::Monitor,
            "status" => Action::Status,
            // rgmanager's older spelling.
            "validate-all" | "verify-all" => Action::ValidateAll,
            "meta-data" | "metadata" => Action::MetaData,
            "promote" => Action::Promote,
            "demote" => Action::Demote,
            "notify" => Action::Notify,
            "reload" => Action::Reload,
            "migrate_to" => Action::MigrateTo,
            "migrate_from" => Action::MigrateFrom,
            "recover" => Action::Recover,
            "usage" | "help" | "--help" | "-h" => Action::Usage,
            "methods" => Action::Methods,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Monitor => "monitor",
            Action::Status => "status",
            Action::ValidateAll => "validate-all",
            Action::MetaData => "meta-data",
            Action::Promote => "promote",
            Action::Demote => "demote",
            Action::Notify => "notify",
            Action::Reload => "reload",
            Action::MigrateTo => "migrate_to",
            Action::MigrateFrom => "migrate_from",
            Action::Recover => "recover",
            Action::Usage => "usage",
            Action::Methods => "methods",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown() {
        for a in [
            "start",
            "stop",
            "monitor",
            "status",
            "validate-all",
            "meta-data",
            "promote",
            "demote",
            "notify",
            "reload",
            "migrate_to",
            "migrate_from",
            "recover",
            "usage",
            "methods",
        ] {
            assert_eq!(Action::parse(a).map(Action::as_str), Some(a));
        }
        assert_eq!(Action::parse("frobnicate"), None);
        assert_eq!(Action::parse("START"), None);
    }
}
