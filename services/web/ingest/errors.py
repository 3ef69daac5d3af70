"""Exceptions raised when an upload cannot be accepted at all."""

from __future__ import annotations


class UploadRejected(Exception):
    """The upload as a whole is refused; ``message`` is shown to the teacher and names the file (and row).

    ``details`` lists the individual reasons when there are several (for example every bad roster row).
    """

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or [message]


class UnreadableFile(UploadRejected):
    """A file that is corrupt or not what its name says: fatal on its own, a problem inside a zip.

    Security findings (zip bombs, path traversal, XML entities) are plain ``UploadRejected`` and stay fatal
    wherever they occur.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}：{reason}")
        self.source = source
        self.reason = reason
