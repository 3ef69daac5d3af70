"""Streamed free-text generation for the chat: the answer so far is handed to a callback as tokens arrive, and the
callback can stop generation (a blocked word, a deadline).

An engine may provide its own ``stream_chat(messages, max_new_tokens=, on_text=)``; otherwise the transformers
engine's model and tokenizer are driven here with ``generate`` and a streamer, and the llama.cpp engine's server
with a streamed completion request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Called with the whole answer so far; returns False to stop generating.
TextCallback = Callable[[str], bool]
REPETITION_PENALTY = 1.1  # free text, unlike the schema-bound grading answers, drifts into loops without it
NO_REPEAT_NGRAM = 8  # no run of 8 tokens (about ten characters) is generated twice: loops end, quotes stay


@dataclass(frozen=True)
class StreamResult:
    text: str
    prompt_tokens: int
    new_tokens: int
    stopped: bool  # the callback asked to stop
    first_token_s: float | None  # seconds from the call to the first piece of text
    seconds: float


def stream_answer(engine: Any, messages: Sequence[dict[str, str]], *, max_new_tokens: int,
                  on_text: TextCallback) -> StreamResult:
    custom = getattr(engine, "stream_chat", None)
    if custom is not None:
        return custom(messages, max_new_tokens=max_new_tokens, on_text=on_text)
    if hasattr(engine, "server") and hasattr(engine, "render"):
        return stream_with_llamacpp(engine, messages, max_new_tokens=max_new_tokens, on_text=on_text)
    return stream_with_transformers(engine, messages, max_new_tokens=max_new_tokens, on_text=on_text)


def count_tokens(engine: Any, text: str) -> int:
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is None:
        return len(text)  # about one token per Chinese character or better: an upper bound for trimming
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def stream_with_transformers(engine: Any, messages: Sequence[dict[str, str]], *, max_new_tokens: int,
                             on_text: TextCallback) -> StreamResult:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    if not hasattr(engine, "model") or not hasattr(engine, "tokenizer"):
        raise RuntimeError(f"{type(engine).__name__} cannot stream chat answers")
    tokenizer = engine.tokenizer
    if hasattr(engine, "use_adapter"):
        engine.use_adapter(None, None)  # the chat answers with the base model, whatever a batch switched on
    prompt = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    device = engine.model.get_input_embeddings().weight.device
    input_ids = inputs["input_ids"].to(device)
    started = time.perf_counter()
    state: dict[str, Any] = {"ids": [], "text": "", "stop": False, "first": None, "prompt_seen": False}

    class _Streamer(BaseStreamer):  # type: ignore[misc]
        def put(self, value: Any) -> None:
            if not state["prompt_seen"]:  # generate() hands the prompt over first
                state["prompt_seen"] = True
                return
            state["ids"].extend(int(i) for i in value.reshape(-1).tolist())
            text = tokenizer.decode(state["ids"], skip_special_tokens=True)
            if text.endswith("\ufffd") or text == state["text"]:
                return  # half a character so far, or a token with no text
            state["text"] = text
            if state["first"] is None:
                state["first"] = time.perf_counter() - started
            if not on_text(text):
                state["stop"] = True

        def end(self) -> None:
            pass

    class _Stop(StoppingCriteria):  # type: ignore[misc]
        def __call__(self, ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((ids.shape[0],), state["stop"], dtype=torch.bool, device=ids.device)

    stop_ids = getattr(engine, "stop_ids", None) or tokenizer.eos_token_id
    with torch.inference_mode():
        output = engine.model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
            do_sample=False, num_beams=1, temperature=1.0, top_p=1.0, top_k=50, repetition_penalty=REPETITION_PENALTY,
            no_repeat_ngram_size=NO_REPEAT_NGRAM,
            eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            streamer=_Streamer(), stopping_criteria=StoppingCriteriaList([_Stop()]),
        )
    new_tokens = int(output.shape[1] - input_ids.shape[1])
    return StreamResult(state["text"], int(input_ids.shape[1]), new_tokens, state["stop"], state["first"],
                        time.perf_counter() - started)


def stream_with_llamacpp(engine: Any, messages: Sequence[dict[str, str]], *, max_new_tokens: int,
                         on_text: TextCallback) -> StreamResult:
    """One streamed, greedy completion from the llama.cpp engine's in-process server; the callback of
    ``handle_completions`` returns True to stop it."""
    started = time.perf_counter()
    state: dict[str, Any] = {"text": "", "stop": False, "first": None, "usage": {}, "error": None}

    def on_chunk(chunk: dict[str, Any]) -> bool:
        if "error" in chunk:
            state["error"] = chunk["error"]
            return True
        state["usage"] = chunk.get("usage") or state["usage"]
        piece = "".join(choice.get("text", "") for choice in chunk.get("choices", []))
        if not piece:
            return False
        state["text"] += piece
        if state["first"] is None:
            state["first"] = time.perf_counter() - started
        if not on_text(state["text"]):
            state["stop"] = True
        return bool(state["stop"])

    request = {"prompt": engine.render(list(messages)), "n_predict": max_new_tokens, "temperature": 0.0, "top_k": 1,
               "repeat_penalty": REPETITION_PENALTY, "cache_prompt": True, "stream": True}
    engine.server.handle_completions(request, on_chunk)
    if state["error"] is not None:
        raise RuntimeError(f"llama.cpp: {state['error']}")
    usage = state["usage"]
    return StreamResult(state["text"], int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                        state["stop"], state["first"], time.perf_counter() - started)
