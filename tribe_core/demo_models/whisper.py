"""Tiny random whisperX models, built offline: Whisper (CTranslate2) + CTC aligner.

whisperX needs, for the whole transcription path:

1. a faster-whisper model directory (CTranslate2 ``model.bin``, ``config.json``,
   ``vocabulary.json``) with ``tokenizer.json`` next to it — without that file
   faster-whisper fetches ``openai/whisper-tiny``'s tokenizer from the Hub;
2. a VAD: whisperX's default pyannote segmentation model ships inside the wheel
   (``whisperx/assets/pytorch_model.bin``), so nothing is built for it;
3. a Wav2Vec2ForCTC alignment model + processor in a local directory;
4. NLTK's ``punkt_tab`` sentence splitter (downloaded on first use by
   ``whisperx.align``): :func:`tribe_core.events.transcribe` provides an
   untrained one offline.

The Whisper vocabulary keeps the exact multilingual layout (51,865 ids: regular
tokens, ``<|endoftext|>`` at 50257, 99 language tokens, task tokens, 1,501
timestamps) so faster-whisper's special-token logic runs unchanged; the regular
tokens are the 256 byte-level symbols plus letter strings. Weights are random:
the transcription is meaningless, only the code path is real.
"""

from __future__ import annotations

import itertools
import json
import string
from pathlib import Path

from tribe_core.io.atomic import atomic_path

N_REGULAR_TOKENS = 50257
N_LANGUAGES = 99  # Whisper before large-v3 (no "yue"): vocabulary of 51,865
N_TIMESTAMPS = 1501
CTC_CHARS = list("abcdefghijklmnopqrstuvwxyz'")


def _byte_symbols() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    symbols = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def _whisper_special_tokens() -> list[str]:
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    languages = list(LANGUAGES)[:N_LANGUAGES]
    tokens = ["<|endoftext|>", "<|startoftranscript|>"]
    tokens += [f"<|{code}|>" for code in languages]
    tokens += [
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
    ]
    tokens += [f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMPS)]
    return tokens


def _whisper_vocab() -> dict[str, int]:
    """Regular tokens: byte symbols, then space-prefixed / bare letter strings."""
    regular = _byte_symbols()
    seen = set(regular)
    space = regular[ord(" ")]
    letters = string.ascii_lowercase
    for length in itertools.count(2):
        for prefix in (space, ""):
            for combo in itertools.product(letters, repeat=length):
                token = prefix + "".join(combo)
                if token not in seen:
                    regular.append(token)
                    seen.add(token)
                if len(regular) == N_REGULAR_TOKENS:
                    return {token: i for i, token in enumerate(regular)}
    raise AssertionError("unreachable")


def _build_whisper_tokenizer(out_dir: Path) -> list[str]:
    """Write a byte-level BPE ``tokenizer.json`` with Whisper's id layout.

    Returns the special tokens (ids 50257 onwards).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE(vocab=_whisper_vocab(), merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = _whisper_special_tokens()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tokenizer.save(str(out_dir / "tokenizer.json"))
    return specials


def _build_whisper_hf(hf_dir: Path, seed: int) -> None:
    import torch
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    specials = _build_whisper_tokenizer(hf_dir)
    vocab_size = N_REGULAR_TOKENS + len(specials)
    ids = {token: N_REGULAR_TOKENS + i for i, token in enumerate(specials)}
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    languages = specials[2 : 2 + N_LANGUAGES]
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        suppress_tokens=[],
        begin_suppress_tokens=[ids["<|endoftext|>"], 220],
        alignment_heads=[[1, 0], [1, 1]],
        lang_to_id={t: ids[t] for t in languages},
        task_to_id={"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
        is_multilingual=True,
        max_length=448,
    )
    model.save_pretrained(hf_dir)
    PreTrainedTokenizerFast(
        tokenizer_file=str(hf_dir / "tokenizer.json"),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    ).save_pretrained(hf_dir)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(hf_dir)


def build_tiny_whisper_ct2(out_dir: Path, seed: int = 0) -> Path:
    """Build a tiny random multilingual Whisper as a faster-whisper directory.

    Parameters
    ----------
    out_dir
        Final directory (written atomically) with ``model.bin``, ``config.json``,
        ``vocabulary.json``, ``tokenizer.json`` and ``preprocessor_config.json``.
    seed
        Torch seed of the random weights.

    Returns
    -------
    Path
        ``out_dir``.
    """
    import tempfile

    from ctranslate2.converters import TransformersConverter

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="tiny-whisper-hf-") as tmp:
        hf_dir = Path(tmp)
        _build_whisper_hf(hf_dir, seed)
        converter = TransformersConverter(
            str(hf_dir), copy_files=["tokenizer.json", "preprocessor_config.json"]
        )
        with atomic_path(out_dir) as tmp_out:
            converter.convert(str(tmp_out), quantization="float32", force=True)
            _mark_multilingual(tmp_out / "vocabulary.json")
    return out_dir


def _mark_multilingual(vocabulary_json: Path) -> None:
    """Make CTranslate2 treat the model as multilingual.

    CTranslate2 4.8 decides ``is_multilingual`` by looking the empty-string
    token up in the vocabulary (measured: without it, whisperX's language
    detection refuses the model). The last regular token, unreachable by our
    BPE (no merges), becomes that empty string.
    """
    tokens = json.loads(vocabulary_json.read_text(encoding="utf-8"))
    tokens[N_REGULAR_TOKENS - 1] = ""
    vocabulary_json.write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")


def build_tiny_aligner(out_dir: Path, seed: int = 0) -> Path:
    """Build a tiny random ``Wav2Vec2ForCTC`` with a character vocabulary.

    whisperX's ``load_align_model(language, device, model_name=out_dir)`` loads
    it with ``Wav2Vec2Processor`` / ``Wav2Vec2ForCTC.from_pretrained`` (local).

    Parameters
    ----------
    out_dir
        Final directory (written atomically): config, safetensors weights,
        ``vocab.json``, tokenizer and feature-extractor configs.
    seed
        Torch seed of the random weights.

    Returns
    -------
    Path
        ``out_dir``.
    """
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    out_dir = Path(out_dir)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    vocab.update({c: 5 + i for i, c in enumerate(CTC_CHARS)})
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        (tmp / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        tokenizer = Wav2Vec2CTCTokenizer(
            str(tmp / "vocab.json"),
            unk_token="<unk>",
            pad_token="<pad>",
            word_delimiter_token="|",
        )
        extractor = Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=16000,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=False,
        )
        Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(tmp)
        config = Wav2Vec2Config(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=4,
            pad_token_id=0,
            do_stable_layer_norm=False,
            feat_extract_norm="group",
        )
        torch.manual_seed(seed)
        Wav2Vec2ForCTC(config).eval().save_pretrained(tmp)
    return out_dir


def build_tiny_whisper(out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Build the tiny whisperX models into ``out_dir``.

    Parameters
    ----------
    out_dir
        Parent directory; gets ``asr/`` (faster-whisper / CTranslate2) and
        ``align/`` (Wav2Vec2ForCTC + processor).
    seed
        Seed of the random weights (deterministic output).

    Returns
    -------
    dict
        ``{"asr": ct2_dir, "align": align_dir}``, to pass as ``model`` and
        ``align_model`` to :func:`tribe_core.events.transcribe`.
    """
    out_dir = Path(out_dir)
    return {
        "asr": build_tiny_whisper_ct2(out_dir / "asr", seed=seed),
        "align": build_tiny_aligner(out_dir / "align", seed=seed),
    }
