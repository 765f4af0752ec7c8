/**
 * `npm run audit -- --stack <stack> [--format text|json] [--ignore-role <name>]…`: connects to the
 * stack's warehouse with a read-only login and reports drift of the live grants from the declared
 * plan; exits 1 on drift. The login comes from the environment (PGUSER, PGPASSWORD; PGHOST,
 * PGPORT and PGDATABASE override the stack's connection), never from a file or an argument.
 * The stack's admin user and the audit login are not part of the plan and are ignored.
 */
import { Client } from "pg";
import { auditPostgres, readPostgresCatalog, renderAuditReport } from "../components/access/audit";
import { accessPlan } from "../components/access/plan";
import { argValue } from "./access";
import { runProgram, stackConfig } from "./offline";

async function main(argv: string[]): Promise<number> {
    const stack = argValue(argv, "--stack");
    const format = argValue(argv, "--format") ?? "text";
    if (!stack) throw new Error("usage: PGUSER=… PGPASSWORD=… npm run audit -- --stack <stack> [--format text|json] [--ignore-role <name>]");
    if (format !== "text" && format !== "json") throw new Error(`--format ${format}: expected text or json`);
    const user = process.env.PGUSER;
    if (!user || !process.env.PGPASSWORD) throw new Error("set PGUSER and PGPASSWORD to the read-only audit login");
    const warehouse = JSON.parse(stackConfig(stack)["dbt-platform:warehouse"] ?? "{}");
    if (warehouse.kind !== "postgres") throw new Error(`stack ${stack}: the live audit runs on Postgres; ${warehouse.kind} catalogs are audited from their query results (components/access/warehouses.ts)`);
    const conn = warehouse.connection ?? {};
    const ignoreRoles = [user, conn.username, ...argv.flatMap((a, i) => (a === "--ignore-role" ? [argv[i + 1]] : []))].filter(Boolean);
    const { resources } = await runProgram(stack);
    const plan = accessPlan(resources);
    const client = new Client({
        host: process.env.PGHOST ?? conn.host,
        port: Number(process.env.PGPORT ?? conn.port ?? 5432),
        database: process.env.PGDATABASE ?? plan.database,
        user,
        password: process.env.PGPASSWORD,
        ssl: (process.env.PGSSLMODE ?? conn.sslmode ?? "require") === "disable" ? false : { rejectUnauthorized: (process.env.PGSSLMODE ?? conn.sslmode) === "verify-full" },
    });
    await client.connect();
    try {
        // Read-only by construction: the session cannot write even if the login could.
        await client.query("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
        const drifts = auditPostgres(plan, await readPostgresCatalog(client), { ignoreRoles });
        process.stdout.write(format === "json" ? JSON.stringify({ stack, database: plan.database, drift: drifts.length > 0, drifts }, null, 2) + "\n" : renderAuditReport(stack, drifts));
        return drifts.length ? 1 : 0;
    } finally {
        await client.end();
    }
}

if (require.main === module) main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
        console.error(err instanceof Error ? err.message : String(err));
        process.exit(2);
    },
);
