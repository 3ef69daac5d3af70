"""The web process never imports torch or transformers: it only sends tasks by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys, tempfile, pathlib
from shared.settings import Settings
from services.web.app import create_app, celery_for
data = pathlib.Path(tempfile.mkdtemp())
app = create_app(Settings(data_dir=data, secret_key="probe-secret-key"))
celery_for(app)
client = app.test_client()
client.get("/login"); client.get("/api/v1/openapi.json")
heavy = sorted(name for name in ("torch", "transformers", "xgrammar", "accelerate") if name in sys.modules)
print(",".join(heavy) or "none")
"""


def test_building_and_serving_the_web_app_imports_no_model_libraries() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "none"
