"""JUnit XML: one testcase per row, so CI systems show regressions as failed tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from commbench.analysis.gate.verdict import WINDOW_TESTS, GateResult, aggregate_name
from commbench.output.cells import interval, multiple
from commbench.point import row_label

FAILING = {"regression", "failed"}
NOT_JUDGED = ("missing", "lost", "new", "skipped", "insufficient")


def gate_junit(result: GateResult, path: Path) -> None:
    suite = ET.Element("testsuite", name="commbench gate")
    judged = ET.SubElement(suite, "properties")  # the current runs judged together
    ET.SubElement(judged, "property", name="current_runs", value=str(len(result.currents)))
    failures = skipped = 0
    for _, row in result.rows.iterrows():
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{row['collective']}.{row['variant']}",
            name=row_label(row),
        )
        detail = (
            f"{row['status']}: ratio {row['ratio']:.3f}, against the run {row['contrast']:.3f}"
            f" ({interval(row['low'], row['high']) or '-'}, tolerance {row['tolerance']:.0%},"
            f" p={row['p_value']:.2g}, detectable {multiple(row['detectable']) or '-'}, spread from"
            f" {row['method'] or '-'})"
        )
        status = row["status"]
        if (
            status in FAILING
            or (status == "missing" and not result.allow_missing)
            or (status == "lost" and not result.allow_lost)
        ):
            failures += 1
            ET.SubElement(case, "failure", message=status).text = detail
        elif status in NOT_JUDGED:
            skipped += 1
            ET.SubElement(case, "skipped", message=row["status"])
        else:
            ET.SubElement(case, "system-out").text = detail
    for aggregate in result.aggregates.itertuples():
        case = ET.SubElement(
            suite,
            "testcase",
            classname="aggregate",
            name=f"geomean {aggregate_name(aggregate._asdict())}",
        )
        detail = (
            f"{aggregate.status}: geomean {aggregate.geomean:.3f}"
            f" ({interval(aggregate.low, aggregate.high) or '-'}, {aggregate.rows} rows,"
            f" tolerance {aggregate.tolerance:.0%},"
            f" detectable {multiple(aggregate.detectable) or '-'}, asked {aggregate.detect:.2f}x,"
            f" spread from {aggregate.spread or '-'})"
        )
        properties = ET.SubElement(case, "properties")
        ET.SubElement(properties, "property", name="detectable", value=f"{aggregate.detectable}")
        ET.SubElement(properties, "property", name="detect", value=f"{aggregate.detect}")
        if aggregate.status == "regression":
            failures += 1
            ET.SubElement(case, "failure", message="aggregate regression").text = detail
        elif (
            aggregate.status == "insufficient"
            and aggregate.test in WINDOW_TESTS
            and not result.allow_insufficient
        ):
            failures += 1
            ET.SubElement(case, "failure", message="insufficient").text = detail
        elif aggregate.status == "insufficient":
            skipped += 1
            ET.SubElement(case, "skipped", message="insufficient").text = detail
        else:
            ET.SubElement(case, "system-out").text = detail
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
