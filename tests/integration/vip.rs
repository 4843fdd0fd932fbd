//! ocf:haven:vip against the real kernel, inside throwaway namespaces: a
//! "node" namespace runs the agent, a "peer" namespace on the same link
//! watches the wire and plays the other host.

use crate::common::*;
use std::time::Duration;

const VIP: &str = "198.51.100.10";
const VIP6: &str = "2001:db8:1::10";

fn vip<'a>(pair: &'a Pair, ip: &str) -> Run<'a> {
    Run::new("vip").inside(&pair.node).param("ip", ip).param("arp_bg", "false").param("arp_interval", "20")
}

#[test]
fn ipv4_start_monitor_stop_cycle() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    let r = vip(&pair, VIP).param("cidr_netmask", "24").param("iflabel", "web");
    assert_eq!(r.probe().code, 7, "probe before start");
    r.expect("monitor", 7);
    r.expect("start", 0);
    let lines = pair.node.addrs_of(VIP);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("v0") && lines[0].contains("/24"), "{}", lines[0]);
    assert!(lines[0].contains("brd 198.51.100.255"), "broadcast computed: {}", lines[0]);
    assert!(lines[0].contains("v0:web"), "label: {}", lines[0]);
    r.expect("monitor", 0);
    assert_eq!(r.probe().code, 0, "probe of a running VIP");
    r.expect("start", 0); // idempotent
    assert_eq!(pair.node.addrs_of(VIP).len(), 1);
    r.expect("stop", 0);
    assert!(pair.node.addrs_of(VIP).is_empty());
    r.expect("monitor", 7);
    r.expect("stop", 0); // idempotent
}

#[test]
fn ipv6_start_waits_for_dad_and_cycles() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    let r = vip(&pair, VIP6).param("cidr_netmask", "64");
    assert_eq!(r.probe().code, 7);
    r.expect("start", 0);
    let lines = pair.node.addrs_of(VIP6);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(!lines[0].contains("tentative"), "start returns after DAD: {}", lines[0]);
    r.expect("monitor", 0);
    r.expect("stop", 0);
    assert!(pair.node.addrs_of(VIP6).is_empty());
    r.expect("monitor", 7);
}

#[test]
fn ipv6_dad_failure_is_reported_and_cleaned_up() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    pair.peer.ip(&["addr", "add", "2001:db8:1::11/64", "dev", "v1", "nodad"]);
    let o = vip(&pair, "2001:db8:1::11").param("cidr_netmask", "64").action("start");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.reason().unwrap_or_default().contains("duplicate address detection failed"), "{}", o.stderr);
    assert!(pair.node.addrs_of("2001:db8:1::11").is_empty(), "dadfailed address left behind");
}

#[test]
fn nic_and_prefix_detected_from_routes() {
    if !need_root() {
        return;
    }
    let node = Netns::new();
    let peer = Netns::new();
    let peer2 = Netns::new();
    veth(&node, "v0", &["198.51.100.1/24"], &peer, "v1", &["198.51.100.2/24"]);
    veth(&node, "w0", &["198.51.100.129/25"], &peer2, "w1", &["198.51.100.130/25"]);
    // Two link-scope routes for one network: the lower metric wins.
    node.ip(&["route", "add", "203.0.113.0/24", "dev", "v0", "scope", "link", "metric", "200"]);
    node.ip(&["route", "add", "203.0.113.0/24", "dev", "w0", "scope", "link", "metric", "50"]);
    let run = |ip: &str| Run::new("vip").inside(&node).param("ip", ip).param("arp_bg", "false").param("arp_count", "1");

    // The /25 on w0 is more specific than the /24 on v0.
    run("198.51.100.150").expect("start", 0);
    let l = node.addrs_of("198.51.100.150");
    assert!(l.len() == 1 && l[0].contains("w0") && l[0].contains("/25"), "{l:?}");
    run("198.51.100.150").expect("stop", 0);

    // Only the /24 on v0 covers .20.
    run("198.51.100.20").expect("start", 0);
    let l = node.addrs_of("198.51.100.20");
    assert!(l.len() == 1 && l[0].contains("v0") && l[0].contains("/24"), "{l:?}");
    run("198.51.100.20").expect("stop", 0);

    // Equal prefixes: lowest metric.
    run("203.0.113.9").param("run_arping", "false").expect("start", 0);
    let l = node.addrs_of("203.0.113.9");
    assert!(l.len() == 1 && l[0].contains("w0") && l[0].contains("/24"), "{l:?}");
    run("203.0.113.9").expect("stop", 0);

    // No route at all: a clear error, nothing added.
    let o = run("192.0.2.1").action("start");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.reason().unwrap_or_default().contains("no on-link route"), "{}", o.stderr);
}

/// IPaddr2's findif refusals on a real node: a cidr_netmask wider than the
/// network the address falls in (no nic), a host route only; nothing added.
#[test]
fn findif_refusals_change_nothing() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    let before = pair.node.all_addrs();
    let o = vip(&pair, VIP).param("cidr_netmask", "16").action("start");
    assert_eq!(o.code, 1, "a /16 over the /24 of v0 is ambiguous: {}", o.stderr);
    let reason = o.reason().unwrap_or_default();
    assert!(reason.contains("wider than the network 198.51.100.0/24 on v0"), "{reason}");
    assert_eq!(pair.node.all_addrs(), before, "nothing changed");
    assert_eq!(vip(&pair, VIP).param("cidr_netmask", "16").action("validate-all").code, 1);
    // With nic the operator has chosen: the /16 goes on v0.
    vip(&pair, VIP).param("cidr_netmask", "16").param("nic", "v0").expect("start", 0);
    let l = pair.node.addrs_of(VIP);
    assert!(l.len() == 1 && l[0].contains("/16"), "{l:?}");
    vip(&pair, VIP).param("nic", "v0").expect("stop", 0);
    // Only a host route covers the address: no netmask to take from it.
    pair.node.ip(&["route", "add", "203.0.113.9/32", "dev", "v0", "scope", "link"]);
    let o = vip(&pair, "203.0.113.9").action("start");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.reason().unwrap_or_default().contains("no on-link route covers 203.0.113.9"), "{}", o.stderr);
    assert_eq!(pair.node.all_addrs(), before, "nothing changed");
}

#[test]
fn link_down_means_not_running() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    let r = vip(&pair, VIP).param("nic", "v0").param("cidr_netmask", "24");
    r.expect("start", 0);
    r.expect("monitor", 0);
    // The peer's end going down takes the carrier away from v0.
    pair.peer.ip(&["link", "set", "v1", "down"]);
    assert!(wait_for(Duration::from_secs(3), || r.action("monitor").code == 7), "no carrier must be 7");
    // A start on a link without carrier refuses rather than black-holing.
    r.expect("stop", 0);
    let o = r.action("start");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.reason().unwrap_or_default().contains("no carrier"), "{}", o.stderr);
    pair.peer.ip(&["link", "set", "v1", "up"]);
}

#[test]
fn gratuitous_arp_is_seen_by_the_peer() {
    if !need_root() {
        return;
    }
    for background in ["false", "true"] {
        let pair = Pair::new();
        let mac = pair.node.mac("v0");
        let cap = Capture::start(&pair.peer, "v1");
        let r = vip(&pair, VIP).param("arp_count", "3").param("arp_interval", "50").param("arp_bg", background);
        r.expect("start", 0);
        let frames = cap.finish(Duration::from_millis(if background == "true" { 800 } else { 200 }));
        let ours: Vec<_> = arp_frames(&frames).into_iter().filter(|a| a.sender_ip == [198, 51, 100, 10]).collect();
        let requests = ours.iter().filter(|a| a.op == 1).count();
        let replies = ours.iter().filter(|a| a.op == 2).count();
        assert_eq!((requests, replies), (3, 3), "arp_bg={background}: {ours:?}");
        for a in &ours {
            assert_eq!(a.sender_mac, mac, "sender MAC");
            assert_eq!(a.eth_src, mac, "Ethernet source");
            assert_eq!(a.target_ip, [198, 51, 100, 10], "gratuitous: target is the VIP itself");
        }
        // The collision probe went out first, with sender 0.0.0.0.
        assert!(arp_frames(&frames).iter().any(|a| a.sender_ip == [0, 0, 0, 0] && a.target_ip == [198, 51, 100, 10]));
        r.expect("stop", 0);
    }
}

#[test]
fn neighbour_advertisements_are_seen_by_the_peer() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    let mac = pair.node.mac("v0");
    let cap = Capture::start(&pair.peer, "v1");
    let r = vip(&pair, VIP6).param("arp_count", "3").param("arp_interval", "50");
    r.expect("start", 0);
    let frames = cap.finish(Duration::from_millis(300));
    let target: std::net::Ipv6Addr = VIP6.parse().unwrap();
    let nas: Vec<_> = na_frames(&frames).into_iter().filter(|n| n.target == target && n.src == target).collect();
    assert_eq!(nas.len(), 3, "unsolicited NAs: {nas:?}");
    for n in &nas {
        assert_eq!(n.eth_src, mac);
        assert_eq!(n.lladdr, Some(mac), "target link-layer address option");
        assert_eq!(n.dst, "ff02::1".parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(n.hop_limit, 255);
    }
    r.expect("stop", 0);
}

/// Packet sockets held by `pid`, by their inodes in its namespace's
/// /proc/<pid>/net/packet.
fn packet_sockets_of(pid: &str) -> usize {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/packet")).unwrap_or_default();
    let inodes: Vec<String> =
        table.lines().skip(1).filter_map(|l| l.split_whitespace().last().map(|i| format!("socket:[{i}]"))).collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| inodes.iter().any(|i| l.to_string_lossy() == *i))
        .count()
}

/// The last close of a packet socket waits for an RCU grace period (5-30
/// ms on a busy node): start leaves its collision probe's socket to the
/// background announcer, which holds it (besides its own) until it ends.
#[test]
fn the_background_announcer_takes_over_the_probe_socket() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    let r = vip(&pair, VIP).param("arp_bg", "true").param("arp_count", "30").param("arp_interval", "100");
    r.expect("start", 0);
    let pids = sh(&["ip", "netns", "pids", &pair.node.name]);
    let announcer = pids
        .split_whitespace()
        .find(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.windows(8).any(|w| w == b"announce")))
        .map(str::to_string)
        .expect("a background announcer in the node's namespace");
    assert!(
        wait_for(Duration::from_secs(2), || packet_sockets_of(&announcer) == 2),
        "the announcer holds its own packet socket and the probe's: {}",
        packet_sockets_of(&announcer)
    );
    r.expect("stop", 0);
}

#[test]
fn duplicate_address_on_the_link_refuses_start() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    pair.peer.ip(&["addr", "add", "198.51.100.10/24", "dev", "v1"]);
    let before = pair.node.all_addrs();
    let t = std::time::Instant::now();
    let o = vip(&pair, VIP).action("start");
    println!(
        "collision found by start in {:.1} ms (the answer ends the probe's wait)",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    let reason = o.reason().unwrap_or_default();
    assert!(reason.contains("already in use"), "{reason}");
    let peer_mac = pair.peer.mac("v1").iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    assert!(reason.contains(&peer_mac), "names the other host's MAC: {reason}");
    assert_eq!(pair.node.all_addrs(), before, "nothing changed");
    // The check can be turned off.
    vip(&pair, VIP).param("run_arping", "false").expect("start", 0);
    vip(&pair, VIP).expect("stop", 0);
}

#[test]
fn realserver_mode_suppresses_arp_and_restores_sysctls() {
    if !need_root() || !need_tool("arping") {
        return;
    }
    let pair = Pair::new();
    let rs = &pair.node;
    let arping = |ns: &Netns| ns.exec(&["arping", "-q", "-c", "2", "-w", "2", "-I", "v1", VIP]).status.success();
    // Control: a VIP on lo without suppression IS answered, so the check
    // below can tell the difference.
    rs.ip(&["addr", "add", "198.51.100.10/32", "dev", "lo"]);
    assert!(arping(&pair.peer), "control: the kernel answers ARP for lo addresses by default");
    rs.ip(&["addr", "del", "198.51.100.10/32", "dev", "lo"]);

    rs.set_sysctl("net.ipv4.conf.all.arp_announce", "1");
    let r = Run::new("vip").inside(rs).param("ip", VIP).param("lvs_realserver", "true").param("nic", "v0");
    r.expect("start", 0);
    let lo = rs.addrs_of(VIP);
    assert!(lo.len() == 1 && lo[0].contains(" lo ") && lo[0].contains("/32"), "{lo:?}");
    assert_eq!(rs.sysctl("net.ipv4.conf.all.arp_ignore"), "1");
    assert_eq!(rs.sysctl("net.ipv4.conf.all.arp_announce"), "2");
    assert_eq!(rs.sysctl("net.ipv4.conf.v0.arp_ignore"), "1");
    assert_eq!(rs.sysctl("net.ipv4.conf.v0.arp_announce"), "2");
    r.expect("monitor", 0);
    assert!(!arping(&pair.peer), "the real server answered ARP for the VIP");

    // A second real-server VIP shares the settings: stopping the first keeps them.
    let r2 = Run::new("vip").inside(rs).param("ip", "198.51.100.11").param("lvs_realserver", "true");
    let r2 = r2.env("OCF_RESOURCE_INSTANCE", "second");
    r2.expect("start", 0);
    r.expect("stop", 0);
    assert_eq!(rs.sysctl("net.ipv4.conf.all.arp_ignore"), "1", "still held by the second VIP");
    r2.expect("stop", 0);
    assert_eq!(rs.sysctl("net.ipv4.conf.all.arp_ignore"), "0", "restored");
    assert_eq!(rs.sysctl("net.ipv4.conf.all.arp_announce"), "1", "restored to the value before start");
    assert_eq!(rs.sysctl("net.ipv4.conf.v0.arp_announce"), "0");
    assert!(rs.addrs_of(VIP).is_empty());
    r.expect("monitor", 7);

    // Someone resets a sysctl behind our back: partly set up (1).
    r.expect("start", 0);
    rs.set_sysctl("net.ipv4.conf.all.arp_ignore", "0");
    let o = r.action("monitor");
    assert_eq!(o.code, 1, "{}", o.stderr);
    r.expect("stop", 0);
}

#[test]
fn lvs_support_moves_the_loopback_copy_and_restores_it() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    pair.node.ip(&["addr", "add", "198.51.100.10/32", "dev", "lo"]);
    let r = vip(&pair, VIP).param("lvs_support", "true").param("run_arping", "false");
    r.expect("start", 0);
    let l = pair.node.addrs_of(VIP);
    assert!(l.len() == 1 && l[0].contains("v0"), "lo copy moved aside: {l:?}");
    r.expect("stop", 0);
    let l = pair.node.addrs_of(VIP);
    assert!(l.len() == 1 && l[0].contains(" lo ") && l[0].contains("/32"), "back on lo: {l:?}");
    r.expect("monitor", 7);
}

#[test]
fn bad_input_changes_nothing() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    let before = pair.node.all_addrs();
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("ip", "198.51.100.256")], "ip"),
        (&[("ip", VIP), ("cidr_netmask", "33")], "cidr_netmask"),
        (&[("ip", VIP), ("nic", "nosuch0")], "nic"),
        (&[("ip", VIP), ("nic", "v0"), ("iflabel", "abcdefghijklm")], "v0:abcdefghijklm"),
        (&[("ip", "198.51.100.10;reboot")], "ip"),
        (&[("ip", VIP), ("nic", "v0$(reboot)")], "nic"),
    ];
    for (params, named) in cases {
        for action in ["validate-all", "start"] {
            let mut r = Run::new("vip").inside(&pair.node);
            for (k, v) in params {
                r = r.param(k, v);
            }
            let o = r.action(action);
            assert_eq!(o.code, 6, "{action} {params:?}: {}", o.stderr);
            assert!(o.reason().unwrap_or_default().contains(named), "{params:?}: {}", o.stderr);
        }
    }
    assert_eq!(pair.node.all_addrs(), before, "bad input changed the system");
}

#[test]
fn probe_on_a_node_without_the_nic_is_not_running() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    let r = Run::new("vip").inside(&pair.node).param("ip", VIP).param("nic", "eth9");
    assert_eq!(r.probe().code, 7);
    r.expect("stop", 0);
}

#[test]
fn cloning_is_refused_except_for_real_servers() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    let o = vip(&pair, VIP).meta("clone", "0").meta("clone_max", "2").action("start");
    assert_eq!(o.code, 6, "{}", o.stderr);
    assert!(o.reason().unwrap_or_default().contains("cannot be cloned"), "{}", o.stderr);
    assert!(pair.node.addrs_of(VIP).is_empty());
    let rs = Run::new("vip").inside(&pair.node).param("ip", VIP).param("lvs_realserver", "true");
    let rs = rs.meta("clone", "0").meta("clone_max", "2");
    rs.expect("start", 0);
    rs.expect("stop", 0);
}

#[test]
fn network_namespace_parameter_works_from_outside() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    // Run in the test's namespace; the agent enters the node's namespace.
    let r = Run::new("vip").param("ip", VIP).param("network_namespace", &pair.node.name).param("arp_bg", "false");
    r.expect("start", 0);
    assert_eq!(pair.node.addrs_of(VIP).len(), 1);
    r.expect("monitor", 0);
    r.expect("stop", 0);
    assert!(pair.node.addrs_of(VIP).is_empty());
    let missing = Run::new("vip").param("ip", VIP).param("network_namespace", "hvt-does-not-exist");
    assert_eq!(missing.probe().code, 7);
    assert_eq!(missing.action("start").code, 5, "a namespace missing on this node is OCF_ERR_INSTALLED");
}

#[test]
fn ipv6_tentative_and_dadfailed_are_reported() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    // Slow DAD down so the address stays tentative while monitor looks.
    pair.node.set_sysctl("net.ipv6.conf.v0.dad_transmits", "10");
    pair.node.ip(&["addr", "add", "2001:db8:1::20/64", "dev", "v0"]);
    let r = Run::new("vip").inside(&pair.node).param("ip", "2001:db8:1::20").param("nic", "v0");
    let o = r.action("monitor");
    assert_eq!(o.code, 190, "tentative is degraded: {}", o.stderr);
    assert!(o.stderr.contains("tentative"), "{}", o.stderr);
    r.expect("stop", 0);

    // The peer already has it: DAD fails and monitor says so.
    pair.node.set_sysctl("net.ipv6.conf.v0.dad_transmits", "1");
    pair.peer.ip(&["addr", "add", "2001:db8:1::21/64", "dev", "v1", "nodad"]);
    pair.node.ip(&["addr", "add", "2001:db8:1::21/64", "dev", "v0"]);
    let r = Run::new("vip").inside(&pair.node).param("ip", "2001:db8:1::21").param("nic", "v0");
    assert!(wait_for(Duration::from_secs(5), || pair.node.addrs_of("2001:db8:1::21")[0].contains("dadfailed")));
    let o = r.action("monitor");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.reason().unwrap_or_default().contains("duplicate address detection failed"), "{}", o.stderr);
    r.expect("stop", 0);
    assert!(pair.node.addrs_of("2001:db8:1::21").is_empty());
}

#[test]
fn monitor_reports_a_half_set_up_address() {
    if !need_root() {
        return;
    }
    let pair = Pair::new();
    pair.node.ip(&["addr", "add", "198.51.100.30/25", "dev", "v0"]);
    let r = vip(&pair, "198.51.100.30").param("nic", "v0").param("cidr_netmask", "24");
    let o = r.action("monitor");
    assert_eq!(o.code, 1, "wrong prefix is partly set up: {}", o.stderr);
    assert!(o.reason().unwrap_or_default().contains("/25"), "{}", o.stderr);
    r.expect("stop", 0);
    assert!(pair.node.addrs_of("198.51.100.30").is_empty(), "stop removes the half-set-up address");
}
