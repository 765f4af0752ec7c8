/**
 * A local Snowflake stand-in: the venv's `fakesnow -s` (fakesnow[server], DuckDB behind
 * Snowflake's HTTP login/query API) on a free loopback port. dbt-snowflake and the Python
 * connector reach it with `host`, `port` and `protocol: http`. It accepts any login (it checks no
 * password or key-pair JWT) and rejects CREATE ROLE, GRANT, SHOW GRANTS and RSA_PUBLIC_KEY, so
 * tests run dbt's DDL and queries on it, never the access plan.
 */
import { execFile } from "child_process";
import * as net from "net";
import * as path from "path";
import { freePort } from "./postgres";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "./python";
import { startPythonServer } from "./pythonServer";

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
    const server = await startPythonServer("fakesnow", ["-s", "--host", host, "-p", String(port)], async (output) => /Uvicorn running/.test(output) && (await connects(host, port)), 60_000);
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
        stop: () => server.stop(),
    };
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
