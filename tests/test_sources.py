"""Lookup order, verified download, truncated and corrupted archives, no network."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from movielens_files import write_ml100k, zip_release

from mtrec_helpers.data import DATASETS, DataError
from mtrec_helpers.data.sources import locate


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """A local 'download site' holding ml-100k.zip in GroupLens' layout."""
    site = tmp_path / "site"
    site.mkdir()
    release = write_ml100k(tmp_path / "build" / "ml-100k")
    zip_release(release, site / "ml-100k.zip")
    return site


def _spec(site: Path, md5: str | None):
    return dataclasses.replace(DATASETS["ml-100k"], base_url=site.as_uri(), md5=md5)


def test_data_dir_env_comes_first(isolated_data_dir: Path, tmp_path: Path) -> None:
    write_ml100k(isolated_data_dir / "ml-100k")
    write_ml100k(tmp_path / "cache" / "ml-100k")
    assert locate(DATASETS["ml-100k"], cache=tmp_path / "cache") == isolated_data_dir / "ml-100k"


def test_cache_used_when_env_has_no_copy(isolated_data_dir: Path, tmp_path: Path) -> None:
    cached = write_ml100k(tmp_path / "cache" / "ml-100k")
    assert locate(DATASETS["ml-100k"], cache=tmp_path / "cache") == cached


def test_incomplete_env_copy_is_an_error(isolated_data_dir: Path, tmp_path: Path) -> None:
    folder = write_ml100k(isolated_data_dir / "ml-100k")
    (folder / "u.item").unlink()
    with pytest.raises(DataError, match="u.item is missing") as caught:
        locate(DATASETS["ml-100k"], cache=tmp_path / "cache")
    assert caught.value.path == folder


def test_verified_download_and_extract(isolated_data_dir: Path, tmp_path: Path, mirror: Path) -> None:
    cache = tmp_path / "cache"
    spec = _spec(mirror, _md5(mirror / "ml-100k.zip"))
    folder = locate(spec, cache=cache)
    assert folder == cache / "ml-100k"
    assert sorted(p.name for p in folder.iterdir()) == ["u.data", "u.genre", "u.item", "u.user"]
    assert (cache / "ml-100k.zip").is_file()
    assert not list(cache.glob("*.part")) and not list(cache.glob(".*tmp"))
    assert spec.reader(folder).interactions.shape == (20, 4)


def test_published_md5_file_is_used_when_not_pinned(
    isolated_data_dir: Path, tmp_path: Path, mirror: Path
) -> None:
    archive = mirror / "ml-100k.zip"
    (mirror / "ml-100k.zip.md5").write_text(f"MD5 (ml-100k.zip) = {_md5(archive)}\n")
    assert locate(_spec(mirror, None), cache=tmp_path / "cache").is_dir()


def test_checksum_mismatch_keeps_nothing(isolated_data_dir: Path, tmp_path: Path, mirror: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="checksum mismatch") as caught:
        locate(_spec(mirror, "0" * 32), cache=cache)
    assert "published 00000000" in str(caught.value)
    assert sorted(p.name for p in cache.iterdir()) == []


def test_truncated_zip_is_an_error(isolated_data_dir: Path, tmp_path: Path, mirror: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    whole = (mirror / "ml-100k.zip").read_bytes()
    (cache / "ml-100k.zip").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="not a complete, readable zip archive") as caught:
        locate(DATASETS["ml-100k"], cache=cache)
    assert "delete" in caught.value.fix
    assert not (cache / "ml-100k").exists()
    assert not list(cache.glob(".*tmp"))


def test_corrupt_member_is_an_error(isolated_data_dir: Path, tmp_path: Path, mirror: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    data = bytearray((mirror / "ml-100k.zip").read_bytes())
    start = data.index(b"u.data") + len("u.data")  # first local header's file name, then the data
    data[start + 5] ^= 0xFF
    (cache / "ml-100k.zip").write_bytes(bytes(data))
    with pytest.raises(DataError) as caught:
        locate(DATASETS["ml-100k"], cache=cache)
    assert caught.value.path == cache / "ml-100k.zip"
    assert not (cache / "ml-100k").exists()


def test_no_network_says_where_to_put_files(isolated_data_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="could not download") as caught:
        locate(_spec(tmp_path / "nowhere", "0" * 32), cache=cache)
    message = str(caught.value)
    assert str(cache / "ml-100k" / "u.data") in message
    assert f"MTREC_DATA_DIR={isolated_data_dir} has no ml-100k/ folder" in message
    assert not (cache / "ml-100k.zip.part").exists()


def test_download_can_be_refused(isolated_data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not on this machine"):
        locate(DATASETS["ml-100k"], cache=tmp_path / "cache", download=False)


# --- reliability pass (issue 26): what stands where a data file should be ----------------------------


def _link_loop(path: Path) -> None:
    """``path`` → ``path``.loop → ``path``: a symbolic link loop."""
    loop = path.with_name(path.name + ".loop")
    path.symlink_to(loop.name)
    loop.symlink_to(path.name)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.mkdir(), "u.data is a folder, not a file"),
        (_link_loop, "u.data is a symbolic link loop"),
        (lambda p: p.symlink_to("nowhere"), "u.data is a symbolic link to nothing"),
    ],
    ids=["folder", "loop", "dangling"],
)
def test_what_stands_where_a_data_file_should_be_is_named(
    isolated_data_dir: Path, tmp_path: Path, make, problem: str
) -> None:
    """A folder or a link loop in u.data's place used to be reported as "missing"."""
    folder = write_ml100k(isolated_data_dir / "ml-100k")
    (folder / "u.data").unlink()
    make(folder / "u.data")
    with pytest.raises(DataError) as caught:
        locate(DATASETS["ml-100k"], cache=tmp_path / "cache")
    assert problem in str(caught.value) and caught.value.path == folder


def test_a_data_file_that_cannot_be_read_is_one_line_before_its_checksum(
    isolated_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checksum reads every source file first; a PermissionError there used to surface raw.
    (The tests run as root, where chmod 000 does not stop reading: the OS error is simulated.)"""
    import builtins

    from mtrec_helpers.data import sources
    from mtrec_helpers.data.store import locate_sources

    write_ml100k(isolated_data_dir / "ml-100k")
    real_open = builtins.open

    def denied(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if Path(path).name == "u.item":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(sources, "open", denied, raising=False)
    with pytest.raises(DataError) as caught:
        locate_sources("ml-100k")
    assert caught.value.path == isolated_data_dir / "ml-100k" / "u.item"
    assert "cannot be read (Permission denied)" in caught.value.problem and "readable" in caught.value.fix


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), _link_loop], ids=["folder", "loop"])
def test_a_tags_file_that_is_not_a_file_is_an_error_not_silently_dropped(
    isolated_data_dir: Path, make
) -> None:
    """Every item used to lose its tags without a word (exit 0) when tags.csv was a folder or a loop."""
    from movielens_files import write_csv_release

    from mtrec_helpers.data.store import locate_sources

    folder = write_csv_release(isolated_data_dir / "ml-latest-small", genome=False)
    (folder / "tags.csv").unlink()
    make(folder / "tags.csv")
    with pytest.raises(DataError) as caught:
        locate_sources("ml-latest-small")
    assert caught.value.path == folder / "tags.csv"
    with pytest.raises(DataError) as caught:
        DATASETS["ml-latest-small"].reader(folder)
    assert caught.value.path == folder / "tags.csv" and "tags.csv" not in caught.value.problem
