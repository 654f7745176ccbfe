"""Fixtures of the knowledge tests: the real MiniLM model, loaded once per run."""

from __future__ import annotations

import pytest

from backend.knowledge.embedder import SentenceTransformerEmbedder


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from its wheel, offline."""
    return SentenceTransformerEmbedder()
