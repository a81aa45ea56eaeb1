"""The smartstore CLI and composition roots (demo, eval). Nothing imports this package."""
