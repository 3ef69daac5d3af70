"""The 学生提问 sheet of the class workbook: what the class asked the writing assistant (shared.chat.analytics),
added only for a class whose students have asked something."""

from __future__ import annotations

from datetime import tzinfo

from openpyxl import Workbook
from sqlalchemy.orm import Session

from services.worker.reports.excel import HEADER, TITLE, SheetBuffer, add_sheet
from shared.chat.analytics import class_analytics
from shared.clock import in_zone

CHAT_SHEET = "学生提问"
OUTCOMES = {"blocked": "已拦截", "refused": "已拒答", "failed": "失败"}


def add_chat_sheet(wb: Workbook, session: Session, classroom_id: int, zone: tzinfo) -> bool:
    """Write the sheet; False (and no sheet) when nobody in the class has asked yet."""
    stats = class_analytics(session, classroom_id, zone=zone)
    if not stats.total:
        return False
    sheet = SheetBuffer(add_sheet(wb, CHAT_SHEET))
    sheet.add(["学生提问统计（写作问答助手）"], TITLE, measure=False)
    sheet.add([f"共 {stats.total} 个问题（含被拦截和拒答的）；从未提问："
               + ("、".join(s.name for s in stats.never_asked) or "无")], measure=False)
    sheet.blank()
    sheet.add(["学号", "姓名", "提问数"], HEADER)
    for student, count in stats.per_student:
        sheet.add([student.student_number or "", student.name, count])
    sheet.blank()
    sheet.add(["话题", "提问数"], HEADER)
    for topic, count in stats.per_topic:
        sheet.add([topic, count])
    sheet.blank()
    sheet.add(["日期", "提问数", "其中按话题"], HEADER)
    for day, count, topics in stats.per_day:
        sheet.add([day, count, topics])
    sheet.blank()
    sheet.add(["问得最多的问题", "次数"], HEADER)
    for question, count in stats.most_asked:
        sheet.add([question, count])
    sheet.blank()
    sheet.add(["时间", "学生", "被拦截、拒答或失败的问题", "结果"], HEADER)
    for turn in stats.blocked:
        sheet.add([in_zone(turn.created_at, zone).strftime("%Y-%m-%d %H:%M"), stats.names.get(turn.student_id, ""),
                   turn.question, f"{OUTCOMES.get(str(turn.status), str(turn.status))}：{turn.notice or ''}"])
    sheet.write()
    return True
