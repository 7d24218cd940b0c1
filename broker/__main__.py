"""``python -m broker`` is the ``nbx`` command."""

from broker.cli import main

main()
