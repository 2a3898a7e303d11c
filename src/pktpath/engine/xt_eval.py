"""The x_tables rule walk: ``ipt_do_table()`` (net/ipv4/netfilter/ip_tables.c, v6.18).

Theory of operation
-------------------
A ``Table`` is compiled into a ``TableImage``: one flat list of rows per table, the way
``translate_table()`` lays out the blob; a user chain is laid out when a walk first jumps to
it, and a row fetches its rule when a walk first reaches it (a kube-proxy table holds 100k
chains no single packet enters).  Each chain's rules are rows, followed by an implicit
tail row: the built-in chain's policy (its ``underflow``) or a user chain's RETURN.  Row
labels are computed as ``get_chainname_rulenum()`` does, so the TRACE ids
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pktpath.engine.skb import Skb, XtParams
from pktpath.model.xtables import (
    INDEX_MIN_RUN,
    Chain,
    ExactKey,
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
    exact_key,
)


class Row:
    """One rule of a compiled chain, or the chain's implicit tail (``rule`` None).

    The rule itself is fetched from the chain only when the walk reaches the row: rows the
    index skips are never built (see ``LazyRules``)."""

    __slots__ = ("table", "chain", "num", "tail", "_rules", "_tail_kind", "_rule")

    def __init__(self, table: str, chain: str, num: int, rules: Sequence[Rule], tail_kind: str,
                 tail: bool = False) -> None:
        self.table = table
        self.chain = chain
        self.num = num
        self.tail = tail
        self._rules = rules
        self._tail_kind = tail_kind  # what get_chainname_rulenum() calls the chain's end
        self._rule: Rule | None = None

    @property
    def rule(self) -> Rule | None:
        rule = self._rule
        if rule is None and not self.tail:
            rule = self._rule = self._rules[self.num - 1]
        return rule

    @property
    def kind(self) -> str:
        """rule / return / policy, as get_chainname_rulenum() names it."""
        rule = self.rule
        if rule is None or is_unconditional_verdict(rule):
            return self._tail_kind
        return "rule"

    @property
    def label(self) -> str:
        """The TRACE id, ``raw:PREROUTING:rule:3`` (built only when a row is reported)."""
        return f"{self.table}:{self.chain}:{self.kind}:{self.num}"

    def __repr__(self) -> str:
        return f"Row({self.table}:{self.chain}:{self.num}{' tail' if self.tail else ''})"


IndexKey = ExactKey
MIN_RUN = INDEX_MIN_RUN  # shorter runs are walked row by row


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


class _ChainStarts(dict[str, int]):
    """chain name -> first row; a chain is compiled the first time a jump needs it."""

    def __init__(self, img: TableImage) -> None:
        super().__init__()
        self.img = img

    def __missing__(self, name: str) -> int:
        return self.img.add_chain(name)


class TableImage:
    """A table laid out as ``translate_table()`` lays out the blob: one flat list of rows.

    The built-in chains are laid out at once; a user chain when a walk first jumps to it
    (a 100k-chain kube-proxy table is mostly chains no packet of a run ever enters)."""

    def __init__(self, table: Table, index: bool = True) -> None:
        self.name = table.name
        self.table = table
        self.index = index
        self.rows: list[Row] = []
        self.run_at: list[IndexedRun | None] = []  # the run each row belongs to
        self.chain_start: dict[str, int] = _ChainStarts(self)
        self.underflow: dict[str, int] = {}
        self.policy: dict[str, Verdict] = {}
        self.stacksize = sum(1 for c in table.chains.values() if not c.builtin)
        for chain in table.chains.values():
            if chain.builtin:
                self.add_chain(chain.name)

    def add_chain(self, name: str) -> int:
        chain = self.table.chains[name]
        start = len(self.rows)
        tail_kind = "policy" if chain.builtin else "return"
        rules = chain.rules
        count = len(rules)
        self.rows.extend(Row(self.name, name, n, rules, tail_kind) for n in range(1, count + 1))
        self.rows.append(Row(self.name, name, count + 1, rules, tail_kind, tail=True))
        self.run_at.extend([None] * (count + 1))
        if self.index:
            keys = chain_keys(chain)
            if keys is not None:
                for run in build_runs(keys, start):
                    for n in range(run.start, run.end):
                        self.run_at[n] = run
        if chain.builtin:
            assert chain.policy is not None
            self.underflow[name] = len(self.rows) - 1
            self.policy[name] = chain.policy
        dict.__setitem__(self.chain_start, name, start)
        return start


def is_unconditional_verdict(rule: Rule) -> bool:
    """unconditional(e) and a standard target with a negative verdict (get_chainname_rulenum)."""
    return not rule.matches and isinstance(rule.target, StandardTarget) and rule.ip.unconditional


def compile_table(table: Table, index: bool = True) -> TableImage:
    return TableImage(table, index)


def index_key(rule: Rule) -> IndexKey | None:
    return exact_key(rule)


def chain_keys(chain: Chain) -> Sequence[IndexKey | None] | None:
    """exact_key() of each rule; from the chain's facts when it has them (no rule is built),
    None when no run is long enough to index."""
    if chain.index_known:
        return chain.index_keys
    if len(chain.rules) < MIN_RUN:
        return None
    return [exact_key(rule) for rule in chain.rules]


def build_runs(keys: Sequence[IndexKey | None], offset: int = 0) -> list[IndexedRun]:
    """The runs of at least MIN_RUN consecutive keyed rules; row numbers start at ``offset``."""
    runs: list[IndexedRun] = []
    i = 0
    while i < len(keys):
        j = i
        while j < len(keys) and keys[j] is not None:
            j += 1
        if j - i >= MIN_RUN:
            run = IndexedRun(offset + i, offset + j)
            for n in range(i, j):
                key = keys[n]
                assert key is not None
                run.buckets.setdefault(key, []).append(offset + n)
            runs.append(run)
        i = max(j, i + 1)
    return runs


def iface_match(rule_if: str, dev: str | None, invert: bool) -> bool:
    name = dev or ""
    hit = name.startswith(rule_if[:-1]) if rule_if.endswith("+") else name == rule_if
    return hit ^ invert


def ip_packet_match(ip: IpHeaderMatch, skb: Skb, par: XtParams) -> bool:
    """ip_packet_match(): the ipt_ip part of a rule."""
    src = ip.src
    if src.mask:
        if src.contains(skb.src) == ip.inv_src:
            return False
    elif ip.inv_src:
        return False
    dst = ip.dst
    if dst.mask:
        if dst.contains(skb.dst) == ip.inv_dst:
            return False
    elif ip.inv_dst:
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
        verdict = target.target(skb, par)  # a Target: the other kinds are handled above
        if verdict is Verdict.CONTINUE:
            pc += 1
            continue
        return verdict


def rule_uses(rule: Rule) -> tuple[Match | Target, ...]:
    out: list[Match | Target] = list(rule.matches)
    if isinstance(rule.target, Target):
        out.append(rule.target)
    return tuple(out)
