"""Helpers for the knowledge tests: a tiny PDF, a fake embedder, a small article set."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def tiny_pdf(text: str, title: str | None = None) -> bytes:
    """A one-page PDF whose text layer says `text` (written by hand: objects, xref, trailer)."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if title is not None:
        objects.append(b"<< /Title (" + title.encode() + b") >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    info = f" /Info {len(objects)} 0 R" if title is not None else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


class HashEmbedder:
    """A deterministic bag-of-words embedder of any dimension (for swapping models in tests)."""

    def __init__(self, name: str = "hash-embedder", dimension: int = 8) -> None:
        self.name = name
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors from hashed words."""
        vectors = []
        for text in texts:
            vector = [0.0] * self.dimension
            for word in text.lower().split():
                digest = hashlib.sha256(word.encode()).digest()
                vector[digest[0] % self.dimension] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors

    def count_tokens(self, text: str) -> int:
        """Words."""
        return len(text.split())


ARTICLES = {
    "refunds.md": (
        "---\ntitle: Refund policy\nurl: https://help.example.com/refunds\nlanguage: en\n"
        "tags: [money]\n---\n\n"
        "# Refund policy\n\nYou can return any item within 30 days and get your money back. "
        "Refunds are paid to the original payment method within five business days.\n\n"
        "## Exceptions\n\nGift cards and opened software cannot be refunded.\n"
    ),
    "shipping/delivery.txt": (
        "# Delivery times\n\nStandard delivery takes three to five working days. Express delivery "
        "arrives the next working day when you order before 2 pm.\n"
    ),
    "passwort.md": (
        "---\ntitle: Passwort zurücksetzen\nlanguage: de\n---\n\n"
        "Wenn Sie Ihr Passwort vergessen haben, klicken Sie auf der Anmeldeseite auf "
        "„Passwort vergessen“. Wir senden Ihnen eine E-Mail mit einem Link zum Zurücksetzen.\n"
    ),
    "account.html": (
        "<html lang='en'><head><title>Delete your account</title><style>p{}</style></head><body>"
        "<h1>Delete your account</h1><p>To close your account for good, open Account Settings and "
        "choose <b>Delete account</b>. Your order history is erased after 30 days.</p>"
        "<script>alert('x')</script></body></html>"
    ),
}

MODULES = (
    "- shortcut: greet\n  title: Greeting\n  text: Hello {{customer_name}}, how can I help?\n"
    "- shortcut: bye\n  title: Goodbye\n  text: Thanks for reaching out!\n  language: en\n  tags: [closing]\n"
)


def write_kb(root: Path, with_pdf: bool = True) -> Path:
    """Write the small article set (and a text-module file) under root."""
    for name, text in ARTICLES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    (root / "replies.modules.yaml").write_text(MODULES, "utf-8")
    if with_pdf:
        (root / "payment.pdf").write_bytes(
            tiny_pdf("We accept credit cards, PayPal and bank transfer.", title="Payment methods")
        )
    return root


def ingest_folder(url: str, root: Path, embedder: Any) -> None:
    """Ingest a folder into the database at `url` with the real pipeline; every file must succeed."""
    from backend.core import db
    from backend.knowledge.cli import make_chunker
    from backend.knowledge.ingest import Ingestion
    from backend.knowledge.repository import PgKnowledgeStore
    from tests.conftest import run_coroutine

    async def load() -> None:
        pool = await db.create_pool(url, min_size=1, max_size=2)
        try:
            report = await Ingestion(PgKnowledgeStore(pool), make_chunker(embedder), embedder).run([root])
            assert report.failed == []
        finally:
            await pool.close()

    run_coroutine(load())


def fixture_kb_database(new_database: Any, tmp_path_factory: Any, embedder: Any) -> str:
    """A fresh database holding the small article set and its text modules."""
    url: str = new_database()
    ingest_folder(url, write_kb(tmp_path_factory.mktemp("kb"), with_pdf=False), embedder)
    return url


def wait_for_model(server: Any) -> Any:
    """Wait until a live server loaded its embedding model in the background."""
    import time

    deadline = time.monotonic() + 120
    while server.ctx.extras["suggestions"].retriever is None:
        assert time.monotonic() < deadline, "the embedding model did not load"
        time.sleep(0.1)
    return server


# A test server whose bot answers first, with rate limits out of the tests' way.
BOT_SERVER_OVERRIDES: dict[str, Any] = {
    "guest_rate_per_minute": 100_000,
    "http_message_rate": 1000,
    "http_message_burst": 1000,
    "bot_enabled": True,
    "suggestions_enabled": True,
}


def start_llm_bot_server(start_server: Any, database_url: str, fake_llm: Any, **overrides: Any) -> Any:
    """A live bot server (model loaded) whose answers the fake LLM writes."""
    settings = {**BOT_SERVER_OVERRIDES, "llm_base_url": fake_llm.base_url, "llm_model": "fake", **overrides}
    return wait_for_model(start_server(database_url=database_url, **settings))
