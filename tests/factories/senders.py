"""A stand-in for the Celery app where a test only needs to see which tasks were sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RecordingSender:
    """Stands in for the Celery app or a retry sender: records the tasks sent by name (or fails like a broker
    that is down)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, list[Any]]] = []
        self.fail = fail

    def send_task(self, name: str, args: Sequence[Any] = (), **_: object) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((name, list(args)))
