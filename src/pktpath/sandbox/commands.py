"""Snapshot JSON objects -> iproute2 arguments, and sysctl ordering.

Pure functions (no I/O), so they are unit-tested without root.  ``ip -j`` prints
attributes under the keys used below (iproute2 ip/iproute.c, ip/iprule.c, ip/ipaddress.c).
"""

from __future__ import annotations

import json
from typing import Any

JsonObj = dict[str, Any]
FOREVER = 4294967295
# Route/nexthop flags that describe state, not configuration.
STATE_FLAGS = frozenset({"linkdown", "dead", "offload", "trap", "offload_failed", "rt_offload_failed",
                         "pervasive", "notify", "unresolved"})


def addr_args(ifname: str, a: JsonObj) -> list[str]:
    """``ip addr add`` arguments for one ``addr_info`` entry (IPv4)."""
    local = f"{a['local']}/{a.get('prefixlen', 32)}"
    args = [local]
    if "address" in a and a["address"] != a["local"]:  # point-to-point peer
        args = [a["local"], "peer", f"{a['address']}/{a.get('prefixlen', 32)}"]
    if "broadcast" in a:
        args += ["broadcast", str(a["broadcast"])]
    if "scope" in a:
        args += ["scope", str(a["scope"])]
    label = a.get("label")
    if isinstance(label, str) and label != ifname and label.startswith(ifname):
        args += ["label", label]
    if a.get("noprefixroute"):
        args.append("noprefixroute")
    if "metric" in a:
        args += ["metric", str(a["metric"])]
    valid, preferred = a.get("valid_life_time", FOREVER), a.get("preferred_life_time", FOREVER)
    if valid != FOREVER or preferred != FOREVER:
        args += ["valid_lft", "forever" if valid == FOREVER else str(valid),
                 "preferred_lft", "forever" if preferred == FOREVER else str(preferred)]
    return [*args, "dev", ifname]


def _nexthop_args(nh: JsonObj) -> list[str]:
    args = ["nexthop"]
    if "gateway" in nh:
        args += ["via", str(nh["gateway"])]
    if "dev" in nh:
        args += ["dev", str(nh["dev"])]
    args += ["weight", str(nh.get("weight", 1))]
    if "onlink" in nh.get("flags", []):
        args.append("onlink")
    return args


def route_args(r: JsonObj) -> list[str]:
    """``ip route add`` arguments reproducing one ``ip -j route`` object."""
    args: list[str] = []
    rtype = r.get("type")
    if rtype and rtype != "unicast":
        args.append(str(rtype))
    args.append(str(r["dst"]))
    for key, word in (("tos", "tos"), ("dsfield", "dsfield")):
        if key in r:
            args += [word, str(r[key])]
    if "gateway" in r:
        args += ["via", str(r["gateway"])]
    if "dev" in r:
        args += ["dev", str(r["dev"])]
    table = r.get("table")
    if table is not None and table != "main":
        args += ["table", str(table)]
    for key, word in (("protocol", "proto"), ("scope", "scope"), ("prefsrc", "src"), ("metric", "metric")):
        if key in r:
            args += [word, str(r[key])]
    if "onlink" in r.get("flags", []):
        args.append("onlink")
    for metrics in r.get("metrics", []):
        if isinstance(metrics, dict):
            for key, value in metrics.items():
                args += [str(key), str(value)]
    for nh in r.get("nexthops", []):
        args += _nexthop_args(nh)
    return args


def route_key(r: JsonObj) -> str:
    """Identity of a route for comparing the snapshot with what the namespace has."""
    d = {k: v for k, v in r.items() if k not in ("flags", "expires", "cache")}
    d["flags"] = sorted(set(r.get("flags", [])) - STATE_FLAGS)
    if "nexthops" in r:
        d["nexthops"] = [{**nh, "flags": sorted(set(nh.get("flags", [])) - STATE_FLAGS)}
                         for nh in r["nexthops"]]
    d.setdefault("table", "main")
    return json.dumps(d, sort_keys=True)


def is_default_rule(r: JsonObj) -> bool:
    """One of the kernel's own rules 0/32766/32767 (present in every new namespace)."""
    defaults = {0: "local", 32766: "main", 32767: "default"}
    return (set(r) == {"priority", "src", "table"} and r.get("src") == "all"
            and defaults.get(int(r["priority"])) == r.get("table"))


def rule_args(r: JsonObj) -> list[str]:
    """``ip rule add`` arguments reproducing one ``ip -j rule`` object."""
    args: list[str] = []
    if "not" in r:
        args.append("not")
    args += ["pref", str(r["priority"])]
    for key, word in (("src", "from"), ("dst", "to")):
        value = r.get(key)
        if value is not None and value != "all":
            plen = r.get(f"{key}len")
            args += [word, f"{value}/{plen}" if plen is not None else str(value)]
    for key in ("tos", "dscp"):
        if key in r:
            args += [key, str(r[key])]
    if "fwmark" in r:
        mark = str(r["fwmark"])
        args += ["fwmark", f"{mark}/{r['fwmask']}" if "fwmask" in r else mark]
    for key in ("iif", "oif"):
        if key in r:
            args += [key, str(r[key])]
    if "l3mdev" in r:
        args.append("l3mdev")
    if "uid_start" in r:
        args += ["uidrange", f"{r['uid_start']}-{r['uid_end']}"]
    if "ipproto" in r:
        args += ["ipproto", str(r["ipproto"])]
    for key in ("sport", "dport"):
        if key in r:
            args += [key, str(r[key])]
        elif f"{key}_start" in r:
            args += [key, f"{r[f'{key}_start']}-{r[f'{key}_end']}"]
    if "table" in r:
        args += ["table", str(r["table"])]
    if "suppress_prefixlen" in r:
        args += ["suppress_prefixlength", str(r["suppress_prefixlen"])]
    if "suppress_ifgroup" in r:
        args += ["suppress_ifgroup", str(r["suppress_ifgroup"])]
    if "goto" in r:
        args += ["goto", str(r["goto"])]
    if "nop" in r:
        args.append("nop")
    if "action" in r:
        args.append(str(r["action"]))  # unreachable / prohibit / blackhole
    if "protocol" in r:
        args += ["protocol", str(r["protocol"])]
    return args


def rule_key(r: JsonObj) -> str:
    return json.dumps({k: v for k, v in r.items() if k not in ("unresolved", "iif_detached", "oif_detached")},
                      sort_keys=True)


# Kernel defaults for the settings that decide a packet's path, written when the snapshot
# does not say: a new namespace copies the initial namespace's conf/all and conf/default
# (net.core.devconf_inherit_init_net=0), which need not be the kernel defaults.
# (No conf/*/forwarding here: writing ip_forward sets all of those consistently.)
KERNEL_DEFAULTS = {
    "net.ipv4.ip_forward": "0",
    **{f"net.ipv4.conf.{scope}.{key}": "0"
       for scope in ("all", "default")
       for key in ("rp_filter", "accept_local", "route_localnet", "src_valid_mark",
                   "bc_forwarding", "proxy_arp", "arp_filter", "arp_ignore", "log_martians")},
    "net.netfilter.nf_conntrack_tcp_loose": "1",
    "net.netfilter.nf_conntrack_checksum": "1",
    "net.netfilter.nf_conntrack_tcp_be_liberal": "0",
}
# Never written from a snapshot: an initial-namespace-only setting the sandbox manages itself.
SYSCTL_DENY = frozenset({"net.netfilter.nf_log_all_netns"})


def sysctl_path(key: str) -> str:
    """``net.ipv4.conf.eth0/100.rp_filter`` -> ``net/ipv4/conf/eth0.100/rp_filter``."""
    return "/".join(part.replace("/", ".") for part in key.split("."))


def _phase(key: str) -> int:
    if key == "net.ipv4.ip_forward":
        return 0
    if key.startswith("net.ipv4.conf.all."):
        return 1
    if key.startswith("net.ipv4.conf.default."):
        return 2
    if key.startswith("net.ipv4.conf."):
        return 4  # one device
    return 3 if key.startswith("net.ipv4.") else 5


Sysctls = list[tuple[str, str]]


def sysctl_phases(values: dict[str, str]) -> tuple[Sysctls, Sysctls, Sysctls]:
    """Split net.ipv4.* / net.netfilter.* settings into the order they must be written.

    1. global IPv4 settings before the interfaces exist: ``ip_forward`` first (writing it
       resets every forwarding flag), then conf/all and conf/default (new devices copy
       default), then the rest;
    2. per-device conf after the interfaces exist (overriding what all/default spread);
    3. netfilter settings after the ruleset is loaded.
    """
    merged = {k: v for k, v in {**KERNEL_DEFAULTS, **values}.items()
              if k.startswith(("net.ipv4.", "net.netfilter.")) and k not in SYSCTL_DENY}
    ordered = sorted(merged.items(), key=lambda kv: _phase(kv[0]))  # stable: file order within a phase
    return ([kv for kv in ordered if _phase(kv[0]) <= 3],
            [kv for kv in ordered if _phase(kv[0]) == 4],
            [kv for kv in ordered if _phase(kv[0]) == 5])
