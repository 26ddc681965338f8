# dataset.h5 -> trained models (protected: expensive to rebuild) -> predictions


rule train_superobs:
    input:
        dataset=f"{RUN}/dataset.h5",
    output:
        model=protected(f"{RUN}/models/superobs.keras"),
        history=f"{RUN}/models/superobs.history.csv",
    log:
        f"{RUN}/logs/train_superobs.log",
    params:
        config=RESOLVED,
        fingerprint=FP["train_superobs"],
        workdir=f"{RUN}/models/superobs_work",
    threads: 2
    resources:
        mem_mb=get_mem_mb(6000),
        runtime=240,
    shell:
        "xclusters train-superobs --config {params.config} --dataset {input.dataset} "
        "--out {output.model} --workdir {params.workdir} --threads {threads} --log {log}"


rule train_mass:
    input:
        dataset=f"{RUN}/dataset.h5",
    output:
        model=protected(f"{RUN}/models/mass_fold{{fold}}.keras"),
        history=f"{RUN}/models/mass_fold{{fold}}.history.csv",
    log:
        f"{RUN}/logs/train_mass_fold{{fold}}.log",
    params:
        config=RESOLVED,
        fingerprint=FP["train_mass"],
        workdir=f"{RUN}/models/mass_fold{{fold}}_work",
    threads: 2
    resources:
        mem_mb=get_mem_mb(3000),
        runtime=240,
    shell:
        "xclusters train-mass --config {params.config} --dataset {input.dataset} "
        "--fold {wildcards.fold} --out {output.model} --workdir {params.workdir} --threads {threads} --log {log}"


rule predict_superobs:
    input:
        dataset=f"{RUN}/dataset.h5",
        model=f"{RUN}/models/superobs.keras",
    output:
        f"{RUN}/predictions/superobs_{{split}}.h5",
    log:
        f"{RUN}/logs/predict_superobs_{{split}}.log",
    threads: 2
    resources:
        mem_mb=get_mem_mb(4000),
        runtime=30,
    shell:
        "xclusters predict-dataset --model {input.model} --dataset {input.dataset} "
        "--split {wildcards.split} --out {output} --log {log}"


rule predict_mass:
    input:
        dataset=f"{RUN}/dataset.h5",
        models=expand(f"{RUN}/models/mass_fold{{fold}}.keras", fold=MASS_FOLDS),
    output:
        f"{RUN}/predictions/mass.ecsv",
    log:
        f"{RUN}/logs/predict_mass.log",
    threads: 2
    resources:
        mem_mb=get_mem_mb(3000),
        runtime=30,
    shell:
        "xclusters predict-mass-dataset --dataset {input.dataset} --models {input.models} "
        "--out {output} --log {log}"
