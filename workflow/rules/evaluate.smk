# predictions + dataset -> metric tables and figures for the HTML report


rule evaluate_superobs:
    input:
        dataset=f"{RUN}/dataset.h5",
        predictions=f"{RUN}/predictions/superobs_test.h5",
    output:
        report(
            f"{RUN}/evaluation/superobs/superobs_table3.md",
            caption="../report/superobs_table3.rst",
            category="Super observation (paper 000)",
            subcategory="Tables",
        ),
        report(
            f"{RUN}/evaluation/superobs/superobs_classification.md",
            caption="../report/superobs_classification.rst",
            category="Super observation (paper 000)",
            subcategory="Tables",
        ),
        f"{RUN}/evaluation/superobs/superobs_table3.ecsv",
        report(
            f"{RUN}/evaluation/superobs/fig_superobs_grid.png",
            caption="../report/fig_superobs_grid.rst",
            category="Super observation (paper 000)",
            subcategory="Images",
        ),
        report(
            f"{RUN}/evaluation/superobs/fig_concentration.png",
            caption="../report/fig_concentration.rst",
            category="Super observation (paper 000)",
            subcategory="Morphology",
        ),
        report(
            f"{RUN}/evaluation/superobs/fig_asymmetry.png",
            caption="../report/fig_asymmetry.rst",
            category="Super observation (paper 000)",
            subcategory="Morphology",
        ),
        report(
            f"{RUN}/evaluation/superobs/fig_smoothness.png",
            caption="../report/fig_smoothness.rst",
            category="Super observation (paper 000)",
            subcategory="Morphology",
        ),
        report(
            f"{RUN}/evaluation/superobs/fig_flux.png",
            caption="../report/fig_flux.rst",
            category="Super observation (paper 000)",
            subcategory="Flux",
        ),
        report(
            f"{RUN}/evaluation/superobs/fig_mass_dependence.png",
            caption="../report/fig_mass_dependence.rst",
            category="Super observation (paper 000)",
            subcategory="Morphology",
        ),
    log:
        f"{RUN}/logs/evaluate_superobs.log",
    params:
        config=RESOLVED,
        outdir=f"{RUN}/evaluation/superobs",
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
        report(
            f"{RUN}/evaluation/mass/mass_summary.md",
            caption="../report/mass_summary.rst",
            category="Mass (paper 004)",
            subcategory="Tables",
        ),
        report(
            f"{RUN}/evaluation/mass/fig_mass_true_pred.png",
            caption="../report/fig_mass_true_pred.rst",
            category="Mass (paper 004)",
            subcategory="Figures",
        ),
        report(
            f"{RUN}/evaluation/mass/fig_mass_delta.png",
            caption="../report/fig_mass_delta.rst",
            category="Mass (paper 004)",
            subcategory="Figures",
        ),
        f"{RUN}/evaluation/mass/lx_baseline.ecsv",
    log:
        f"{RUN}/logs/evaluate_mass.log",
    params:
        config=RESOLVED,
        outdir=f"{RUN}/evaluation/mass",
    threads: 2
    resources:
        mem_mb=get_mem_mb(3000),
        runtime=30,
    shell:
        "xclusters evaluate-mass --config {params.config} --dataset {input.dataset} "
        "--predictions {input.predictions} --models {input.models} --outdir {params.outdir} "
        "--log {log}"
