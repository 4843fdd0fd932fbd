//! The system effects of the filesystem agent behind one seam (youki's
//! `Syscall`): reading the mount table, running mount/umount/fsck, stat of a
//! device, finding and signalling the holders of a mount. [`Linux`] is the
//! real one; tests use a recording double, so the agent's start, stop and
//! holder decisions are unit-tested without root.

use crate::exec::{self, ExecError, Finished};
use crate::mount::guard::{bounded, Hung};
use crate::mount::{holders, MountTable};
use crate::ocf::Deadline;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

pub trait System: Sync {
    /// The mount table of this mount namespace.
    fn mount_table(&self) -> std::io::Result<MountTable>;
    /// Run a program (mount, umount, fsck, quotaon) until the deadline.
    fn run(&self, argv: &[&str], dl: &Deadline) -> Result<Finished, ExecError>;
    /// Major and minor of `path`'s device (`rdev`: of the device file
    /// itself); None when it does not exist. Bounded when resolving the path
    /// could reach a filesystem that may hang (a dead server): `table` says
    /// which filesystems the path crosses.
    fn dev_numbers(
        &self,
        path: &str,
        rdev: bool,
        table: &MountTable,
        dl: &Deadline,
    ) -> Result<Option<(u32, u32)>, Hung>;
    /// Create a directory and its parents, bounded by the deadline.
    fn create_dir(&self, path: &str, dl: &Deadline) -> Result<std::io::Result<()>, Hung>;
    /// The processes holding the mount with this id.
    fn holders(&self, id: u32, table: &MountTable) -> Vec<holders::Holder>;
    /// Send a signal to each holder.
    fn signal(&self, holders: &[holders::Holder], signal: i32);
}

/// [`System::run`] requiring exit code 0, as [`exec::run_ok`].
pub fn run_ok(sys: &dyn System, argv: &[&str], dl: &Deadline) -> Result<Finished, ExecError> {
    let f = sys.run(argv, dl)?;
    if f.code == 0 {
        Ok(f)
    } else {
        Err(ExecError::Failed { command: argv.join(" "), code: f.code, stderr: exec::one_line(&f.stderr) })
    }
}

/// The real system.
pub struct Linux;

impl System for Linux {
    fn mount_table(&self) -> std::io::Result<MountTable> {
        MountTable::read()
    }

    fn run(&self, argv: &[&str], dl: &Deadline) -> Result<Finished, ExecError> {
        exec::run(argv, dl)
    }

    fn dev_numbers(
        &self,
        path: &str,
        rdev: bool,
        table: &MountTable,
        dl: &Deadline,
    ) -> Result<Option<(u32, u32)>, Hung> {
        // A helper thread costs more than the stat itself (the monitor at
        // depth 0 is little else): only where the path may hang.
        let meta = if super::path::resolves_locally(path, table, super::kinds::answers_locally) {
            std::fs::metadata(path)
        } else {
            let p = path.to_string();
            bounded(format!("stat {path}"), dl, move || std::fs::metadata(p))?
        };
        Ok(meta.ok().map(|m| {
            let d = if rdev { m.rdev() } else { m.dev() };
            (nix::sys::stat::major(d) as u32, nix::sys::stat::minor(d) as u32)
        }))
    }

    fn create_dir(&self, path: &str, dl: &Deadline) -> Result<std::io::Result<()>, Hung> {
        let dir = path.to_string();
        bounded(format!("creating {path}"), dl, move || std::fs::create_dir_all(&dir))
    }

    fn holders(&self, id: u32, table: &MountTable) -> Vec<holders::Holder> {
        holders::find(&BTreeSet::from([id]), table)
    }

    fn signal(&self, h: &[holders::Holder], signal: i32) {
        holders::signal(h, signal);
    }
}

/// A recording test double: scripted mount tables and program results,
/// every program run and signal sent written down.
#[cfg(test)]
pub mod double {
    use super::*;
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct Recorder {
        /// Mount tables returned one per read; the last one repeats.
        pub tables: Mutex<VecDeque<MountTable>>,
        /// Exit code and stderr per program name, in order; the last repeats.
        /// A program without a script exits 0.
        pub results: Mutex<HashMap<String, VecDeque<(i32, String)>>>,
        pub devices: HashMap<String, (u32, u32)>,
        pub holders: Vec<holders::Holder>,
        /// What happened, in order: "run mount -t ext4 ...", "signal 15 to 42".
        pub log: Mutex<Vec<String>>,
    }

    impl Recorder {
        pub fn with_tables(tables: &[&str]) -> Recorder {
            let r = Recorder::default();
            *r.tables.lock().unwrap() = tables.iter().map(|t| MountTable::parse(t)).collect();
            r
        }

        pub fn script(&self, program: &str, results: &[(i32, &str)]) {
            let q = results.iter().map(|(c, e)| (*c, e.to_string())).collect();
            self.results.lock().unwrap().insert(program.into(), q);
        }

        pub fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }

        pub fn runs(&self) -> Vec<String> {
            self.log().into_iter().filter(|l| l.starts_with("run ")).collect()
        }

        fn note(&self, line: String) {
            self.log.lock().unwrap().push(line);
        }
    }

    fn next<T: Clone>(q: &mut VecDeque<T>) -> Option<T> {
        if q.len() > 1 {
            q.pop_front()
        } else {
            q.front().cloned()
        }
    }

    impl System for Recorder {
        fn mount_table(&self) -> std::io::Result<MountTable> {
            Ok(next(&mut self.tables.lock().unwrap()).unwrap_or_default())
        }

        fn run(&self, argv: &[&str], _dl: &Deadline) -> Result<Finished, ExecError> {
            self.note(format!("run {}", argv.join(" ")));
            let mut results = self.results.lock().unwrap();
            let (code, stderr) = results.get_mut(argv[0]).and_then(next).unwrap_or((0, String::new()));
            Ok(Finished { code, stdout: String::new(), stderr })
        }

        fn dev_numbers(
            &self,
            path: &str,
            _rdev: bool,
            _table: &MountTable,
            _dl: &Deadline,
        ) -> Result<Option<(u32, u32)>, Hung> {
            Ok(self.devices.get(path).copied())
        }

        fn create_dir(&self, path: &str, _dl: &Deadline) -> Result<std::io::Result<()>, Hung> {
            self.note(format!("mkdir {path}"));
            Ok(Ok(()))
        }

        fn holders(&self, _id: u32, _table: &MountTable) -> Vec<holders::Holder> {
            self.holders.clone()
        }

        fn signal(&self, h: &[holders::Holder], signal: i32) {
            for x in h {
                self.note(format!("signal {signal} to {}", x.pid));
            }
        }
    }
}
