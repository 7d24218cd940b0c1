"""Scraping a node's metrics endpoint in tests: HTTP GET off the event loop, the text format
parsed with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status code and body."""

    status: int
    body: str


def free_port() -> int:
    """A TCP port free on the loopback now (the node binds it right after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get_now(url: str) -> Answer:
    """GET ``url`` (blocking; an HTTP error status is an answer, a closed port raises)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - http://127.0.0.1
            return Answer(response.status, response.read().decode())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read().decode())


async def get(url: str) -> Answer:
    """GET ``url`` on a worker thread (the daemon keeps running on the event loop)."""
    return await asyncio.to_thread(get_now, url)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(base: str) -> Samples:
    """``base``/metrics, parsed."""
    answer = await get(f"{base}/metrics")
    assert answer.status == 200, answer
    return samples(answer.body)
