"""The cell list of a smear, made before any pixel: O(cells) time and memory.

Placement is dart throwing on a uniform grid hash: a candidate is kept when it does not overlap its
neighbours more than their allowance (RBCs touch and overlap a little; WBCs push RBCs aside;
platelets sit in gaps or on RBC rims). A smooth random field thins some regions and crowds others,
as real smears do. Counts follow ``density`` until placement saturates; the layout says how many fit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bcedge.data.synth.config import PLATELETS, RBC, RING, STREAM_LAYOUT, WBC, SmearConfig, SmearStyle, style_for
from bcedge.data.synth.geometry import Blob


@dataclass(frozen=True, slots=True)
class RbcLook:
    pallor: float          # depth of the pale centre, 0..1
    pallor_radius: float   # its radius as a share of the cell radius
    rim: float             # extra density of the thick rim
    strength: float        # overall density factor


@dataclass(frozen=True, slots=True)
class WbcLook:
    subtype: str                      # neutrophil, eosinophil, lymphocyte, monocyte
    lobes: tuple[Blob, ...]           # nucleus = union of lobes
    granules: float                   # granule count per 1000 px^2 of cytoplasm (eosinophil), 0 for none


@dataclass(frozen=True, slots=True)
class PlateletLook:
    strength: float


@dataclass(frozen=True, slots=True)
class RingLook:
    inner: float     # inner radius of the ring as a share of the outer one
    host: int        # index of the RBC holding the parasite


@dataclass(frozen=True, slots=True)
class Cell:
    """One object of the smear. ``blobs`` is its outline (a union); ``look`` how it is painted."""

    kind: str
    blobs: tuple[Blob, ...]
    look: RbcLook | WbcLook | PlateletLook | RingLook

    def bounds(self) -> tuple[int, int, int, int]:
        boxes = [b.bounds() for b in self.blobs]
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


@dataclass
class Layout:
    width: int
    height: int
    seed: int
    config: SmearConfig
    style: SmearStyle
    cells: list[Cell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {name: 0 for name in self.config.class_names}
        for cell in self.cells:
            out[cell.kind] += 1
        return out


class _Grid:
    """Discs in a uniform grid of buckets; each disc is filed in every bucket its bounding square touches."""

    def __init__(self, size: float) -> None:
        self.size = size
        self.buckets: dict[tuple[int, int], list[tuple[float, float, float, str, float]]] = {}

    def _keys(self, x: float, y: float, r: float):
        s = self.size
        for i in range(math.floor((x - r) / s), math.floor((x + r) / s) + 1):
            for j in range(math.floor((y - r) / s), math.floor((y + r) / s) + 1):
                yield i, j

    def near(self, x: float, y: float, r: float):
        seen = set()
        for key in self._keys(x, y, r):
            for disc in self.buckets.get(key, ()):
                if id(disc) not in seen:
                    seen.add(id(disc))
                    yield disc

    def add(self, x: float, y: float, r: float, kind: str, overlap: float) -> None:
        disc = (x, y, r, kind, overlap)
        for key in self._keys(x, y, r):
            self.buckets.setdefault(key, []).append(disc)


# Allowed interpenetration (share of r1 + r2) between kinds, when not the RBC-RBC per-cell allowance.
_PAIR_OVERLAP = {
    frozenset((WBC,)): 0.0, frozenset((WBC, RBC)): 0.06, frozenset((WBC, PLATELETS)): 0.1,
    frozenset((PLATELETS,)): 0.25, frozenset((PLATELETS, RBC)): 0.45,
}


def _fits(grid: _Grid, x: float, y: float, r: float, kind: str, overlap: float) -> bool:
    for ox, oy, orad, okind, oover in grid.near(x, y, r):
        allow = min(overlap, oover) if kind == okind == RBC else _PAIR_OVERLAP[frozenset((kind, okind))]
        limit = (r + orad) * (1.0 - allow)
        if (x - ox) ** 2 + (y - oy) ** 2 < limit * limit:
            return False
    return True


class _Crowding:
    """A smooth random field in [0, 1]: the chance a candidate position is accepted."""

    def __init__(self, rng: np.random.Generator, wavelength: float, clumping: float) -> None:
        self.clumping = clumping
        angles = rng.uniform(0, 2 * math.pi, 4)
        freqs = 2 * math.pi / (wavelength * rng.uniform(0.7, 1.5, 4))
        self.waves = [(float(f * math.cos(a)), float(f * math.sin(a)), float(p))
                      for f, a, p in zip(freqs, angles, rng.uniform(0, 2 * math.pi, 4))]

    def __call__(self, x: float, y: float) -> float:
        wave = sum(math.cos(kx * x + ky * y + p) for kx, ky, p in self.waves) / len(self.waves)  # mostly -0.5..0.5
        return min(1.0, max(0.03, 1.0 - self.clumping * (0.6 - wave)))


def _harmonics(rng: np.random.Generator, orders: tuple[int, ...], amplitude: float) -> tuple:
    return tuple((k, float(rng.uniform(0, amplitude)), float(rng.uniform(0, 2 * math.pi))) for k in orders)


# A proposal draws only what placement needs (radius, kind, overlap allowance) and a ``finish(rng)``
# that draws the rest of the cell once its position is accepted.
Proposal = tuple[float, str, float, Callable[[np.random.Generator], object]]


def _place(rng, grid, crowding, count, size: tuple[int, int], margin: float,
           propose: Callable[[np.random.Generator], Proposal], attempts_per_cell: int = 40) -> list:
    """Throw candidates until ``count`` fit (or the attempts run out): [(x, y, radius, payload)].
    Centres may lie ``margin`` pixels outside the image, so cells are cut by its edges."""
    placed: list = []
    budget = count * attempts_per_cell
    while len(placed) < count and budget > 0:
        budget -= 1
        x, y = float(rng.uniform(-margin, size[0] + margin)), float(rng.uniform(-margin, size[1] + margin))
        if crowding is not None and rng.random() > crowding(x, y):
            continue
        r, kind, overlap, finish = propose(rng)
        if _fits(grid, x, y, r, kind, overlap):
            grid.add(x, y, r, kind, overlap)
            placed.append((x, y, r, finish(rng)))
    return placed


def _uniform(rng, lo_hi, scale: float) -> float:
    return float(rng.uniform(*lo_hi)) * scale


def _rbc(rng, config: SmearConfig) -> Proposal:
    lo, hi = config.rbc_diameter
    d = float(np.clip(rng.normal((lo + hi) / 2, (hi - lo) / 5), lo, hi)) * config.scale
    aspect = float(rng.uniform(*config.rbc_aspect))
    overlap = config.max_overlap * float(rng.beta(1.2, 2.0))

    def finish(rng):
        look = RbcLook(pallor=float(rng.uniform(0.15, 0.8)), pallor_radius=float(rng.uniform(0.4, 0.65)),
                       rim=float(rng.uniform(0.1, 0.45)), strength=float(rng.uniform(0.8, 1.2)))
        return (d / 2, d / 2 * aspect, float(rng.uniform(0, math.pi)), _harmonics(rng, (3, 4), 0.03)), look

    return d / 2 * (1 + aspect) / 2, RBC, overlap, finish


def _wbc(rng, config: SmearConfig) -> Proposal:
    subtype = str(rng.choice(["neutrophil", "eosinophil", "lymphocyte", "monocyte"], p=[0.55, 0.1, 0.25, 0.1]))
    lo, hi = config.wbc_diameter
    if subtype == "lymphocyte":
        lo, hi = lo * 0.75, (lo + hi) / 2 * 0.85
    d = _uniform(rng, (lo, hi), config.scale)

    def finish(rng):
        aspect, angle = float(rng.uniform(0.9, 1.0)), float(rng.uniform(0, math.pi))
        return (d / 2, d / 2 * aspect, angle, _harmonics(rng, (2, 3, 5), 0.03)), subtype

    return d / 2, WBC, 0.0, finish


def _platelet_cluster(rng, config: SmearConfig) -> Proposal:
    n = int(rng.choice([1, 1, 1, 2, 2, 3, 4]))
    d = _uniform(rng, config.platelet_diameter, config.scale)
    return d / 2 * (1 + 0.8 * (n - 1)), PLATELETS, 0.0, lambda rng: (n, d)


def _lobes(rng, subtype: str, cell: Blob) -> tuple[Blob, ...]:
    """Nucleus lobes in image coordinates, inside the cell outline."""
    r = min(cell.a, cell.b)
    if subtype == "lymphocyte":
        off = rng.uniform(0, 0.12 * r)
        t = rng.uniform(0, 2 * math.pi)
        rr = r * rng.uniform(0.72, 0.84)
        return (Blob(cell.cx + off * math.cos(t), cell.cy + off * math.sin(t), rr, rr * rng.uniform(0.88, 1.0),
                     float(rng.uniform(0, math.pi)), _harmonics(rng, (2, 3), 0.04)),)
    n = {"neutrophil": int(rng.integers(2, 6)), "eosinophil": 2, "monocyte": 2}[subtype]
    size = {"neutrophil": 0.27 if n > 2 else 0.34, "eosinophil": 0.38, "monocyte": 0.5}[subtype] * r
    arc = rng.uniform(1.2, 2.0) if n > 2 else rng.uniform(0.7, 1.3)  # lobes lie on a C-shaped arc
    start, bend = rng.uniform(0, 2 * math.pi), r * (rng.uniform(0.38, 0.48) if n > 2 else rng.uniform(0.3, 0.42))
    lobes = []
    for i in range(n):
        t = start + arc * (i / max(n - 1, 1) - 0.5) * 2
        rr = size * rng.uniform(0.85, 1.1)
        lobes.append(Blob(cell.cx + bend * math.cos(t), cell.cy + bend * math.sin(t), rr, rr * rng.uniform(0.7, 0.95),
                          float(t + math.pi / 2 + rng.normal(0, 0.3)), _harmonics(rng, (2, 3), 0.06)))
    return tuple(lobes)


def _rings(rng, host: Blob, host_index: int, config: SmearConfig) -> list[Cell]:
    out = []
    for _ in range(2 if rng.random() < 0.1 else 1):
        r_out = _uniform(rng, (10.0, 16.0), config.scale)
        room = max(min(host.a, host.b) * 0.6 - r_out, 0.0)
        t, off = rng.uniform(0, 2 * math.pi), room * math.sqrt(rng.random())
        cx, cy = host.cx + off * math.cos(t), host.cy + off * math.sin(t)
        ring = Blob(cx, cy, r_out, r_out * float(rng.uniform(0.8, 1.0)), float(rng.uniform(0, math.pi)),
                    _harmonics(rng, (2, 3), 0.05))
        dot_r = _uniform(rng, (3.0, 4.5), config.scale)
        phi, reach = rng.uniform(0, 2 * math.pi), r_out * rng.uniform(0.8, 1.0)
        dot = Blob(cx + reach * math.cos(phi), cy + reach * math.sin(phi), dot_r, dot_r * float(rng.uniform(0.75, 1.0)),
                   float(phi))
        out.append(Cell(RING, (ring, dot), RingLook(inner=float(rng.uniform(0.62, 0.78)), host=host_index)))
    return out


def make_layout(width: int, height: int, seed: int = 0, config: SmearConfig | None = None) -> Layout:
    """Place every cell of a ``width`` x ``height`` smear; the same (size, seed, config) gives the same cells."""
    if width < 1 or height < 1:
        raise ValueError(f"smear size must be at least 1x1, got {width}x{height}")
    config = config or SmearConfig()
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), STREAM_LAYOUT])))
    layout = Layout(int(width), int(height), int(seed), config, style_for(config, seed))
    lo, hi = config.rbc_diameter
    mean_area = math.pi * ((lo + hi) / 4 * config.scale) ** 2 * (sum(config.rbc_aspect) / 2)
    n_rbc = int(round(config.density * width * height / mean_area))
    n_wbc = int(rng.poisson(config.wbc_per_rbc * n_rbc))
    n_plt = int(rng.poisson(config.platelets_per_rbc * n_rbc))
    grid = _Grid(hi * config.scale)
    crowding = _Crowding(rng, 6 * hi * config.scale, config.clumping) if config.clumping > 0 else None

    size, s = (width, height), config.scale
    wbcs = _place(rng, grid, None, n_wbc, size, 0.15 * sum(config.wbc_diameter) * s, lambda g: _wbc(g, config))
    for x, y, _, (shape, subtype) in wbcs:
        outline = Blob(x, y, *shape)
        granules = float(rng.uniform(6.0, 9.0)) / s ** 2 if subtype == "eosinophil" else 0.0
        layout.cells.append(Cell(WBC, (outline,), WbcLook(subtype, _lobes(rng, subtype, outline), granules)))

    rbcs = _place(rng, grid, crowding, n_rbc, size, 0.15 * (lo + hi) * s, lambda g: _rbc(g, config))
    for x, y, _, (shape, look) in rbcs:
        layout.cells.append(Cell(RBC, (Blob(x, y, *shape),), look))
    if len(rbcs) < n_rbc:
        layout.notes.append(f"placed {len(rbcs)} of {n_rbc} RBCs asked for by density {config.density} (no more room)")

    clusters = _place(rng, grid, None, n_plt, size, 0.15 * sum(config.platelet_diameter) * s,
                      lambda g: _platelet_cluster(g, config))
    for x, y, _, (n, d) in clusters:
        t0 = rng.uniform(0, 2 * math.pi)
        for i in range(n):
            dd = d * float(rng.uniform(0.7, 1.1))
            off = 0.0 if i == 0 else d * 0.8
            t = t0 + 2 * math.pi * i / max(n - 1, 1)
            blob = Blob(x + off * math.cos(t), y + off * math.sin(t), dd / 2, dd / 2 * float(rng.uniform(0.6, 0.95)),
                        float(rng.uniform(0, math.pi)), _harmonics(rng, (2, 3, 5), 0.12))
            layout.cells.append(Cell(PLATELETS, (blob,), PlateletLook(strength=float(rng.uniform(0.7, 1.2)))))

    if config.parasites:
        hosts = [i for i, c in enumerate(layout.cells) if c.kind == RBC]
        infected = [i for i in hosts if rng.random() < config.parasitemia]
        for i in infected:
            layout.cells.extend(_rings(rng, layout.cells[i].blobs[0], i, config))
    return layout
