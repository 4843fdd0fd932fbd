//! /proc/self/mountinfo, parsed (proc(5)). Reading it never touches the
//! mounted filesystems, so it cannot hang on a dead server.

use std::io;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub id: u32,
    pub parent: u32,
    pub major: u32,
    pub minor: u32,
    /// The directory of the filesystem that is mounted (not "/" for bind
    /// mounts of a subdirectory).
    pub root: String,
    pub mount_point: String,
    pub options: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

impl MountEntry {
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.split(',').chain(self.super_options.split(',')).any(|o| o == opt)
    }
}

/// The mount table of this process's mount namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountTable {
    pub entries: Vec<MountEntry>,
}

/// Undo the octal escapes the kernel uses for space, tab, newline and '\'.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        // Three octal digits make at most \377 (one byte); "\777" is not an escape.
        let value = octal.map(|d| d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'))).filter(|v| *v <= 0xff);
        if let Some(v) = value {
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.splitn(3, ' ').collect();
    if l.len() < 6 || r.len() < 3 {
        return None;
    }
    let (major, minor) = l[2].split_once(':')?;
    Some(MountEntry {
        id: l[0].parse().ok()?,
        parent: l[1].parse().ok()?,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root: unescape(l[3]),
        mount_point: unescape(l[4]),
        options: l[5].to_string(),
        fstype: r[0].to_string(),
        source: unescape(r[1]),
        super_options: r[2].to_string(),
    })
}

impl MountTable {
    pub fn parse(text: &str) -> MountTable {
        MountTable { entries: text.lines().filter_map(parse_line).collect() }
    }

    /// Read the table until two consecutive reads agree: a mount or unmount
    /// racing with the read can otherwise show a torn table.
    pub fn read() -> io::Result<MountTable> {
        let mut last = std::fs::read_to_string("/proc/self/mountinfo")?;
        for _ in 0..10 {
            let next = std::fs::read_to_string("/proc/self/mountinfo")?;
            if next == last {
                return Ok(MountTable::parse(&next));
            }
            last = next;
        }
        Ok(MountTable::parse(&last))
    }

    /// The mount on top of `dir` (the last one mounted there), if any.
    pub fn top_at(&self, dir: &str) -> Option<&MountEntry> {
        let at: Vec<&MountEntry> = self.entries.iter().filter(|e| e.mount_point == dir).collect();
        // Stacked mounts: the top one is the one no other mount at the same
        // point has as its parent's child... i.e. whose id is not a parent of
        // another mount at the same point.
        at.iter().find(|e| !at.iter().any(|o| o.parent == e.id)).copied().or(at.last().copied())
    }

    /// Every mount at `dir`, bottom first.
    pub fn all_at(&self, dir: &str) -> Vec<&MountEntry> {
        self.entries.iter().filter(|e| e.mount_point == dir).collect()
    }

    /// Mounts strictly below `dir`, deepest first (the order to unmount).
    pub fn below(&self, dir: &str) -> Vec<&MountEntry> {
        let prefix = if dir == "/" { "/".to_string() } else { format!("{dir}/") };
        let mut v: Vec<&MountEntry> =
            self.entries.iter().filter(|e| e.mount_point.starts_with(&prefix) && e.mount_point != dir).collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.mount_point.matches('/').count()));
        v
    }

    /// The mount a path lives on: the longest mount point that is a path
    /// prefix of `path` (top of the stack when several share it).
    pub fn mount_of(&self, path: &str) -> Option<&MountEntry> {
        let mut best: Option<&str> = None;
        for e in &self.entries {
            let mp = e.mount_point.as_str();
            let covers =
                mp == "/" || path == mp || path.starts_with(mp) && path.as_bytes().get(mp.len()) == Some(&b'/');
            if covers && best.is_none_or(|b| mp.len() > b.len()) {
                best = Some(mp);
            }
        }
        best.and_then(|mp| self.top_at(mp))
    }

    pub fn by_id(&self, id: u32) -> Option<&MountEntry> {
        self.entries.iter().find(|e| e.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
30 22 7:0 / /srv/mail\\040one rw,relatime - ext4 /dev/loop0 rw
31 30 0:40 / /srv/mail\\040one/spool rw - tmpfs tmpfs rw,size=1024k
32 22 7:0 /sub /srv/bind rw,relatime - ext4 /dev/loop0 rw
33 30 0:41 / /srv/mail\\040one rw - tmpfs over rw
40 22 0:50 / /mnt/nfs rw - nfs4 filer:/export/web rw,vers=4.2,addr=203.0.113.5
";

    #[test]
    fn parses_escapes_and_fields() {
        let t = MountTable::parse(SAMPLE);
        assert_eq!(t.entries.len(), 6);
        let e = &t.entries[1];
        assert_eq!((e.id, e.parent, e.major, e.minor), (30, 22, 7, 0));
        assert_eq!(e.mount_point, "/srv/mail one");
        assert_eq!(e.fstype, "ext4");
        assert_eq!(e.source, "/dev/loop0");
        assert_eq!(t.entries[5].source, "filer:/export/web");
        assert!(t.entries[5].has_option("vers=4.2"));
        assert_eq!(t.entries[3].root, "/sub");
    }

    #[test]
    fn stacks_and_submounts() {
        let t = MountTable::parse(SAMPLE);
        assert_eq!(t.top_at("/srv/mail one").map(|e| e.id), Some(33));
        assert_eq!(t.all_at("/srv/mail one").len(), 2);
        let below: Vec<u32> = t.below("/srv/mail one").iter().map(|e| e.id).collect();
        assert_eq!(below, vec![31]);
        assert!(t.below("/srv/mail").is_empty(), "a name prefix is not a path prefix");
        assert_eq!(t.mount_of("/srv/mail one/spool/x").map(|e| e.id), Some(31));
        assert_eq!(t.mount_of("/srv/bind/file").map(|e| e.id), Some(32));
        assert_eq!(t.mount_of("/srv/binder").map(|e| e.id), Some(22));
        assert_eq!(t.mount_of("/etc/passwd").map(|e| e.id), Some(22));
    }

    /// How the kernel escapes a path in mountinfo (space, tab, newline, '\\').
    fn escape(path: &str) -> String {
        path.chars()
            .map(|c| match c {
                ' ' | '\t' | '\n' | '\\' => format!("\\{:03o}", c as u32),
                c => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn prop_mountinfo() {
        use proptest::prelude::*;
        let path = || proptest::string::string_regex("/[a-z \t\n\\\\é0-9._-]{0,24}").unwrap();
        let strategy = (any::<u32>(), any::<u32>(), path(), path(), any::<Vec<u8>>());
        crate::property::run(
            "mountinfo",
            2000,
            strategy,
            |seed| {
                let t = MountTable::parse(&String::from_utf8_lossy(seed));
                assert!(!t.entries.is_empty(), "a seed parses");
            },
            |(id, major, mp, source, noise): (u32, u32, String, String, Vec<u8>)| {
                // A line as the kernel writes it reads back exactly.
                let line = format!("{id} 1 {major}:7 / {} rw,relatime - ext4 {} rw\n", escape(&mp), escape(&source));
                let t = MountTable::parse(&line);
                let e = &t.entries[0];
                assert_eq!((e.id, e.major, e.minor), (id, major, 7));
                assert_eq!((e.mount_point.as_str(), e.source.as_str()), (mp.as_str(), source.as_str()));
                assert_eq!(t.top_at(&mp).map(|e| e.id), Some(id));
                // Any bytes at all: no panic, and whatever parses is queryable.
                let t = MountTable::parse(&String::from_utf8_lossy(&noise));
                for e in &t.entries {
                    let _ = (t.top_at(&e.mount_point), t.below(&e.mount_point), t.mount_of(&e.mount_point));
                }
            },
        );
    }

    #[test]
    fn an_octal_escape_above_one_byte_is_kept_as_text() {
        assert_eq!(unescape("a\\777b\\040c\\12"), "a\\777b c\\12");
    }
}
