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
    edges: dict[str, dict[str, Rule]] = {}
    for chain in table.chains.values():
        out: dict[str, Rule] = {}
        for rule in chain.rules:
            tgt = rule.target
            if isinstance(tgt, JumpTarget) and tgt.chain not in out:
                out[tgt.chain] = rule
        edges[chain.name] = out
    hooks: dict[str, set[int]] = {}
    loop_free: set[str] = set()
    for chain in table.chains.values():
        if chain.builtin:
            _check_loops(chain.name, edges, source, loop_free)
            hook = Hook[chain.name].value  # plain ints: enum hashing is slow on 100k chains
            stack = [chain.name]
            while stack:
                name = stack.pop()
                seen = hooks.setdefault(name, set())
                if hook in seen:
                    continue
                seen.add(hook)
                stack.extend(edges[name])
    by_value = {h.value: h for h in Hook}
    return {k: frozenset(by_value[h] for h in v) for k, v in hooks.items()}


def _check_loops(root: str, edges: dict[str, dict[str, Rule]], source: str,
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
            raise _fail(rule, source, f"jump loop {cycle}: the kernel refuses the table (ELOOP)")
        if callee in finished:
            continue
        position[callee] = len(on_path)
        on_path.append(callee)
        iters.append(iter(edges[callee].items()))
