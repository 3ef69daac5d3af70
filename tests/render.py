"""Render checks with real office tools: LibreOffice headless converts workbooks and documents to PDF, poppler
counts a PDF's pages and extracts each page's text. CI installs them (.ci/run); elsewhere a missing tool skips."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS = {"soffice": "libreoffice-calc-nogui libreoffice-writer-nogui", "pdfinfo": "poppler-utils",
         "pdftotext": "poppler-utils"}
CONVERT_TIMEOUT_S = 240


def require(*tools: str) -> None:
    """Skip (fail under CI) when one of the tools is not installed."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = " ".join(sorted({TOOLS.get(tool, tool) for tool in missing}))
        message = f"{', '.join(missing)} not installed (apt-get install -y {packages})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def to_pdf(source: Path, out_dir: Path) -> Path:
    """``source`` converted by LibreOffice headless (its own profile, so parallel runs never share one)."""
    profile = out_dir / ".lo-profile"
    subprocess.run(
        ["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--norestore", "--convert-to", "pdf",
         "--outdir", str(out_dir), str(source)],
        check=True, capture_output=True, timeout=CONVERT_TIMEOUT_S,
    )
    converted = out_dir / f"{source.stem}.pdf"
    assert converted.exists(), f"LibreOffice did not convert {source.name}"
    return converted


def page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))


def page_texts(pdf: Path) -> list[str]:
    """The text of each page, in order (pdftotext separates pages with form feeds)."""
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    pages = text.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages
