"""Which query words the full-text candidate search keeps, from the planner's lexeme statistics."""

from __future__ import annotations

from backend.knowledge.terms import TermFrequencies, tsquery_lexeme

# pg_stats layout: one share per lexeme, then the smallest and largest share.
STATS = TermFrequencies.of(["bike", "leas", "return"], [0.30, 0.20, 0.004, 0.004, 0.30], 100_000)


def test_common_words_are_left_out_while_rare_ones_fit_the_budget() -> None:
    # "return" matches about 400 chunks, an unlisted word about 200 (half the smallest share).
    query = STATS.rare_query(["bike", "return", "frame"], False)
    assert query == "'frame' | 'return'"


def test_a_query_of_common_words_only_adds_no_full_text_candidates() -> None:
    assert STATS.rare_query(["bike", "leas"], False) is None


def test_without_vectors_the_rarest_word_is_kept_even_when_common() -> None:
    assert STATS.rare_query(["bike", "leas"], True) == "'leas'"


def test_a_store_never_analysed_keeps_every_word() -> None:
    unknown = TermFrequencies.unknown()
    assert unknown.rare_query(["bike", "leas", "bike"], False) == "'bike' | 'leas'"


def test_statistics_without_shares_count_as_unknown() -> None:
    assert TermFrequencies.of(["bike"], None, 10.0).rare_query(["bike"], False) == "'bike'"
    assert STATS.rare_query([], True) is None
    assert STATS.rare_query(None, True) is None


def test_quotes_and_backslashes_cannot_break_out_of_a_lexeme() -> None:
    assert tsquery_lexeme("o'neil\\") == "'o''neil\\\\'"
