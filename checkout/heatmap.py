"""Floor heat: where people spent time, as pure state, and a separate PNG renderer.

``HeatGrid`` folds ``TrackBatch`` events into person-seconds per floor cell
(``cell_m`` square; row = y, column = x). Each batch's positions are held
until the next batch from the same device, and the interval between them
(at most ``max_hold_s``, so a gap in the feed does not smear) is credited to
the cells they stood in. Credit is kept in time slices of ``slice_s``; slices
older than ``retention_s`` behind the newest are dropped, so memory is
bounded and any window ``[from, to)`` of the retained past is a sum of
slices. A second, "live" grid decays with an explicit ``half_life_s`` of
event time (never the wall clock). No per-track state is kept at all.

``render_png`` only reads a grid: floor outline, gondolas, gate lines and
a colour map, with a legend of the scale and the window. Same grid in, same
bytes out.

>>> from iot.payloads import TrackBatch, TrackPoint
>>> heat = HeatGrid(4.0, 2.0, HeatSettings(cell_m=0.5))
>>> for k in range(11):  # one person standing still for 2 s, batches at 5 Hz
...     heat.add(TrackBatch(id=f"b{k}", event_time_s=1e9 + k / 5, device_id="positioning",
...                         tracks=[TrackPoint(track_id="t1", x_m=1.2, y_m=0.7)]))
>>> w = heat.window(1e9, 1e9 + 60)
>>> w.person_s.shape, round(float(w.person_s[1, 2]), 6), round(float(w.person_s.sum()), 6)
((4, 8), 2.0, 2.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from iot.payloads import TrackBatch
from iot.store import Store

__all__ = ["HeatGrid", "HeatSettings", "HeatWindow", "render_png", "window_png", "write_png"]

_MAX_CELLS = 4_000_000  # 32 MB per float64 slice: beyond this the cell size is a mistake


class HeatSettings(BaseModel):
    """How finely and how long heat is kept. Each field's description is the docstring under it."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    cell_m: float = Field(default=0.25, gt=0.01, le=10)
    """Side of one square floor cell, m."""
    slice_s: float = Field(default=60.0, gt=0, le=86_400)
    """Person-seconds are kept per slice of this much event time; windows snap to slices, s."""
    retention_s: float = Field(default=8 * 3600.0, gt=0, le=7 * 86_400)
    """Slices older than this behind the newest are dropped (memory: cells x 8 B per slice), s."""
    half_life_s: float = Field(default=300.0, gt=0, le=86_400)
    """The live grid halves every this much event time, s."""
    max_hold_s: float = Field(default=1.0, gt=0, le=60)
    """A position is credited until the next batch, but for at most this long, s."""


@dataclass(frozen=True)
class HeatWindow:
    """Person-seconds per cell over ``[from_s, to_s)`` (snapped outward to whole slices)."""

    person_s: np.ndarray
    from_s: float
    to_s: float
    complete: bool  # False when part of the window was already dropped (retention)


class HeatGrid:
    """Person-seconds per floor cell, in time slices, plus a half-life live grid."""

    def __init__(self, width_m: float, depth_m: float, settings: HeatSettings | None = None):
        self.settings = s = settings or HeatSettings()
        if not (width_m > 0 and depth_m > 0):
            raise ValueError(f"floor must have a positive size, got {width_m} x {depth_m} m")
        self.width_m, self.depth_m = width_m, depth_m
        self.shape = (math.ceil(depth_m / s.cell_m - 1e-9), math.ceil(width_m / s.cell_m - 1e-9))
        if self.shape[0] * self.shape[1] > _MAX_CELLS:
            raise ValueError(
                f"a {width_m} x {depth_m} m floor at cell_m {s.cell_m} needs {self.shape} cells, "
                f"over {_MAX_CELLS}; use a larger cell_m"
            )
        self._slices: dict[int, np.ndarray] = {}
        self._dropped_before = -math.inf  # slices below this index are gone
        self._newest = -math.inf  # newest slice index
        # device -> (time, rows, cols, points off the floor) of its last batch, not yet credited
        self._hold: dict[str, tuple[float, np.ndarray, np.ndarray, int]] = {}
        self._live = np.zeros(self.shape)
        self._live_s: float | None = None
        self.fed_person_s = 0.0  # credited to cells, all time
        self.off_floor_person_s = 0.0  # positions off the floor: not in any cell
        self.out_of_order = 0

    @classmethod
    def for_store(cls, store: Store, settings: HeatSettings | None = None) -> HeatGrid:
        return cls(store.floor.width_m, store.floor.depth_m, settings)

    # --- folding ---

    def add(self, batch: TrackBatch) -> None:
        """Credit the device's previous positions up to this batch, then hold these."""
        t = batch.event_time_s
        held = self._hold.get(batch.device_id)
        if held is not None and t < held[0]:
            self.out_of_order += 1  # its interval was already credited to later positions
            return
        if held is not None:
            self._credit(held, min(t - held[0], self.settings.max_hold_s))
        xy = np.array([(p.x_m, p.y_m) for p in batch.tracks], dtype=float).reshape(-1, 2)
        rows, cols, on = self._cells(xy)
        self._hold[batch.device_id] = (t, rows[on], cols[on], int((~on).sum()))

    def flush(self, at_s: float) -> None:
        """Credit every held batch up to ``at_s`` (end of a run: nothing comes after it)."""
        for device, held in sorted(self._hold.items()):
            self._credit(held, min(max(at_s - held[0], 0.0), self.settings.max_hold_s))
            self._hold[device] = (max(at_s, held[0]), held[1][:0], held[2][:0], 0)

    def _cells(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cell indices of floor points, and which points lie on the floor at all."""
        on = (xy[:, 0] >= 0) & (xy[:, 0] <= self.width_m)
        on &= (xy[:, 1] >= 0) & (xy[:, 1] <= self.depth_m)
        cell = self.settings.cell_m
        rows = np.clip((xy[:, 1] // cell).astype(int), 0, self.shape[0] - 1)
        cols = np.clip((xy[:, 0] // cell).astype(int), 0, self.shape[1] - 1)
        return rows, cols, on

    def _credit(self, held: tuple[float, np.ndarray, np.ndarray, int], dt_s: float) -> None:
        """Add ``dt_s`` per held position from the held time on, split at slice edges."""
        start_s, rows, cols, off = held
        if dt_s <= 0:
            return
        end_s, size = start_s + dt_s, self.settings.slice_s
        self.fed_person_s += dt_s * rows.size
        self.off_floor_person_s += dt_s * off
        if not rows.size:
            return
        for k in range(math.floor(start_s / size), math.floor(end_s / size) + 1):
            part_s = min(end_s, (k + 1) * size) - max(start_s, k * size)
            if part_s > 0 and k >= self._dropped_before:
                np.add.at(self._slice(k), (rows, cols), part_s)
        # The live grid takes the credit at the end of its interval, decayed to its own time.
        if self._live_s is None or end_s > self._live_s:
            self._live = self.live(end_s)
            self._live_s = end_s
        np.add.at(self._live, (rows, cols), dt_s * self._decay(self._live_s - end_s))

    def _slice(self, k: int) -> np.ndarray:
        grid = self._slices.get(k)
        if grid is None:
            grid = self._slices[k] = np.zeros(self.shape)
            if k > self._newest:
                self._newest = k
                keep = math.ceil(self.settings.retention_s / self.settings.slice_s)
                self._dropped_before = max(self._dropped_before, k - keep + 1)
                for old in [j for j in self._slices if j < self._dropped_before]:
                    del self._slices[old]
        return grid

    def _decay(self, elapsed_s: float) -> float:
        return 0.5 ** (max(elapsed_s, 0.0) / self.settings.half_life_s)

    # --- reading ---

    def window(self, from_s: float, to_s: float) -> HeatWindow:
        """Person-seconds per cell in ``[from_s, to_s)``, snapped outward to whole slices."""
        if not to_s > from_s:
            raise ValueError(f"window [{from_s}, {to_s}) is empty; pass from_s < to_s")
        size = self.settings.slice_s
        k0, k1 = math.floor(from_s / size), math.ceil(to_s / size)
        total = np.zeros(self.shape)
        for k, grid in self._slices.items():
            if k0 <= k < k1:
                total += grid
        return HeatWindow(total, k0 * size, k1 * size, complete=k0 >= self._dropped_before)

    def live(self, at_s: float) -> np.ndarray:
        """The half-life grid as of ``at_s`` (a time before its newest credit reads as then)."""
        if self._live_s is None:
            return np.zeros(self.shape)
        return self._live * self._decay(at_s - self._live_s)

    @property
    def slices(self) -> int:
        """Slices held now (bounded by retention_s / slice_s)."""
        return len(self._slices)


# --- drawing (reads a grid; keeps no state) ---

_FLOOR_BGR = (236, 236, 236)
_GONDOLA_BGR = (150, 150, 150)
_INK_BGR = (40, 40, 40)
_GATE_BGR = {"entry": (40, 160, 40), "exit": (40, 40, 200)}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def render_png(
    person_s: np.ndarray,
    store: Store,
    *,
    cell_m: float = 0.25,
    window: tuple[float, float] | None = None,
    px_per_m: float = 50.0,
    vmax: float | None = None,
    colormap: int = cv2.COLORMAP_INFERNO,
) -> bytes:
    """A PNG of the floor with the heat over it; the image has the floor's aspect ratio.

    ``person_s`` is a grid from ``HeatGrid`` (``window(...).person_s`` or ``live(t)``)
    made with this ``cell_m``; ``window`` (event time, Unix s) goes into the legend;
    ``vmax`` fixes the top of the scale (default: the grid's maximum), so that
    several windows can share one scale. The floor's y grows up the image.
    """
    expected = (
        math.ceil(store.floor.depth_m / cell_m - 1e-9),
        math.ceil(store.floor.width_m / cell_m - 1e-9),
    )
    if person_s.shape != expected:
        raise ValueError(
            f"heat grid has shape {person_s.shape}, expected {expected} (rows, cols) for a "
            f"{store.floor.width_m} x {store.floor.depth_m} m floor at cell_m {cell_m}; "
            "pass the cell_m the grid was made with"
        )
    if not np.all(np.isfinite(person_s)) or np.any(person_s < 0):
        raise ValueError("heat grid holds negative or non-finite values; it must be person-s >= 0")
    width_px = round(store.floor.width_m * px_per_m)
    height_px = round(store.floor.depth_m * px_per_m)
    top = float(person_s.max()) if vmax is None else vmax
    image = _heat_layer(person_s, cell_m * px_per_m, (height_px, width_px), top, colormap)
    _draw_plan(image, store, px_per_m)
    _draw_legend(image, top, window, colormap)
    ok, data = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV only fails here on an empty image
        raise RuntimeError("OpenCV could not encode the heat map as PNG")
    return data.tobytes()


def window_png(heat: HeatGrid, store: Store, from_s: float, to_s: float) -> bytes:
    """The grid's person-seconds over ``[from_s, to_s)`` drawn over the floor plan.

    Raises ValueError for an empty window.
    """
    window = heat.window(from_s, to_s)
    return render_png(
        window.person_s, store, cell_m=heat.settings.cell_m, window=(window.from_s, window.to_s)
    )


def write_png(path: str | Path, person_s: np.ndarray, store: Store, **options: object) -> Path:
    """``render_png`` written to ``path``; returns the path."""
    out = Path(path)
    out.write_bytes(render_png(person_s, store, **options))  # type: ignore[arg-type]
    return out


def _heat_layer(
    person_s: np.ndarray, cell_px: float, size: tuple[int, int], top: float, colormap: int
) -> np.ndarray:
    """The floor colour with the colour map blended over every cell that has heat."""
    height_px, width_px = size
    image = np.full((height_px, width_px, 3), _FLOOR_BGR, dtype=np.uint8)
    if top <= 0:
        return image
    # Each pixel reads the cell under its centre; rows flip so the floor's y grows upward.
    ys = (height_px - 1 - np.arange(height_px) + 0.5) / cell_px
    xs = (np.arange(width_px) + 0.5) / cell_px
    rows = np.clip(ys.astype(int), 0, person_s.shape[0] - 1)
    cols = np.clip(xs.astype(int), 0, person_s.shape[1] - 1)
    values = person_s[np.ix_(rows, cols)]
    level = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
    colour = cv2.applyColorMap(level, colormap)
    hot = values > 0
    blend = (0.25 * image + 0.75 * colour).astype(np.uint8)
    image[hot] = blend[hot]
    return image


def _draw_plan(image: np.ndarray, store: Store, px_per_m: float) -> None:
    height_px = image.shape[0]

    def px(x_m: float, y_m: float) -> tuple[int, int]:
        return round(x_m * px_per_m), round(height_px - y_m * px_per_m)

    for g in store.gondolas:
        a, b = px(g.x_m, g.y_m + g.depth_m), px(g.x_m + g.length_m, g.y_m)
        cv2.rectangle(image, a, b, _GONDOLA_BGR, -1)
        cv2.rectangle(image, a, b, _INK_BGR, 1)
        cv2.putText(image, g.id, (a[0] + 3, b[1] - 3), _FONT, 0.35, _INK_BGR, 1, cv2.LINE_AA)
    for gate in store.floor.gates:
        p, q = (px(*point) for point in gate.line_m)
        cv2.line(image, p, q, _GATE_BGR[gate.kind], 4)
        label = (min(p[0], q[0]), min(p[1], q[1]) - 6)
        cv2.putText(image, gate.id, label, _FONT, 0.4, _GATE_BGR[gate.kind], 1, cv2.LINE_AA)
    cv2.rectangle(image, (0, 0), (image.shape[1] - 1, height_px - 1), _INK_BGR, 2)


def _draw_legend(
    image: np.ndarray, top: float, window: tuple[float, float] | None, colormap: int
) -> None:
    """A colour bar from 0 to ``top`` person-s per cell and the window, top left."""
    x0, y0, bar_w, bar_h = 8, 8, 160, 10
    lines = [f"0 .. {top:.1f} person-s per cell"]
    if window is not None:
        lines.append(_window_text(*window))
    box_h = bar_h + 14 + 14 * len(lines)
    cv2.rectangle(image, (x0 - 4, y0 - 4), (x0 + bar_w + 120, y0 + box_h), (255, 255, 255), -1)
    ramp = np.tile(np.linspace(0, 255, bar_w).astype(np.uint8), (bar_h, 1))
    image[y0 : y0 + bar_h, x0 : x0 + bar_w] = cv2.applyColorMap(ramp, colormap)
    for n, text in enumerate(lines):
        at = (x0, y0 + bar_h + 14 + 14 * n)
        cv2.putText(image, text, at, _FONT, 0.4, _INK_BGR, 1, cv2.LINE_AA)


def _window_text(from_s: float, to_s: float) -> str:
    start = datetime.fromtimestamp(from_s, UTC)
    end = datetime.fromtimestamp(to_s, UTC)
    day = start.strftime("%Y-%m-%d")
    return f"{day} {start:%H:%M}-{end:%H:%M} UTC"
