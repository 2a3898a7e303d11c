"""The jump graph of each table and what is wrong with it: empty chains, chains no hook
reaches, and rules that can never match because an earlier rule of the same chain catches
every packet they would catch (the simple cases: same or fewer conditions, no marks)."""

from __future__ import annotations

from dataclasses import dataclass

from pktpath.model.xtables import JumpTarget, Rule, Ruleset, StandardTarget, Table
from pktpath.parse.ruleset_checks import reachable_hooks


@dataclass(frozen=True, slots=True)
class ChainInfo:
    table: str
    name: str
    builtin: bool
    rules: int
    calls: tuple[str, ...]  # chains it jumps or goes to
    callers: tuple[str, ...]  # chains that jump or go to it
    hooks: tuple[str, ...]  # hooks that reach it
    empty: bool
    unreachable: bool


@dataclass(frozen=True, slots=True)
class Shadowed:
    table: str
    chain: str
    number: int  # 1-based rule number of the rule that never matches
    by: int  # the earlier rule that catches its packets
    rule: str
    origin: str


def chain_graph(ruleset: Ruleset) -> list[ChainInfo]:
    out = []
    for table in ruleset.tables.values():
        hooks = reachable_hooks(table, ruleset.source)
        callers: dict[str, list[str]] = {}
        for chain in table.chains.values():
            for rule in chain.rules:
                if isinstance(rule.target, JumpTarget):
                    callers.setdefault(rule.target.chain, []).append(chain.name)
        for chain in table.chains.values():
            calls = tuple(dict.fromkeys(r.target.chain for r in chain.rules if isinstance(r.target, JumpTarget)))
            reached = hooks.get(chain.name, frozenset())
            out.append(ChainInfo(table.name, chain.name, chain.builtin, len(chain.rules), calls,
                                 tuple(dict.fromkeys(callers.get(chain.name, []))),
                                 tuple(sorted(h.name for h in reached)), not chain.rules,
                                 not chain.builtin and not reached))
    return out


def _conditions(rule: Rule) -> frozenset[str] | None:
    """A rule's conditions as comparable atoms, or None when it is not a simple case."""
    atoms = set()
    ip = rule.ip
    for name, value in (("src", ip.src if ip.src.mask else None), ("dst", ip.dst if ip.dst.mask else None),
                        ("in", ip.iniface or None), ("out", ip.outiface or None), ("proto", ip.proto or None)):
        if value is None:
            continue
        inv = getattr(ip, f"inv_{'proto' if name == 'proto' else name}", False)
        atoms.add(f"{'!' if inv else ''}{name}={value}")
    if ip.frag:
        atoms.add(f"{'!' if ip.inv_frag else ''}frag")
    for m in rule.matches:
        if m.name in ("mark", "connmark", "statistic", "limit", "recent", "hashlimit", "unparsed", "nth", "quota"):
            return None
        if m.name == "comment":
            continue
        atoms.add(m.render())
    return frozenset(atoms)


def _terminal(rule: Rule) -> bool:
    t = rule.target
    return isinstance(t, StandardTarget) or (isinstance(t, JumpTarget) and t.goto)


def shadowed_rules(ruleset: Ruleset) -> list[Shadowed]:
    out = []
    for table in ruleset.tables.values():
        out.extend(_shadowed_in(table))
    return out


def _shadowed_in(table: Table) -> list[Shadowed]:
    out = []
    for chain in table.chains.values():
        earlier: list[tuple[int, frozenset[str]]] = []
        for n, rule in enumerate(chain.rules, 1):
            conds = _conditions(rule)
            if conds is None:
                continue
            for m, prev in earlier:
                if prev <= conds:
                    out.append(Shadowed(table.name, chain.name, n, m, rule.text,
                                        str(rule.origin) if rule.origin else ""))
                    break
            if _terminal(rule):
                earlier.append((n, conds))
    return out
