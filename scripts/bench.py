"""Load benchmark: the chat server against a bare WebSocket relay, on this machine.

`make bench` runs `scripts/bench.py --write docs/performance.md`. This process is the load
generator; the servers under test run in their own subprocesses, on 127.0.0.1 only:

1. the chat server (`python -m backend serve`, embedded PostgreSQL in a fresh DATA_DIR, rate limits
   raised): N customer/supporter pairs, each customer with its own chat assigned to the supporter.
   Closed loop: every customer sends its next message when the previous one is acknowledged.
   Measured: acknowledged messages/s, ack latency (send -> ack), delivery latency (send -> the
   supporter's socket has the message), server RSS. Then an open loop at half that maximum rate
   (timers, not waiting for acks). At the end every chat's history is read back over HTTP: seqs
   1..n without gap, every acknowledged message exactly once, and the supporter saw each exactly once.
2. `scripts/relay.py`, the same frames without a database: the same closed loop, for comparison.
3. K idle authenticated sockets on the chat server: RSS before and after, per socket.

The Markdown summary is printed and, with --write FILE, put between `<!-- bench:start -->` and
`<!-- bench:end -->` in FILE. Exits non-zero if a message was lost or doubled, or a run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
MARK_START = "<!-- bench:start -->"
MARK_END = "<!-- bench:end -->"
CHAT_LABEL = "support-chat (durable, ack after commit)"
RELAY_LABEL = "bare websockets relay (no database)"

ACK_TIMEOUT = 15.0  # a closed-loop customer gives up waiting for one ack after this long
DRAIN_TIMEOUT = 15.0  # after a run, how long to wait for outstanding acks and deliveries
MAX_MESSAGES_PER_CUSTOMER = 1_000_000
MESSAGE_TEXT = "Hello, my order {n} has not arrived yet. Could you please check where it is? Thanks!"

now = time.perf_counter


class BenchError(Exception):
    """A run could not be carried out (the server did not start, an HTTP call failed, ...)."""


# --------------------------------------------------------------------------- processes under test


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_nofile(needed: int) -> int:
    """Raise RLIMIT_NOFILE (inherited by the subprocesses started afterwards); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    want = needed if hard == resource.RLIM_INFINITY else max(needed, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        return want
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Watch:
    """The RSS and CPU time of a server process tree, PostgreSQL's processes counted apart."""

    def __init__(self, pid: int, data_dir: Path | None = None) -> None:
        self.proc = psutil.Process(pid)
        self.data_dir = str(data_dir.resolve()) if data_dir else None
        self.postmaster: psutil.Process | None = None

    def find_postmaster(self) -> psutil.Process | None:
        """PostgreSQL runs in its data directory: find the postmaster whose cwd is under DATA_DIR."""
        if self.postmaster is not None and self.postmaster.is_running():
            return self.postmaster
        if self.data_dir is None:
            return None
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["name"]):
            with contextlib.suppress(psutil.Error):
                if "postgres" in (proc.info["name"] or "") and proc.cwd().startswith(self.data_dir):
                    found[proc.pid] = proc
        for proc in found.values():
            with contextlib.suppress(psutil.Error):
                if proc.ppid() not in found:
                    self.postmaster = proc
                    return proc
        return None

    def groups(self) -> tuple[list[psutil.Process], list[psutil.Process]]:
        """(server processes, postgres processes)."""
        pg: list[psutil.Process] = []
        postmaster = self.find_postmaster()
        if postmaster is not None:
            with contextlib.suppress(psutil.Error):
                pg = [postmaster, *postmaster.children(recursive=True)]
        pg_pids = {p.pid for p in pg}
        server = [self.proc]
        with contextlib.suppress(psutil.Error):
            for child in self.proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if child.pid not in pg_pids and "postgres" not in child.name():
                        server.append(child)
        return server, pg

    @staticmethod
    def rss(procs: Iterable[psutil.Process]) -> int:
        total = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    @staticmethod
    def pss(procs: Iterable[psutil.Process]) -> int:
        total = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error, AttributeError):
                total += proc.memory_full_info().pss
        return total

    def memory(self) -> tuple[int, int]:
        """(server RSS, PostgreSQL's PSS summed over its processes) in bytes.

        PSS splits shared pages (shared_buffers) among the processes mapping them, so the sum is the
        memory PostgreSQL really holds; summed RSS would count shared memory once per backend.
        """
        server, pg = self.groups()
        return self.rss(server), (self.pss(pg) or self.rss(pg))

    def cpu(self) -> dict[str, dict[int, float]]:
        server, pg = self.groups()
        out: dict[str, dict[int, float]] = {"server": {}, "postgres": {}}
        for name, procs in (("server", server), ("postgres", pg)):
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    out[name][proc.pid] = times.user + times.system
        return out

    def postgres_version(self) -> str | None:
        postmaster = self.find_postmaster()
        if postmaster is None:
            return None
        try:
            out = subprocess.run(
                [postmaster.exe(), "--version"], capture_output=True, text=True, timeout=10, check=True
            )
        except (psutil.Error, OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip().removeprefix("postgres (PostgreSQL) ") or None


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], name: str) -> float:
    return sum(t - before.get(name, {}).get(pid, 0.0) for pid, t in after.get(name, {}).items())


class ServerProcess:
    """A server under test in its own subprocess, output into a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C on the terminal reaches the generator only
        )

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(
                f"{self.name} exited with {self.proc.returncode}; last lines of {self.log}:\n{tail(self.log)}"
            )

    def stop(self, postmaster: psutil.Process | None = None) -> None:
        """SIGINT, then SIGTERM, then SIGKILL; then the PostgreSQL it started, if it outlived it."""
        for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
        if postmaster is not None:
            # SIGINT is PostgreSQL's fast shutdown.
            for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGKILL, 5.0)):
                try:
                    if not postmaster.is_running() or postmaster.status() == psutil.STATUS_ZOMBIE:
                        break
                    postmaster.send_signal(sig)
                    postmaster.wait(wait)
                except psutil.TimeoutExpired:
                    continue
                except psutil.Error:
                    break
        self._log_file.close()


# --------------------------------------------------------------------------- HTTP helpers


class Api:
    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url,
            trust_env=False,  # no proxy: 127.0.0.1 only
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        params: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200, 201),
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for _attempt in range(6):
            response = await self.client.request(method, path, headers=headers, json=body, params=params)
            if response.status_code == 429:
                retry_after = float(response.headers.get("Retry-After", "1") or 1)
                await asyncio.sleep(min(max(retry_after, 0.1), 5.0))
                continue
            if response.status_code not in expect:
                raise BenchError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
            return response.json() if response.content else None
        raise BenchError(f"{method} {path}: still rate limited after 6 attempts")

    async def close(self) -> None:
        await self.client.aclose()


async def wait_ready(server: ServerProcess, url: str, within: float) -> None:
    deadline = now() + within
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
        while now() < deadline:
            server.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.25)
    raise BenchError(
        f"{server.name} not ready after {within:.0f} s; last lines of {server.log}:\n{tail(server.log)}"
    )


async def bounded_gather(limit: int, factories: Iterable[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the coroutines with at most `limit` at a time; results (or exceptions) in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await factory()

    return await asyncio.gather(*(one(f) for f in factories), return_exceptions=True)


# --------------------------------------------------------------------------- sockets and load


async def open_socket(ws_url: str, origin: str, token: str, deflate: bool) -> ClientConnection:
    ws = await connect(
        ws_url,
        origin=origin,  # type: ignore[arg-type]
        compression="deflate" if deflate else None,
        proxy=None,
        open_timeout=20,
        close_timeout=2,
        ping_interval=None,  # the server's pings are answered; the generator sends none
        max_size=1 << 20,
    )
    try:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if frame.get("type") != "ready":
            raise BenchError(f"expected ready, got {str(frame)[:200]}")
    except BaseException:
        await ws.close()
        raise
    return ws


@dataclass
class Window:
    """What is measured: messages sent in [start, end), acks received in [start, end]."""

    start: float
    end: float
    acks: int = 0
    ack_latency: list[float] = field(default_factory=list)
    delivery_latency: list[float] = field(default_factory=list)


@dataclass
class Pair:
    index: int
    chat_id: str
    customer_token: str
    supporter_token: str
    customer: ClientConnection | None = None
    supporter: ClientConnection | None = None
    sent: list[str] = field(default_factory=list)
    pending: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    acked: dict[str, tuple[int, Any]] = field(default_factory=dict)  # client_msg_id -> (seq, message_id)
    supporter_seen: Counter[str] = field(default_factory=Counter)
    supporter_seqs: list[int] = field(default_factory=list)
    echoed: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    closed: str | None = None


class Load:
    """Shared bookkeeping of one target's pairs, updated by the socket readers."""

    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.window: Window | None = None
        self.errors: Counter[str] = Counter()
        self.repeated_acks = 0
        self.readers: list[asyncio.Task[None]] = []

    def on_ack(self, pair: Pair, frame: dict[str, Any], t: float) -> None:
        cmid = frame.get("client_msg_id")
        if not isinstance(cmid, str):
            self.errors["ack_without_client_msg_id"] += 1
            return
        if cmid in pair.acked:
            self.repeated_acks += 1
            return
        pair.acked[cmid] = (frame.get("seq"), frame.get("message_id"))
        window = self.window
        sent = self.sent_at.get(cmid)
        if window is not None and sent is not None:
            if window.start <= t <= window.end:
                window.acks += 1
            if window.start <= sent < window.end:
                window.ack_latency.append(t - sent)
        future = pair.pending.pop(cmid, None)
        if future is not None and not future.done():
            future.set_result(t)

    async def customer_reader(self, pair: Pair) -> None:
        assert pair.customer is not None
        try:
            async for raw in pair.customer:
                t = now()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "ack":
                    self.on_ack(pair, frame, t)
                elif kind == "message":
                    cmid = (frame.get("message") or {}).get("client_msg_id")
                    if cmid in self.sent_at:
                        pair.echoed[cmid] += 1
                elif kind == "error":
                    self.errors[str(frame.get("code"))] += 1
                    future = pair.pending.pop(str(frame.get("client_msg_id")), None)
                    if future is not None and not future.done():
                        future.set_exception(BenchError(f"error frame {frame}"))
        except ConnectionClosed as exc:
            pair.closed = f"customer socket closed: {exc}"

    async def supporter_reader(self, pair: Pair) -> None:
        assert pair.supporter is not None
        try:
            async for raw in pair.supporter:
                t = now()
                frame = json.loads(raw)
                if frame.get("type") != "message":
                    if frame.get("type") == "error":
                        self.errors["supporter:" + str(frame.get("code"))] += 1
                    continue
                message = frame.get("message") or {}
                pair.supporter_seqs.append(message.get("seq"))
                cmid = message.get("client_msg_id")
                sent = self.sent_at.get(cmid) if isinstance(cmid, str) else None
                if sent is None:
                    continue  # a system or bot message
                pair.supporter_seen[cmid] += 1
                window = self.window
                if (
                    pair.supporter_seen[cmid] == 1
                    and window is not None
                    and window.start <= sent < window.end
                ):
                    window.delivery_latency.append(t - sent)
        except ConnectionClosed as exc:
            pair.closed = f"supporter socket closed: {exc}"

    async def connect_pairs(self, pairs: list[Pair], ws_url: str, origin: str, deflate: bool) -> None:
        async def one(pair: Pair) -> None:
            pair.supporter = await open_socket(ws_url, origin, pair.supporter_token, deflate)
            pair.customer = await open_socket(ws_url, origin, pair.customer_token, deflate)
            self.readers.append(asyncio.create_task(self.supporter_reader(pair)))
            self.readers.append(asyncio.create_task(self.customer_reader(pair)))
            for ws in (pair.supporter, pair.customer):
                await ws.send(json.dumps({"type": "subscribe", "chat_id": pair.chat_id, "after": 0}))

        results = await bounded_gather(50, [lambda p=p: one(p) for p in pairs])
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise BenchError(f"{len(failures)} of {len(pairs)} pairs could not connect: {failures[0]!r}")
        await asyncio.sleep(1.0)  # let the subscriptions settle (the relay replays no history)

    def send(self, pair: Pair, n: int) -> tuple[str, Awaitable[None]]:
        assert pair.customer is not None
        cmid = str(uuid.uuid4())
        frame = {
            "type": "message",
            "chat_id": pair.chat_id,
            "client_msg_id": cmid,
            "text": MESSAGE_TEXT.format(n=f"#{pair.index}-{n}"),
        }
        pair.sent.append(cmid)
        self.sent_at[cmid] = now()
        return cmid, pair.customer.send(json.dumps(frame))

    async def closed_loop(self, pair: Pair, stop_at: float) -> None:
        loop = asyncio.get_running_loop()
        for n in range(MAX_MESSAGES_PER_CUSTOMER):
            if now() >= stop_at or pair.closed or pair.timeouts >= 3:
                return
            cmid, sending = self.send(pair, n)
            future: asyncio.Future[float] = loop.create_future()
            pair.pending[cmid] = future
            try:
                await sending
                await asyncio.wait_for(future, ACK_TIMEOUT)
            except TimeoutError:
                pair.pending.pop(cmid, None)
                pair.timeouts += 1
            except BenchError:
                await asyncio.sleep(0.05)  # an error frame (already counted): go on
            except ConnectionClosed as exc:
                pair.closed = f"send failed: {exc}"
                return

    async def open_loop(self, pair: Pair, start: float, stop_at: float, rate: float) -> None:
        interval = 1.0 / rate
        t_next = start + random.random() * interval  # spread the customers' phases
        for n in range(MAX_MESSAGES_PER_CUSTOMER):
            if t_next >= stop_at or pair.closed:
                return
            delay = t_next - now()
            if delay > 0:
                await asyncio.sleep(delay)
            _cmid, sending = self.send(pair, 1_000_000 + n)
            try:
                await sending
            except ConnectionClosed as exc:
                pair.closed = f"send failed: {exc}"
                return
            t_next += interval

    async def drain(self, pairs: list[Pair], supporter_must_see: bool = True) -> None:
        """Wait (bounded) until every sent message is acked and every acked one reached the supporter."""
        deadline = now() + DRAIN_TIMEOUT
        while now() < deadline:
            done = True
            for pair in pairs:
                if pair.closed:
                    continue
                if len(pair.acked) < len(pair.sent):
                    done = False
                    break
                if supporter_must_see and any(c not in pair.supporter_seen for c in pair.acked):
                    done = False
                    break
            if done:
                return
            await asyncio.sleep(0.1)

    async def close(self, pairs: list[Pair]) -> None:
        async def close_pair(pair: Pair) -> None:
            for ws in (pair.customer, pair.supporter):
                if ws is not None:
                    with contextlib.suppress(Exception):
                        await ws.close()

        await asyncio.gather(*(close_pair(p) for p in pairs))
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


# --------------------------------------------------------------------------- measuring a run


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class RunResult:
    label: str
    duration: float
    acks: int = 0
    rate: float = 0.0
    offered_rate: float | None = None
    ack_p50: float | None = None
    ack_p99: float | None = None
    delivery_p50: float | None = None
    delivery_p99: float | None = None
    server_rss: int = 0
    postgres_rss: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # cores busy on average during the window
    busiest_others: list[tuple[str, float]] = field(default_factory=list)  # other processes by name


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (all processes, all cores)."""
    t = psutil.cpu_times()
    return float(sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq")))


QUIET = 0.2  # cores busy when our processes idle: below this the machine counts as quiet


async def wait_quiet(limit: float, log: Callable[[str], None]) -> None:
    """Between runs (our processes idle) wait up to `limit` s for the machine to be quiet."""
    if limit <= 0:
        return
    deadline = now() + limit
    for attempt in range(int(limit / 2) + 1):
        if now() >= deadline:
            break
        before = machine_busy_seconds()
        await asyncio.sleep(2.0)
        cores = (machine_busy_seconds() - before) / 2.0
        if cores < QUIET:
            return
        if attempt % 5 == 0:
            log(f"  the machine is busy ({cores:.2f} cores used by others): waiting for quiet")
    log("  the machine did not get quiet: measuring anyway")


async def measure(
    load: Load,
    pairs: list[Pair],
    watch: Watch,
    label: str,
    warmup: float,
    duration: float,
    open_rate: float | None = None,
) -> RunResult:
    """One run: `closed loop` or, with open_rate (messages/s in total), an open loop."""
    t0 = now()
    window = Window(start=t0 + warmup, end=t0 + warmup + duration)
    load.window = window
    me = psutil.Process()
    peak = [0, 0]
    cpu_before: dict[str, dict[int, float]] = {}
    cpu_after: dict[str, dict[int, float]] = {}
    gen_cpu: list[float] = []
    machine_busy: list[float] = []

    everyone: list[dict[int, tuple[str, float]]] = []

    def all_processes() -> dict[int, tuple[str, float]]:
        out: dict[int, tuple[str, float]] = {}
        for proc in psutil.process_iter(["name", "cpu_times"]):
            times = proc.info["cpu_times"]
            if times is not None:
                out[proc.pid] = (proc.info["name"] or "?", times.user + times.system)
        return out

    def generator_cpu() -> float:
        times = me.cpu_times()
        return times.user + times.system

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, window.start - now()))
        cpu_before.update(watch.cpu())
        gen_cpu.append(generator_cpu())
        machine_busy.append(machine_busy_seconds())
        everyone.append(all_processes())
        started = now()
        for _ in range(int(duration) + 2):
            server, pg = watch.memory()
            if server > peak[0]:
                peak[:] = [server, pg]
            remaining = window.end - now()
            if remaining <= 0:
                break
            await asyncio.sleep(min(1.0, remaining))
        cpu_after.update(watch.cpu())
        gen_cpu.append(generator_cpu())
        machine_busy.append(machine_busy_seconds())
        everyone.append(all_processes())
        gen_cpu.append(now() - started)

    sampling = asyncio.create_task(sampler())
    if open_rate is None:
        await asyncio.gather(*(load.closed_loop(p, window.end) for p in pairs))
    else:
        per_customer = open_rate / len(pairs)
        await asyncio.gather(*(load.open_loop(p, t0, window.end, per_customer) for p in pairs))
    await sampling
    await load.drain(pairs)
    load.window = None

    wall = gen_cpu[2] if len(gen_cpu) == 3 else duration
    result = RunResult(label=label, duration=duration, acks=window.acks, rate=window.acks / duration)
    result.offered_rate = open_rate
    result.ack_p50 = percentile(window.ack_latency, 50)
    result.ack_p99 = percentile(window.ack_latency, 99)
    result.delivery_p50 = percentile(window.delivery_latency, 50)
    result.delivery_p99 = percentile(window.delivery_latency, 99)
    result.server_rss, result.postgres_rss = peak
    if len(gen_cpu) == 3 and wall > 0:
        result.cpu = {
            "generator": (gen_cpu[1] - gen_cpu[0]) / wall,
            "server": cpu_used(cpu_before, cpu_after, "server") / wall,
            "postgres": cpu_used(cpu_before, cpu_after, "postgres") / wall,
        }
        # Anything else running on the machine at the same time skews the figures: say so.
        ours = sum(result.cpu.values())
        result.cpu["rest of the machine"] = max(0.0, (machine_busy[1] - machine_busy[0]) / wall - ours)
        mine = {me.pid, *cpu_after.get("server", {}), *cpu_after.get("postgres", {})}
        others = Counter[str]()
        for pid, (name, t) in everyone[1].items():
            if pid not in mine:
                others[name] += (t - everyone[0].get(pid, (name, 0.0))[1]) / wall
        result.busiest_others = [(name, cores) for name, cores in others.most_common(3) if cores >= 0.05]
    return result


async def measure_quietly(
    args: argparse.Namespace,
    log: Callable[[str], None],
    server: ServerProcess,
    load: Load,
    pairs: list[Pair],
    watch: Watch,
    label: str,
    warmup: float,
    duration: float,
    open_rate: float | None = None,
) -> RunResult:
    """`measure`, repeated (up to --retries times) while other processes took the cores; the quietest."""
    best: RunResult | None = None
    for attempt in range(1 + max(0, args.retries)):
        await wait_quiet(args.wait_quiet, log)
        result = await measure(load, pairs, watch, label, warmup, duration, open_rate)
        log("  " + summary_line(result))
        server.check_alive()
        noise = result.cpu.get("rest of the machine", 0.0)
        if best is None or noise < best.cpu.get("rest of the machine", 0.0):
            best = result
        if noise <= QUIET:
            break
        if attempt < args.retries:
            log(f"  other processes used {noise:.2f} cores during the run: measuring again")
    assert best is not None
    return best


@dataclass
class Check:
    """The delivery guarantees, summed over all chats."""

    acked: int = 0
    sent: int = 0
    lost: int = 0
    doubled: int = 0
    seq_errors: int = 0
    issues: dict[str, list[Any]] = field(default_factory=dict)  # what -> [chats, count, example]

    def issue(self, what: str, count: int, example: str) -> None:
        if count <= 0:
            return
        entry = self.issues.setdefault(what, [0, 0, example])
        entry[0] += 1
        entry[1] += count

    @property
    def notes(self) -> list[str]:
        return [
            f"{what}: {count} in {chats} chat(s), e.g. {example}"
            for what, (chats, count, example) in self.issues.items()
        ]


def check_sockets(pairs: list[Pair], load: Load, history: dict[str, list[dict[str, Any]]] | None) -> Check:
    """Compare what was acknowledged with what was stored (history) and what the supporter saw."""
    check = Check()
    for pair in pairs:
        chat = f"chat {pair.chat_id}"
        check.sent += len(pair.sent)
        check.acked += len(pair.acked)
        if pair.closed:
            check.issue("socket closed during the run", 1, f"{chat}: {pair.closed}")
        not_seen = [c for c in pair.acked if pair.supporter_seen.get(c, 0) == 0]
        seen_twice = [c for c in pair.acked if pair.supporter_seen.get(c, 0) > 1]
        not_echoed = [c for c in pair.acked if pair.echoed.get(c, 0) != 1]
        check.issue(
            "acknowledged, never reached the supporter's socket", len(not_seen), f"{chat} {not_seen[:1]}"
        )
        check.issue(
            "reached the supporter's socket more than once", len(seen_twice), f"{chat} {seen_twice[:1]}"
        )
        check.issue("acknowledged, not echoed exactly once to the sender", len(not_echoed), f"{chat}")
        lost, doubled = set(not_seen), set(seen_twice)
        seqs = pair.supporter_seqs
        if history is None:
            if seqs != list(range(1, len(seqs) + 1)):
                check.seq_errors += 1
                check.issue("supporter's seqs not 1..n in order", 1, chat)
            acked_seqs = [seq for seq, _ in pair.acked.values()]
            if len(set(acked_seqs)) != len(acked_seqs):
                check.seq_errors += 1
                check.issue("the same seq acknowledged twice", 1, chat)
        else:
            stored = history.get(pair.chat_id, [])
            stored_seqs = [m.get("seq") for m in stored]
            if stored_seqs != list(range(1, len(stored) + 1)):
                check.seq_errors += 1
                check.issue("stored seqs not 1..n", 1, f"{chat}: {stored_seqs[:10]}...")
            if seqs != stored_seqs:
                check.seq_errors += 1
                check.issue(
                    "supporter's socket saw other seqs than stored",
                    1,
                    f"{chat}: saw {len(seqs)}, stored {len(stored)}",
                )
            counts = Counter(m.get("client_msg_id") for m in stored)
            by_cmid = {m.get("client_msg_id"): m for m in stored}
            not_stored = [c for c in pair.acked if counts.get(c, 0) == 0]
            ours = set(pair.sent)
            stored_twice = [c for c, n in counts.items() if c in ours and n > 1]
            check.issue("acknowledged, not stored", len(not_stored), f"{chat} {not_stored[:1]}")
            check.issue("stored more than once", len(stored_twice), f"{chat} {stored_twice[:1]}")
            lost.update(not_stored)
            doubled.update(stored_twice)
            wrong = [
                cmid
                for cmid, (seq, message_id) in pair.acked.items()
                if counts.get(cmid) == 1
                and (by_cmid[cmid].get("seq") != seq or str(by_cmid[cmid].get("id")) != str(message_id))
            ]
            if wrong:
                check.seq_errors += len(wrong)
                check.issue(
                    "ack's seq or id differs from the stored message", len(wrong), f"{chat} {wrong[0]}"
                )
        check.lost += len(lost)
        check.doubled += len(doubled)
    check.issue("repeated acks", load.repeated_acks, "")
    check.issue("error frames", sum(load.errors.values()), str(dict(load.errors)))
    unacked = check.sent - check.acked
    check.issue("sent, never acknowledged (ack timeout or error frame)", unacked, "")
    return check


async def read_history(api: Api, pairs: list[Pair]) -> dict[str, list[dict[str, Any]]]:
    async def one(pair: Pair) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        after = 0
        for _page in range(len(pair.sent) // 200 + 50):
            page = await api.call(
                "GET",
                f"/api/chats/{pair.chat_id}/messages",
                token=pair.customer_token,
                params={"after": after, "limit": 200},
            )
            messages.extend(page)
            if len(page) < 200:
                break
            after = page[-1]["seq"]
        return messages

    results = await bounded_gather(16, [lambda p=p: one(p) for p in pairs])
    for result in results:
        if isinstance(result, BaseException):
            raise BenchError(f"reading the history failed: {result!r}")
    return {pair.chat_id: result for pair, result in zip(pairs, results, strict=True)}


# --------------------------------------------------------------------------- the scenarios


@dataclass
class IdleResult:
    sockets: int
    opened: int
    failed: int
    before: int
    after: int
    postgres_before: int
    postgres_after: int
    seconds: float
    first_error: str | None = None

    @property
    def per_socket(self) -> float:
        return (self.after - self.before) / max(1, self.opened)


@dataclass
class ChatOutcome:
    closed: RunResult | None = None
    open: RunResult | None = None
    check: Check | None = None
    idle: IdleResult | None = None
    postgres_version: str | None = None
    error: str | None = None
    log_problems: list[str] = field(default_factory=list)


def log_problems(path: Path, log: Callable[[str], None], start: int = 0, end: int | None = None) -> list[str]:
    """The server log's ERROR/CRITICAL lines and tracebacks (it logs at WARNING and above).

    Returns one line per problem (a traceback by its exception line); the first tracebacks go to
    stderr in full, since the log is deleted with the temporary directory.
    """
    try:
        with path.open("rb") as f:
            f.seek(start)
            lines = f.read(None if end is None else max(0, end - start)).decode(errors="replace").splitlines()
    except OSError:
        return []
    problems: list[str] = []
    shown = 0
    for i, line in enumerate(lines):
        if " ERROR " in line or " CRITICAL " in line:
            problems.append(line.strip()[:300])
        elif line.startswith("Traceback (most recent call last)"):
            end = i + 1
            while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
                end += 1
            exception = lines[end].strip() if end < len(lines) else "?"
            if exception.startswith(("During handling", "The above exception")):
                continue  # a chained exception: the next traceback tells the end of it
            problems.append(f"traceback: {exception[:300]}")
            if shown < 3:
                shown += 1
                log("server traceback:\n" + "\n".join(lines[max(0, i - 1) : end + 1][:80]))
    return problems


def server_env(data_dir: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "ARCHIVE_DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)  # the embedded PostgreSQL in a fresh DATA_DIR, nothing shared
    env.update(
        DATA_DIR=str(data_dir),
        HOST="127.0.0.1",
        PORT=str(port),
        BCRYPT_ROUNDS="4",
        WS_FRAME_RATE="100000",
        WS_FRAME_BURST="100000",
        GUEST_RATE_PER_MINUTE="100000",
        HTTP_MESSAGE_RATE="100000",
        HTTP_MESSAGE_BURST="100000",
        # This measures the chat core; the suggestion engine's cost is compared on/off separately.
        SUGGESTIONS_ENABLED="false",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
        PYTHONUNBUFFERED="1",
    )
    return env


async def setup_chat_pairs(api: Api, n: int, supporters: list[tuple[str, str]]) -> list[Pair]:
    async def one(i: int) -> Pair:
        guest = await api.call("POST", "/api/auth/guest", body={"display_name": f"Bench customer {i}"})
        customer_token = guest["token"]
        chat = await api.call("POST", "/api/chats", token=customer_token, body={})
        chat_id = chat["id"]
        if chat.get("status") == "bot":
            await api.call("POST", f"/api/chats/{chat_id}/escalate", token=customer_token)
        username, password = supporters[i % len(supporters)]
        login = await api.call("POST", "/api/auth/login", body={"username": username, "password": password})
        supporter_token = login["token"]
        await api.call("POST", f"/api/chats/{chat_id}/assign", token=supporter_token)
        return Pair(i, chat_id, customer_token, supporter_token)

    results = await bounded_gather(16, [lambda i=i: one(i) for i in range(n)])
    for result in results:
        if isinstance(result, BaseException):
            raise BenchError(f"setting up a customer/supporter pair failed: {result!r}")
    return list(results)


async def guest_tokens(api: Api, count: int, log: Callable[[str], None]) -> list[str]:
    log(f"idle sockets: creating {count} guest sessions")
    results = await bounded_gather(
        32,
        [
            lambda i=i: api.call("POST", "/api/auth/guest", body={"display_name": f"Idle {i}"})
            for i in range(count)
        ],
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        log(f"  {len(failed)} guest sessions failed, e.g. {failed[0]!r}")
    return [r["token"] for r in results if not isinstance(r, BaseException)]


async def idle_sockets(
    tokens: list[str],
    count: int,
    watch: Watch,
    ws_url: str,
    origin: str,
    deflate: bool,
    log: Callable[[str], None],
) -> IdleResult:
    """`count` sockets authenticated with `tokens` and left idle: the server's RSS before and after."""
    await asyncio.sleep(3.0)
    before, pg_before = watch.memory()
    log(f"idle sockets: opening {len(tokens)} sockets, 200 at a time")
    t0 = now()
    opened_results = await bounded_gather(
        200,
        [lambda t=t: open_socket(ws_url, origin, t, deflate) for t in tokens],
    )
    seconds = now() - t0
    sockets = [r for r in opened_results if isinstance(r, ClientConnection)]
    errors = [r for r in opened_results if isinstance(r, BaseException)]
    await asyncio.sleep(3.0)
    after, pg_after = watch.memory()
    still_open = sum(1 for ws in sockets if ws.close_code is None)
    result = IdleResult(
        sockets=count,
        opened=still_open,
        failed=count - still_open,
        before=before,
        after=after,
        postgres_before=pg_before,
        postgres_after=pg_after,
        seconds=seconds,
        first_error=repr(errors[0]) if errors else None,
    )
    log(f"idle sockets: {still_open} open after 3 s idle; closing")
    await bounded_gather(500, [lambda ws=ws: ws.close() for ws in sockets])
    return result


async def run_chat(args: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> ChatOutcome:
    outcome = ChatOutcome()
    data_dir = workdir / "chat-data"
    data_dir.mkdir()
    port = free_port()
    env = server_env(data_dir, port)
    base = f"http://127.0.0.1:{port}"
    log(f"chat server: starting on {base} (DATA_DIR={data_dir})")
    server = ServerProcess(
        "chat server", [PYTHON, "-m", "backend", "serve"], env, workdir / "chat-server.log"
    )
    watch = Watch(server.proc.pid, data_dir)
    api = Api(base)
    load = Load()
    pairs: list[Pair] = []
    try:
        await wait_ready(server, f"{base}/readyz", within=180)
        outcome.postgres_version = watch.postgres_version()
        n_supporters = max(1, min(args.pairs, 4))
        supporters = [(f"bench-supporter-{i}", f"bench-{uuid.uuid4().hex}") for i in range(n_supporters)]
        for username, password in supporters:
            cmd = [PYTHON, "-m", "backend", "create-user", "--username", username, "--password", password]
            done = await asyncio.to_thread(
                subprocess.run,
                [*cmd, "--role", "supporter"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if done.returncode != 0:
                raise BenchError(f"create-user failed ({done.returncode}): {done.stderr[-1000:]}")
        server.check_alive()
        log(f"chat server: ready; {n_supporters} supporters created; setting up {args.pairs} pairs")
        pairs = await setup_chat_pairs(api, args.pairs, supporters)
        ws_url = f"ws://127.0.0.1:{port}/ws"
        await load.connect_pairs(pairs, ws_url, base, args.deflate)
        log(f"chat server: closed loop, {args.warmup:g} s warm-up + {args.duration:g} s")
        outcome.closed = await measure_quietly(
            args, log, server, load, pairs, watch, CHAT_LABEL, args.warmup, args.duration
        )
        server.check_alive()
        if outcome.closed.rate > 0:
            rate = outcome.closed.rate / 2
            log(f"chat server: open loop at {rate:.0f} msgs/s, {args.open_warmup:g} s + {args.duration:g} s")
            outcome.open = await measure_quietly(
                args, log, server, load, pairs, watch, "open loop", args.open_warmup, args.duration, rate
            )
        server.check_alive()
        log("chat server: reading every chat's history back")
        history = await read_history(api, pairs)
        outcome.check = check_sockets(pairs, load, history)
        await load.close(pairs)
        pairs = []
        if not args.skip_idle and args.idle_sockets > 0:
            tokens = await guest_tokens(api, args.idle_sockets, log)
            outcome.idle = await idle_sockets(
                tokens, args.idle_sockets, watch, ws_url, base, args.deflate, log
            )
            server.check_alive()
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        log(f"chat server: FAILED: {outcome.error}")
        if server.proc.poll() is None:
            log(f"last lines of the server log:\n{tail(server.log)}")
    finally:
        if pairs:
            await load.close(pairs)
        await api.close()
        postmaster = watch.find_postmaster()
        log("chat server: stopping")
        stop_offset = server.log.stat().st_size
        await asyncio.to_thread(server.stop, postmaster)
        # Problems while serving go into the report; those after the stop signal only to stderr.
        outcome.log_problems = log_problems(server.log, log, 0, stop_offset)
        if outcome.log_problems:
            log(f"chat server log: {outcome.log_problems[0]} (first of {len(outcome.log_problems)})")
        at_stop = log_problems(server.log, log, stop_offset)
        if server.proc.returncode not in (0, -signal.SIGINT, 130) or at_stop:
            log(f"chat server: exit code {server.proc.returncode} after SIGINT; {len(at_stop)} log problems")
    return outcome


@dataclass
class RelayOutcome:
    closed: RunResult | None = None
    check: Check | None = None
    idle: IdleResult | None = None
    error: str | None = None


async def run_relay(args: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> RelayOutcome:
    outcome = RelayOutcome()
    port = free_port()
    log(f"relay: starting on 127.0.0.1:{port}")
    server = ServerProcess(
        "relay",
        [PYTHON, str(ROOT / "scripts" / "relay.py"), "--host", "127.0.0.1", "--port", str(port)],
        dict(os.environ),
        workdir / "relay.log",
    )
    watch = Watch(server.proc.pid)
    load = Load()
    pairs = [
        Pair(i, str(uuid.uuid4()), f"customer-{i}", f"supporter-{i}") for i in range(args.pairs)
    ]  # no HTTP: random chat ids, any token
    try:
        deadline = now() + 30
        while True:
            server.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if now() > deadline:
                    raise BenchError(f"relay not listening; log:\n{tail(server.log)}") from None
                await asyncio.sleep(0.1)
        origin = f"http://127.0.0.1:{port}"
        await load.connect_pairs(pairs, f"ws://127.0.0.1:{port}/ws", origin, args.deflate)
        log(f"relay: closed loop, {args.warmup:g} s warm-up + {args.duration:g} s")
        outcome.closed = await measure_quietly(
            args, log, server, load, pairs, watch, RELAY_LABEL, args.warmup, args.duration
        )
        outcome.check = check_sockets(pairs, load, None)
        await load.close(pairs)
        if not args.skip_idle and args.idle_sockets > 0:
            tokens = [f"idle-{i}" for i in range(args.idle_sockets)]
            ws_url = f"ws://127.0.0.1:{port}/ws"
            outcome.idle = await idle_sockets(
                tokens, args.idle_sockets, watch, ws_url, origin, args.deflate, log
            )
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        log(f"relay: FAILED: {outcome.error}")
    finally:
        await load.close(pairs)
        log("relay: stopping")
        await asyncio.to_thread(server.stop)
    return outcome


# --------------------------------------------------------------------------- the report


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    value *= 1000
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def mib(value: int) -> str:
    return f"{value / 1048576:.0f} MiB"


def summary_line(result: RunResult) -> str:
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in result.cpu.items())
    return (
        f"{result.rate:.0f} msgs/s, ack p50 {ms(result.ack_p50)} p99 {ms(result.ack_p99)}, "
        f"delivery p50 {ms(result.delivery_p50)} p99 {ms(result.delivery_p99)}, "
        f"server RSS {mib(result.server_rss)}; CPU cores busy: {cpu}; busiest others: {result.busiest_others}"
    )


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = psutil.virtual_memory().total
    try:
        date = subprocess.run(
            ["date", "-Iseconds"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        date = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return {
        "date": date,
        "cpu": cpu,
        "cores": str(os.cpu_count() or "?"),
        "ram": f"{ram / 1024**3:.1f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def report(args: argparse.Namespace, chat: ChatOutcome | None, relay: RelayOutcome | None) -> str:
    info = machine()
    pg = chat.postgres_version if chat and chat.postgres_version else None
    lines = [
        "## Load benchmark",
        "",
        f"Measured {info['date']} with `make bench` (`scripts/bench.py`).",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, {info['kernel']}, "
        f"Python {info['python']}" + (f", PostgreSQL {pg} (embedded)" if pg else "") + ".",
        "  The load generator, the server and PostgreSQL share these cores.",
        f"- Load: {args.pairs} customer/supporter pairs, one chat each, over WebSockets on 127.0.0.1."
        " Closed loop: each customer sends its next message as soon as the previous one is acknowledged.",
        f"  {args.warmup:g} s warm-up, then {args.duration:g} s measured. Messages of "
        f"{len(MESSAGE_TEXT.format(n='#0-0'))} characters; permessage-deflate "
        + ("negotiated." if args.deflate else "not negotiated."),
        "- ack = customer sends -> its `ack` arrives (the chat server acks after the commit);"
        " delivery = customer sends -> the supporter's socket has the message.",
        "- lost / doubled: every acknowledged message must be stored exactly once (history read back over"
        " HTTP, seqs 1..n without gap) and reach the supporter's socket exactly once.",
        "- Chat server: embedded PostgreSQL in a fresh data directory, rate limits raised,"
        " suggestion engine off, one uvicorn process. Server RSS is the peak during the run"
        " (for the chat: the Python process; PostgreSQL's processes apart, as the sum of their PSS).",
        "",
        "| | msgs/s | ack p50 | ack p99 | delivery p50 | delivery p99 | lost | doubled | server RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(label: str, result: RunResult | None, check: Check | None, error: str | None) -> str:
        if result is None:
            return f"| {label} | failed: {(error or 'not run').splitlines()[0][:120]} | | | | | | | |"
        rss = mib(result.server_rss)
        if result.postgres_rss:
            rss += f" (+ PostgreSQL {mib(result.postgres_rss)})"
        lost = str(check.lost) if check else "?"
        doubled = str(check.doubled) if check else "?"
        return (
            f"| {label} | {result.rate:.0f} | {ms(result.ack_p50)} | {ms(result.ack_p99)} | "
            f"{ms(result.delivery_p50)} | {ms(result.delivery_p99)} | {lost} | {doubled} | {rss} |"
        )

    if chat is not None:
        lines.append(row(CHAT_LABEL, chat.closed, chat.check, chat.error))
    if relay is not None:
        lines.append(row(RELAY_LABEL, relay.closed, relay.check, relay.error))
    lines.append("")
    if chat and chat.closed and relay and relay.closed and relay.closed.rate > 0:
        lines.append(
            f"- Throughput of the chat server relative to the bare relay: "
            f"{100 * chat.closed.rate / relay.closed.rate:.0f} %."
        )
    if chat and chat.open:
        o = chat.open
        lines.append(
            f"- Open loop at half the chat's maximum ({o.offered_rate:.0f} msgs/s offered by timers, "
            f"{o.rate:.0f} acknowledged/s, {args.open_warmup:g} s + {args.duration:g} s): ack p99 "
            f"**{ms(o.ack_p99)}** (p50 {ms(o.ack_p50)}), delivery p99 {ms(o.delivery_p99)}."
        )
    if chat and chat.idle:
        idle = chat.idle
        text = (
            f"- Idle sockets: {idle.opened} authenticated idle sockets (opened 200 at a time in "
            f"{idle.seconds:.1f} s) took the server from {mib(idle.before)} to {mib(idle.after)} RSS: "
            f"**{idle.per_socket / 1024:.1f} KiB per socket** (PostgreSQL {mib(idle.postgres_before)} -> "
            f"{mib(idle.postgres_after)})."
        )
        if idle.failed:
            text += f" {idle.failed} of {idle.sockets} did not open or stay open ({idle.first_error})."
        if relay and relay.idle:
            text += f" The bare relay: {relay.idle.per_socket / 1024:.1f} KiB per socket."
        lines.append(text)
    elif relay and relay.idle:
        lines.append(f"- Idle sockets on the bare relay: {relay.idle.per_socket / 1024:.1f} KiB per socket.")
    elif args.skip_idle:
        lines.append("- Idle sockets: skipped (--skip-idle).")
    cpu_parts = []
    noisy = []
    runs = (
        ("chat closed loop", chat.closed if chat else None),
        ("chat open loop", chat.open if chat else None),
        ("relay", relay.closed if relay else None),
    )
    for name, result in runs:
        if result and result.cpu:
            cpu_parts.append(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.cpu.items()))
            if result.cpu.get("rest of the machine", 0.0) > QUIET:
                busiest = ", ".join(f"{n} {c:.2f}" for n, c in result.busiest_others)
                noisy.append(f"{name} ({busiest or 'kernel'})")
    if cpu_parts:
        lines.append(f"- CPU cores busy on average (of {info['cores']}): " + "; ".join(cpu_parts) + ".")
    saturated = [
        f"{name} ({result.cpu['generator']:.2f} cores)"
        for name, result in runs
        if result and result.cpu.get("generator", 0.0) >= 0.9
    ]
    if saturated:
        lines.append(
            f"- The load generator (one Python process) was the bottleneck during: {'; '.join(saturated)}:"
            " that target can do more than measured here."
        )
    if noisy:
        lines.append(
            f"- The machine was not quiet during: {'; '.join(noisy)}. Other processes competed for the"
            " cores: those figures are pessimistic."
        )
    for name, check in (("chat", chat.check if chat else None), ("relay", relay.check if relay else None)):
        if check is not None:
            lines.append(
                f"- Checked ({name}): {check.sent} messages sent, {check.acked} acknowledged, "
                f"{check.lost} lost, {check.doubled} doubled, {check.seq_errors} seq/order errors."
            )
            lines.extend(f"  - {note}" for note in check.notes)
    if chat and chat.log_problems:
        lines.append(
            f"- The chat server logged {len(chat.log_problems)} errors, the first: `{chat.log_problems[0]}`"
        )
    for name, error in (
        ("chat server", chat.error if chat else None),
        ("relay", relay.error if relay else None),
    ):
        if error:
            lines.append(f"- {name} run failed: `{error.splitlines()[0][:300]}`")
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str, mark_start: str = MARK_START, mark_end: str = MARK_END) -> None:
    """Put a section between its markers in a Markdown file, keeping the rest of the file."""
    block = f"{mark_start}\n{section}{mark_end}"
    text = path.read_text() if path.exists() else "# Performance\n\n"
    start, end = text.find(mark_start), text.find(mark_end)
    if start != -1 and end > start:
        text = text[:start] + block + text[end + len(mark_end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def run_in_workdir(
    prefix: str,
    run: Callable[[Path], Awaitable[Any]],
    report: Callable[[Any], str],
    write: Path | None,
    marks: tuple[str, str],
) -> int:
    """Run a benchmark in a scratch folder, print its section and write it; 1 when a check failed."""
    # Not under a 0700 temp root of another tool: PostgreSQL may run as another user.
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        outcome = asyncio.run(run(workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    section = report(outcome)
    print(section)
    if write is not None:
        write_section(write, section, *marks)
        print(f"wrote {write}", file=sys.stderr)
    return 1 if outcome.failures else 0


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=50, help="customer/supporter pairs (default 50)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run (default 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="closed-loop warm-up seconds (default 3)")
    parser.add_argument(
        "--open-warmup", type=float, default=2.0, help="open-loop warm-up seconds (default 2)"
    )
    parser.add_argument("--idle-sockets", type=int, default=5000, help="idle sockets to open (default 5000)")
    parser.add_argument("--skip-idle", action="store_true", help="skip the idle-socket measurement")
    parser.add_argument("--deflate", action="store_true", help="negotiate permessage-deflate like browsers")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to leave the cores idle (30)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="measure a run again when other processes took the cores meanwhile (default 2)",
    )
    parser.add_argument("--only", choices=("chat", "relay"), help="run one target only")
    parser.add_argument("--write", type=Path, help="put the Markdown section into this file")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 pairs, 5 s, 500 idle sockets")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.duration, args.idle_sockets, args.warmup = 10, 5.0, 500, 2.0
    if args.pairs < 1 or args.duration <= 0 or args.idle_sockets < 0:
        parser.error("--pairs and --duration must be positive, --idle-sockets not negative")
    return args


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def amain(args: argparse.Namespace) -> int:
    idle = 0 if args.skip_idle else args.idle_sockets
    needed = idle + 4 * args.pairs + 1024
    limit = raise_nofile(needed)  # before any subprocess starts: they inherit it
    if limit < needed and idle:
        args.idle_sockets = max(0, limit - 4 * args.pairs - 1024)
        log(f"RLIMIT_NOFILE is {limit}: only {args.idle_sockets} idle sockets")
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    chat: ChatOutcome | None = None
    relay: RelayOutcome | None = None
    try:
        if args.only in (None, "relay"):
            relay = await run_relay(args, workdir, log)
        if args.only in (None, "chat"):
            chat = await run_chat(args, workdir, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    section = report(args, chat, relay)
    print(section)
    if args.write:
        write_section(args.write, section)
        log(f"wrote {args.write}")
    failed = False
    for name, outcome in (("chat", chat), ("relay", relay)):
        if outcome is None:
            continue
        if outcome.error:
            log(f"{name}: the run failed")
            failed = True
        check = outcome.check
        if check is not None and (check.lost or check.doubled or check.seq_errors):
            log(f"{name}: {check.lost} lost, {check.doubled} doubled, {check.seq_errors} seq errors")
            failed = True
    return 1 if failed else 0


def main() -> int:
    args = parse_args()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(amain(args))
    return uvloop.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
