"""Docs that run: the bus page matches the registry."""

from __future__ import annotations

from pathlib import Path

from iot.topics import topics_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_bus_page_lists_exactly_the_registered_topics() -> None:
    page = (ROOT / "docs" / "bus.md").read_text()
    table = page.split("<!-- topics:begin -->\n", 1)[1].split("\n<!-- topics:end -->", 1)[0]
    assert table == topics_markdown(), (
        "docs/bus.md is stale: regenerate it with `smartstore topics`"
    )
