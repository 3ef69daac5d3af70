"""A GGUF file from a local Hugging Face model directory, offline, with the ``gguf`` package (no llama.cpp checkout).

Covers what Yuejuan runs: Qwen2 (Qwen2.5-Instruct) and Llama-architecture models with a byte-level BPE tokenizer.
Weights are written as f32, f16, bf16, q8_0 or q4_0 (the types ``gguf`` can quantize in Python; 2-D weight matrices
only, norms and biases stay f32). Q4_K_M needs llama.cpp's ``llama-quantize`` on the q8_0/f16 file this writes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

QUANT_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")

# Byte-level pre-tokenizer regexes llama.cpp knows by name (the `tokenizer.ggml.pre` value it expects).
_WORDS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
_REST = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_QWEN2_SPLIT = _WORDS + r"\p{N}" + _REST
_LLAMA3_SPLIT = _WORDS + r"\p{N}{1,3}" + _REST


class ConversionError(ValueError):
    """The source directory cannot be converted (which file, and why)."""


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConversionError(f"{path}: missing (a Hugging Face model directory has config.json and tokenizer.json)")
    return json.loads(path.read_text(encoding="utf-8"))


def _pre_tokenizer_name(spec: dict[str, Any], path: Path) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenization (its splitting regex)."""
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    for step in steps:
        if step.get("type") == "Split":
            pattern = step.get("pattern", {}).get("Regex")
            if pattern == _QWEN2_SPLIT:
                return "qwen2"
            if pattern == _LLAMA3_SPLIT:
                return "llama-bpe"
            raise ConversionError(f"{path}: pre-tokenizer regex {pattern!r} is not one this converter knows")
        if step.get("type") == "ByteLevel" and step.get("use_regex", True):
            return "gpt-2"
    raise ConversionError(f"{path}: not a byte-level BPE tokenizer (pre-tokenizer {pre.get('type')!r})")


def _add_tokenizer(writer: Any, source: Path, vocab_size: int) -> None:
    import gguf

    path = source / "tokenizer.json"
    spec = _read_json(path)
    model = spec.get("model", {})
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise ConversionError(
            f"{path}: only byte-level BPE tokenizers (Qwen, Llama 3) are converted here; for SentencePiece-style "
            "vocabularies use llama.cpp's convert_hf_to_gguf.py"
        )
    pre_name = _pre_tokenizer_name(spec, path)
    ids = dict(model["vocab"])
    special: set[int] = set()
    added_ids: set[int] = set()
    for added in spec.get("added_tokens", []):
        ids[added["content"]] = added["id"]
        added_ids.add(added["id"])
        if added.get("special"):
            special.add(added["id"])
    by_id = {index: token for token, index in ids.items()}
    tokens, types = [], []
    for index in range(max(vocab_size, len(by_id))):
        token = by_id.get(index)
        if token is None:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if index in special else
                         gguf.TokenType.USER_DEFINED if index in added_ids else gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_name)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)

    config = _read_json(source / "tokenizer_config.json") if (source / "tokenizer_config.json").is_file() else {}
    generation = source / "generation_config.json"
    eos_ids = _read_json(generation).get("eos_token_id") if generation.is_file() else None
    eos_ids = eos_ids if isinstance(eos_ids, list) else [eos_ids] if eos_ids is not None else []

    def token_id(name: str) -> int | None:
        value = config.get(name)
        value = value.get("content") if isinstance(value, dict) else value
        return ids.get(value) if isinstance(value, str) else None

    eos = token_id("eos_token") if token_id("eos_token") is not None else (eos_ids[0] if eos_ids else None)
    if eos is None:
        raise ConversionError(f"{source}: no eos_token in tokenizer_config.json or generation_config.json")
    writer.add_eos_token_id(eos)
    bos = token_id("bos_token")
    if bos is not None:
        writer.add_bos_token_id(bos)
    pad = token_id("pad_token")
    if pad is not None:
        writer.add_pad_token_id(pad)
    writer.add_add_bos_token(bool(config.get("add_bos_token", False)))
    template = config.get("chat_template")
    if not template and (source / "chat_template.jinja").is_file():
        template = (source / "chat_template.jinja").read_text(encoding="utf-8")
    if template:
        writer.add_chat_template(template)


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """Llama's q/k rows reordered from Hugging Face's rotary layout to llama.cpp's (interleaved pairs)."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _tensors(source: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    files = sorted(source.glob("*.safetensors"))
    if not files:
        raise ConversionError(f"{source}: no *.safetensors weights")
    tensors: dict[str, np.ndarray] = {}
    for file in files:
        try:
            tensors.update(load_file(file))
        except TypeError:  # bf16, which numpy cannot hold: read through torch
            from safetensors.torch import load_file as load_torch

            tensors.update({name: t.float().numpy() for name, t in load_torch(file).items()})
    return tensors


def convert(source: Path, out: Path, quant: str = "q8_0") -> Path:
    """Write ``out`` (a .gguf) from the Hugging Face model directory ``source``; returns ``out``."""
    import gguf

    quant = quant.lower()
    if quant not in QUANT_TYPES:
        raise ConversionError(
            f"--quant {quant}: this converter writes {', '.join(QUANT_TYPES)}; for Q4_K_M run llama.cpp's "
            "llama-quantize on a q8_0 or f16 file"
        )
    config = _read_json(source / "config.json")
    architecture = (config.get("architectures") or ["?"])[0]
    arch = {"Qwen2ForCausalLM": gguf.MODEL_ARCH.QWEN2, "LlamaForCausalLM": gguf.MODEL_ARCH.LLAMA}.get(architecture)
    if arch is None:
        raise ConversionError(f"{source / 'config.json'}: architecture {architecture} is not Qwen2 or Llama")
    blocks, heads = config["num_hidden_layers"], config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(source.name)
    writer.add_context_length(config.get("max_position_embeddings", 32768))
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(blocks)
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(float(config.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    if arch == gguf.MODEL_ARCH.LLAMA:
        writer.add_rope_dimension_count(config["hidden_size"] // heads)
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                 "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
                 "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[quant]
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_tokenizer(writer, source, config["vocab_size"])

    names = gguf.TensorNameMap(arch, blocks)
    qtype = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
             "bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0,
             "q4_0": gguf.GGMLQuantizationType.Q4_0}[quant]
    tensors = _tensors(source)
    for hf_name, data in tensors.items():
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConversionError(f"{source}: tensor {hf_name} has no GGUF name for {architecture}")
        data = data.astype(np.float32)
        if arch == gguf.MODEL_ARCH.LLAMA and hf_name.endswith("q_proj.weight"):
            data = _permute(data, heads)
        elif arch == gguf.MODEL_ARCH.LLAMA and hf_name.endswith("k_proj.weight"):
            data = _permute(data, kv_heads)
        tensor_type = qtype if data.ndim == 2 else gguf.GGMLQuantizationType.F32
        try:
            stored = gguf.quants.quantize(data, tensor_type) if tensor_type != gguf.GGMLQuantizationType.F32 else data
        except gguf.QuantError:  # a row length the block type cannot split: keep it in f16
            tensor_type, stored = gguf.GGMLQuantizationType.F16, data.astype(np.float16)
        writer.add_tensor(name, stored, raw_dtype=tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    logger.info("wrote %s (%s) from %s", out, quant, source)
    return out
