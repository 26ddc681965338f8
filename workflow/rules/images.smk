# shard of the sample -> per-cluster sources, photons, events, band images (Dask inside)


rule build_shard:
    input:
        shard=f"{RUN}/shards/shard_{{shard}}.ecsv",
        neighbours=f"{RUN}/neighbours.ecsv",
    output:
        manifest=f"{RUN}/manifests/shard_{{shard}}.ecsv",
    log:
        f"{RUN}/logs/build_shard_{{shard}}.log",
    params:
        config=RESOLVED,
        fingerprint=FP["build_shard"],
        clusters=f"{RUN}/clusters",
    threads: XC["parallel"]["n_workers"]
    resources:
        mem_mb=get_mem_mb(XC["parallel"]["n_workers"] * XC["parallel"]["memory_per_worker_mb"]),
        runtime=120,
    shell:
        "xclusters build-shard --config {params.config} --shard {input.shard} "
        "--clusters-dir {params.clusters} --manifest {output.manifest} "
        "--neighbours {input.neighbours} "
        "--threads {threads} --mem-mb {resources.mem_mb} --log {log}"
