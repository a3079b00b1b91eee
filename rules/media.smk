# Stage 1: audio from media files; speech from text files.


rule extract_audio:
    input:
        stimulus_path,
    output:
        wav=f"{RESULTS}/{{stimulus}}/audio.wav",
        media=f"{RESULTS}/{{stimulus}}/media.json",
    log:
        f"{RESULTS}/{{stimulus}}/logs/extract_audio.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/extract_audio.tsv"
    wildcard_constraints:
        stimulus=MEDIA_STIMULI,
    conda:
        "../envs/media.yaml"
    threads: 1
    resources:
        mem_mb=res("extract_audio")["mem_mb"],
        runtime=res("extract_audio")["runtime"],
    script:
        "../workflow_scripts/extract_audio.py"


rule synthesize_speech:
    input:
        stimulus_path,
    output:
        wav=f"{RESULTS}/{{stimulus}}/audio.wav",
        media=f"{RESULTS}/{{stimulus}}/media.json",
        transcript=f"{RESULTS}/{{stimulus}}/transcript.json",
    log:
        f"{RESULTS}/{{stimulus}}/logs/synthesize_speech.log",
    benchmark:
        f"{RESULTS}/{{stimulus}}/benchmarks/synthesize_speech.tsv"
    wildcard_constraints:
        stimulus=TEXT_STIMULI,
    conda:
        "../envs/media.yaml"
    threads: 1
    resources:
        mem_mb=res("synthesize_speech")["mem_mb"],
        runtime=res("synthesize_speech")["runtime"],
    params:
        language=stimulus_language,
        engine=config["speech"]["engine"],
    script:
        "../workflow_scripts/synthesize_speech.py"
