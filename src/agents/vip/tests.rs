//! vip's start/monitor/stop decisions against the recording double (no
//! root): what is added, removed, probed and announced, and what is refused.

use super::sys::fake::{addr, ether, onlink, Effect, Fake};
use super::*;
use crate::agents::vip::spec::PARAMS;
use crate::ocf::params::Params;
use std::collections::BTreeMap;

fn cfg(pairs: &[(&str, &str)]) -> Config {
    let mut raw: BTreeMap<String, String> = BTreeMap::from([("arp_bg".into(), "false".into())]);
    raw.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_params(&Params::parse(PARAMS, &raw).unwrap()).unwrap()
}

fn dl() -> Deadline {
    Deadline::after(Duration::from_secs(5))
}

const VIP: &str = "198.51.100.7";

fn added(f: &Fake) -> Vec<(u32, u8)> {
    f.changes()
        .iter()
        .filter_map(|e| match e {
            Effect::Add { index, prefix, .. } => Some((*index, *prefix)),
            _ => None,
        })
        .collect()
}

fn reason(r: ActionResult) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(s) => panic!("expected a refusal, got {s:?}"),
    }
}

#[test]
fn start_probes_first_then_adds_with_the_route_prefix_then_announces() {
    let mut f = Fake::node();
    let r = start_with(&cfg(&[("ip", VIP)]), &mut f, &dl());
    assert!(matches!(r, Ok(Status::Success)), "{r:?}");
    let kinds: Vec<&str> = f
        .effects
        .iter()
        .map(|e| match e {
            Effect::Probe(_) => "probe",
            Effect::Add { .. } => "add",
            Effect::Announce { .. } => "announce",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["probe", "add", "announce"]);
    let Effect::Add { broadcast, label, .. } = &f.effects[1] else { unreachable!() };
    assert_eq!(added(&f), [(2, 24)]);
    assert_eq!(*broadcast, Some("198.51.100.255".parse().unwrap()));
    assert_eq!(*label, None);
    let Effect::Probe(p) = &f.effects[0] else { unreachable!() };
    assert_eq!(p.wait, Duration::from_millis(spec_default("arp_probe_timeout")));
}

fn spec_default(name: &str) -> u64 {
    PARAMS.iter().find(|s| s.name == name).and_then(|s| s.default).and_then(|d| d.parse().ok()).unwrap()
}

#[test]
fn start_refuses_when_another_host_answers_the_probe_and_changes_nothing() {
    let mut f = Fake::node();
    f.conflict = Some([2, 9, 9, 9, 9, 9]);
    let why = reason(start_with(&cfg(&[("ip", VIP)]), &mut f, &dl()));
    assert!(why.contains("02:09:09:09:09:09"), "{why}");
    assert!(f.changes().is_empty(), "{:?}", f.effects);
    // run_arping=false: no probe, the address is added.
    let mut f = Fake::node();
    f.conflict = Some([2, 9, 9, 9, 9, 9]);
    assert!(start_with(&cfg(&[("ip", VIP), ("run_arping", "false")]), &mut f, &dl()).is_ok());
    assert!(!f.effects.iter().any(|e| matches!(e, Effect::Probe(_))));
    assert_eq!(added(&f), [(2, 24)]);
}

#[test]
fn start_is_idempotent_and_refuses_a_link_without_carrier() {
    let mut f = Fake::node();
    f.addrs.push(addr(2, VIP, 24));
    assert!(matches!(start_with(&cfg(&[("ip", VIP)]), &mut f, &dl()), Ok(Status::Success)));
    assert!(f.changes().is_empty());
    let mut f = Fake::node();
    f.links[1].carrier = false;
    let why = reason(start_with(&cfg(&[("ip", VIP)]), &mut f, &dl()));
    assert!(why.contains("no carrier"), "{why}");
    assert!(f.effects.is_empty(), "nothing probed or added: {:?}", f.effects);
}

#[test]
fn start_refuses_a_half_set_up_address() {
    let mut f = Fake::node();
    f.addrs.push(addr(2, VIP, 25));
    let why = reason(start_with(&cfg(&[("ip", VIP), ("cidr_netmask", "24")]), &mut f, &dl()));
    assert!(why.contains("prefix /25 instead of /24"), "{why}");
    assert!(f.changes().is_empty());
}

// IPaddr2's findif refusals, as start sees them: nothing probed or added.
#[test]
fn findif_netmask_wider_than_the_network_without_nic_is_refused() {
    let mut f = Fake::node();
    let why = reason(start_with(&cfg(&[("ip", VIP), ("cidr_netmask", "16")]), &mut f, &dl()));
    assert!(why.contains("no on-link route covers 198.51.100.7/16"), "{why}");
    assert!(why.contains("198.51.100.0/24 on eth0"), "names the network found: {why}");
    assert!(f.effects.is_empty(), "{:?}", f.effects);
    // With nic the operator chose the interface: the /16 goes there.
    let mut f = Fake::node();
    assert!(start_with(&cfg(&[("ip", VIP), ("cidr_netmask", "16"), ("nic", "eth0")]), &mut f, &dl()).is_ok());
    assert_eq!(added(&f), [(2, 16)]);
    // Narrower than the network: fine without nic.
    let mut f = Fake::node();
    assert!(start_with(&cfg(&[("ip", VIP), ("cidr_netmask", "28")]), &mut f, &dl()).is_ok());
    assert_eq!(added(&f), [(2, 28)]);
}

#[test]
fn findif_no_route_without_nic_or_netmask_is_refused() {
    for (routes, what) in [
        (vec![], "no route"),
        (vec![onlink("198.51.100.7", 32, 2)], "host route only"),
        (vec![onlink("0.0.0.0", 0, 2)], "default route only"),
    ] {
        let mut f = Fake::node();
        f.routes = routes;
        let why = reason(start_with(&cfg(&[("ip", VIP)]), &mut f, &dl()));
        assert!(why.contains("no on-link route covers 198.51.100.7"), "{what}: {why}");
        assert!(f.effects.is_empty(), "{what}: {:?}", f.effects);
        // validate-all says the same.
        let links = f.links.clone();
        assert!(place(&cfg(&[("ip", VIP)]), &mut f, &links).is_err(), "{what}");
    }
}

#[test]
fn findif_nic_without_netmask_needs_a_route_on_that_nic() {
    let mut f = Fake::node();
    f.links.push(ether(3, "eth1"));
    let why = reason(start_with(&cfg(&[("ip", VIP), ("nic", "eth1")]), &mut f, &dl()));
    assert!(why.contains("no on-link route"), "{why}");
    assert!(f.effects.is_empty());
    let mut f = Fake::node();
    f.links.push(ether(3, "eth1"));
    // nic and netmask both given: no route needed (findif looks nothing up).
    assert!(start_with(&cfg(&[("ip", VIP), ("nic", "eth1"), ("cidr_netmask", "24")]), &mut f, &dl()).is_ok());
    assert_eq!(added(&f), [(3, 24)]);
}

#[test]
fn stop_removes_only_this_nodes_copies_and_is_idempotent() {
    let mut f = Fake::node();
    f.addrs.push(addr(2, VIP, 24));
    f.addrs.push(addr(1, VIP, 32)); // an lvs real-server copy on lo stays
    assert!(matches!(stop_with(&cfg(&[("ip", VIP)]), &mut f), Ok(Status::Success)));
    let ip: IpAddr = VIP.parse().unwrap();
    assert_eq!(f.changes(), [&Effect::Del { index: 2, ip, prefix: 24 }]);
    let before = f.effects.len();
    assert!(matches!(stop_with(&cfg(&[("ip", VIP)]), &mut f), Ok(Status::Success)));
    assert!(f.effects[before..].is_empty(), "second stop changes nothing");
    // A nic that does not exist here: nothing can be up on it.
    let mut f = Fake::node();
    f.addrs.push(addr(2, VIP, 24));
    assert!(matches!(stop_with(&cfg(&[("ip", VIP), ("nic", "eth9")]), &mut f), Ok(Status::Success)));
    assert!(f.changes().is_empty());
}

#[test]
fn stop_does_not_signal_a_process_that_is_not_the_announcer() {
    let mut f = Fake::node();
    let c = cfg(&[("ip", VIP), ("arp_bg", "true")]);
    assert!(start_with(&c, &mut f, &dl()).is_ok());
    assert!(f.effects.iter().any(|e| matches!(e, Effect::AnnounceInBackground { count: 5, .. })));
    assert!(stop_with(&c, &mut f).is_ok());
    assert!(!f.effects.iter().any(|e| matches!(e, Effect::Terminate(_))), "{:?}", f.effects);
    if let Some(d) = &f.dir {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn monitor_reports_each_state() {
    let c = cfg(&[("ip", VIP), ("cidr_netmask", "24")]);
    let mut f = Fake::node();
    assert!(matches!(monitor_with(&c, &mut f, &dl()), Ok(Status::NotRunning)));
    f.addrs.push(addr(2, VIP, 24));
    assert!(matches!(monitor_with(&c, &mut f, &dl()), Ok(Status::Success)));
    f.addrs.last_mut().unwrap().tentative = true;
    assert!(matches!(monitor_with(&c, &mut f, &dl()), Ok(Status::Degraded)));
    f.addrs.last_mut().unwrap().tentative = false;
    f.links[1].carrier = false;
    assert!(matches!(monitor_with(&c, &mut f, &dl()), Ok(Status::NotRunning)));
    f.links[1].carrier = true;
    f.addrs.last_mut().unwrap().prefix = 25;
    assert!(monitor_with(&c, &mut f, &dl()).is_err(), "half set up is an error");
    // On another interface than the configured nic: an error, not running.
    let mut f = Fake::node();
    f.links.push(ether(3, "eth1"));
    f.addrs.push(addr(3, VIP, 24));
    let why = reason(monitor_with(&cfg(&[("ip", VIP), ("nic", "eth0")]), &mut f, &dl()));
    assert!(why.contains("configured on eth1, not on eth0"), "{why}");
    assert!(f.changes().is_empty(), "monitor changes nothing");
}
