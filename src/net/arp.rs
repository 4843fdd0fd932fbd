//! ARP payloads (RFC 826): gratuitous announcements in request and reply
//! form, and RFC 5227 probes that find another host already using an
//! address.

use super::packet::{PacketSocket, BROADCAST_MAC, ETH_P_ARP};
use crate::ocf::Deadline;
use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;
pub const LEN: usize = 28;

/// An Ethernet/IPv4 ARP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl Arp {
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        b
    }

    pub fn decode(b: &[u8]) -> Option<Arp> {
        if b.len() < LEN || b[0..2] != [0, 1] || b[2..4] != [8, 0] || b[4] != 6 || b[5] != 4 {
            return None;
        }
        let mac = |r: std::ops::Range<usize>| -> Option<[u8; 6]> { b.get(r)?.try_into().ok() };
        let ip = |r: std::ops::Range<usize>| -> Option<Ipv4Addr> {
            let o: [u8; 4] = b.get(r)?.try_into().ok()?;
            Some(Ipv4Addr::from(o))
        };
        Some(Arp {
            op: u16::from_be_bytes([b[6], b[7]]),
            sender_mac: mac(8..14)?,
            sender_ip: ip(14..18)?,
            target_mac: mac(18..24)?,
            target_ip: ip(24..28)?,
        })
    }

    /// Gratuitous request: "who has IP? tell IP" from the owner.
    pub fn gratuitous_request(mac: [u8; 6], ip: Ipv4Addr) -> Arp {
        Arp { op: OP_REQUEST, sender_mac: mac, sender_ip: ip, target_mac: [0; 6], target_ip: ip }
    }

    /// Gratuitous reply: "IP is at MAC", broadcast.
    pub fn gratuitous_reply(mac: [u8; 6], ip: Ipv4Addr) -> Arp {
        Arp { op: OP_REPLY, sender_mac: mac, sender_ip: ip, target_mac: BROADCAST_MAC, target_ip: ip }
    }

    /// RFC 5227 probe: sender IP 0.0.0.0 so no neighbour cache is touched.
    pub fn probe(mac: [u8; 6], ip: Ipv4Addr) -> Arp {
        Arp { op: OP_REQUEST, sender_mac: mac, sender_ip: Ipv4Addr::UNSPECIFIED, target_mac: [0; 6], target_ip: ip }
    }
}

/// Who answered a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub mac: [u8; 6],
}

pub fn format_mac(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// An RFC 5227 collision probe in flight: asks the link whether another
/// host uses `ip`. The first probe goes out in [`Probe::send`]; answers
/// queue in the socket while the caller does other work; [`Probe::finish`]
/// sends the rest, spread over `wait`, and listens until `wait` (or the
/// deadline) ends. Any ARP packet from another MAC claiming `ip` as its
/// sender address is a conflict, and ends the wait at once.
pub struct Probe {
    sock: PacketSocket,
    mac: [u8; 6],
    ip: Ipv4Addr,
    frame: [u8; LEN],
    window: Deadline,
    gap: Duration,
    next_send: Instant,
    sent: u32,
    probes: u32,
}

impl Probe {
    /// Open the socket and send the first of `probes` probes now.
    pub fn send(
        ifindex: u32,
        mac: [u8; 6],
        ip: Ipv4Addr,
        probes: u32,
        wait: Duration,
        deadline: &Deadline,
    ) -> io::Result<Probe> {
        let sock = PacketSocket::open(ifindex, ETH_P_ARP)?;
        let probes = probes.max(1);
        let mut p = Probe {
            sock,
            mac,
            ip,
            frame: Arp::probe(mac, ip).encode(),
            window: deadline.within(wait),
            gap: wait / probes,
            next_send: Instant::now(),
            sent: 0,
            probes,
        };
        p.send_due()?;
        Ok(p)
    }

    fn send_due(&mut self) -> io::Result<()> {
        if self.sent < self.probes && Instant::now() >= self.next_send {
            self.sock.send(&self.frame, BROADCAST_MAC)?;
            self.sent += 1;
            self.next_send += self.gap;
        }
        Ok(())
    }

    /// The verdict, and the socket: the caller decides when its (slow)
    /// close happens, see [`PacketSocket::into_lingering`].
    pub fn finish(mut self) -> io::Result<(Option<Conflict>, PacketSocket)> {
        let mut buf = [0u8; 128];
        loop {
            self.send_due()?;
            // Answers that queued since the last look come first, also once
            // the window is over.
            let left = self.window.remaining();
            let until_send =
                if self.sent < self.probes { self.next_send.saturating_duration_since(Instant::now()) } else { left };
            let wait = if left.is_zero() { Duration::ZERO } else { left.min(until_send).max(Duration::from_millis(1)) };
            match self.sock.recv_incoming(&mut buf, wait)? {
                Some(n) => {
                    if let Some(a) = Arp::decode(&buf[..n]) {
                        if a.sender_ip == self.ip && a.sender_mac != self.mac {
                            return Ok((Some(Conflict { mac: a.sender_mac }), self.sock));
                        }
                    }
                }
                None if left.is_zero() => return Ok((None, self.sock)),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mac = [0x02, 0, 0, 0, 0, 1];
        let ip = Ipv4Addr::new(198, 51, 100, 7);
        for a in [Arp::gratuitous_request(mac, ip), Arp::gratuitous_reply(mac, ip), Arp::probe(mac, ip)] {
            assert_eq!(Arp::decode(&a.encode()), Some(a));
        }
        let req = Arp::gratuitous_request(mac, ip).encode();
        assert_eq!(&req[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(Arp::decode(&req[..20]), None);
        assert_eq!(format_mac(&mac), "02:00:00:00:00:01");
    }
}
