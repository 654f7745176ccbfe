"""Group questions: greedy leader clustering on cosine similarity, or by normalised text.

Both are deterministic: the same input in the same order gives the same groups.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]

_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """The text casefolded, with runs of whitespace as one space and the ends trimmed."""
    return _SPACE.sub(" ", text.casefold()).strip()


def unit_rows(vectors: Sequence[Sequence[float]] | Matrix) -> Matrix:
    """The vectors as a float matrix with unit-length rows (zero rows stay zero)."""
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.size == 0:
        return np.zeros((0, 0), dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError("vectors must be a list of equally long rows")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: Matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return unit


def leader_clusters(vectors: Sequence[Sequence[float]] | Matrix, threshold: float) -> list[list[int]]:
    """Groups of row indices: each row joins the cluster whose centre is most similar, if at least
    `threshold` (cosine), else starts a new one. Groups and their members are in input order."""
    rows = unit_rows(vectors).astype(np.float32)
    count = rows.shape[0]
    if count == 0:
        return []
    # Running sums of each cluster's members, and the same at unit length (the centres).
    sums = np.zeros((min(count, 64), rows.shape[1]), dtype=np.float32)
    centres = np.zeros_like(sums)
    groups: list[list[int]] = []
    for index in range(count):
        row = rows[index]
        best = -1
        if groups:
            similarity = centres[: len(groups)] @ row
            candidate = int(np.argmax(similarity))  # the first of equals: deterministic
            if similarity[candidate] >= threshold:
                best = candidate
        if best < 0:
            best = len(groups)
            groups.append([])
            if best == len(sums):  # grow by doubling: memory follows the clusters, not the rows
                sums = np.concatenate([sums, np.zeros_like(sums)])
                centres = np.concatenate([centres, np.zeros_like(centres)])
        groups[best].append(index)
        sums[best] += row
        norm = float(np.sqrt(sums[best] @ sums[best]))
        centres[best] = sums[best] / norm if norm > 0 else sums[best]
    return groups


def text_clusters(texts: Sequence[str]) -> list[list[int]]:
    """Groups of indices of texts equal once normalised, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        groups.setdefault(normalise_text(text), []).append(index)
    return list(groups.values())


def closest_to_centre(vectors: Sequence[Sequence[float]] | Matrix, members: Sequence[int]) -> list[int]:
    """The members ordered by similarity to their mean direction, most central first (ties: input order)."""
    if not members:
        return []
    rows = unit_rows(vectors)[list(members)]
    centre = rows.sum(axis=0)
    similarity = rows @ centre
    order = sorted(range(len(members)), key=lambda i: (-float(similarity[i]), i))
    return [members[i] for i in order]
