"""README says what the test suite uses and how to move it: every variable the Makefile and the test
fixtures read to choose their Redis, database and ports is documented, with the flush warning."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def variables_read_by_the_suite():
    sources = [ROOT / "Makefile", *ROOT.glob("**/conftest.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("*/tests/*.py")]
    found = set()
    for path in sources:
        if ".venv" not in path.parts:
            found |= set(re.findall(r"\bLBPANEL_TEST_[A-Z_]+\b", path.read_text()))
    return found


def test_every_test_variable_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    variables = variables_read_by_the_suite()
    assert {"LBPANEL_TEST_PORT_BASE", "LBPANEL_TEST_REDIS_URL", "LBPANEL_TEST_DATABASE_URL"} <= variables
    assert [v for v in sorted(variables) if f"`{v}`" not in readme] == []


def test_the_readme_warns_that_the_test_redis_is_flushed_and_names_test_fast():
    section = (ROOT / "README.md").read_text().split("### What the test suite uses", 1)[1].split("\n## ", 1)[0]
    assert "redis://127.0.0.1:6379/15" in section and "flush" in section and "`make test-fast`" in section
