"""Tiny random w2v-BERT 2.0 (``Wav2Vec2BertModel`` + ``SeamlessM4TFeatureExtractor``), offline."""

from __future__ import annotations

from pathlib import Path

import torch

from tribe_core.io.atomic import atomic_path


def build_tiny_w2vbert(out_dir: Path, seed: int = 0) -> Path:
    """Build a tiny random ``Wav2Vec2BertModel`` (4 conformer blocks, hidden 32).

    The feature extractor is the real one with w2v-BERT 2.0's settings
    (16 kHz, 80 mel bins, stride 2 -> 160 input features).

    Returns
    -------
    Path
        ``out_dir`` (written atomically, ``save_pretrained`` layout).
    """
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    extractor = SeamlessM4TFeatureExtractor(
        feature_size=80, sampling_rate=16000, num_mel_bins=80, padding_value=1.0, stride=2
    )
    config = Wav2Vec2BertConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        feature_projection_input_dim=160,
        output_hidden_size=32,
        conv_depthwise_kernel_size=5,
        left_max_position_embeddings=8,
        right_max_position_embeddings=4,
        position_embeddings_type="relative_key",
        add_adapter=False,
    )
    torch.manual_seed(seed)
    model = Wav2Vec2BertModel(config).eval()
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        extractor.save_pretrained(tmp)
    return out_dir
