"""Stored files appear whole or not at all (editor.storage), and a write cut off half-way
leaves only a temporary file that check_storage reports and repairs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage

from editor.storage import PARTIAL_MARK, AtomicFileSystemStorage
from editor.storage_check import check_storage, repair

pytestmark = pytest.mark.django_db


class Interrupted(Exception):
    pass


class CutOff(File):
    """A file whose reading fails half-way, as a write does when its process dies."""

    def __init__(self) -> None:
        super().__init__(None, name="x")

    def chunks(self, chunk_size: int | None = None):  # type: ignore[override]
        yield b"first half "
        raise Interrupted

    def __len__(self) -> int:
        return 22


def test_the_default_storage_is_the_atomic_one() -> None:
    assert isinstance(default_storage, AtomicFileSystemStorage)


def test_a_save_writes_the_whole_file_under_a_free_name(web_settings: Path) -> None:
    first = default_storage.save("images/a/cutout.png", ContentFile(b"one"))
    second = default_storage.save("images/a/cutout.png", ContentFile(b"two"))
    assert first == "images/a/cutout.png" and second != first
    assert (web_settings / first).read_bytes() == b"one"
    assert (web_settings / second).read_bytes() == b"two"
    assert not [p for p in web_settings.rglob("*") if PARTIAL_MARK in p.name]


def test_a_write_cut_off_half_way_leaves_no_file_under_its_name(web_settings: Path) -> None:
    with pytest.raises(Interrupted):
        default_storage.save("images/b/cutout.png", CutOff())
    assert not default_storage.exists("images/b/cutout.png")
    partial = [p for p in web_settings.rglob("*") if p.is_file()]
    assert partial == []  # the temporary name is removed when the write fails

    # A process killed mid-write cannot clean up: its temporary file is an orphan.
    leftover = web_settings / "images" / "b" / f"cutout.png{PARTIAL_MARK}0123456789ab"
    leftover.write_bytes(b"half")
    report = check_storage(min_age=timedelta(0))
    assert report.orphans == [f"images/b/cutout.png{PARTIAL_MARK}0123456789ab"]
    repair(report)
    assert not leftover.exists()


def test_without_hard_links_the_file_is_renamed_into_place(
    web_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    def no_links(source: str, target: str) -> None:
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "link", no_links)
    name = default_storage.save("images/c/mask.png", ContentFile(b"mask"))
    assert (web_settings / name).read_bytes() == b"mask"
    assert [p.name for p in (web_settings / "images" / "c").iterdir()] == ["mask.png"]
