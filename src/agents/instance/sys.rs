//! The instance agent's system effects at stop behind one seam (youki's
//! Syscall pattern): cgroup state, process liveness and signals. `Real`
//! does them through the cgroup files and nix; a recording double in the
//! tests checks the stop escalation (stop signal, sweep, SIGKILL, order)
//! without root. The namespace tests cover the kernel's side.

use super::cgroup::Group;
use super::process::Ident;
use crate::ocf::Deadline;
use std::time::Duration;

pub trait Sys {
    /// Whether the cgroup exists.
    fn exists(&self, g: &Group) -> bool;
    /// Whether any process is in it or below it.
    fn populated(&self, g: &Group) -> bool;
    /// The same process (pid and start time), not a zombie.
    fn alive(&self, i: &Ident) -> bool;
    /// Every process in it and below it.
    fn all_procs(&self, g: &Group) -> Vec<i32>;
    /// `sig` to one process, then SIGCONT (a stopped process cannot act).
    fn signal(&mut self, pid: i32, sig: i32);
    /// `sig` (and SIGCONT) to every process in it and below it.
    fn signal_all(&mut self, g: &Group, sig: i32);
    /// SIGKILL to everything in it and below it.
    fn kill_all(&mut self, g: &Group);
    /// Kill what is left and remove it; the survivors at the deadline.
    fn destroy(&mut self, g: &Group, dl: &Deadline) -> Result<(), Vec<i32>>;
    /// Wait a moment (bounded by `dl`) before looking again.
    fn pause(&mut self, dl: &Deadline, d: Duration);
}

/// The real system.
pub struct Real;

impl Sys for Real {
    fn exists(&self, g: &Group) -> bool {
        g.exists()
    }
    fn populated(&self, g: &Group) -> bool {
        g.populated()
    }
    fn alive(&self, i: &Ident) -> bool {
        i.alive()
    }
    fn all_procs(&self, g: &Group) -> Vec<i32> {
        g.all_procs()
    }
    fn signal(&mut self, pid: i32, sig: i32) {
        super::cgroup::send(pid, sig);
    }
    fn signal_all(&mut self, g: &Group, sig: i32) {
        g.signal_all(sig);
    }
    fn kill_all(&mut self, g: &Group) {
        g.kill();
    }
    fn destroy(&mut self, g: &Group, dl: &Deadline) -> Result<(), Vec<i32>> {
        g.destroy(dl)
    }
    fn pause(&mut self, dl: &Deadline, d: Duration) {
        dl.sleep(d);
    }
}

#[cfg(test)]
pub mod fake {
    //! A recording double: processes are pids in cgroup paths; each pid
    //! either exits on the signals it obeys or ignores all but SIGKILL.
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Effect {
        Signal(i32, i32),
        SignalAll(String, i32),
        KillAll(String),
        Destroy(String),
    }

    #[derive(Default)]
    pub struct Fake {
        /// Live pids per cgroup path.
        pub procs: BTreeMap<PathBuf, Vec<i32>>,
        /// Signals a pid exits on (absent: it ignores everything but KILL).
        pub obeys: BTreeMap<i32, Vec<i32>>,
        /// Pids that take their cgroup's other processes with them when
        /// they exit (a main process whose children leave when it does).
        pub leader: Vec<i32>,
        /// Pids even SIGKILL does not end (stuck in the kernel).
        pub unkillable: Vec<i32>,
        pub effects: Vec<Effect>,
    }

    fn name(g: &Group) -> String {
        g.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    impl Fake {
        fn under<'a>(&'a self, g: &'a Group) -> impl Iterator<Item = (&'a PathBuf, &'a Vec<i32>)> + 'a {
            self.procs.iter().filter(move |(p, _)| p.starts_with(&g.path))
        }
        fn deliver(&mut self, pid: i32, sig: i32) {
            if sig == libc::SIGCONT || self.unkillable.contains(&pid) {
                return;
            }
            let dies = sig == libc::SIGKILL || self.obeys.get(&pid).is_some_and(|s| s.contains(&sig));
            if !dies {
                return;
            }
            let lead = self.leader.contains(&pid);
            for v in self.procs.values_mut() {
                if v.contains(&pid) && lead {
                    v.clear();
                }
                v.retain(|p| *p != pid);
            }
        }
    }

    impl Sys for Fake {
        fn exists(&self, g: &Group) -> bool {
            self.under(g).next().is_some()
        }
        fn populated(&self, g: &Group) -> bool {
            self.under(g).any(|(_, v)| !v.is_empty())
        }
        fn alive(&self, i: &Ident) -> bool {
            self.procs.values().any(|v| v.contains(&i.pid))
        }
        fn all_procs(&self, g: &Group) -> Vec<i32> {
            self.under(g).flat_map(|(_, v)| v.clone()).collect()
        }
        fn signal(&mut self, pid: i32, sig: i32) {
            self.effects.push(Effect::Signal(pid, sig));
            self.deliver(pid, sig);
        }
        fn signal_all(&mut self, g: &Group, sig: i32) {
            self.effects.push(Effect::SignalAll(name(g), sig));
            for pid in self.all_procs(g) {
                self.deliver(pid, sig);
            }
        }
        fn kill_all(&mut self, g: &Group) {
            self.effects.push(Effect::KillAll(name(g)));
            for pid in self.all_procs(g) {
                self.deliver(pid, libc::SIGKILL);
            }
        }
        fn destroy(&mut self, g: &Group, _dl: &Deadline) -> Result<(), Vec<i32>> {
            self.effects.push(Effect::Destroy(name(g)));
            let left = self.all_procs(g);
            if !left.is_empty() {
                return Err(left);
            }
            let path = g.path.clone();
            self.procs.retain(|p, _| !p.starts_with(&path));
            Ok(())
        }
        fn pause(&mut self, _dl: &Deadline, d: Duration) {
            std::thread::sleep(d.min(Duration::from_millis(2)));
        }
    }
}
