/**
 * `npm run audit -- --stack <stack> [--format text|json] [--ignore-role <name>]… [--catalog <rows.json>] [--write-catalog <rows.json>]`:
 * connects to the stack's warehouse with a read-only login and reports drift of the live grants
 * from the declared plan; exits 1 on drift, 2 when it cannot audit. The login comes from the
 * environment, never from a file or an argument. Postgres reads pg_roles & co.; Redshift (same wire
 * protocol) its SVV_* views, against the RedshiftWarehouse's declared plan: PGUSER, PGPASSWORD
 * (PGHOST, PGPORT and PGDATABASE override the stack's connection). Snowflake, against
 * SnowflakeWarehouse's: scripts/snowflake-catalog.py runs SNOWFLAKE_AUDIT_QUERIES with key-pair
 * auth as SNOWFLAKE_USER (SNOWFLAKE_ACCOUNT, default the stack's account; SNOWFLAKE_PRIVATE_KEY, the
 * PEM or its base64, written to a mode-600 temp file and removed, or SNOWFLAKE_PRIVATE_KEY_PATH;
 * optional SNOWFLAKE_ROLE; SNOWFLAKE_HOST / PORT / PROTOCOL override the stack's warehouse.endpoint).
 * `--catalog` audits recorded rows instead (every kind); `--write-catalog` keeps the collected ones.
 * The stack's admin user and the audit login (and role) are not part of the plan and are ignored.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as readline from "readline";
import { Client } from "pg";
import { auditPostgres, Drift, Queryable, readPostgresCatalog, renderAuditReport } from "../components/access/audit";
import {
    auditRedshiftDeclared,
    auditSnowflakeDeclared,
    collectSnowflakeRows,
    REDSHIFT_AUDIT_QUERIES,
    RedshiftRows,
    RunShow,
    ShowResult,
    SnowflakeRows,
    UncollectedQuery,
} from "../components/access/warehouses";
import { argValue, declaredAccess } from "./access";
import { ROOT, stackConfig } from "./offline";

/** Runs each Redshift audit query (plain SELECTs on SVV_* views and pg_user / pg_group / pg_namespace). */
export async function readRedshiftRows(db: Queryable): Promise<RedshiftRows> {
    const out: Partial<RedshiftRows> = {};
    for (const [key, sql] of Object.entries(REDSHIFT_AUDIT_QUERIES)) (out as any)[key] = (await db.query(sql)).rows;
    return out as RedshiftRows;
}

function warehouseOf(stack: string): Record<string, any> {
    return JSON.parse(stackConfig(stack)["dbt-platform:warehouse"] ?? "{}");
}

/** The collector's Python: the project's .venv (scripts/python-env.sh), else SNOWFLAKE_AUDIT_PYTHON or python3 on PATH. */
function collectorPython(): string {
    const venv = path.join(ROOT, ".venv", "bin", "python");
    return process.env.SNOWFLAKE_AUDIT_PYTHON ?? (fs.existsSync(venv) ? venv : "python3");
}

/**
 * Runs `fn` with a RunShow backed by scripts/snowflake-catalog.py, logged in as the read-only audit
 * identity from the environment. The private key reaches the collector only as a mode-600 file in
 * a private temp directory, removed afterwards; the key itself is not in the collector's environment.
 */
export async function withSnowflakeCollector<T>(warehouse: Record<string, any>, fn: (run: RunShow) => Promise<T>): Promise<T> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.SNOWFLAKE_PRIVATE_KEY;
    env.SNOWFLAKE_ACCOUNT = process.env.SNOWFLAKE_ACCOUNT || warehouse.account;
    const endpoint = warehouse.endpoint ?? {};
    for (const k of ["host", "port", "protocol"]) {
        const name = `SNOWFLAKE_${k.toUpperCase()}`;
        if (!process.env[name] && endpoint[k] !== undefined) env[name] = String(endpoint[k]);
    }
    if (!env.SNOWFLAKE_ACCOUNT) throw new Error("set SNOWFLAKE_ACCOUNT (the stack config names no warehouse.account)");
    if (!process.env.SNOWFLAKE_USER) throw new Error("set SNOWFLAKE_USER and SNOWFLAKE_PRIVATE_KEY to the read-only audit identity (key-pair auth)");
    let dir: string | undefined;
    if (!process.env.SNOWFLAKE_PRIVATE_KEY_PATH) {
        const key = process.env.SNOWFLAKE_PRIVATE_KEY;
        if (!key) throw new Error("set SNOWFLAKE_PRIVATE_KEY (PKCS#8 PEM, or its base64) or SNOWFLAKE_PRIVATE_KEY_PATH for the audit identity");
        // CI variables often cannot hold newlines: accept the PEM base64-encoded too.
        const pem = key.includes("-----BEGIN") ? key : Buffer.from(key, "base64").toString("utf8");
        if (!pem.includes("-----BEGIN")) throw new Error("SNOWFLAKE_PRIVATE_KEY is neither a PEM private key nor the base64 of one");
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-platform-audit-"));
        env.SNOWFLAKE_PRIVATE_KEY_PATH = path.join(dir, "audit_key.p8");
        fs.writeFileSync(env.SNOWFLAKE_PRIVATE_KEY_PATH, pem.endsWith("\n") ? pem : pem + "\n", { mode: 0o600 });
    }
    const child = spawn(collectorPython(), [path.join(ROOT, "scripts", "snowflake-catalog.py")], { env, stdio: ["pipe", "pipe", "pipe"] });
    // A collector that died (failed login) closes its stdin: the failure is reported from its exit and stderr, not as EPIPE.
    child.stdin.on("error", () => undefined);
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
    const spawnError = new Promise<never>((_, reject) => child.once("error", (e) => reject(new Error(`cannot start the Snowflake collector (${collectorPython()}): ${e.message}`))));
    spawnError.catch(() => undefined); // Handled where it is raced; no unhandled rejection when the collector starts fine.
    const answers = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const run: RunShow = async (sql) => {
        child.stdin.write(JSON.stringify({ sql }) + "\n");
        const next = await Promise.race([answers.next(), spawnError]);
        if (next.done) throw new Error(`the Snowflake collector exited (${await exited}): ${stderr.trim() || "no message"}`);
        const answer = JSON.parse(next.value) as ShowResult & { error?: string };
        if (answer.error !== undefined) throw new Error(answer.error);
        return answer;
    };
    try {
        return await fn(run);
    } finally {
        child.stdin.end();
        await Promise.race([exited, spawnError.catch(() => null)]);
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** A read-only session as the audit login from the environment (Postgres and Redshift speak the same protocol). */
async function readOnlyClient(conn: Record<string, any>, database: string, defaultPort: number): Promise<Client> {
    const client = new Client({
        host: process.env.PGHOST ?? conn.host,
        port: Number(process.env.PGPORT ?? conn.port ?? defaultPort),
        database: process.env.PGDATABASE ?? database,
        user: process.env.PGUSER,
        password: process.env.PGPASSWORD,
        ssl: (process.env.PGSSLMODE ?? conn.sslmode ?? "require") === "disable" ? false : { rejectUnauthorized: (process.env.PGSSLMODE ?? conn.sslmode) === "verify-full" },
    });
    await client.connect();
    // Read-only by construction: the session cannot write even if the login could.
    await client.query("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
    return client;
}

async function main(argv: string[]): Promise<number> {
    const stack = argValue(argv, "--stack");
    const format = argValue(argv, "--format") ?? "text";
    const catalogFile = argValue(argv, "--catalog");
    const writeCatalog = argValue(argv, "--write-catalog");
    if (!stack) throw new Error("usage: PGUSER=… PGPASSWORD=… npm run audit -- --stack <stack> [--format text|json] [--ignore-role <name>]… [--catalog <rows.json>] [--write-catalog <rows.json>]");
    if (format !== "text" && format !== "json") throw new Error(`--format ${format}: expected text or json`);
    const warehouse = warehouseOf(stack);
    const snowflake = warehouse.kind === "snowflake";
    const user = snowflake ? process.env.SNOWFLAKE_USER : process.env.PGUSER;
    if (!catalogFile && !snowflake && (!user || !process.env.PGPASSWORD)) throw new Error("set PGUSER and PGPASSWORD to the read-only audit login");
    const conn = warehouse.connection ?? {};
    const ignoreRoles = [user, snowflake ? process.env.SNOWFLAKE_ROLE : undefined, conn.username, conn.user, warehouse.admin?.user, ...argv.flatMap((a, i) => (a === "--ignore-role" ? [argv[i + 1]] : []))].filter(
        (x): x is string => Boolean(x),
    );
    let uncollected: UncollectedQuery[] = [];
    const declared = await declaredAccess(stack);
    let database: string;
    let drifts: Drift[];
    if (declared.kind === "postgres") {
        const plan = declared.plan;
        database = plan.database;
        if (catalogFile) drifts = auditPostgres(plan, JSON.parse(fs.readFileSync(catalogFile, "utf8")), { ignoreRoles });
        else {
            const client = await readOnlyClient(conn, plan.database, 5432);
            try {
                drifts = auditPostgres(plan, await readPostgresCatalog(client), { ignoreRoles });
            } finally {
                await client.end();
            }
        }
    } else {
        const w = declared.warehouse;
        database = w.pullRequestSchemas.database;
        if (w.kind === "redshift") {
            let rows: RedshiftRows;
            if (catalogFile) rows = JSON.parse(fs.readFileSync(catalogFile, "utf8"));
            else {
                const client = await readOnlyClient(conn, database, 5439);
                try {
                    rows = await readRedshiftRows(client);
                } finally {
                    await client.end();
                }
            }
            drifts = auditRedshiftDeclared(w, rows, { ignoreRoles });
        } else if (w.kind === "snowflake") {
            let rows: SnowflakeRows;
            if (catalogFile) rows = JSON.parse(fs.readFileSync(catalogFile, "utf8"));
            else {
                // AUDIT_SNOWFLAKE_PARTIAL=1 (for fakesnow, which rejects SHOW ROLES and SHOW GRANTS) keeps going past rejected statements; the result is then no verdict.
                const collected = await withSnowflakeCollector(warehouse, (run) => collectSnowflakeRows(w, run, { partial: process.env.AUDIT_SNOWFLAKE_PARTIAL === "1" }));
                rows = collected.rows;
                uncollected = collected.uncollected;
                if (writeCatalog) fs.writeFileSync(writeCatalog, JSON.stringify(rows, null, 2) + "\n");
            }
            // The audit identity's own session role (its default role unless SNOWFLAKE_ROLE names one) is not the plan's either.
            const auditRole = user ? rows.users.find((u) => String(u.name).toUpperCase() === user.toUpperCase())?.default_role : undefined;
            drifts = auditSnowflakeDeclared(w, rows, { ignoreRoles: auditRole ? [...ignoreRoles, auditRole] : ignoreRoles });
        } else throw new Error(`stack ${stack}: no audit for warehouse kind ${w.kind}`);
    }
    process.stdout.write(format === "json" ? JSON.stringify({ stack, database, drift: drifts.length > 0, drifts, ...(uncollected.length ? { uncollected } : {}) }, null, 2) + "\n" : renderAuditReport(stack, drifts));
    if (uncollected.length) {
        // A catalog with holes would report what it could not read as missing: not a verdict either way.
        console.error(`audit ${stack}: catalog incomplete, ${uncollected.length} statement(s) not collected:\n${uncollected.map((u) => `  ${u.sql}: ${u.error.split("\n")[0]}`).join("\n")}`);
        return 2;
    }
    return drifts.length ? 1 : 0;
}

if (require.main === module) main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
        console.error(err instanceof Error ? err.message : String(err));
        process.exit(2);
    },
);
