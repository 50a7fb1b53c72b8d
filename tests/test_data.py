"""Tests of clustergan.data.paired and clustergan.data.synth on tiny generated images."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clustergan.data import (
    PairedImageDataset,
    classify_mode,
    dataset_fingerprint,
    default_load_size,
    load_sources,
    load_targets,
    make_synth,
    read_modes,
    read_num_modes,
)
from clustergan.errors import ConfigError, DataError

torch.set_num_threads(1)

FACADES = Path(
    os.environ.get("CLUSTERGAN_FACADES") or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "facades"
)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    """The default synthetic dataset: 96 train + 24 test pairs of 64 px, 4 modes."""
    return make_synth(tmp_path_factory.mktemp("synth") / "synth")


def write_pair(path: Path, left: np.ndarray, right: np.ndarray, mode: str = "RGB") -> Path:
    """Save A|B from two [H, W, 3] uint8 halves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([left, right], axis=1)).convert(mode).save(path)
    return path


def noise_pair(path: Path, side: int = 16, seed: int = 0) -> Path:
    """A pair whose A and B halves are the same random image (so crops/flips must stay aligned)."""
    half = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return write_pair(path, half, half)


# ----------------------------------------------------------------------------- paired: layout


def test_items_have_the_documented_layout(synth_root):
    ds = PairedImageDataset(synth_root, "train", "BtoA", size=32, train=True)
    assert len(ds) == 96
    assert [p.name for p in ds.paths] == sorted(p.name for p in ds.paths)
    item = ds[5]
    assert set(item) == {"source", "target", "index"}
    assert item["index"] == 5
    for key in ("source", "target"):
        assert item[key].shape == (3, 32, 32)
        assert item[key].dtype == torch.float32
        assert item[key].min() >= -1.0 and item[key].max() <= 1.0
        assert item[key].min() < -0.5 and item[key].max() > 0.5  # the full range is used, not [0, 1]


def test_seeded_augmentation_depends_on_seed_epoch_and_index_only(synth_root):
    ds = PairedImageDataset(synth_root, "train", "BtoA", size=32, train=True, seed=3)
    other = PairedImageDataset(synth_root, "train", "BtoA", size=32, train=True, seed=3)
    torch.manual_seed(0)
    first = ds[7]["target"]
    torch.manual_seed(123)  # the global RNG (another rank, another worker) does not matter
    assert torch.equal(other[7]["target"], first)

    # over 24 items, another epoch or another seed changes some crop or flip (each item: 1 - 1/(2*5*5) odds)
    def items(d):
        return torch.stack([d[i]["target"] for i in range(24)])

    base = items(ds)
    other.set_epoch(1)
    assert not torch.equal(items(other), base)
    assert not torch.equal(items(PairedImageDataset(synth_root, "train", "BtoA", size=32, train=True, seed=4)), base)
    ds.set_epoch(1)
    assert torch.equal(items(ds), items(other))


def test_eval_images_are_exact_at_native_size(tmp_path):
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 2] = 255
    write_pair(tmp_path / "train" / "a.png", red, blue)
    item = PairedImageDataset(tmp_path, "train", "AtoB", size=8, train=False)[0]
    assert torch.equal(item["source"], torch.tensor([1.0, -1.0, -1.0])[:, None, None].expand(3, 8, 8))
    assert torch.equal(item["target"], torch.tensor([-1.0, -1.0, 1.0])[:, None, None].expand(3, 8, 8))


def test_direction_swaps_source_and_target(synth_root):
    a2b = PairedImageDataset(synth_root, "test", "AtoB", size=32, train=False)[3]
    b2a = PairedImageDataset(synth_root, "test", "BtoA", size=32, train=False)[3]
    assert torch.equal(a2b["source"], b2a["target"])
    assert torch.equal(a2b["target"], b2a["source"])
    assert not torch.equal(a2b["source"], a2b["target"])


def test_default_load_size_follows_pix2pix():
    assert default_load_size(256) == 286
    assert default_load_size(128) == 144
    assert default_load_size(64) == 72


def test_train_augmentation_is_shared_by_source_and_target_and_seeded(tmp_path):
    for i in range(4):
        noise_pair(tmp_path / "train" / f"{i}.png", side=20, seed=i)
    ds = PairedImageDataset(tmp_path, "train", "AtoB", size=16, train=True)
    assert ds.load_size == 18

    def draw(seed):
        torch.manual_seed(seed)
        return [ds[i % 4] for i in range(12)]

    first, again, other = draw(0), draw(0), draw(1)
    for a, b in zip(first, again, strict=False):
        assert torch.equal(a["source"], b["source"]) and torch.equal(a["target"], b["target"])
    # Identical halves stay identical only if crop and flip are the same for both.
    assert all(torch.equal(item["source"], item["target"]) for item in first)
    assert any(not torch.equal(a["source"], b["source"]) for a, b in zip(first, other, strict=False))


def test_train_flip_without_crop(tmp_path):
    noise_pair(tmp_path / "train" / "0.png", side=8)
    plain = PairedImageDataset(tmp_path, "train", "AtoB", size=8, train=False)[0]["source"]
    ds = PairedImageDataset(tmp_path, "train", "AtoB", size=8, train=True, load_size=8)
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        src = ds[0]["source"]
        if torch.equal(src, plain):
            seen.add("plain")
        elif torch.equal(src, plain.flip(-1)):
            seen.add("flipped")
        else:
            raise AssertionError("with load_size == size the only change may be a horizontal flip")
    assert seen == {"plain", "flipped"}


def test_load_targets_and_sources_match_the_dataset(synth_root):
    targets, names = load_targets(synth_root, "test", "BtoA", 32)
    sources, source_names = load_sources(synth_root, "test", "BtoA", 32)
    assert targets.shape == sources.shape == (24, 3, 32, 32)
    assert names == source_names == sorted(names) and names[0] == "0000.png"
    ds = PairedImageDataset(synth_root, "test", "BtoA", size=32, train=False)
    assert torch.equal(targets[7], ds[7]["target"])
    assert torch.equal(sources[7], ds[7]["source"])


def test_grayscale_rgba_and_palette_images_become_rgb(tmp_path):
    half = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for mode in ("L", "RGBA", "P"):
        write_pair(tmp_path / "train" / f"{mode}.png", half, half, mode=mode)
    ds = PairedImageDataset(tmp_path, "train", "AtoB", size=8, train=False)
    items = {p.stem: ds[i] for i, p in enumerate(ds.paths)}
    assert all(item["source"].shape == (3, 8, 8) for item in items.values())
    grey = items["L"]["source"]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    expected_rgba = torch.from_numpy(half).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(items["RGBA"]["source"], expected_rgba)  # alpha dropped, colours kept


def test_hidden_files_are_ignored(tmp_path):
    noise_pair(tmp_path / "train" / "0.png")
    (tmp_path / "train" / ".DS_Store").write_bytes(b"\0\1")
    assert len(PairedImageDataset(tmp_path, "train", "AtoB", size=8, train=False)) == 1


def test_fingerprint_tracks_names_and_bytes_not_location(tmp_path, synth_root):
    copy = tmp_path / "copy"
    shutil.copytree(synth_root, copy)
    fp = dataset_fingerprint(synth_root, "train")
    assert len(fp) == 16 and fp == dataset_fingerprint(copy, "train")
    assert fp != dataset_fingerprint(synth_root, "test")
    first = copy / "train" / "0000.png"
    first.rename(copy / "train" / "renamed.png")
    renamed = dataset_fingerprint(copy, "train")
    assert renamed != fp
    data = bytearray((copy / "train" / "0001.png").read_bytes())
    data[-20] ^= 1
    (copy / "train" / "0001.png").write_bytes(bytes(data))
    assert dataset_fingerprint(copy, "train") != renamed


# ----------------------------------------------------------------------------- paired: bad input


def test_missing_split_folder(tmp_path):
    with pytest.raises(DataError, match=r"split folder .*train does not exist"):
        PairedImageDataset(tmp_path, "train", "AtoB", size=8, train=True)


def test_empty_split_folder(tmp_path):
    (tmp_path / "test").mkdir()
    with pytest.raises(DataError, match=r"split folder .*test holds no images"):
        PairedImageDataset(tmp_path, "test", "AtoB", size=8, train=False)


def test_non_image_file(tmp_path):
    noise_pair(tmp_path / "train" / "0.png")
    (tmp_path / "train" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"notes\.txt is not an image file .*remove it"):
        PairedImageDataset(tmp_path, "train", "AtoB", size=8, train=True)


def test_unreadable_image(tmp_path):
    noise_pair(tmp_path / "train" / "0.png")
    (tmp_path / "train" / "1.png").write_text("not really a png")
    with pytest.raises(DataError, match=r"cannot read image .*1\.png .*replace or remove"):
        PairedImageDataset(tmp_path, "train", "AtoB", size=8, train=True)


def test_truncated_jpeg_is_caught_on_first_load(tmp_path):
    path = tmp_path / "train" / "cut.jpg"
    noise_pair(tmp_path / "train" / "cut.png", side=64)
    Image.open(tmp_path / "train" / "cut.png").save(path, quality=95)
    (tmp_path / "train" / "cut.png").unlink()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    ds = PairedImageDataset(tmp_path, "train", "AtoB", size=32, train=False)  # the header is intact
    with pytest.raises(DataError, match=r"image .*cut\.jpg is truncated or corrupt"):
        ds[0]
    with pytest.raises(DataError, match=r"cut\.jpg is truncated or corrupt"):
        load_targets(tmp_path, "train", "AtoB", 32)


@pytest.mark.parametrize("width, height", [(9, 4), (12, 4), (8, 8)])
def test_image_that_is_not_a_pair(tmp_path, width, height):
    noise_pair(tmp_path / "train" / "0.png")
    Image.new("RGB", (width, height)).save(tmp_path / "train" / "odd.png")
    message = rf"odd\.png is {width}x{height}, not an A\|B pair: expected .*width == 2 \* height"
    with pytest.raises(DataError, match=message):
        PairedImageDataset(tmp_path, "train", "AtoB", size=8, train=False)


def test_bad_direction(synth_root):
    with pytest.raises(DataError, match=r"direction 'AtoC' is not one of AtoB, BtoA"):
        PairedImageDataset(synth_root, "train", "AtoC", size=8, train=False)


def test_bad_sizes(synth_root):
    with pytest.raises(ConfigError, match=r"load_size 30 must be an integer >= size \(32\)"):
        PairedImageDataset(synth_root, "train", "AtoB", size=32, train=True, load_size=30)
    with pytest.raises(ConfigError, match=r"image size 0 must be a positive integer"):
        PairedImageDataset(synth_root, "train", "AtoB", size=0, train=True)


# ----------------------------------------------------------------------------- synth


def test_synth_layout_and_modes_file(synth_root):
    record = json.loads((synth_root / "modes.json").read_text())
    assert record["num_modes"] == 4 and record["seed"] == 0 and record["size"] == 64
    assert read_num_modes(synth_root) == 4
    for split, n in (("train", 96), ("test", 24)):
        files = sorted(p.name for p in (synth_root / split).iterdir())
        assert files == [f"{i:04d}.png" for i in range(n)]
        modes = read_modes(synth_root, split)
        assert sorted(modes) == files
        assert np.bincount(list(modes.values())).tolist() == [n // 4] * 4  # balanced
    with Image.open(synth_root / "train" / "0000.png") as img:
        assert img.size == (128, 64) and img.mode == "RGB"


def test_synth_is_deterministic_by_seed(tmp_path, capsys):
    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    kwargs = dict(num_modes=3, n_train=6, n_test=3, size=32)
    a = files(make_synth(tmp_path / "a", seed=7, **kwargs))
    b = files(make_synth(tmp_path / "b", seed=7, **kwargs))
    c = files(make_synth(tmp_path / "c", seed=8, **kwargs))
    assert a == b
    assert a.keys() == c.keys() and a["train/0000.png"] != c["train/0000.png"]
    assert "synthetic dataset: 6 train + 3 test pairs, 3 modes, 32px, seed 7 ->" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # no temporary folders left


def test_synth_source_is_a_flat_label_map(synth_root):
    with Image.open(synth_root / "train" / "0003.png") as img:
        label_map = np.asarray(img)[:, 64:].reshape(-1, 3)
    assert len(np.unique(label_map, axis=0)) <= 6


def test_synth_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match=r"out already exists and is not empty"):
        make_synth(tmp_path / "out", n_train=2, n_test=1)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_synth_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match=r"num_modes 9 must be an integer from 1 to 8"):
        make_synth(tmp_path / "x", num_modes=9)
    with pytest.raises(ConfigError, match=r"number of test images 0 must be a positive integer"):
        make_synth(tmp_path / "x", n_test=0)
    with pytest.raises(ConfigError, match=r"synthetic image size 8 must be an integer >= 16"):
        make_synth(tmp_path / "x", size=8)
    assert not (tmp_path / "x").exists()


def test_read_modes_of_a_non_synthetic_folder(tmp_path):
    with pytest.raises(DataError, match=r"modes\.json not found: .* is not a synthetic dataset"):
        read_modes(tmp_path, "train")


@pytest.mark.parametrize("size", [32, 64])
def test_classify_mode_recovers_the_true_modes(synth_root, size):
    correct = total = 0
    for split in ("train", "test"):
        targets, names = load_targets(synth_root, split, "BtoA", size)
        truth = read_modes(synth_root, split)
        predicted = classify_mode(targets, num_modes=4)
        correct += sum(int(p) == truth[n] for p, n in zip(predicted, names, strict=False))
        total += len(names)
    assert correct / total >= 0.99


def test_classify_mode_rule_on_plain_colours():
    # Hue centres for 4 modes: red (0), chartreuse (90 deg), cyan (180 deg), violet (270 deg).
    colours = torch.tensor([[1.0, 0.2, 0.2], [0.5, 1.0, 0.0], [0.0, 0.9, 0.9], [0.5, 0.0, 1.0], [0.5, 0.5, 0.5]])
    images = (colours * 2 - 1)[:, :, None, None].expand(5, 3, 4, 4)
    assert classify_mode(images, num_modes=4).tolist() == [0, 1, 2, 3, -1]  # grey has no mode
    cyan = torch.tensor([0.2, 1.0, 1.0])[:, None, None].expand(3, 4, 2) * 2 - 1  # as saturated as the red
    half = torch.cat([images[0:1, :, :, :2], cyan[None]], dim=3)  # red | cyan: the hues cancel out
    assert classify_mode(half, num_modes=4).tolist() == [-1]


def test_classify_mode_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"expected images \[N, 3, H, W\]"):
        classify_mode(torch.zeros(3, 8, 8))


# ----------------------------------------------------------------------------- facades


@pytest.mark.skipif(not FACADES.is_dir(), reason=f"facades not found at {FACADES} (set CLUSTERGAN_FACADES)")
def test_facades_loads():
    train = PairedImageDataset(FACADES, "train", "BtoA", size=64, train=True)
    test = PairedImageDataset(FACADES, "test", "BtoA", size=64, train=False)
    assert len(train) == 400 and len(test) == 106
    torch.manual_seed(0)
    item = train[0]
    assert item["source"].shape == item["target"].shape == (3, 64, 64)
    targets, names = load_targets(FACADES, "test", "BtoA", 32)
    assert targets.shape == (106, 3, 32, 32) and names == sorted(names)
    assert len(dataset_fingerprint(FACADES, "test")) == 16


def test_augmentation_is_reproducible_through_a_dataloader_worker(tmp_path):
    for i in range(4):
        noise_pair(tmp_path / "train" / f"{i}.png", side=20, seed=i)
    ds = PairedImageDataset(tmp_path, "train", "AtoB", size=16, train=True)

    def epoch(seed):
        torch.manual_seed(seed)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=True, num_workers=1)
        return torch.cat([batch["source"] for batch in loader])

    assert torch.equal(epoch(3), epoch(3))
    assert not torch.equal(epoch(3), epoch(4))


def test_sample_inputs_are_preprocessed_exactly_as_the_evaluated_ones(tmp_path):
    """``clustergan sample`` reads a file through read_source_image; evaluation through the dataset. Both must
    hand the generator the same tensor (bicubic, as the dataset), for pairs and for plain source images."""
    from PIL import Image

    from clustergan.data import PairedImageDataset, read_source_image
    from clustergan.data.synth import make_synth

    root = make_synth(tmp_path / "synth", num_modes=2, n_train=4, n_test=2, size=64, seed=1)
    for direction in ("AtoB", "BtoA"):
        dataset = PairedImageDataset(root, "test", direction, 32, train=False)
        for i, path in enumerate(dataset.paths):
            assert torch.equal(read_source_image(path, direction, 32), dataset[i]["source"]), (direction, path)
    pair = Image.open(dataset.paths[0]).convert("RGB")
    half = pair.width // 2
    pair.crop((half, 0, pair.width, pair.height)).save(tmp_path / "label_map.png")  # a BtoA source alone
    assert torch.equal(read_source_image(tmp_path / "label_map.png", "BtoA", 32), dataset[0]["source"])
