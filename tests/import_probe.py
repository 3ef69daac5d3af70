"""Which model libraries a piece of code imports, run in a fresh interpreter: the web and the engine's interface
must import none of them."""

from __future__ import annotations

import subprocess
import sys

from tests.processes import REPO_ROOT

MODEL_LIBRARIES = ("torch", "transformers", "xgrammar", "accelerate")


def model_libraries_imported(code: str) -> list[str]:
    """Run ``code`` at the repository root with a bare environment; the model libraries loaded afterwards."""
    probe = f"{code}\nimport sys\nprint(','.join(n for n in {MODEL_LIBRARIES!r} if n in sys.modules) or '-')\n"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    return [name for name in result.stdout.strip().splitlines()[-1].split(",") if name != "-"]
