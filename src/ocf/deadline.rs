//! The time an action may take, from OCF_RESKEY_CRM_meta_timeout. Every
//! blocking step asks the deadline how long it may wait, so an action ends
//! (with an error) before Pacemaker's own timer kills it.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    end: Instant,
    budget: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{what} did not finish within the action deadline ({budget_ms} ms)")]
pub struct DeadlineExceeded {
    pub what: String,
    pub budget_ms: u128,
}

impl Deadline {
    /// The agent's deadline for an operation that Pacemaker allows `timeout`.
    /// A margin (a tenth, between 100 ms and 2 s) is kept back so the agent
    /// can report why it gave up before it is killed.
    pub fn from_timeout(timeout: Duration) -> Deadline {
        let margin = (timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(2));
        let budget = timeout.saturating_sub(margin).max(Duration::from_millis(50));
        Deadline { end: Instant::now() + budget, budget }
    }

    /// A deadline `d` from now, without margin (for sub-steps).
    pub fn after(d: Duration) -> Deadline {
        Deadline { end: Instant::now() + d, budget: d }
    }

    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The time this deadline allowed in all (for messages).
    pub fn budget(&self) -> Duration {
        self.budget
    }

    pub fn end(&self) -> Instant {
        self.end
    }

    /// The earlier of this deadline and `d` from now.
    pub fn within(&self, d: Duration) -> Deadline {
        let end = self.end.min(Instant::now() + d);
        Deadline { end, budget: self.budget.min(d) }
    }

    /// Fail with the name of the step if no time is left.
    pub fn check(&self, what: impl FnOnce() -> String) -> Result<(), DeadlineExceeded> {
        if self.expired() {
            Err(self.exceeded(what()))
        } else {
            Ok(())
        }
    }

    pub fn exceeded(&self, what: String) -> DeadlineExceeded {
        DeadlineExceeded { what, budget_ms: self.budget.as_millis() }
    }

    /// Sleep for `d`, or until the deadline if that comes first. Returns
    /// false when the deadline cut the sleep short.
    pub fn sleep(&self, d: Duration) -> bool {
        let left = self.remaining();
        std::thread::sleep(d.min(left));
        d <= left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_margin() {
        let d = Deadline::from_timeout(Duration::from_secs(20));
        assert!(d.remaining() <= Duration::from_secs(18));
        assert!(d.remaining() > Duration::from_secs(17));
        let short = Deadline::from_timeout(Duration::from_millis(500));
        assert!(short.remaining() <= Duration::from_millis(400));
    }

    #[test]
    fn check_names_the_step() {
        let d = Deadline::after(Duration::ZERO);
        let e = d.check(|| "waiting for DAD on veth0".into()).unwrap_err();
        assert!(e.to_string().contains("waiting for DAD on veth0"));
        assert!(!d.sleep(Duration::from_secs(5)));
    }
}
