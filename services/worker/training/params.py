"""A training job's hyper-parameters (torch-free: the web and the command line build them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TrainParams:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    learning_rate: float = 2e-4
    epochs: int = 2
    max_steps: int | None = None  # optimizer steps to make, instead of what the epochs make
    grad_accum: int = 4
    max_tokens: int = 4096  # longer examples are left out (counted in the card)
    seed: int = 1234
    validation_fraction: float = 0.2
    gradient_checkpointing: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainParams:
        known = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        return cls(**known)
