"""What the kernel refuses when a table is loaded (``translate_table()`` in ip_tables.c):
jump loops (``mark_source_chains()`` -> ELOOP) and extensions used from a hook they do
not allow (``xt_check_match/target``: "bad hook_mask"), plus iptables' own refusal of
``-i`` on output chains and ``-o`` on input chains."""

from __future__ import annotations

from pktpath.engine.skb import Hook
from pktpath.errors import ParseError
from pktpath.model.xtables import JumpTarget, Rule, Table

INPUT_SIDE = frozenset({"PREROUTING", "INPUT"})
OUTPUT_SIDE = frozenset({"OUTPUT", "POSTROUTING"})


def _fail(rule: Rule, source: str, msg: str) -> ParseError:
    loc = rule.origin
    return ParseError(loc.source if loc else source, loc.line if loc else 0, msg, rule.text)


def check_table(table: Table, source: str) -> None:
    hooks_of = reachable_hooks(table, source)
    for chain in table.chains.values():
        for rule in chain.rules:
            if chain.builtin:
                if rule.ip.iniface and chain.name in OUTPUT_SIDE:
                    raise _fail(rule, source, f"can't use -i with {chain.name} (no input interface there)")
                if rule.ip.outiface and chain.name in INPUT_SIDE:
                    raise _fail(rule, source, f"can't use -o with {chain.name} (no output interface yet)")
            mask = hooks_of.get(chain.name, frozenset())
            for ext in (*rule.matches, rule.target):
                allowed = _allowed_hooks(ext)
                if allowed is not None and mask - allowed:
                    bad = ", ".join(sorted(h.name for h in mask - allowed))
                    name = getattr(ext, "name", type(ext).__name__)
                    raise _fail(rule, source, f"{name} cannot be used from {bad} (chain {chain.name} is reached "
                                "from there); the kernel refuses the table (bad hook_mask)")


def _allowed_hooks(ext: object) -> frozenset[Hook] | None:
    """The hooks an extension accepts: a ``hooks`` class attribute, a ``valid_hooks()`` method
    (when it depends on the options) or an ``allowed_hooks`` property (hook names)."""
    valid = getattr(ext, "valid_hooks", None)
    allowed = valid() if callable(valid) else getattr(ext, "hooks", None)
    if allowed is None:
        allowed = getattr(ext, "allowed_hooks", None)
    if allowed is None:
        return None
    return frozenset(h if isinstance(h, Hook) else Hook[str(h)] for h in allowed)


def reachable_hooks(table: Table, source: str) -> dict[str, frozenset[Hook]]:
    """Which hooks reach each chain; raises on a jump loop (ELOOP) reachable from a hook."""
    hooks: dict[str, set[Hook]] = {}
    for chain in table.chains.values():
        if not chain.builtin:
            continue
        hook = Hook[chain.name]
        _walk(table, chain.name, hook, hooks, [], source)
    return {k: frozenset(v) for k, v in hooks.items()}


def _walk(table: Table, name: str, hook: Hook, hooks: dict[str, set[Hook]], path: list[str], source: str) -> None:
    seen = hooks.setdefault(name, set())
    if hook in seen and name not in path:
        return
    seen.add(hook)
    path.append(name)
    for rule in table.chains[name].rules:
        tgt = rule.target
        if isinstance(tgt, JumpTarget):
            if tgt.chain in path:
                cycle = " -> ".join(path[path.index(tgt.chain):] + [tgt.chain])
                raise _fail(rule, source, f"jump loop {cycle}: the kernel refuses the table (ELOOP)")
            _walk(table, tgt.chain, hook, hooks, path, source)
    path.pop()
