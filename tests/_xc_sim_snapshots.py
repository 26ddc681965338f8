"""Tiny simulation snapshots of one cluster, written in real formats for yt's own frontends.

* :func:`write_gadget2_binary` - a Gadget-2 snapshot in the default binary format (SnapFormat
  1: Fortran-record blocks, a 256-byte header, then POS, VEL, ID, MASS, U, RHO, HSML; Gadget-2
  user guide sec. 6.4 and yt's ``gadget_header_specs["default"]`` / ``gadget_field_specs``).
  Particle types: ``Gas`` and ``Halo`` (dark matter).
* :func:`write_gadget_hdf5` - the same in Gadget's HDF5 layout (``PartType0/1``), with
  ``StarFormationRate`` and ``Metallicity`` for the gas.
* :func:`write_arepo_hdf5` - an Arepo / IllustrisTNG-style snapshot: moving-mesh cells
  (``Masses``, ``Density``, no ``SmoothingLength``: yt derives it from the cell volume),
  ``GFM_Metallicity``, ``StarFormationRate`` and a ``Config`` group with ``VORONOI``.

The cluster (:class:`ClusterModel`): gas in a cusped beta model (a cool core) with a V06
cool-core temperature profile, equal-mass particles drawn from it (density = the analytic
density at the particle, smoothing lengths enclosing ``n_ngb`` neighbours), NFW dark matter
around the same centre, a dense cold clump 1.3 Mpc away (the densest gas, as in the real
Gadget-2 zoom of DESIGN.md "More facts") and, in the HDF5 files, 3 % star-forming gas.
Code units are Gadget's: kpc/h comoving, 1e10 Msun/h, km/s.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

#: proton mass [g], keV [erg], mean molecular weight of ionised primordial gas
MP_G, KEV_ERG, MU = 1.6726e-24, 1.602177e-9, 0.59
#: yt's solar metallicity (mass fraction) behind the unit Zsun
ZSUN_MASS_FRACTION = 0.01295


@dataclass
class ClusterModel:
    """A spherical cool-core cluster (physical kpc, Msun, keV) at ``centre`` (kpccm/h)."""

    redshift: float = 0.05
    hubble: float = 0.7
    box_ckpc_h: float = 20000.0
    centre_ckpc_h: tuple = (10000.0, 10000.0, 10000.0)
    r500c_kpc: float = 680.0
    m500c_msun: float = 1.0e14
    gas_mass_msun: float = 1.0e13       # within r_max_kpc
    rc_kpc: float = 60.0
    beta: float = 0.6
    alpha: float = 0.6                  # central cusp, n ~ r^(-alpha/2) (V06 eq. 3)
    r_max_kpc: float = 1500.0
    kT500_keV: float = 2.5
    dm_mass_msun: float = 1.0e14        # within r_max_kpc
    dm_rs_kpc: float = 250.0
    n_gas: int = 20000
    n_dm: int = 20000
    n_ngb: int = 32
    clump_offset_kpc: tuple = (1300.0, 0.0, 0.0)
    n_clump: int = 200
    metallicity_zsun: float = 0.3
    seed: int = 11
    extra: dict = field(default_factory=dict)

    # ---- analytic profiles (physical kpc)
    def density_shape(self, r_kpc):
        x = np.maximum(np.asarray(r_kpc, float), 1e-3) / self.rc_kpc
        return x ** (-self.alpha / 2) / (1 + x * x) ** (1.5 * self.beta - self.alpha / 4)

    def kT_keV(self, r_kpc):
        """V06 eq. 8 cool-core temperature profile scaled to kT500."""
        x = np.asarray(r_kpc, float) / self.r500c_kpc
        y = (x / 0.045) ** 1.9
        return self.kT500_keV * 1.35 * (y + 0.45) / (y + 1) / (1 + (x / 0.6) ** 2) ** 0.45

    def _radial_table(self):
        r = np.logspace(-2, np.log10(self.r_max_kpc), 4000)
        dm = 4 * np.pi * r**2 * self.density_shape(r)
        cum = np.concatenate([[0], np.cumsum(0.5 * (dm[1:] + dm[:-1]) * np.diff(r))])
        return r, cum

    def rho0_msun_kpc3(self):
        r, cum = self._radial_table()
        return self.gas_mass_msun / cum[-1]

    def gas_density_msun_kpc3(self, r_kpc):
        return self.rho0_msun_kpc3() * self.density_shape(r_kpc)

    # ---- particles (physical kpc offsets from the centre)
    def gas_particles(self, rng):
        r, cum = self._radial_table()
        rad = np.interp(rng.uniform(0, cum[-1], self.n_gas), cum, r)
        d = rng.standard_normal((self.n_gas, 3))
        d /= np.linalg.norm(d, axis=1)[:, None]
        off = rad[:, None] * d
        m = np.full(self.n_gas, self.gas_mass_msun / self.n_gas)
        rho = self.gas_density_msun_kpc3(rad)
        hsml = (3 * self.n_ngb * m / (4 * np.pi * rho)) ** (1 / 3)   # kernel support radius
        return off, m, rho, hsml, self.kT_keV(rad)

    def dm_particles(self, rng):
        r = np.logspace(-1, np.log10(self.r_max_kpc), 4000)
        x = r / self.dm_rs_kpc
        cum = np.log(1 + x) - x / (1 + x)
        rad = np.interp(rng.uniform(0, cum[-1], self.n_dm), cum, r)
        d = rng.standard_normal((self.n_dm, 3))
        d /= np.linalg.norm(d, axis=1)[:, None]
        return rad[:, None] * d, np.full(self.n_dm, self.dm_mass_msun / self.n_dm)

    def clump_particles(self, rng, gas_particle_mass):
        off = np.asarray(self.clump_offset_kpc) + rng.normal(0, 5.0, (self.n_clump, 3))
        m = np.full(self.n_clump, gas_particle_mass)
        rho = np.full(self.n_clump, 50 * self.gas_density_msun_kpc3(1.0))  # densest gas
        hsml = (3 * self.n_ngb * m / (4 * np.pi * rho)) ** (1 / 3)
        return off, m, rho, hsml, np.full(self.n_clump, 0.02)               # cold

    def realise(self):
        """All particles in code units: a dict of arrays per type (``gas``, ``dm``)."""
        rng = np.random.default_rng(self.seed)
        a, h = 1 / (1 + self.redshift), self.hubble
        to_code_len = h / a                               # physical kpc -> kpccm/h
        to_code_mass = h / 1e10                           # Msun -> 1e10 Msun/h
        to_code_rho = to_code_mass / to_code_len**3
        off, m, rho, hsml, kt = self.gas_particles(rng)
        coff, cm, crho, chsml, ckt = self.clump_particles(rng, m[0])
        off, m, rho = np.concatenate([off, coff]), np.concatenate([m, cm]), \
            np.concatenate([rho, crho])
        hsml, kt = np.concatenate([hsml, chsml]), np.concatenate([kt, ckt])
        sfr = np.zeros(len(m))
        sfr[rng.uniform(size=len(m)) < 0.03] = 0.5
        centre = np.asarray(self.centre_ckpc_h)
        gas = {"pos": (centre + off * to_code_len) % self.box_ckpc_h,
               "vel": rng.normal(0, 200, (len(m), 3)), "mass": m * to_code_mass,
               "rho": rho * to_code_rho, "hsml": hsml * to_code_len,
               # Gadget's InternalEnergy: (km/s)^2 per unit mass, u = kT / ((gamma-1) mu m_p)
               "u": kt * KEV_ERG / ((5 / 3 - 1) * MU * MP_G) / 1e10, "kT": kt, "sfr": sfr,
               "hot": (kt > 0.1) & (sfr == 0), "offset_kpc": off}
        doff, dmass = self.dm_particles(rng)
        dm = {"pos": (centre + doff * to_code_len) % self.box_ckpc_h,
              "vel": rng.normal(0, 500, (len(dmass), 3)), "mass": dmass * to_code_mass}
        return gas, dm


def _header_values(model: ClusterModel, npart):
    return {"Npart": npart, "Massarr": [0.0] * 6, "Time": 1 / (1 + model.redshift),
            "Redshift": model.redshift, "BoxSize": model.box_ckpc_h, "Omega0": 0.3,
            "OmegaLambda": 0.7, "HubbleParam": model.hubble}


def write_gadget2_binary(path: Path, model: ClusterModel | None = None):
    """Gadget-2 SnapFormat 1 binary (little endian, float32, uint32 ids). Returns the truth."""
    model = model or ClusterModel()
    gas, dm = model.realise()
    ng, nd = len(gas["mass"]), len(dm["mass"])
    npart = [ng, nd, 0, 0, 0, 0]
    hv = _header_values(model, npart)
    head = struct.pack("<6i6dddii6iiiddddii6i", *npart, *hv["Massarr"], hv["Time"],
                       hv["Redshift"], 0, 0, *npart, 0, 1, hv["BoxSize"], hv["Omega0"],
                       hv["OmegaLambda"], hv["HubbleParam"], 0, 0, *([0] * 6))
    head += b"\0" * (256 - len(head))

    def block(arr):
        b = np.ascontiguousarray(arr).tobytes()
        return struct.pack("<i", len(b)) + b + struct.pack("<i", len(b))

    f32 = np.float32
    with open(path, "wb") as f:
        f.write(block(np.frombuffer(head, np.uint8)))
        f.write(block(np.concatenate([gas["pos"], dm["pos"]]).astype(f32)))
        f.write(block(np.concatenate([gas["vel"], dm["vel"]]).astype(f32)))
        f.write(block(np.arange(ng + nd, dtype=np.uint32)))
        f.write(block(np.concatenate([gas["mass"], dm["mass"]]).astype(f32)))
        f.write(block(gas["u"].astype(f32)))
        f.write(block(gas["rho"].astype(f32)))
        f.write(block(gas["hsml"].astype(f32)))
    return model, gas, dm


def _write_hdf5_header(f, model, npart):
    hv = _header_values(model, npart)
    h = f.create_group("Header")
    npart = np.asarray(npart, dtype=np.uint32)
    h.attrs.update({"NumPart_ThisFile": npart, "NumPart_Total": npart,
                    "NumPart_Total_HighWord": np.zeros(6, np.uint32),
                    "MassTable": np.zeros(6), "Time": hv["Time"], "Redshift": hv["Redshift"],
                    "BoxSize": hv["BoxSize"], "NumFilesPerSnapshot": 1,
                    "Omega0": hv["Omega0"], "OmegaLambda": hv["OmegaLambda"],
                    "HubbleParam": hv["HubbleParam"], "Flag_Sfr": 1, "Flag_Cooling": 1,
                    "Flag_Metals": 1})


def write_gadget_hdf5(path: Path, model: ClusterModel | None = None):
    """Gadget HDF5 snapshot with SFR and metallicity (mass fraction). Returns the truth."""
    model = model or ClusterModel()
    gas, dm = model.realise()
    with h5py.File(path, "w") as f:
        _write_hdf5_header(f, model, [len(gas["mass"]), len(dm["mass"]), 0, 0, 0, 0])
        g = f.create_group("PartType0")
        g["Coordinates"], g["Velocities"], g["Masses"] = gas["pos"], gas["vel"], gas["mass"]
        g["ParticleIDs"] = np.arange(len(gas["mass"]), dtype=np.uint64)
        g["InternalEnergy"], g["Density"] = gas["u"], gas["rho"]
        g["SmoothingLength"] = gas["hsml"]
        g["ElectronAbundance"] = np.full(len(gas["mass"]), 1.16)
        g["StarFormationRate"] = gas["sfr"]
        g["Metallicity"] = np.full(len(gas["mass"]),
                                   model.metallicity_zsun * ZSUN_MASS_FRACTION)
        d = f.create_group("PartType1")
        d["Coordinates"], d["Velocities"], d["Masses"] = dm["pos"], dm["vel"], dm["mass"]
        d["ParticleIDs"] = np.arange(len(dm["mass"]), dtype=np.uint64) + len(gas["mass"])
    return model, gas, dm


def write_arepo_hdf5(path: Path, model: ClusterModel | None = None):
    """Arepo / IllustrisTNG-style snapshot (cells: Masses + Density). Returns the truth."""
    model = model or ClusterModel()
    gas, dm = model.realise()
    with h5py.File(path, "w") as f:
        _write_hdf5_header(f, model, [len(gas["mass"]), len(dm["mass"]), 0, 0, 0, 0])
        c = f.create_group("Config")
        c.attrs["VORONOI"] = 1
        p = f.create_group("Parameters")
        p.attrs.update({"UnitLength_in_cm": 3.085678e21, "UnitMass_in_g": 1.989e43,
                        "UnitVelocity_in_cm_per_s": 1e5, "ComovingIntegrationOn": 1})
        g = f.create_group("PartType0")
        g["Coordinates"], g["Velocities"], g["Masses"] = gas["pos"], gas["vel"], gas["mass"]
        g["ParticleIDs"] = np.arange(len(gas["mass"]), dtype=np.uint64)
        g["InternalEnergy"], g["Density"] = gas["u"], gas["rho"]
        g["ElectronAbundance"] = np.full(len(gas["mass"]), 1.16)
        g["StarFormationRate"] = gas["sfr"]
        g["GFM_Metallicity"] = np.full(len(gas["mass"]),
                                       model.metallicity_zsun * ZSUN_MASS_FRACTION)
        d = f.create_group("PartType1")
        d["Coordinates"], d["Velocities"] = dm["pos"], dm["vel"]
        d["Masses"] = dm["mass"]
        d["ParticleIDs"] = np.arange(len(dm["mass"]), dtype=np.uint64) + len(gas["mass"])
    return model, gas, dm
