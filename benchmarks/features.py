"""Feature extraction benchmark: ours vs the reference-equivalent path, one run, one device.

Usage (GPU machine): ``python benchmarks/features.py --size full --device cuda
--dtype bfloat16 --seconds 30 --batch-size 8`` (add ``--text-arch qwen3-0.6b
--video-arch vitl`` for the mini variant). See ``tribe_core.features.bench``.
"""

from tribe_core.features.bench import main

if __name__ == "__main__":
    main()
