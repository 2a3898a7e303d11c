"""The ruleset as loaded: TRACE insertion, rule lookup by trace id, verdicts.

The sandbox needs only a shallow view of iptables-save text (tables, chain policies, the
``-A`` lines of each chain in order); it deliberately does not use pktpath's own parser,
since it is the oracle that parser is checked against.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

TRACE_CHAINS = ("PREROUTING", "OUTPUT")
COUNTERS = re.compile(r"^\[\d+:\d+\]\s+")


@dataclass
class Table:
    policies: dict[str, str | None] = field(default_factory=dict)  # None for user chains
    rules: dict[str, list[str]] = field(default_factory=dict)


def parse_save(text: str) -> dict[str, Table]:
    """iptables-save text -> {table: Table}; rule lines keep their canonical text."""
    tables: dict[str, Table] = {}
    cur: Table | None = None
    for raw in text.splitlines():
        line = COUNTERS.sub("", raw.strip())
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            cur = tables.setdefault(line[1:].strip(), Table())
        elif cur is None or line == "COMMIT":
            continue
        elif line.startswith(":"):
            name, _, rest = line[1:].partition(" ")
            policy = rest.split()[0] if rest.split() else "-"
            cur.policies[name] = None if policy == "-" else policy
            cur.rules.setdefault(name, [])
        elif line.startswith("-A "):
            chain = line.split()[1]
            cur.rules.setdefault(chain, []).append(line)
    return tables


def unhide(hidden: Mapping[str, tuple[int, ...]], table: str, chain: str, num: int) -> int | None:
    """Kernel position in a raw chain -> position without the rules we added (None: ours)."""
    positions = hidden.get(chain, ()) if table == "raw" else ()
    if num in positions:
        return None
    return num - sum(1 for p in positions if p < num)


@dataclass(frozen=True)
class TraceInsertion:
    """How the loaded raw table differs from the snapshot's (for renumbering)."""

    synthetic_raw: bool  # the snapshot had no raw table; we made one
    inserted: frozenset[str]  # raw chains where we inserted the TRACE rule at the top

    def to_snapshot_id(self, table: str, chain: str, kind: str, num: int) -> str | None:
        """Loaded-ruleset trace id -> the id in the snapshot's numbering (None: ours, drop it).

        Our TRACE rule itself is logged only when a traced packet re-enters (lo).
        """
        if table == "raw" and self.synthetic_raw:
            return None
        n = unhide({c: (1,) for c in self.inserted}, table, chain, num)
        return None if n is None else f"{table}:{chain}:{kind}:{n}"


def _is_trace_rule(line: str, chain: str) -> bool:
    return line.split() == ["-A", chain, "-j", "TRACE"]


def with_trace(text: str) -> tuple[str, TraceInsertion]:
    """Put an unconditional ``-j TRACE`` first in raw PREROUTING and OUTPUT.

    A snapshot recorded with that rule already in place (as the kernel-recorded cases
    are) is loaded unchanged, so its numbering is the kernel's.
    """
    tables = parse_save(text)
    if "raw" not in tables:
        raw = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + "".join(
            f"-A {c} -j TRACE\n" for c in TRACE_CHAINS) + "COMMIT\n"
        return text.rstrip("\n") + "\n" + raw, TraceInsertion(True, frozenset())
    missing = [c for c in TRACE_CHAINS
               if not (tables["raw"].rules.get(c) and _is_trace_rule(tables["raw"].rules[c][0], c))]
    if not missing:
        return text, TraceInsertion(False, frozenset())
    out: list[str] = []
    in_raw = done = False
    for raw_line in text.splitlines():
        line = COUNTERS.sub("", raw_line.strip())
        if line.startswith("*"):
            in_raw = line[1:].strip() == "raw"
        elif in_raw and not done and (line.startswith("-A ") or line == "COMMIT"):
            # Chains declared with ':' must exist before the first rule; declare ours if absent.
            for c in missing:
                if c not in tables["raw"].policies:
                    out.append(f":{c} ACCEPT [0:0]")
            out.extend(f"-A {c} -j TRACE" for c in missing)
            done = True
        out.append(raw_line)
    return "\n".join(out) + "\n", TraceInsertion(False, frozenset(missing))


def rule_text(tables: dict[str, Table], table: str, chain: str, num: int) -> str | None:
    """The Nth ``-A CHAIN`` line of the table, if the chain has that many rules."""
    rules = tables.get(table, Table()).rules.get(chain, [])
    return rules[num - 1] if 1 <= num <= len(rules) else None


def target_of(rule: str) -> str | None:
    """The ``-j`` target of a rule line (``-g`` counts as a jump: not a verdict)."""
    try:
        words = shlex.split(rule)
    except ValueError:
        words = rule.split()
    for i, w in enumerate(words[:-1]):
        if w in ("-j", "--jump"):
            return words[i + 1]
    return None


def verdict(tables: dict[str, Table], table: str, chain: str, kind: str, num: int) -> str | None:
    """What the logged entry did: its rule's target, or the chain policy for a tail entry."""
    rule = rule_text(tables, table, chain, num)
    if rule is not None:
        return target_of(rule)
    if kind == "policy":
        return tables.get(table, Table()).policies.get(chain)
    return None
