# Stage 2: transcription (whisperX or a sidecar transcript) and word events.


rule transcribe:
    input:
        wav=f"{RESULTS}/{{stimulus}}/audio.wav",
        media=f"{RESULTS}/{{stimulus}}/media.json",
        sidecar=sidecar_input,
    output:
        transcript=f"{RESULTS}/{{stimulus}}/transcript.json",
    log:
        f"{RESULTS}/{{stimulus}}/logs/transcribe.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/transcribe.tsv"
    wildcard_constraints:
        stimulus=MEDIA_STIMULI,
    conda:
        "../envs/media.yaml"
    threads: 2
    resources:
        mem_mb=res("transcribe")["mem_mb"],
        runtime=res("transcribe")["runtime"],
        gpu=res("transcribe")["gpu"],
    params:
        language=stimulus_language,
        model=config["transcription"]["model"],
        align_model=config["transcription"]["align_model"],
        device=config["transcription"]["device"],
        compute_type=config["transcription"]["compute_type"],
        batch_size=config["transcription"]["batch_size"],
    script:
        "../workflow_scripts/transcribe.py"


rule annotate_words:
    input:
        transcript=f"{RESULTS}/{{stimulus}}/transcript.json",
        media=f"{RESULTS}/{{stimulus}}/media.json",
    output:
        events=f"{RESULTS}/{{stimulus}}/events.tsv",
    log:
        f"{RESULTS}/{{stimulus}}/logs/annotate_words.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/annotate_words.tsv"
    conda:
        "../envs/media.yaml"
    threads: 1
    resources:
        mem_mb=res("annotate_words")["mem_mb"],
        runtime=res("annotate_words")["runtime"],
    script:
        "../workflow_scripts/annotate_words.py"
