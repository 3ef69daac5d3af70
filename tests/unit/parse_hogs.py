"""Parsers gone wrong, run by the sandbox tests in the bounded child: they show the kernel limits hold
where a parser's own caps would not."""

from __future__ import annotations

import threading


def allocate_without_end() -> int:
    """Keeps every block it allocates, as a tree of a huge document does."""
    blocks = []
    while True:
        blocks.append(bytearray(16 * 1024 * 1024))


def spin() -> None:
    """Burns CPU without end, as a parser linear in a far-right column index does on a large sheet."""
    count = 0
    while True:
        count += 1


def block() -> None:
    """Waits without using CPU (a parse stuck on I/O): only the wall-clock limit ends it."""
    threading.Event().wait()
