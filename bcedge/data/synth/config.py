"""What a synthetic smear looks like: layout parameters (:class:`SmearConfig`) and colours/optics
(:class:`SmearStyle`, drawn from the seed unless given)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

RBC, WBC, PLATELETS, RING = "RBC", "WBC", "Platelets", "ring"
CELL_CLASSES = (RBC, WBC, PLATELETS)  # COCO category ids 1..3 in this order; "ring" is 4 when parasites are on

# Independent random streams, all derived from the user's seed (never from strip height or size).
STREAM_STYLE, STREAM_LAYOUT, STREAM_TEXTURE, STREAM_NOISE = 1, 2, 3, 4

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class SmearStyle:
    """Colours and optics. Optical densities (OD, ``-ln(I / background)`` per R, G, B) add up where
    cells overlap, as stain absorbance does, so overlaps look darker and no cell hides another."""

    background: RGB = (210.0, 212.0, 213.0)
    rbc_od: RGB = (0.15, 0.36, 0.31)
    cytoplasm_od: RGB = (0.04, 0.09, 0.03)
    nucleus_od: RGB = (0.62, 0.80, 0.18)
    granule_od: RGB = (0.10, 0.55, 0.48)      # eosinophil granules (orange-red)
    platelet_od: RGB = (0.40, 0.62, 0.14)
    parasite_od: RGB = (0.55, 0.75, 0.16)
    vignetting: float = 0.12                  # relative darkening at the farthest corner
    vignette_centre: tuple[float, float] = (0.0, 0.0)  # offset from the image centre, in image fractions
    gradient: tuple[float, float] = (0.0, 0.0)  # relative brightness change across the image in x, y
    blur_sigma: float = 1.0                   # Gaussian blur in pixels at scale 1 (scaled with SmearConfig.scale)
    noise_sigma: float = 2.5                  # Gaussian sensor noise, grey levels

    @classmethod
    def sample(cls, seed: int) -> "SmearStyle":
        """A style varied by ``seed`` around the BCCD look (a pale grey-blue field, pink cells, violet nuclei)."""
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), STREAM_STYLE])))

        def jitter(base: RGB, spread: float) -> RGB:
            level = rng.uniform(1 - spread, 1 + spread)
            return tuple(round(float(v * level * rng.uniform(0.93, 1.07)), 4) for v in base)

        shift, tint = rng.uniform(-12, 12), rng.uniform(-3, 3, size=3)
        background = tuple(round(float(np.clip(v + shift + t, 0, 250)), 2) for v, t in zip(cls.background, tint))
        return cls(
            background=background,
            rbc_od=jitter(cls.rbc_od, 0.2),
            cytoplasm_od=jitter(cls.cytoplasm_od, 0.3),
            nucleus_od=jitter(cls.nucleus_od, 0.2),
            granule_od=jitter(cls.granule_od, 0.2),
            platelet_od=jitter(cls.platelet_od, 0.2),
            parasite_od=jitter(cls.parasite_od, 0.2),
            vignetting=round(float(rng.uniform(0.0, 0.25)), 4),
            vignette_centre=(round(float(rng.uniform(-0.15, 0.15)), 4), round(float(rng.uniform(-0.15, 0.15)), 4)),
            gradient=(round(float(rng.uniform(-0.08, 0.08)), 4), round(float(rng.uniform(-0.08, 0.08)), 4)),
            blur_sigma=round(float(rng.uniform(0.7, 1.8)), 3),
            noise_sigma=round(float(rng.uniform(1.0, 4.0)), 3),
        )

    @classmethod
    def plain(cls, **overrides) -> "SmearStyle":
        """The default colours with no blur, noise, vignetting or gradient: for exact geometry checks."""
        return replace(cls(vignetting=0.0, blur_sigma=0.0, noise_sigma=0.0), **overrides)


@dataclass(frozen=True)
class SmearConfig:
    """Layout and rendering parameters. Sizes are diameters in pixels at ``scale`` 1 (the BCCD scale:
    RBC ~100 px, WBC ~190 px, platelets ~40 px) and are multiplied by ``scale``."""

    scale: float = 1.0
    density: float = 0.6                      # RBC area (sum of discs) per image area; > ~0.65 needs more max_overlap
    rbc_diameter: tuple[float, float] = (70.0, 130.0)
    wbc_diameter: tuple[float, float] = (150.0, 230.0)
    platelet_diameter: tuple[float, float] = (22.0, 46.0)
    rbc_aspect: tuple[float, float] = (0.82, 1.0)  # minor/major axis ratio
    max_overlap: float = 0.35                 # neighbouring RBC discs may interpenetrate by up to this share of r1+r2
    clumping: float = 0.5                     # 0: uniform spread; 1: strong low-frequency crowding and empty patches
    wbc_per_rbc: float = 0.02
    platelets_per_rbc: float = 0.05           # platelet clusters (1-4 platelets each) per RBC
    parasites: bool = False                   # add ring-stage parasites (class "ring") inside some RBCs
    parasitemia: float = 0.08                 # share of RBCs holding a ring when parasites is on
    style: SmearStyle | None = None           # None: SmearStyle.sample(seed)
    strip_rows: int = 256                     # rows rendered at a time (pixels do not depend on it)
    polygon_points: int = 48                  # vertices per mask polygon

    def __post_init__(self) -> None:
        problems = []
        if not self.scale > 0:
            problems.append(f"scale must be > 0, got {self.scale}")
        if not 0 <= self.density <= 3:
            problems.append(f"density must be in [0, 3], got {self.density}")
        if not 0 <= self.max_overlap < 1:
            problems.append(f"max_overlap must be in [0, 1), got {self.max_overlap}")
        if not 0 <= self.clumping <= 1:
            problems.append(f"clumping must be in [0, 1], got {self.clumping}")
        if not 0 <= self.parasitemia <= 1:
            problems.append(f"parasitemia must be in [0, 1], got {self.parasitemia}")
        if self.wbc_per_rbc < 0 or self.platelets_per_rbc < 0:
            problems.append("wbc_per_rbc and platelets_per_rbc must be >= 0")
        if self.strip_rows < 1:
            problems.append(f"strip_rows must be >= 1, got {self.strip_rows}")
        if self.polygon_points < 8:
            problems.append(f"polygon_points must be >= 8, got {self.polygon_points}")
        for name in ("rbc_diameter", "wbc_diameter", "platelet_diameter", "rbc_aspect"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                problems.append(f"{name} must be (low, high) with 0 < low <= high, got {(lo, hi)}")
        if problems:
            raise ValueError("SmearConfig: " + "; ".join(problems))

    @property
    def class_names(self) -> list[str]:
        return list(CELL_CLASSES) + ([RING] if self.parasites else [])

    def with_options(self, **options) -> "SmearConfig":
        """A copy with some fields changed; unknown names are an error that lists the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown smear option(s) {unknown}; known: {sorted(known)}")
        return replace(self, **options)

    def to_dict(self) -> dict:
        """The fields that shape the smear (not ``style``, stored apart; not ``strip_rows``, which does not)."""
        out = asdict(self)
        out.pop("style")
        out.pop("strip_rows")
        return out


def style_for(config: SmearConfig, seed: int) -> SmearStyle:
    return config.style if config.style is not None else SmearStyle.sample(seed)


__all__ = ["SmearConfig", "SmearStyle", "CELL_CLASSES", "RBC", "WBC", "PLATELETS", "RING", "style_for"]
