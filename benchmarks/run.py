#!/usr/bin/env python3
"""pktpath benchmark: load, trace, memory and start-up on kube-proxy rulesets, beside the C
tool (``iptables-legacy-restore --test``) and the real kernel, measured in the same run.

    python benchmarks/run.py --quick            # 1k services, < 2 minutes (what CI runs)
    python benchmarks/run.py                    # 1k/3k/10k/30k + kernel first-packet (root)
    python benchmarks/run.py --markdown benchmarks/RESULTS.md

See benchmarks/README.md for what every figure means.  Everything this writes goes to
benchmarks/out/ (gitignored), except the file given to ``--markdown``.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"
GEN = SHARED / "tools" / "gen-kube-proxy-ruleset"
FIRSTPACKET = SHARED / "tools" / "kernel-firstpacket" / "bench-firstpacket.py"
OUT = HERE / "out"
EXAMPLE = REPO / "examples" / "home-router"
EXAMPLE_TRACE = ["trace", str(EXAMPLE), "--iif", "eth0", "--src", "198.51.100.7", "--dst", "203.0.113.2",
                 "--proto", "tcp", "--dport", "8080"]

NODE_IP = "192.168.0.10"      # the generator's default --node-ip, passed explicitly
NODE_GW = "192.168.0.1"
NODE_NET_PLEN = 24            # the API servers (192.168.0.2-4) share the node's subnet
EXTERNAL_CLIENT = "203.0.113.50"
FULL_SIZES = (1000, 3000, 10000, 30000)
TRACE_PROFILE_REPEAT = 200
QUICK_SIZES = (1000,)

# Targets from the issue, as ratios measured in the same run.
LOAD_RATIO_TARGET = 0.5       # pktpath load <= 1/2 of iptables-legacy-restore --test (10k, 30k)
LINEAR_TOLERANCE = 1.5        # per-rule load cost at the largest size <= 1.5x the smallest's
TRACE_GROWTH_TARGET = 2.0     # trace at 30k <= 2x trace at 1k
RSS_PER_RULE_TARGET = 1024    # bytes per rule at 30k
HELP_TARGET = 0.3             # seconds, `pktpath --help`
EXAMPLE_TRACE_TARGET = 0.5    # seconds, one trace through examples/home-router


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- rulesets
def generate(n: int, seed: int, out: Path = OUT) -> tuple[Path, dict[str, Any]]:
    """``gen-kube-proxy-ruleset --services N --seed S`` into out/, cached with its --stats."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"kp-{n}-s{seed}.save"
    meta_path = out / f"kp-{n}-s{seed}.meta.json"
    args = [sys.executable, str(GEN), "--services", str(n), "--seed", str(seed), "--node-ip", NODE_IP, "--stats"]
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("args") == args[2:]:
            return path, meta
    with open(path, "w") as f:
        r = subprocess.run(args, stdout=f, stderr=subprocess.PIPE, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{GEN} failed ({r.returncode}): {r.stderr.strip()}")
    stats = dict(kv.split("=", 1) for kv in r.stderr.split() if "=" in kv)
    meta = {"args": args[2:], "stats": stats}
    meta_path.write_text(json.dumps(meta, indent=1))
    return path, meta


def _nat_chains(text: str) -> dict[str, list[str]]:
    """{chain: [rule lines]} of the nat table (just enough to pick the packets)."""
    chains: dict[str, list[str]] = {}
    in_nat = False
    for line in text.splitlines():
        if line.startswith("*"):
            in_nat = line == "*nat"
        elif in_nat and line.startswith("-A "):
            chains.setdefault(line.split(" ", 2)[1], []).append(line)
    return chains


def pick_packets(text: str) -> dict[str, dict[str, Any]]:
    """The two worst-case packets of the issue, read off the ruleset itself.

    * pod -> ClusterIP: the LAST ``cluster IP`` rule of nat KUBE-SERVICES (every service
      rule before it is tried first), from a pod on this node (iif cni0).
    * external -> NodePort: the last NodePort in nat KUBE-NODEPORTS whose service is not
      externalTrafficPolicy=Local (so that an external client is load-balanced to a
      KUBE-SVC chain), sent from outside to the node address (iif eth0).  It misses every
      KUBE-SERVICES rule before the final ``addrtype LOCAL -j KUBE-NODEPORTS``.
    """
    nat = _nat_chains(text)
    services = nat.get("KUBE-SERVICES", [])
    cluster = [r for r in services if "cluster IP" in r and "-j KUBE-SVC-" in r]
    if not cluster:
        raise SystemExit("no ClusterIP rule in nat KUBE-SERVICES")
    last = cluster[-1]
    cip = re.search(r"-d (\S+)/32", last)
    cport = re.search(r"--dport (\d+)", last)
    cproto = re.search(r"-p (\S+)", last)
    csvc = re.search(r"-j (KUBE-SVC-\S+)", last)
    assert cip and cport and cproto and csvc, last
    packets: dict[str, dict[str, Any]] = {
        "clusterip": {"iif": "cni0", "dst": cip.group(1), "proto": cproto.group(1), "dport": int(cport.group(1)),
                      "expect_chain": csvc.group(1), "position": services.index(last) + 1,
                      "kube_services_rules": len(services)},
    }
    for rule in reversed(nat.get("KUBE-NODEPORTS", [])):
        if " -d 127.0.0.0/8 " in rule:
            continue
        ext = re.search(r"-j (KUBE-EXT-(\S+))", rule)
        port = re.search(r"--dport (\d+)", rule)
        proto = re.search(r"-p (\S+)", rule)
        if not (ext and port and proto):
            continue
        svc = "KUBE-SVC-" + ext.group(2)
        if f"-A {ext.group(1)} -j {svc}" not in nat.get(ext.group(1), []) or svc not in nat:
            continue   # externalTrafficPolicy=Local: KUBE-SVL, maybe no local endpoint
        packets["nodeport"] = {"iif": "eth0", "dst": NODE_IP, "proto": proto.group(1), "dport": int(port.group(1)),
                               "expect_chain": svc, "src": EXTERNAL_CLIENT}
        break
    return packets


# --------------------------------------------------------------------------- snapshot
def _addr(ifindex: int, name: str, mac: str, addrs: list[tuple[str, int]], kind: str = "ether",
          flags: tuple[str, ...] = ("BROADCAST", "MULTICAST", "UP", "LOWER_UP")) -> dict[str, Any]:
    info = []
    for local, plen in addrs:
        a: dict[str, Any] = {"family": "inet", "local": local, "prefixlen": plen,
                             "scope": "host" if local.startswith("127.") else "global", "label": name,
                             "valid_life_time": 4294967295, "preferred_life_time": 4294967295}
        net = ipaddress.ip_network(f"{local}/{plen}", strict=False)
        if plen < 31 and kind == "ether":
            a["broadcast"] = str(net.broadcast_address)
        info.append(a)
    return {"ifindex": ifindex, "ifname": name, "flags": list(flags), "mtu": 65536 if kind == "loopback" else 1500,
            "qdisc": "noqueue", "operstate": "UP" if kind != "loopback" else "UNKNOWN", "group": "default",
            "txqlen": 1000, "link_type": kind, "address": mac,
            "broadcast": "00:00:00:00:00:00" if kind == "loopback" else "ff:ff:ff:ff:ff:ff", "addr_info": info}


def node_net_files(cluster_cidr: str) -> dict[str, str]:
    """ip-addr/ip-route/ip-rule JSON and sysctl.txt of a flannel Kubernetes node (node 0).

    eth0 carries the node address (default route via NODE_GW); cni0 is the bridge of this
    node's pod /24 (the first /24 of the cluster CIDR, where the generator puts node 0);
    flannel.1 reaches the other nodes' pods (one route for the whole cluster CIDR instead of
    one /24 per node: the same answer for every packet here)."""
    cluster = ipaddress.ip_network(cluster_cidr)
    pod_net = ipaddress.ip_network((int(cluster.network_address), 24))
    cni_ip = str(pod_net.network_address + 1)
    flannel_ip = str(pod_net.network_address)
    node_net = ipaddress.ip_network(f"{NODE_IP}/{NODE_NET_PLEN}", strict=False)
    links = [
        _addr(1, "lo", "00:00:00:00:00:00", [("127.0.0.1", 8)], "loopback", ("LOOPBACK", "UP", "LOWER_UP")),
        _addr(2, "eth0", "02:42:c0:a8:00:0a", [(NODE_IP, NODE_NET_PLEN)]),
        _addr(3, "flannel.1", "9e:10:00:00:00:01", [(flannel_ip, 32)], flags=("BROADCAST", "MULTICAST", "UP",
                                                                              "LOWER_UP")),
        _addr(4, "cni0", "9e:10:00:00:00:02", [(cni_ip, 24)]),
    ]

    def kernel(dst: str, dev: str, src: str) -> dict[str, Any]:
        return {"dst": dst, "dev": dev, "protocol": "kernel", "scope": "link", "prefsrc": src, "flags": []}

    def local(rtype: str, dst: str, dev: str, src: str) -> dict[str, Any]:
        return {"type": rtype, "dst": dst, "dev": dev, "table": "local", "protocol": "kernel",
                "scope": "host" if rtype == "local" else "link", "prefsrc": src, "flags": []}

    routes = [
        {"dst": "default", "gateway": NODE_GW, "dev": "eth0", "protocol": "dhcp", "prefsrc": NODE_IP,
         "metric": 100, "flags": []},
        {"dst": str(cluster), "dev": "flannel.1", "scope": "link", "flags": ["onlink"]},
        kernel(str(pod_net), "cni0", cni_ip),
        kernel(str(node_net), "eth0", NODE_IP),
        local("local", "127.0.0.0/8", "lo", "127.0.0.1"),
        local("local", "127.0.0.1", "lo", "127.0.0.1"),
        local("broadcast", "127.255.255.255", "lo", "127.0.0.1"),
        local("local", NODE_IP, "eth0", NODE_IP),
        local("broadcast", str(node_net.broadcast_address), "eth0", NODE_IP),
        local("local", flannel_ip, "flannel.1", flannel_ip),
        local("local", cni_ip, "cni0", cni_ip),
        local("broadcast", str(pod_net.broadcast_address), "cni0", cni_ip),
    ]
    rules = [{"priority": 0, "src": "all", "table": "local"},
             {"priority": 32766, "src": "all", "table": "main"},
             {"priority": 32767, "src": "all", "table": "default"}]
    sysctl = ["net.ipv4.ip_forward = 1", "net.netfilter.nf_conntrack_tcp_loose = 1",
              "net.bridge.bridge-nf-call-iptables = 1", "net.ipv4.conf.all.route_localnet = 1"]
    for dev in ("all", "default", "lo", "eth0", "flannel.1", "cni0"):
        sysctl += [f"net.ipv4.conf.{dev}.forwarding = 1", f"net.ipv4.conf.{dev}.rp_filter = 0"]
    return {"ip-addr.json": json.dumps(links), "ip-route.json": json.dumps(routes),
            "ip-rule.json": json.dumps(rules), "sysctl.txt": "\n".join(sysctl) + "\n"}


@dataclass
class Case:
    """One ruleset size: its snapshot directory and the packets to trace through it."""

    services: int
    seed: int
    save: Path
    snapshot: Path
    rules: int
    stats: dict[str, Any]
    packets: dict[str, dict[str, Any]] = field(default_factory=dict)


def build_case(n: int, seed: int, out: Path = OUT) -> Case:
    """Generate the ruleset of N services and wrap it into a snapshot directory."""
    save, meta = generate(n, seed, out)
    text = save.read_text()
    snap = out / f"snapshot-{n}-s{seed}"
    snap.mkdir(parents=True, exist_ok=True)
    target = snap / "iptables-save.txt"
    if target.exists() or target.is_symlink():
        target.unlink()
    try:
        os.link(save, target)           # the very same file iptables-restore reads
    except OSError:
        shutil.copyfile(save, target)
    for name, content in node_net_files(meta["stats"]["cluster_cidr"]).items():
        (snap / name).write_text(content)
    packets = pick_packets(text)
    pod_net = ipaddress.ip_network((int(ipaddress.ip_network(meta["stats"]["cluster_cidr"]).network_address), 24))
    packets["clusterip"]["src"] = str(pod_net.network_address + 2)
    rules = sum(1 for line in text.splitlines() if line.startswith("-A "))
    return Case(n, seed, save, snap, rules, meta["stats"], packets)


# --------------------------------------------------------------------------- pktpath, in-process
def make_packet(net: Any, spec: dict[str, Any]) -> Any:
    from pktpath.cli.packet_args import build_packet

    return build_packet(net, iif=spec["iif"], local=False, src=spec["src"], dst=spec["dst"], proto=spec["proto"],
                        sport=None, dport=spec["dport"], icmp_type=None, tcp_flags=None, mark=None, ttl=None,
                        length=None, mac_src=None, uid=None)


def load_engine(snapshot: Path) -> tuple[Any, Any, dict[str, float]]:
    """parse + model (load_snapshot) and index (build_host + Engine): what a trace needs."""
    from pktpath.engine.path import Engine
    from pktpath.engine.simulate import build_host
    from pktpath.io.snapshot import load_snapshot

    t0 = time.perf_counter()
    snap = load_snapshot(snapshot)
    t1 = time.perf_counter()
    host = build_host(snap)
    t2 = time.perf_counter()
    engine = Engine(host)
    t3 = time.perf_counter()
    return snap, engine, {"load_snapshot": t1 - t0, "build_host": t2 - t1, "engine": t3 - t2, "total": t3 - t0}


def trace_once(engine: Any, pkt: Any) -> list[Any]:
    """One trace as `pktpath trace` does it: a fresh conntrack table, then explore()."""
    from pktpath.engine.conntrack import ConntrackTable

    engine.host.conntrack = ConntrackTable()
    return list(engine.explore(pkt))


def summarize(outcomes: list[Any], expect_chain: str) -> dict[str, Any]:
    ids = [e.id for o in outcomes for e in o.trace]
    return {"paths": len(outcomes), "dispositions": sorted({o.result.disposition for o in outcomes}),
            "reached_chain": any(f":{expect_chain}:" in i for i in ids),
            "reached_kube_svc": any(":KUBE-SVC-" in i for i in ids), "trace_lines": len(ids)}


def peak_rss() -> int:
    """This process's peak RSS in bytes.

    VmHWM, not getrusage(): on Linux ru_maxrss survives exec(), so a fresh child would report
    its parent's RSS at fork time (here: the parent that just read a 36 MB ruleset)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


BATCH_PACKETS = 8000  # a steady rate (the kernel's is measured saturated), ~1 s at 10k


def worker(snapshot: Path, packets: dict[str, dict[str, Any]], load_reps: int, trace_reps: int) -> dict[str, Any]:
    """Runs in a fresh interpreter per size: timings and the peak RSS of one load."""
    # Import cost is start-up, not load.
    import pktpath.cli.packet_args  # noqa: F401
    import pktpath.engine.path  # noqa: F401
    import pktpath.engine.simulate  # noqa: F401
    import pktpath.io.snapshot  # noqa: F401

    gc.collect()
    rss_base = peak_rss()
    # Cold loads validate every rule (each with an empty facts cache); warm loads find the
    # facts of the first cold load (pktpath.io.facts_cache), as a re-run on the same dump does.
    caches = Path(tempfile.mkdtemp(prefix="pktpath-bench-cache-"))
    os.environ["PKTPATH_CACHE_DIR"] = str(caches / "cold-0")
    loads = []
    snap, engine, t = load_engine(snapshot)
    loads.append(t)
    rss_peak = peak_rss()
    rules = sum(len(c.rules) for tbl in snap.ruleset.tables.values() for c in tbl.chains.values())
    for i in range(1, load_reps):
        del snap, engine
        gc.collect()
        os.environ["PKTPATH_CACHE_DIR"] = str(caches / f"cold-{i}")
        snap, engine, t = load_engine(snapshot)
        loads.append(t)
    warm_loads = []
    os.environ["PKTPATH_CACHE_DIR"] = str(caches / "cold-0")
    for _ in range(load_reps):
        del snap, engine
        gc.collect()
        snap, engine, t = load_engine(snapshot)
        warm_loads.append(t)
    shutil.rmtree(caches, ignore_errors=True)
    traces: dict[str, Any] = {}
    for name, spec in packets.items():
        pkt = make_packet(snap.net, spec)
        times = []
        summary: dict[str, Any] = {}
        for _ in range(trace_reps):
            t0 = time.perf_counter()
            outcomes = trace_once(engine, pkt)
            times.append(time.perf_counter() - t0)
            summary = summarize(outcomes, spec["expect_chain"])
        # explore() again on the same Engine without resetting conntrack: does it see the
        # previous walk's connection?  (Batch mode will run many packets on one Engine.)
        again = summarize(engine.explore(pkt), spec["expect_chain"])
        traces[name] = {"times": times, **summary, "reuse_without_reset": again}
    # Batch: the ClusterIP packet from many source ports, through the CLI's batch machinery on all CPUs.
    from pktpath.cli.batch import run_batch_bytes

    spec = packets["clusterip"]
    lines = [json.dumps({"iif": spec["iif"], "src": spec["src"], "dst": spec["dst"], "proto": spec["proto"],
                         "sport": 20000 + i, "dport": spec["dport"]}) for i in range(BATCH_PACKETS)]
    t0 = time.perf_counter()
    done = sum(1 for line in run_batch_bytes(snap, engine, lines, "bench") if not line.startswith(b'{"error"'))
    batch_pps = done / (time.perf_counter() - t0)
    return {"batch_pps": batch_pps, "loads": loads, "warm_loads": warm_loads, "rss_base": rss_base,
            "rss_peak": rss_peak,
            "model_rules": rules, "traces": traces}


def run_worker(case: Case, load_reps: int, trace_reps: int) -> dict[str, Any]:
    spec = {"snapshot": str(case.snapshot), "packets": case.packets, "load_reps": load_reps,
            "trace_reps": trace_reps}
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_worker", json.dumps(spec)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["worker failed"])[-1], "stderr": r.stderr}
    result: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- the C tool and the kernel
def iptables_restore_test(save: Path, reps: int) -> dict[str, Any]:
    """Best wall time of ``iptables-legacy-restore --test < FILE``."""
    tool = shutil.which("iptables-legacy-restore")
    if tool is None:
        return {"error": "iptables-legacy-restore not found (apt-get install iptables)"}
    if os.geteuid() != 0:
        return {"error": "iptables-legacy-restore --test needs root"}
    times = []
    for _ in range(reps):
        with open(save, "rb") as f:
            t0 = time.perf_counter()
            r = subprocess.run([tool, "--test"], stdin=f, capture_output=True, check=False)
            times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            return {"error": f"iptables-legacy-restore --test failed: {r.stderr.decode().strip()[:200]}"}
    return {"times": times, "best": min(times)}


def kernel_firstpacket(cases: list[Case], reps: int, timeout: float) -> dict[str, Any]:
    """Run ../shared/tools/kernel-firstpacket on the same ruleset files (legacy backend)."""
    if os.geteuid() != 0:
        return {"error": "needs root"}
    if not FIRSTPACKET.exists():
        return {"error": f"{FIRSTPACKET} not found"}
    missing = [t for t in ("ip", "nft", "conntrack", "nfacct", "gcc", "taskset") if shutil.which(t) is None]
    if missing:
        return {"error": "missing tools: " + ", ".join(missing) + " (apt-get install nftables conntrack nfacct gcc)"}
    if (os.cpu_count() or 1) < 2:
        return {"error": "needs 2 CPUs"}
    out = OUT / "firstpacket"
    out.mkdir(parents=True, exist_ok=True)
    for c in cases:   # the tool reads kp-N.save from --out when present: give it our files
        dst = out / f"kp-{c.services}.save"
        if c.seed == 1:
            shutil.copyfile(c.save, dst)
        elif dst.exists():
            dst.unlink()
    sizes = ",".join(["0"] + [str(c.services) for c in cases])
    logf = out / "run.log"
    log(f"  kernel first-packet: {FIRSTPACKET.name} --sizes {sizes} --backends legacy (log: {logf})")
    with open(logf, "w") as f:
        proc = subprocess.Popen([sys.executable, str(FIRSTPACKET), "--sizes", sizes, "--backends", "legacy",
                                 "--reps", str(reps), "--out", str(out)], stdout=f, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()            # SIGTERM: the tool removes its namespaces on the way out
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return {"error": f"bench-firstpacket did not finish within {timeout:.0f} s, see {logf}"}
    if rc != 0:
        return {"error": f"bench-firstpacket failed ({rc}), see {logf}"}
    data = json.loads((out / "results.json").read_text())
    by_n = {}
    for res in data["results"]:
        if res["backend"] == "legacy" and res["ruleset"] == "kube":
            by_n[res["services"]] = {"ns_per_pkt": res["ns_per_pkt_median"], "pps": res["pps_median"],
                                     "clean_runs": res["clean_runs"], "target": res["target"]}
    base = next((r for r in data["results"] if r["ruleset"] == "none"), None)
    return {"by_n": by_n, "baseline_ns": base["ns_per_pkt_median"] if base else None}


# --------------------------------------------------------------------------- start-up
def pktpath_cmd() -> list[str]:
    exe = shutil.which("pktpath")
    return [exe] if exe else [sys.executable, "-m", "pktpath"]


def wall(cmd: list[str], reps: int) -> dict[str, Any]:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, check=False, cwd=REPO)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            return {"error": f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode().strip()[-200:]}"}
    return {"times": times, "best": min(times)}


# --------------------------------------------------------------------------- profile
def profile(case: Case, top: int, profiler: str = "cprofile", out: Path = OUT) -> dict[str, Any]:
    """Profile the load of CASE and one trace of each packet; top functions by own time.

    cProfile counts calls but inflates cheap, frequent calls; pyinstrument samples (1 ms)
    and distorts less.  Both write their full report to out/."""
    import pktpath.engine.path  # noqa: F401
    import pktpath.io.snapshot  # noqa: F401

    result: dict[str, Any] = {}
    holder: dict[str, Any] = {}

    def load() -> None:
        holder["snap"], holder["engine"], _ = load_engine(case.snapshot)

    result["load"] = _profiled(load, profiler, top, out / f"profile-{profiler}-load-{case.services}")
    for name, spec in case.packets.items():
        holder["pkt"] = make_packet(holder["snap"].net, spec)

        def traces() -> None:   # repeated: a single trace is too short to sample
            for _ in range(TRACE_PROFILE_REPEAT):
                trace_once(holder["engine"], holder["pkt"])

        result[f"trace {name}"] = _profiled(traces, profiler, top,
                                            out / f"profile-{profiler}-trace-{name}-{case.services}")
    return result


def _profiled(fn: Any, profiler: str, top: int, stem: Path) -> dict[str, Any]:
    if profiler == "pyinstrument":
        from pyinstrument import Profiler

        prof = Profiler(interval=0.001)
        prof.start()
        fn()
        session = prof.stop()
        stem.with_suffix(".txt").write_text(prof.output_text(unicode=True, show_all=False))
        own: dict[str, float] = {}
        stack = [session.root_frame()]
        while stack:
            frame = stack.pop()
            if frame is None:
                continue
            stack.extend(frame.children)
            path = frame.file_path or ""
            if frame.is_synthetic or "pyinstrument" in path or path == __file__:
                continue
            short = path.split("/src/", 1)[-1] if "/src/" in path else path.rsplit("/", 1)[-1]
            key = f"{short}:{frame.line_no}({frame.function})"
            own[key] = own.get(key, 0.0) + frame.total_self_time
        total = session.duration
        rows = [{"func": k, "calls": None, "own_s": v, "cum_s": None, "own_share": v / total if total else 0.0,
                 "cum_share": None} for k, v in own.items()]
        rows.sort(key=lambda r: -(r["own_s"] or 0.0))  # type: ignore[operator]
        return {"total_s": total, "top": rows[:top], "profiler": "pyinstrument"}
    import cProfile
    import pstats

    cprof = cProfile.Profile()
    cprof.enable()
    fn()
    cprof.disable()
    stats = pstats.Stats(cprof)
    stats.dump_stats(str(stem.with_suffix(".pstats")))
    return {**_top(stats, top), "profiler": "cProfile"}


def _top(stats: Any, top: int) -> dict[str, Any]:
    rows = []
    total = stats.total_tt
    for (fname, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        short = fname.split("/src/", 1)[-1] if "/src/" in fname else fname.rsplit("/", 1)[-1]
        rows.append({"func": f"{short}:{line}({func})", "calls": nc, "own_s": tt, "cum_s": ct,
                     "own_share": tt / total if total else 0.0, "cum_share": ct / total if total else 0.0})
    rows.sort(key=lambda r: -r["own_s"])
    return {"total_s": total, "top": rows[:top]}


# --------------------------------------------------------------------------- the table
@dataclass
class Row:
    figure: str
    ours: str
    theirs: str = "—"
    ratio: str = "—"
    target: str = "—"
    result: str = "—"


def _s(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.0f} µs"


def _k(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _x(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:,.0f}x"


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def build_rows(cases: list[Case], results: dict[int, dict[str, Any]], restore: dict[int, dict[str, Any]],
               kernel: dict[str, Any] | None, startup: dict[str, dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    sizes = [c.services for c in cases]
    by_n = {c.services: c for c in cases}
    ok_sizes = [n for n in sizes if "error" not in results[n]]
    # ---- load
    for n in sizes:
        res, rt = results[n], restore[n]
        c = by_n[n]
        label = f"load {_k(n)} services ({c.rules:,} rules)"
        if "error" in res:
            rows.append(Row(label, "error: " + res["error"][:80]))
            continue
        theirs = rt.get("best")
        gated = n >= 10000
        for kind, key in (("cold: every rule validated", "loads"), ("warm: validated facts cached", "warm_loads")):
            if key not in res:
                continue
            ours = min(t["total"] for t in res[key])
            ratio = ours / theirs if theirs else None
            rows.append(Row(f"{label}, {kind}", _s(ours), _s(theirs) if theirs else rt.get("error", "n/a"),
                            f"{ratio:.2f}" if ratio else "—", f"≤ {LOAD_RATIO_TARGET}" if gated else "(info)",
                            _verdict(ratio <= LOAD_RATIO_TARGET) if (gated and ratio) else "—"))
    if len(ok_sizes) >= 2:
        per = {n: min(t["total"] for t in results[n]["loads"]) / by_n[n].rules * 1e6 for n in ok_sizes}
        lo, hi = ok_sizes[0], ok_sizes[-1]
        growth = per[hi] / per[lo]
        theirs_per = {n: restore[n]["best"] / by_n[n].rules * 1e6 for n in ok_sizes if "best" in restore[n]}
        rows.append(Row("load (cold) µs/rule " + "/".join(f"{_k(n)}" for n in ok_sizes),
                        " / ".join(f"{per[n]:.1f}" for n in ok_sizes),
                        " / ".join(f"{theirs_per[n]:.1f}" for n in ok_sizes if n in theirs_per) or "n/a",
                        f"{growth:.2f} ({_k(hi)}/{_k(lo)} per rule)", f"linear: ≤ {LINEAR_TOLERANCE}",
                        _verdict(growth <= LINEAR_TOLERANCE)))
    # ---- trace
    kern = (kernel or {}).get("by_n", {})
    for pname, title in (("clusterip", "pod → ClusterIP (last service)"), ("nodeport", "external → NodePort")):
        for n in ok_sizes:
            tr = results[n]["traces"].get(pname)
            if tr is None:
                continue
            best = min(tr["times"])
            k = kern.get(n) if pname == "clusterip" else None
            kns = k["ns_per_pkt"] * 1e-9 if k else None
            ok_path = "" if tr["reached_chain"] else " (did not reach its KUBE-SVC chain!)"
            rows.append(Row(f"trace {title}, {_k(n)} — {tr['paths']} paths{ok_path}", _s(best),
                            f"kernel first packet {_s(kns)} (last UDP ClusterIP)" if kns else "—",
                            _x(best / kns) if kns else "—", "(info)", "—"))
        if len(ok_sizes) >= 2 and 1000 in ok_sizes and ok_sizes[-1] > 1000:
            hi = ok_sizes[-1]
            ta, tb = results[1000]["traces"][pname], results[hi]["traces"][pname]
            a, b = min(ta["times"]), min(tb["times"])
            per_walk = (b / tb["paths"]) / (a / ta["paths"])
            rows.append(Row(f"trace growth {title} {_k(hi)} vs 1k", f"{b / a:.1f}x ({per_walk:.1f}x per path)", "—",
                            f"{b / a:.1f}", f"≤ {TRACE_GROWTH_TARGET}", _verdict(b / a <= TRACE_GROWTH_TARGET)))
        elif pname == "clusterip":
            rows.append(Row(f"trace growth {title} 30k vs 1k", "n/a (quick: 1k only)", "—", "—",
                            f"≤ {TRACE_GROWTH_TARGET}", "—"))
    # ---- batch
    kb = kern.get(sizes[-1]) if kern else None
    theirs = (f"kernel {kb['pps']:,.0f} pkt/s ({_k(sizes[-1])})" if kb else
              f"kernel: {(kernel or {}).get('error', 'not measured (full mode, root)')}")
    for n in ok_sizes:
        pps = results[n].get("batch_pps")
        kn = kern.get(n) if kern else None
        target = {10000: 2.0, 30000: 5.0}.get(n)
        ratio = pps / kn["pps"] if (pps and kn) else None
        rows.append(Row(f"batch throughput {_k(n)} (`trace --batch`, both CPUs, pod → ClusterIP)",
                        f"{pps:,.0f} pkt/s" if pps else "—", f"kernel {kn['pps']:,.0f} pkt/s" if kn else theirs,
                        f"{ratio:.2f}" if ratio else "—", f"≥ {target}" if target else "(info)",
                        _verdict(ratio >= target) if (ratio and target) else "—"))
    # ---- memory
    for n in ok_sizes:
        res = results[n]
        per_rule = (res["rss_peak"] - res["rss_base"]) / by_n[n].rules
        gated = n == max(ok_sizes) and n >= 30000
        rows.append(Row(f"peak RSS per rule, {_k(n)} ({(res['rss_peak']) / 2**20:.0f} MiB peak)",
                        f"{per_rule:,.0f} B", "—", "—", f"≤ {RSS_PER_RULE_TARGET} B" if gated else "(info)",
                        _verdict(per_rule <= RSS_PER_RULE_TARGET) if gated else "—"))
    # ---- start-up
    h, e = startup.get("help", {}), startup.get("example", {})
    rows.append(Row("start-up `pktpath --help` (best of 5)",
                    _s(h.get("best")) if "best" in h else h.get("error", "n/a"),
                    "—", "—", f"≤ {HELP_TARGET} s", _verdict(h["best"] <= HELP_TARGET) if "best" in h else "—"))
    rows.append(Row("start-up trace examples/home-router (best of 5)",
                    _s(e.get("best")) if "best" in e else e.get("error", "n/a"), "—", "—",
                    f"≤ {EXAMPLE_TRACE_TARGET} s", _verdict(e["best"] <= EXAMPLE_TRACE_TARGET) if "best" in e else "—"))
    return rows


HEADERS = ("figure", "pktpath", "C tool / kernel", "ratio", "target", "result")


def render_text(rows: list[Row]) -> str:
    cells = [HEADERS] + [(r.figure, r.ours, r.theirs, r.ratio, r.target, r.result) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    lines = []
    for k, c in enumerate(cells):
        lines.append("  ".join(v.ljust(widths[i]) for i, v in enumerate(c)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: list[Row]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for r in rows:
        out.append("| " + " | ".join(v.replace("|", "\\|") for v in
                                     (r.figure, r.ours, r.theirs, r.ratio, r.target, r.result)) + " |")
    return "\n".join(out)


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    ipt = subprocess.run(["iptables-legacy-restore", "--version"], capture_output=True, text=True,
                         check=False).stdout.strip() if shutil.which("iptables-legacy-restore") else "not installed"
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         check=False).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], capture_output=True,
                           text=True, check=False).stdout.strip()
    return {"nproc": str(os.cpu_count()), "cpu": model, "memory": mem, "python": platform.python_version(),
            "kernel": platform.release(), "iptables": ipt,
            "pktpath": git + (" + uncommitted changes in src/" if dirty else "")}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        spec = json.loads(argv[1])
        res = worker(Path(spec["snapshot"]), spec["packets"], spec["load_reps"], spec["trace_reps"])
        print(json.dumps(res))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1k services only, few repetitions (< 2 min; CI)")
    ap.add_argument("--sizes", help="comma-separated service counts (default 1000,3000,10000,30000)")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (1: the kernel tool's files)")
    ap.add_argument("--markdown", metavar="FILE", help="also write the table and the machine as Markdown")
    ap.add_argument("--json", metavar="FILE", help="write every raw figure as JSON (default out/results.json)")
    ap.add_argument("--no-kernel", action="store_true", help="skip the kernel first-packet measurement")
    ap.add_argument("--kernel-reps", type=int, default=3)
    ap.add_argument("--kernel-timeout", type=float, default=2400,
                    help="seconds before the kernel measurement is abandoned (it waits for a quiet machine)")
    ap.add_argument("--render", metavar="JSON", help="only print (and --markdown) the table of an earlier run's JSON")
    ap.add_argument("--profile", type=int, metavar="N", help="also cProfile the load and traces of N services")
    ap.add_argument("--profiler", choices=["cprofile", "pyinstrument"], default="cprofile",
                    help="pyinstrument (pip install '.[bench]') samples and distorts less")
    ap.add_argument("--top", type=int, default=10, help="profile rows to print")
    args = ap.parse_args(argv)

    if args.render:
        return render_saved(Path(args.render), args.markdown)
    if not GEN.exists():
        log(f"error: {GEN} not found (the shared tools live beside the repository)")
        return 2
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(QUICK_SIZES if args.quick else FULL_SIZES)
    load_reps, trace_reps, restore_reps, start_reps = (2, 3, 3, 5) if args.quick else (3, 5, 3, 5)
    t_start = time.time()
    cases, results, restore = [], {}, {}
    for n in sizes:
        log(f"{n} services: generating and wrapping the snapshot")
        c = build_case(n, args.seed)
        cases.append(c)
        reps = load_reps if n < 30000 else max(1, load_reps - 1)
        log(f"  {c.rules:,} rules; pktpath load x{reps} and traces x{trace_reps} (fresh process)")
        results[n] = run_worker(c, reps, trace_reps)
        if "error" in results[n]:
            log("  pktpath failed: " + results[n]["error"])
        log(f"  iptables-legacy-restore --test x{restore_reps}")
        restore[n] = iptables_restore_test(c.save, restore_reps)
    log("start-up: pktpath --help and one trace of examples/home-router")
    startup = {"help": wall(pktpath_cmd() + ["--help"], start_reps),
               "example": wall(pktpath_cmd() + EXAMPLE_TRACE, start_reps)}
    kernel: dict[str, Any] | None = None
    if args.quick or args.no_kernel:
        kernel = {"error": "not measured (" + ("--quick" if args.quick else "--no-kernel") + ")"}
    else:
        kernel = kernel_firstpacket(cases, args.kernel_reps, args.kernel_timeout)
    prof = None
    if args.profile:
        log(f"profiling load and trace of {args.profile} services")
        pc = next((c for c in cases if c.services == args.profile), None) or build_case(args.profile, args.seed)
        prof = profile(pc, args.top, args.profiler)

    rows = build_rows(cases, results, restore, kernel, startup)
    notes = []
    for n, res in results.items():
        for pname, tr in res.get("traces", {}).items():
            again = tr["reuse_without_reset"]
            if again["paths"] != tr["paths"] or again["reached_chain"] != tr["reached_chain"]:
                notes.append(f"{_k(n)} {pname}: explore() again on the same Engine without a fresh conntrack "
                             f"table gives {again['paths']} path(s) (reaches {tr['expect_chain']}: "
                             f"{again['reached_chain']}) instead of {tr['paths']}: the first walk's confirmed "
                             "connection stays in host.conntrack (timings here reset it, as the CLI's fresh "
                             "process does).")
                break
    mach = machine()
    print(render_text(rows))
    for note in notes:
        print("note: " + note)
    print("machine: " + "; ".join(f"{k} {v}" for k, v in mach.items()))
    print(f"(ran in {time.time() - t_start:.0f} s)")
    if prof:
        for what, p in prof.items():
            print(f"\nprofile {_k(args.profile)} {what}: {p['total_s']:.3f} s total ({p['profiler']}), "
                  "top by own time")
            for r in p["top"]:
                cum = f"{r['cum_share'] * 100:5.1f}% cum" if r["cum_share"] is not None else ""
                calls = f"{r['calls']:>10,}" if r["calls"] is not None else ""
                print(f"  {r['own_share'] * 100:5.1f}% own {cum:>9}  {calls:>10}  {r['func']}")
    raw = {"machine": mach, "sizes": sizes, "cases": {c.services: {"rules": c.rules, "stats": c.stats,
                                                                  "packets": c.packets} for c in cases},
           "pktpath": results, "iptables_restore_test": restore, "kernel": kernel, "startup": startup,
           "profile": prof, "notes": notes, "quick": args.quick}
    json_path = Path(args.json) if args.json else OUT / ("results-quick.json" if args.quick else "results.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(raw, indent=1, default=str))
    if args.markdown:
        write_markdown(Path(args.markdown), rows, mach, notes, args.quick)
    return 0


def write_markdown(path: Path, rows: list[Row], mach: dict[str, str], notes: list[str], quick: bool) -> None:
    md = ["## Results", "", f"`python benchmarks/run.py{' --quick' if quick else ''}`.", "",
          "Machine: " + ", ".join(f"{k} {v}" for k, v in mach.items()) + ".", "", render_markdown(rows), ""]
    md += [f"- {n}" for n in notes]
    path.write_text("\n".join(md) + "\n")


def render_saved(path: Path, markdown: str | None) -> int:
    """The table of a run saved with --json (e.g. to re-render it after a format change)."""
    raw = json.loads(path.read_text())
    cases = [Case(int(n), 0, Path(), Path(), c["rules"], c["stats"], c["packets"]) for n, c in raw["cases"].items()]
    results = {int(n): r for n, r in raw["pktpath"].items()}
    restore = {int(n): r for n, r in raw["iptables_restore_test"].items()}
    kernel = raw.get("kernel") or {}
    if "by_n" in kernel:
        kernel["by_n"] = {int(n): v for n, v in kernel["by_n"].items()}
    rows = build_rows(cases, results, restore, kernel, raw["startup"])
    print(render_text(rows))
    for note in raw.get("notes", []):
        print("note: " + note)
    if markdown:
        write_markdown(Path(markdown), rows, raw["machine"], raw.get("notes", []), raw.get("quick", False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
