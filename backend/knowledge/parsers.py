"""Read knowledge files: Markdown (with YAML front matter), text, HTML, PDF and text-module YAML."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml

from backend.knowledge.schemas import Article, TextModule

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".html", ".htm", ".pdf"})
MODULES_SUFFIX = ".modules.yaml"
DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_TITLE = 300
MAX_SHORTCUT = 64
MAX_MODULE_TEXT = 4000  # a module is sent as a chat message, whose limit this is

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_WORD = re.compile(r"[^\W\d_]+")
_GERMAN = frozenset(
    [
        "der",
        "die",
        "das",
        "und",
        "ist",
        "nicht",
        "ich",
        "sie",
        "wir",
        "ein",
        "eine",
        "mit",
        "für",
        "auf",
        "sich",
        "auch",
        "dem",
        "den",
        "des",
        "wie",
        "bei",
        "oder",
        "wenn",
        "kann",
        "ihre",
        "ihr",
        "zu",
        "von",
        "im",
        "zum",
        "zur",
        "bitte",
        "können",
        "haben",
        "über",
    ]
)
_ENGLISH = frozenset(
    [
        "the",
        "and",
        "is",
        "not",
        "you",
        "we",
        "a",
        "an",
        "with",
        "for",
        "on",
        "it",
        "this",
        "that",
        "to",
        "of",
        "in",
        "your",
        "can",
        "have",
        "be",
        "are",
        "please",
        "how",
        "if",
        "or",
        "my",
        "our",
        "will",
    ]
)


class ParseError(Exception):
    """A file that cannot be read or parsed; the message says why."""


def is_modules_file(path: Path) -> bool:
    """Whether a path names a text-module file."""
    return path.name.lower().endswith(MODULES_SUFFIX)


def is_knowledge_file(path: Path) -> bool:
    """Whether a path is an article or text-module file by its name."""
    return is_modules_file(path) or path.suffix.lower() in ARTICLE_SUFFIXES


def discover(paths: list[Path]) -> Iterator[tuple[Path, Path]]:
    """Yield (file, root) for every knowledge file under the given files and folders, sorted.

    A folder is the root its files' identities are relative to; a file given by itself is
    its own folder's. Hidden files and folders, and README files (they describe the folder,
    they are no article), are skipped; a file given by name is always yielded, so an
    unsupported one is reported rather than silently ignored.
    """
    for given in paths:
        if given.is_dir():
            for path in sorted(given.rglob("*")):
                relative = path.relative_to(given)
                if any(part.startswith(".") for part in relative.parts):
                    continue
                if path.name.lower().startswith("readme."):
                    continue
                if path.is_file() and is_knowledge_file(path):
                    yield path, given
        else:
            yield given, given.parent


def relative_name(path: Path, root: Path) -> str:
    """The path relative to its root, with forward slashes."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """Read a file, refusing missing, unreadable and oversized ones."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}") from None
    if not path.is_file():
        raise ParseError("not a regular file")
    if size > max_bytes:
        raise ParseError(f"too large: {size} bytes (limit {max_bytes})")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}") from None


def decode_text(data: bytes) -> str:
    """UTF-8 text (a BOM is allowed); binary and other encodings are refused."""
    if b"\x00" in data:
        raise ParseError("binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def guess_language(text: str) -> str | None:
    """'de' or 'en' by counting common function words; None when neither stands out."""
    words = _WORD.findall(text[:20_000].lower())
    german = sum(word in _GERMAN for word in words)
    english = sum(word in _ENGLISH for word in words)
    if german + english < 3:
        return None
    return "de" if german > english else "en"


def title_from_name(path: Path) -> str:
    """A readable title from a file name: `cancel-an-order.md` -> `Cancel an order`."""
    stem = path.name
    for suffix in (MODULES_SUFFIX, path.suffix):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    words = re.sub(r"[-_]+", " ", stem).strip()
    return (words[:1].upper() + words[1:]) if words else path.name


def first_heading(body: str) -> str | None:
    """The text of the first `# ` heading."""
    match = _H1.search(body)
    return match.group(1).strip() if match else None


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Separate YAML front matter from a Markdown body."""
    if not text.startswith("---"):
        return {}, text
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ParseError("broken front matter: no closing '---' line")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "invalid YAML"
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        raise ParseError(f"broken front matter: {problem}{where}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ParseError("broken front matter: not a mapping of fields")
    return meta, text[match.end() :]


def _optional_text(meta: dict[str, Any], key: str, limit: int = 2000) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ParseError(f"front matter field {key!r} must be text")
    text = str(value).strip()
    if len(text) > limit:
        raise ParseError(f"front matter field {key!r} is longer than {limit} characters")
    return text or None


def _tags(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise ParseError(f"{what} 'tags' must be a list or comma-separated text")
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise ParseError(f"{what} 'tags' must hold text")
        tag = str(item).strip()
        if tag and tag not in tags:
            tags.append(tag[:100])
    return tuple(tags)


def _article(
    path: Path, source_path: str, body: str, meta: dict[str, Any], html_title: str | None = None
) -> Article:
    body = body.strip()
    if not body:
        raise ParseError("no text")
    url = _optional_text(meta, "url")
    title = (
        _optional_text(meta, "title", MAX_TITLE) or html_title or first_heading(body) or title_from_name(path)
    )
    language = _optional_text(meta, "language", 16) or guess_language(body)
    return Article(
        identity=url or source_path,
        source_path=source_path,
        title=title[:MAX_TITLE],
        body=body,
        url=url,
        language=language.lower() if language else None,
        tags=_tags(meta.get("tags"), "front matter"),
    )


def parse_markdown(path: Path, source_path: str, data: bytes) -> Article:
    """A Markdown or text article, with optional YAML front matter."""
    meta, body = split_front_matter(decode_text(data))
    return _article(path, source_path, body, meta)


class _HtmlToMarkdown(HTMLParser):
    """Text of an HTML page, with headings kept as Markdown headings for the chunker."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    _BLOCK = frozenset(
        {"p", "div", "section", "article", "br", "tr", "table", "ul", "ol", "pre", "blockquote", "hr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: str | None = None
        self.language: str | None = None
        self.canonical: str | None = None
        self._skip = 0
        self._in_title = False
        self._title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "html" and values.get("lang"):
            self.language = values["lang"].split("-")[0]
        elif tag == "link" and values.get("rel", "").lower() == "canonical" and values.get("href"):
            self.canonical = values["href"]
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            self.title = " ".join("".join(self._title_parts).split()) or None
        elif tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)
        elif not self._skip:
            self.parts.append(re.sub(r"\s+", " ", data))

    def markdown(self) -> str:
        """The collected text with tidy blank lines."""
        lines = [line.strip() for line in "".join(self.parts).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def parse_html(path: Path, source_path: str, data: bytes) -> Article:
    """An HTML article: visible text, headings kept; title from <title>, then the first <h1>."""
    parser = _HtmlToMarkdown()
    try:
        parser.feed(decode_text(data))
        parser.close()
    except ParseError:
        raise
    except Exception as exc:  # html.parser is lenient; anything left is a broken file
        raise ParseError(f"not readable HTML: {exc}") from None
    meta: dict[str, Any] = {"url": parser.canonical, "language": parser.language}
    return _article(path, source_path, parser.markdown(), meta, html_title=parser.title)


def parse_pdf(path: Path, source_path: str, data: bytes) -> Article:
    """A PDF article: the text of its pages; title from its metadata, then the file name."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if not data.startswith(b"%PDF"):
        raise ParseError("not a PDF file")
    # pypdf logs its repairs of damaged files; the outcome is reported as a ParseError or not at all.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata is not None else None
    except ParseError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as exc:
        raise ParseError(f"corrupt PDF: {type(exc).__name__}: {exc}"[:300]) from None
    body = "\n\n".join(page.strip() for page in pages if page.strip())
    if not body:
        raise ParseError("no text in the PDF (a scan without a text layer?)")
    title = str(meta_title).strip() if isinstance(meta_title, str) and meta_title.strip() else None
    return _article(path, source_path, body, {}, html_title=title or title_from_name(path))


def parse_article(path: Path, source_path: str, data: bytes) -> Article:
    """Parse an article by its file type."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown", ".txt"):
        return parse_markdown(path, source_path, data)
    if suffix in (".html", ".htm"):
        return parse_html(path, source_path, data)
    if suffix == ".pdf":
        return parse_pdf(path, source_path, data)
    raise ParseError(f"unsupported file type {suffix or '(none)'}")


_MODULE_FIELDS = frozenset({"shortcut", "title", "text", "language", "tags"})


def parse_modules(source_path: str, data: bytes) -> list[TextModule]:
    """Text modules from a `*.modules.yaml` file: a list of {shortcut, title, text, language?, tags?}."""
    try:
        items = yaml.safe_load(decode_text(data))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ParseError(f"broken YAML: {getattr(exc, 'problem', None) or 'invalid'}{where}") from None
    if items is None:
        return []
    if not isinstance(items, list):
        raise ParseError("text modules must be a YAML list of {shortcut, title, text}")
    modules: list[TextModule] = []
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        where = f"module {number}"
        if not isinstance(item, dict):
            raise ParseError(f"{where}: not a mapping")
        unknown = sorted(str(key) for key in item if key not in _MODULE_FIELDS)
        if unknown:
            raise ParseError(f"{where}: unknown field(s) {', '.join(unknown)}")
        values: dict[str, str] = {}
        for key, limit in (("shortcut", MAX_SHORTCUT), ("title", MAX_TITLE), ("text", MAX_MODULE_TEXT)):
            value = item.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ParseError(f"{where}: {key!r} is missing or not text")
            if len(value.strip()) > limit:
                raise ParseError(f"{where}: {key!r} is longer than {limit} characters")
            values[key] = value.strip()
        shortcut = values["shortcut"]
        if re.search(r"\s", shortcut):
            raise ParseError(f"{where}: shortcut {shortcut!r} contains spaces")
        if shortcut.lower() in seen:
            raise ParseError(f"{where}: shortcut {shortcut!r} appears twice")
        seen.add(shortcut.lower())
        language = item.get("language")
        if language is not None and not isinstance(language, str):
            raise ParseError(f"{where}: 'language' must be text")
        modules.append(
            TextModule(
                shortcut=shortcut,
                title=values["title"],
                text=values["text"],
                source_path=source_path,
                language=language.strip().lower()[:16] or None if language else None,
                tags=_tags(item.get("tags"), where),
            )
        )
    return modules
