//! The mysql and pgsql negotiate checks, as ldirectord's check_sql does
//! them through DBI: log in with login/passwd to `database`, run the
//! `request` query, and pass only when it returns at least one row.
//! MySQL: handshake v10, mysql_native_password (also after an auth
//! switch), COM_QUERY. PostgreSQL: protocol 3.0 startup, trust, cleartext,
//! md5 or SCRAM-SHA-256 authentication, a simple query.

use super::conn::Conn;
use super::digest;
use super::ProbeError;
use crate::ocf::Deadline;
use ring::{digest as rd, hmac, pbkdf2, rand::SecureRandom};
use std::net::SocketAddr;
use std::num::NonZeroU32;

pub struct Login<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub database: &'a str,
    pub query: &'a str,
}

fn fail(addr: SocketAddr, service: &'static str, why: impl Into<String>) -> ProbeError {
    ProbeError::Protocol { addr, service, why: why.into() }
}

// ---- MySQL ----

/// The parts of a MySQL server handshake a login needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Handshake {
    pub version: String,
    pub salt: Vec<u8>,
    pub plugin: String,
}

fn cstr(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|x| *x == 0)?;
    Some((&b[..i], &b[i + 1..]))
}

/// Parse a handshake v10 payload (None: not one; an ERR packet is handled
/// by the caller).
pub fn parse_handshake(p: &[u8]) -> Option<Handshake> {
    if *p.first()? != 10 {
        return None;
    }
    let (version, rest) = cstr(&p[1..])?;
    let salt1 = rest.get(4..12)?;
    let rest = rest.get(13..)?; // conn id, salt part 1, filler
    let caps_low = u16::from_le_bytes([*rest.first()?, *rest.get(1)?]);
    let caps_high = rest.get(5..7).map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
    let caps = u32::from(caps_low) | (u32::from(caps_high) << 16);
    let salt_len = rest.get(7).copied().unwrap_or(0);
    let mut salt = salt1.to_vec();
    let mut plugin = "mysql_native_password".to_string();
    if let Some(tail) = rest.get(18..) {
        let n = usize::from(salt_len.saturating_sub(8)).max(13).min(tail.len());
        let part2 = &tail[..n];
        salt.extend(part2.iter().take_while(|b| **b != 0));
        if caps & 0x80000 != 0 {
            if let Some((name, _)) = cstr(tail.get(n..)?).or(Some((tail.get(n..)?, &[]))) {
                if !name.is_empty() {
                    plugin = String::from_utf8_lossy(name).into_owned();
                }
            }
        }
    }
    Some(Handshake { version: String::from_utf8_lossy(version).into_owned(), salt, plugin })
}

/// mysql_native_password: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))).
pub fn native_scramble(password: &str, salt: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let sha1 = |parts: &[&[u8]]| {
        let mut c = rd::Context::new(&rd::SHA1_FOR_LEGACY_USE_ONLY);
        for p in parts {
            c.update(p);
        }
        c.finish()
    };
    let h1 = sha1(&[password.as_bytes()]);
    let h2 = sha1(&[h1.as_ref()]);
    let h3 = sha1(&[salt, h2.as_ref()]);
    h1.as_ref().iter().zip(h3.as_ref()).map(|(a, b)| a ^ b).collect()
}

/// An ERR packet's message.
pub fn mysql_error(p: &[u8]) -> Option<String> {
    if *p.first()? != 0xff {
        return None;
    }
    let msg = p.get(3..).unwrap_or_default();
    let msg = msg.strip_prefix(b"#").map_or(msg, |m| m.get(5..).unwrap_or_default());
    Some(String::from_utf8_lossy(msg).into_owned())
}

fn read_packet(c: &mut Conn, d: &Deadline) -> Result<(u8, Vec<u8>), ProbeError> {
    let h = c.exact(4, d)?;
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    Ok((h[3], c.exact(len, d)?))
}

fn write_packet(c: &mut Conn, seq: u8, payload: &[u8], d: &Deadline) -> Result<(), ProbeError> {
    let n = payload.len() as u32;
    let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    p.extend_from_slice(payload);
    c.send(&p, d)
}

pub fn mysql(addr: SocketAddr, l: &Login<'_>, d: &Deadline) -> Result<(), ProbeError> {
    let mut c = Conn::open(addr, false, d)?;
    let (_, p) = read_packet(&mut c, d)?;
    if let Some(e) = mysql_error(&p) {
        return Err(fail(addr, "mysql", format!("refused: {e}")));
    }
    let hs = parse_handshake(&p).ok_or_else(|| fail(addr, "mysql", "the greeting is not a MySQL handshake"))?;
    // LONG_PASSWORD | CONNECT_WITH_DB | PROTOCOL_41 | TRANSACTIONS | SECURE_CONNECTION | PLUGIN_AUTH
    let mut caps: u32 = 0x1 | 0x200 | 0x2000 | 0x8000 | 0x80000;
    if !l.database.is_empty() {
        caps |= 0x8;
    }
    let mut r = caps.to_le_bytes().to_vec();
    r.extend_from_slice(&(1u32 << 24).to_le_bytes());
    r.push(33);
    r.extend_from_slice(&[0; 23]);
    r.extend_from_slice(l.user.as_bytes());
    r.push(0);
    let auth = native_scramble(l.password, &hs.salt);
    r.push(auth.len() as u8);
    r.extend_from_slice(&auth);
    if !l.database.is_empty() {
        r.extend_from_slice(l.database.as_bytes());
        r.push(0);
    }
    r.extend_from_slice(b"mysql_native_password\0");
    write_packet(&mut c, 1, &r, d)?;
    let (mut seq, mut p) = read_packet(&mut c, d)?;
    if p.first() == Some(&0xfe) {
        // Auth switch: only mysql_native_password can be answered here.
        let (name, salt) = cstr(&p[1..]).unwrap_or((&p[1..], &[]));
        if name != b"mysql_native_password" {
            return Err(fail(addr, "mysql", format!("the server asks for {}", String::from_utf8_lossy(name))));
        }
        let salt: Vec<u8> = salt.iter().copied().take_while(|b| *b != 0).collect();
        write_packet(&mut c, seq.wrapping_add(1), &native_scramble(l.password, &salt), d)?;
        (seq, p) = read_packet(&mut c, d)?;
    }
    let _ = seq;
    if let Some(e) = mysql_error(&p) {
        return Err(fail(addr, "mysql", format!("login as {:?} failed: {e}", l.user)));
    }
    if p.first() != Some(&0) {
        return Err(fail(addr, "mysql", "no OK after the login"));
    }
    let mut q = vec![0x03];
    q.extend_from_slice(l.query.as_bytes());
    write_packet(&mut c, 0, &q, d)?;
    let rows = mysql_rows(&mut c, d).map_err(|e| match e {
        ProbeError::Protocol { why, .. } => fail(addr, "mysql", format!("query {:?}: {why}", l.query)),
        other => other,
    })?;
    let _ = write_packet(&mut c, 0, &[0x01], d); // COM_QUIT
    if rows == 0 {
        return Err(fail(addr, "mysql", format!("query {:?} returned no rows", l.query)));
    }
    Ok(())
}

/// Rows of a text result set (columns and EOF skipped); bounded by the
/// connection's read cap.
fn mysql_rows(c: &mut Conn, d: &Deadline) -> Result<usize, ProbeError> {
    let addr = c.addr;
    let (_, first) = read_packet(c, d)?;
    if let Some(e) = mysql_error(&first) {
        return Err(fail(addr, "mysql", e));
    }
    if first.first() == Some(&0) {
        return Ok(0); // OK: not a SELECT
    }
    let mut eofs = 0;
    let mut rows = 0;
    loop {
        let (_, p) = read_packet(c, d)?;
        if let Some(e) = mysql_error(&p) {
            return Err(fail(addr, "mysql", e));
        }
        if p.first() == Some(&0xfe) && p.len() < 9 {
            eofs += 1;
            if eofs == 2 {
                return Ok(rows);
            }
        } else if eofs == 1 {
            rows += 1;
        }
    }
}

// ---- PostgreSQL ----

/// One backend message: (type byte, body).
pub fn pg_message(b: &[u8]) -> Option<(u8, &[u8])> {
    let ty = *b.first()?;
    let len = u32::from_be_bytes(b.get(1..5)?.try_into().ok()?) as usize;
    Some((ty, b.get(5..1 + len.max(4))?))
}

/// The message field (M) of an ErrorResponse.
pub fn pg_error(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find_map(|f| f.strip_prefix(b"M"))
        .map_or_else(|| "unknown error".to_string(), |m| String::from_utf8_lossy(m).into_owned())
}

fn pg_read(c: &mut Conn, d: &Deadline) -> Result<(u8, Vec<u8>), ProbeError> {
    let h = c.exact(5, d)?;
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    if !(4..=super::MAX_RESPONSE).contains(&len) {
        return Err(fail(c.addr, "pgsql", "a message length out of bounds"));
    }
    Ok((h[0], c.exact(len - 4, d)?))
}

fn pg_send(c: &mut Conn, ty: u8, body: &[u8], d: &Deadline) -> Result<(), ProbeError> {
    let mut m = vec![ty];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    c.send(&m, d)
}

pub fn pg_md5(user: &str, password: &str, salt: &[u8]) -> String {
    let inner = digest::hex(&digest::md5(format!("{password}{user}").as_bytes()));
    let mut outer = inner.into_bytes();
    outer.extend_from_slice(salt);
    format!("md5{}", digest::hex(&digest::md5(&outer)))
}

/// SCRAM-SHA-256 server-first message: (nonce, salt, iterations).
pub fn scram_server_first(s: &str) -> Option<(String, Vec<u8>, u32)> {
    let mut nonce = None;
    let mut salt = None;
    let mut iter = None;
    for part in s.split(',') {
        match part.split_at_checked(2)? {
            ("r=", v) => nonce = Some(v.to_string()),
            ("s=", v) => salt = digest::unbase64(v),
            ("i=", v) => iter = v.parse().ok(),
            _ => {}
        }
    }
    Some((nonce?, salt?, iter?))
}

fn scram(c: &mut Conn, password: &str, d: &Deadline) -> Result<(), ProbeError> {
    let addr = c.addr;
    let mut raw = [0u8; 18];
    ring::rand::SystemRandom::new().fill(&mut raw).map_err(|_| fail(addr, "pgsql", "no random bytes"))?;
    let cnonce = digest::base64(&raw);
    let first_bare = format!("n=,r={cnonce}");
    let first = format!("n,,{first_bare}");
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend_from_slice(&(first.len() as u32).to_be_bytes());
    body.extend_from_slice(first.as_bytes());
    pg_send(c, b'p', &body, d)?;
    let (ty, m) = pg_read(c, d)?;
    if ty == b'E' {
        return Err(fail(addr, "pgsql", pg_error(&m)));
    }
    let server_first = String::from_utf8_lossy(m.get(4..).unwrap_or_default()).into_owned();
    let (nonce, salt, iters) = scram_server_first(&server_first)
        .filter(|(n, _, i)| n.starts_with(&cnonce) && *i > 0 && *i <= 1_000_000)
        .ok_or_else(|| fail(addr, "pgsql", "a malformed SCRAM challenge"))?;
    let mut salted = [0u8; 32];
    let iters = NonZeroU32::new(iters).ok_or_else(|| fail(addr, "pgsql", "SCRAM iterations of 0"))?;
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iters, &salt, password.as_bytes(), &mut salted);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored = rd::digest(&rd::SHA256, client_key.as_ref());
    let without_proof = format!("c=biws,r={nonce}");
    let auth = format!("{first_bare},{server_first},{without_proof}");
    let sig = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, stored.as_ref()), auth.as_bytes());
    let proof: Vec<u8> = client_key.as_ref().iter().zip(sig.as_ref()).map(|(a, b)| a ^ b).collect();
    pg_send(c, b'p', format!("{without_proof},p={}", digest::base64(&proof)).as_bytes(), d)
}

pub fn pgsql(addr: SocketAddr, l: &Login<'_>, d: &Deadline) -> Result<(), ProbeError> {
    let mut c = Conn::open(addr, false, d)?;
    let mut body = 196608u32.to_be_bytes().to_vec();
    for (k, v) in [("user", l.user), ("database", l.database)] {
        if !v.is_empty() {
            body.extend_from_slice(format!("{k}\0{v}\0").as_bytes());
        }
    }
    body.push(0);
    let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    m.extend(body);
    c.send(&m, d)?;
    loop {
        let (ty, m) = pg_read(&mut c, d)?;
        match ty {
            b'E' => return Err(fail(addr, "pgsql", format!("login as {:?}: {}", l.user, pg_error(&m)))),
            b'R' => {
                let code = m.get(..4).map_or(u32::MAX, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                match code {
                    0 | 12 => {}
                    3 => pg_send(&mut c, b'p', format!("{}\0", l.password).as_bytes(), d)?,
                    5 => {
                        let salt = m.get(4..8).unwrap_or_default();
                        pg_send(&mut c, b'p', format!("{}\0", pg_md5(l.user, l.password, salt)).as_bytes(), d)?
                    }
                    10 => scram(&mut c, l.password, d)?,
                    other => return Err(fail(addr, "pgsql", format!("authentication method {other} not spoken"))),
                }
            }
            b'Z' => break,
            _ => {} // parameter status, backend key data, notices
        }
    }
    pg_send(&mut c, b'Q', format!("{}\0", l.query).as_bytes(), d)?;
    let mut rows = 0;
    let mut error = None;
    loop {
        let (ty, m) = pg_read(&mut c, d)?;
        match ty {
            b'D' => rows += 1,
            b'E' => error = Some(pg_error(&m)),
            b'Z' => break,
            _ => {}
        }
    }
    let _ = pg_send(&mut c, b'X', &[], d);
    if let Some(e) = error {
        return Err(fail(addr, "pgsql", format!("query {:?}: {e}", l.query)));
    }
    if rows == 0 {
        return Err(fail(addr, "pgsql", format!("query {:?} returned no rows", l.query)));
    }
    Ok(())
}
