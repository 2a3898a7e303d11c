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
    chain: str
    label: str  # "raw:PREROUTING:rule:3"
    rule: Rule | None  # None for an implicit tail
    tail: bool = False


@dataclass(slots=True)
class TableImage:
    name: str
    rows: list[Row] = field(default_factory=list)
    chain_start: dict[str, int] = field(default_factory=dict)
    underflow: dict[str, int] = field(default_factory=dict)
    policy: dict[str, Verdict] = field(default_factory=dict)
    stacksize: int = 0


def is_unconditional_verdict(rule: Rule) -> bool:
    """unconditional(e) and a standard target with a negative verdict (get_chainname_rulenum)."""
    return (not rule.matches and rule.ip.unconditional and isinstance(rule.target, StandardTarget))


def compile_table(table: Table) -> TableImage:
    img = TableImage(table.name)
    for chain in table.chains.values():
        img.chain_start[chain.name] = len(img.rows)
        tail_kind = "policy" if chain.builtin else "return"
        for n, rule in enumerate(chain.rules, 1):
            kind = tail_kind if is_unconditional_verdict(rule) else "rule"
            img.rows.append(Row(chain.name, f"{table.name}:{chain.name}:{kind}:{n}", rule))
        img.rows.append(Row(chain.name, f"{table.name}:{chain.name}:{tail_kind}:{len(chain.rules) + 1}",
                            None, tail=True))
        if chain.builtin:
            assert chain.policy is not None
            img.underflow[chain.name] = len(img.rows) - 1
            img.policy[chain.name] = chain.policy
        else:
            img.stacksize += 1
    return img


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


def rule_matches(rule: Rule, label: str, skb: Skb, par: XtParams, decide: Decide) -> bool:
    if not ip_packet_match(rule.ip, skb, par):
        return False
    for m in rule.matches:
        res = m.matches(skb, par)
        if res is True:
            continue
        if res is False:
            return False
        if not decide(label, res):
            return False
    return True


def do_table(img: TableImage, hook_chain: str, skb: Skb, par: XtParams, decide: Decide,
             on_match: OnMatch) -> Verdict:
    """Walk one table for one hook; returns ACCEPT, DROP, QUEUE or STOLEN."""
    rows = img.rows
    pc = img.chain_start[hook_chain]
    stack: list[int] = []
    while True:
        row = rows[pc]
        rule = row.rule
        if rule is not None and not rule_matches(rule, row.label, skb, par, decide):
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
