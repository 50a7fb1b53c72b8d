"""Tests of clustergan.data.fetch against a local HTTP server serving tiny archives built here."""

from __future__ import annotations

import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clustergan.data import DATASETS, PairedImageDataset, fetch_dataset
from clustergan.errors import DataError

COUNTS = {"train": 3, "val": 1, "test": 2}


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERGAN_CACHE", str(tmp_path / "cache"))


def tiny_jpeg(seed: int) -> bytes:
    """A 16x8 A|B JPEG."""
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 16, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    return buf.getvalue()


def make_archive(counts: dict[str, int], extra: dict[str, bytes] | None = None) -> bytes:
    """A facades-layout .tar.gz: facades/{split}/{i}.jpg, plus ``extra`` members (name -> bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = {f"facades/{split}/{i + 1}.jpg": tiny_jpeg(i) for split, n in counts.items() for i in range(n)}
        members.update(extra or {})
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


ARCHIVE = make_archive(COUNTS)


class Handler(BaseHTTPRequestHandler):
    """/ok: the archive; /truncated: Content-Length too large, then close; /unsized: half the archive
    without Content-Length; /corrupt: garbage; /unsafe: a member escaping the folder; else 404."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = {
            "/ok.tar.gz": ARCHIVE,
            "/corrupt.tar.gz": b"this is not a tar archive" * 40,
            "/unsafe.tar.gz": make_archive(COUNTS, {"../escaped.txt": b"gotcha"}),
        }.get(self.path)
        if self.path == "/truncated.tar.gz":
            self.send_response(200)
            self.send_header("Content-Length", str(len(ARCHIVE) + 1000))
            self.end_headers()
            self.wfile.write(ARCHIVE[: len(ARCHIVE) // 2])
            self.close_connection = True
            return
        if self.path == "/unsized.tar.gz":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(ARCHIVE[: len(ARCHIVE) // 2])
            self.close_connection = True
            return
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def assert_nothing_left(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == []


def test_facades_table_has_the_official_counts():
    assert DATASETS["facades"].split_counts == {"train": 400, "val": 100, "test": 106}
    assert DATASETS["facades"].url == "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"


def test_fetch_downloads_extracts_and_verifies(server, tmp_path, capsys):
    out = fetch_dataset("facades", tmp_path / "facades", url=f"{server}/ok.tar.gz", expected_counts=COUNTS)
    assert out == tmp_path / "facades"
    assert sorted(p.name for p in out.iterdir()) == ["test", "train", "val"]
    assert sorted(p.name for p in (out / "train").iterdir()) == ["1.jpg", "2.jpg", "3.jpg"]
    assert (out / "test" / "2.jpg").read_bytes() == tiny_jpeg(1)
    assert len(PairedImageDataset(out, "train", "BtoA", size=8, train=False)) == 3
    assert f"fetched facades: train 3, val 1, test 2 images -> {out}" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == ["facades"]  # no temporary folder

    # A second call finds the complete copy and downloads nothing (the URL would fail).
    assert fetch_dataset("facades", out, url=f"{server}/missing", expected_counts=COUNTS) == out
    assert "facades already present in" in capsys.readouterr().out


def test_fetch_into_an_existing_empty_folder(server, tmp_path):
    (tmp_path / "data").mkdir()
    fetch_dataset("facades", tmp_path / "data", url=f"{server}/ok.tar.gz", expected_counts=COUNTS)
    assert (tmp_path / "data" / "val" / "1.jpg").is_file()


def test_fetch_from_a_local_file_url(tmp_path):
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(ARCHIVE)
    out = fetch_dataset("facades", tmp_path / "out", url=archive.as_uri(), expected_counts=COUNTS)
    assert len(list((out / "train").iterdir())) == 3


def test_truncated_download(server, tmp_path):
    message = (
        rf"download of .*truncated\.tar\.gz was truncated: "
        rf"received {len(ARCHIVE) // 2} of {len(ARCHIVE) + 1000} bytes; retry"
    )
    with pytest.raises(DataError, match=message):
        fetch_dataset("facades", tmp_path / "facades", url=f"{server}/truncated.tar.gz", expected_counts=COUNTS)
    assert_nothing_left(tmp_path)


def test_truncated_archive_without_content_length(server, tmp_path):
    message = r"archive from .*unsized\.tar\.gz is truncated or corrupt .*retry the download"
    with pytest.raises(DataError, match=message):
        fetch_dataset("facades", tmp_path / "facades", url=f"{server}/unsized.tar.gz", expected_counts=COUNTS)
    assert_nothing_left(tmp_path)


def test_corrupt_archive(server, tmp_path):
    with pytest.raises(DataError, match=r"corrupt\.tar\.gz is truncated or corrupt"):
        fetch_dataset("facades", tmp_path / "facades", url=f"{server}/corrupt.tar.gz", expected_counts=COUNTS)
    assert_nothing_left(tmp_path)


def test_wrong_file_counts(server, tmp_path):
    with pytest.raises(
        DataError,
        match=r"not a complete copy of facades \(split 'train' holds 3 images, expected 400; "
        r"split 'val' holds 1 images, expected 100; split 'test' holds 2 images, expected 106\)",
    ):
        fetch_dataset("facades", tmp_path / "facades", url=f"{server}/ok.tar.gz")  # the official table
    assert_nothing_left(tmp_path)
    with pytest.raises(DataError, match=r"split 'extra' holds 0 images, expected 5"):
        fetch_dataset(
            "facades", tmp_path / "facades", url=f"{server}/ok.tar.gz", expected_counts={**COUNTS, "extra": 5}
        )
    assert_nothing_left(tmp_path)


def test_unsafe_archive_member_is_refused(server, tmp_path):
    out = tmp_path / "inner" / "facades"
    with pytest.raises(DataError, match=r"unsafe\.tar\.gz has an unsafe member .*refusing to extract"):
        fetch_dataset("facades", out, url=f"{server}/unsafe.tar.gz", expected_counts=COUNTS)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert sorted(p.name for p in (tmp_path / "inner").iterdir()) == []


def test_http_error(server, tmp_path):
    message = r"download of .*/missing failed \(HTTP Error 404.*\): check the network"
    with pytest.raises(DataError, match=message):
        fetch_dataset("facades", tmp_path / "facades", url=f"{server}/missing", expected_counts=COUNTS)
    assert_nothing_left(tmp_path)


def test_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match=r"unknown dataset 'cityscapes': known datasets are facades"):
        fetch_dataset("cityscapes", tmp_path / "x")


def test_existing_incomplete_folder_is_not_touched(server, tmp_path):
    out = tmp_path / "facades"
    (out / "train").mkdir(parents=True)
    (out / "train" / "1.jpg").write_bytes(tiny_jpeg(0))
    message = (
        r"facades already exists and is not a complete copy of facades "
        r"\(split 'train' holds 1 images, expected 3; .*delete it or choose another"
    )
    with pytest.raises(DataError, match=message):
        fetch_dataset("facades", out, url=f"{server}/ok.tar.gz", expected_counts=COUNTS)
    assert [p.name for p in out.rglob("*")] == ["train", "1.jpg"]


def test_cli_fetch_reports_truncated_download_without_traceback(server, tmp_path, capsys):
    from clustergan.cli import main

    code = main(["data", "fetch", "facades", "--out", str(tmp_path / "facades"), "--url", f"{server}/truncated.tar.gz"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "clustergan: error: download of " in err and "was truncated: received 478 of 1956 bytes" in err
    assert_nothing_left(tmp_path)


def test_cli_fetch_wrong_counts_names_the_split(server, tmp_path, capsys):
    from clustergan.cli import main

    # the small fixture archive does not have facades' official 400/100/106 images
    code = main(["data", "fetch", "facades", "--out", str(tmp_path / "facades"), "--url", f"{server}/ok.tar.gz"])
    err = capsys.readouterr().err
    assert code == 2 and "train" in err
    assert_nothing_left(tmp_path)
