# Stage 0: pretrained files (ImageNet VGG16, the structured-edge model) fetched on the machine Snakemake runs on,
# before any GPU job: compute nodes of many clusters are offline (kdwsd.stages.pretrained).

if DOWNLOADS["files"]:

    rule fetch_pretrained:
        # no code=lib(...) input, as download_archive: editing the library must not fetch 528 MB again
        output:
            file=f"{DOWNLOADS['dir']}/{{filename}}",
        params:
            url=lambda w: fetched_spec(w.filename)["url"],
            sha256=lambda w: fetched_spec(w.filename)["sha256"],
            hash_prefix=lambda w: fetched_spec(w.filename)["hash_prefix"],
        wildcard_constraints:
            # only the configured names: nothing else under downloads.dir is this rule's
            filename="|".join(re.escape(os.path.basename(fetched_file(k))) for k in DOWNLOADS["files"]),
        localrule: True
        retries: 2
        resources:
            downloads=1,
        conda:
            "../../envs/kdwsd.yaml"
        log:
            f"{DOWNLOADS['dir']}/logs/fetch_{{filename}}.log",
        script:
            "../../scripts/fetch_pretrained.py"
