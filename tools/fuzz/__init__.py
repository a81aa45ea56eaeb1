"""Hostile-input tooling: fuzz targets for every decoder of outside input, and their runner.

``targets`` names each decoder with the only errors it may raise; ``run`` drives
them with atheris (coverage-guided) or a plain mutator; ``schema`` draws bus
payloads, valid and broken, from the payload models' JSON schemas for the
Hypothesis tests (tests/unit/test_fuzz_*.py). See docs/reliability.md,
"Hostile input".
"""
