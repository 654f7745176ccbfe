"""Which of a query's words are rare enough to search by: the planner's lexeme statistics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Estimated chunks one full-text candidate query may match: ranking every chunk that contains
# "bike" in a large knowledge base cost hundreds of milliseconds (docs/performance.md), while the
# vector search already finds the articles such common words point to.
MATCH_BUDGET = 1000


def tsquery_lexeme(lexeme: str) -> str:
    """A lexeme quoted for tsquery input (taken as is, not normalised again)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class TermFrequencies:
    """Share of chunks containing each common lexeme; the rest are rarer than `floor`."""

    chunks: float
    shares: Mapping[str, float] = field(default_factory=dict)
    floor: float = 0.0

    @classmethod
    def unknown(cls) -> TermFrequencies:
        """No statistics yet (never analysed): every word counts as rare."""
        return cls(chunks=0.0)

    @classmethod
    def of(
        cls, lexemes: Sequence[str] | None, shares: Sequence[float] | None, chunks: float
    ) -> TermFrequencies:
        """From pg_stats' most_common_elems and most_common_elem_freqs (then min, max, nulls)."""
        if not lexemes or not shares or len(shares) < len(lexemes) + 2:
            return cls(chunks=chunks)
        # As PostgreSQL's own estimate: a lexeme missing from the list has half the smallest share.
        return cls(chunks, dict(zip(lexemes, shares, strict=False)), shares[len(lexemes)] / 2)

    def matches(self, lexeme: str) -> float:
        """Estimated chunks containing the lexeme."""
        return self.chunks * self.shares.get(lexeme, self.floor)

    def rare_query(
        self, lexemes: Sequence[str] | None, keep_one: bool, budget: float = MATCH_BUDGET
    ) -> str | None:
        """The rarest lexemes joined by OR while their estimated matches fit the budget."""
        ordered = sorted(set(lexemes or ()), key=lambda lexeme: (self.matches(lexeme), lexeme))
        kept: list[str] = []
        total = 0.0
        for lexeme in ordered:
            total += self.matches(lexeme)
            if total > budget:
                break
            kept.append(lexeme)
        if not kept and keep_one and ordered:
            kept = ordered[:1]
        return " | ".join(tsquery_lexeme(lexeme) for lexeme in kept) or None
