//! Kernel networking without forking `ip`: rtnetlink (links, addresses,
//! routes), ARP and neighbour advertisements from sockets, sysctls and
//! network namespaces.

pub mod addr;
pub mod announce;
pub mod arp;
pub mod error;
pub mod link;
pub mod ndisc;
pub mod neigh;
pub mod netlink;
pub mod netns;
pub mod packet;
pub mod reply;
pub mod route;
pub mod sysctl;

pub use error::NetError;
pub use netlink::Rtnl;
