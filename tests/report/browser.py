"""A real headless browser for the report's page: Debian's Chromium (``/usr/bin/chromium``,
installed by ``make setup`` / ``make test``), and a small PNG reader for its screenshots."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: set by the Makefile: a missing browser fails the run instead of skipping its tests
REQUIRE_ENV = "NBX_REQUIRE_CHROMIUM"
#: no network, no sandbox (root in a container), no GPU, nothing in the background
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> Path:
    """The browser, or skip the test (a quick run on a machine without it), or fail it when
    ``NBX_REQUIRE_CHROMIUM`` is set (``make test``, which installs it)."""
    if CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package"
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set)")
    pytest.skip(reason)


def run_chromium(args: list[str], profile: Path) -> str:
    """Run the browser once with a fresh profile directory; its stdout."""
    browser = chromium()
    profile.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [str(browser), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dump_dom(page: Path, profile: Path) -> str:
    """The page's DOM after Chromium loaded and rendered it."""
    return run_chromium(["--dump-dom", page.resolve().as_uri()], profile)


def screenshot(page: Path, png: Path, profile: Path, size: tuple[int, int] = (1200, 1600)) -> None:
    """A screenshot of the page as Chromium renders it."""
    run_chromium(
        [f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", page.resolve().as_uri()],
        profile,
    )


class Figures(HTMLParser):
    """The text of every element carrying ``data-k`` (the JSON path of the figure it shows):
    table cells (``td``) and chart labels (SVG ``text``) apart."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, str] = {}
        self.bars: dict[str, str] = {}
        self._open: tuple[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Start collecting the text of a figure."""
        key = dict(attrs).get("data-k")
        if key is not None:
            self._open = (tag, key)
            self._text = []

    def handle_data(self, data: str) -> None:
        """Text inside an open figure."""
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        """Close the figure: keep its text by its key (each key at most once per kind)."""
        if self._open is not None and self._open[0] == tag:
            target = self.cells if tag == "td" else self.bars
            assert self._open[1] not in target, f"{self._open[1]} shown twice"
            target[self._open[1]] = "".join(self._text).strip()
            self._open = None


def figures(dom: str) -> Figures:
    """The figures of a dumped DOM."""
    parser = Figures()
    parser.feed(dom)
    return parser


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, interlace) == (8, 0), (depth, interlace)
            assert color in (2, 6), color
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind_byte, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], (prev[i - channels] if i >= channels else 0)
            if kind_byte == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind_byte == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind_byte == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind_byte == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(line)
        prev = line
    pixels = [
        (row[x * channels], row[x * channels + 1], row[x * channels + 2])
        for row in rows
        for x in range(width)
    ]
    return width, height, pixels
