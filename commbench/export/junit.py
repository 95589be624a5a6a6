"""JUnit XML: one testcase per row, so CI systems show regressions as failed tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from commbench.export import row_label
from commbench.gate import GateResult

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
            f"{row['status']}: ratio {row['ratio']:.3f} (tolerance {row['tolerance']:.0%}, "
            f"p={row['p_value']:.2g}, test {row['method'] or '-'})"
        )
        if row["status"] in FAILING or (row["status"] == "missing" and not result.allow_missing):
            failures += 1
            ET.SubElement(case, "failure", message=row["status"]).text = detail
        elif row["status"] in ("missing", "new"):
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
        if aggregate.status == "regression":
            failures += 1
            ET.SubElement(
                case, "failure", message="aggregate regression"
            ).text = (
                f"geomean {aggregate.geomean:.3f} ({aggregate.low:.3f} to {aggregate.high:.3f})"
            )
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
