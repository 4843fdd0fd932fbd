//! haven: one binary, many OCF agents. Run through a link named after an
//! agent (/usr/lib/ocf/resource.d/haven/vip), `$1` is the OCF action;
//! otherwise `haven <subcommand>`.

use clap::{Parser, Subcommand};
use haven::ocf::agent::Caller;
use haven::{agents, generate, lab, net, ocf};
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
        /// Answer as the rgmanager resource agent (meta-data with its extras).
        #[arg(long)]
        rgmanager: bool,
        /// Agent name (see `haven agents`).
        name: String,
        /// OCF action: start, stop, monitor, validate-all, meta-data, ...
        action: Option<String>,
    },
    /// List the agents this binary provides.
    Agents,
    /// Turn a cluster description (TOML) into crm, pcs, CIB XML or RHCS
    /// cluster.conf, after lint; `--check` only lints.
    Generate {
        /// Output format: crm, pcs, cib or cluster.conf.
        #[arg(long, value_name = "FORMAT", required_unless_present = "check")]
        format: Option<String>,
        /// Lint only: print every finding with file and line; exit 1 if any.
        #[arg(long, conflicts_with = "format")]
        check: bool,
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<std::path::PathBuf>,
        /// pcs only: add --force to the commands that read agents' meta-data
        /// (create, clone), for building a CIB file where the agents are not
        /// installed.
        #[arg(long)]
        pcs_force: bool,
        /// Do not read installed agents' meta-data (crm_resource) in lint.
        #[arg(long)]
        no_installed_metadata: bool,
        /// The cluster description.
        file: std::path::PathBuf,
    },
    /// Hosting instances (ocf:haven:instance) known on this node.
    Instance {
        #[command(subcommand)]
        command: InstanceCommand,
    },
    /// Send gratuitous ARP / neighbour advertisements (vip's background
    /// announcer; started by vip start with arp_bg).
    #[command(hide = true)]
    Announce { ifindex: u32, ifname: String, mac: String, ip: std::net::IpAddr, count: u32, interval_ms: u64 },
    /// The load balancer: health checks programming the kernel (ldirectord.cf).
    Director {
        #[command(subcommand)]
        command: DirectorCommand,
    },
    /// A real Pacemaker cluster on this machine (one node per namespace set)
    /// running a cluster description, for demos and failover tests.
    Lab {
        #[command(subcommand)]
        command: LabCommand,
    },
}

#[derive(Subcommand)]
enum LabCommand {
    /// Build the nodes, start corosync and pacemakerd, wait for the
    /// cluster and its resources.
    Up {
        /// Number of nodes (default: the description's).
        #[arg(long)]
        nodes: Option<usize>,
        /// The cluster description (examples/lab-web.toml).
        file: std::path::PathBuf,
    },
    /// Nodes, crm_mon, and where each resource runs.
    Status,
    /// Run a command inside a node (or "client").
    Exec {
        node: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Fail a node: poweroff, cut (link down), killcoro (kill corosync) or
    /// fencing (its fence device fails until heal).
    Fail {
        node: String,
        /// poweroff, cut, killcoro or fencing.
        how: String,
        /// After a poweroff, ask http://ADDR:PORT/ from the client until it
        /// answers and print the time since the poweroff.
        #[arg(long, value_name = "ADDR:PORT")]
        measure: Option<std::net::SocketAddr>,
    },
    /// Repair a node's fence device, put its link back and power it on if
    /// it is off.
    Heal {
        node: String,
        /// Wait this many seconds first.
        #[arg(long, default_value_t = 0)]
        delay: u64,
    },
    /// Remove every process, namespace, mount and file of the lab.
    Down,
}

#[derive(Subcommand)]
enum DirectorCommand {
    /// Run the director daemon in the foreground until SIGTERM.
    Run {
        /// ldirectord.cf-style configuration file.
        #[arg(long)]
        config: std::path::PathBuf,
        /// The nftables table (and state directory) of this director.
        #[arg(long, default_value = "haven_director")]
        table: String,
        /// Override the configuration's backend: auto, nftables or ipvs.
        #[arg(long)]
        backend: Option<String>,
    },
    /// Show the live table and each real server's health.
    Status {
        #[arg(long, default_value = "haven_director")]
        table: String,
    },
    /// Validate a configuration file (errors with line numbers).
    Check {
        #[arg(long)]
        config: std::path::PathBuf,
    },
    /// Check every real server once and report how long the round took
    /// (the kernel table is not touched).
    Round {
        #[arg(long)]
        config: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum InstanceCommand {
    /// Name, host name, IP, state, services and node of every instance
    /// this node knows (its registry under /run/haven/instance).
    List,
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
    // The lab's fence agent, as Pacemaker runs it inside a lab node.
    if args.first().and_then(|a| Path::new(a).file_name()).is_some_and(|n| n == lab::state::FENCE_AGENT) {
        let argv: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        return ExitCode::from(lab::fence::main(&argv));
    }
    if let Some(agent) = args.first().and_then(agent_from_argv0) {
        let action = args.get(1).map(|a| a.to_string_lossy().into_owned());
        // rgmanager runs agents from /usr/share/cluster/*.sh.
        let caller = if args[0].to_string_lossy().ends_with(".sh") { Caller::Rgmanager } else { Caller::Ocf };
        return ExitCode::from(ocf::agent::run_for(agent, action.as_deref(), caller));
    }
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Agent { rgmanager, name, action } => match agents::find(&name) {
            Some(agent) => {
                let caller = if rgmanager { Caller::Rgmanager } else { Caller::Ocf };
                ExitCode::from(ocf::agent::run_for(agent, action.as_deref(), caller))
            }
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
        Command::Generate { format, check, output, pcs_force, no_installed_metadata, file } => {
            let opts = generate::Options {
                pcs: generate::pcs::Options { force: pcs_force },
                installed_metadata: !no_installed_metadata,
            };
            match run_generate(&file, format.as_deref(), check, output.as_deref(), &opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("haven generate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Director { command } => director(command),
        Command::Lab { command } => match run_lab(command) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("haven lab: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Instance { command: InstanceCommand::List } => {
            print!("{}", agents::instance::registry::list());
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

/// `haven generate`: lint, then render to stdout or a file.
fn run_generate(
    file: &Path,
    format: Option<&str>,
    check: bool,
    output: Option<&Path>,
    opts: &generate::Options,
) -> anyhow::Result<()> {
    use anyhow::Context;
    if check {
        let d = generate::parse::load(file)?;
        let report = generate::check(&d, opts);
        for f in &report.findings {
            println!("{f}");
        }
        for agent in &report.unchecked {
            eprintln!("{}: note: parameters of {agent} not checked (its meta-data is not available here)", d.file);
        }
        if !report.findings.is_empty() {
            anyhow::bail!("{}: {} problem(s)", d.file, report.findings.len());
        }
        eprintln!("{}: no problems found", d.file);
        return Ok(());
    }
    let name = format.unwrap_or_default();
    let format = generate::Format::parse(name)
        .with_context(|| format!("unknown format {name:?} (crm, pcs, cib or cluster.conf)"))?;
    let text = generate::generate(file, format, opts)?;
    match output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("failed to write {}", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes()).context("failed to write to standard output")?;
        }
    }
    Ok(())
}

/// `haven lab ...`.
fn run_lab(command: LabCommand) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    match command {
        LabCommand::Up { nodes, file } => {
            let report = lab::up(&file, nodes)?;
            println!("cluster formed in {:.1} s", report.formed_after.as_secs_f64());
            match report.settled_after {
                Some(t) => println!("resources running after {:.1} s:", t.as_secs_f64()),
                None => println!("not every resource runs:"),
            }
            print!("{}", report.snapshot.placement_text());
        }
        LabCommand::Status => print!("{}", lab::status()?),
        LabCommand::Exec { node, command } => {
            let argv = lab::exec_argv(&node, &command)?;
            // The user's own command: it runs as long as they want it to.
            let status = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .status()
                .with_context(|| format!("failed to run {}", argv.join(" ")))?;
            return Ok(ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8));
        }
        LabCommand::Fail { node, how, measure } => {
            let failure = lab::Failure::parse(&how)
                .with_context(|| format!("unknown failure {how:?} (poweroff, cut, killcoro or fencing)"))?;
            let since = std::time::Instant::now();
            lab::fail(&node, failure)?;
            println!("{node}: {how} done");
            if let Some(addr) = measure {
                let limit = std::time::Duration::from_secs(120);
                match lab::client::first_answer(addr, since, limit)? {
                    Some(t) => {
                        println!("{addr} answered the client again {:.2} s after {how} of {node}", t.as_secs_f64())
                    }
                    None => anyhow::bail!("{addr} did not answer the client within {} s", limit.as_secs()),
                }
            }
        }
        LabCommand::Heal { node, delay } => {
            lab::heal(&node, std::time::Duration::from_secs(delay))?;
            println!("{node}: healed");
        }
        LabCommand::Down => {
            let removed = lab::down()?;
            if removed.is_empty() {
                println!("no lab to remove");
            }
            for r in removed {
                println!("removed {r}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn director(command: DirectorCommand) -> ExitCode {
    use haven::lb::{config::BackendChoice, daemon, status};
    match command {
        DirectorCommand::Run { config, table, backend } => {
            let backend = match backend.as_deref() {
                None => None,
                Some("auto") => Some(BackendChoice::Auto),
                Some("nftables") | Some("nft") => Some(BackendChoice::Nftables),
                Some("ipvs") => Some(BackendChoice::Ipvs),
                Some(other) => {
                    eprintln!("haven director: unknown backend {other:?} (auto, nftables, ipvs)");
                    return ExitCode::from(2);
                }
            };
            match daemon::run(daemon::Options { config, table, backend }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("haven director: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        DirectorCommand::Status { table } => match status::Status::read(&status::state_dir(&table)) {
            Some(st) => {
                print!("{}", st.display());
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "haven director: no director runs with table {table} (no status in {})",
                    status::state_dir(&table).display()
                );
                ExitCode::from(3)
            }
        },
        DirectorCommand::Round { config } => match daemon::one_round(&config) {
            Ok((took, up, total)) => {
                println!("round: {total} real servers checked in {:.3} s, {up} up", took.as_secs_f64());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("haven director: {e}");
                ExitCode::FAILURE
            }
        },
        DirectorCommand::Check { config } => match daemon::check(&config) {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    eprintln!("warning: {w}");
                }
                let reals: usize = cfg.virtuals.iter().map(|v| v.reals.len()).sum();
                println!("{}: OK ({} virtual services, {reals} real servers)", config.display(), cfg.virtuals.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
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
