"""Import a class roster (.xlsx or .csv with 姓名 and optional 学号): all rows valid, or nothing."""

from __future__ import annotations

import logging

from services.web.ingest.errors import UnreadableFile, UploadRejected
from services.web.ingest.limits import ReadBudget, UploadLimits, check_upload_size, zip_entry_cap
from services.web.ingest.names import clean_person_name, clean_student_number, display_filename, name_key, number_key
from services.web.ingest.records import RosterRow
from services.web.ingest.sniff import content_kind, extension_of, require_kind, unsupported_type_reason
from services.web.ingest.table import TableSpec, read_table

logger = logging.getLogger(__name__)

ROSTER_EXTENSIONS = (".xlsx", ".csv")
ROSTER_TABLE = TableSpec(required=(frozenset({"name"}),), hint="“姓名”列（“学号”列可选）")
MAX_NAME_CHARS = 50
MAX_NUMBER_CHARS = 50
_MAX_LISTED_ERRORS = 10


def parse_roster(filename: str, data: bytes, limits: UploadLimits) -> list[RosterRow]:
    """Every student of a roster file, or ``UploadRejected`` listing each bad row (nothing is half-read)."""
    name = display_filename(filename)
    check_upload_size(name, data, limits)
    ext = extension_of(name)
    if ext not in ROSTER_EXTENSIONS:
        raise UnreadableFile(name, unsupported_type_reason(ext, ROSTER_EXTENSIONS))
    budget = ReadBudget(limits.max_uncompressed_bytes)
    require_kind(name, ext, content_kind(data, name, limits, budget, max_entries=zip_entry_cap(limits)))
    table = read_table(data, name, ext == ".xlsx", ROSTER_TABLE, limits, budget)

    rows: list[RosterRow] = []
    errors: list[str] = []
    first_row_of_number: dict[str, int] = {}
    rows_of_name: dict[str, list[tuple[int, str | None]]] = {}
    for row in table.rows:
        student = clean_person_name(row.get("name"))
        number = clean_student_number(row.get("number"))
        where = f"第 {row.number} 行"
        if not student and not number:
            continue  # a numbered but otherwise empty line (序号 only)
        if not student:
            errors.append(f"{where}：姓名为空（学号 {number}）")
            continue
        if len(student) > MAX_NAME_CHARS:
            errors.append(f"{where}：姓名过长（{len(student)} 字），请检查是否填错了列")
            continue
        if number and len(number) > MAX_NUMBER_CHARS:
            errors.append(f"{where}：学号过长（{len(number)} 个字符）")
            continue
        if number:
            earlier = first_row_of_number.setdefault(number_key(number), row.number)
            if earlier != row.number:
                errors.append(f"{where}：学号 {number} 与第 {earlier} 行重复")
                continue
        same_name = rows_of_name.setdefault(name_key(student), [])
        for earlier_row, earlier_number in same_name:
            if not number or not earlier_number:
                errors.append(f"{where}：姓名“{student}”与第 {earlier_row} 行重复；同名学生请都填写学号以区分")
                break
        same_name.append((row.number, number))
        rows.append(RosterRow(name=student, student_number=number))

    if errors:
        details = [f"{table.where} {error}" for error in errors]
        if len(errors) == 1:
            summary = details[0]
        else:
            listed = "；".join(errors[:_MAX_LISTED_ERRORS])
            more = f"；另有 {len(errors) - _MAX_LISTED_ERRORS} 处" if len(errors) > _MAX_LISTED_ERRORS else ""
            summary = f"{table.where} 有 {len(errors)} 处问题：{listed}{more}"
        raise UploadRejected(f"{summary}。请修改后重新上传（未导入任何学生）", details)
    if not rows:
        raise UploadRejected(f"{table.where}：名单中没有学生（表头下面没有数据行）")
    logger.info("parsed roster: %d students", len(rows))  # no file name: it is often a student's name
    return rows
