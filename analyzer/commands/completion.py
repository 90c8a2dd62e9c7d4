"""The ``completion`` subcommand: a shell completion script for bash, zsh or tcsh.

Why shtab (and not argcomplete): shtab writes a static script from the argparse parser
once, so pressing TAB never starts Python (the product imports pandas and scipy);
argcomplete runs the program on every TAB. Install:
``canary-analyzer completion bash > /etc/bash_completion.d/canary-analyzer`` or
``source <(canary-analyzer completion bash)``; zsh: write it as ``_canary-analyzer`` into a
directory on ``$fpath``.
"""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh", "tcsh")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, tcsh)",
        description="Print a completion script for SHELL: "
        "source <(canary-analyzer completion bash).",
    )
    parser.add_argument("shell", choices=SHELLS, help="bash, zsh or tcsh")
    parser.set_defaults(handler=completion_command)


def completion_command(args: argparse.Namespace) -> int:
    import shtab

    from analyzer.cli import build_parser

    print(shtab.complete(build_parser(), shell=args.shell), end="")
    return 0
