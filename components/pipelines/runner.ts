/**
 * A one-process dbt driver for CI steps that run several dbt commands in a row (freshness, clone,
 * build): each `dbt` process pays Python and adapter start-up plus a (partial) parse, 8–10 s on a
 * busy runner. The driver parses once through dbt's programmatic entry point (dbtRunner) and runs
 * every command with that manifest, in the same process. Rendered into the dbt project.
 */

/** Where the driver lives, relative to the dbt project (next to the rendered profiles.yml). */
export const DRIVER_PATH = ".ci/dbt_platform_run.py";

/** Prefix of a driver command whose failure is only a warning (source freshness). */
export const OPTIONAL_PREFIX = "?";
/** Prefix of a driver command that runs last whatever happened before it (the PR schemas' cleanup); its failure is a warning. */
export const FINALLY_PREFIX = "!";

/** A Python string literal. */
const py = (s: string) => JSON.stringify(s);

/**
 * `python .ci/dbt_platform_run.py [--deps] [--finally-done PATH VALUE] "<dbt args>" ...`: each argument is
 * one dbt command (shell-split), run in order on one parse of the first command's `--target`.
 * `?<args>`: a failure is a warning. `!<args>`: runs after all others, also after a failure or an
 * interrupt; when there were such commands and every one passed, VALUE is written to PATH (removed at start), so a separate
 * always-run step can tell the cleanup already happened. `--deps`: `dbt deps` in the same process
 * before the parse (no dbt_packages restored). Each command's run_results.json is kept as
 * target/dbt-platform/<n>-<command>.json; target/run_results.json stays the last non-`!` command's. Stops at the first failing command with its exit code
 * (1 for a failed node, 2 for an error), like the dbt CLI.
 */
export const DRIVER_SCRIPT = `# Rendered by dbt-platform: runs a CI job's dbt commands in one process with one parse.
import os
import shlex
import shutil
import sys
import time

from dbt.cli.main import dbtRunner

USAGE = "usage: dbt_platform_run.py [--deps] [--finally-done PATH VALUE] COMMAND..."


TARGET = os.environ.get("DBT_TARGET_PATH") or "target"
RESULTS = os.path.join(TARGET, "run_results.json")
KEPT = os.path.join(TARGET, "dbt-platform")


def invoke(runner, number, args):
    """Runs one command; keeps the run_results.json it wrote as target/dbt-platform/<n>-<command>.json."""
    print("dbt-platform: dbt " + " ".join(shlex.quote(a) for a in args), flush=True)
    before = os.stat(RESULTS).st_mtime_ns if os.path.exists(RESULTS) else None
    started = time.monotonic()
    res = runner.invoke(args)
    print("dbt-platform: dbt %s %s in %.1f s" % (args[0], "passed" if res.success else "failed", time.monotonic() - started), flush=True)
    if os.path.exists(RESULTS) and os.stat(RESULTS).st_mtime_ns != before:
        os.makedirs(KEPT, exist_ok=True)
        shutil.copyfile(RESULTS, os.path.join(KEPT, "%02d-%s.json" % (number, args[0])))
    return res


def run_finally(runner, steps, done):
    # The build's run_results.json stays target/run_results.json (dbt retry, artifacts): the cleanup's is only kept.
    saved = open(RESULTS, "rb").read() if os.path.exists(RESULTS) else None
    ran, ok = 0, True
    for number, (kind, args) in enumerate(steps, 1):
        if kind != ${py(FINALLY_PREFIX)}:
            continue
        ran += 1
        if not invoke(runner, number, args).success:
            ok = False
            print("warning: dbt %s failed (not blocking)" % " ".join(args[:2]), flush=True)
    if saved is not None:
        with open(RESULTS, "wb") as f:
            f.write(saved)
    if ran and ok and done:
        with open(done[0], "w") as f:
            f.write(done[1] + "\\n")


def main(argv):
    deps, done = False, None
    while argv and argv[0].startswith("--"):
        if argv[0] == "--deps":
            deps, argv = True, argv[1:]
        elif argv[0] == "--finally-done" and len(argv) >= 3:
            done, argv = (argv[1], argv[2]), argv[3:]
        else:
            print(USAGE, file=sys.stderr)
            return 2
    steps = []
    for raw in argv:
        kind = raw[0] if raw[:1] in (${py(OPTIONAL_PREFIX)}, ${py(FINALLY_PREFIX)}) else ""
        steps.append((kind, shlex.split(raw[1:] if kind else raw)))
    shutil.rmtree(KEPT, ignore_errors=True)
    if done:
        os.makedirs(os.path.dirname(done[0]) or ".", exist_ok=True)
        if os.path.exists(done[0]):
            os.remove(done[0])
    if deps:
        print("dbt-platform: dbt deps", flush=True)
        if not dbtRunner().invoke(["deps"]).success:
            print("dbt-platform: dbt deps failed", file=sys.stderr)
            return 2
    target = next((args[i + 1] for _, args in steps for i, a in enumerate(args[:-1]) if a == "--target"), None)
    started = time.monotonic()
    parsed = dbtRunner().invoke(["parse"] + (["--target", target] if target else []))
    if not parsed.success:
        print("dbt-platform: dbt parse failed", file=sys.stderr)
        return 2
    print("dbt-platform: parsed once in %.1f s; %d command(s) reuse the manifest" % (time.monotonic() - started, len(steps)), flush=True)
    runner = dbtRunner(manifest=parsed.result)
    code = 0
    try:
        for number, (kind, args) in enumerate(steps, 1):
            if kind == ${py(FINALLY_PREFIX)}:
                continue
            res = invoke(runner, number, args)
            if res.success:
                continue
            if kind == ${py(OPTIONAL_PREFIX)}:
                print("warning: dbt %s failed (not blocking)" % " ".join(args[:2]), flush=True)
                continue
            if res.exception is not None:
                print("dbt-platform: dbt %s: %s" % (args[0], res.exception), file=sys.stderr)
                code = 2
            else:
                code = 1
            break
    except KeyboardInterrupt:
        code = 130
    finally:
        run_finally(runner, steps, done)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
`;

/** Quotes a driver command for bash; `$NAME` references (validated job variables) are expanded by the shell. */
function driverArg(command: string): string {
    return `"${command.replace(/["\\`]/g, (c) => `\\${c}`)}"`;
}

/** Options of driverLine: `deps` runs `dbt deps` in the process first; `finallyDone` is the file (and value) written when every `!` command passed. */
export interface DriverOptions {
    /** true: always `--deps`; a string: an unquoted shell expansion (such as `$DBT_DEPS`) that yields `--deps` or nothing. */
    deps?: boolean | string;
    finallyDone?: { path: string; value: string };
}

/** The shell line that runs `commands` through the driver (each one dbt command, `?` = warning only, `!` = finally). */
export function driverLine(commands: string[], options: DriverOptions = {}): string {
    const deps = options.deps === true ? ["--deps"] : options.deps ? [options.deps] : [];
    const done = options.finallyDone ? ["--finally-done", driverArg(options.finallyDone.path), driverArg(options.finallyDone.value)] : [];
    return [`python ${DRIVER_PATH}`, ...deps, ...done, ...commands.map(driverArg)].join(" ");
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
 * most DEADLOCK_RETRIES times, with one thread (concurrent drops are what deadlock: a 4-thread retry of a
 * 500-model full build deadlocked again on both tries); returns the last exit code. Concurrent `drop … cascade` of replaced
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
        `    echo "dbt failed on a Postgres deadlock (40P01): dbt retry $dl_try of ${DEADLOCK_RETRIES} (reruns the failed and skipped nodes, one at a time)"`,
        `    dl_rc=0; ${dbt} retry --threads 1 || dl_rc=$?`,
        "  done",
        '  return "$dl_rc"',
        "}",
    ];
}
