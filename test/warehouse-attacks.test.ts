/**
 * @integration Issue 11's Postgres attacks, from pull-request code running as the CI bot, on a
 * real Postgres with exactly what the dev stack declares applied as the provider would. Each
 * attack is played to its end (the production table dropped, the attacker's code run as the prod
 * role); it counts as blocked only when that end is not reached.
 */
import assert from "assert";
import * as fs from "fs";
import { Client } from "pg";
import { parse } from "yaml";
import { applyRecorded } from "./support/apply";
import { attack } from "./support/attacks";
import { startPostgres, TestServer } from "./support/postgres";
import { resolve, ROOT, runProgram, toPulumiConfig } from "../scripts/offline";
import { schemaOwnershipCheckSql } from "../components/warehouse/postgres/warehouse";

const DB = "attack_test";

interface Login {
    user: string;
    password: string;
}

/** Runs `sql` as `login`; returns the rows or the error instead of throwing. */
async function as(server: TestServer, login: Login, sql: string): Promise<{ rows?: any[]; error?: Error & { code?: string } }> {
    const c = new Client(server.config(DB, login.user, login.password));
    await c.connect();
    try {
        const res: any = await c.query(sql);
        return { rows: Array.isArray(res) ? res[res.length - 1].rows : res.rows };
    } catch (err) {
        return { error: err as Error };
    } finally {
        await c.end();
    }
}

interface Attack {
    name: string;
    /** Plays the attack; resolves true when the attacker reached the goal. */
    play: () => Promise<{ succeeded: boolean; trace: string[] }>;
}

describe("Postgres attacks from pull-request code @integration", function () {
    this.timeout(180_000);
    let server: TestServer;
    let logins: Record<string, Login>;

    before(async () => {
        server = await startPostgres();
        const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.dev.yaml`, "utf8")).config;
        doc["dbt-platform:warehouse"].connection = { host: server.host, port: server.port, database: DB, username: server.adminUser, sslmode: "disable" };
        const { resources, exports } = await runProgram("dev", toPulumiConfig(doc));
        await applyRecorded(server, resources);
        const targets = (await resolve(exports.dbtTargets)).value as Record<string, any>;
        logins = Object.fromEntries(Object.values(targets).map((t: any) => [t.user, { user: t.user, password: t.password }]));
        // A shared helper in public that production models call unqualified, as many projects have.
        await server.admin(DB, "CREATE FUNCTION public.fmt_amount(integer) RETURNS text LANGUAGE sql AS 'select $1::text'");
    });

    after(async () => {
        await server?.stop();
    });

    it("blocks schema squatting and the search_path hijack", async () => {
        const ci = () => logins.dev_ci;
        const deploy = () => logins.dbt_bitbucket;
        const step = async (trace: string[], who: string, login: Login, sql: string) => {
            const r = await as(server, login, sql);
            trace.push(`${who}: ${sql.split("\n")[0].slice(0, 80)} -> ${r.error ? `${r.error.code} ${r.error.message}` : "ok"}`);
            return r;
        };
        /** The squatting end state: the CI bot, as owner of the schema, dropped a table production built. */
        const squat = (createSchema: string, schema: string): Attack["play"] => async () => {
            const trace: string[] = [];
            await step(trace, "dev_ci", ci(), createSchema);
            await step(trace, "dev_ci", ci(), `GRANT USAGE, CREATE ON SCHEMA ${schema} TO role_prod`);
            const built = await step(trace, "deploy", deploy(), `CREATE TABLE ${schema}.revenue AS SELECT 100 AS amount`);
            const dropped = await step(trace, "dev_ci", ci(), `DROP TABLE ${schema}.revenue`);
            return { succeeded: !built.error && !dropped.error, trace };
        };
        /** The hijack end state: code the CI bot wrote ran as role_prod and let the CI bot write into production. */
        const hijack = (createSchema: string, table: string): Attack["play"] => async () => {
            const trace: string[] = [];
            await step(trace, "dev_ci", ci(), createSchema);
            await step(
                trace, "dev_ci", ci(),
                `CREATE FUNCTION role_prod.fmt_amount(integer) RETURNS text LANGUAGE plpgsql AS $$
                 BEGIN
                     EXECUTE 'GRANT CREATE ON SCHEMA analytics TO role_dev';
                     RETURN $1::text;
                 END $$`,
            );
            await step(trace, "dev_ci", ci(), "GRANT USAGE ON SCHEMA role_prod TO role_prod");
            await step(trace, "deploy", deploy(), "SELECT fmt_amount(1) AS v");
            const wrote = await step(trace, "dev_ci", ci(), `CREATE TABLE analytics.${table} AS SELECT 1 AS x`);
            return { succeeded: !wrote.error, trace };
        };
        const attacks: Attack[] = [
            { name: "schema squatting: dev_ci creates analytics_finance", play: squat("CREATE SCHEMA analytics_finance", "analytics_finance") },
            {
                name: "schema squatting through the platform's create_schema",
                play: squat("SELECT dbt_platform.create_schema('analytics_fin2')", "analytics_fin2"),
            },
            // Through the function first: played second, it would find the first one's schema in place.
            { name: "search_path hijack through the platform's create_schema", play: hijack("SELECT dbt_platform.create_schema('role_prod')", "pwned_fn") },
            { name: "search_path hijack: dev_ci creates schema role_prod", play: hijack("CREATE SCHEMA role_prod", "pwned") },
            {
                name: "operator shadowing inside the platform's SECURITY DEFINER functions",
                play: async () => {
                    // The CI bot owns dbt_ci: it puts an always-true "=" there, ahead of pg_catalog, and
                    // asks the definer function to end the admin's session.
                    const trace: string[] = [];
                    const admin = new Client(server.config(DB));
                    admin.on("error", () => {});
                    await admin.connect();
                    const pid = (admin as unknown as { processID: number }).processID;
                    await step(
                        trace, "dev_ci", ci(),
                        `CREATE FUNCTION dbt_ci.always(integer, integer) RETURNS boolean LANGUAGE sql AS 'select true';
                         CREATE FUNCTION dbt_ci.always(name, name) RETURNS boolean LANGUAGE sql AS 'select true';
                         CREATE OPERATOR dbt_ci.= (leftarg = integer, rightarg = integer, function = dbt_ci.always);
                         CREATE OPERATOR dbt_ci.= (leftarg = name, rightarg = name, function = dbt_ci.always)`,
                    );
                    await step(trace, "dev_ci", ci(), `SET search_path = dbt_ci, dbt_platform, pg_catalog; SELECT pg_terminate_backend(${pid})`);
                    const alive = await admin.query("SELECT 1").then(() => true, () => false);
                    await admin.end().catch(() => {});
                    return { succeeded: !alive, trace };
                },
            },
        ];

        let blocked = 0;
        const report: string[] = [];
        for (const a of attacks) {
            // Counted in issue 11's cross-suite tally too (test/support/attacks.ts).
            const tally = attack(`postgres: ${a.name}`);
            const { succeeded, trace } = await a.play();
            if (!succeeded) {
                blocked++;
                tally.blocked();
            }
            report.push(`${succeeded ? "SUCCEEDED" : "blocked"}: ${a.name}\n    ${trace.join("\n    ")}`);
        }
        console.log(`postgres attacks: ${blocked}/${attacks.length} blocked`);
        assert.strictEqual(blocked, attacks.length, report.join("\n"));
    });

    it("gives production builds a query that finds target schemas the prod role doesn't own", async () => {
        // A schema squatted before this platform took CREATE away (made here by the admin for the dev role).
        await server.admin(DB, "CREATE SCHEMA analytics_squatted AUTHORIZATION role_dev");
        const sql = schemaOwnershipCheckSql("role_prod", ["analytics", "staging", "analytics_squatted", "analytics_not_yet", "o'brien"]);
        const rows = (await as(server, logins.dbt_bitbucket, sql)).rows;
        assert.deepStrictEqual(rows, [{ schema_name: "analytics_squatted", owner: "role_dev" }]);
    });
});
