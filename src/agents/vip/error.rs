//! What can go wrong managing a virtual address.

use crate::net::NetError;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error("interface '{nic}' (parameter nic) does not exist on this node")]
    NoInterface { nic: String },
    #[error("network namespace '{name}' (parameter network_namespace) does not exist on this node")]
    NoNamespace { name: String },
    #[error("no on-link route covers {net}: {why}")]
    NoRoute { net: String, why: String },
    #[error("interface label '{label}' is {len} characters; interface name, ':' and iflabel may have 15")]
    LabelTooLong { label: String, len: usize },
    #[error(
        "vip cannot be cloned (CLUSTERIP load sharing is gone from Linux); only lvs_realserver=true may be cloned"
    )]
    Clone,
    #[error("nic=lo is only meaningful with lvs_realserver=true (a VIP on lo is not reachable from the network)")]
    LoopbackNic,
    #[error("interface {nic} is down or has no carrier; not bringing {ip} up on it")]
    LinkDown { ip: IpAddr, nic: String },
    #[error(
        "{ip} is already in use on the link of {nic}: host {mac} answered the ARP probe (refusing a duplicate address)"
    )]
    Duplicate { ip: IpAddr, nic: String, mac: String },
    #[error("duplicate address detection failed for {ip} on {nic}: another host has it")]
    DadFailed { ip: IpAddr, nic: String },
    #[error("duplicate address detection for {ip} on {nic} did not finish before the deadline")]
    DadTimeout { ip: IpAddr, nic: String },
    #[error("{ip} is configured on {found}, not on {nic}")]
    Elsewhere { ip: IpAddr, found: String, nic: String },
    #[error("{ip} on {nic} is only partly set up: {what}")]
    Mismatch { ip: IpAddr, nic: String, what: String },
    #[error("{ip} is still on {nic} after it was removed")]
    StillPresent { ip: IpAddr, nic: String },
    #[error("{ip} is on lo but ARP is not suppressed: {what}")]
    NotSuppressed { ip: IpAddr, what: String },
    #[error(transparent)]
    State(#[from] crate::error::IoError),
    #[error(transparent)]
    Net(#[from] NetError),
}

impl crate::error::OcfError for VipError {
    fn status(&self) -> crate::ocf::Status {
        use crate::ocf::Status;
        match self {
            VipError::NoInterface { .. } | VipError::Clone | VipError::LabelTooLong { .. } | VipError::LoopbackNic => {
                Status::ErrConfigured
            }
            VipError::NoNamespace { .. } => Status::ErrInstalled,
            VipError::Net(e) => crate::error::OcfError::status(e),
            _ => Status::ErrGeneric,
        }
    }
}
