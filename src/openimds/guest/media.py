"""The provisioning media: an ISO 9660 image holding ovf-env.xml, as Azure attaches it
to a VM as its DVD drive (the guest's /dev/sr0).

Written with pycdlib. The file is named `ovf-env.xml` in Rock Ridge (what Linux's
isofs shows, so cloud-init and waagent find it by that name) and in Joliet (Windows and
BSD readers); the plain ISO 9660 name is `OVF_ENV.XML`. The volume label is Azure's
form, `rd_rdfe_stable.<yymmdd-hhmm>`; neither agent checks it, blkid shows it.
"""

from __future__ import annotations

import io
import os
from datetime import datetime

import pycdlib

OVF_NAME = "ovf-env.xml"
LABEL_PREFIX = "rd_rdfe_stable."
# A Joliet volume label holds 16 UCS-2 characters; the primary one holds Azure's 26.
_JOLIET_LABEL = 16


def label(now: datetime) -> str:
    """The volume label Azure's media carry: a build stamp after `rd_rdfe_stable.`."""
    return f"{LABEL_PREFIX}{now:%y%m%d-%H%M}"


def iso(ovf_env: bytes, volume_label: str) -> bytes:
    """The ISO image's bytes."""
    image = pycdlib.PyCdlib()
    image.new(
        interchange_level=3,
        vol_ident=volume_label[:_JOLIET_LABEL],
        joliet=3,
        rock_ridge="1.09",
        app_ident_str="",
    )
    # pycdlib gives the Joliet descriptor the primary's label, and a Joliet one is shorter:
    # the primary gets the whole label afterwards (blkid then reports the whole of it).
    image.pvd.volume_identifier = volume_label.encode("ascii").ljust(32)
    image.add_fp(
        io.BytesIO(ovf_env),
        len(ovf_env),
        "/OVF_ENV.XML;1",
        rr_name=OVF_NAME,
        joliet_path="/" + OVF_NAME,
    )
    out = io.BytesIO()
    image.write_fp(out)
    image.close()
    return out.getvalue()


def write(path: str, data: bytes) -> None:
    """Write the image, readable by its owner only: it holds the custom data and any
    password. OSError when the path cannot be written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # O_CREAT's mode applies only to a new file; an existing one is narrowed too.
    os.fchmod(fd, 0o600)
    with open(fd, "wb") as handle:
        handle.write(data)
