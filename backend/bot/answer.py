"""The extractive answer: the sentences of the best passages that answer the question, no more."""

from __future__ import annotations

import re
from collections.abc import Sequence

from backend.knowledge.schemas import ArticleHit, Passage

MAX_ANSWER_CHARS = 480
MAX_SENTENCES = 4
PASSAGES_READ = 2
# Word prefixes compare German and English inflections well enough ("Rechnungen" ~ "Rechnung").
PREFIX = 5

_WORD = re.compile(r"[^\W_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=[\"„“(]?[A-ZÄÖÜ0-9])")
_MARKUP = re.compile(r"\*\*|__|`|^#+\s*|^\s*(?:[-*+]|\d+[.)])\s+", re.MULTILINE)
_STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "is",
        "are",
        "be",
        "can",
        "do",
        "does",
        "did",
        "how",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "my",
        "your",
        "our",
        "it",
        "its",
        "this",
        "that",
        "with",
        "at",
        "by",
        "from",
        "as",
        "i",
        "me",
        "we",
        "you",
        "if",
        "not",
        "no",
        "yes",
        "will",
        "would",
        "should",
        "der",
        "die",
        "das",
        "den",
        "dem",
        "des",
        "ein",
        "eine",
        "einen",
        "einem",
        "einer",
        "und",
        "oder",
        "zu",
        "im",
        "in",
        "am",
        "an",
        "auf",
        "für",
        "ist",
        "sind",
        "kann",
        "können",
        "wie",
        "was",
        "wann",
        "wo",
        "wer",
        "warum",
        "mein",
        "meine",
        "meinen",
        "mir",
        "ich",
        "wir",
        "sie",
        "es",
        "mit",
        "bei",
        "von",
        "aus",
        "nicht",
        "kein",
        "keine",
        "ja",
        "wird",
        "werden",
        "soll",
    ]
)


def _stems(text: str) -> set[str]:
    return {
        word[:PREFIX] for word in _WORD.findall(text.casefold()) if word not in _STOPWORDS and len(word) > 2
    }


def _units(passage: Passage) -> list[str]:
    """A passage's sentences and list items, markup removed, headings dropped."""
    units: list[str] = []
    for line in passage.text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        clean = " ".join(_MARKUP.sub("", line).split())
        if clean:
            units.extend(part for part in _SENTENCE_END.split(clean) if part)
    return units


def _ordered(passages: Sequence[Passage]) -> list[Passage]:
    """The best passages, in the article's own order (they read as one text then)."""
    best = sorted(passages, key=lambda p: -p.cosine)[:PASSAGES_READ]
    return sorted(best, key=lambda p: p.ordinal)


def extract_answer(question: str, hit: ArticleHit) -> str | None:
    """The best-matching sentence of the article's best passages and what follows it, trimmed."""
    units = [unit for passage in _ordered(hit.passages) for unit in _units(passage)]
    if not units:
        return None
    wanted = _stems(question)
    title = _stems(hit.title)

    def score(index: int) -> float:
        words = _stems(units[index])
        # Question words count most; the title's words say "this is the article's point".
        return 2.0 * len(words & wanted) + 0.5 * len(words & title) - 0.05 * index

    start = max(range(len(units)), key=score)
    if start > 0 and units[start - 1].endswith(":"):
        start -= 1  # a list item reads wrong without the sentence that introduces the list
    chosen: list[str] = []
    length = 0
    for offset, unit in enumerate(units[start : start + MAX_SENTENCES]):
        if chosen and length + len(unit) + 1 > MAX_ANSWER_CHARS:
            break
        # What follows the best sentence stays only while it still speaks to the question
        # (or continues a list the previous sentence opened).
        if offset and not (_stems(unit) & wanted or chosen[-1].endswith(":")):
            break
        chosen.append(unit)
        length += len(unit) + 1
    text = " ".join(chosen)
    if len(text) > MAX_ANSWER_CHARS:
        text = text[:MAX_ANSWER_CHARS].rsplit(" ", 1)[0] + " …"
    return text
