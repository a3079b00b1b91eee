"""Brain maps of predictions on fsaverage5 (nilearn, matplotlib Agg) and movies.

One colour scale per figure (shared by all its panels), symmetric around zero by
default, with a colourbar; the sulcal depth is the background. Movies play in
stimulus time: one drawn frame per TR of the stimulus, held for one TR, so the
movie lasts ``n_trs * tr_s``. They pipe the frames to ffmpeg at ``1 / tr_s``
frames per second, which writes H.264 MP4 at a standard 25 fps (each TR's frame
repeated), and fall back to an animated GIF (Pillow, one frame per TR lasting
``tr_s``) when ffmpeg is missing or fails.
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import Colormap  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from tribe_core.errors import TribeInputError  # noqa: E402
from tribe_core.io.atomic import atomic_path  # noqa: E402
from tribe_core.products import N_VERTICES_PER_HEMI  # noqa: E402
from tribe_core.products.meshes import (  # noqa: E402
    as_predictions,
    load_fsaverage5,
    load_fsaverage5_sulcal,
)
from tribe_core.products.render import render_panel  # noqa: E402

if TYPE_CHECKING:
    from mpl_toolkits.mplot3d import Axes3D

log = logging.getLogger(__name__)

VIEWS = ("lateral", "medial", "dorsal", "ventral", "anterior", "posterior")
HEMIS = ("left", "right")
_PANEL_IN = (2.4, 1.9)


def _check_views(views: Sequence[str]) -> tuple[str, ...]:
    bad = [v for v in views if v not in VIEWS]
    if bad or not views:
        raise TribeInputError(f"views must be a non-empty subset of {VIEWS}, got {list(views)}")
    return tuple(views)


def color_limits(
    maps: np.ndarray, *, symmetric: bool = True, percentile: float = 99.0
) -> tuple[float, float]:
    """Robust colour limits for ``maps`` (any shape): a high percentile of the values.

    Symmetric limits are ``(-m, m)`` with ``m`` the ``percentile`` of ``|maps|``.
    """
    # One float64 copy, reused in place (a 2-hour run is 7,200 x 20,484 values).
    finite = np.array(maps, dtype=np.float64).ravel()
    if not np.isfinite(finite).all():
        finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return -1.0, 1.0
    if symmetric:
        np.abs(finite, out=finite)
        m = float(np.percentile(finite, percentile, overwrite_input=True)) or 1e-12
        return -m, m
    lo, hi = np.percentile(finite, [100 - percentile, percentile], overwrite_input=True)
    return float(lo), float(hi) if hi > lo else float(lo) + 1e-12


def _panels(views: Sequence[str], hemis: Sequence[str]) -> list[tuple[str, str]]:
    return [(hemi, view) for view in views for hemi in hemis]


@functools.lru_cache(maxsize=1)
def _cold_hot() -> Colormap:
    """nilearn's ``cold_hot`` (black at 0, hot above, channel-swapped hot below).

    Built here because importing ``nilearn.plotting`` takes seconds; a test checks it
    against nilearn's.
    """
    from matplotlib.colors import ListedColormap

    hot = matplotlib.colormaps["hot"]
    x = np.linspace(0.0, 1.0, 256)
    above = hot(np.clip(2 * x - 1, 0, 1))
    below = hot(np.clip(1 - 2 * x, 0, 1))[:, [2, 1, 0, 3]]
    return ListedColormap(np.where((x < 0.5)[:, None], below, above), name="cold_hot")


def _colormap(cmap: str | Colormap) -> Colormap:
    """A matplotlib colormap from a Colormap, a matplotlib name or a nilearn name."""
    if isinstance(cmap, Colormap):
        return cmap
    if cmap in matplotlib.colormaps:
        return matplotlib.colormaps[cmap]
    if cmap == "cold_hot":
        return _cold_hot()
    from nilearn.plotting.cm import _cmap_d  # registers nilearn's maps with matplotlib

    if cmap in _cmap_d:
        return _cmap_d[cmap]
    raise TribeInputError(f"unknown colormap {cmap!r} (nilearn or matplotlib name)")


def _add_colorbar(
    fig: plt.Figure,
    cmap: str | Colormap,
    vmin: float,
    vmax: float,
    label: str,
    rect: tuple[float, float, float, float] = (0.93, 0.2, 0.012, 0.6),
) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cax = fig.add_axes(rect)
    mappable = ScalarMappable(norm=Normalize(vmin, vmax), cmap=_colormap(cmap))
    cbar = fig.colorbar(mappable, cax=cax)
    cbar.set_label(label, fontsize=8)
    cbar.ax.tick_params(labelsize=7)


# --------------------------------------------------------------------------- nilearn engine


def _draw_row_nilearn(
    fig: plt.Figure,
    axes: Sequence[Axes3D],
    values: np.ndarray,
    panels: Sequence[tuple[str, str]],
    *,
    cmap: str | Colormap,
    vmin: float,
    vmax: float,
    threshold: float | None,
) -> None:
    from nilearn import plotting

    meshes = dict(zip(HEMIS, load_fsaverage5("inflated"), strict=True))
    sulc = dict(zip(HEMIS, load_fsaverage5_sulcal(), strict=True))
    halves = {"left": values[:N_VERTICES_PER_HEMI], "right": values[N_VERTICES_PER_HEMI:]}
    for ax, (hemi, view) in zip(axes, panels, strict=True):
        mesh = meshes[hemi]
        plotting.plot_surf(
            (mesh.coordinates.copy(), mesh.faces.copy()),  # nilearn may edit them in place
            halves[hemi],
            bg_map=sulc[hemi].copy(),
            hemi=hemi,
            view=view,
            engine="matplotlib",
            cmap=_colormap(cmap),
            colorbar=False,
            threshold=threshold,
            vmin=vmin,
            vmax=vmax,
            bg_on_data=False,
            axes=ax,
            figure=fig,
        )
        ax.set_box_aspect(None, zoom=1.35)


def _nilearn_figure(
    maps: np.ndarray,
    row_labels: Sequence[str],
    panels: Sequence[tuple[str, str]],
    **style: object,
) -> plt.Figure:
    n_rows, n_cols = len(maps), len(panels)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        subplot_kw={"projection": "3d"},
        figsize=(n_cols * _PANEL_IN[0] + 0.9, n_rows * _PANEL_IN[1] + 0.3),
        squeeze=False,
    )
    fig.subplots_adjust(left=0.06, right=0.91, top=0.93, bottom=0.02, wspace=0, hspace=0.05)
    for row, values in enumerate(maps):
        _draw_row_nilearn(fig, axes[row], values, panels, **style)  # type: ignore[arg-type]
        axes[row][0].text2D(
            -0.08, 0.5, row_labels[row], transform=axes[row][0].transAxes, rotation=90,
            va="center", ha="center", fontsize=9,
        )  # fmt: skip
    for col, (hemi, view) in enumerate(panels):
        axes[0][col].set_title(f"{hemi} {view}", fontsize=8, pad=0)
    return fig


# --------------------------------------------------------------------------- raster engine


def _raster_panel(
    values: np.ndarray,
    hemi: str,
    view: str,
    *,
    lut: np.ndarray,
    vmin: float,
    vmax: float,
    threshold: float | None,
    scale: float,
) -> np.ndarray:
    """RGB image ``[H, W, 3]`` (white background) of one hemisphere, 2x supersampled."""
    half = values[:N_VERTICES_PER_HEMI] if hemi == "left" else values[N_VERTICES_PER_HEMI:]
    rgba = render_panel(
        half, hemi, view, lut=lut, vmin=vmin, vmax=vmax, threshold=threshold, scale=2 * scale
    )
    h, w = (rgba.shape[0] // 2) * 2, (rgba.shape[1] // 2) * 2
    rgba = rgba[:h, :w]
    rgba[..., :3] *= rgba[..., 3:]  # premultiply, so edges blend with white when averaged
    small = 0.25 * (rgba[0::2, 0::2] + rgba[1::2, 0::2] + rgba[0::2, 1::2] + rgba[1::2, 1::2])
    return np.clip(small[..., :3] + (1.0 - small[..., 3:]), 0.0, 1.0)


@dataclass
class _RasterFigure:
    """A figure of image panels whose pixels can be replaced (movies)."""

    figure: plt.Figure
    images: list[list[AxesImage]]
    labels: list[Text]
    cells: list[list[tuple[str, str]]]


def _raster_layout(
    grid: list[list[np.ndarray]],
    cells: list[list[tuple[str, str]]],
    row_labels: Sequence[str],
    *,
    titles_every_row: bool,
    title: str | None,
    colorbar: tuple[str | Colormap, float, float, str] | None,
    dpi: int = 100,
) -> _RasterFigure:
    """Place panel images on a pixel-exact figure with row labels, titles and a colourbar."""
    n_cols = max(len(r) for r in grid)
    col_w = [max(r[c].shape[1] for r in grid if c < len(r)) for c in range(n_cols)]
    row_h = [max(img.shape[0] for img in r) for r in grid]
    left = 34 if any(row_labels) else 6
    right, head, title_h, gap = (90 if colorbar else 6), 18, (28 if title else 6), 4
    width = left + sum(col_w) + gap * (n_cols - 1) + right
    heights = [h + (head if (titles_every_row or i == 0) else 0) for i, h in enumerate(row_h)]
    height = title_h + sum(heights) + gap * (len(grid) - 1) + 6
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    images, labels = [], []
    y = title_h
    for r, row in enumerate(grid):
        show_head = titles_every_row or r == 0
        y_img = y + (head if show_head else 0)
        x = left
        row_images = []
        for c, img in enumerate(row):
            h_img, w_img = img.shape[:2]
            x0 = x + (col_w[c] - w_img) // 2
            y0 = y_img + (row_h[r] - h_img) // 2
            ax = fig.add_axes(
                (x0 / width, 1 - (y0 + h_img) / height, w_img / width, h_img / height)
            )
            row_images.append(ax.imshow(img, interpolation="nearest"))
            ax.set_axis_off()
            if show_head:
                hemi, view = cells[r][c]
                fig.text((x + col_w[c] / 2) / width, 1 - (y + 2) / height, f"{hemi} {view}",
                         ha="center", va="top", fontsize=8, color="#333")  # fmt: skip
            x += col_w[c] + gap
        images.append(row_images)
        label = row_labels[r] if r < len(row_labels) else ""
        labels.append(
            fig.text(
                12 / width,
                1 - (y_img + row_h[r] / 2) / height,
                label,
                rotation=90,
                ha="center",
                va="center",
                fontsize=9,
            )  # fmt: skip
        )
        y += heights[r] + gap
    if title:
        fig.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=10)
    if colorbar:
        cmap, vmin, vmax, label = colorbar
        bar_h = min(0.6 * (height - title_h), 320)
        y_bar = title_h + (height - title_h - bar_h) / 2
        rect = ((width - right + 18) / width, 1 - (y_bar + bar_h) / height, 12 / width,
                bar_h / height)  # fmt: skip
        _add_colorbar(fig, cmap, vmin, vmax, label, rect)
    return _RasterFigure(fig, images, labels, cells)


def _raster_figure(
    maps: np.ndarray,
    row_labels: Sequence[str],
    panels: Sequence[tuple[str, str]],
    *,
    cmap: str | Colormap,
    vmin: float,
    vmax: float,
    threshold: float | None,
    scale: float,
    wrap: int | None,
    title: str | None,
    colorbar_label: str | None,
) -> _RasterFigure:
    lut = _colormap(cmap)(np.linspace(0.0, 1.0, 256)).astype(np.float32)
    style: dict[str, Any] = {
        "lut": lut,
        "vmin": vmin,
        "vmax": vmax,
        "threshold": threshold,
        "scale": scale,
    }
    grid, cells, labels = [], [], []
    for m, values in enumerate(maps):
        chunks = (
            [panels] if not wrap else [panels[i : i + wrap] for i in range(0, len(panels), wrap)]
        )
        for k, chunk in enumerate(chunks):
            grid.append([_raster_panel(values, h, v, **style) for h, v in chunk])
            cells.append(list(chunk))
            labels.append(row_labels[m] if k == 0 else "")
    colorbar = None if colorbar_label is None else (cmap, vmin, vmax, colorbar_label)
    return _raster_layout(
        grid, cells, labels, titles_every_row=bool(wrap), title=title, colorbar=colorbar
    )


def render_maps(
    maps: np.ndarray,
    row_labels: Sequence[str],
    *,
    views: Sequence[str] = ("lateral", "medial"),
    hemis: Sequence[str] = HEMIS,
    cmap: str | Colormap = "cold_hot",
    threshold: float | None = None,
    symmetric: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    colorbar_label: str | None = "predicted response",
    engine: str = "raster",
    scale: float = 1.0,
    wrap: int | None = None,
) -> plt.Figure:
    """Figure with one row per map ``[n_maps, 20484]`` and one column per (view, hemi).

    Parameters
    ----------
    engine
        ``raster`` (default: pre-rasterised inflated meshes, smooth shading, about 10 ms
        per panel once cached) or ``nilearn`` (``nilearn.plotting.plot_surf``, matplotlib
        3D, about 0.3 s per panel).
    scale
        Panel size factor of the raster engine (1: about 350 x 240 px per lateral view).
    wrap
        Raster engine: at most this many panels per row (rows of a map follow each other).
    colorbar_label
        ``None`` draws no colourbar.
    """
    maps = as_predictions(maps, what="maps")
    hemis = tuple(hemis)
    if not hemis or any(h not in HEMIS for h in hemis):
        raise TribeInputError(f"hemis must be a non-empty subset of {HEMIS}, got {list(hemis)}")
    panels = _panels(_check_views(views), hemis)
    if vmin is None or vmax is None:
        lo, hi = color_limits(maps, symmetric=symmetric)
        vmin, vmax = (lo if vmin is None else vmin), (hi if vmax is None else vmax)
    style: dict[str, Any] = {"cmap": cmap, "vmin": vmin, "vmax": vmax, "threshold": threshold}
    if engine == "nilearn":
        fig = _nilearn_figure(maps, row_labels, panels, **style)
        if colorbar_label is not None:
            _add_colorbar(fig, cmap, vmin, vmax, colorbar_label)
        if title:
            fig.suptitle(title, fontsize=10)
        return fig
    if engine != "raster":
        raise TribeInputError(f"engine must be 'raster' or 'nilearn', got {engine!r}")
    return _raster_figure(
        maps, row_labels, panels, scale=scale, wrap=wrap, title=title,
        colorbar_label=colorbar_label, **style,
    ).figure  # fmt: skip


def save_figure(fig: plt.Figure, path: Path, dpi: int = 100) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    return path


def default_trs(n_trs: int, n: int = 3) -> list[int]:
    """``n`` TRs spread evenly inside the run (quartiles for ``n=3``)."""
    if n_trs <= n:
        return list(range(n_trs))
    return sorted({int(round((i + 1) * (n_trs - 1) / (n + 1))) for i in range(n)})


def plot_brain_maps(
    predictions: np.ndarray,
    out_dir: Path,
    *,
    trs: list[int] | None = None,
    views: Sequence[str] = ("lateral", "medial"),
    cmap: str = "cold_hot",
    threshold: float | None = None,
    symmetric: bool = True,
    tr_start_s: Sequence[float] | None = None,
    all_views: bool = False,
    engine: str = "raster",
) -> list[Path]:
    """Brain maps of the time-mean and of selected TRs.

    Parameters
    ----------
    predictions
        ``[n_trs, 20484]`` (left hemisphere first).
    out_dir
        Folder for ``brain_mean.png`` (time-mean, all ``views``) and
        ``brain_mosaic.png`` (rows: time-mean, then each selected TR).
    trs
        Rows of ``predictions`` to show (default: three spread over the run).
    views
        Subset of ``lateral, medial, dorsal, ventral, anterior, posterior``.
    cmap, threshold, symmetric
        Colormap (nilearn or matplotlib name), hide ``|value| < threshold``,
        symmetric colour scale around 0.
    tr_start_s
        Optional TR onset times (one per row) to label the rows in seconds.
    all_views
        Also write ``brain_views.png`` with the six views of the time-mean.
    engine
        ``raster`` (fast, default) or ``nilearn`` (see :func:`render_maps`).

    Returns
    -------
    list of Path
        PNG files written.
    """
    preds = as_predictions(predictions)
    n_trs = preds.shape[0]
    trs = default_trs(n_trs) if trs is None else [int(t) for t in trs]
    bad = [t for t in trs if not 0 <= t < n_trs]
    if bad:
        raise TribeInputError(f"TRs {bad} out of range: predictions have {n_trs} TRs")
    out_dir = Path(out_dir)
    mean = preds.mean(axis=0)
    style: dict[str, Any] = {
        "views": views,
        "cmap": cmap,
        "threshold": threshold,
        "symmetric": symmetric,
        "engine": engine,
    }
    written = [
        save_figure(
            render_maps(mean[None], ["time mean"], title=f"Mean over {n_trs} TRs", **style),
            out_dir / "brain_mean.png",
        )
    ]

    def label(t: int) -> str:
        return f"TR {t}" if tr_start_s is None else f"TR {t} ({float(tr_start_s[t]):.1f} s)"

    rows = np.concatenate([mean[None], preds[trs]])
    fig = render_maps(rows, ["time mean"] + [label(t) for t in trs], **style)
    written.append(save_figure(fig, out_dir / "brain_mosaic.png"))
    if all_views:
        wrap = 4 if engine == "raster" else None
        fig = render_maps(mean[None], ["time mean"], **{**style, "views": VIEWS}, wrap=wrap)
        written.append(save_figure(fig, out_dir / "brain_views.png"))
    return written


def _grab(fig: plt.Figure) -> np.ndarray:
    canvas = cast(FigureCanvasAgg, fig.canvas)  # matplotlib.use("Agg") above
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2  # yuv420p needs even sizes
    return np.ascontiguousarray(rgb[:h, :w])


class _RasterMovie:
    """One raster figure whose panel pixels and time label change from frame to frame."""

    def __init__(
        self,
        first: np.ndarray,
        first_label: str,
        panels: Sequence[tuple[str, str]],
        *,
        cmap: str,
        vmin: float,
        vmax: float,
        threshold: float | None,
        scale: float,
    ) -> None:
        self.style: dict[str, Any] = {
            "vmin": vmin,
            "vmax": vmax,
            "threshold": threshold,
            "scale": scale,
        }
        self.canvas = _raster_figure(
            first[None], [first_label], panels, cmap=cmap, wrap=None, title=None,
            colorbar_label="predicted response", **self.style,
        )  # fmt: skip
        self.lut = _colormap(cmap)(np.linspace(0.0, 1.0, 256)).astype(np.float32)

    def frame(self, values: np.ndarray, label: str) -> np.ndarray:
        """``[H, W, 3]`` uint8 frame of one map (only pixels and label change)."""
        cells = self.canvas.cells[0]
        for artist, (hemi, view) in zip(self.canvas.images[0], cells, strict=True):
            artist.set_data(_raster_panel(values, hemi, view, lut=self.lut, **self.style))
        self.canvas.labels[0].set_text(label)
        return _grab(self.canvas.figure)

    def close(self) -> None:
        plt.close(self.canvas.figure)


_WORKER_MOVIE: dict[str, _RasterMovie] = {}
#: Frames a movie needs per drawing process before more than one is started.
MIN_FRAMES_PER_WORKER = 25


def _init_movie_worker(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Pool initialiser: each worker process lays out its own figure once."""
    _WORKER_MOVIE["movie"] = _RasterMovie(*args, **kwargs)


def _movie_worker_frame(item: tuple[np.ndarray, str]) -> np.ndarray:
    return _WORKER_MOVIE["movie"].frame(*item)


def movie_timeline(
    n_rows: int,
    *,
    tr_s: float = 1.0,
    tr_start_s: Sequence[float] | None = None,
    n_trs: int | None = None,
) -> list[tuple[int, float]]:
    """``(prediction row, or -1 for a TR without one; onset in s)`` for each TR of the stimulus.

    Row ``i`` belongs to the TR starting at ``tr_start_s[i]`` (default: rows are TRs
    ``0 .. n_rows - 1``); the stimulus has ``n_trs`` TRs (default: up to the last row's).
    TRs dropped for holding no event have no row.
    """
    if tr_s <= 0:
        raise TribeInputError(f"tr_s must be > 0, got {tr_s}")
    if tr_start_s is None:
        index = np.arange(n_rows)
    else:
        if len(tr_start_s) != n_rows:
            raise TribeInputError(
                f"{len(tr_start_s)} TR onsets for {n_rows} prediction rows; expected one per row"
            )
        index = np.rint(np.asarray(tr_start_s, dtype=np.float64) / tr_s).astype(np.int64)
        if n_rows and (index.min() < 0 or (np.diff(index) <= 0).any()):
            raise TribeInputError("TR onsets must be >= 0 and increasing, one TR apart or more")
    last = int(index[-1]) + 1 if n_rows else 0
    n_trs = last if n_trs is None else int(n_trs)
    if n_trs < last:
        raise TribeInputError(f"the stimulus has {n_trs} TRs but a prediction row is TR {last - 1}")
    rows = np.full(n_trs, -1, dtype=np.int64)
    rows[index] = np.arange(n_rows)
    return [(int(rows[k]), k * tr_s) for k in range(n_trs)]


def _frames(
    preds: np.ndarray,
    *,
    timeline: Sequence[tuple[int, float]],
    views: Sequence[str],
    cmap: str,
    threshold: float | None,
    symmetric: bool,
    scale: float,
    engine: str,
    workers: int = 1,
) -> Iterator[np.ndarray]:
    """Yield ``[H, W, 3]`` uint8 frames, one per TR of ``timeline``, on a fixed colour scale.

    A TR without a prediction row shows the bare brain, labelled "no prediction".
    With the raster engine and ``workers`` > 1, frames are drawn by up to that
    many forked processes (each with its own figure; at most one per
    ``MIN_FRAMES_PER_WORKER`` frames) and yielded in TR order; every frame
    equals the one a single process draws.
    """
    vmin, vmax = color_limits(preds, symmetric=symmetric)
    panels = _panels(_check_views(views), HEMIS)
    empty = np.full(preds.shape[1], np.nan, dtype=np.float32)

    def item(k: int) -> tuple[np.ndarray, str]:
        row, onset_s = timeline[k]
        if row < 0:
            return empty, f"{onset_s:.1f} s (no prediction)"
        return np.asarray(preds[row]), f"{onset_s:.1f} s"

    if engine == "raster":
        args = (*item(0), panels)
        kwargs: dict[str, Any] = {"cmap": cmap, "vmin": vmin, "vmax": vmax, "threshold": threshold,
                  "scale": scale}  # fmt: skip
        # A worker costs seconds to start (imports, mesh rasters): short movies stay serial.
        workers = min(workers, len(timeline) // MIN_FRAMES_PER_WORKER)
        if workers > 1:
            import multiprocessing

            log.info("movie: %d frames drawn by %d processes", len(timeline), workers)
            # fork, not spawn: spawn re-runs the parent's __main__ in every worker, and a
            # Snakemake script has no main guard (it would run the whole stage again).
            context = multiprocessing.get_context("fork")
            items = (item(k) for k in range(len(timeline)))
            with context.Pool(workers, _init_movie_worker, (args, kwargs)) as pool:
                yield from pool.imap(_movie_worker_frame, items, chunksize=4)
            return
        # One figure; each frame only swaps the panel pixels and the time label.
        movie = _RasterMovie(*args, **kwargs)
        try:
            for k in range(len(timeline)):
                yield movie.frame(*item(k))
        finally:
            movie.close()
        return
    for k in range(len(timeline)):
        values, label = item(k)
        fig = render_maps(
            values[None], [label], views=views, cmap=cmap, vmin=vmin, vmax=vmax, engine=engine,
            threshold=np.inf if np.isnan(values).all() else threshold,
        )  # fmt: skip
        fig.set_dpi(80)
        frame = _grab(fig)
        plt.close(fig)
        yield frame


#: x264 options of the MP4. At 25 fps each TR's frame is encoded ``25 * tr_s`` times
#: (90,000 frames for an hour at TR 1 s), which x264's default preset made the movie's
#: limit; ``veryfast`` encodes them 2.3x as fast, in a smaller file, with the same
#: picture (benchmarks/movie_encoding.py, docs/benchmarks.md).
X264_ARGS: tuple[str, ...] = ("-preset", "veryfast")


def _write_mp4(
    frames: Iterator[np.ndarray],
    tmp: Path,
    tr_s: float,
    output_fps: int,
    x264_args: Sequence[str] | None = None,
) -> None:
    """One input frame per TR (``1 / tr_s`` per second); ffmpeg repeats each to fill its TR."""
    from fractions import Fraction

    first = next(frames)
    h, w = first.shape[:2]
    per_s = 1 / Fraction(tr_s).limit_denominator(100_000)
    cmd = [
        shutil.which("ffmpeg") or "ffmpeg", "-y", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
        "-framerate", f"{per_s.numerator}/{per_s.denominator}", "-i", "-",
        "-r", str(output_fps), "-c:v", "libx264",
        *(X264_ARGS if x264_args is None else x264_args), "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-f", "mp4", str(tmp),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: S603
    assert proc.stdin is not None
    try:
        proc.stdin.write(first.tobytes())
        for frame in frames:
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed: {err.strip()[-500:]}")


def _write_gif(frames: Iterator[np.ndarray], tmp: Path, tr_s: float) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:],
        duration=int(round(1000 * tr_s)), loop=0,
    )  # fmt: skip


def make_movie(
    predictions: np.ndarray,
    out_path: Path,
    *,
    tr_s: float = 1.0,
    tr_start_s: Sequence[float] | None = None,
    n_trs: int | None = None,
    output_fps: int = 25,
    views: Sequence[str] = ("lateral", "medial"),
    cmap: str = "cold_hot",
    threshold: float | None = None,
    symmetric: bool = True,
    scale: float = 0.8,
    engine: str = "raster",
    workers: int = 1,
) -> Path:
    """Render one frame per TR and write a movie that plays in stimulus time.

    Each TR's frame is shown for ``tr_s`` seconds from its onset, so the movie
    lasts ``n_trs * tr_s`` (to within one output frame); a TR without a
    prediction row (dropped: no event) shows the bare brain, labelled so.

    Parameters
    ----------
    predictions
        ``[n_rows, 20484]``.
    out_path
        ``.mp4`` (H.264 via ffmpeg) or ``.gif``. If ffmpeg is missing or fails for an
        ``.mp4``, a GIF is written next to it (same stem) instead.
    tr_s
        Repetition time: how long each frame is shown.
    tr_start_s
        Onset of each row's TR (the kept TRs of ``predictions.zarr``); default
        rows are TRs ``0 .. n_rows - 1``.
    n_trs
        TRs of the stimulus (default: up to the last row's TR).
    output_fps
        Frame rate of the MP4 (a standard rate players handle; each TR's frame is
        repeated ``tr_s * output_fps`` times, which H.264 stores almost for free).
    scale, engine
        Panel size and renderer (see :func:`render_maps`).
    workers
        Processes drawing frames (raster engine; frames identical to one process's).

    Returns
    -------
    Path
        The file written (``.mp4``, or ``.gif`` on fallback).
    """
    preds = as_predictions(predictions)
    if output_fps <= 0:
        raise TribeInputError(f"output_fps must be > 0, got {output_fps}")
    timeline = movie_timeline(len(preds), tr_s=tr_s, tr_start_s=tr_start_s, n_trs=n_trs)
    out_path = Path(out_path)
    style: dict[str, Any] = {
        "timeline": timeline,
        "views": _check_views(views),
        "cmap": cmap,
        "threshold": threshold,
        "symmetric": symmetric,
        "scale": scale,
        "engine": engine,
        "workers": workers,
    }
    if out_path.suffix.lower() == ".gif":
        with atomic_path(out_path) as tmp:
            _write_gif(_frames(preds, **style), tmp, tr_s)
        return out_path
    if shutil.which("ffmpeg"):
        try:
            with atomic_path(out_path) as tmp:
                _write_mp4(_frames(preds, **style), tmp, tr_s, output_fps)
            return out_path
        except (RuntimeError, OSError):
            pass
    gif = out_path.with_suffix(".gif")
    with atomic_path(gif) as tmp:
        _write_gif(_frames(preds, **style), tmp, tr_s)
    return gif
