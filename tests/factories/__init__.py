"""Where tests build rows: the builders (one per table) and the scenarios composed of them.

- ``builders``: add a school, a user with a role, a classroom, students, an assignment, essays, a grade
  version, a training plan, a report job (re-exported here);
- ``classes``: ``make_class``, one class with an assignment of queued essays (re-exported here);
- ``senders``: ``RecordingSender``, a broker stand-in (re-exported here);
- ``people``: a school full of personal data for the privacy tests, and scans for its leftovers;
- ``world``: a two-school world for the web and access tests.

``people`` and ``world`` also write upload previews through the web's upload store, so they are imported from
their modules and importing this package does not load the web.
"""

from tests.factories.builders import (
    DIMS,
    READING_PROMPT,
    add_assignment,
    add_classroom,
    add_essay,
    add_essays,
    add_grade,
    add_report_job,
    add_school,
    add_student,
    add_students,
    add_training_plan,
    add_user,
    make_report_job,
    write_report_file,
)
from tests.factories.classes import ClassFixture, make_class
from tests.factories.senders import RecordingSender

__all__ = [
    "DIMS", "READING_PROMPT", "ClassFixture", "RecordingSender", "add_assignment", "add_classroom", "add_essay",
    "add_essays", "add_grade", "add_report_job", "add_school", "add_student", "add_students", "add_training_plan",
    "add_user", "make_class", "make_report_job", "write_report_file",
]
