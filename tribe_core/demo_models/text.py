"""Tiny random text models of the real classes (``LlamaModel``, ``Qwen3Model``), offline.

The tokenizer is a byte-level BPE (the scheme of Llama 3 and Qwen3) trained
on a fixed English paragraph, saved as a ``PreTrainedTokenizerFast`` with an
EOS token and no pad token, like the released tokenizers. Weights are random
(seeded); built in about a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tribe_core.io.atomic import atomic_path

if TYPE_CHECKING:
    from transformers import PreTrainedModel

_CORPUS = """
The quick brown fox jumps over the lazy dog. A river runs through the old town,
and people walk along it every morning. She said that the weather would change
soon, so we packed our bags and left before noon. Hello world, this is a test of
speech and language in the brain. Listening to a story, the listener builds a
model of the events, the places and the people. Numbers like one, two, three and
four appear too. Why do we remember some words and forget others? Because
meaning matters more than sound. The cat sat on the mat; the dog barked at the
moon. Good evening, my friends! Music, pictures and voices fill the room.
"""


def _byte_level_tokenizer(bos: str, eos: str, vocab_size: int = 600):  # noqa: ANN202
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[bos, eos],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = [line for line in _CORPUS.strip().splitlines() if line]
    tok.train_from_iterator(lines * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, model_max_length=131072
    )


def _save(out_dir: Path, model: PreTrainedModel, tokenizer) -> Path:  # noqa: ANN001
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out_dir


def build_tiny_llama(out_dir: Path, seed: int = 0) -> Path:
    """Build a tiny random ``LlamaModel`` (5 blocks, hidden 32) + tokenizer in ``out_dir``.

    Returns
    -------
    Path
        ``out_dir`` (written atomically, ``save_pretrained`` layout).
    """
    from transformers import LlamaConfig, LlamaModel

    tokenizer = _byte_level_tokenizer("<|begin_of_text|>", "<|end_of_text|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=5,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        rope_theta=500000.0,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaModel(config).eval()
    return _save(out_dir, model, tokenizer)


def build_tiny_qwen3(out_dir: Path, seed: int = 0) -> Path:
    """Build a tiny random ``Qwen3Model`` (3 blocks, hidden 24) + tokenizer in ``out_dir``.

    Returns
    -------
    Path
        ``out_dir`` (written atomically, ``save_pretrained`` layout).
    """
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = _byte_level_tokenizer("<|im_start|>", "<|endoftext|>")
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=24,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen3Model(config).eval()
    return _save(out_dir, model, tokenizer)
