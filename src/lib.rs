//! haven: Pacemaker OCF resource agents for highly available hosting
//! clusters. The binary (src/main.rs) dispatches to these modules.

pub mod agents;
pub mod error;
pub mod exec;
pub mod generate;
pub mod host;
pub mod lab;
pub mod lb;
pub mod mount;
pub mod net;
pub mod ocf;
pub mod privdrop;
pub mod probe;
#[cfg(test)]
pub(crate) mod property;
pub mod safe_file;
pub mod trust;
pub mod xml;
