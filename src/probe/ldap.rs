//! The ldap/ldaps negotiate check: a simple bind (anonymous, or with
//! login/passwd), then a base-scope search of `request` for
//! (objectClass=*): exactly one entry must come back and, when `receive`
//! is set, its DN must match it (ldirectord's check_ldap). LDAP is BER on
//! the wire; the reader bounds every length by what it holds.

use super::conn::Conn;
use super::{Expect, ProbeError};
use crate::ocf::Deadline;
use std::net::SocketAddr;

/// Messages larger than this are refused (a search for one base entry
/// with no attributes is tiny).
const MAX_MESSAGE: usize = 64 * 1024;

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 128 {
        out.push(n as u8);
    } else {
        let bytes = (n as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(body);
    out
}

fn message(id: u8, op: Vec<u8>) -> Vec<u8> {
    let mut body = tlv(0x02, &[id]);
    body.extend(op);
    tlv(0x30, &body)
}

pub fn bind_request(id: u8, dn: &str, password: &str) -> Vec<u8> {
    let mut b = tlv(0x02, &[3]);
    b.extend(tlv(0x04, dn.as_bytes()));
    b.extend(tlv(0x80, password.as_bytes()));
    message(id, tlv(0x60, &b))
}

pub fn search_request(id: u8, base: &str, time_limit: u8) -> Vec<u8> {
    let mut b = tlv(0x04, base.as_bytes());
    b.extend(tlv(0x0a, &[0])); // scope: base object
    b.extend(tlv(0x0a, &[0])); // never dereference aliases
    b.extend(tlv(0x02, &[0])); // no size limit
    b.extend(tlv(0x02, &[time_limit]));
    b.extend(tlv(0x01, &[0])); // types only: false
    b.extend(tlv(0x87, b"objectClass")); // present filter
    b.extend(tlv(0x30, &tlv(0x04, b"1.1"))); // no attributes
    message(id, tlv(0x63, &b))
}

/// One TLV at the start of `b`: (tag, body, total length).
pub fn read_tlv(b: &[u8]) -> Option<(u8, &[u8], usize)> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let body = b.get(head..head.checked_add(len)?)?;
    Some((tag, body, head + len))
}

/// An LDAPMessage: (message id, operation tag, operation body).
pub fn parse_message(b: &[u8]) -> Option<(u32, u8, &[u8])> {
    let (tag, seq, _) = read_tlv(b)?;
    if tag != 0x30 {
        return None;
    }
    let (itag, id, used) = read_tlv(seq)?;
    if itag != 0x02 || id.is_empty() || id.len() > 4 {
        return None;
    }
    let id = id.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b));
    let (op, body, _) = read_tlv(seq.get(used..)?)?;
    Some((id, op, body))
}

/// The resultCode of an LDAPResult (bind response, search done).
pub fn result_code(body: &[u8]) -> Option<u32> {
    let (tag, code, _) = read_tlv(body)?;
    if tag != 0x0a || code.is_empty() || code.len() > 4 {
        return None;
    }
    Some(code.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)))
}

/// The DN of a search result entry.
pub fn entry_dn(body: &[u8]) -> Option<String> {
    let (tag, dn, _) = read_tlv(body)?;
    (tag == 0x04).then(|| String::from_utf8_lossy(dn).into_owned())
}

/// Read one whole message from the connection.
fn next_message(c: &mut Conn, d: &Deadline) -> Result<Vec<u8>, ProbeError> {
    let addr = c.addr;
    let bad = |why: &str| ProbeError::Protocol { addr, service: "ldap", why: why.into() };
    let mut head = c.exact(2, d)?;
    if head[1] >= 0x80 {
        let n = usize::from(head[1] & 0x7f);
        if n == 0 || n > 4 {
            return Err(bad("a length the reader does not take"));
        }
        head.extend(c.exact(n, d)?);
    }
    let len = if head[1] < 0x80 {
        usize::from(head[1])
    } else {
        head[2..].iter().fold(0usize, |a, b| (a << 8) | usize::from(*b))
    };
    if len > MAX_MESSAGE {
        return Err(bad("a message larger than the check reads"));
    }
    head.extend(c.exact(len, d)?);
    Ok(head)
}

pub fn check(
    addr: SocketAddr,
    tls: bool,
    login: Option<(&str, &str)>,
    base: &str,
    expect: &Expect,
    d: &Deadline,
) -> Result<(), ProbeError> {
    let fail = |why: String| ProbeError::Protocol { addr, service: "ldap", why };
    let mut c = Conn::open(addr, tls, d)?;
    let (dn, pw) = login.unwrap_or(("", ""));
    c.send(&bind_request(1, dn, pw), d)?;
    let m = next_message(&mut c, d)?;
    match parse_message(&m) {
        Some((1, 0x61, body)) => match result_code(body) {
            Some(0) => {}
            code => return Err(fail(format!("bind failed (result code {code:?})"))),
        },
        _ => return Err(fail("the bind answer is not an LDAP bind response".into())),
    }
    let secs = d.remaining().as_secs().clamp(1, 255) as u8;
    c.send(&search_request(2, base, secs), d)?;
    let mut dns = Vec::new();
    loop {
        let m = next_message(&mut c, d)?;
        match parse_message(&m) {
            Some((2, 0x64, body)) => dns.push(entry_dn(body).unwrap_or_default()),
            Some((2, 0x73, _)) => {} // referral: not an entry
            Some((2, 0x65, body)) => match result_code(body) {
                Some(0) => break,
                code => return Err(fail(format!("search of {base:?} failed (result code {code:?})"))),
            },
            _ => return Err(fail("the search answer is not an LDAP search response".into())),
        }
        if dns.len() > 1 {
            break;
        }
    }
    let _ = c.send(&message(3, vec![0x42, 0x00]), d);
    if dns.len() != 1 {
        return Err(fail(format!("the search of {base:?} found {} entries, not one", dns.len())));
    }
    if !expect.matches(&dns[0]) {
        return Err(ProbeError::Unexpected { addr, expected: expect.describe() });
    }
    Ok(())
}
