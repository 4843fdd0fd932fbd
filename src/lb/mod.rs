//! The director engine: ldirectord.cf configuration, health checks of real
//! servers, and the kernel data plane (IPVS or nftables) they program. The
//! director never forwards packets itself.

pub mod config;
pub mod daemon;
pub mod dr;
pub mod health;
pub mod ipvs;
pub mod keys;
pub mod nft;
pub mod status;
pub mod table;

use crate::exec::ExecError;

#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("nft {op} failed: {why}")]
    Nft { op: &'static str, why: String },
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("the IPVS backend was asked for, but this kernel has no IPVS (/proc/net/ip_vs is missing)")]
    NoIpvs,
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error(transparent)]
    Untrusted(#[from] crate::trust::Untrusted),
}

/// A configuration error reaching the backend is the daemon's (GENERIC): the
/// agent validated the configuration before it started the daemon.
impl crate::error::OcfError for LbError {
    fn status(&self) -> crate::ocf::Status {
        match self {
            LbError::NoIpvs => crate::ocf::Status::ErrInstalled,
            LbError::Untrusted(_) => crate::ocf::Status::ErrPerm,
            LbError::Exec(e) => crate::error::OcfError::status(e),
            _ => crate::ocf::Status::ErrGeneric,
        }
    }
}
