"""JUnit XML: one testcase per row, so CI systems show regressions as failed tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from commbench.analysis.gate_verdict import GateResult
from commbench.point import row_label

FAILING = {"regression", "failed"}


def gate_junit(result: GateResult, path: Path) -> None:
    suite = ET.Element("testsuite", name="commbench gate")
    failures = skipped = 0
    for _, row in result.rows.iterrows():
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{row['collective']}.{row['variant']}",
            name=row_label(row),
        )
        detail = (
            f"{row['status']}: ratio {row['ratio']:.3f} (99% {row['low']:.3f} to {row['high']:.3f},"
            f" tolerance {row['tolerance']:.0%}, p={row['p_value']:.2g}, detectable"
            f" {row['detectable']:.2f}x, spread from {row['method'] or '-'})"
        )
        if row["status"] in FAILING or (row["status"] == "missing" and not result.allow_missing):
            failures += 1
            ET.SubElement(case, "failure", message=row["status"]).text = detail
        elif row["status"] in ("missing", "new", "insufficient"):
            skipped += 1
            ET.SubElement(case, "skipped", message=row["status"])
        else:
            ET.SubElement(case, "system-out").text = detail
    for aggregate in result.aggregates.itertuples():
        case = ET.SubElement(
            suite,
            "testcase",
            classname="aggregate",
            name=f"geomean {aggregate.collective}/{aggregate.variant}",
        )
        detail = (
            f"{aggregate.status}: geomean {aggregate.geomean:.3f} (99% {aggregate.low:.3f} to"
            f" {aggregate.high:.3f}, {aggregate.rows} rows, tolerance {aggregate.tolerance:.0%},"
            f" detectable {aggregate.detectable:.2f}x, spread from {aggregate.spread or '-'})"
        )
        properties = ET.SubElement(case, "properties")
        ET.SubElement(properties, "property", name="detectable", value=f"{aggregate.detectable}")
        if aggregate.status == "regression":
            failures += 1
            ET.SubElement(case, "failure", message="aggregate regression").text = detail
        elif aggregate.status == "insufficient":
            skipped += 1
            ET.SubElement(case, "skipped", message="insufficient").text = detail
        else:
            ET.SubElement(case, "system-out").text = detail
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
