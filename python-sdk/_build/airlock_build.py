"""A PEP 517 build backend in the standard library only, so that `pip install <airlock>/python-sdk`
needs no package index (setuptools would have to come from one). It writes one pure-Python wheel
with the two packages, and records where the airlock package it came from is (airlock_sdk/_install.py),
so the front end finds the CLI of the same version without PATH games."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zipfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "airlock_sdk"
PACKAGES = ("airlock_sdk", "isolated_agents_sdk")


def _airlock_root() -> str | None:
    root = os.path.dirname(HERE)
    try:
        with open(os.path.join(root, "package.json"), encoding="utf-8") as f:
            return root if json.load(f).get("name") == "airlock" else None
    except (OSError, ValueError):
        return None


def _version() -> str:
    root = _airlock_root()
    if root:
        with open(os.path.join(root, "package.json"), encoding="utf-8") as f:
            return str(json.load(f).get("version", "0.0.0"))
    return "0.0.0"


def _metadata() -> str:
    return (
        "Metadata-Version: 2.1\n"
        "Name: airlock-sdk\n"
        f"Version: {_version()}\n"
        "Summary: Run Isolated Agents SDK scripts unchanged, with their allow-list enforced by airlock\n"
        "Requires-Python: >=3.8\n"
    )


def _files() -> list[tuple[str, bytes]]:
    files: list[tuple[str, bytes]] = []
    for package in PACKAGES:
        folder = os.path.join(HERE, package)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py") or name == "py.typed":
                with open(os.path.join(folder, name), "rb") as f:
                    files.append((f"{package}/{name}", f.read()))
    root = _airlock_root()
    files.append((f"{NAME}/_install.py", f'"""Written when this was installed."""\nAIRLOCK_ROOT = {root!r}\n'.encode()))
    return files


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest},{len(data)}"


def build_wheel(wheel_directory: str, config_settings: dict | None = None, metadata_directory: str | None = None) -> str:
    version = _version()
    dist_info = f"{NAME}-{version}.dist-info"
    wheel_name = f"{NAME}-{version}-py3-none-any.whl"
    files = _files() + [
        (f"{dist_info}/METADATA", _metadata().encode()),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: airlock_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    record = io.StringIO()
    for path, data in files:
        record.write(f"{path},{_record_hash(data)}\n")
    record.write(f"{dist_info}/RECORD,,\n")
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files:
            wheel.writestr(path, data)
        wheel.writestr(f"{dist_info}/RECORD", record.getvalue())
    return wheel_name


def get_requires_for_build_wheel(config_settings: dict | None = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: dict | None = None) -> str:
    dist_info = f"{NAME}-{_version()}.dist-info"
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    with open(os.path.join(metadata_directory, dist_info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    return dist_info
