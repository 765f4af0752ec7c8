/**
 * The repo's own Python tools (.venv/: dbt, moto_server, the v1 AWS CLI), created by
 * scripts/python-env.sh from test/dbt/requirements.txt. Tests must run these, never copies
 * that happen to be on PATH.
 */
import { spawnSync } from "child_process";
import * as path from "path";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const VENV = path.join(REPO_ROOT, ".venv");
export const VENV_BIN = path.join(VENV, "bin");

let ready = false;

/** Creates or refreshes .venv once per process; a no-op when the requirements stamp matches. */
export function ensurePythonEnv(): void {
    if (ready) return;
    const script = path.join(REPO_ROOT, "scripts", "python-env.sh");
    const r = spawnSync("bash", [script], { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 });
    if (r.error || r.status !== 0) {
        const out = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n").slice(-30).join("\n");
        throw new Error(`scripts/python-env.sh failed (${r.error?.message ?? `exit ${r.status}`}):\n${out}`);
    }
    ready = true;
}

/** Prefixes whose inherited values would point dbt, the AWS CLI or libpq somewhere else. */
const SCRUBBED = [/^DBT_/, /^AWS_/, /^PG/, /^PYTHON(PATH|HOME)$/];

/** A process env with the venv first on PATH, tracking off, and only `extra`'s DBT_/AWS_/PG settings. */
export function pythonEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
        if (v !== undefined && !SCRUBBED.some((re) => re.test(k))) env[k] = v;
    }
    // The venv's bin must win over pyenv shims or system copies of dbt/aws/moto_server.
    env.PATH = [VENV_BIN, process.env.PATH ?? ""].filter(Boolean).join(path.delimiter);
    env.VIRTUAL_ENV = VENV;
    env.DBT_SEND_ANONYMOUS_USAGE_STATS = "false";
    env.DO_NOT_TRACK = "1";
    for (const [k, v] of Object.entries(extra)) {
        if (v === undefined) delete env[k];
        else env[k] = v;
    }
    return env;
}
