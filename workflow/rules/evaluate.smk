# predictions + dataset -> metric tables and figures for the HTML report


rule evaluate_superobs:
    input:
        dataset=f"{RUN}/dataset.h5",
        predictions=f"{RUN}/predictions/superobs_test.h5",
    output:
        evaluation_outputs("superobs"),
    log:
        f"{RUN}/logs/evaluate_superobs.log",
    params:
        config=RESOLVED,
        fingerprint=FP["evaluate"],
        outdir=output_dir,
    threads: 1
    resources:
        mem_mb=get_mem_mb(4000),
        runtime=30,
    shell:
        "xclusters evaluate-superobs --config {params.config} --dataset {input.dataset} "
        "--predictions {input.predictions} --outdir {params.outdir} --log {log}"


rule evaluate_mass:
    input:
        dataset=f"{RUN}/dataset.h5",
        predictions=f"{RUN}/predictions/mass.ecsv",
        models=expand(f"{RUN}/models/mass_fold{{fold}}.keras", fold=MASS_FOLDS),
    output:
        evaluation_outputs("mass"),
    log:
        f"{RUN}/logs/evaluate_mass.log",
    params:
        config=RESOLVED,
        fingerprint=FP["evaluate"],
        outdir=output_dir,
    threads: 2
    resources:
        mem_mb=get_mem_mb(3000),
        runtime=30,
    shell:
        "xclusters evaluate-mass --config {params.config} --dataset {input.dataset} "
        "--predictions {input.predictions} --models {input.models} --outdir {params.outdir} "
        "--log {log}"


rule evaluate_superobs_trainval:
    input:
        dataset=f"{RUN}/dataset.h5",
        predictions=f"{RUN}/predictions/superobs_trainval.h5",
    output:
        report(
            f"{RUN}/evaluation/superobs_trainval/superobs_table3.md",
            caption="../report/superobs_table3_trainval.rst",
            category=CATEGORIES["superobs"],
            subcategory="Tables",
        ),
        f"{RUN}/evaluation/superobs_trainval/superobs_table3.ecsv",
        f"{RUN}/evaluation/superobs_trainval/summary.json",
    log:
        f"{RUN}/logs/evaluate_superobs_trainval.log",
    params:
        config=RESOLVED,
        fingerprint=FP["evaluate"],
        outdir=output_dir,
    threads: 1
    resources:
        mem_mb=get_mem_mb(4000),
        runtime=30,
    shell:
        "xclusters evaluate-superobs --config {params.config} --dataset {input.dataset} "
        "--predictions {input.predictions} --outdir {params.outdir} --log {log}"
