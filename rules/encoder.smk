# Stage 4: segmented TRIBE v2 encoder inference.

# The encoder's settings (tribe_core.stages.PredictSettings), for predict and contributions.
PREDICT_SETTINGS = {"checkpoint": config["checkpoint"], **config["predict"]}


rule predict:
    input:
        unpack(feature_inputs),
        events=f"{RESULTS}/{{stimulus}}/events.tsv",
        media=f"{RESULTS}/{{stimulus}}/media.json",
        checkpoint_config=checkpoint_config_input,
    output:
        predictions=directory(f"{RESULTS}/{{stimulus}}/predictions.zarr"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/predict.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/predict.tsv"
    conda:
        "../envs/encoder.yaml"
    threads: 2
    resources:
        mem_mb=res("predict")["mem_mb"],
        runtime=res("predict")["runtime"],
        gpu=res("predict")["gpu"],
    params:
        **PREDICT_SETTINGS,
    script:
        "../workflow_scripts/predict.py"
