//! The radius negotiate check (ldirectord's check_radius): an
//! Access-Request for login/passwd signed with `secret`; healthy only when
//! the server answers Access-Accept with a response authenticator that
//! proves it knows the secret. The answer parser reads untrusted bytes.

use super::conn;
use super::digest::{hmac_md5, md5};
use super::ProbeError;
use crate::ocf::Deadline;
use ring::rand::SecureRandom;
use std::net::SocketAddr;

const ACCESS_REQUEST: u8 = 1;
const ACCESS_ACCEPT: u8 = 2;
const ACCESS_REJECT: u8 = 3;

fn attr(out: &mut Vec<u8>, ty: u8, value: &[u8]) {
    out.push(ty);
    out.push((value.len() + 2) as u8);
    out.extend_from_slice(value);
}

/// RFC 2865 User-Password hiding.
pub fn hide_password(password: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let mut p = password.iter().copied().take(128).collect::<Vec<u8>>();
    let pad = (16 - p.len() % 16) % 16;
    p.extend(std::iter::repeat_n(0, if p.is_empty() { 16 } else { pad }));
    let mut out = Vec::with_capacity(p.len());
    let mut prev: Vec<u8> = authenticator.to_vec();
    for block in p.chunks(16) {
        let mut h = secret.to_vec();
        h.extend_from_slice(&prev);
        let b = md5(&h);
        let c: Vec<u8> = block.iter().zip(b.iter()).map(|(x, y)| x ^ y).collect();
        out.extend_from_slice(&c);
        prev = c;
    }
    out
}

pub fn request(id: u8, auth: &[u8; 16], user: &str, password: &str, secret: &str) -> Vec<u8> {
    let mut attrs = Vec::new();
    attr(&mut attrs, 1, &user.as_bytes()[..user.len().min(253)]);
    attr(&mut attrs, 2, &hide_password(password.as_bytes(), secret.as_bytes(), auth));
    attr(&mut attrs, 32, b"haven-check"); // NAS-Identifier
    let ma_at = attrs.len();
    attr(&mut attrs, 80, &[0; 16]); // Message-Authenticator, filled below
    let mut p = vec![ACCESS_REQUEST, id, 0, 0];
    p.extend_from_slice(auth);
    p.extend_from_slice(&attrs);
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    let mac = hmac_md5(secret.as_bytes(), &p);
    p[20 + ma_at + 2..20 + ma_at + 18].copy_from_slice(&mac);
    p
}

/// The code of a response to request `id` whose authenticator proves the
/// secret; None when the bytes are not such a response.
pub fn verify_response(b: &[u8], id: u8, req_auth: &[u8; 16], secret: &str) -> Option<u8> {
    if b.len() < 20 || b[1] != id {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    let b = b.get(..len)?;
    if len < 20 {
        return None;
    }
    let mut h = b[..4].to_vec();
    h.extend_from_slice(req_auth);
    h.extend_from_slice(&b[20..]);
    h.extend_from_slice(secret.as_bytes());
    (md5(&h)[..] == b[4..20]).then_some(b[0])
}

pub fn check(addr: SocketAddr, user: &str, password: &str, secret: &str, d: &Deadline) -> Result<(), ProbeError> {
    let fail = |why: String| ProbeError::Protocol { addr, service: "radius", why };
    let mut auth = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut auth).map_err(|_| fail("no random bytes".into()))?;
    let id = auth[0];
    let req = request(id, &auth, user, password, secret);
    let answer = conn::udp_exchange(addr, &req, d, |b| b.get(1) == Some(&id))?;
    match verify_response(&answer, id, &auth, secret) {
        Some(ACCESS_ACCEPT) => Ok(()),
        Some(ACCESS_REJECT) => Err(fail(format!("Access-Reject for {user:?}"))),
        Some(code) => Err(fail(format!("answer code {code}, not Access-Accept"))),
        None => Err(fail("the answer is not signed with the secret (wrong secret?)".into())),
    }
}
