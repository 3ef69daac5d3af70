"""What each audit action and object type is called on the audit page (the stored codes stay English)."""

from __future__ import annotations

ACTION_LABELS: dict[str, str] = {
    "auth.login_success": "登录成功",
    "auth.login_failed": "登录失败",
    "auth.login_blocked": "登录被锁定（尝试过多）",
    "auth.logout": "退出登录",
    "user.create": "创建账户",
    "user.disable": "停用账户",
    "user.enable": "启用账户",
    "user.password_changed": "修改密码",
    "user.password_change_refused": "修改密码被拒绝",
    "user.password_reset": "重置密码",
    "user.role_change": "更改角色",
    "user.api_token": "生成 API 令牌",
    "user.api_token_revoked": "吊销 API 令牌",
    "school.create": "创建学校",
    "classroom.create": "创建班级",
    "classroom.lead_added": "指定备课组长",
    "classroom.lead_removed": "取消备课组长",
    "student.add": "添加学生",
    "student.remove": "移除学生",
    "roster.import": "导入名单",
    "assignment.create": "布置作业",
    "assignment.regrade": "全班重新评分",
    "upload.preview": "上传作文（预览）",
    "upload.confirm": "确认导入作文",
    "upload.rejected": "上传被拒绝",
    "essay.view": "查看作文",
    "essay.accept_flags": "确认可疑标记",
    "essay.failed": "评分失败",
    "essay.regrade": "重新评分",
    "essay.replace": "替换作文",
    "essay.requeue": "重新排队",
    "essay.retry": "重试评分",
    "grade.override": "教师改分",
    "model.grade": "模型评分",
    "double_marking.mode": "设置双评",
    "double_marking.second_read": "二评",
    "double_marking.third": "三评",
    "double_marking.arbitration": "仲裁",
    "double_marking.final": "终评",
    "calibration.fit": "样卷校准",
    "agreement.threshold": "设置一致性阈值",
    "rubric.upload": "上传评分标准",
    "report.request": "请求生成报表",
    "report.built": "报表生成完成",
    "report.retry": "重新生成报表",
    "report.download": "下载报表",
    "eval.request": "请求模型评测",
    "eval.download": "下载评测结果",
    "adapter.train": "训练适配器",
    "adapter.cancel": "取消适配器训练",
    "adapter.promote": "启用适配器",
    "adapter.rollback": "回退适配器",
    "adapter.delete": "删除适配器",
    "student.access_set": "设置学生使用权限",
    "student.code_issued": "发放学生登录码",
    "student.code_revoked": "收回学生登录码",
    "student.code_redeemed": "学生使用登录码",
    "student.code_refused": "学生登录码被拒绝",
    "student.access_set": "设置学生端开放范围",
    "chat.ask": "写作助手提问",
    "chat.answer": "写作助手回答",
    "chat.session_closed": "结束写作助手对话",
    "chat.material_added": "添加写作助手素材",
    "chat.material_removed": "删除写作助手素材",
    "chat.word_added": "添加屏蔽词",
    "privacy.export": "导出个人数据",
    "privacy.erase": "彻底删除个人数据",
    "retention.purge": "到期数据清理",
}

OBJECT_LABELS: dict[str, str] = {
    "essay": "作文", "assignment": "作业", "classroom": "班级", "student": "学生", "user": "用户", "report": "报表",
    "school": "学校", "grade": "评分", "rubric": "评分标准", "eval": "评测", "adapter": "适配器", "upload": "上传",
    "chat_session": "写作助手对话", "chat_material": "写作助手素材", "chat_turn": "写作助手问答",
}


def action_label(code: str) -> str:
    """The Chinese name of an action; an unknown code (a newer version's) is shown as it is."""
    return ACTION_LABELS.get(code, code)


def object_label(kind: str | None) -> str:
    return OBJECT_LABELS.get(kind or "", kind or "")
