"""Commands of the knowledge base: ingest, reembed, eval, calibrate."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from backend.core import db
from backend.core.config import Settings
from backend.knowledge.chunker import Chunker
from backend.knowledge.embedder import Embedder, EmbedderError, in_model_thread, load_embedder
from backend.knowledge.parsers import DEFAULT_MAX_FILE_BYTES
from backend.knowledge.repository import PgKnowledgeStore
from backend.knowledge.store import EmbeddingMismatch

T = TypeVar("T")


def make_chunker(embedder: Embedder) -> Chunker:
    """The chunker that measures length in the embedder's tokens."""
    return Chunker(embedder.count_tokens, length_name=embedder.name)


async def _with_store(
    settings: Settings, work: Callable[[PgKnowledgeStore], Awaitable[T]], *, database: str | None = None
) -> T:
    """Run work with a migrated store; `database` names a scratch database created and dropped here."""
    url, embedded = await asyncio.to_thread(db.resolve_database_url, settings)
    try:
        if database is not None:
            admin = await asyncpg.connect(url)
            try:
                await admin.execute(f'CREATE DATABASE "{database}"')
            finally:
                await admin.close()
            target = urlunsplit(urlsplit(url)._replace(path=f"/{database}"))
        else:
            target = url
        try:
            pool = await db.create_pool(target, min_size=1, max_size=2)
            try:
                async with pool.acquire() as conn:
                    await db.ensure_vector_extension(conn)
                    await db.migrate(conn)
                return await work(PgKnowledgeStore(pool))
            finally:
                await pool.close()
        finally:
            if database is not None:
                admin = await asyncpg.connect(url)
                try:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                finally:
                    await admin.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def _load_embedder(settings: Settings) -> Embedder | None:
    try:
        return load_embedder(settings.embedding_model)
    except EmbedderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _progress_bar(paths: list[Path]) -> tuple[Callable[[str], None], Callable[[], None]]:
    from tqdm import tqdm

    from backend.knowledge.parsers import discover

    bar = tqdm(total=sum(1 for _ in discover(paths)), unit="file", file=sys.stderr, leave=False)

    def step(name: str) -> None:
        bar.set_postfix_str(name[-40:], refresh=False)
        bar.update(1)

    return step, bar.close


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingest articles and text modules from files and folders."""
    from backend.knowledge.ingest import Ingestion, IngestReport

    settings = Settings()
    embedder = _load_embedder(settings)
    if embedder is None:
        return 2
    paths = [Path(p) for p in args.paths]
    step, close = _progress_bar(paths)

    async def work(store: PgKnowledgeStore) -> IngestReport:
        ingestion = Ingestion(
            store,
            make_chunker(embedder),
            embedder,
            dry_run=args.dry_run,
            prune=args.prune,
            max_file_bytes=int(args.max_file_mb * 1024 * 1024),
            progress=step,
        )
        return await ingestion.run(paths)

    try:
        report = asyncio.run(_with_store(settings, work))
    except EmbeddingMismatch as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        close()
    print("\n".join(report.summary_lines()))
    if report.failed:
        print(f"error: {len(report.failed)} file(s) could not be ingested (see above)", file=sys.stderr)
        return 1
    return 0


def cmd_reembed(_: argparse.Namespace) -> int:
    """Re-chunk and re-embed the whole knowledge base with EMBEDDING_MODEL."""
    from backend.knowledge.ingest import reembed

    settings = Settings()
    embedder = _load_embedder(settings)
    if embedder is None:
        return 2

    async def work(store: PgKnowledgeStore) -> tuple[int, int, int]:
        return await reembed(store, make_chunker(embedder), embedder)

    started = time.perf_counter()
    articles, chunks, modules = asyncio.run(_with_store(settings, work))
    print(
        f"re-embedded {articles} articles ({chunks} chunks) and {modules} text modules with "
        f"{embedder.name} ({embedder.dimension} dimensions) in {time.perf_counter() - started:.1f} s"
    )
    return 0


def _evaluate(args: argparse.Namespace, *, fit_only: bool) -> tuple[Any, Any]:
    """Ingest the KB into a scratch database, run every question, cross-validate (and fit)."""
    from backend.knowledge import evaluation as ev
    from backend.knowledge.ingest import Ingestion
    from backend.knowledge.ranking import expected_calibration_error
    from backend.knowledge.service import Retriever

    settings = Settings()
    embedder = _load_embedder(settings)
    if embedder is None:
        raise SystemExit(2)
    questions = ev.load_questions(Path(args.questions), args.sample)

    async def work(store: PgKnowledgeStore) -> tuple[Any, Any]:
        started = time.perf_counter()
        ingest = await Ingestion(store, make_chunker(embedder), embedder).run([Path(args.kb)])
        ingest_seconds = time.perf_counter() - started
        if ingest.failed:
            for name, reason in ingest.failed:
                print(f"warning: {name}: {reason}", file=sys.stderr)
        retriever = Retriever(store, embedder)
        vectors = await in_model_thread(embedder.embed, [q.text for q in questions])
        hybrid = await ev.gather_candidates(retriever, questions, vectors, "hybrid")
        params = ev.fit_params(hybrid, questions, embedder.name, args.note or f"{len(questions)} questions")
        if fit_only:
            return params, None
        modes = {
            "vector": ev.cross_validate(
                await ev.gather_candidates(retriever, questions, vectors, "vector"), questions, "vector"
            ),
            "fulltext": ev.cross_validate(
                await ev.gather_candidates(retriever, questions, vectors, "fulltext"), questions, "fulltext"
            ),
            "hybrid": ev.cross_validate(hybrid, questions, "hybrid"),
        }
        result = modes["hybrid"]
        timed = questions[: args.latency_questions]
        latency = await ev.measure_latency(retriever, timed)
        report = ev.Report(
            questions=len(questions),
            in_scope=sum(1 for q in questions if q.expected is not None),
            out_of_scope=sum(1 for q in questions if q.expected is None),
            articles=len(ingest.articles.added),
            chunks=ingest.chunks,
            ingest_seconds=ingest_seconds,
            modes=modes,
            ece_top=expected_calibration_error(result.top_confidence, result.top_correct),
            ece_pairs=expected_calibration_error(result.pair_confidence, result.pair_label),
            curve=ev.answer_curve(result.top_confidence, result.top_correct, questions),
            latency_ms=latency,
            latency_questions=len(timed),
        )
        from backend.bot import evaluation as bot_eval

        in_scope = [q.expected is not None for q in questions]
        report.bot_curve = bot_eval.bot_curve(result.ranked, in_scope)
        report.bot_threshold = settings.bot_answer_threshold
        report.bot_latency_ms = await bot_eval.answer_latency(
            retriever, [q.text for q in timed], settings.bot_answer_threshold
        )
        return params, report

    scratch = f"support_chat_eval_{uuid.uuid4().hex[:10]}"
    return asyncio.run(_with_store(settings, work, database=scratch))


def cmd_eval(args: argparse.Namespace) -> int:
    """Measure retrieval on labelled questions (vector only, full text only, hybrid)."""
    from backend.knowledge import evaluation as ev

    params, report = _evaluate(args, fit_only=False)
    print("\n".join(report.lines()))
    if args.plot:
        result = report.modes["hybrid"]
        ev.write_plot(Path(args.plot), report.curve, result.top_confidence, result.top_correct)
        print(f"\nplot written to {args.plot}")
    if args.write_params:
        Path(args.write_params).write_text(params.to_json(), "utf-8")
        print(f"parameters fitted on all questions written to {args.write_params}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the fusion weights and the confidence calibration on labelled questions and store them."""
    from backend.knowledge.ranking import package_params_path

    params, _ = _evaluate(args, fit_only=True)
    target = Path(args.output) if args.output else package_params_path()
    target.write_text(params.to_json(), "utf-8")
    w = params.weights
    print(
        f"weights: mean chunk cosine {w.mean:g}, max chunk cosine {w.max:g}, whole article {w.lead:g}, "
        f"full text {w.fulltext:g}; written to {target}"
    )
    return 0


def _questions_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kb", required=True, help="folder of articles to ingest into a scratch database")
    parser.add_argument("--questions", required=True, help='JSON lines: {"question", "expected_title"|null}')
    parser.add_argument("--sample", type=int, default=None, help="use a stable sample of this many questions")
    parser.add_argument("--note", default=None, help="what the parameters were fitted on (stored with them)")


def add_commands(sub: Any) -> None:
    """Register the knowledge commands on the main parser."""
    ingest = sub.add_parser("ingest", help="ingest knowledge articles and text modules")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files and folders")
    ingest.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    ingest.add_argument(
        "--prune", action="store_true", help="remove articles and modules whose files are gone"
    )
    ingest.add_argument(
        "--max-file-mb",
        type=float,
        default=DEFAULT_MAX_FILE_BYTES / 1024 / 1024,
        help="skip larger files (default 20)",
    )
    ingest.set_defaults(func=cmd_ingest)

    reembed = sub.add_parser("reembed", help="re-embed every article with EMBEDDING_MODEL")
    reembed.set_defaults(func=cmd_reembed)

    evaluate = sub.add_parser("eval", help="measure retrieval on labelled questions (scratch database)")
    _questions_args(evaluate)
    evaluate.add_argument("--plot", default="eval.png", help="PNG of the answer curve and reliability")
    evaluate.add_argument("--latency-questions", type=int, default=200, help="questions timed one by one")
    evaluate.add_argument(
        "--write-params", default=None, help="also write parameters fitted on all questions"
    )
    evaluate.set_defaults(func=cmd_eval)

    calibrate = sub.add_parser("calibrate", help="refit fusion weights and confidence calibration")
    _questions_args(calibrate)
    calibrate.add_argument(
        "--output", default=None, help="where to write (default: the packaged ranking.json)"
    )
    calibrate.set_defaults(func=cmd_calibrate)
