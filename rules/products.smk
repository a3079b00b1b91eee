# Stage 5: ROI tables, volumes and surfaces, plots and the report.

PRODUCTS = config["products"]


rule roi_table:
    input:
        predictions=f"{RESULTS}/{{stimulus}}/predictions.zarr",
    output:
        timeseries=f"{RESULTS}/{{stimulus}}/rois/roi_timeseries.tsv",
        mean=f"{RESULTS}/{{stimulus}}/rois/roi_mean.tsv",
        top=f"{RESULTS}/{{stimulus}}/rois/roi_top.tsv",
    log:
        f"{RESULTS}/{{stimulus}}/logs/roi_table.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/roi_table.tsv"
    conda:
        "../envs/products.yaml"
    threads: 1
    resources:
        mem_mb=res("roi_table")["mem_mb"],
        runtime=res("roi_table")["runtime"],
    params:
        atlas_dir=str(ATLAS_DIR) if ATLAS_DIR else None,
        rois=PRODUCTS["rois"],
        top_k=PRODUCTS["top_k"],
    script:
        "../workflow_scripts/roi_table.py"


rule volumes:
    input:
        predictions=f"{RESULTS}/{{stimulus}}/predictions.zarr",
    output:
        nifti=f"{RESULTS}/{{stimulus}}/nifti/predictions.nii.gz",
        gifti_lh=f"{RESULTS}/{{stimulus}}/nifti/predictions.lh.func.gii",
        gifti_rh=f"{RESULTS}/{{stimulus}}/nifti/predictions.rh.func.gii",
    log:
        f"{RESULTS}/{{stimulus}}/logs/volumes.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/volumes.tsv"
    conda:
        "../envs/products.yaml"
    threads: 4  # volumes built and gzip-compressed in parallel blocks
    resources:
        mem_mb=res("volumes")["mem_mb"],
        runtime=res("volumes")["runtime"],
    params:
        smoothing_fwhm_mm=PRODUCTS["nifti_smoothing_fwhm_mm"],
    script:
        "../workflow_scripts/volumes.py"


rule plots:
    input:
        predictions=f"{RESULTS}/{{stimulus}}/predictions.zarr",
    output:
        plots=directory(f"{RESULTS}/{{stimulus}}/plots"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/plots.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/plots.tsv"
    conda:
        "../envs/products.yaml"
    threads: 4 if PRODUCTS["movie"] else 1  # movie frames in parallel
    resources:
        mem_mb=res("plots")["mem_mb"],
        runtime=res("plots")["runtime"],
    params:
        trs=PRODUCTS["plot_trs"],
        views=PRODUCTS["plot_views"],
        cmap=PRODUCTS["cmap"],
        movie=PRODUCTS["movie"],
    script:
        "../workflow_scripts/plots.py"


rule report:
    input:
        predictions=f"{RESULTS}/{{stimulus}}/predictions.zarr",
        events=f"{RESULTS}/{{stimulus}}/events.tsv",
        plots=f"{RESULTS}/{{stimulus}}/plots",
    output:
        html=report(
            f"{RESULTS}/{{stimulus}}/report.html",
            category="{stimulus}",
            caption="../docs/report_caption.rst",
        ),
    log:
        f"{RESULTS}/{{stimulus}}/logs/report.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/report.tsv"
    conda:
        "../envs/products.yaml"
    threads: 1
    resources:
        mem_mb=res("report")["mem_mb"],
        runtime=res("report")["runtime"],
    params:
        stimulus_path=stimulus_path,
    script:
        "../workflow_scripts/report.py"


rule contributions:
    input:
        unpack(feature_inputs),
        events=f"{RESULTS}/{{stimulus}}/events.tsv",
        media=f"{RESULTS}/{{stimulus}}/media.json",
        checkpoint_config=checkpoint_config_input,
    output:
        directory(f"{RESULTS}/{{stimulus}}/contributions"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/contributions.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/contributions.tsv"
    conda:
        "../envs/encoder.yaml"
    threads: 2
    resources:
        mem_mb=res("contributions")["mem_mb"],
        runtime=res("contributions")["runtime"],
        gpu=res("contributions")["gpu"],
    params:
        # uncompiled, as contributions have always run (predict.compile is predict's)
        **{**PREDICT_SETTINGS, "compile": False},
    script:
        "../workflow_scripts/contributions.py"


rule evaluate:
    input:
        predictions=f"{RESULTS}/{{stimulus}}/predictions.zarr",
        real_fmri=lambda wc: PRODUCTS["real_fmri"][wc.stimulus],
    output:
        directory(f"{RESULTS}/{{stimulus}}/evaluation"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/evaluate.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/evaluate.tsv"
    conda:
        "../envs/products.yaml"
    threads: 1
    resources:
        mem_mb=res("evaluate")["mem_mb"],
        runtime=res("evaluate")["runtime"],
    params:
        top_k=PRODUCTS["retrieval_top_k"],
    script:
        "../workflow_scripts/evaluate.py"
