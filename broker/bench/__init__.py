"""End-to-end benchmarks behind ``nbx bench raw|secure|broadcast|ops|all`` (docs/performance.md).

* :mod:`broker.bench.raw`: a plain aiokafka producer -> consumer of the notice JSON (the baseline);
* :mod:`broker.bench.secure`: the full path, publisher -> consumer daemon (a subprocess, as
  ``nbx consume`` runs it) -> SQLite sink, with signed receipts;
* :mod:`broker.bench.broadcast`: one red notice to 195 bureaus, latency from the publish call to
  stored at every recipient;
* :mod:`broker.bench.ops`: the cost of each operation of the secure path on its own.

Every mode runs on the embedded broker unless given a bootstrap, repeats its measurement and
reports medians (:mod:`broker.bench.report`). ``docs/performance.md`` explains the method and
records the numbers.
"""
