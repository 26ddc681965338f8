# halo catalogue -> sample.ecsv -> shards (checkpoint)


rule sample:
    output:
        sample=f"{RUN}/sample.ecsv",
        neighbours=f"{RUN}/neighbours.ecsv",
    log:
        f"{RUN}/logs/sample.log",
    params:
        config=RESOLVED,
        fingerprint=FP["sample"],
    threads: 1
    resources:
        mem_mb=get_mem_mb(1000),
        runtime=10,
    shell:
        "xclusters sample --config {params.config} --out {output.sample} "
        "--neighbours {output.neighbours} --log {log}"


checkpoint shards:
    input:
        f"{RUN}/sample.ecsv",
    output:
        directory(f"{RUN}/shards"),
    log:
        f"{RUN}/logs/shards.log",
    params:
        shard_size=XC["parallel"]["shard_size"],
    threads: 1
    resources:
        mem_mb=get_mem_mb(500),
        runtime=5,
    shell:
        "xclusters shard --sample {input} --shard-size {params.shard_size} "
        "--outdir {output} --log {log}"
