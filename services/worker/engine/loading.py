"""Loading a model and tokenizer with transformers: where the model is, which device and dtype, quantization."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from services.worker.engine.interface import EngineConfig, ModelUnavailable
from shared.settings import DeviceChoice, DtypeChoice, Quantization

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)



def _unavailable_message(model: str, reason: str) -> str:
    hub_id = model if re.fullmatch(r"[\w.-]+/[\w.-]+", model) else "Qwen/Qwen2.5-7B-Instruct"
    return (
        f"找不到模型 {model}（{reason}）。请任选一种方式提供模型：\n"
        f"  1. 设置 YUEJUAN_MODEL=/path/to/model，指向含 config.json 与权重文件的本地目录；\n"
        f"  2. 预先把模型下载进 Hugging Face 缓存，并设置 HF_HUB_OFFLINE=1；\n"
        f"  3. 从 ModelScope 下载：modelscope download --model {hub_id} --local_dir /path/to/model，"
        f"再设置 YUEJUAN_MODEL=/path/to/model。\n"
        f"Model {model} is not available ({reason}). Provide one: set YUEJUAN_MODEL=/path/to/model (a local "
        f"directory with config.json and the weights); or pre-fill the Hugging Face cache and set "
        f"HF_HUB_OFFLINE=1; or download from ModelScope with "
        f"`modelscope download --model {hub_id} --local_dir /path/to/model` and set YUEJUAN_MODEL to it."
    )


def locate_model(model: str) -> str:
    """A local model directory, or a hub id whose config can be had (cache or hub); else ModelUnavailable."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailable(_unavailable_message(model, "directory has no config.json"))
        return str(path)
    if path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1:
        raise ModelUnavailable(_unavailable_message(model, "no such directory"))
    try:
        AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as exc:  # missing from the cache while offline, unknown id, no network
        raise ModelUnavailable(_unavailable_message(model, f"{type(exc).__name__}: {exc}")) from exc
    return model


def resolve_device(choice: DeviceChoice) -> str:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda was asked for, but no CUDA GPU is available")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def resolve_dtype(choice: DtypeChoice, device: str) -> torch.dtype:
    if choice != "auto":
        return getattr(torch, choice)
    if device == "cpu":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def quantization_config(quantization: Quantization, device: str) -> Any:
    """A bitsandbytes config for 4/8-bit loading; bitsandbytes is imported only when asked for."""
    if quantization == "none":
        return None
    if device != "cuda":
        raise ValueError(f"quantization={quantization} needs a CUDA GPU (bitsandbytes); use none on CPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"quantization={quantization} needs bitsandbytes: pip install bitsandbytes"
        ) from exc
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
    )



def load_pretrained(config: EngineConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str, torch.dtype]:
    """The model (in eval mode) and its left-padding tokenizer, with the device and dtype they were loaded for;
    failures are logged and re-raised."""
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    try:
        source = locate_model(config.model)
        kwargs: dict[str, Any] = {"dtype": dtype}
        quantization = quantization_config(config.quantization, device)
        if quantization is not None:
            kwargs["quantization_config"] = quantization
        if device == "cuda":
            kwargs["device_map"] = "auto"  # accelerate spreads the layers over every visible GPU
        tokenizer = AutoTokenizer.from_pretrained(source, padding_side="left")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        model.eval()
    except Exception:
        logger.exception("could not load model %s (device=%s, dtype=%s)", config.model, device, dtype)
        raise
    return model, tokenizer, device, dtype
