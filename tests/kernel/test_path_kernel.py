"""The packet path, scenario by scenario, against the real kernel: pktpath's trace and
result must equal what the kernel's TRACE target logs for the same snapshot and packet.

Each case is (name, ruleset, snapshot options, packet arguments).  The host is the
sandbox's standard one: eth0 10.0.0.1/24, eth1 10.1.0.1/24, default via 10.1.0.254."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pktpath.cli.main import cli
from pktpath.sandbox import compare

NAT = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
MANGLE = ("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
          ":POSTROUTING ACCEPT [0:0]\n")
FWD = ["--iif", "eth0", "--src", "10.0.0.2", "--dst", "10.1.0.7", "--proto", "tcp", "--sport", "40000",
       "--dport", "80", "--mac-src", "02:00:00:00:00:02"]
IN = ["--iif", "eth0", "--src", "10.0.0.2", "--dst", "10.0.0.1", "--proto", "udp", "--sport", "40000",
      "--dport", "53", "--mac-src", "02:00:00:00:00:02"]
LOCAL = ["--local", "--dst", "10.1.0.7", "--proto", "udp", "--sport", "40000", "--dport", "53"]
TABLE1 = [{"dst": "default", "gateway": "10.0.0.254", "dev": "eth0", "table": "100", "flags": []}]
MAIN = [{"dst": "default", "gateway": "10.1.0.254", "dev": "eth1", "flags": []}]

CASES: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("dnat-address-range-hash", NAT + "-A PREROUTING -p tcp -j DNAT --to-destination 10.1.0.10-10.1.0.40\nCOMMIT\n",
     {}, FWD),
    ("dnat-port-out-of-range", NAT + "-A PREROUTING -p tcp -j DNAT --to-destination 10.1.0.9:8000-8010\nCOMMIT\n",
     {}, FWD),
    ("masquerade-source-choice", NAT + "-A POSTROUTING -o eth1 -j MASQUERADE\nCOMMIT\n",
     {"extra_addrs": {"eth1": ["10.1.0.50/24", "192.0.2.1/24"]}}, FWD),
    ("snat-then-filter", NAT + "-A POSTROUTING -p tcp -j SNAT --to-source 10.1.0.99\nCOMMIT\n"
     + FILTER + "-A FORWARD -m conntrack --ctstate SNAT -j DROP\n-A FORWARD -p tcp -j ACCEPT\nCOMMIT\n", {}, FWD),
    ("redirect-to-in-device", NAT + "-A PREROUTING -p tcp -j REDIRECT --to-ports 8080\nCOMMIT\n", {}, FWD),
    ("goto-returns-to-last-jump", FILTER + ":A - [0:0]\n:S - [0:0]\n-A FORWARD -j A\n-A FORWARD -p tcp -j DROP\n"
     "-A A -g S\n-A A -j ACCEPT\n-A S -p udp -j ACCEPT\nCOMMIT\n", {}, FWD),
    ("unconditional-verdicts-as-tails", FILTER + ":U - [0:0]\n-A FORWARD -j U\n-A FORWARD -j ACCEPT\n"
     "-A U -j RETURN\nCOMMIT\n", {}, FWD),
    ("mark-routes-local-send", MANGLE + "-A OUTPUT -p udp -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n",
     {"routes": MAIN + TABLE1, "rules": [{"priority": 0, "src": "all", "table": "local"},
                                         {"priority": 100, "src": "all", "fwmark": "0x7", "table": "100"},
                                         {"priority": 32766, "src": "all", "table": "main"},
                                         {"priority": 32767, "src": "all", "table": "default"}]}, LOCAL),
    ("nat-output-reroute", NAT + "-A OUTPUT -p udp -j DNAT --to-destination 10.0.0.9\nCOMMIT\n", {}, LOCAL),
    ("input-nat-table-first-packet", NAT + "-A INPUT -p udp -j LOG\nCOMMIT\n" + FILTER
     + "-A INPUT -m state --state NEW -j ACCEPT\nCOMMIT\n", {}, IN),
    ("rp-filter-strict-drop", FILTER + "-A FORWARD -j ACCEPT\nCOMMIT\n",
     {"sysctl": "net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.rp_filter = 1\n"},
     ["--iif", "eth0", "--src", "10.1.0.99", "--dst", "10.1.0.7", "--proto", "tcp", "--sport", "40000",
      "--dport", "80", "--mac-src", "02:00:00:00:00:02"]),
    ("ttl-expires-in-forwarding", FILTER + "-A FORWARD -j ACCEPT\nCOMMIT\n", {}, [*FWD, "--ttl", "1"]),
    ("notrack-skips-nat", "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -p tcp -j CT --notrack\n"
     "COMMIT\n" + NAT + "-A PREROUTING -p tcp -j DNAT --to-destination 10.1.0.9\nCOMMIT\n", {}, FWD),
    ("invalid-synack-skips-nat", NAT + "-A PREROUTING -p tcp -j DNAT --to-destination 10.1.0.9\nCOMMIT\n"
     + FILTER + "-A FORWARD -m state --state INVALID -j DROP\nCOMMIT\n", {}, [*FWD, "--tcp-flags", "SYN,ACK"]),
    ("local-to-local-loopback", NAT + "-A OUTPUT -p udp -j MARK --set-xmark 0x1/0x1\nCOMMIT\n"
     + FILTER + "-A INPUT -i lo -p udp -j ACCEPT\nCOMMIT\n", {},
     ["--local", "--dst", "10.0.0.1", "--proto", "udp", "--sport", "40000", "--dport", "53"]),
    ("reject-local-send", FILTER + "-A OUTPUT -p udp -j REJECT\nCOMMIT\n", {}, LOCAL),
    ("reject-forward-tcp-reset", FILTER + "-A FORWARD -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n", {}, FWD),
    ("dnat-output-to-local", NAT + "-A OUTPUT -p udp -j DNAT --to-destination 10.0.0.1\nCOMMIT\n"
     + FILTER + "-A INPUT -p udp -j ACCEPT\nCOMMIT\n", {}, LOCAL),
    ("snat-in-input", NAT + "-A INPUT -p udp -j SNAT --to-source 10.0.0.77\nCOMMIT\n" + FILTER
     + "-A INPUT -p udp -s 10.0.0.77 -j ACCEPT\nCOMMIT\n", {}, IN),
    ("subnet-broadcast-in", FILTER + "-A INPUT -m addrtype --dst-type BROADCAST -j ACCEPT\nCOMMIT\n", {},
     ["--iif", "eth0", "--src", "10.0.0.2", "--dst", "10.0.0.255", "--proto", "udp", "--sport", "40000",
      "--dport", "53", "--mac-src", "02:00:00:00:00:02"]),
    ("mark-in-prerouting-selects-table", MANGLE + "-A PREROUTING -p tcp -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n",
     {"routes": MAIN + TABLE1, "rules": [{"priority": 0, "src": "all", "table": "local"},
                                         {"priority": 100, "src": "all", "fwmark": "0x7", "table": "100"},
                                         {"priority": 32766, "src": "all", "table": "main"},
                                         {"priority": 32767, "src": "all", "table": "default"}]},
     ["--iif", "eth1", "--src", "10.1.0.2", "--dst", "198.51.100.7", "--proto", "tcp", "--sport", "40000",
      "--dport", "80", "--mac-src", "02:00:00:00:01:02"]),
    ("masquerade-after-mark-reroute", MANGLE + "-A OUTPUT -p udp -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n"
     + NAT + "-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n",
     {"routes": MAIN + TABLE1, "rules": [{"priority": 0, "src": "all", "table": "local"},
                                         {"priority": 100, "src": "all", "fwmark": "0x7", "table": "100"},
                                         {"priority": 32766, "src": "all", "table": "main"},
                                         {"priority": 32767, "src": "all", "table": "default"}]},
     ["--local", "--dst", "198.51.100.7", "--proto", "udp", "--sport", "40000", "--dport", "53"]),
    ("icmp-echo-forward", FILTER + "-A FORWARD -p icmp -m icmp --icmp-type echo-request -j ACCEPT\n"
     "-A FORWARD -j DROP\nCOMMIT\n", {},
     ["--iif", "eth0", "--src", "10.0.0.2", "--dst", "10.1.0.7", "--proto", "icmp", "--icmp-type", "8/0",
      "--mac-src", "02:00:00:00:00:02"]),
    ("local-to-127", FILTER + "-A INPUT -i lo -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n", {},
     ["--local", "--dst", "127.0.0.1", "--proto", "tcp", "--sport", "40000", "--dport", "22"]),
    ("redirect-local-output", NAT + "-A OUTPUT -p udp -j REDIRECT --to-ports 5353\nCOMMIT\n"
     + FILTER + "-A INPUT -i lo -p udp --dport 5353 -j ACCEPT\nCOMMIT\n", {}, LOCAL),
    ("snat-local-send", NAT + "-A POSTROUTING -o eth1 -p udp -j SNAT --to-source 10.1.0.44\nCOMMIT\n", {}, LOCAL),
    ("uidrange-rule-local", FILTER + "-A OUTPUT -m owner --uid-owner 1500 -j ACCEPT\nCOMMIT\n",
     {"routes": MAIN + TABLE1, "rules": [{"priority": 0, "src": "all", "table": "local"},
                                         {"priority": 100, "src": "all", "uidrange": "1000-2000", "table": "100"},
                                         {"priority": 32766, "src": "all", "table": "main"},
                                         {"priority": 32767, "src": "all", "table": "default"}]},
     ["--local", "--dst", "198.51.100.7", "--proto", "udp", "--sport", "40000", "--dport", "53", "--uid", "1500"]),
    ("raw-drop-before-conntrack", "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
     "-A PREROUTING -m conntrack --ctstate INVALID -p tcp --dport 80 -j DROP\nCOMMIT\n", {}, FWD),
    ("blackhole-route-forward", FILTER + "-A FORWARD -j ACCEPT\nCOMMIT\n",
     {"routes": MAIN + [{"type": "blackhole", "dst": "10.1.0.0/25", "flags": []}]}, FWD),
    ("forwarding-off-on-iif", FILTER + "-A FORWARD -j ACCEPT\nCOMMIT\n",
     {"sysctl": "net.ipv4.ip_forward = 1\nnet.ipv4.conf.eth0.forwarding = 0\n"}, FWD),
    ("mark-match-after-connmark-restore", MANGLE + "-A PREROUTING -j CONNMARK --restore-mark\n"
     "-A PREROUTING -m mark --mark 0x0 -j MARK --set-xmark 0x9/0xffffffff\n"
     "-A PREROUTING -j CONNMARK --save-mark\nCOMMIT\n" + FILTER + "-A FORWARD -m connmark --mark 0x9 -j ACCEPT\n"
     "-A FORWARD -j DROP\nCOMMIT\n", {}, FWD),
    ("snat-range-keeps-original-source", NAT + "-A POSTROUTING -o eth1 -j SNAT --to-source 10.1.0.1-10.1.0.4\nCOMMIT\n",
     {"extra_addrs": {"eth1": ["10.1.0.3/24"]}},
     ["--local", "--src", "10.1.0.1", "--dst", "10.1.0.9", "--proto", "udp", "--sport", "5000", "--dport", "53"]),
    ("local-broadcast-loops-back", NAT + "-A POSTROUTING -p udp -j SNAT --to-source 10.1.0.1\nCOMMIT\n"
     + FILTER + "-A INPUT -i eth1 -p udp -j ACCEPT\nCOMMIT\n", {},
     ["--local", "--dst", "10.1.0.255", "--proto", "udp", "--sport", "40000", "--dport", "53"]),
]


def pktpath_json(snapshot: Path, args: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["trace", str(snapshot), *args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.output)
    return out


@pytest.mark.kernel
@pytest.mark.parametrize("rules,opts,args", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_path_agrees_with_kernel(kernel_sandbox: Any, make_snapshot: Any, tmp_path: Path, rules: str,
                                 opts: dict[str, Any], args: list[str]) -> None:
    snap = make_snapshot(tmp_path / "snap", rules, **opts)
    kernel = kernel_sandbox(snap, args)
    ours = pktpath_json(snap, args)
    expected = {"trace": kernel.trace, "result": kernel.result}
    # These snapshots hold no TRACE rule (the sandbox adds its own and hides it), so nothing is stripped.
    diffs = compare(expected, ours["trace"], ours["result"], local="--local" in args)
    assert not diffs, "\n".join([*diffs, "kernel: " + " ".join(e["id"] for e in kernel.trace),
                                 "pktpath: " + " ".join(e["id"] for e in ours["trace"]),
                                 f"kernel result: {kernel.result}", f"pktpath result: {ours['result']}"])
