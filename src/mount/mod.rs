//! Mounts: the kernel's mount table (/proc/self/mountinfo), mount(8) and
//! umount(8), the processes that hold a mount, and filesystem calls that may
//! block (a dead NFS server, a frozen FUSE daemon) run where they can be
//! abandoned at a deadline.

pub mod guard;
pub mod holders;
pub mod mountinfo;

pub use mountinfo::{MountEntry, MountTable};
