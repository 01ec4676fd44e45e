"""The provisioning ISO (guest/media.py), read back with pycdlib: the file under its
Rock Ridge, Joliet and ISO 9660 names, Azure's label, and a file only its owner reads."""

from __future__ import annotations

import io
import os
import stat
from datetime import datetime
from pathlib import Path

import pycdlib
import pytest

from openimds.guest import media

OVF = b'<?xml version="1.0" encoding="utf-8"?>\n<Environment/>\n'


def opened(data: bytes) -> pycdlib.PyCdlib:
    image = pycdlib.PyCdlib()
    image.open_fp(io.BytesIO(data))
    return image


def read(image: pycdlib.PyCdlib, **path: str) -> bytes:
    out = io.BytesIO()
    image.get_file_from_iso_fp(out, **path)
    return out.getvalue()


def test_label_is_azures_form() -> None:
    assert media.label(datetime(2026, 12, 8, 3, 5)) == "rd_rdfe_stable.261208-0305"


def test_the_file_reads_back_under_each_name() -> None:
    image = opened(media.iso(OVF, "rd_rdfe_stable.261208-0305"))
    try:
        assert read(image, rr_path="/ovf-env.xml") == OVF
        assert read(image, joliet_path="/ovf-env.xml") == OVF
        assert read(image, iso_path="/OVF_ENV.XML;1") == OVF
        assert image.pvd.volume_identifier.decode().rstrip() == "rd_rdfe_stable.261208-0305"
        assert image.has_rock_ridge() and image.has_joliet()
        children = list(image.list_children(rr_path="/"))
        assert [c.rock_ridge.name() for c in children if c.is_file()] == [b"ovf-env.xml"]
    finally:
        image.close()


def test_written_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "vm.iso"
    path.write_bytes(b"old")
    path.chmod(0o644)  # an existing file is narrowed too
    media.write(str(path), b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_unwritable_path_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        media.write(str(tmp_path / "missing" / "vm.iso"), b"x")
