"""Star-shaped outlines: a rotated ellipse whose radius is modulated by a few harmonics.

One definition serves painting, ground truth boxes and mask polygons, so they cannot disagree: a
pixel belongs to a shape when its centre ``(x + 0.5, y + 0.5)`` is inside the outline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Blob:
    """Outline ``rho(u, v) <= f(theta)``: ``rho`` the elliptical radius in the frame rotated by ``angle``
    (semi-axes ``a``, ``b``), ``f = 1 + sum(amp * cos(k * theta + phase))`` over ``harmonics``."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float = 0.0
    harmonics: tuple[tuple[int, float, float], ...] = ()

    @property
    def reach(self) -> float:
        """Largest distance of the outline from the centre."""
        return max(self.a, self.b) * (1.0 + sum(abs(amp) for _, amp, _ in self.harmonics))

    def bounds(self, margin: float = 1.0) -> tuple[int, int, int, int]:
        """Integer pixel range ``x0, y0, x1, y1`` (end exclusive) holding the outline plus ``margin``."""
        r = self.reach + margin
        x0, y0 = math.floor(self.cx - r), math.floor(self.cy - r)
        return x0, y0, math.ceil(self.cx + r) + 1, math.ceil(self.cy + r) + 1

    def scaled(self, factor: float) -> "Blob":
        return Blob(self.cx, self.cy, self.a * factor, self.b * factor, self.angle, self.harmonics)

    def field(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """On the grid of pixel centres ``xs`` (w,) by ``ys`` (h,): ``s = rho / f`` (0 at the centre, 1 on
        the outline; a pixel is inside exactly when ``s <= 1``) and ``length``, pixels per unit of ``s``
        across the outline, so ``(s - level) * length`` approximates the signed distance to the level set."""
        c, sn = math.cos(self.angle), math.sin(self.angle)
        dx = (np.asarray(xs, np.float64) - self.cx).astype(np.float32)[None, :]
        dy = (np.asarray(ys, np.float64) - self.cy).astype(np.float32)[:, None]
        un = (dx * np.float32(c) + dy * np.float32(sn)) / np.float32(self.a)
        vn = (dy * np.float32(c) - dx * np.float32(sn)) / np.float32(self.b)
        rho = np.sqrt(un * un + vn * vn)
        if self.harmonics:
            theta = np.arctan2(vn, un)
            f = np.ones_like(rho)
            for k, amp, phase in self.harmonics:
                f += np.float32(amp) * np.cos(np.float32(k) * theta + np.float32(phase))
        else:
            f = np.float32(1.0)
        safe = np.maximum(rho, np.float32(1e-6))
        grad = np.sqrt((un / np.float32(self.a)) ** 2 + (vn / np.float32(self.b)) ** 2) / safe  # |grad rho|
        grad = np.where(rho > 1e-6, grad, np.float32(1.0 / min(self.a, self.b)))
        return rho / f, f / grad

    def polygon(self, points: int = 48) -> np.ndarray:
        """``points`` vertices (x, y) of the outline, counter-clockwise in image coordinates."""
        theta = np.linspace(0.0, 2 * math.pi, points, endpoint=False)
        f = np.ones_like(theta)
        for k, amp, phase in self.harmonics:
            f += amp * np.cos(k * theta + phase)
        u, v = self.a * f * np.cos(theta), self.b * f * np.sin(theta)
        c, sn = math.cos(self.angle), math.sin(self.angle)
        return np.stack([self.cx + u * c - v * sn, self.cy + u * sn + v * c], axis=1)


def coverage(s: np.ndarray, length: np.ndarray, level: float = 1.0) -> np.ndarray:
    """Anti-aliased coverage of ``s <= level`` from :meth:`Blob.field`: 1 well inside, 0 well outside, a
    ramp about one pixel wide centred on the outline. Membership is ``s <= level``, not this ramp."""
    return np.clip(np.float32(0.5) - (s - np.float32(level)) * length, 0.0, 1.0)
