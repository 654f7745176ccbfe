"""Chunking: heading-aware, bounded size, overlap, never empty."""

from __future__ import annotations

import itertools

import pytest

from backend.knowledge.chunker import Chunker, word_count
from backend.knowledge.schemas import Article


def article(body: str, title: str = "Guide") -> Article:
    return Article(identity="g.md", source_path="g.md", title=title, body=body)


def test_sections_carry_their_heading_path() -> None:
    body = (
        "# Guide\n\nIntro text here.\n\n## Setup\n\nInstall it.\n\n### Linux\n\nUse apt.\n\n## Use\n\nRun it."
    )
    chunks = Chunker().chunk(article(body))
    assert [c.text for c in chunks] == ["Intro text here.", "Install it.", "Use apt.", "Run it."]
    assert chunks[2].heading_path == ("Guide", "Setup", "Linux")
    assert chunks[2].heading == "Guide > Setup > Linux"
    assert chunks[0].heading == "Guide"
    assert [c.ordinal for c in chunks] == [0, 1, 2, 3]


def test_long_sections_are_split_with_overlap() -> None:
    sentences = [f"Sentence number {i} talks about topic {i}." for i in range(60)]
    chunks = Chunker(chunk_tokens=40, overlap_tokens=10).chunk(article(" ".join(sentences)))
    assert len(chunks) > 5
    assert all(word_count(c.text) <= 40 for c in chunks)
    # Overlap: consecutive chunks share words at their seam.
    shared = sum(1 for a, b in itertools.pairwise(chunks) if a.text.split()[-1] in b.text.split())
    assert shared >= len(chunks) // 2
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)


def test_headings_only_article_still_has_a_chunk() -> None:
    chunks = Chunker().chunk(article("# Only a title"))
    assert len(chunks) == 1 and chunks[0].text == "# Only a title"


def test_custom_length_and_signature() -> None:
    chunker = Chunker(len, chunk_tokens=100, overlap_tokens=0, length_name="chars")
    assert chunker.signature == "md-sections/recursive/100/0/chars"
    assert all(len(c.text) <= 100 for c in chunker.chunk(article("word " * 200)))
    with pytest.raises(ValueError, match="overlap"):
        Chunker(chunk_tokens=10, overlap_tokens=10)
