//! The depth-0 check of a network filesystem: one attribute request
//! (statfs, which NFS always sends to the server) made on a helper thread
//! that is abandoned at a short deadline. Naming the mount point asks the
//! server nothing, so without this a dead server is only seen by a deeper
//! monitor (or never, at depth 0).

use super::FsError;
use crate::error::AgentError;
use crate::mount::guard::bounded;
use crate::ocf::Deadline;
use std::time::Duration;

/// At most this long for the server's answer, and never past the action's
/// deadline: a healthy server answers in milliseconds; a dead one must still
/// leave time for the action to report.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Ask the server behind mount point `mp` for the filesystem's attributes.
pub fn server_answers(mp: &str, fstype: &str, dl: &Deadline) -> Result<(), AgentError> {
    let short = dl.within(ANSWER_WITHIN.min(dl.remaining() / 2));
    let path = mp.to_string();
    let answer = bounded(format!("statfs of {mp} (asks the {fstype} server)"), &short, move || {
        nix::sys::statfs::statfs(path.as_str()).map(|_| ())
    })?;
    answer.map_err(|errno| {
        FsError::Io(crate::error::IoError::new("statfs (asks the server)", mp, std::io::Error::from(errno))).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_filesystem_answers_and_a_missing_one_is_an_error() {
        let dl = Deadline::after(Duration::from_secs(5));
        assert!(server_answers("/", "nfs", &dl).is_ok());
        let e = server_answers("/nonexistent/haven-netcheck", "nfs", &dl).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/haven-netcheck"), "{e}");
    }
}
