"""The web process never imports torch or transformers: it only sends tasks by name."""

from __future__ import annotations

from tests.import_probe import model_libraries_imported

PROBE = """
import tempfile, pathlib
from shared.settings import Settings
from services.web.app import create_app
from services.web.state import app_state
data = pathlib.Path(tempfile.mkdtemp())
app = create_app(Settings(data_dir=data, secret_key="probe-secret-key"))
app_state(app).task_sender()
client = app.test_client()
client.get("/login"); client.get("/api/v1/openapi.json")
"""


def test_building_and_serving_the_web_app_imports_no_model_libraries() -> None:
    assert model_libraries_imported(PROBE) == []
