# Stage 4: segmented TRIBE v2 encoder inference.


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
        checkpoint=config["checkpoint"],
        device=config["predict"].get("device", "cpu"),
        precision=config["predict"].get("precision", "fp32"),
        batch_size=config["predict"].get("batch_size", 8),
        duration_trs=config["predict"].get("duration_trs", 100),
        overlap_trs=config["predict"].get("overlap_trs", 0),
        compile=config["predict"].get("compile", False),
    script:
        "../workflow_scripts/predict.py"
