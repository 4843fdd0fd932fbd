//! The agents haven ships, by name.

pub mod director;
pub mod filesystem;
pub mod instance;
pub mod vip;

use crate::ocf::Agent;

/// Every agent, in the order `haven agents` lists them.
pub static ALL: &[&dyn Agent] =
    &[&vip::Vip, &filesystem::Filesystem(filesystem::Linux), &director::Director, &instance::Instance];

pub fn find(name: &str) -> Option<&'static dyn Agent> {
    ALL.iter().copied().find(|a| a.spec().name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|a| a.spec().name)
}
