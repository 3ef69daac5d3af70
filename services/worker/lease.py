"""Keep a grading claim alive while the model works: renew its lease from a background thread.

A task that dies (killed process, hard time limit, lost worker) stops renewing, so its lease runs out within
``lease_s`` and the sweep recovers the essays; a task that lives never loses them however long its batch takes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from services.worker import store

logger = logging.getLogger(__name__)


@contextmanager
def lease_kept(sessions: sessionmaker[Session], token: str, lease_s: int) -> Iterator[None]:
    """Renew the lease of ``token``'s essays every third of ``lease_s`` until the block ends."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease_s / 3):
            try:
                store.renew_lease(sessions, token, lease_s)
            except Exception:  # a missed renewal is retried at the next tick; the lease has slack for two
                logger.warning("could not renew the lease of task %s", token, exc_info=True)

    thread = threading.Thread(target=renew, name=f"lease-{token[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
