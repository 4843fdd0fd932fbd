//! Stopping an instance's services: the escalation (stop signal to the
//! main process, the same to what it leaves behind, SIGKILL to the cgroup
//! after the grace time) and the order (promoted-only services first, each
//! group in reverse), decided here over the [`Sys`] seam.

use super::cgroup::Group;
use super::error::InstanceError;
use super::state::{ServiceState, State};
use super::sys::Sys;
use super::{MaxOf, KILL_RESERVE};
use crate::ocf::Deadline;
use crate::{info, warn};
use std::time::{Duration, Instant};

/// Stop one service: its stop signal to the main process (to every process
/// in its cgroup when the main one is gone), the same signal to stragglers
/// once the main process has exited, then after `grace` SIGKILL to the whole
/// cgroup. The cgroup decides when it is over, not the pid.
pub fn service<S: Sys>(
    sys: &mut S,
    s: &ServiceState,
    scg: &Group,
    grace: Duration,
    dl: &Deadline,
) -> Result<(), Vec<i32>> {
    if !sys.exists(scg) {
        return Ok(());
    }
    let t0 = Instant::now();
    if sys.populated(scg) {
        escalate(sys, s, scg, grace, dl);
    }
    sys.destroy(scg, &dl.max_of(Duration::from_millis(200)))?;
    info!("service {} stopped in {} ms", s.name, t0.elapsed().as_millis());
    Ok(())
}

/// Signal, sweep, and SIGKILL at the end of the grace time.
fn escalate<S: Sys>(sys: &mut S, s: &ServiceState, scg: &Group, grace: Duration, dl: &Deadline) {
    let main = s.ident.filter(|i| sys.alive(i));
    match main {
        Some(i) => sys.signal(i.pid, s.stop_signal),
        None => sys.signal_all(scg, s.stop_signal),
    }
    let mut swept = main.is_none();
    let until = dl.within(grace);
    loop {
        if !sys.populated(scg) {
            return;
        }
        if !swept && !main.is_some_and(|i| sys.alive(&i)) {
            // The main process is gone; what is left was forked by it.
            sys.signal_all(scg, s.stop_signal);
            swept = true;
        }
        if until.expired() {
            let left = sys.all_procs(scg);
            warn!(
                "service {} did not stop within {} ms after SIG{}: killing its cgroup ({} processes: {:?})",
                s.name,
                grace.as_millis(),
                crate::mount::holders::signal_name(s.stop_signal),
                left.len(),
                left
            );
            sys.kill_all(scg);
            return;
        }
        sys.pause(&until, Duration::from_millis(10));
    }
}

/// Stop `order` one after the other, each within its stop timeout and what
/// the action deadline leaves after reserving time for the rest.
pub fn services<S: Sys>(sys: &mut S, order: &[ServiceState], cg: &Group, dl: &Deadline) -> Result<(), InstanceError> {
    let mut left: Vec<i32> = Vec::new();
    for (i, s) in order.iter().enumerate() {
        let reserve = KILL_RESERVE * u32::try_from(order.len() - i).unwrap_or(1);
        let grace = s.stop_timeout.min(dl.remaining().saturating_sub(reserve));
        if let Err(pids) = service(sys, s, &cg.child(&s.name), grace, dl) {
            left.extend(pids);
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        let list: Vec<String> = left.iter().map(i32::to_string).collect();
        Err(InstanceError::Survivors { name: cg.path.display().to_string(), pids: list.join(" ") })
    }
}

/// Stop every service in reverse order, then kill whatever is left in the
/// instance's cgroup (strays in unknown sub-cgroups) and remove it.
pub fn all<S: Sys>(sys: &mut S, st: &State, cg: &Group, dl: &Deadline) -> Result<(), InstanceError> {
    let r = services(sys, &st.stop_order(), cg, dl);
    let final_dl = dl.max_of(Duration::from_millis(500));
    let swept = sys.destroy(cg, &final_dl);
    r?;
    swept.map_err(|pids| {
        let list: Vec<String> = pids.iter().map(i32::to_string).collect();
        InstanceError::Survivors { name: st.name.clone(), pids: list.join(" ") }
    })
}

#[cfg(test)]
mod tests {
    use super::super::file::Role;
    use super::super::process::Ident;
    use super::super::sys::fake::{Effect, Fake};
    use super::*;
    use std::path::PathBuf;

    const TERM: i32 = libc::SIGTERM;

    fn svc(name: &str, pid: i32, role: Role) -> ServiceState {
        ServiceState {
            name: name.into(),
            role,
            optional: false,
            ident: Some(Ident { pid, start: 1 }),
            stop_signal: TERM,
            stop_timeout: Duration::from_millis(40),
        }
    }

    fn cg() -> Group {
        Group::at("/cg/web1")
    }

    fn fake(procs: &[(&str, &[i32])]) -> Fake {
        let mut f = Fake::default();
        f.procs.insert(PathBuf::from("/cg/web1"), vec![]);
        for (name, pids) in procs {
            f.procs.insert(PathBuf::from(format!("/cg/web1/{name}")), pids.to_vec());
        }
        f
    }

    #[test]
    fn a_main_process_that_obeys_gets_only_its_stop_signal() {
        let mut f = fake(&[("web", &[10])]);
        f.obeys.insert(10, vec![TERM]);
        let dl = Deadline::after(Duration::from_secs(5));
        service(&mut f, &svc("web", 10, Role::Any), &cg().child("web"), Duration::from_secs(1), &dl).unwrap();
        assert_eq!(f.effects, vec![Effect::Signal(10, TERM), Effect::Destroy("web".into())]);
    }

    #[test]
    fn stragglers_get_the_signal_when_the_main_process_is_gone_then_sigkill_after_the_grace() {
        // 10 obeys TERM, 11 (its child) ignores it.
        let mut f = fake(&[("web", &[10, 11])]);
        f.obeys.insert(10, vec![TERM]);
        let dl = Deadline::after(Duration::from_secs(5));
        service(&mut f, &svc("web", 10, Role::Any), &cg().child("web"), Duration::from_millis(30), &dl).unwrap();
        assert_eq!(
            f.effects,
            vec![
                Effect::Signal(10, TERM),
                Effect::SignalAll("web".into(), TERM),
                Effect::KillAll("web".into()),
                Effect::Destroy("web".into()),
            ]
        );
    }

    #[test]
    fn without_a_live_main_process_the_whole_cgroup_is_signalled() {
        let mut f = fake(&[("web", &[11])]);
        f.obeys.insert(11, vec![TERM]);
        let dl = Deadline::after(Duration::from_secs(5));
        // The recorded main process (pid 10) no longer exists.
        service(&mut f, &svc("web", 10, Role::Any), &cg().child("web"), Duration::from_secs(1), &dl).unwrap();
        assert_eq!(f.effects, vec![Effect::SignalAll("web".into(), TERM), Effect::Destroy("web".into())]);
    }

    #[test]
    fn promoted_services_stop_first_and_each_group_in_reverse() {
        let mut f = fake(&[("a", &[1]), ("b", &[2]), ("p", &[3]), ("q", &[4])]);
        for pid in 1..=4 {
            f.obeys.insert(pid, vec![TERM]);
        }
        let mut st = State::parse("name=web1\n").unwrap();
        st.services = vec![
            svc("a", 1, Role::Any),
            svc("p", 3, Role::Promoted),
            svc("b", 2, Role::Any),
            svc("q", 4, Role::Promoted),
        ];
        let dl = Deadline::after(Duration::from_secs(5));
        all(&mut f, &st, &cg(), &dl).unwrap();
        let signalled: Vec<i32> =
            f.effects.iter().filter_map(|e| if let Effect::Signal(p, _) = e { Some(*p) } else { None }).collect();
        assert_eq!(signalled, vec![4, 3, 2, 1]);
        assert_eq!(f.effects.last(), Some(&Effect::Destroy("web1".into())));
    }

    #[test]
    fn survivors_are_reported_by_pid() {
        let mut f = fake(&[("web", &[10, 99])]);
        f.obeys.insert(10, vec![TERM]);
        f.unkillable.push(99);
        let dl = Deadline::after(Duration::from_secs(5));
        let mut st = State::parse("name=web1\n").unwrap();
        st.services = vec![svc("web", 10, Role::Any)];
        let e = all(&mut f, &st, &cg(), &dl).unwrap_err();
        assert!(e.to_string().contains("99"), "{e}");
    }
}
