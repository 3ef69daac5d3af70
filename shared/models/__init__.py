"""SQLAlchemy models used by the web app, the workers and the migrations."""

from shared.models.accounts import LoginThrottle
from shared.models.adapters import Adapter, AdapterStatus, AdapterStudent
from shared.models.base import Base
from shared.models.chat import (
    BlockedWord,
    ChatChunk,
    ChatMaterial,
    ChatSession,
    ChatTurn,
    StudentAccess,
    StudentCode,
    TurnStatus,
)
from shared.models.db import make_engine, make_session_factory, transaction
from shared.models.double_marking import (
    AgreementSetting,
    Calibration,
    CaseStatus,
    ClassRole,
    ClassroomRole,
    DoubleMarkCase,
    DoubleMarkingMode,
)
from shared.models.evaluation import EvalJob
from shared.models.grading import (
    Assignment,
    Deduction,
    ErrorAnnotation,
    Essay,
    EssayStatus,
    Grade,
    GradeSource,
    abandoned_claim,
)
from shared.models.org import Classroom, Role, School, Student, User
from shared.models.records import (
    AuditLog,
    AuditLogIsAppendOnly,
    JobStatus,
    ReportJob,
    TrainingPlan,
    WorkerStatus,
)
from shared.models.teaching import (
    AssignmentTopic,
    LessonPlan,
    LessonPlanVersion,
    MaterialPick,
    SchoolMaterial,
    TopicAnalysis,
)

__all__ = [
    "BlockedWord", "ChatChunk", "ChatMaterial", "ChatSession", "ChatTurn", "StudentAccess", "StudentCode", "TurnStatus",
    "AgreementSetting", "Calibration", "CaseStatus", "ClassRole", "ClassroomRole", "DoubleMarkCase",
    "DoubleMarkingMode",
    "Adapter", "AdapterStatus", "AdapterStudent", "Assignment", "AuditLog", "AuditLogIsAppendOnly", "Base",
    "Classroom", "Deduction", "ErrorAnnotation",
    "Essay", "EssayStatus", "EvalJob", "Grade", "GradeSource", "JobStatus", "LoginThrottle", "ReportJob", "Role",
    "School", "Student",
    "AssignmentTopic", "LessonPlan", "LessonPlanVersion", "MaterialPick", "SchoolMaterial", "TopicAnalysis",
    "TrainingPlan", "User", "WorkerStatus", "abandoned_claim", "make_engine", "make_session_factory", "transaction",
]
