//! haven: one binary, many OCF agents. Run through a link named after an
//! agent (/usr/lib/ocf/resource.d/haven/vip), `$1` is the OCF action;
//! otherwise `haven <subcommand>`.

use clap::{Parser, Subcommand, ValueEnum};
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
        /// Output format.
        #[arg(long, value_name = "FORMAT", required_unless_present = "check")]
        format: Option<Format>,
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

/// `haven lab up --kernel`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LabKernel {
    Auto,
    Real,
    Standins,
}

#[derive(Subcommand)]
enum LabCommand {
    /// Build the nodes, start corosync and pacemakerd, wait for the
    /// cluster and its resources.
    Up {
        /// Number of nodes (default: the description's).
        #[arg(long)]
        nodes: Option<usize>,
        /// auto: directors on IPVS and NFS served by the kernel when it has
        /// IPVS and nfsd (the script/vm guest), stand-ins otherwise; real:
        /// that or refuse; standins: always the stand-ins.
        #[arg(long, value_enum, default_value_t = LabKernel::Auto)]
        kernel: LabKernel,
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
        /// How the node fails.
        how: FailHow,
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
    /// One turn of a rolling upgrade: standby NODE, point its haven at
    /// BINARY, take it out of standby, wait until everything runs again.
    Upgrade {
        node: String,
        /// The haven binary the node runs from now on.
        binary: std::path::PathBuf,
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
        /// Override the configuration's backend.
        #[arg(long)]
        backend: Option<Backend>,
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

/// `haven generate --format`.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// crm shell commands.
    Crm,
    /// pcs commands.
    Pcs,
    /// CIB XML.
    #[value(alias = "xml")]
    Cib,
    /// RHCS cluster.conf.
    #[value(name = "cluster.conf", alias = "cluster-conf", alias = "rhcs")]
    ClusterConf,
}

impl From<Format> for generate::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Crm => generate::Format::Crm,
            Format::Pcs => generate::Format::Pcs,
            Format::Cib => generate::Format::Cib,
            Format::ClusterConf => generate::Format::ClusterConf,
        }
    }
}

/// `haven lab fail NODE HOW`.
#[derive(Clone, Copy, ValueEnum)]
enum FailHow {
    /// Every process of the node dies, its link goes down.
    Poweroff,
    /// The link goes down; the node keeps running (a partition).
    Cut,
    /// corosync is killed; pacemaker is left to notice.
    Killcoro,
    /// The node's fence device fails from now on (until `heal`).
    Fencing,
}

impl From<FailHow> for lab::Failure {
    fn from(f: FailHow) -> Self {
        match f {
            FailHow::Poweroff => lab::Failure::Poweroff,
            FailHow::Cut => lab::Failure::Cut,
            FailHow::Killcoro => lab::Failure::Killcoro,
            FailHow::Fencing => lab::Failure::Fencing,
        }
    }
}

/// `haven director run --backend`.
#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Auto,
    #[value(alias = "nft")]
    Nftables,
    Ipvs,
}

impl From<Backend> for haven::lb::config::BackendChoice {
    fn from(b: Backend) -> Self {
        use haven::lb::config::BackendChoice;
        match b {
            Backend::Auto => BackendChoice::Auto,
            Backend::Nftables => BackendChoice::Nftables,
            Backend::Ipvs => BackendChoice::Ipvs,
        }
    }
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

/// Exit codes of `haven <subcommand>` (the README's table). Agent actions
/// (`haven agent`, or a link named after the agent) exit with OCF codes
/// instead, and `haven lab exec` with its command's code.
mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The operation failed (the message says why), or `generate --check`
    /// found problems.
    pub const FAILED: u8 = 1;
    /// The command line is malformed (clap's own code for usage errors).
    pub const USAGE: u8 = 2;
    /// `director status`: no director runs with that table.
    pub const NOT_RUNNING: u8 = 3;
}

fn main() -> ExitCode {
    ExitCode::from(run(std::env::args_os().collect()))
}

/// Dispatch on argv[0] (the lab's fence agent, an agent link) or on the
/// subcommand; every error is printed here, once.
fn run(args: Vec<OsString>) -> u8 {
    // The lab's fence agent, as Pacemaker runs it inside a lab node.
    if args.first().and_then(|a| Path::new(a).file_name()).is_some_and(|n| n == lab::state::FENCE_AGENT) {
        let argv: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        return lab::fence::main(&argv);
    }
    if let Some(agent) = args.first().and_then(agent_from_argv0) {
        let action = args.get(1).map(|a| a.to_string_lossy().into_owned());
        // rgmanager runs agents from /usr/share/cluster/*.sh.
        let caller = if args[0].to_string_lossy().ends_with(".sh") { Caller::Rgmanager } else { Caller::Ocf };
        return ocf::agent::run_for(agent, action.as_deref(), caller);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { exit::OK };
        }
    };
    let (name, result) = match cli.command {
        Command::Agent { rgmanager, name, action } => return agent(rgmanager, &name, action.as_deref()),
        Command::Agents => ("agents", out(&agents::names().map(|n| format!("{n}\n")).collect::<String>())),
        Command::Generate { format, check, output, pcs_force, no_installed_metadata, file } => {
            let opts = generate::Options {
                pcs: generate::pcs::Options { force: pcs_force },
                installed_metadata: !no_installed_metadata,
            };
            ("generate", run_generate(&file, format.map(Into::into), check, output.as_deref(), &opts))
        }
        Command::Director { command } => ("director", director(command)),
        Command::Lab { command } => ("lab", run_lab(command)),
        Command::Instance { command: InstanceCommand::List } => ("instance", out(&agents::instance::registry::list())),
        Command::Announce { ifindex, ifname, mac, ip, count, interval_ms } => {
            ("announce", announce(ifindex, ifname, &mac, ip, count, interval_ms))
        }
    };
    match result {
        Ok(code) => code,
        // A reader that went away (`haven agents | head -1`) is not a failure.
        Err(e) if is_broken_pipe(&e) => exit::OK,
        Err(e) => {
            eprintln!("haven {name}: {}", message(&e));
            exit::FAILED
        }
    }
}

/// Write `text` to standard output.
fn out(text: &str) -> anyhow::Result<u8> {
    use std::io::Write;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(exit::OK)
}

/// The error and its causes on one line, each cause once: errors that
/// already name their source are not followed by it again.
fn message(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1).map(|c| c.to_string()) {
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// `haven agent NAME ACTION`: the action's OCF exit code.
fn agent(rgmanager: bool, name: &str, action: Option<&str>) -> u8 {
    match agents::find(name) {
        Some(agent) => {
            let caller = if rgmanager { Caller::Rgmanager } else { Caller::Ocf };
            ocf::agent::run_for(agent, action, caller)
        }
        None => {
            eprintln!("haven: unknown agent '{name}' (known: {})", agents::names().collect::<Vec<_>>().join(", "));
            ocf::Status::ErrConfigured.code()
        }
    }
}

/// `haven announce` (vip's background announcer).
fn announce(ifindex: u32, ifname: String, mac: &str, ip: std::net::IpAddr, count: u32, ms: u64) -> anyhow::Result<u8> {
    let Some(mac) = parse_mac(mac) else {
        eprintln!("haven announce: malformed MAC address {mac:?}");
        return Ok(exit::USAGE);
    };
    let interval = std::time::Duration::from_millis(ms);
    let a = net::announce::Announcement { ifindex, ifname, mac, ip, count, interval };
    // Bounded by the announcement schedule plus a second.
    let budget = a.interval * count + std::time::Duration::from_secs(1);
    net::announce::send(&a, &ocf::Deadline::after(budget))?;
    Ok(exit::OK)
}

/// `haven generate`: lint, then render to stdout or a file.
fn run_generate(
    file: &Path,
    format: Option<generate::Format>,
    check: bool,
    output: Option<&Path>,
    opts: &generate::Options,
) -> anyhow::Result<u8> {
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
        return Ok(exit::OK);
    }
    let format = format.context("--format is required (crm, pcs, cib or cluster.conf)")?;
    let text = generate::generate(file, format, opts)?;
    match output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("failed to write {}", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes()).context("failed to write to standard output")?;
        }
    }
    Ok(exit::OK)
}

/// `haven lab ...`.
fn run_lab(command: LabCommand) -> anyhow::Result<u8> {
    use anyhow::Context;
    match command {
        LabCommand::Up { nodes, kernel, file } => {
            let choice = match kernel {
                LabKernel::Auto => lab::kernel::Choice::Auto,
                LabKernel::Real => lab::kernel::Choice::Real,
                LabKernel::Standins => lab::kernel::Choice::Standins,
            };
            let report = lab::up(&file, nodes, choice)?;
            println!("cluster formed in {:.1} s", report.formed_after.as_secs_f64());
            match report.settled_after {
                Some(t) => println!("resources running after {:.1} s:", t.as_secs_f64()),
                None => println!("not every resource runs:"),
            }
            print!("{}", report.snapshot.placement_text());
        }
        LabCommand::Status => return out(&lab::status()?),
        LabCommand::Exec { node, command } => {
            let argv = lab::exec_argv(&node, &command)?;
            // The user's own command: it runs as long as they want it to.
            let status = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .status()
                .with_context(|| format!("failed to run {}", argv.join(" ")))?;
            return Ok(status.code().unwrap_or(1).clamp(0, 255) as u8);
        }
        LabCommand::Fail { node, how: fail, measure } => {
            let how = fail.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            let since = std::time::Instant::now();
            lab::fail(&node, fail.into())?;
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
        LabCommand::Upgrade { node, binary } => {
            let t = lab::upgrade::upgrade(&node, &binary)?;
            println!("{node}: {} -> {} ({})", t.from.display(), t.to.display(), t.version);
            println!(
                "{node}: upgraded in {:.2} s (standby drained it in {:.2} s, settled {:.2} s after unstandby)",
                t.total.as_secs_f64(),
                t.drained.as_secs_f64(),
                t.returned.as_secs_f64()
            );
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
    Ok(exit::OK)
}

fn director(command: DirectorCommand) -> anyhow::Result<u8> {
    use haven::lb::{daemon, status};
    match command {
        DirectorCommand::Run { config, table, backend } => {
            daemon::run(daemon::Options { config, table, backend: backend.map(Into::into) })?;
        }
        DirectorCommand::Status { table } => match status::Status::read(&status::state_dir(&table)) {
            Some(st) => return out(&st.display()),
            None => {
                eprintln!(
                    "haven director: no director runs with table {table} (no status in {})",
                    status::state_dir(&table).display()
                );
                return Ok(exit::NOT_RUNNING);
            }
        },
        DirectorCommand::Round { config } => {
            let (took, up, total) = daemon::one_round(&config)?;
            out(&format!("round: {total} real servers checked in {:.3} s, {up} up\n", took.as_secs_f64()))?;
        }
        DirectorCommand::Check { config } => {
            let cfg = daemon::check(&config)?;
            for w in &cfg.warnings {
                eprintln!("warning: {w}");
            }
            let reals: usize = cfg.virtuals.iter().map(|v| v.reals.len()).sum();
            let n = cfg.virtuals.len();
            out(&format!("{}: OK ({n} virtual services, {reals} real servers)\n", config.display()))?;
        }
    }
    Ok(exit::OK)
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
