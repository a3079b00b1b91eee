"""Peak host memory of loading a bf16-stored text model in float16: cast while loading vs after.

``python benchmarks/model_load.py --hidden 3072 --layers 28 --device cuda`` saves
a random Llama of that size in bfloat16 (as Llama-3.2 is published), then loads
it in float16 on ``--device`` in two fresh processes, one per way, and prints
each one's peak RSS (``VmHWM``, this process image's own high-water mark;
``ru_maxrss`` would carry the forking parent's, and memory-mapped checkpoint
pages count) and its anonymous / file-backed RSS once loaded:

- ``transformers``: ``from_pretrained(dtype=float16)`` on the CPU, then ``.to(device)``;
- ``tribeflow``: :func:`tribe_core.features._hf.load_model` reads the weights as
  stored, moves them to ``--device`` and casts the parameters there.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rss_mb() -> dict[str, float]:
    """``VmHWM`` (peak), ``RssAnon`` and ``RssFile`` of this process, in MB (Linux)."""
    status = Path("/proc/self/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    keys = ("VmHWM", "RssAnon", "RssFile")
    return {k: int(fields[k].split()[0]) / 1024 for k in keys if k in fields}


def _child(way: str, model: str, device: str) -> None:
    import torch
    from transformers import AutoModel

    if way == "transformers":
        net = AutoModel.from_pretrained(model, dtype=torch.float16).to(device)
    else:
        from tribe_core.features import FeatureSpec
        from tribe_core.features._hf import load_model

        net = load_model(FeatureSpec("text", model, dtype="float16", device=device))
    assert {p.dtype for p in net.parameters()} == {torch.float16}
    assert {p.device.type for p in net.parameters()} == {torch.device(device).type}
    rss = _rss_mb()
    print(json.dumps({"way": way, "peak_rss_mb": rss.pop("VmHWM"), **rss}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=2, metavar=("WAY", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child, args.device)
        return
    import torch
    from transformers import LlamaConfig, LlamaModel

    config = LlamaConfig(
        vocab_size=32000, hidden_size=args.hidden, intermediate_size=args.hidden * 4,
        num_hidden_layers=args.layers, num_attention_heads=args.hidden // 128,
        num_key_value_heads=max(1, args.hidden // 512), head_dim=128,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tribe-load-") as tmp:
        model = LlamaModel(config).to(torch.bfloat16)
        n_params = sum(p.numel() for p in model.parameters())
        model.save_pretrained(tmp)
        del model
        results = {}
        for way in ("transformers", "tribeflow"):
            cmd = [sys.executable, __file__, "--device", args.device, "--child", way, tmp]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results[way] = json.loads(out.strip().splitlines()[-1])
    weights_mb = n_params * 2 / 2**20
    print(
        f"bf16 weights on disk: {weights_mb:.0f} MB ({n_params:,} parameters), device {args.device}"
    )
    for way, r in results.items():
        print(
            f"{way:12s} peak RSS {r['peak_rss_mb']:8.0f} MB   once loaded: "
            f"anon {r['RssAnon']:7.0f} MB, file {r['RssFile']:7.0f} MB"
        )
    base = results["transformers"]["peak_rss_mb"]
    print(f"ratio transformers / tribeflow peak: {base / results['tribeflow']['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
