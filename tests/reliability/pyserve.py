#!/usr/bin/env python3
"""Runs durable-image.py and store-check.py for a test script, many times in
one process (a Python start costs more than what they do).

Reads requests on stdin, one per line: the tool ("image" or "check") and its
arguments, separated by tabs. Answers with the tool's output, then a line
"<TAB>END<TAB><exit status>". Stops at the end of stdin.
"""
import contextlib
import importlib.util
import io
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), os.path.join(HERE, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    tools = {"image": load("durable-image"), "check": load("store-check")}
    for line in sys.stdin:
        args = line.rstrip("\n").split("\t")
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                rc = tools[args[0]].main(args[1:]) or 0
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
            if not isinstance(e.code, int) and e.code is not None:
                out.write(f"{e.code}\n")
        except Exception:
            out.write(traceback.format_exc())
            rc = 2
        text = out.getvalue()
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        sys.stdout.write(f"\tEND\t{rc}\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
