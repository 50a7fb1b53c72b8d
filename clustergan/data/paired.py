"""Paired images in the pix2pix layout: ``root/{train,test}/*.jpg|*.jpeg|*.png``.

Each file holds one pair side by side, A on the left and B on the right (width == 2 * height).
``direction="AtoB"`` makes A the source and B the target; ``"BtoA"`` swaps them. Facades stores the
photo as A and the label map as B, so label map -> photo is ``"BtoA"``; the synthetic dataset
(:mod:`clustergan.data.synth`) uses the same convention.

Images come out as float tensors in [-1, 1], [3, size, size]. Training-time augmentation follows
pix2pix: resize both halves to ``load_size``, then one random crop of ``size`` and one random
horizontal flip applied to source AND target alike. Training passes a seed: each item's augmentation is
then a function of (seed, epoch, index) alone, reproducible and identical whichever rank or DataLoader
worker loads it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from clustergan.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
DIRECTIONS = ("AtoB", "BtoA")


def default_load_size(size: int) -> int:
    """pix2pix's resize-before-crop side: ``size * 1.12`` rounded to an even number (256 -> 286)."""
    return 2 * round(size * 0.56)


def list_images(root: str | Path, split: str) -> list[Path]:
    """The image files of ``root/split``, sorted by file name.

    Hidden files (names starting with ".", e.g. ``.DS_Store``) are skipped; any other entry that is
    not a .jpg/.jpeg/.png file is an error, so that a stray file never goes unnoticed.
    """
    folder = Path(root) / split
    if not folder.is_dir():
        raise DataError(
            f"split folder {folder} does not exist: a paired dataset needs {folder}/ holding A|B images "
            f"(make one with `clustergan data synth` or `clustergan data fetch facades`)"
        )
    paths = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_file() or entry.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(
                f"{entry} is not an image file (expected {', '.join(IMAGE_EXTENSIONS)}): remove it from {folder}"
            )
        paths.append(entry)
    if not paths:
        raise DataError(
            f"split folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}): put the A|B pairs there"
        )
    return paths


def _check_pair_size(path: Path, width: int, height: int) -> None:
    if width % 2 != 0 or width != 2 * height:
        raise DataError(
            f"{path} is {width}x{height}, not an A|B pair: expected A and B side by side with "
            f"width == 2 * height; fix or remove the file"
        )


def check_pair_header(path: Path) -> tuple[int, int]:
    """Read only the header of ``path`` and check it is an A|B pair; returns (width, height)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except (OSError, SyntaxError, ValueError) as err:  # UnidentifiedImageError is an OSError
        raise DataError(f"cannot read image {path} ({err}): replace or remove the file") from err
    _check_pair_size(path, width, height)
    return width, height


def load_pair(path: Path) -> tuple[Image.Image, Image.Image]:
    """Fully decode ``path`` (catching truncated files) and split it into RGB halves (A, B).

    Grayscale, RGBA and palette images are converted to RGB (alpha is dropped).
    """
    try:
        img = Image.open(path)
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot read image {path} ({err}): replace or remove the file") from err
    with img:
        width, height = img.size
        _check_pair_size(path, width, height)
        try:
            img.load()  # full decode: a truncated JPEG passes the header check but fails here
            rgb = img.convert("RGB")
        except (OSError, SyntaxError, ValueError) as err:
            raise DataError(f"image {path} is truncated or corrupt ({err}): replace or remove the file") from err
    half = width // 2
    return rgb.crop((0, 0, half, height)), rgb.crop((half, 0, width, height))


def _to_unit_range(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float [3, H, W] in [-1, 1]."""
    return pil_to_tensor(img).float().div_(127.5).sub_(1.0)


def to_model_input(img: Image.Image, size: int) -> torch.Tensor:
    """One RGB image as the generator sees it at test time: bicubic resize to ``size`` x ``size``, then
    [3, size, size] in [-1, 1]. The dataset's evaluation path and ``clustergan sample`` both call this, so a
    sampled image is preprocessed exactly as an evaluated one."""
    return _to_unit_range(img.resize((size, size), Image.BICUBIC))


def read_source_image(path: Path, direction: str, size: int) -> torch.Tensor:
    """The generator input of one file: an A|B pair (width = 2 x height) gives its source half for
    ``direction``; any other image is the source itself. -> [3, size, size] in [-1, 1]."""
    _check_direction(direction)
    try:
        with Image.open(path) as img:
            width, height = img.size
            img.load()
            rgb = img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot read image {path} ({err}): replace or remove the file") from err
    if width == 2 * height:
        a, b = load_pair(path)
        rgb = a if direction == "AtoB" else b
    return to_model_input(rgb, size)


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise DataError(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}: pick one of them")


class PairedImageDataset(torch.utils.data.Dataset):
    """Paired A|B images of one split, as ``{"source": [3, S, S], "target": [3, S, S], "index": int}``.

    Args:
        root: dataset folder holding ``train/``, ``test/`` (and possibly ``val/``).
        split: sub-folder name.
        direction: ``"AtoB"`` (source = left half) or ``"BtoA"`` (source = right half).
        size: side S of the returned square images.
        train: True for pix2pix augmentation (resize to ``load_size``, shared random crop and flip),
            False for a plain resize to ``size``.
        load_size: resize side before the random crop; default :func:`default_load_size` (286 for 256).
        seed: with a seed, each item's crop and flip are drawn from a generator seeded by (seed, epoch,
            index) (see :meth:`set_epoch`), so they do not depend on which process or DataLoader worker
            loads the item: 2 DDP workers see exactly the augmentations 1 process would. None draws from
            torch's global RNG.

    Every file's header is checked at construction (cheap); each file is fully decoded when loaded,
    so a truncated image raises :class:`DataError` naming it on first use.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        direction: str,
        size: int,
        train: bool,
        load_size: int | None = None,
        seed: int | None = None,
    ) -> None:
        _check_direction(direction)
        if not isinstance(size, int) or size < 1:
            raise ConfigError(f"image size {size!r} must be a positive integer")
        load_size = default_load_size(size) if load_size is None else load_size
        if not isinstance(load_size, int) or load_size < size:
            raise ConfigError(f"load_size {load_size!r} must be an integer >= size ({size})")
        self.root = Path(root)
        self.split = split
        self.direction = direction
        self.size = size
        self.train = train
        self.load_size = load_size
        self.seed = seed
        self.epoch = 0
        self.paths = list_images(self.root, split)
        for path in self.paths:
            check_pair_header(path)

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """With a ``seed``: the epoch whose augmentations :meth:`__getitem__` draws (call before iterating)."""
        self.epoch = epoch

    def _generator(self, index: int) -> torch.Generator | None:
        if self.seed is None:
            return None
        # one 63-bit seed per (seed, epoch, index); distinct triples give distinct streams
        key = hashlib.sha256(f"{self.seed}:{self.epoch}:{index}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(key[:8], "little") >> 1)

    def __getitem__(self, index: int) -> dict:
        a, b = load_pair(self.paths[index])
        source, target = (a, b) if self.direction == "AtoB" else (b, a)
        if not self.train:
            return {
                "source": to_model_input(source, self.size),
                "target": to_model_input(target, self.size),
                "index": index,
            }
        side = (self.load_size, self.load_size)
        source = _to_unit_range(source.resize(side, Image.BICUBIC))
        target = _to_unit_range(target.resize(side, Image.BICUBIC))
        # One crop offset and one flip decision shared by both halves, so the pair stays aligned.
        gen = self._generator(index)
        top, left = torch.randint(0, self.load_size - self.size + 1, (2,), generator=gen).tolist()
        flip = bool(torch.rand((), generator=gen) < 0.5)
        crops = []
        for img in (source, target):
            img = img[:, top : top + self.size, left : left + self.size]
            crops.append(img.flip(-1) if flip else img)
        return {"source": crops[0], "target": crops[1], "index": index}


def _load_side(root: str | Path, split: str, direction: str, size: int, side: str) -> tuple[torch.Tensor, list[str]]:
    dataset = PairedImageDataset(root, split, direction, size, train=False)
    images = torch.stack([dataset[i][side] for i in range(len(dataset))])
    return images, [p.name for p in dataset.paths]


def load_targets(root: str | Path, split: str, direction: str, size: int) -> tuple[torch.Tensor, list[str]]:
    """All targets of a split without augmentation: ([N, 3, size, size] in [-1, 1], file names sorted)."""
    return _load_side(root, split, direction, size, "target")


def load_sources(root: str | Path, split: str, direction: str, size: int) -> tuple[torch.Tensor, list[str]]:
    """All sources of a split without augmentation: ([N, 3, size, size] in [-1, 1], file names sorted)."""
    return _load_side(root, split, direction, size, "source")


def dataset_fingerprint(root: str | Path, split: str) -> str:
    """A 16-hex-digit hash of the split's file names and bytes, for cache keys.

    Any renamed, added, removed or edited image changes it; the root's own path does not.
    """
    digest = hashlib.sha256()
    for path in list_images(root, split):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
