"""JUnit XML: read back by a real JUnit parser and valid against the JUnit 10 XSD."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from junitparser import Error, Failure, JUnitXml, Skipped

from bnconform.render import junit

DATA = Path(__file__).parent / "data"


def sample(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"sample_result_{name}.json").read_text())


def parse(tmp_path: Path, result: dict[str, Any]) -> Any:
    path = tmp_path / "report.xml"
    path.write_text(junit.render(result), encoding="utf-8")
    suites = list(JUnitXml.fromfile(str(path)))
    assert len(suites) == 1
    return suites[0]


def test_failing_counts_and_failure(tmp_path: Path) -> None:
    suite = parse(tmp_path, sample("failing"))
    assert suite.name == "bnconform"
    # 5 failed checks: one only waived (-> skipped), one a warning below --fail-on error
    # (-> passed, finding in system-out); 4 skipped + 3 blocked
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (34, 3, 0, 8)
    cases = {case.name: case for case in suite}
    assert len(cases) == 34
    momentum = cases["momentum-inverted"]
    assert momentum.classname == "bnconform.running-stats"
    (failure,) = momentum.result
    assert isinstance(failure, Failure)
    assert failure.type == "momentum-inverted"
    assert failure.message == ("momentum-inverted: running_mean moved 90% of the way to the "
                               "batch mean; the spec moves it 10%")
    for part in ("expected: new-batch weight 0.1", "observed: new-batch weight 0.9", "why: ",
                 "hint: ", "repro:\nimport torch"):
        assert part in failure.text
    (blocked,) = cases["eval-uses-running-stats"].result
    assert isinstance(blocked, Skipped)
    assert blocked.message == "blocked by running-stats-shape (failed)"
    (waived,) = cases["state-dict-keys"].result
    assert isinstance(waived, Skipped) and waived.message == "waived: state-dict-keys"
    assert not cases["construct"].result
    props = {p.name: p.value for p in suite.properties()}
    assert props["spec"] == "pytorch" and props["seed"] == "0" and props["torch"] == "2.13.0"
    assert props["target"] == "bnconform.examples.tutorial:TutorialBatchNorm2d"


def test_errored_check_becomes_error(tmp_path: Path) -> None:
    suite = parse(tmp_path, sample("many"))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (34, 4, 1, 7)
    (error,) = next(c for c in suite if c.name == "double-backward").result
    assert isinstance(error, Error) and "KeyError" in error.message


@pytest.mark.parametrize("name", ["clean", "failing", "many"])
def test_valid_against_junit_xsd(name: str) -> None:
    schema = xmlschema.XMLSchema(str(DATA / "junit-10.xsd"))
    schema.validate(junit.render(sample(name)))


def test_illegal_xml_characters_are_shown_escaped() -> None:
    result = sample("failing")
    result["findings"][0]["message"] = "bad\x00\x01\x0b\x1b\ufffe chars"
    result["checks"][14]["findings"][0]["message"] = "bad\x00\x01\x0b\x1b\ufffe chars"
    result["checks"][14]["findings"][0]["repro"] = "print('\x07')\n"
    text = junit.render(result)
    root = ET.fromstring(text)
    failure = root.find("testcase[@name='momentum-inverted']/failure")
    assert failure is not None
    assert failure.get("message") == "momentum-inverted: bad\\x00\\x01\\x0b\\x1b\\ufffe chars"
    assert "print('\\x07')" in (failure.text or "")
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(text)
