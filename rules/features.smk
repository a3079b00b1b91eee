# Stage 3: features into Zarr, with the models and layers the checkpoint's config names.
# These rules are eligible for Snakemake's between-workflow cache (`--cache` with
# SNAKEMAKE_OUTPUT_CACHE): the same stimulus with the same model and parameters is
# never extracted twice across projects. Snakemake forbids `benchmark:` on cached
# rules, so the stage records its own wall time and peak memory in the store's
# attributes (`timing`) and its log.

FEATURE_PARAMS = {
    "checkpoint": config["checkpoint"],
    "device": config["features"].get("device", "cpu"),
    "batch_size": config["features"].get("batch_size", 4),
    "store_dtype": config["features"].get("store_dtype", "float32"),
}
# Compute dtype per modality (features.dtype: one dtype, or one per modality).
FEATURE_DTYPES = {m: modality_dtype(config["features"].get("dtype"), m) for m in MODALITIES}
# Contents of local model directories (config, tokenizer, weight sizes): a model
# replaced in place at the same path reruns its feature jobs.
MODEL_HASHES = feature_model_fingerprints(config["checkpoint"], config["feature_models"])

# `features.video_shards` > 1: each video stimulus' features are computed by that many
# time-shard jobs (whole 60 s chunks each, one GPU each) and merged into the same
# video.zarr; == 1: one job (extract_video_features). The wildcard constraints let
# exactly one of the two ways produce video.zarr.
VIDEO_SHARDS = int(config["features"].get("video_shards", 1))
NO_STIMULUS = "(?!x)x"
UNSHARDED_VIDEO_STIMULI = VIDEO_STIMULI if VIDEO_SHARDS == 1 else NO_STIMULUS
SHARDED_VIDEO_STIMULI = VIDEO_STIMULI if VIDEO_SHARDS > 1 else NO_STIMULUS


rule extract_text_features:
    input:
        events=f"{RESULTS}/{{stimulus}}/events.tsv",
        media=f"{RESULTS}/{{stimulus}}/media.json",
        checkpoint_config=checkpoint_config_input,
    output:
        store=directory(f"{RESULTS}/{{stimulus}}/features/text.zarr"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/extract_text_features.log",
    cache: "omit-software"
    conda:
        "../envs/features.yaml"
    threads: 2
    resources:
        mem_mb=res("extract_text_features")["mem_mb"],
        runtime=res("extract_text_features")["runtime"],
        gpu=res("extract_text_features")["gpu"],
    params:
        **FEATURE_PARAMS,
        modality="text",
        dtype=FEATURE_DTYPES["text"],
        context_stride=config["features"].get("text_context_stride", 1),
        model_override=config["feature_models"].get("text"),
        model_hash=MODEL_HASHES["text"],
    script:
        "../workflow_scripts/extract_features.py"


rule extract_audio_features:
    input:
        wav=f"{RESULTS}/{{stimulus}}/audio.wav",
        media=f"{RESULTS}/{{stimulus}}/media.json",
        checkpoint_config=checkpoint_config_input,
    output:
        store=directory(f"{RESULTS}/{{stimulus}}/features/audio.zarr"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/extract_audio_features.log",
    cache: "omit-software"
    conda:
        "../envs/features.yaml"
    threads: 2
    resources:
        mem_mb=res("extract_audio_features")["mem_mb"],
        runtime=res("extract_audio_features")["runtime"],
        gpu=res("extract_audio_features")["gpu"],
    params:
        **FEATURE_PARAMS,
        modality="audio",
        dtype=FEATURE_DTYPES["audio"],
        model_override=config["feature_models"].get("audio"),
        model_hash=MODEL_HASHES["audio"],
    script:
        "../workflow_scripts/extract_features.py"


rule extract_video_features:
    input:
        video=stimulus_path,
        media=f"{RESULTS}/{{stimulus}}/media.json",
        checkpoint_config=checkpoint_config_input,
    output:
        store=directory(f"{RESULTS}/{{stimulus}}/features/video.zarr"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/extract_video_features.log",
    wildcard_constraints:
        stimulus=UNSHARDED_VIDEO_STIMULI,
    cache: "omit-software"
    conda:
        "../envs/features.yaml"
    threads: 2
    resources:
        mem_mb=res("extract_video_features")["mem_mb"],
        runtime=res("extract_video_features")["runtime"],
        gpu=res("extract_video_features")["gpu"],
    params:
        **FEATURE_PARAMS,
        modality="video",
        dtype=FEATURE_DTYPES["video"],
        model_override=config["feature_models"].get("video"),
        model_hash=MODEL_HASHES["video"],
    script:
        "../workflow_scripts/extract_features.py"


rule extract_video_features_shard:
    input:
        video=stimulus_path,
        media=f"{RESULTS}/{{stimulus}}/media.json",
        checkpoint_config=checkpoint_config_input,
    output:
        store=directory(f"{RESULTS}/{{stimulus}}/features/video.shards/{{shard}}.zarr"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/extract_video_features_shard.{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/extract_video_features_shard.{{shard}}.tsv"
    wildcard_constraints:
        stimulus=SHARDED_VIDEO_STIMULI,
        shard=r"\d+",
    conda:
        "../envs/features.yaml"
    threads: 2
    resources:
        mem_mb=res("extract_video_features_shard")["mem_mb"],
        runtime=res("extract_video_features_shard")["runtime"],
        # one GPU per shard job when features run on CUDA (bound by tribe_core.devices)
        gpu=(
            max(1, res("extract_video_features_shard")["gpu"])
            if FEATURE_PARAMS["device"].startswith("cuda")
            else res("extract_video_features_shard")["gpu"]
        ),
    params:
        **{k: v for k, v in FEATURE_PARAMS.items() if k != "store_dtype"},
        n_shards=VIDEO_SHARDS,
        dtype=FEATURE_DTYPES["video"],
        model_override=config["feature_models"].get("video"),
        model_hash=MODEL_HASHES["video"],
    script:
        "../workflow_scripts/extract_video_shard.py"


rule merge_video_features:
    input:
        shards=expand(
            f"{RESULTS}/{{{{stimulus}}}}/features/video.shards/{{shard}}.zarr",
            shard=range(VIDEO_SHARDS),
        ),
    output:
        store=directory(f"{RESULTS}/{{stimulus}}/features/video.zarr"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/merge_video_features.log",
    wildcard_constraints:
        stimulus=SHARDED_VIDEO_STIMULI,
    cache: "omit-software"
    conda:
        "../envs/features.yaml"
    threads: 1
    resources:
        mem_mb=res("merge_video_features")["mem_mb"],
        runtime=res("merge_video_features")["runtime"],
    params:
        store_dtype=FEATURE_PARAMS["store_dtype"],
    script:
        "../workflow_scripts/merge_video_shards.py"
