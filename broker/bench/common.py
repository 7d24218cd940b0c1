"""What every benchmark mode shares: the broker, the payload, process CPU and memory, statistics.

CPU time and peak memory of a helper process are read from ``/proc/<pid>/stat`` and
``/proc/<pid>/status`` (Linux; elsewhere they are reported as ``None``), so a window of a running
process can be measured without stopping it. All clocks are ``time.monotonic`` (one system-wide
clock on Linux, so timestamps printed by a helper process compare with ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker import devbroker
from broker.examples import notices_dir

#: The sender of every benchmark notice (the issuing bureau of the example red notice).
SENDER = "IT"
#: The single recipient of the raw and secure modes.
RECIPIENT = "DE"
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Target:
    """Where a benchmark runs: the bootstrap, the broker's pid when embedded, idempotence."""

    bootstrap: str
    impl: str
    broker_pid: int | None
    idempotence: bool

    @property
    def stamps_log_append_time(self) -> bool:
        """Whether the broker time-stamps records itself (an external one is taken to be Kafka)."""
        return devbroker.STAMPS_LOG_APPEND_TIME.get(self.impl, True)

    @property
    def paces_empty_fetches(self) -> bool:
        """Whether consumers pace empty fetches (an embedded noida-db; an external broker is
        taken to be Kafka, which needs no pacing)."""
        return devbroker.NEEDS_FETCH_PACING.get(self.impl, False)


@contextlib.contextmanager
def broker_target(
    bootstrap: str | None, impl: devbroker.Impl, idempotence: bool | None = None
) -> Iterator[Target]:
    """The given broker, or an embedded ``impl`` broker started for the run and stopped after."""
    if bootstrap is not None:
        yield Target(bootstrap, "external", None, True if idempotence is None else idempotence)
        return
    broker = devbroker.start(impl, timeout_s=60)
    try:
        idem = impl != "tansu" if idempotence is None else idempotence
        yield Target(broker.bootstrap, impl, broker.pid, idem)
    finally:
        broker.stop()


def red_notice_data() -> dict[str, Any]:
    """The example red notice as JSON data (about 2.7 KB), issued by :data:`SENDER`."""
    data: dict[str, Any] = json.loads((notices_dir() / "red.json").read_text())
    data["issuing_bureau"] = SENDER
    return data


def notice_id(run: str, i: int) -> str:
    """A unique notice id for message ``i`` of a run."""
    return f"{SENDER}-B{run}-{i:06d}"


# --- processes ----------------------------------------------------------------------------


def proc_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (``None`` if it cannot be read)."""
    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_peak_rss_mb(pid: int | None) -> float | None:
    """Peak resident set size (``VmHWM``) of process ``pid`` in MB, ``None`` if unreadable."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def self_cpu_s() -> float:
    """CPU seconds of this process (all threads)."""
    t = os.times()
    return t.user + t.system


def python_argv(*args: str, profile: Path | None = None) -> list[str]:
    """``python [-m cProfile -o PROFILE] ARGS`` with this interpreter."""
    prefix = [sys.executable]
    if profile is not None:
        prefix += ["-m", "cProfile", "-o", str(profile)]
    return [*prefix, *args]


async def stop_process(proc: asyncio.subprocess.Process, timeout_s: float = 30.0) -> int:
    """SIGTERM ``proc`` and wait for it (SIGKILL after ``timeout_s``); returns its exit code."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            return await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    return await proc.wait()


@contextlib.asynccontextmanager
async def running(
    argv: Sequence[str],
    *,
    log: Path,
    stdout_pipe: bool = False,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``argv`` with stderr (and stdout unless piped) to ``log``, in ``env`` (default: ours);
    stopped on exit."""
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=None if env is None else dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if stdout_pipe else out,
            stderr=out,
        )
        try:
            yield proc
        finally:
            await stop_process(proc)


async def wait_until(
    check: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.01,
    alive: asyncio.subprocess.Process | None = None,
    log: Path | None = None,
) -> float:
    """Poll ``check`` until true; returns the monotonic time it was first seen true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if alive is not None and alive.returncode is not None:
            tail = _tail(log)
            msg = f"benchmark helper exited ({alive.returncode}) while waiting for {what}\n{tail}"
            raise RuntimeError(msg)
        if loop.time() > deadline:
            msg = f"timed out after {timeout_s:g} s waiting for {what}"
            raise TimeoutError(msg)
        await asyncio.sleep(interval_s)
    return loop.time()


def _tail(log: Path | None) -> str:
    return log.read_text(errors="replace")[-2000:] if log is not None else ""


# --- statistics ---------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median (0.0 for no values)."""
    return statistics.median(values) if values else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile, nearest-rank (so p99 of 50 samples is the largest)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def maybe_sum(*values: float | None) -> float | None:
    """The sum, or ``None`` if any part is unknown."""
    if any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def delta(after: float | None, before: float | None) -> float | None:
    """``after - before``, ``None`` if either is unknown."""
    if after is None or before is None:
        return None
    return after - before
