"""The fast tokenizer and the character-by-character one (iptables-restore's
add_param_to_argv) split every line the same way."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pktpath.parse.tokens import UnterminatedQuote, _split_slow, quote_word, split_words, split_words_quick

LINE = st.text(alphabet=st.sampled_from(list('ab -"\\\t')), max_size=40)


@settings(max_examples=2000)
@given(LINE)
def test_fast_equals_slow(line: str) -> None:
    try:
        slow = _split_slow(line)
    except UnterminatedQuote as e:
        try:
            split_words(line)
        except UnterminatedQuote as f:
            assert f.col == e.col
            return
        raise AssertionError("fast path accepted an unterminated quote") from None
    assert split_words(line) == slow


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
                max_size=6))
def test_quote_word_round_trips(words: list[str]) -> None:
    assert [t.text for t in split_words(" ".join(quote_word(w) for w in words))] == words


@given(st.text(alphabet=st.sampled_from(list('ab -"\\\t\xa0')), max_size=40))
@settings(max_examples=2000)
def test_quick_split_agrees_when_it_answers(line: str) -> None:
    quick = split_words_quick(line)
    if quick is None:
        return
    assert [(t.text, t.quoted) for t in quick] == [(t.text, t.quoted) for t in split_words(line)]
