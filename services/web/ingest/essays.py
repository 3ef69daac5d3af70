"""Parse a teacher's essay upload (table, documents, or a zip of them) into a preview for confirmation."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Sequence

from services.web.ingest.archive import ArchiveEntry, SafeArchive, is_ignored_member, open_archive
from services.web.ingest.docx_reader import read_docx_text
from services.web.ingest.errors import UnreadableFile, UploadRejected
from services.web.ingest.limits import ReadBudget, UploadLimits, check_upload_size, zip_entry_cap
from services.web.ingest.matching import RosterIndex
from services.web.ingest.names import clean_person_name, display_filename
from services.web.ingest.preview import Submission, build_preview
from services.web.ingest.records import EssayPreview, RosterEntry, UploadProblem
from services.web.ingest.sniff import content_kind, extension_of, require_kind, unsupported_type_reason
from services.web.ingest.table import TableSpec, read_table
from services.web.ingest.textfile import decode_text

logger = logging.getLogger(__name__)

SINGLE_FILE_TYPES = (".docx", ".txt")
UPLOAD_EXTENSIONS = (".xlsx", ".csv", ".docx", ".txt", ".zip")
MEMBER_EXTENSIONS = (".xlsx", ".csv", ".docx", ".txt")
_ARCHIVE_EXTENSIONS = frozenset({".zip", ".rar", ".7z", ".gz", ".tgz", ".tar", ".bz2", ".xz"})
ESSAY_TABLE = TableSpec(
    required=(frozenset({"text"}), frozenset({"name", "number"})),
    hint="“姓名”（或“学号”）和“作文”两列（“学号”“标题”可选）",
)


def parse_essay_upload(filename: str, data: bytes, roster: Sequence[RosterEntry], limits: UploadLimits) -> EssayPreview:
    """Read an upload and match every essay to the roster.

    Raises ``UploadRejected`` (naming the file) when the upload cannot be read at all or is unsafe; anything
    the teacher can fix is reported in the preview's problems, and ``preview.ok`` is False until it is.
    """
    name = display_filename(filename)
    check_upload_size(name, data, limits)
    ext = extension_of(name)
    if ext not in UPLOAD_EXTENSIONS:
        raise UnreadableFile(name, unsupported_type_reason(ext, UPLOAD_EXTENSIONS))
    budget = ReadBudget(limits.max_uncompressed_bytes)
    reader = _EssayReader(RosterIndex(roster), limits, budget)
    require_kind(name, ext, content_kind(data, name, limits, budget, max_entries=zip_entry_cap(limits)))
    if ext == ".zip":
        reader.read_zip(name, data)
    else:
        reader.read_file(name, name, ext, data)
    preview = build_preview(name, reader.submissions, reader.problems, roster, limits)
    # No file name in the log: it is often a student's name, and logs outlive erasure.
    logger.info("parsed upload: %d essays, %d problems", len(preview.items), len(preview.problems))
    return preview


def parse_essay_files(
    files: Sequence[tuple[str, bytes]], roster: Sequence[RosterEntry], limits: UploadLimits
) -> EssayPreview:
    """One table, text file or zip is parsed as it is; several .docx/.txt files are parsed together as one zip."""
    if len(files) == 1:
        name, data = files[0]
        return parse_essay_upload(name, data, roster, limits)
    odd = [name for name, _ in files if not name.lower().endswith(SINGLE_FILE_TYPES)]
    if odd:
        raise UploadRejected(
            f"一次选择多个文件时只能是 .docx 或 .txt 文件；{'、'.join(odd)} 请单独上传（表格或 .zip 压缩包）。"
        )
    if len(files) > limits.max_files:
        raise UploadRejected(f"一次最多上传 {limits.max_files} 个文件，本次选择了 {len(files)} 个。")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as bundle:
        for name, data in files:
            bundle.writestr(name, data)
    return parse_essay_upload("所选文件.zip", buffer.getvalue(), roster, limits)


class _EssayReader:
    """Collects submissions and file-level problems while walking one upload."""

    def __init__(self, index: RosterIndex, limits: UploadLimits, budget: ReadBudget) -> None:
        self.index = index
        self.limits = limits
        self.budget = budget
        self.submissions: list[Submission] = []
        self.problems: list[UploadProblem] = []

    def read_zip(self, zip_name: str, data: bytes) -> None:
        with open_archive(data, zip_name, self.limits, self.budget, max_entries=zip_entry_cap(self.limits)) as zf:
            members = [entry for entry in zf.entries if not is_ignored_member(entry.name)]
            if len(members) > self.limits.max_files:
                raise UploadRejected(
                    f"{zip_name}：压缩包中有 {len(members)} 个文件，超过上限 {self.limits.max_files} 个，请分批上传"
                )
            for entry in members:
                self._read_member(zf, zip_name, entry)

    def _read_member(self, zf: SafeArchive, zip_name: str, entry: ArchiveEntry) -> None:
        where = f"{zip_name}/{entry.name}"
        ext = extension_of(entry.name)
        if ext in _ARCHIVE_EXTENSIONS:
            self.problems.append(UploadProblem(where, "压缩包里的压缩包不会被打开，请解压后把文件直接放进同一个 zip"))
            return
        if ext not in MEMBER_EXTENSIONS:
            self.problems.append(UploadProblem(where, unsupported_type_reason(ext, MEMBER_EXTENSIONS)))
            return
        data = zf.read(entry)  # failing to decompress the zip itself is fatal: it is broken or tampered with
        if not data:  # an empty file is an empty essay, whatever its extension
            self.submissions.append(self._document_submission(where, entry.name, ""))
            return
        try:
            kind = content_kind(data, where, self.limits, self.budget, max_entries=zip_entry_cap(self.limits))
            require_kind(where, ext, kind)
            self.read_file(where, entry.name, ext, data)
        except UnreadableFile as exc:
            self.problems.append(UploadProblem(exc.source, exc.reason))

    def read_file(self, where: str, path: str, ext: str, data: bytes) -> None:
        """Read one file whose content already matches ``ext``; ``path`` is what names the student."""
        if ext in (".xlsx", ".csv"):
            table = read_table(data, where, ext == ".xlsx", ESSAY_TABLE, self.limits, self.budget)
            if not table.rows:
                self.problems.append(UploadProblem(table.where, "表格中没有作文（表头下面没有数据行）"))
            for row in table.rows:
                name, number = row.get("name"), row.get("number")
                self.submissions.append(
                    Submission(
                        source=table.row_source(row),
                        raw_text=row.get("text"),
                        match=self.index.match_row(name, number or None),
                        written_name=clean_person_name(name) or number,
                        title=row.get("title") or None,
                    )
                )
            return
        if ext == ".docx":
            document = read_docx_text(data, where, self.limits, self.budget)
            self.submissions.append(self._document_submission(where, path, document.text, document.removed))
        else:
            self.submissions.append(self._document_submission(where, path, decode_text(data, where)))

    def _document_submission(self, where: str, path: str, text: str, removed: Sequence[str] = ()) -> Submission:
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return Submission(
            source=where, raw_text=text, match=self.index.match_path(path), written_name=stem, removed=tuple(removed)
        )
