"""Inside the sandbox: scan one source archive and print the report as a marked JSON line.

Started as `python -S scan.py` from the run's own copy of the scanner (its directory holds
libs/scan and libs/common's pure modules); the job comes on stdin: {"archive", "advisories",
"limits": {"max_bytes", "max_files", "max_seconds"}}, paths relative to the work directory.
"""

import json
import os
import sys
import traceback
from pathlib import Path

MARK = "@@SWITCHBOARD_RESULT@@"


def main() -> None:
    """Read the job, scan, write {"outcome": "scanned" | "refused" | "error", ...}."""
    job = json.loads(sys.stdin.read())
    try:
        from libs.common import osv
        from libs.scan import extract, report

        advisories = osv.load(job["advisories"])
        limits = extract.Limits(**job.get("limits") or {})
        result = report.scan(Path(job["archive"]), Path(os.getcwd()), advisories, limits)
    except BaseException as exc:  # the scanner's own failure is an error outcome, not a crash
        result = {
            "outcome": "error",
            "reason": f"{type(exc).__name__}: {str(exc)[:500]}",
            "traceback": "".join(traceback.format_exception(exc))[-4000:],
        }
    sys.stdout.write("\n" + MARK + json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
