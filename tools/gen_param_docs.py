#!/usr/bin/env python3
"""Write the generated parameter tables (docs/nodes/<node>.md) and launch-argument lists
(docs/graphs.md) from the settings dataclasses and biosig_ros/graph_spec.py.

    python tools/gen_param_docs.py [--check]   (in `tools/run shell`, or with tools/env.sh sourced)

--check writes nothing and exits 1 naming the files that are out of date.
"""
import argparse
import sys
from pathlib import Path

from biosig_ros.ros.parameter_docs import generated_docs

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args()
    stale = []
    for path, content in generated_docs(ROOT / "docs").items():
        if path.exists() and path.read_text(encoding="utf-8") == content:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.write_text(content, encoding="utf-8")
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
