"""One rule in plain words: what it matches, what it does, and how packets reach it."""

from __future__ import annotations

from dataclasses import dataclass

from pktpath.engine.skb import proto_name
from pktpath.errors import UsageError
from pktpath.lint.chains import chain_graph
from pktpath.model.xtables import JumpTarget, NoTarget, Rule, Ruleset, StandardTarget, Target

VERDICT_WORDS = {
    "ACCEPT": "accepts the packet: this table is done with it, the next table on the hook still sees it",
    "DROP": "drops the packet silently",
    "RETURN": "returns to the chain that jumped here (in a built-in chain: applies its policy)",
    "QUEUE": "hands the packet to a userspace queue",
}


@dataclass(frozen=True, slots=True)
class RuleExplanation:
    ref: str
    rule: str
    origin: str
    matches: tuple[str, ...]
    action: str
    reached_from: tuple[str, ...]  # "hook PREROUTING", "chain KUBE-SERVICES (rule 3)"


def find_rule(ruleset: Ruleset, ref: str) -> tuple[str, str, int, Rule]:
    """``TABLE:CHAIN:N``, ``TABLE:CHAIN:rule:N`` or ``FILE:LINE`` -> (table, chain, number, rule)."""
    parts = ref.split(":")
    if len(parts) in (3, 4) and parts[0] in ruleset.tables and parts[-1].isdigit():
        table, chain = parts[0], parts[1]
        n = int(parts[-1])
        chains = ruleset.tables[table].chains
        if chain not in chains:
            raise UsageError(f"{ref}: no chain {chain} in table {table}")
        rules = chains[chain].rules
        if not 1 <= n <= len(rules):
            raise UsageError(f"{ref}: chain {table}:{chain} has {len(rules)} rules")
        return table, chain, n, rules[n - 1]
    if len(parts) >= 2 and parts[-1].isdigit():
        line = int(parts[-1])
        for t in ruleset.tables.values():
            for c in t.chains.values():
                for n, r in enumerate(c.rules, 1):
                    if r.origin and r.origin.line == line:
                        return t.name, c.name, n, r
        raise UsageError(f"{ref}: no rule on line {line}")
    raise UsageError(f"{ref}: expected TABLE:CHAIN:N (e.g. filter:INPUT:3) or FILE:LINE (e.g. iptables-save.txt:12)")


def describe_matches(rule: Rule) -> list[str]:
    ip = rule.ip
    out = []
    neg = {True: "not ", False: ""}
    if ip.src.mask:
        out.append(f"source address {neg[ip.inv_src]}in {ip.src}")
    if ip.dst.mask:
        out.append(f"destination address {neg[ip.inv_dst]}in {ip.dst}")
    if ip.iniface:
        out.append(f"arriving {neg[ip.inv_in]}on {ip.iniface}" + (" (prefix)" if ip.iniface.endswith("+") else ""))
    if ip.outiface:
        out.append(f"leaving {neg[ip.inv_out]}through {ip.outiface}")
    if ip.proto:
        out.append(f"protocol {neg[ip.inv_proto]}{proto_name(ip.proto)}")
    if ip.frag:
        out.append("a non-first fragment" if not ip.inv_frag else "not a non-first fragment")
    for m in rule.matches:
        if m.name == "comment":
            continue
        out.append(m.render())
    return out or ["every packet"]


def describe_action(rule: Rule) -> str:
    t = rule.target
    if isinstance(t, StandardTarget):
        return VERDICT_WORDS[t.verdict.value]
    if isinstance(t, JumpTarget):
        if t.goto:
            return (f"goes to chain {t.chain} without remembering this one: falling off {t.chain} returns to "
                    "the last chain entered with -j (or the built-in policy)")
        return f"jumps to chain {t.chain}; falling off its end continues with the next rule here"
    if isinstance(t, NoTarget):
        return "nothing (counts the packet and continues)"
    assert isinstance(t, Target)
    return f"{t.render()} ({t.name})"


def explain_rule(ruleset: Ruleset, ref: str) -> RuleExplanation:
    table, chain, n, rule = find_rule(ruleset, ref)
    graph = {(c.table, c.name): c for c in chain_graph(ruleset)}
    info = graph[(table, chain)]
    reached = [f"hook {h}" for h in info.hooks] if not info.builtin else [f"hook {chain} directly"]
    if not info.builtin:
        for caller in info.callers:
            nums = [i for i, r in enumerate(ruleset.tables[table].chains[caller].rules, 1)
                    if isinstance(r.target, JumpTarget) and r.target.chain == chain]
            reached.append(f"chain {caller} (rule {', '.join(map(str, nums))})")
        if info.unreachable:
            reached.append("no hook reaches this chain: its rules never see a packet")
    return RuleExplanation(f"{table}:{chain}:rule:{n}", rule.text,
                           str(rule.origin) if rule.origin else "", tuple(describe_matches(rule)),
                           describe_action(rule), tuple(reached))
