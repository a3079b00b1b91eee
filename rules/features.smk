# Stage 3: features into Zarr, with the models and layers the checkpoint's config names.
# The feature rules are eligible for Snakemake's between-workflow cache (`--cache` with
# SNAKEMAKE_OUTPUT_CACHE): the same stimulus with the same model and parameters is
# never extracted twice across projects. Snakemake forbids `benchmark:` on cached
# rules, so the stage records its own wall time and peak memory in the store's
# attributes (`timing`) and its log.

FEATURES = config["features"]
FEATURE_PARAMS = {
    "checkpoint": config["checkpoint"],
    "device": FEATURES["device"],
    "batch_size": FEATURES["batch_size"],
}
# Compute dtype per modality (features.dtype: one dtype, or one per modality).
FEATURE_DTYPES = {m: modality_dtype(FEATURES["dtype"], m) for m in MODALITIES}
# Contents of local model directories (config, tokenizer, weight sizes): a model
# replaced in place at the same path reruns its feature jobs.
MODEL_HASHES = feature_model_fingerprints(config["checkpoint"], config["feature_models"])

# `features.video_shards` > 1: each video stimulus' features are computed by that many
# time-shard jobs (whole 60 s chunks each, one GPU each) and merged into the same
# video.zarr; == 1: one job (extract_video_features). The wildcard constraints let
# exactly one of the two ways produce video.zarr.
VIDEO_SHARDS = FEATURES["video_shards"]
NO_STIMULUS = "(?!x)x"
UNSHARDED_VIDEO_STIMULI = VIDEO_STIMULI if VIDEO_SHARDS == 1 else NO_STIMULUS
SHARDED_VIDEO_STIMULI = VIDEO_STIMULI if VIDEO_SHARDS > 1 else NO_STIMULUS

# What each modality's features are computed from, for which stimuli, and the settings
# of that modality only (the other modalities' jobs stay put when they change).
FEATURE_SOURCES = {
    "text": f"{RESULTS}/{{stimulus}}/events.tsv",
    "audio": f"{RESULTS}/{{stimulus}}/audio.wav",
    "video": stimulus_path,
}
FEATURE_STIMULI = {"text": ANY_STIMULUS, "audio": ANY_STIMULUS, "video": UNSHARDED_VIDEO_STIMULI}
MODALITY_PARAMS = {
    "text": {"context_stride": FEATURES["text_context_stride"], "fused": FEATURES["fused"]},
    "audio": {},
    "video": {"fused": FEATURES["fused"]},
}


# extract_text_features, extract_audio_features, extract_video_features
for modality in MODALITIES:

    rule:
        name:
            f"extract_{modality}_features"
        input:
            source=FEATURE_SOURCES[modality],
            media=f"{RESULTS}/{{stimulus}}/media.json",
            checkpoint_config=checkpoint_config_input,
        output:
            store=directory(f"{RESULTS}/{{stimulus}}/features/{modality}.zarr"),
        log:
            f"{RESULTS}/{{stimulus}}/logs/extract_{modality}_features.log",
        wildcard_constraints:
            stimulus=FEATURE_STIMULI[modality],
        cache: "omit-software"
        conda:
            "../envs/features.yaml"
        threads: 2
        resources:
            mem_mb=res(f"extract_{modality}_features")["mem_mb"],
            runtime=res(f"extract_{modality}_features")["runtime"],
            gpu=res(f"extract_{modality}_features")["gpu"],
        params:
            **FEATURE_PARAMS,
            **MODALITY_PARAMS[modality],
            modality=modality,
            dtype=FEATURE_DTYPES[modality],
            store_dtype=FEATURES["store_dtype"],
            model_override=config["feature_models"][modality],
            model_hash=MODEL_HASHES[modality],
        script:
            "../workflow_scripts/extract_features.py"


rule extract_video_shard:
    input:
        video=stimulus_path,
        media=f"{RESULTS}/{{stimulus}}/media.json",
        checkpoint_config=checkpoint_config_input,
    output:
        store=directory(f"{RESULTS}/{{stimulus}}/features/video.shards/{{shard}}.zarr"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/extract_video_shard.{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/extract_video_shard.{{shard}}.tsv"
    wildcard_constraints:
        stimulus=SHARDED_VIDEO_STIMULI,
        shard=r"\d+",
    conda:
        "../envs/features.yaml"
    threads: 2
    resources:
        mem_mb=res("extract_video_shard")["mem_mb"],
        runtime=res("extract_video_shard")["runtime"],
        # one GPU per shard job when features run on CUDA (bound by tribe_core.devices)
        gpu=(
            max(1, res("extract_video_shard")["gpu"])
            if FEATURE_PARAMS["device"].startswith("cuda")
            else res("extract_video_shard")["gpu"]
        ),
    params:
        **FEATURE_PARAMS,
        n_shards=VIDEO_SHARDS,
        fused=FEATURES["fused"],
        dtype=FEATURE_DTYPES["video"],
        model_override=config["feature_models"]["video"],
        model_hash=MODEL_HASHES["video"],
    script:
        "../workflow_scripts/extract_video_shard.py"


rule merge_video_shards:
    input:
        shards=expand(
            f"{RESULTS}/{{{{stimulus}}}}/features/video.shards/{{shard}}.zarr",
            shard=range(VIDEO_SHARDS),
        ),
    output:
        store=directory(f"{RESULTS}/{{stimulus}}/features/video.zarr"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/merge_video_shards.log",
    wildcard_constraints:
        stimulus=SHARDED_VIDEO_STIMULI,
    cache: "omit-software"
    conda:
        "../envs/features.yaml"
    threads: 1
    resources:
        mem_mb=res("merge_video_shards")["mem_mb"],
        runtime=res("merge_video_shards")["runtime"],
    params:
        store_dtype=FEATURES["store_dtype"],
    script:
        "../workflow_scripts/merge_video_shards.py"
