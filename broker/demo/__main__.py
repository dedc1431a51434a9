"""``python -m broker.demo seed|story|year --url URL``."""

from __future__ import annotations

import argparse
import sys

from broker.demo.seed import CLIENTS_FILE, admin_from_env, seed
from broker.demo.story import play
from broker.demo.year import seed_year_once


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m broker.demo")
    parser.add_argument("command", choices=["seed", "story", "year"])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    clients = seed(args.url, admin_from_env())
    if args.command == "story":
        play(args.url, clients)
        print(f"\nKlientuppgifterna finns i / the demo clients are in {CLIENTS_FILE}")
    if args.command == "year":
        seed_year_once(args.url, clients)
    return 0


if __name__ == "__main__":
    sys.exit(main())
