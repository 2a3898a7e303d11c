"""Split one iptables-restore line into words, as iptables-restore's
``add_param_to_argv()`` does: double quotes group, and inside quotes a backslash
escapes the next character.  Each word keeps its 1-based column for error carets.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Token(NamedTuple):
    """One word; a tuple because a large ruleset makes a million of them."""

    text: str
    col: int
    quoted: bool = False


class UnterminatedQuote(ValueError):
    def __init__(self, col: int) -> None:
        super().__init__("unterminated quote")
        self.col = col


# A word: runs of unquoted characters and "quoted" segments (a backslash escapes inside quotes).
_BLANKS = " \t\r\n"  # what add_param_to_argv() splits on (not every Unicode space)
_WORD = re.compile(r'(?:[^ \t\r\n"]+|"(?:[^"\\]|\\.)*")+')
_PLAIN = re.compile(r"[^ \t\r\n]+")
_ESCAPE = re.compile(r"\\(.)")


def split_words(line: str) -> list[Token]:
    """Fast path with one regex; the character loop handles what it cannot (an unterminated
    quote) and gives the exact column of the error.  Both give the same words."""
    if '"' not in line:
        return [Token(m.group(0), m.start() + 1) for m in _PLAIN.finditer(line)]
    words = []
    end = 0
    for m in _WORD.finditer(line):
        if line[end:m.start()].strip(_BLANKS):
            return _split_slow(line)  # something the regex could not take (a lone quote)
        text = m.group(0)
        if '"' in text:
            text = "".join(_ESCAPE.sub(r"\1", part[1:-1]) if part.startswith('"') else part
                           for part in _parts(text))
            words.append(Token(text, m.start() + 1, True))
        else:
            words.append(Token(text, m.start() + 1))
        end = m.end()
    if line[end:].strip(_BLANKS):
        return _split_slow(line)
    return words


def split_words_quick(line: str) -> list[Token] | None:
    """The same words as split_words() but without columns (0), for a line already known to
    be well formed; None when the line is not of the plain kind this takes (then use
    split_words()): printable (so ' ' is its only blank), no backslash, and every quoted
    part a whole word."""
    if not line.isprintable() or "\\" in line:
        return None
    if '"' not in line:
        return [Token(w, 0) for w in line.split()]
    parts = line.split('"')
    if len(parts) % 2 == 0:
        return None  # an odd number of quotes: unterminated
    words: list[Token] = []
    for i, part in enumerate(parts):
        if i % 2:
            before, after = parts[i - 1], parts[i + 1]
            if (before and before[-1] != " ") or (i > 1 and not before) or (after and after[0] != " ") \
                    or (i + 2 < len(parts) and not after):
                return None  # the quotes join other characters into the word
            words.append(Token(part, 0, True))
        else:
            words.extend(Token(w, 0) for w in part.split())
    return words


def _parts(word: str) -> list[str]:
    return re.findall(r'"(?:[^"\\]|\\.)*"|[^"]+', word)


def _split_slow(line: str) -> list[Token]:
    words: list[Token] = []
    buf: list[str] = []
    start = 0
    in_word = False
    quote_open = False
    quoted = False
    escaped = False
    quote_col = 0
    for i, ch in enumerate(line):
        if quote_open:
            if escaped:
                buf.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quote_open = False
            else:
                buf.append(ch)
            continue
        if ch == '"':
            if not in_word:
                in_word, start = True, i
            quote_open, quoted, quote_col = True, True, i + 1
            continue
        if ch in " \t\r\n":
            if in_word:
                words.append(Token("".join(buf), start + 1, quoted))
                buf, in_word, quoted = [], False, False
            continue
        if not in_word:
            in_word, start = True, i
        buf.append(ch)
    if quote_open:
        raise UnterminatedQuote(quote_col)
    if in_word:
        words.append(Token("".join(buf), start + 1, quoted))
    return words


def quote_word(word: str) -> str:
    """Quote a word the way iptables-save does when it needs it."""
    if word and not any(c in word for c in ' \t"\\\'') :
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
