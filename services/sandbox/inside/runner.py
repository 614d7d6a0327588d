"""Inside the sandbox: run one code tool's `async def main(**args)` and print a JSON result."""

import asyncio
import contextlib
import io
import json
import resource
import sys
import time
import traceback

MAX_CAPTURE = 64 * 1024


def main() -> None:
    """Read {"code", "args"} on stdin, run, write {"ok", "result"|"error", ...} on stdout."""
    job = json.loads(sys.stdin.read())
    out, err = io.StringIO(), io.StringIO()
    real_stdout = sys.stdout
    started = time.perf_counter()
    reply: dict = {}
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            namespace: dict = {"__name__": "switchboard_tool"}
            exec(compile(job["code"], "<tool>", "exec"), namespace)
            entry = namespace.get("main")
            if entry is None:
                raise NameError("the code defines no main()")
            value = entry(**(job.get("args") or {}))
            if asyncio.iscoroutine(value):
                value = asyncio.run(value)
        json.dumps(value)
        reply = {"ok": True, "result": value}
    except BaseException as exc:  # the tool's failure is the result, whatever it is
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        reply = {
            "ok": False,
            "error": {
                "type": type(exc).__name__,
                "message": str(exc)[:2000],
                "traceback": "".join(tb)[-4000:],
            },
        }
    reply["stdout"] = out.getvalue()[:MAX_CAPTURE]
    reply["stderr"] = err.getvalue()[:MAX_CAPTURE]
    reply["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    reply["memory_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    real_stdout.write("\n@@SWITCHBOARD_RESULT@@" + json.dumps(reply, default=repr) + "\n")
    real_stdout.flush()


if __name__ == "__main__":
    main()
