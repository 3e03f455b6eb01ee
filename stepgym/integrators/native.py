"""Compile small C helpers with the system C compiler, once, and cache the shared libraries.

The compiled parts of stepgym (the force counter, the per-step rules) are a few dozen lines
of C that read REBOUND's structs through byte offsets taken from REBOUND's own ctypes
definitions (passed as ``-D`` macros), so they need neither REBOUND's headers nor a build
step at install time. Each library is built on first use into ``$STEPGYM_CACHE`` (default
``~/.cache/stepgym``) under a name keyed by a hash of everything that shapes the binary
(source, included headers, macros, compiler, REBOUND version, platform), so a stale library
is never loaded and parallel workers share one build.

``STEPGYM_PURE_PYTHON=1`` (or no C compiler) makes :func:`build_library` return None; every
caller then falls back to its pure-Python equivalent, which gives the same results, slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PURE_PYTHON_VARIABLE = "STEPGYM_PURE_PYTHON"
"""Set this environment variable to 1 to use the pure-Python paths only."""

# Round-off must match the Python reference bit for bit: no fused multiply-adds, no
# reassociation.
_FLAGS = ("-O2", "-shared", "-fPIC", "-std=gnu99", "-ffp-contract=off", "-fno-fast-math")

_LOADED: list[Any] = []  # keeps loaded libraries alive for the process's lifetime


def pure_python_requested() -> bool:
    """True when ``STEPGYM_PURE_PYTHON`` asks for the pure-Python paths."""
    return os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0")


def cache_dir() -> Path:
    """Where compiled libraries are kept (``$STEPGYM_CACHE`` or ``~/.cache/stepgym``)."""
    return Path(os.environ.get("STEPGYM_CACHE", Path.home() / ".cache" / "stepgym"))


def find_compiler() -> str | None:
    """Path of the C compiler (``$CC``, else ``cc``, else ``gcc``), or None."""
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


def build_library(
    stem: str,
    source: str,
    *,
    defines: Mapping[str, object] | None = None,
    include_dirs: Sequence[Path] = (),
    headers: Sequence[Path] = (),
) -> Any | None:
    """Compile ``source`` into a cached shared library and load it with ctypes.

    Args:
        stem: file-name prefix of the cached library.
        source: C99 source text.
        defines: ``-DNAME=value`` macros (struct offsets and sizes).
        include_dirs: ``-I`` directories for the source's ``#include "..."``.
        headers: files the source includes; their contents enter the cache key.

    Returns the loaded ``ctypes.CDLL``, or None if pure Python was requested, no compiler
    exists or the build failed (logged at INFO).
    """
    if pure_python_requested():
        return None
    compiler = find_compiler()
    if compiler is None:
        logger.info("no C compiler found; %s runs as pure Python", stem)
        return None
    import rebound

    macros = [f"-D{name}={value}" for name, value in sorted((defines or {}).items())]
    key = hashlib.sha256()
    for part in (source, *macros, compiler, sys.platform, rebound.__version__):
        key.update(part.encode() + b"\0")
    for header in headers:
        key.update(header.read_bytes() + b"\0")
    target = cache_dir() / f"{stem}_{key.hexdigest()[:16]}.so"
    try:
        if not target.exists():
            _compile(compiler, source, [*macros, *(f"-I{d}" for d in include_dirs)], target)
        library = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        logger.info("could not build %s (%s %s); using pure Python", stem, error, detail[-400:])
        return None
    _LOADED.append(library)
    return library


def _compile(compiler: str, source: str, options: list[str], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        source_file = Path(tmp) / "source.c"
        source_file.write_text(source)
        built = Path(tmp) / "library.so"
        command = [compiler, *_FLAGS, *options, "-o", str(built), str(source_file), "-lm"]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        os.replace(built, target)  # atomic: parallel workers never see half a file


def function_address(library: Any, name: str) -> int:
    """The address of the exported C function ``name`` as a plain int."""
    address = ctypes.cast(getattr(library, name), ctypes.c_void_p).value
    assert address is not None
    return int(address)
