"""Write tests/file_durations.json (seconds per test file) from a pytest --junitxml report.

python -m pytest -n 2 --dist loadfile --junitxml=suite.xml && python tests/file_durations.py suite.xml
"""

from __future__ import annotations

import collections
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SHORTEST_KEPT_S = 5


def file_durations(report: Path) -> dict[str, float]:
    totals: collections.Counter[str] = collections.Counter()
    for case in ET.parse(report).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        while parts and parts[-1][:1].isupper():  # a test class, not a module
            parts.pop()
        totals["/".join(parts) + ".py"] += float(case.get("time", 0))
    return {name: round(seconds) for name, seconds in sorted(totals.items()) if seconds >= SHORTEST_KEPT_S}


if __name__ == "__main__":
    target = Path(__file__).with_name("file_durations.json")
    target.write_text(json.dumps(file_durations(Path(sys.argv[1])), indent=0, sort_keys=True) + "\n")
    print(f"wrote {target}")
