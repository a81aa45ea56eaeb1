"""The repository's pytest plugins: stores of record for the tests (tests/db_fixtures.py).

Loaded from here, the repository root, rather than from a ``tests/conftest.py``:
with ``--doctest-modules`` pytest also collects every conftest under the test
paths as a module, and several of them named ``conftest`` at different depths
collide; this file lies outside the test paths.
"""

pytest_plugins = ["tests.db_fixtures"]
