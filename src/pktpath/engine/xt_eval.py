"""The x_tables rule walk: ``ipt_do_table()`` (net/ipv4/netfilter/ip_tables.c, v6.18).

Theory of operation
-------------------
A ``Table`` is compiled once into a ``TableImage``: one flat list of rows per table, the
way ``translate_table()`` lays out the blob.  Each chain's rules are rows, followed by an
implicit tail row: the built-in chain's policy (its ``underflow``) or a user chain's
RETURN.  Row labels are computed as ``get_chainname_rulenum()`` does, so the TRACE ids
``rule:N`` / ``return:N`` / ``policy:N`` fall out by construction, including the quirk
that an unconditional ACCEPT/DROP/RETURN rule is labelled like a chain tail.

``do_table()`` is one loop with an explicit jump stack: ``-j`` pushes the calling row,
``-g`` does not, RETURN (or a user chain's tail) pops, and an empty stack falls to the
hook's underflow (the built-in policy).  Matches run in order and the first failure skips
the rule; a matched row is traced before its target runs.  A match the snapshot cannot
decide (``Uncertain``) is handed to ``decide``, which picks the branch to follow.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

from pktpath.engine.skb import Skb, XtParams
from pktpath.model.xtables import (
    IpHeaderMatch,
    JumpTarget,
    Match,
    NoTarget,
    Rule,
    StandardTarget,
    Table,
    Target,
    Uncertain,
    Verdict,
)


@dataclass(frozen=True, slots=True)
class Row:
    table: str
    chain: str
    kind: str  # rule / return / policy, as get_chainname_rulenum() names it
    num: int
    rule: Rule | None  # None for an implicit tail
    tail: bool = False

    @property
    def label(self) -> str:
        """The TRACE id, ``raw:PREROUTING:rule:3`` (built only when a row is reported)."""
        return f"{self.table}:{self.chain}:{self.kind}:{self.num}"


IndexKey = tuple[int | None, int, int | None]  # (exact dst, proto, exact dport)
MIN_RUN = 8  # shorter runs are walked row by row


@dataclass(slots=True)
class IndexedRun:
    """Consecutive rows that each require an exact protocol plus an exact destination and/or
    destination port (kube-proxy's KUBE-SERVICES and KUBE-NODEPORTS).  Rows whose key cannot
    match the packet cannot match it at all, so the walk skips straight to the next row
    that can; every candidate is still evaluated in full and in order."""

    start: int
    end: int  # first row after the run
    buckets: dict[IndexKey, list[int]] = field(default_factory=dict)
    cache: dict[tuple[int, int, int | None], list[int]] = field(default_factory=dict)

    def candidates(self, skb: Skb) -> list[int]:
        key = (skb.dst, skb.proto, skb.dport)
        hit = self.cache.get(key)
        if hit is None:
            found: list[int] = []
            for k in ((skb.dst, skb.proto, skb.dport), (skb.dst, skb.proto, None), (None, skb.proto, skb.dport)):
                if k[2] is None and k[0] is None:
                    continue
                found.extend(self.buckets.get(k, ()))
            hit = sorted(set(found))
            if len(self.cache) > 4096:
                self.cache.clear()
            self.cache[key] = hit
        return hit

    def next_row(self, pc: int, skb: Skb) -> int:
        cands = self.candidates(skb)
        i = bisect_left(cands, pc)
        return cands[i] if i < len(cands) else self.end


@dataclass(slots=True)
class TableImage:
    name: str
    rows: list[Row] = field(default_factory=list)
    chain_start: dict[str, int] = field(default_factory=dict)
    underflow: dict[str, int] = field(default_factory=dict)
    policy: dict[str, Verdict] = field(default_factory=dict)
    stacksize: int = 0
    run_at: list[IndexedRun | None] = field(default_factory=list)  # the run each row belongs to


def is_unconditional_verdict(rule: Rule) -> bool:
    """unconditional(e) and a standard target with a negative verdict (get_chainname_rulenum)."""
    return not rule.matches and isinstance(rule.target, StandardTarget) and rule.ip.unconditional


def compile_table(table: Table, index: bool = True) -> TableImage:
    img = TableImage(table.name)
    for chain in table.chains.values():
        img.chain_start[chain.name] = len(img.rows)
        tail_kind = "policy" if chain.builtin else "return"
        for n, rule in enumerate(chain.rules, 1):
            kind = tail_kind if is_unconditional_verdict(rule) else "rule"
            img.rows.append(Row(table.name, chain.name, kind, n, rule))
        img.rows.append(Row(table.name, chain.name, tail_kind, len(chain.rules) + 1, None, tail=True))
        if chain.builtin:
            assert chain.policy is not None
            img.underflow[chain.name] = len(img.rows) - 1
            img.policy[chain.name] = chain.policy
        else:
            img.stacksize += 1
    if index:
        img.run_at = build_runs(img.rows)
    return img


def index_key(rule: Rule) -> IndexKey | None:
    """The exact (dst, proto, dport) a rule requires, when it requires enough of them."""
    ip = rule.ip
    if not ip.proto or ip.inv_proto:
        return None
    dst = ip.dst.addr if ip.dst.mask == 0xFFFFFFFF and not ip.inv_dst else None
    dport = None
    for m in rule.matches:
        if m.name in ("tcp", "udp") and m.name == {6: "tcp", 17: "udp"}.get(ip.proto):
            rng = getattr(m, "dport", None)
            if rng is not None and rng[0] == rng[1] and not getattr(m, "inv_dport", False):
                dport = rng[0]
    if dst is None and dport is None:
        return None
    return dst, ip.proto, dport


def build_runs(rows: list[Row]) -> list[IndexedRun | None]:
    run_at: list[IndexedRun | None] = [None] * len(rows)
    i = 0
    while i < len(rows):
        j = i
        keys: list[IndexKey] = []
        while j < len(rows) and rows[j].rule is not None:
            key = index_key(rows[j].rule)  # type: ignore[arg-type]
            if key is None:
                break
            keys.append(key)
            j += 1
        if j - i >= MIN_RUN:
            run = IndexedRun(i, j)
            for n, key in enumerate(keys):
                run.buckets.setdefault(key, []).append(i + n)
            for n in range(i, j):
                run_at[n] = run
        i = max(j, i + 1)
    return run_at


def iface_match(rule_if: str, dev: str | None, invert: bool) -> bool:
    name = dev or ""
    hit = name.startswith(rule_if[:-1]) if rule_if.endswith("+") else name == rule_if
    return hit ^ invert


def ip_packet_match(ip: IpHeaderMatch, skb: Skb, par: XtParams) -> bool:
    """ip_packet_match(): the ipt_ip part of a rule."""
    if ip.src.mask and ip.src.contains(skb.src) == ip.inv_src:
        return False
    if not ip.src.mask and ip.inv_src:
        return False
    if ip.dst.mask and ip.dst.contains(skb.dst) == ip.inv_dst:
        return False
    if not ip.dst.mask and ip.inv_dst:
        return False
    if ip.iniface and not iface_match(ip.iniface, par.in_dev, ip.inv_in):
        return False
    if ip.outiface and not iface_match(ip.outiface, par.out_dev, ip.inv_out):
        return False
    if ip.proto and (skb.proto == ip.proto) == ip.inv_proto:
        return False
    if ip.frag and (par.fragoff != 0) == ip.inv_frag:
        return False
    return True


Decide = Callable[[str, Uncertain], bool]
OnMatch = Callable[[Row, Skb, XtParams], None]


def rule_matches(rule: Rule, row: Row, skb: Skb, par: XtParams, decide: Decide) -> bool:
    if not ip_packet_match(rule.ip, skb, par):
        return False
    for m in rule.matches:
        res = m.matches(skb, par)
        if res is True:
            continue
        if res is False:
            return False
        if not decide(row.label, res):
            return False
    return True


def do_table(img: TableImage, hook_chain: str, skb: Skb, par: XtParams, decide: Decide,
             on_match: OnMatch) -> Verdict:
    """Walk one table for one hook; returns ACCEPT, DROP, QUEUE or STOLEN."""
    rows = img.rows
    run_at = img.run_at
    pc = img.chain_start[hook_chain]
    stack: list[int] = []
    while True:
        run = run_at[pc] if run_at else None
        if run is not None:
            pc = run.next_row(pc, skb)  # rows skipped here cannot match this packet
            if pc == run.end:
                continue
        row = rows[pc]
        rule = row.rule
        if rule is not None and not rule_matches(rule, row, skb, par, decide):
            pc += 1
            continue
        on_match(row, skb, par)
        if rule is None:  # implicit tail: policy or RETURN
            if row.chain in img.policy:
                return img.policy[row.chain]
            pc = stack.pop() + 1 if stack else img.underflow[hook_chain]
            continue
        target = rule.target
        if isinstance(target, StandardTarget):
            if target.verdict is Verdict.RETURN:
                pc = stack.pop() + 1 if stack else img.underflow[hook_chain]
                continue
            return target.verdict
        if isinstance(target, JumpTarget):
            if not target.goto:
                if len(stack) >= img.stacksize:
                    return Verdict.DROP  # jump stack overflow
                stack.append(pc)
            pc = img.chain_start[target.chain]
            continue
        if isinstance(target, NoTarget):
            pc += 1
            continue
        assert isinstance(target, Target)
        verdict = target.target(skb, par)
        if verdict is Verdict.CONTINUE:
            pc += 1
            continue
        return verdict


def rule_uses(rule: Rule) -> tuple[Match | Target, ...]:
    out: list[Match | Target] = list(rule.matches)
    if isinstance(rule.target, Target):
        out.append(rule.target)
    return tuple(out)
