"""Progress of a long run, always on stderr: a rich bar or spinner on a terminal, plain lines
otherwise (a pipe, a CI log, a test), so that stdout (a table, ``--json``) stays clean.

Plain lines have one form, ``nbx: LABEL: ...``: one per phase (``nbx: bench: raw ...``, then
``nbx: bench: raw done in 4.2 s``) and, for a counted run, one each time another tenth is done
(``nbx: import interpol: 500/5000 records (10 %)``) and at the end; never more than a dozen for a
run however long.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

#: plain mode: a counted run prints a line each time this share more is done
PLAIN_STEP = 0.1


class Progress:
    """One long run's progress display (use as a context manager).

    ``phase(text)`` starts a phase (``done`` ends it with its duration); ``advance(n)`` counts
    items of ``total`` (``unit`` names them). ``stream`` defaults to stderr; it is a terminal
    (rich) or not (plain lines); ``rich=False`` forces plain lines.
    """

    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        unit: str = "items",
        stream: IO[str] | None = None,
        rich: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.rich = bool(isatty and isatty()) if rich is None else rich
        self.clock = clock
        self.done_count = 0
        self._next_line = 0.0
        self._phase: str | None = None
        self._phase_started = 0.0
        self._live: Any = None  # rich.progress.Progress on a terminal
        self._task: Any = None

    def __enter__(self) -> Progress:
        """Start the display."""
        if self.rich:
            from rich.console import Console
            from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            console = Console(file=self.stream)
            columns: list[Any] = [
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),  # pulses while the total is not known (a phase)
                _count_column(self.unit),
                TimeElapsedColumn(),
            ]
            self._live = RichProgress(*columns, console=console, transient=True)
            self._live.start()
            self._task = self._live.add_task(f"nbx: {self.label}", total=self.total)
        elif self.total is not None:
            self._line(f"{self.total} {self.unit}")
            self._next_line = PLAIN_STEP
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End the phase that runs (when the run succeeded) and stop the display."""
        if exc_type is None and self._phase is not None:
            self.done()
        if self._live is not None:
            self._live.stop()

    def _line(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(f"nbx: {self.label}: {text}", highlight=False)
        else:
            print(f"nbx: {self.label}: {text}", file=self.stream, flush=True)

    def phase(self, text: str) -> None:
        """A new phase begins (the one that ran is done)."""
        if self._phase is not None:
            self.done()
        self._phase = text
        self._phase_started = self.clock()
        if self._live is not None:
            self._live.update(self._task, description=f"nbx: {self.label}: {text}")
        else:
            self._line(f"{text} ...")

    def done(self) -> None:
        """The current phase ended: say how long it took."""
        if self._phase is None:
            return
        took = self.clock() - self._phase_started
        self._line(f"{self._phase} done in {took:.1f} s")
        self._phase = None

    def count(self, done: int, total: int) -> None:
        """``done`` of ``total`` items are done (a callback for loops that know both)."""
        if self.total is None:
            self.total = total
            if self._live is not None:
                self._live.update(self._task, total=total)
            else:
                self._line(f"{total} {self.unit}")
                self._next_line = PLAIN_STEP
        self.advance(done - self.done_count)

    def advance(self, n: int = 1) -> None:
        """``n`` more items are done."""
        self.done_count += n
        if self._live is not None:
            self._live.update(self._task, advance=n)
            return
        if not self.total or n <= 0:
            return
        share = self.done_count / self.total
        if share >= self._next_line or self.done_count == self.total:
            pct = int(share * 100)
            self._line(f"{self.done_count}/{self.total} {self.unit} ({pct} %)")
            while self._next_line <= share:
                self._next_line += PLAIN_STEP


def _count_column(unit: str) -> Any:
    """A rich column: ``1500/3000 records`` once the total is known, nothing before (rich is
    imported only when a terminal shows the display)."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class CountColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.total is None:
                return Text("")
            return Text(f"{int(task.completed)}/{int(task.total)} {unit}")

    return CountColumn()
