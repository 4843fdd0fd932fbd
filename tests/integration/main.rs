//! haven's integration tests: one test binary (as ripgrep does), running
//! the built `haven` exactly as Pacemaker would, inside throwaway network
//! namespaces where the kernel is touched.

mod checks;
mod cli;
mod common;
mod conformance;
mod director;
mod dr;
mod filesystem;
mod generate;
mod generate_prop;
mod instance;
mod kernel;
mod lab;
mod packaging;
mod trust;
mod vip;
