"""``python -m broker.demo seed|story --url URL``."""

from __future__ import annotations

import argparse
import sys

from broker.demo.seed import seed


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m broker.demo")
    parser.add_argument("command", choices=["seed"])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    seed(args.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
