//! Telling the link that an address moved here: gratuitous ARP (request and
//! reply form) for IPv4, unsolicited neighbour advertisements for IPv6,
//! `count` rounds `interval` apart.

use super::arp::Arp;
use super::ndisc::{advertisement, NaSender};
use super::packet::{PacketSocket, BROADCAST_MAC, ETH_P_ARP};
use super::NetError;
use crate::ocf::Deadline;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Announcement {
    pub ifindex: u32,
    pub ifname: String,
    pub mac: [u8; 6],
    pub ip: IpAddr,
    pub count: u32,
    pub interval: Duration,
}

/// Send the announcements; returns how many rounds went out before the
/// deadline.
pub fn send(a: &Announcement, deadline: &Deadline) -> Result<u32, NetError> {
    let object = || format!("{} on {}", a.ip, a.ifname);
    let mut rounds = 0;
    match a.ip {
        IpAddr::V4(ip) => {
            let sock = PacketSocket::open(a.ifindex, ETH_P_ARP)
                .map_err(|e| NetError::io("open an ARP socket for", object(), e))?;
            let request = Arp::gratuitous_request(a.mac, ip).encode();
            let reply = Arp::gratuitous_reply(a.mac, ip).encode();
            for i in 0..a.count {
                if i > 0 && !deadline.sleep(a.interval) {
                    break;
                }
                sock.send(&request, BROADCAST_MAC).map_err(|e| NetError::io("send gratuitous ARP for", object(), e))?;
                sock.send(&reply, BROADCAST_MAC).map_err(|e| NetError::io("send gratuitous ARP for", object(), e))?;
                rounds += 1;
            }
        }
        IpAddr::V6(ip) => {
            let sock =
                NaSender::open(a.ifindex, ip).map_err(|e| NetError::io("open an ICMPv6 socket for", object(), e))?;
            let na = advertisement(ip, a.mac);
            for i in 0..a.count {
                if i > 0 && !deadline.sleep(a.interval) {
                    break;
                }
                sock.send(&na).map_err(|e| NetError::io("send neighbour advertisement for", object(), e))?;
                rounds += 1;
            }
        }
    }
    Ok(rounds)
}
