"""What the kernel refuses when a table is loaded (``translate_table()`` in ip_tables.c):
jump loops (``mark_source_chains()`` -> ELOOP) and extensions used from a hook they do
not allow (``xt_check_match/target``: "bad hook_mask"), plus iptables' own refusal of
``-i`` on output chains and ``-o`` on input chains."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn, TypeVar

from pktpath.engine.skb import Hook
from pktpath.errors import ParseError
from pktpath.model.xtables import INDEX_MIN_RUN, ChainFacts, ExactKey, JumpTarget, Rule, Table, Target, exact_key

R = TypeVar("R")

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


_CLASS_HOOKS: dict[type, frozenset[Hook] | None] = {}


def _allowed_hooks(ext: object) -> frozenset[Hook] | None:
    """The hooks an extension accepts: a ``hooks`` class attribute, a ``valid_hooks()`` method
    (when it depends on the options) or an ``allowed_hooks`` property (hook names)."""
    cls = type(ext)
    if cls in _CLASS_HOOKS:
        return _CLASS_HOOKS[cls]
    per_instance = hasattr(cls, "valid_hooks") or hasattr(cls, "allowed_hooks")
    result = _instance_hooks(ext)
    if not per_instance:
        _CLASS_HOOKS[cls] = result
    return result


def _instance_hooks(ext: object) -> frozenset[Hook] | None:
    valid = getattr(ext, "valid_hooks", None)
    allowed = valid() if callable(valid) else getattr(ext, "hooks", None)
    if allowed is None:
        allowed = getattr(ext, "allowed_hooks", None)
    if allowed is None:
        return None
    return frozenset(h if isinstance(h, Hook) else Hook[str(h)] for h in allowed)


def reachable_hooks(table: Table, source: str) -> dict[str, frozenset[Hook]]:
    """Which hooks reach each chain; raises on a jump loop (ELOOP) reachable from a hook.

    One pass over the chain graph (callee sets, not rules), like mark_source_chains()."""
    edges: dict[str, dict[str, Rule | None]] = {}
    for chain in table.chains.values():
        out: dict[str, Rule | None] = {}
        for rule in chain.rules:
            tgt = rule.target
            if isinstance(tgt, JumpTarget) and tgt.chain not in out:
                out[tgt.chain] = rule
        edges[chain.name] = out

    def loop(cycle: str, rule: Rule | None) -> NoReturn:
        assert rule is not None
        raise _fail(rule, source, f"jump loop {cycle}: the kernel refuses the table (ELOOP)")

    masks = _hook_masks([c.name for c in table.chains.values() if c.builtin], edges, loop)
    return {k: frozenset(h for h in Hook if v >> h.value & 1) for k, v in masks.items()}


def _hook_masks(builtins: Sequence[str], edges: Mapping[str, Mapping[str, R]],
                on_loop: Callable[[str, R], NoReturn]) -> dict[str, int]:
    """Bitmask of the hooks that reach each chain (plain ints: enum hashing is slow on 100k
    chains); ``on_loop(cycle, rule)`` for a loop reachable from a built-in chain."""
    masks: dict[str, int] = {}
    loop_free: set[str] = set()
    for root in builtins:
        _check_loops(root, edges, on_loop, loop_free)
        bit = 1 << Hook[root].value
        stack = [root]
        while stack:
            name = stack.pop()
            seen = masks.get(name, 0)
            if seen & bit:
                continue
            masks[name] = seen | bit
            stack.extend(edges[name])
    return masks


def _check_loops(root: str, edges: Mapping[str, Mapping[str, R]], on_loop: Callable[[str, R], NoReturn],
                 done: set[str] | None = None) -> None:
    """Iterative depth-first search; a callee already on the path closes a loop."""
    finished = done if done is not None else set()
    on_path: list[str] = [root]
    position = {root: 0}
    iters = [iter(edges[root].items())]
    while iters:
        try:
            callee, rule = next(iters[-1])
        except StopIteration:
            name = on_path.pop()
            finished.add(name)
            del position[name]
            iters.pop()
            continue
        if callee in position:
            cycle = " -> ".join(on_path[position[callee]:] + [callee])
            on_loop(cycle, rule)
        if callee in finished:
            continue
        position[callee] = len(on_path)
        on_path.append(callee)
        iters.append(iter(edges[callee].items()))


# ---------------------------------------------------------------- the same checks on facts
def chain_facts(table: str, rules_per_line: Sequence[Sequence[Rule]]) -> ChainFacts:
    """Summarise a validated chain for facts_pass_table_checks() and the engine's index."""
    edges: dict[str, None] = {}
    hooks = -1
    uses_in = uses_out = conntrack = bad_target = False
    sets: dict[str, None] = {}
    keys: list[ExactKey | None] = []
    for line_rules in rules_per_line:
        for rule in line_rules:
            tgt = rule.target
            if isinstance(tgt, JumpTarget):
                edges.setdefault(tgt.chain)
            elif isinstance(tgt, Target) and tgt.tables is not None and table not in tgt.tables:
                bad_target = True
            uses_in = uses_in or bool(rule.ip.iniface)
            uses_out = uses_out or bool(rule.ip.outiface)
            for ext in (*rule.matches, tgt):
                mask, ct, ext_sets = _FIXED.get(type(ext)) or _ext_summary(ext)
                hooks &= mask
                conntrack = conntrack or ct
                for name in ext_sets:
                    sets.setdefault(name)
            keys.append(exact_key(rule))
    counts = tuple(len(r) for r in rules_per_line)
    return ChainFacts(tuple(edges), hooks, uses_in, uses_out, conntrack, tuple(sets), bad_target,
                      counts if any(c != 1 for c in counts) else None,
                      tuple(keys) if _has_run(keys) else None)


_FIXED: dict[type, tuple[int, bool, tuple[str, ...]]] = {}  # per class, when no instance differs


def _ext_summary(ext: object) -> tuple[int, bool, tuple[str, ...]]:
    """(hooks mask, turns conntrack on, set names) of one extension object."""
    allowed = _allowed_hooks(ext)
    mask = -1 if allowed is None else sum(1 << h.value for h in allowed)
    summary = (mask, bool(getattr(ext, "needs_conntrack", False)),
               tuple(getattr(ext, "referenced_sets", lambda: ())()))
    cls = type(ext)
    if not any(hasattr(cls, a) for a in ("valid_hooks", "allowed_hooks", "referenced_sets")) \
            and not isinstance(getattr(cls, "needs_conntrack", False), property):
        _FIXED[cls] = summary
    return summary


def _has_run(keys: Sequence[ExactKey | None]) -> bool:
    run = 0
    for key in keys:
        run = run + 1 if key is not None else 0
        if run >= INDEX_MIN_RUN:
            return True
    return False


def facts_pass_table_checks(builtin: Mapping[str, bool], facts: Mapping[str, ChainFacts]) -> bool:
    """Would check_table() and the jump-target checks pass?  (When not, the caller reads the
    rules again to report the exact rule.)"""
    for f in facts.values():
        if f.bad_table_target or any(builtin.get(callee, True) for callee in f.edges):
            return False
    edges = {name: dict.fromkeys(f.edges) for name, f in facts.items()}
    try:
        masks = _hook_masks([n for n, b in builtin.items() if b], edges, _loop_found)
    except _LoopFound:
        return False
    for name, f in facts.items():
        mask = masks.get(name, 0)
        if f.hooks != -1 and mask & ~f.hooks:
            return False
        if builtin[name] and ((f.uses_in and name in OUTPUT_SIDE) or (f.uses_out and name in INPUT_SIDE)):
            return False
    return True


class _LoopFound(Exception):
    pass


def _loop_found(_cycle: str, _rule: object) -> NoReturn:
    raise _LoopFound
