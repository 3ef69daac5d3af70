"""Render the grading chat messages (system + user) from a rubric and one essay.

The system message depends on the rubric only, so every essay of an assignment shares its prefix;
the essay goes into the user message as data between delimiters it cannot forge.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from shared.prompts.rubric import Rubric

logger = logging.getLogger(__name__)

PROMPT_VERSION = "grade-v1"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
ESSAY_START = "<<<作文开始>>>"
ESSAY_END = "<<<作文结束>>>"


@lru_cache(maxsize=4)
def _template(version: str) -> Template:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    return env.get_template(f"{version}.j2")


def defuse_markers(text: str) -> str:
    """Make the essay unable to close the data section or to forge chat-template tokens.

    ``<<<``/``>>>`` become full-width, and so does the ``<|`` that opens a special token such as
    ``<|im_end|>`` (tokenizers would otherwise read it as the real control token).
    """
    return text.replace("<<<", "＜＜＜").replace(">>>", "＞＞＞").replace("<|", "＜|").replace("|>", "|＞")


def _fact_value(value: object) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def render_system_message(rubric: Rubric) -> str:
    """The system message for ``rubric``: bands, output rules and the data-not-instructions rule."""
    module = _template(PROMPT_VERSION).module
    return str(module.system(rubric, rubric.output_limits, ESSAY_START, ESSAY_END)).strip()  # type: ignore[attr-defined]


def render_grading_messages(
    rubric: Rubric,
    *,
    assignment_prompt: str,
    genre: str,
    required_length: int,
    title: str | None,
    body: str,
    facts: Mapping[str, object],
) -> list[dict[str, str]]:
    """Return ``[system, user]`` chat messages asking the model to grade one essay under ``rubric``."""
    module = _template(PROMPT_VERSION).module
    user = module.user(  # type: ignore[attr-defined]
        defuse_markers(assignment_prompt.strip()) or "（未提供）",
        genre.strip() or "不限",
        required_length,
        {str(key): _fact_value(value) for key, value in facts.items()},
        defuse_markers(title) if title else None,
        defuse_markers(body),
        ESSAY_START,
        ESSAY_END,
    )
    return [
        {"role": "system", "content": render_system_message(rubric)},
        {"role": "user", "content": str(user).strip()},
    ]
