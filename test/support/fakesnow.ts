/**
 * A local Snowflake stand-in: the venv's `fakesnow -s` (fakesnow[server], DuckDB behind
 * Snowflake's HTTP login/query API) on a free loopback port. dbt-snowflake and the Python
 * connector reach it with `host`, `port` and `protocol: http`. It accepts any login (it checks no
 * password or key-pair JWT) and rejects CREATE ROLE, GRANT, SHOW GRANTS and RSA_PUBLIC_KEY, so
 * tests run dbt's DDL and queries on it, never the access plan.
 */
import { ChildProcess, execFile, spawn } from "child_process";
import * as net from "net";
import * as path from "path";
import { freePort } from "./postgres";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "./python";

export interface FakesnowServer {
    host: string;
    port: number;
    /** Runs statements in order on one connection (the Python connector, as dbt uses it); rows of the last. */
    sql(statements: string[]): Promise<unknown[][]>;
    stop(): Promise<void>;
}

/** Runs statements through snowflake-connector-python; prints the last statement's rows as JSON. */
const CONNECTOR_SCRIPT = `
import json, sys
import snowflake.connector
host, port, statements = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
conn = snowflake.connector.connect(account="fakesnow-local", user="TEST_ADMIN", password="unused", host=host, port=port, protocol="http")
rows = []
try:
    cur = conn.cursor()
    for s in statements:
        rows = cur.execute(s).fetchall()
finally:
    conn.close()
print(json.dumps([list(r) for r in rows], default=str))
`;

export async function startFakesnow(): Promise<FakesnowServer> {
    ensurePythonEnv();
    const host = "127.0.0.1";
    const port = await freePort();
    // Own process group, so stop() also takes down uvicorn's workers.
    const child = spawn(path.join(VENV_BIN, "fakesnow"), ["-s", "--host", host, "-p", String(port)], {
        env: pythonEnv(),
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const keep = (b: Buffer) => (output = (output + b.toString()).slice(-8000));
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const onExit = () => killGroup(child, "SIGKILL");
    process.once("exit", onExit);
    try {
        await waitUntilListening(host, port, child, () => output);
    } catch (e) {
        killGroup(child, "SIGKILL");
        process.removeListener("exit", onExit);
        throw e;
    }
    return {
        host,
        port,
        sql(statements) {
            return new Promise((resolve, reject) => {
                execFile(path.join(VENV_BIN, "python"), ["-c", CONNECTOR_SCRIPT, host, String(port), JSON.stringify(statements)], { env: pythonEnv(), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
                    if (err) reject(new Error(`fakesnow sql ${JSON.stringify(statements)} failed: ${stderr.trim().split("\n").slice(-5).join("\n") || err.message}`));
                    else resolve(JSON.parse(stdout.trim().split("\n").pop() ?? "[]"));
                });
            });
        },
        async stop() {
            process.removeListener("exit", onExit);
            if (child.exitCode !== null || child.signalCode !== null) return;
            killGroup(child, "SIGTERM");
            const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5000);
            await exited;
            clearTimeout(timer);
        },
    };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
    if (child.pid === undefined) return;
    try {
        process.kill(-child.pid, signal);
    } catch {
        // Already gone.
    }
}

async function waitUntilListening(host: string, port: number, child: ChildProcess, output: () => string): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`fakesnow exited (${child.exitCode ?? child.signalCode}) before listening:\n${output()}`);
        }
        if (/Uvicorn running/.test(output()) && (await connects(host, port))) return;
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`fakesnow did not listen on ${host}:${port} within 60 s:\n${output()}`);
}

function connects(host: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const s = net.connect({ host, port });
        s.setTimeout(1000, () => s.destroy());
        s.once("connect", () => {
            s.end();
            resolve(true);
        });
        s.once("error", () => resolve(false));
        s.once("close", () => resolve(false));
    });
}
