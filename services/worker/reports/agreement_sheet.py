"""The 评分一致性 sheet of the class and school workbooks: model–teacher agreement from the stored 双评 readings,
the same figures as the web's dashboard (shared.agreement_report); for a class also every pair they come from and
the model grades of low confidence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.worker.reports.excel import DECIMAL, HEADER, PERCENT, TITLE, SheetBuffer, add_sheet
from shared.agreement_report import GROUPINGS, Figures, Pair, figures, grouped, pairs_for, threshold_for
from shared.confidence import LOW_CONFIDENCE, is_low_confidence
from shared.models import Essay, Grade, GradeSource, Student

AGREEMENT_SHEET = "评分一致性"
FIGURE_HEADER = ["篇数", "QWK", "平均偏差（模型−教师）", "误差内比例", "二评", "仲裁", "预警"]


def _figure_row(label: str, f: Figures, threshold: float) -> list[object]:
    return [label, f.pairs, f.qwk, f.bias, f.within_rate, f.second_reads, f.arbitrations,
            "低于阈值" if f.below(threshold) else ""]


FIGURE_STYLES = {2: DECIMAL, 3: DECIMAL, 4: PERCENT}


def _pair_rows(session: Session, sheet: SheetBuffer, pairs: Sequence[Pair]) -> None:
    names = dict(session.execute(select(Essay.id, Student.name).join(Student, Essay.student_id == Student.id)
                                 .where(Essay.id.in_([p.essay_id for p in pairs]))).all()) if pairs else {}
    sheet.add(["作文编号", "学生", "模型一评", "教师二评", "差（模型−教师）", "误差", "在误差内", "经仲裁"], HEADER)
    for p in sorted(pairs, key=lambda pair: pair.essay_id):
        sheet.add([p.essay_id, names.get(p.essay_id, ""), p.model_total, p.teacher_total,
                   p.model_total - p.teacher_total, p.tolerance,
                   "是" if abs(p.model_total - p.teacher_total) <= p.tolerance else "否",
                   "是" if p.arbitrated else "否"])


def _low_confidence_rows(session: Session, sheet: SheetBuffer, assignment_ids: Sequence[int]) -> None:
    """Each essay's latest model grade that is low-confidence (shared.confidence), for a teacher to look at first."""
    latest: dict[int, tuple[Grade, str]] = {}
    for grade, name in session.execute(
        select(Grade, Student.name).join(Essay, Grade.essay_id == Essay.id)
        .join(Student, Essay.student_id == Student.id)
        .where(Essay.assignment_id.in_(list(assignment_ids)), Grade.source == GradeSource.model).order_by(Grade.version)
    ).all():
        latest[grade.essay_id] = (grade, name)
    low = [(g, n) for g, n in latest.values() if is_low_confidence(g.confidence, g.dropped_quotes)]
    title = f"低置信度的模型评分（置信度 < {LOW_CONFIDENCE} 或引用了原文中没有的句子）：{len(low)} 篇"
    sheet.add([title], measure=False)
    sheet.add(["作文编号", "学生", "模型总分", "置信度", "未找到的引用"], HEADER)
    for grade, name in sorted(low, key=lambda item: item[0].essay_id):
        sheet.add([grade.essay_id, name, grade.total, grade.confidence, grade.dropped_quotes], styles={3: DECIMAL})


def add_agreement_sheet(wb: Workbook, session: Session, assignment_ids: Sequence[int], school_id: int | None, *,
                        per_essay: bool, zone: tzinfo | None = None) -> None:
    """One sheet: the overall figures, then by assignment, class and month; with ``per_essay`` every pair too."""
    pairs = pairs_for(session, assignment_ids, zone)  # months as people count them
    threshold = threshold_for(session, school_id)
    sheet = SheetBuffer(add_sheet(wb, AGREEMENT_SHEET))
    sheet.add(["模型一评与教师二评的一致性"], TITLE, measure=False)
    sheet.add([f"由已保存的二评计算；QWK 低于 {threshold:.2f} 时预警。误差按评分标准的双评误差。"], measure=False)
    sheet.blank()
    sheet.add(["范围", *FIGURE_HEADER], HEADER)
    sheet.add(_figure_row("全部", figures("全部", pairs), threshold), styles=FIGURE_STYLES)
    for by, (title, _key) in GROUPINGS.items():
        rows = grouped(pairs, by)
        if per_essay and by == "assignment":
            continue
        sheet.blank()
        sheet.add([f"按{title}", *FIGURE_HEADER], HEADER)
        for f in rows:
            sheet.add(_figure_row(f.label, f, threshold), styles=FIGURE_STYLES)
    if per_essay:
        sheet.blank()
        _pair_rows(session, sheet, pairs)
        sheet.blank()
        _low_confidence_rows(session, sheet, assignment_ids)
    sheet.write()
