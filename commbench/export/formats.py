"""The export formats `commbench export --format` offers, by name: one line per format."""

from __future__ import annotations

from commbench.export import Exporter, bencher, github

FORMATS: dict[str, Exporter] = {e.name: e for e in (bencher.EXPORTER, github.EXPORTER)}
