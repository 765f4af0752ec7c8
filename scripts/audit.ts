/**
 * `npm run audit -- --stack <stack> [--format text|json] [--ignore-role <name>]… [--catalog <rows.json>]`:
 * connects to the stack's warehouse with a read-only login and reports drift of the live grants
 * from the declared plan; exits 1 on drift. The login comes from the environment (PGUSER,
 * PGPASSWORD; PGHOST, PGPORT and PGDATABASE override the stack's connection), never from a file or
 * an argument. Postgres reads pg_roles & co.; Redshift (same wire protocol) its SVV_* views, against
 * the RedshiftWarehouse's declared plan; Snowflake, against SnowflakeWarehouse's, from the SHOW
 * results a read-only role recorded (`--catalog`, also accepted for the other kinds).
 * The stack's admin user and the audit login are not part of the plan and are ignored.
 */
import * as fs from "fs";
import { Client } from "pg";
import { auditPostgres, Drift, Queryable, readPostgresCatalog, renderAuditReport } from "../components/access/audit";
import { auditRedshiftDeclared, auditSnowflakeDeclared, REDSHIFT_AUDIT_QUERIES, RedshiftRows } from "../components/access/warehouses";
import { argValue, declaredAccess } from "./access";
import { stackConfig } from "./offline";

/** Runs each Redshift audit query (plain SELECTs on SVV_* views and pg_user / pg_group / pg_namespace). */
export async function readRedshiftRows(db: Queryable): Promise<RedshiftRows> {
    const out: Partial<RedshiftRows> = {};
    for (const [key, sql] of Object.entries(REDSHIFT_AUDIT_QUERIES)) (out as any)[key] = (await db.query(sql)).rows;
    return out as RedshiftRows;
}

function connectionOf(stack: string): Record<string, any> {
    const warehouse = JSON.parse(stackConfig(stack)["dbt-platform:warehouse"] ?? "{}");
    return warehouse.connection ?? {};
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
    if (!stack) throw new Error("usage: PGUSER=… PGPASSWORD=… npm run audit -- --stack <stack> [--format text|json] [--ignore-role <name>]… [--catalog <rows.json>]");
    if (format !== "text" && format !== "json") throw new Error(`--format ${format}: expected text or json`);
    const user = process.env.PGUSER;
    if (!catalogFile && (!user || !process.env.PGPASSWORD)) throw new Error("set PGUSER and PGPASSWORD to the read-only audit login");
    const conn = connectionOf(stack);
    const ignoreRoles = [user, conn.username, conn.user, ...argv.flatMap((a, i) => (a === "--ignore-role" ? [argv[i + 1]] : []))].filter((x): x is string => Boolean(x));
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
            // No Snowflake driver ships with the platform: the read-only role runs SNOWFLAKE_AUDIT_QUERIES, the results come in a file.
            if (!catalogFile) throw new Error(`stack ${stack}: Snowflake is audited from the results of SNOWFLAKE_AUDIT_QUERIES (components/access/warehouses.ts), run by a read-only role; pass them with --catalog <rows.json>`);
            drifts = auditSnowflakeDeclared(w, JSON.parse(fs.readFileSync(catalogFile, "utf8")), { ignoreRoles });
        } else throw new Error(`stack ${stack}: no audit for warehouse kind ${w.kind}`);
    }
    process.stdout.write(format === "json" ? JSON.stringify({ stack, database, drift: drifts.length > 0, drifts }, null, 2) + "\n" : renderAuditReport(stack, drifts));
    return drifts.length ? 1 : 0;
}

if (require.main === module) main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
        console.error(err instanceof Error ? err.message : String(err));
        process.exit(2);
    },
);
