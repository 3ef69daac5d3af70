from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import CPU_DEFAULT_MODEL, GPU_DEFAULT_MODEL, Settings, load_settings


def test_defaults_are_the_embedded_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YUEJUAN_DATABASE_URL", raising=False)
    monkeypatch.delenv("YUEJUAN_BROKER_URL", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path.resolve() / 'yuejuan.sqlite'}"
    assert settings.resolved_broker_url().startswith("sqla+sqlite:///")
    assert settings.uses_embedded_broker()


def test_environment_is_read_only_on_an_explicit_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUEJUAN_DATABASE_URL", "postgresql+psycopg://u@db/yuejuan")
    monkeypatch.setenv("YUEJUAN_BROKER_URL", "redis://redis:6379/0")
    monkeypatch.setenv("YUEJUAN_QUANTIZATION", "4bit")
    monkeypatch.setenv("YUEJUAN_BATCH_TOKEN_BUDGET", "32768")
    settings = load_settings()
    assert settings.resolved_database_url() == "postgresql+psycopg://u@db/yuejuan"
    assert not settings.uses_embedded_broker()
    assert settings.quantization == "4bit"
    assert settings.batch_token_budget == 32768


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUEJUAN_QUANTIZATION", "3bit")
    with pytest.raises(ValidationError):
        load_settings()


def test_default_model_depends_on_the_device() -> None:
    assert Settings().resolved_model(cuda_available=True) == GPU_DEFAULT_MODEL
    assert Settings().resolved_model(cuda_available=False) == CPU_DEFAULT_MODEL
    assert Settings(model="/models/mine").resolved_model(cuda_available=True) == "/models/mine"
