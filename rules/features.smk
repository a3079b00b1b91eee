# Stage 3: features into Zarr, with the models and layers the checkpoint's config names.
# These rules are eligible for Snakemake's between-workflow cache (`--cache` with
# SNAKEMAKE_OUTPUT_CACHE): the same stimulus with the same model and parameters is
# never extracted twice across projects. Snakemake forbids `benchmark:` on cached
# rules, so the stage records its own wall time and peak memory in the store's
# attributes (`timing`) and its log.

FEATURE_PARAMS = {
    "checkpoint": config["checkpoint"],
    "device": config["features"].get("device", "cpu"),
    "dtype": config["features"].get("dtype", "float32"),
    "batch_size": config["features"].get("batch_size", 4),
    "store_dtype": config["features"].get("store_dtype", "float32"),
}


rule extract_text_features:
    input:
        events=f"{RESULTS}/{{stimulus}}/events.tsv",
        media=f"{RESULTS}/{{stimulus}}/media.json",
    output:
        store=directory(f"{RESULTS}/{{stimulus}}/features/text.zarr"),
    params:
        modality="text",
        model_override=config["feature_models"].get("text"),
        **FEATURE_PARAMS,
    log:
        f"{RESULTS}/{{stimulus}}/logs/extract_text_features.log",
    threads: 2
    resources:
        mem_mb=res("extract_text_features")["mem_mb"],
        runtime=res("extract_text_features")["runtime"],
        gpu=res("extract_text_features")["gpu"],
    cache: "omit-software"
    conda:
        "../envs/features.yaml"
    script:
        "../workflow_scripts/extract_features.py"


rule extract_audio_features:
    input:
        wav=f"{RESULTS}/{{stimulus}}/audio.wav",
        media=f"{RESULTS}/{{stimulus}}/media.json",
    output:
        store=directory(f"{RESULTS}/{{stimulus}}/features/audio.zarr"),
    params:
        modality="audio",
        model_override=config["feature_models"].get("audio"),
        **FEATURE_PARAMS,
    log:
        f"{RESULTS}/{{stimulus}}/logs/extract_audio_features.log",
    threads: 2
    resources:
        mem_mb=res("extract_audio_features")["mem_mb"],
        runtime=res("extract_audio_features")["runtime"],
        gpu=res("extract_audio_features")["gpu"],
    cache: "omit-software"
    conda:
        "../envs/features.yaml"
    script:
        "../workflow_scripts/extract_features.py"


rule extract_video_features:
    input:
        video=stimulus_path,
        media=f"{RESULTS}/{{stimulus}}/media.json",
    output:
        store=directory(f"{RESULTS}/{{stimulus}}/features/video.zarr"),
    wildcard_constraints:
        stimulus=VIDEO_STIMULI,
    params:
        modality="video",
        model_override=config["feature_models"].get("video"),
        **FEATURE_PARAMS,
    log:
        f"{RESULTS}/{{stimulus}}/logs/extract_video_features.log",
    threads: 2
    resources:
        mem_mb=res("extract_video_features")["mem_mb"],
        runtime=res("extract_video_features")["runtime"],
        gpu=res("extract_video_features")["gpu"],
    cache: "omit-software"
    conda:
        "../envs/features.yaml"
    script:
        "../workflow_scripts/extract_features.py"
