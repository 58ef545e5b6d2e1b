"""`geodino demo`: the path a user takes, on CPU, on a small scene the demo writes itself."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `demo` sub-command."""
    p = subparsers.add_parser("demo", help="run the whole path on CPU on a small synthetic scene")
    p.add_argument("--out", default="demo_out", help="output folder")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    raise NotImplementedError("the demo is being written")
