#!/usr/bin/env python3
"""Prints the reliability table (test, runs, failures) from test output.

Reads meson testlog.json files (or plain text with --text) and collects the
summary lines that every reliability test prints, in either form:
    # crash-kill: 45 runs, 0 failures (...)
    # bitflips: runs 200, failures 0
"""
import json
import re
import sys

PATTERNS = [
    re.compile(r"^# ([\w.-]+): (\d+) runs?\b.*?(\d+) failures?"),
    re.compile(r"^# ([\w.-]+): runs (\d+), failures (\d+)"),
]


def rows_from_text(text, label=""):
    rows = []
    for line in text.splitlines():
        for pat in PATTERNS:
            m = pat.match(line.strip())
            if m:
                rows.append((m.group(1) + label, int(m.group(2)), int(m.group(3))))
                break
    return rows


def main(argv):
    rows = []
    if argv and argv[0] == "--text":
        rows = rows_from_text(sys.stdin.read())
    else:
        for path in argv:
            label = " (asan)" if "asan" in path else ""
            with open(path) as f:
                for line in f:
                    r = json.loads(line)
                    rows += rows_from_text(r.get("stdout", "") or "", label)
    if not rows:
        return 0
    width = max(len(r[0]) for r in rows)
    print(f"{'test'.ljust(width)}  {'runs':>6}  {'failures':>8}")
    for name, runs, failures in rows:
        print(f"{name.ljust(width)}  {runs:>6}  {failures:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
