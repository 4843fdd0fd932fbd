//! Kernel networking without forking `ip`: one netlink socket for
//! rtnetlink (links, addresses, routes, neighbours) and generic netlink,
//! ARP and neighbour advertisements from sockets, sysctls and network
//! namespaces.

pub mod addr;
pub mod announce;
pub mod arp;
pub mod error;
pub mod genl;
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
pub use netlink::Netlink;
