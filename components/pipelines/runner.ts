/**
 * A one-process dbt driver for CI steps that run several dbt commands in a row (freshness, clone,
 * build): each `dbt` process pays Python and adapter start-up plus a (partial) parse, 8–10 s on a
 * busy runner. The driver parses once through dbt's programmatic entry point (dbtRunner) and runs
 * every command with that manifest, in the same process. Rendered into the dbt project.
 */

/** Where the driver lives, relative to the dbt project (next to the rendered profiles.yml). */
export const DRIVER_PATH = ".ci/dbt_platform_run.py";

/**
 * `python .ci/dbt_platform_run.py "<dbt args>" ["?<dbt args>" ...]`: the first command's
 * `--target` is parsed once; each argument is one dbt command (shell-split); a leading `?` marks a
 * command whose failure is a warning (source freshness). Stops at the first failing command with
 * its exit code (1 for a failed node, 2 for an error), like the dbt CLI.
 */
export const DRIVER_SCRIPT = `# Rendered by dbt-platform: runs several dbt commands in one process with one parse.
import shlex
import sys
import time

from dbt.cli.main import dbtRunner


def main(commands):
    steps = []
    for raw in commands:
        optional = raw.startswith("?")
        steps.append((optional, shlex.split(raw[1:] if optional else raw)))
    target = next((args[i + 1] for _, args in steps for i, a in enumerate(args[:-1]) if a == "--target"), None)
    started = time.monotonic()
    parsed = dbtRunner().invoke(["parse"] + (["--target", target] if target else []))
    if not parsed.success:
        print("dbt-platform: dbt parse failed", file=sys.stderr)
        return 2
    print("dbt-platform: parsed once in %.1f s; %d command(s) reuse the manifest" % (time.monotonic() - started, len(steps)), flush=True)
    runner = dbtRunner(manifest=parsed.result)
    for optional, args in steps:
        print("dbt-platform: dbt " + " ".join(shlex.quote(a) for a in args), flush=True)
        res = runner.invoke(args)
        if res.success:
            continue
        if optional:
            print("warning: dbt %s failed (not blocking)" % " ".join(args[:2]), flush=True)
            continue
        if res.exception is not None:
            print("dbt-platform: dbt %s: %s" % (args[0], res.exception), file=sys.stderr)
            return 2
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
`;

/** The shell line that runs `commands` through the driver (each one dbt command, `?` = warning only). */
export function driverLine(commands: string[]): string {
    return `python ${DRIVER_PATH} ${commands.map((c) => `'${c.replace(/'/g, `'"'"'`)}'`).join(" ")}`;
}

/** How many times a deadlocked dbt build is retried (`dbt retry`) before the job fails. */
export const DEADLOCK_RETRIES = 2;

/**
 * Exits 0 when target/run_results.json holds a failed node whose message is a Postgres deadlock
 * (SQLSTATE 40P01, "deadlock detected"); 1 otherwise, also without run results.
 */
const DEADLOCK_CHECK =
    "import json, sys; " +
    "rs = json.load(open('target/run_results.json'))['results']; " +
    "sys.exit(0 if any(r['status'] in ('error', 'fail') and ('40P01' in (r.get('message') or '') or 'deadlock detected' in (r.get('message') or '').lower()) for r in rs) else 1)";

/**
 * Shell lines defining `dbt_deadlock_retry <command...>`: runs the (dbt build) command and, only while
 * it failed on a deadlock, `dbt retry` (reruns the failed and skipped nodes from run_results.json) at
 * most DEADLOCK_RETRIES times; returns the last exit code. Concurrent `drop … cascade` of replaced
 * tables that share dependent views deadlock on pg_rewrite, and the failed run leaves production
 * without the views the cascade dropped. Any other failure returns at once. `dbt`: how the script calls dbt.
 */
export function deadlockRetryLines(python = "python", dbt = "dbt"): string[] {
    return [
        "dbt_deadlock_retry() {",
        '  dl_rc=0; "$@" || dl_rc=$?',
        "  dl_try=0",
        `  while [ "$dl_rc" -ne 0 ] && [ "$dl_try" -lt ${DEADLOCK_RETRIES} ] && ${python} -c "${DEADLOCK_CHECK}" 2>/dev/null; do`,
        "    dl_try=$((dl_try + 1))",
        `    echo "dbt failed on a Postgres deadlock (40P01): dbt retry $dl_try of ${DEADLOCK_RETRIES} (reruns the failed and skipped nodes)"`,
        `    dl_rc=0; ${dbt} retry || dl_rc=$?`,
        "  done",
        '  return "$dl_rc"',
        "}",
    ];
}
