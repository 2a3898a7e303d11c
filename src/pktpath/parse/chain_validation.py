"""Validate the rule lines of a lazily read dump, chain by chain, on several CPUs when large.

Every line is parsed exactly as the plain read parses it, so a dump the plain read refuses
is refused here too; what survives of a chain is its ``ChainFacts`` (and, when the work ran
in this process, the rules themselves, so nothing is built twice).  Forked workers inherit
the dump; they send back only facts, which are small."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from pktpath.errors import ParseError
from pktpath.model.xtables import ChainFacts, Rule, span_line
from pktpath.parse.ruleset_checks import chain_facts

if TYPE_CHECKING:
    from pktpath.parse.iptables_save import _Parser

#: Below this many lines the work stays in this process (a fork costs ~20 ms, and the
#: rules built while validating are kept).
PARALLEL_FROM = 30_000


class ChainWork(NamedTuple):
    table: str
    chain: str
    builtin: bool
    spans: Sequence[int]  # (offset, line number) pairs of its lines in the dump


Checked = tuple[ChainFacts, list[Sequence[Rule] | None] | None]

_PENDING: tuple[_Parser, list[ChainWork]] | None = None  # what forked workers inherit


def check_chain(parser: _Parser, item: ChainWork) -> list[Sequence[Rule] | None]:
    """The rules of every line of one chain; raises ParseError at the first bad line."""
    text = parser.text
    return [parser.line_rules(item.table, *span_line(text, item.spans, j)) for j in range(len(item.spans) // 2)]


def validate(parser: _Parser, work: list[ChainWork], jobs: int) -> list[Checked] | None:
    """Facts (and rules, when built here) per chain of ``work``; None when a line is wrong."""
    total = sum(len(item.spans) // 2 for item in work)
    if jobs > 1 and total >= PARALLEL_FROM:
        forked = _validate_forked(parser, work, jobs, total)
        return None if forked is None else [(f, None) for f in forked]
    out: list[Checked] = []
    interned: dict[ChainFacts, ChainFacts] = {}
    for item in work:
        try:
            rules = check_chain(parser, item)
        except ParseError:
            return None
        facts = chain_facts(item.table, rules)  # type: ignore[arg-type]
        out.append((interned.setdefault(facts, facts), rules))
    return out


def _chunks(work: list[ChainWork], parts: int, total: int) -> list[tuple[int, int]]:
    """Contiguous ranges of chains of about ``total / parts`` lines each."""
    bounds: list[tuple[int, int]] = []
    size = max(1, total // parts)
    start = acc = 0
    for i, item in enumerate(work):
        acc += len(item.spans) // 2
        if acc >= size:
            bounds.append((start, i + 1))
            start, acc = i + 1, 0
    if start < len(work):
        bounds.append((start, len(work)))
    return bounds


def _validate_forked(parser: _Parser, work: list[ChainWork], jobs: int, total: int) -> list[ChainFacts] | None:
    global _PENDING
    _PENDING = (parser, work)
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.map(_check_range, _chunks(work, jobs * 4, total))
    finally:
        _PENDING = None
    facts: list[ChainFacts] = []
    interned: dict[ChainFacts, ChainFacts] = {}
    for part in results:
        if part is None:
            return None
        facts.extend(interned.setdefault(f, f) for f in part)
    return facts


def _check_range(bounds: tuple[int, int]) -> list[ChainFacts] | None:
    assert _PENDING is not None
    parser, work = _PENDING
    out = []
    for item in work[bounds[0]:bounds[1]]:
        try:
            out.append(chain_facts(item.table, check_chain(parser, item)))  # type: ignore[arg-type]
        except ParseError:
            return None
    return out
