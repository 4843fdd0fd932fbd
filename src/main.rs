//! haven: one binary, many OCF agents. Run through a link named after an
//! agent (/usr/lib/ocf/resource.d/haven/vip), `$1` is the OCF action;
//! otherwise `haven <subcommand>`.

use clap::{Parser, Subcommand};
use haven::{agents, net, ocf};
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "haven", version, about = "Pacemaker OCF resource agents for highly available hosting clusters")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an agent action as Pacemaker would (parameters from OCF_RESKEY_*).
    Agent {
        /// Agent name (see `haven agents`).
        name: String,
        /// OCF action: start, stop, monitor, validate-all, meta-data, ...
        action: Option<String>,
    },
    /// List the agents this binary provides.
    Agents,
    /// Send gratuitous ARP / neighbour advertisements (vip's background
    /// announcer; started by vip start with arp_bg).
    #[command(hide = true)]
    Announce { ifindex: u32, ifname: String, mac: String, ip: std::net::IpAddr, count: u32, interval_ms: u64 },
}

/// The agent a link name stands for: "vip", or rgmanager-style "haven-vip.sh".
fn agent_from_argv0(argv0: &OsString) -> Option<&'static dyn ocf::Agent> {
    let base = Path::new(argv0).file_name()?.to_str()?;
    let name = base.strip_suffix(".sh").unwrap_or(base);
    let name = name.strip_prefix("haven-").unwrap_or(name);
    agents::find(name)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(agent) = args.first().and_then(agent_from_argv0) {
        let action = args.get(1).map(|a| a.to_string_lossy().into_owned());
        return ExitCode::from(ocf::agent::run(agent, action.as_deref()));
    }
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Agent { name, action } => match agents::find(&name) {
            Some(agent) => ExitCode::from(ocf::agent::run(agent, action.as_deref())),
            None => {
                eprintln!("haven: unknown agent '{name}' (known: {})", agents::names().collect::<Vec<_>>().join(", "));
                ExitCode::from(ocf::Status::ErrConfigured.code())
            }
        },
        Command::Agents => {
            for name in agents::names() {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        Command::Announce { ifindex, ifname, mac, ip, count, interval_ms } => {
            let Some(mac) = parse_mac(&mac) else {
                eprintln!("haven announce: malformed MAC address {mac:?}");
                return ExitCode::from(2);
            };
            let a = net::announce::Announcement {
                ifindex,
                ifname,
                mac,
                ip,
                count,
                interval: std::time::Duration::from_millis(interval_ms),
            };
            // Bounded by the announcement schedule plus a second.
            let budget = a.interval * count + std::time::Duration::from_secs(1);
            match net::announce::send(&a, &ocf::Deadline::after(budget)) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("haven announce: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
