# per-cluster images + sample -> dataset.h5 (pairs, labels, metadata, folds)


rule dataset:
    input:
        sample=f"{RUN}/sample.ecsv",
        manifests=shard_manifests,
    output:
        f"{RUN}/dataset.h5",
    log:
        f"{RUN}/logs/dataset.log",
    params:
        config=RESOLVED,
        fingerprint=FP["dataset"],
    threads: 1
    resources:
        mem_mb=get_mem_mb(4000),
        runtime=30,
    shell:
        "xclusters dataset --config {params.config} --sample {input.sample} "
        "--manifests {input.manifests} --out {output} --log {log}"
