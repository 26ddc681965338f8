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


# training histories (CSVLogger) -> learning-curve figures (issue 16 item 5)
rule learning_curves_superobs:
    input:
        f"{RUN}/models/superobs.history.csv",
    output:
        report(
            f"{RUN}/evaluation/superobs/fig_learning_curves.png",
            caption="../report/superobs_learning_curves.rst",
            category=CATEGORIES["superobs"],
            subcategory="Training",
        ),
    log:
        f"{RUN}/logs/learning_curves_superobs.log",
    threads: 1
    resources:
        mem_mb=get_mem_mb(1000),
        runtime=10,
    shell:
        "xclusters learning-curves --history {input} --out {output} "
        "--title 'Super-observation CNN (paper 000)' "
        "--loss-label 'loss (MAE + morphology + negative-pixel terms)' --log {log}"


rule learning_curves_mass:
    input:
        expand(f"{RUN}/models/mass_fold{{fold}}.history.csv", fold=MASS_FOLDS),
    output:
        report(
            f"{RUN}/evaluation/mass/fig_learning_curves.png",
            caption="../report/mass_learning_curves.rst",
            category=CATEGORIES["mass"],
            subcategory="Training",
        ),
    log:
        f"{RUN}/logs/learning_curves_mass.log",
    threads: 1
    resources:
        mem_mb=get_mem_mb(1000),
        runtime=10,
    shell:
        "xclusters learning-curves --history {input} --out {output} "
        "--title 'Mass CNN (paper 004), one curve per test fold' "
        "--loss-label 'MSE of log10(M500c/Msun) (dex^2)' --log {log}"
