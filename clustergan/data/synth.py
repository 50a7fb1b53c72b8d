"""A procedural paired dataset with a KNOWN number of output modes, for tests and smoke runs.

Every pair shows one random facade-like layout (a wall with a grid of windows, a door, maybe a balcony
and ornaments) twice:

- B (right half, the source with ``direction="BtoA"``, as in facades): a label map, each region class in
  a flat label colour;
- A (left half, the target): a rendering of the same layout in one of ``num_modes`` "materials". Mode m
  has its own hue family (hue centre ``m / num_modes`` of the colour wheel, every region class a shade of
  it) and its own texture on wall and background (plain, diagonal stripes, dots, checker, repeating
  for more than four modes).

The mode is drawn independently of the layout (a balanced random permutation per split), so a generator
can only match the target distribution by producing every mode for every source. ``modes.json`` records
each file's mode; :func:`classify_mode` recovers the mode of an image from its colours alone, which is
how mode coverage of generated images is measured.

Everything is drawn from numpy generators seeded by ``(seed, split, index)``: the same arguments give
byte-identical PNG files.
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clustergan.errors import ConfigError, DataError

# Region classes of the layout and their flat label colours (the source image).
CLASSES = ("background", "wall", "window", "door", "balcony", "ornament")
LABEL_COLOURS = np.array(
    [
        [0, 0, 140],  # background
        [20, 90, 255],  # wall
        [0, 210, 255],  # window
        [255, 170, 0],  # door
        [220, 0, 70],  # balcony
        [140, 255, 110],  # ornament
    ],
    dtype=np.uint8,
)
# Per class: (hue offset in units of the mode's half-width, saturation, value) of the rendering.
CLASS_SHADES = (
    (-1.0, 0.30, 0.95),  # background: pale
    (0.0, 0.65, 0.80),  # wall: the material itself
    (1.0, 0.80, 0.35),  # window: dark
    (-0.5, 0.90, 0.50),  # door
    (0.5, 0.50, 0.60),  # balcony
    (0.0, 0.40, 0.95),  # ornament: light
)
TEXTURES = ("plain", "stripes", "dots", "checker")
MAX_MODES = 8
SPLITS = ("train", "test")
# Below this mean chroma an image has no dominant hue and :func:`classify_mode` returns -1.
MIN_CHROMA = 0.04


def mode_hue(mode: int, num_modes: int) -> float:
    """Hue centre of ``mode`` as a fraction of the colour wheel (0 = red)."""
    return mode / num_modes


def _check_args(num_modes: int, size: int) -> None:
    if not isinstance(num_modes, int) or not 1 <= num_modes <= MAX_MODES:
        raise ConfigError(f"num_modes {num_modes!r} must be an integer from 1 to {MAX_MODES}")
    if not isinstance(size, int) or size < 16:
        raise ConfigError(f"synthetic image size {size!r} must be an integer >= 16")


def _rect(labels: np.ndarray, cls: int, top: float, left: float, bottom: float, right: float) -> None:
    size = labels.shape[0]
    t, lf, b, r = (int(round(v * size)) for v in (top, left, bottom, right))
    labels[max(t, 0) : max(b, t + 1), max(lf, 0) : max(r, lf + 1)] = cls


def make_layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random facade-like class map, [size, size] int (indices into :data:`CLASSES`)."""
    labels = np.zeros((size, size), dtype=np.int64)
    wall_left, wall_right = rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0)
    wall_top = rng.uniform(0.05, 0.3)
    _rect(labels, 1, wall_top, wall_left, 1.0, wall_right)
    # Windows on a jittered grid above the ground floor.
    rows, cols = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    floor_h = (0.78 - wall_top) / rows
    col_w = (wall_right - wall_left) / cols
    win_h, win_w = floor_h * rng.uniform(0.4, 0.7), col_w * rng.uniform(0.35, 0.65)
    for r in range(rows):
        for c in range(cols):
            top = wall_top + r * floor_h + (floor_h - win_h) / 2
            left = wall_left + c * col_w + (col_w - win_w) / 2
            _rect(labels, 2, top, left, top + win_h, left + win_w)
    if rng.random() < 0.6:  # a balcony under one row of windows
        r = int(rng.integers(0, rows))
        top = wall_top + (r + 1) * floor_h - floor_h * 0.2
        _rect(labels, 4, top, wall_left + col_w * 0.2, top + floor_h * 0.12, wall_right - col_w * 0.2)
    door_w, door_h = rng.uniform(0.12, 0.22), rng.uniform(0.15, 0.2)
    door_left = rng.uniform(wall_left, wall_right - door_w)
    _rect(labels, 3, 1.0 - door_h, door_left, 1.0, door_left + door_w)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for _ in range(int(rng.integers(0, 4))):  # ornaments: small ellipses on the wall
        cy, cx = rng.uniform(wall_top, 0.8), rng.uniform(wall_left, wall_right)
        ry, rx = rng.uniform(0.02, 0.05), rng.uniform(0.03, 0.08)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        labels[inside & (labels == 1)] = 5
    return labels


def texture_mask(texture: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """[size, size] float mask in [0, 1]: where the texture darkens the material; random phase."""
    period = max(size // 8, 2)
    yy, xx = np.mgrid[0:size, 0:size]
    yy = yy + int(rng.integers(0, period))
    xx = xx + int(rng.integers(0, period))
    if texture == "plain":
        return np.zeros((size, size))
    if texture == "stripes":
        return (((xx + yy) % period) < period / 2).astype(float)
    if texture == "dots":
        dy, dx = yy % period - (period - 1) / 2, xx % period - (period - 1) / 2
        return (dy**2 + dx**2 <= (period * 0.3) ** 2).astype(float)
    if texture == "checker":
        return (((yy // period) + (xx // period)) % 2).astype(float)
    raise ValueError(f"unknown texture {texture!r}")


def render(labels: np.ndarray, mode: int, num_modes: int, rng: np.random.Generator) -> np.ndarray:
    """Render a class map in ``mode``'s palette and texture: [H, W, 3] uint8."""
    size = labels.shape[0]
    # A mode's shades spread +-12% of the gap between neighbouring hue centres: far from the midpoint
    # where classify_mode's decision flips.
    half_width = 0.12 / num_modes
    hue = mode_hue(mode, num_modes) + rng.uniform(-0.3, 0.3) * half_width
    brightness = rng.uniform(0.9, 1.05)
    palette = np.array(
        [
            colorsys.hsv_to_rgb((hue + dh * half_width) % 1.0, sat, min(val * brightness, 1.0))
            for dh, sat, val in CLASS_SHADES
        ]
    )
    image = palette[labels]  # [H, W, 3] in [0, 1]
    mask = texture_mask(TEXTURES[mode % len(TEXTURES)], size, rng)
    strength = np.where(np.isin(labels, (0, 1)), 0.45, 0.15)  # texture mostly on the material
    image = image * (1.0 - strength * mask)[..., None]
    image = image + rng.normal(0.0, 0.012, image.shape)  # a little sensor noise
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def make_pair(seed: int, split: str, index: int, mode: int, num_modes: int, size: int) -> np.ndarray:
    """One A|B pair, [size, 2 * size, 3] uint8: the rendering (A) left, the label map (B) right."""
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    labels = make_layout(rng, size)
    return np.concatenate([render(labels, mode, num_modes, rng), LABEL_COLOURS[labels]], axis=1)


def make_synth(
    out: str | Path,
    num_modes: int = 4,
    n_train: int = 96,
    n_test: int = 24,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write the synthetic dataset to ``out/{train,test}/NNNN.png`` plus ``out/modes.json``.

    Modes are balanced within a split (each split's modes are a random permutation of
    ``index % num_modes``). ``out`` must not exist or be empty; the files are written to a temporary
    sibling folder and moved into place at the end, so a failure leaves no partial dataset.
    Prints a one-line summary and returns ``out``.
    """
    _check_args(num_modes, size)
    counts = {"train": n_train, "test": n_test}
    for split, n in counts.items():
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"number of {split} images {n!r} must be a positive integer")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed {seed!r} must be a non-negative integer")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"output folder {out} already exists and is not empty: delete it or choose another")
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        record: dict = {"num_modes": num_modes, "seed": seed, "size": size}
        digits = max(4, len(str(max(n_train, n_test) - 1)))  # zero-padded so names sort numerically
        for split_id, (split, n) in enumerate(counts.items()):
            modes = np.random.default_rng([seed, split_id, 2**31]).permutation(np.arange(n) % num_modes)
            (tmp / split).mkdir(parents=True)
            record[split] = {}
            for index in range(n):
                name = f"{index:0{digits}d}.png"
                pair = make_pair(seed, split, index, int(modes[index]), num_modes, size)
                Image.fromarray(pair).save(tmp / split / name)
                record[split][name] = int(modes[index])
        (tmp / "modes.json").write_text(json.dumps(record, indent=1) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"synthetic dataset: {n_train} train + {n_test} test pairs, {num_modes} modes, {size}px, seed {seed} -> {out}"
    )
    return out


def _read_record(root: str | Path) -> dict:
    path = Path(root) / "modes.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(
            f"{path} not found: {root} is not a synthetic dataset made by `clustergan data synth`"
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read {path} ({err}): regenerate it with `clustergan data synth`") from err
    if not isinstance(record, dict) or not isinstance(record.get("num_modes"), int):
        raise DataError(f"{path} has no integer num_modes: regenerate it with `clustergan data synth`")
    return record


def read_modes(root: str | Path, split: str) -> dict[str, int]:
    """The true mode of every file of a synthetic split, from ``root/modes.json``: {file name: mode}."""
    path = Path(root) / "modes.json"
    record = _read_record(root)
    if split not in record:
        raise DataError(f"{path} has no split {split!r} (has {', '.join(s for s in SPLITS if s in record)})")
    return {name: int(mode) for name, mode in record[split].items()}


def read_num_modes(root: str | Path) -> int:
    """The number of modes recorded in ``root/modes.json``."""
    return _read_record(root)["num_modes"]


def mean_hue_vector(images: torch.Tensor) -> torch.Tensor:
    """Per-image mean opponent-colour vector, [N, 3, H, W] in [-1, 1] -> [N, 2].

    For RGB in [0, 1], ``a = R - (G + B) / 2`` and ``b = sqrt(3) / 2 * (G - B)``: the vector's angle is
    (close to) the HSV hue and its length the chroma, so averaging it over pixels weighs each pixel's hue
    by how coloured it is; dark texture lines and grey pixels barely count.
    """
    rgb = (images.float().clamp(-1, 1) + 1) / 2
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    a = (r - (g + b) / 2).mean(dim=(1, 2))
    bb = (math.sqrt(3) / 2 * (g - b)).mean(dim=(1, 2))
    return torch.stack([a, bb], dim=1)


def classify_mode(images: torch.Tensor, num_modes: int = 4) -> torch.Tensor:
    """The synthetic mode of each image by a fixed colour rule: [N, 3, H, W] in [-1, 1] -> LongTensor [N].

    Rule: take the image's mean opponent-colour vector (:func:`mean_hue_vector`); its angle is the
    dominant hue, and the mode is the one whose hue centre (:func:`mode_hue`) is nearest on the colour
    wheel. Images whose mean chroma is below :data:`MIN_CHROMA` (grey, or colours of opposite modes
    cancelling out) have no dominant hue and get -1. Nothing is learned, so it measures generated
    images without bias toward any model. Texture is not used: the hue decides.
    """
    _check_args(num_modes, 16)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [N, 3, H, W], got {tuple(images.shape)}")
    vec = mean_hue_vector(images)
    angle = torch.atan2(vec[:, 1], vec[:, 0]) / (2 * math.pi)  # in turns, (-0.5, 0.5]
    centres = torch.tensor([mode_hue(m, num_modes) for m in range(num_modes)])
    diff = (angle[:, None] - centres[None, :] + 0.5) % 1.0 - 0.5  # circular difference in turns
    modes = diff.abs().argmin(dim=1)
    modes[vec.norm(dim=1) < MIN_CHROMA] = -1
    return modes
