"""Parsing knowledge files: front matter, titles, HTML, PDF, text modules and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.knowledge.parsers import (
    ParseError,
    decode_text,
    discover,
    guess_language,
    parse_article,
    parse_modules,
    read_bytes,
    relative_name,
    title_from_name,
)
from tests.knowledge_helpers import MODULES, tiny_pdf, write_kb


def parse(name: str, text: str | bytes) -> object:
    data = text.encode() if isinstance(text, str) else text
    return parse_article(Path(name), name, data)


def test_front_matter_sets_title_url_language_and_tags() -> None:
    article = parse(
        "a.md",
        "---\ntitle: Refunds\nurl: https://x.example/r\nlanguage: EN\ntags: a, b\n---\n# Other\n\nBody",
    )
    assert article.title == "Refunds"  # type: ignore[attr-defined]
    assert article.identity == "https://x.example/r"  # type: ignore[attr-defined]
    assert article.language == "en"  # type: ignore[attr-defined]
    assert article.tags == ("a", "b")  # type: ignore[attr-defined]
    assert article.body.startswith("# Other")  # type: ignore[attr-defined]


def test_title_falls_back_to_first_heading_then_file_name() -> None:
    with_heading = parse("docs/x.md", "Intro line\n\n# The real title\n\nText")
    assert with_heading.title == "The real title"  # type: ignore[attr-defined]
    assert with_heading.identity == "docs/x.md"  # type: ignore[attr-defined]
    plain = parse("track-your_order.txt", "Just some text without headings.")
    assert plain.title == "Track your order"  # type: ignore[attr-defined]
    assert title_from_name(Path("replies.modules.yaml")) == "Replies"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("---\ntitle: [unclosed\n---\nbody", "broken front matter"),
        ("---\ntitle: x\nbody without end", "no closing"),
        ("---\n- a\n- b\n---\nbody", "not a mapping"),
        ("---\ntitle: {a: 1}\n---\nbody", "must be text"),
        ("---\ntitle: ok\n---\n   \n", "no text"),
    ],
)
def test_broken_front_matter_is_refused(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse("a.md", text)


def test_html_becomes_text_with_headings() -> None:
    html = (
        "<html lang='de-DE'><head><title>Versand</title><link rel='canonical' href='https://x.example/v'>"
        "<style>.a{}</style></head><body><h1>Versand</h1><p>Wir liefern &amp; senden.</p>"
        "<h2>Kosten</h2><ul><li>eins</li><li>zwei</li></ul><script>evil()</script></body></html>"
    )
    article = parse("v.html", html)
    assert article.title == "Versand"  # type: ignore[attr-defined]
    assert article.language == "de"  # type: ignore[attr-defined]
    assert article.url == "https://x.example/v"  # type: ignore[attr-defined]
    body = article.body  # type: ignore[attr-defined]
    assert "# Versand" in body and "## Kosten" in body and "Wir liefern & senden." in body
    assert "- eins" in body and "evil" not in body and ".a{}" not in body


def test_html_title_falls_back_to_heading() -> None:
    assert parse("p.html", "<h1>Only a heading</h1><p>text</p>").title == "Only a heading"  # type: ignore[attr-defined]


def test_pdf_text_and_title() -> None:
    article = parse("pay.pdf", tiny_pdf("We accept PayPal (and cards).", title="Payment"))
    assert article.title == "Payment"  # type: ignore[attr-defined]
    assert "We accept PayPal (and cards)." in article.body  # type: ignore[attr-defined]
    untitled = parse("card-payments.pdf", tiny_pdf("Cards only."))
    assert untitled.title == "Card payments"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bad.pdf", b"%PDF-1.4\n1 0 obj garbage", "corrupt PDF|no text"),
        ("fake.pdf", b"hello", "not a PDF"),
        ("empty.pdf", tiny_pdf(""), "no text"),
        ("bin.md", b"abc\x00\x01\x02", "binary"),
        ("latin.txt", "Größe".encode("latin-1"), "not UTF-8"),
        ("x.docx", b"text", "unsupported"),
    ],
)
def test_bad_files_are_refused_with_a_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(name, data)


def test_read_bytes_refuses_oversized_and_missing(tmp_path: Path) -> None:
    big = tmp_path / "big.md"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(ParseError, match="too large"):
        read_bytes(big, max_bytes=1000)
    with pytest.raises(ParseError, match="cannot read"):
        read_bytes(tmp_path / "missing.md")
    with pytest.raises(ParseError, match="not a regular file"):
        read_bytes(tmp_path)
    assert read_bytes(big) == b"x" * 2000


def test_decode_accepts_bom_and_normalises_newlines() -> None:
    assert decode_text("\ufeffa\r\nb\rc".encode()) == "a\nb\nc"


def test_text_modules() -> None:
    modules = parse_modules("r.modules.yaml", MODULES.encode())
    assert [m.shortcut for m in modules] == ["greet", "bye"]
    assert modules[1].language == "en" and modules[1].tags == ("closing",)
    assert "{{customer_name}}" in modules[0].text
    assert parse_modules("e.modules.yaml", b"") == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("shortcut: x", "YAML list"),
        ("- [1, 2]", "not a mapping"),
        ("- {shortcut: a, title: t}", "'text' is missing"),
        ("- {shortcut: a b, title: t, text: x}", "contains spaces"),
        ("- {shortcut: a, title: t, text: x}\n- {shortcut: A, title: t, text: y}", "appears twice"),
        ("- {shortcut: a, title: t, text: x, colour: red}", "unknown field"),
        ("- {shortcut: a, title: t, text: x, language: 3}", "'language' must be text"),
        ("- {shortcut: a, title: t, text: x, tags: {a: 1}}", "'tags' must be"),
        ("- shortcut: [a\n", "broken YAML"),
    ],
)
def test_bad_text_modules(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_modules("m.modules.yaml", text.encode())


def test_discover_walks_folders_and_skips_hidden(tmp_path: Path) -> None:
    write_kb(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.md").write_text("hidden")
    (tmp_path / "notes.docx").write_text("ignored in folders")
    (tmp_path / "README.md").write_text("# About this folder")
    found = [relative_name(path, root) for path, root in discover([tmp_path])]
    assert found == [
        "account.html",
        "passwort.md",
        "payment.pdf",
        "refunds.md",
        "replies.modules.yaml",
        "shipping/delivery.txt",
    ]
    single = list(discover([tmp_path / "notes.docx"]))
    assert [relative_name(p, r) for p, r in single] == ["notes.docx"]


def test_guess_language() -> None:
    assert guess_language("Wir senden Ihnen die Rechnung und das Paket mit der Post.") == "de"
    assert guess_language("We send you the invoice and the parcel with the post.") == "en"
    assert guess_language("🙂 12345") is None
