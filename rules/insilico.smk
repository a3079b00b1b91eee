# In-silico experiments across the stimulus set: a response map per stimulus, contrasts
# between the sample sheet's conditions, group tables, evaluation against a lab's fMRIPrep
# data. Targets: insilico_targets() (contrasts and group tables when `contrasts` is set,
# the evaluation when `fmriprep.dir` is set).


include: "insilico_common.smk"


rule insilico_response:
    input:
        predictions=f"{RESULTS}/{{stimulus}}/predictions.zarr",
    output:
        f"{RESULTS}/{{stimulus}}/insilico/response.npz",
    log:
        f"{RESULTS}/{{stimulus}}/logs/insilico_response.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/insilico_response.tsv"
    conda:
        "../envs/products.yaml"
    threads: 1
    resources:
        mem_mb=res("insilico_response")["mem_mb"],
        runtime=res("insilico_response")["runtime"],
    params:
        window_trs=INSILICO["window_trs"],
    script:
        "../workflow_scripts/insilico_response.py"


rule insilico_contrast:
    input:
        responses=contrast_responses,
    output:
        directory(f"{INSILICO_DIR}/contrasts/{{contrast}}"),
    log:
        f"{INSILICO_DIR}/logs/contrast_{{contrast}}.log",
    benchmark:
        f"{INSILICO_DIR}/benchmarks/contrast_{{contrast}}.tsv"
    conda:
        "../envs/products.yaml"
    threads: 2  # the two NIfTI maps are built and compressed in parallel blocks
    resources:
        mem_mb=res("insilico_contrast")["mem_mb"],
        runtime=res("insilico_contrast")["runtime"],
    params:
        # Only this contrast's stimuli, groups and covariates: relabelling a stimulus
        # reruns the contrasts whose groups change, nothing else.
        stimuli=contrast_stimuli,
        groups=lambda wc: DESIGNS[wc.contrast][0],
        covariates=lambda wc: DESIGNS[wc.contrast][1],
        description=lambda wc: CONTRASTS[wc.contrast].describe(),
        atlas_dir=str(ATLAS_DIR) if ATLAS_DIR else None,
        n_permutations=INSILICO["n_permutations"],
        correction=INSILICO["correction"],
        alpha=INSILICO["alpha"],
        seed=INSILICO["seed"],
        statistic=INSILICO["statistic"],
        tail=INSILICO["tail"],
        top_k=INSILICO["top_k"],
        window_trs=INSILICO["window_trs"],
    script:
        "../workflow_scripts/insilico_contrast.py"


rule insilico_roi_matrix:
    input:
        responses=[stimulus_response(s) for s in STIMULI],
    output:
        f"{INSILICO_DIR}/group/stimulus_roi.tsv",
    log:
        f"{INSILICO_DIR}/logs/roi_matrix.log",
    benchmark:
        f"{INSILICO_DIR}/benchmarks/roi_matrix.tsv"
    conda:
        "../envs/products.yaml"
    threads: 1
    resources:
        mem_mb=res("insilico_roi_matrix")["mem_mb"],
        runtime=res("insilico_roi_matrix")["runtime"],
    params:
        stimuli=list(STIMULI),
        atlas_dir=str(ATLAS_DIR) if ATLAS_DIR else None,
    script:
        "../workflow_scripts/insilico_roi_matrix.py"


rule insilico_rdm:
    input:
        responses=[stimulus_response(s) for s in STIMULI],
    output:
        tsv=f"{INSILICO_DIR}/group/rdm.tsv",
        png=f"{INSILICO_DIR}/group/rdm.png",
    log:
        f"{INSILICO_DIR}/logs/rdm.log",
    benchmark:
        f"{INSILICO_DIR}/benchmarks/rdm.tsv"
    conda:
        "../envs/products.yaml"
    threads: 1
    resources:
        mem_mb=res("insilico_rdm")["mem_mb"],
        runtime=res("insilico_rdm")["runtime"],
    params:
        stimuli=list(STIMULI),
        atlas_dir=str(ATLAS_DIR) if ATLAS_DIR else None,
        rois=INSILICO["rdm_rois"],
        space=INSILICO["rdm_space"],
    script:
        "../workflow_scripts/insilico_rdm.py"


rule insilico_fmriprep_evaluation:
    input:
        predictions=f"{RESULTS}/{{stimulus}}/predictions.zarr",
        bold=fmriprep_inputs,
    output:
        directory(f"{RESULTS}/{{stimulus}}/insilico/fmriprep"),
    log:
        f"{RESULTS}/{{stimulus}}/logs/insilico_fmriprep_evaluation.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/insilico_fmriprep_evaluation.tsv"
    conda:
        "../envs/products.yaml"
    threads: 1
    resources:
        mem_mb=res("insilico_fmriprep_evaluation")["mem_mb"],
        runtime=res("insilico_fmriprep_evaluation")["runtime"],
    params:
        occurrences=lambda wc: [o.as_dict() for o in OCCURRENCES[wc.stimulus]],
        atlas_dir=str(ATLAS_DIR) if ATLAS_DIR else None,
        hemodynamic_offset_s=FMRIPREP["hemodynamic_offset_s"],
        detrend=FMRIPREP["detrend"],
        seed=INSILICO["seed"],
    script:
        "../workflow_scripts/insilico_fmriprep_evaluation.py"
