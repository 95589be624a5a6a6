"""The published input formats of the two benchmark trackers `commbench export` feeds,
encoded as JSON Schema from their sources (docs/usage.md, "Exports", says which versions).

- Bencher Metric Format: https://bencher.dev/bmf.json, draft-07, as published
  (bencherdev/bencher services/console/public/bmf.json, and the BMF reference page).
- github-action-benchmark v1.22.0, customSmallerIsBetter: src/extract.ts parses the file
  with the zod schema `BenchmarkResult` = {name: string, value: number, unit: string,
  range?: string, extra?: string}, in an array (`BenchmarkResults`). zod's `coerce`
  would accept numbers as strings; the strict types here are what it documents.
  src/extractRangeInfo.ts reads a range as `(+-|±) number`, and the action converts
  values between the time units s, ms, us, ns (src/normalizeValueByUnit.ts).
"""

from __future__ import annotations

import re

BMF_SCHEMA = {
    "$id": "https://bencher.dev/bmf.json",
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "patternProperties": {
        ".+": {
            "type": "object",
            "patternProperties": {
                ".+": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "number"},
                        "lower_value": {"type": "number"},
                        "upper_value": {"type": "number"},
                    },
                    "required": ["value"],
                }
            },
        }
    },
}
BMF_NAME_MAX = 1024  # a benchmark name (the BMF reference page)
BMF_MEASURE_MAX = 64  # a measure's slug or name

GITHUB_BENCHMARK_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "number"},
            "range": {"type": "string"},
            "unit": {"type": "string"},
            "extra": {"type": "string"},
        },
        "required": ["name", "value", "unit"],
    },
}
GITHUB_TIME_UNITS = {"s", "ms", "us", "ns"}
GITHUB_RANGE = re.compile(r"(?P<prefix>(\+-|±)\s*)(?P<value>\d.*)")  # extractRangeInfo's
