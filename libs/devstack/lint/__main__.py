"""Run the project lint on the repository: `python -m libs.devstack.lint [root]`."""

import sys
from pathlib import Path

from libs.devstack.lint.run import lint


def main(argv: list[str]) -> int:
    """Print every finding under the root (default: the current directory); 1 if any."""
    root = Path(argv[0]) if argv else Path.cwd()
    findings = lint(root)
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
