"""Upload parsing: essays and rosters from .xlsx/.csv/.docx/.txt/.zip into previews (no Flask, no database).

Bad input raises ``UploadRejected`` with a Chinese message naming the file (and row), or is listed in the
preview's problems; nothing is ever half-imported.
"""

from services.web.ingest.errors import UnreadableFile, UploadRejected
from services.web.ingest.essays import parse_essay_upload
from services.web.ingest.limits import UploadLimits
from services.web.ingest.records import EssayPreview, PreviewItem, RosterEntry, RosterRow, UploadProblem
from services.web.ingest.roster import parse_roster
from services.web.ingest.templates import (
    essay_template_csv,
    essay_template_xlsx,
    roster_template_csv,
    roster_template_xlsx,
)

__all__ = [
    "EssayPreview",
    "PreviewItem",
    "RosterEntry",
    "RosterRow",
    "UnreadableFile",
    "UploadLimits",
    "UploadProblem",
    "UploadRejected",
    "essay_template_csv",
    "essay_template_xlsx",
    "parse_essay_upload",
    "parse_roster",
    "roster_template_csv",
    "roster_template_xlsx",
]
