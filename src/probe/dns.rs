//! The dns negotiate check: one recursive query for `request` (type A, or
//! PTR for an in-addr.arpa/ip6.arpa name) over UDP, or TCP when the virtual
//! service is TCP; the check passes when an answer record's address (or PTR
//! name) matches `receive`. The answer parser reads untrusted bytes with
//! bounds checked at every step and a cap on compression jumps.

use super::conn::{self, Conn};
use super::{Expect, ProbeError};
use crate::ocf::Deadline;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;

pub fn query(id: u16, name: &str) -> Option<Vec<u8>> {
    let qtype = if name.ends_with(".arpa") || name.ends_with(".arpa.") { TYPE_PTR } else { TYPE_A };
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    Some(q)
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// A (possibly compressed) name at `i`: the name and where it ends.
fn name_at(b: &[u8], mut i: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *b.get(i)?;
        match len {
            0 => return Some((out, end.unwrap_or(i + 1))),
            l if l & 0xc0 == 0xc0 => {
                let ptr = usize::from(u16_at(b, i)? & 0x3fff);
                end.get_or_insert(i + 2);
                i = ptr;
            }
            l if l < 64 => {
                let label = b.get(i + 1..i + 1 + usize::from(l))?;
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&String::from_utf8_lossy(label));
                i += 1 + usize::from(l);
            }
            _ => return None,
        }
    }
    None
}

/// The answers of a response to query `id`: A/AAAA addresses and PTR names
/// as text. None when the bytes are not such a response.
pub fn answers(b: &[u8], id: u16) -> Option<Vec<String>> {
    if u16_at(b, 0)? != id || b.get(2)? & 0x80 == 0 {
        return None;
    }
    let rcode = b.get(3)? & 0x0f;
    let (qd, an) = (u16_at(b, 4)?, u16_at(b, 6)?);
    let mut i = 12;
    for _ in 0..qd {
        i = name_at(b, i)?.1 + 4;
    }
    let mut out = Vec::new();
    if rcode != 0 {
        return Some(out);
    }
    for _ in 0..an {
        let end = name_at(b, i)?.1;
        let (ty, len) = (u16_at(b, end)?, usize::from(u16_at(b, end + 8)?));
        let data_at = end + 10;
        let data = b.get(data_at..data_at + len)?;
        match ty {
            TYPE_A if len == 4 => out.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]).to_string()),
            TYPE_AAAA if len == 16 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(data);
                out.push(Ipv6Addr::from(o).to_string());
            }
            TYPE_PTR => out.push(name_at(b, data_at)?.0),
            _ => {}
        }
        i = data_at + len;
    }
    Some(out)
}

pub fn check(addr: SocketAddr, name: &str, expect: &Expect, tcp: bool, d: &Deadline) -> Result<(), ProbeError> {
    let fail = |why: String| ProbeError::Protocol { addr, service: "dns", why };
    let id = (std::process::id() as u16) ^ (d.remaining().subsec_nanos() as u16);
    let q = query(id, name).ok_or_else(|| fail(format!("{name:?} is not a domain name to query")))?;
    let answer = if tcp {
        let mut c = Conn::open(addr, false, d)?;
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        c.send(&framed, d)?;
        let len = c.exact(2, d)?;
        c.exact(usize::from(u16::from_be_bytes([len[0], len[1]])), d)?
    } else {
        conn::udp_exchange(addr, &q, d, |b| b.get(..2) == Some(&id.to_be_bytes()[..]))?
    };
    let found = answers(&answer, id).ok_or_else(|| fail("the answer is not a DNS response".into()))?;
    if found.is_empty() {
        return Err(fail(format!("no answer for {name}")));
    }
    // ldirectord: an empty receive never matches.
    if matches!(expect, Expect::Any) || !found.iter().any(|a| expect.matches(a)) {
        return Err(ProbeError::Unexpected { addr, expected: format!("{} in {found:?}", expect.describe()) });
    }
    Ok(())
}
