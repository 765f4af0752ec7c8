/**
 * @integration Applies exactly what PostgresWarehouse declares (captured under mocks and
 * translated to the provider's SQL) to a real Postgres, then logs in as each user and
 * checks a permission matrix, including seed 000's role-masking scenario and its control.
 */
import assert from "assert";
import * as fs from "fs";
import { Client, DatabaseError } from "pg";
import { parse } from "yaml";
import { applyRecorded } from "./support/apply";
import { resolve, ROOT, runProgram, toPulumiConfig } from "../scripts/offline";
import { startPostgres, TestServer } from "./support/postgres";

type Expect = "ok" | "denied";
interface Cell {
    who: string;
    action: string;
    sql: string;
    expect: Expect;
    /** Extra assertion on the rows of a successful statement. */
    check?: (rows: any[]) => void;
    database?: string;
    /** A login whose idle session is opened first; `{victim}` in `sql` becomes its backend pid. */
    victim?: string;
}

interface Login {
    user: string;
    password: string;
    database: string;
}

/** The dev stack's config, pointed at the test server with its own database and names. */
function accessConfig(server: TestServer, database: string, overrides: (wh: any) => void) {
    const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.dev.yaml`, "utf8")).config;
    const wh = doc["dbt-platform:warehouse"];
    wh.connection = { host: server.host, port: server.port, database, username: server.adminUser, sslmode: "disable" };
    wh.createDatabase = true;
    overrides(wh);
    return toPulumiConfig(doc);
}

async function deploy(server: TestServer, config: Record<string, string>) {
    const { resources, exports } = await runProgram("dev", config);
    await applyRecorded(server, resources);
    const targets = (await resolve(exports.dbtTargets)).value as Record<string, any>;
    const developers = (await resolve(exports.developerTargets)).value as Record<string, any>;
    const logins: Record<string, Login> = {};
    for (const t of [...Object.values(targets), ...Object.values(developers)]) {
        logins[t.user] = { user: t.user, password: t.password, database: t.dbname };
    }
    return logins;
}

async function attempt(server: TestServer, login: Login, sql: string): Promise<{ rows?: any[]; error?: DatabaseError }> {
    const client = new Client(server.config(login.database, login.user, login.password));
    try {
        await client.connect();
    } catch (err) {
        return { error: err as DatabaseError };
    }
    try {
        return { rows: (await client.query(sql)).rows };
    } catch (err) {
        return { error: err as DatabaseError };
    } finally {
        await client.end();
    }
}

const INSUFFICIENT_PRIVILEGE = "42501";

/**
 * The statements dbt-postgres runs to rebuild an existing table or view: build beside it,
 * rename the old one away, rename the new one in, drop the old. The renames need ownership,
 * which is exactly what role masking provides.
 */
function dbtRebuild(kind: "table" | "view", schema: string, name: string, select: string): string {
    const rel = (n: string) => `"${schema}"."${n}"`;
    return [
        `create ${kind} ${rel(`${name}__dbt_tmp`)} as (${select})`,
        `alter table ${rel(name)} rename to "${name}__dbt_backup"`,
        `alter table ${rel(`${name}__dbt_tmp`)} rename to "${name}"`,
        `drop ${kind} if exists ${rel(`${name}__dbt_backup`)} cascade`,
    ].join(";\n");
}

/**
 * What dbt-postgres runs for an incremental model from its second run on: the new rows go into a
 * temporary table first (`create temporary table … as`), then into the target. The first
 * statement stands in for the first run.
 */
function dbtIncremental(schema: string, name: string): string {
    const rel = `"${schema}"."${name}"`;
    const tmp = `"${name}__dbt_tmp"`;
    return [
        `create table if not exists ${rel} as (select 1 as id)`,
        `create temporary table ${tmp} as (select 2 as id)`,
        `insert into ${rel} ("id") (select "id" from ${tmp})`,
    ].join(";\n");
}

/** A snapshot's second run (dbt-postgres snapshot_merge_sql): staged in a temp table, then merged. */
function dbtSnapshot(schema: string, name: string): string {
    const rel = `"${schema}"."${name}"`;
    const tmp = `"${name}__dbt_tmp"`;
    return [
        `create table if not exists ${rel} as (select 1 as id, md5('1') as dbt_scd_id, now() as dbt_valid_from, null::timestamptz as dbt_valid_to)`,
        `create temporary table ${tmp} as (select 1 as id, md5('1') as dbt_scd_id, now() as dbt_valid_from, now() as dbt_valid_to, 'update'::text as dbt_change_type
            union all select 2, md5('2'), now(), null::timestamptz, 'insert')`,
        `update ${rel} as DBT_INTERNAL_DEST set dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to from ${tmp} as DBT_INTERNAL_SOURCE
            where DBT_INTERNAL_SOURCE.dbt_scd_id::text = DBT_INTERNAL_DEST.dbt_scd_id::text
            and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update', 'delete') and DBT_INTERNAL_DEST.dbt_valid_to is null`,
        `insert into ${rel} ("id", "dbt_scd_id", "dbt_valid_from", "dbt_valid_to")
            select "id", "dbt_scd_id", "dbt_valid_from", "dbt_valid_to" from ${tmp} as DBT_INTERNAL_SOURCE
            where DBT_INTERNAL_SOURCE.dbt_change_type::text = 'insert'`,
    ].join(";\n");
}

describe("PostgresWarehouse on a real Postgres @integration", function () {
    this.timeout(180_000);
    let server: TestServer;
    let logins: Record<string, Login>;
    let control: Record<string, Login>;

    before(async () => {
        server = await startPostgres();
        logins = await deploy(server, accessConfig(server, "access_test", () => {}));
        control = await deploy(
            server,
            accessConfig(server, "access_control", (wh) => {
                // Same model with masking switched off; role names are cluster-wide, so suffix them.
                wh.roleMasking = false;
                wh.roles = { dev: "role_dev_c", prod: "role_prod_c" };
                wh.users = [
                    { name: "dev_ci_c", role: "role_dev_c", duty: "ci" },
                    { name: "dbt_bitbucket_c", role: "role_prod_c", duty: "deploy" },
                    { name: "dbt_scheduler_c", role: "role_prod_c", duty: "scheduler" },
                ];
                wh.developers = [];
            }),
        );
        await server.admin("postgres", "CREATE ROLE outsider LOGIN PASSWORD 'outsider'");
        logins.outsider = { user: "outsider", password: "outsider", database: "access_test" };
    });

    after(async () => {
        await server?.stop();
    });

    it("every cell of the access matrix holds", async () => {
        const currentUser = (expected: string) => (rows: any[]) => assert.strictEqual(rows[0].current_user, expected);
        const ownerIs = (expected: string) => (rows: any[]) => assert.deepStrictEqual(rows.map((r) => r.owner), [expected]);
        const ownerOf = (schema: string, table: string) =>
            `SELECT tableowner AS owner FROM pg_tables WHERE schemaname = '${schema}' AND tablename = '${table}'
             UNION ALL SELECT viewowner FROM pg_views WHERE schemaname = '${schema}' AND viewname = '${table}'`;

        const cells: Cell[] = [
            // Role masking: bots start every session as their group role; people do not.
            { who: "dbt_bitbucket", action: "session runs as role_prod", sql: "SELECT current_user", expect: "ok", check: currentUser("role_prod") },
            { who: "dbt_scheduler", action: "session runs as role_prod", sql: "SELECT current_user", expect: "ok", check: currentUser("role_prod") },
            { who: "dev_ci", action: "session runs as role_dev", sql: "SELECT current_user", expect: "ok", check: currentUser("role_dev") },
            { who: "anton", action: "developer session runs as itself", sql: "SELECT current_user", expect: "ok", check: currentUser("anton") },
            // Seed 000: what the deploy bot builds, the scheduler bot may replace, and back.
            { who: "dbt_bitbucket", action: "create table in production", sql: "CREATE TABLE analytics.orders AS SELECT 1 AS id", expect: "ok" },
            { who: "dbt_bitbucket", action: "create view in production", sql: "CREATE VIEW analytics.orders_v AS SELECT id FROM analytics.orders", expect: "ok" },
            { who: "postgres", action: "deploy bot's table is owned by role_prod", sql: ownerOf("analytics", "orders"), expect: "ok", check: ownerIs("role_prod") },
            { who: "dbt_scheduler", action: "dbt rebuilds deploy bot's view", sql: dbtRebuild("view", "analytics", "orders_v", "select id from analytics.orders"), expect: "ok" },
            { who: "dbt_scheduler", action: "dbt rebuilds deploy bot's table", sql: dbtRebuild("table", "analytics", "orders", "select 2 as id"), expect: "ok" },
            { who: "dbt_bitbucket", action: "dbt rebuilds scheduler bot's table", sql: dbtRebuild("table", "analytics", "orders", "select 3 as id"), expect: "ok" },
            { who: "dbt_bitbucket", action: "dbt rebuilds the view over it", sql: "drop view if exists analytics.orders_v; " + "create view analytics.orders_v as select id from analytics.orders", expect: "ok" },
            { who: "dbt_bitbucket", action: "create table in second production schema", sql: "CREATE TABLE staging.stg_customers AS SELECT 1 AS customer_id", expect: "ok" },
            { who: "dbt_bitbucket", action: "create a custom schema (CREATE on database)", sql: "CREATE SCHEMA analytics_extra; CREATE TABLE analytics_extra.t AS SELECT 1 AS x", expect: "ok" },
            { who: "postgres", action: "custom schema table is owned by role_prod", sql: ownerOf("analytics_extra", "t"), expect: "ok", check: ownerIs("role_prod") },
            { who: "dev_ci", action: "read a custom schema built at run time (deferral)", sql: "SELECT x FROM analytics_extra.t", expect: "ok", check: (r) => assert.deepStrictEqual(r, [{ x: 1 }]) },
            { who: "dev_ci", action: "create in a custom production schema", sql: "CREATE TABLE analytics_extra.ci (id int)", expect: "denied" },
            // CI: builds in its own schemas, reads production for deferral, changes nothing there.
            { who: "dev_ci", action: "read production table (deferral)", sql: "SELECT id FROM analytics.orders", expect: "ok", check: (r) => assert.deepStrictEqual(r, [{ id: 3 }]) },
            { who: "dev_ci", action: "read production view (deferral)", sql: "SELECT id FROM analytics.orders_v", expect: "ok" },
            { who: "dev_ci", action: "read second production schema", sql: "SELECT * FROM staging.stg_customers", expect: "ok" },
            { who: "dev_ci", action: "create table in production", sql: "CREATE TABLE analytics.ci_table AS SELECT 1 AS x", expect: "denied" },
            { who: "dev_ci", action: "create view in production", sql: "CREATE VIEW analytics.ci_view AS SELECT 1 AS x", expect: "denied" },
            { who: "dev_ci", action: "drop production table", sql: "DROP TABLE analytics.orders CASCADE", expect: "denied" },
            { who: "dev_ci", action: "alter production table", sql: "ALTER TABLE analytics.orders ADD COLUMN x int", expect: "denied" },
            { who: "dev_ci", action: "insert into production table", sql: "INSERT INTO analytics.orders VALUES (4)", expect: "denied" },
            { who: "dev_ci", action: "truncate production table", sql: "TRUNCATE analytics.orders", expect: "denied" },
            { who: "dev_ci", action: "assume role_prod", sql: "SET ROLE role_prod", expect: "denied" },
            { who: "dev_ci", action: "create table in CI schema", sql: "CREATE TABLE dbt_ci.model_a AS SELECT id FROM analytics.orders", expect: "ok" },
            { who: "postgres", action: "CI table is owned by role_dev", sql: ownerOf("dbt_ci", "model_a"), expect: "ok", check: ownerIs("role_dev") },
            { who: "dev_ci", action: "create pull-request schema (platform function) and build in it", sql: "SELECT dbt_platform.create_schema('dbt_pr_42'); CREATE TABLE dbt_pr_42.m AS SELECT id FROM analytics.orders_v", expect: "ok" },
            { who: "dev_ci", action: "drop pull-request schema (cleanup)", sql: "DROP SCHEMA dbt_pr_42 CASCADE", expect: "ok" },
            { who: "dev_ci", action: "create table in public schema", sql: "CREATE TABLE public.x (id int)", expect: "denied" },
            // Production bots stay out of the CI schema.
            { who: "dbt_bitbucket", action: "create table in CI schema", sql: "CREATE TABLE dbt_ci.x (id int)", expect: "denied" },
            { who: "dbt_bitbucket", action: "drop CI table", sql: "DROP TABLE dbt_ci.model_a", expect: "denied" },
            { who: "dbt_scheduler", action: "create table in CI schema", sql: "CREATE TABLE dbt_ci.y (id int)", expect: "denied" },
            // Developer schemas are private.
            { who: "anton", action: "create table in own schema", sql: "CREATE TABLE dbt_anton.scratch AS SELECT 1 AS x", expect: "ok" },
            { who: "anton", action: "read production (local deferral)", sql: "SELECT id FROM analytics.orders", expect: "ok" },
            { who: "anton", action: "create table in production", sql: "CREATE TABLE analytics.t (id int)", expect: "denied" },
            { who: "maria", action: "read another developer's table", sql: "SELECT * FROM dbt_anton.scratch", expect: "denied" },
            { who: "maria", action: "create in another developer's schema", sql: "CREATE TABLE dbt_anton.t (id int)", expect: "denied" },
            { who: "maria", action: "drop another developer's table", sql: "DROP TABLE dbt_anton.scratch", expect: "denied" },
            { who: "anton", action: "drop another developer's schema", sql: "DROP SCHEMA dbt_maria", expect: "denied" },
            { who: "dev_ci", action: "read a developer's table", sql: "SELECT * FROM dbt_anton.scratch", expect: "denied" },
            { who: "dev_ci", action: "create in a developer's schema", sql: "CREATE TABLE dbt_maria.x (id int)", expect: "denied" },
            { who: "dbt_bitbucket", action: "create in a developer's schema", sql: "CREATE TABLE dbt_anton.x (id int)", expect: "denied" },
            { who: "dbt_bitbucket", action: "read a developer's table", sql: "SELECT * FROM dbt_anton.scratch", expect: "denied" },
            // Objects created after the grants were applied stay readable as declared.
            { who: "dbt_scheduler", action: "create a new production table later", sql: "CREATE TABLE analytics.late_model AS SELECT 7 AS v", expect: "ok" },
            { who: "dev_ci", action: "read the later table (default privileges)", sql: "SELECT v FROM analytics.late_model", expect: "ok", check: (r) => assert.deepStrictEqual(r, [{ v: 7 }]) },
            { who: "maria", action: "read the later table (default privileges)", sql: "SELECT v FROM analytics.late_model", expect: "ok" },
            // Incremental models and snapshots stage rows in temporary tables (TEMPORARY on the database).
            { who: "dbt_bitbucket", action: "incremental model, second run (temp table)", sql: dbtIncremental("analytics", "orders_inc"), expect: "ok" },
            { who: "dbt_scheduler", action: "incremental model, next run by another prod bot", sql: dbtIncremental("analytics", "orders_inc"), expect: "ok" },
            { who: "dev_ci", action: "incremental model, second run in CI", sql: dbtIncremental("dbt_ci", "orders_inc"), expect: "ok" },
            { who: "anton", action: "incremental model, second run in own schema", sql: dbtIncremental("dbt_anton", "orders_inc"), expect: "ok" },
            { who: "dbt_bitbucket", action: "snapshot, second run (temp table + merge)", sql: dbtSnapshot("analytics", "orders_snap"), expect: "ok" },
            { who: "dbt_scheduler", action: "snapshot, next run by another prod bot", sql: dbtSnapshot("analytics", "orders_snap"), expect: "ok" },
            { who: "dev_ci", action: "snapshot, second run in CI", sql: dbtSnapshot("dbt_ci", "orders_snap"), expect: "ok" },
            { who: "anton", action: "snapshot, second run in own schema", sql: dbtSnapshot("dbt_anton", "orders_snap"), expect: "ok" },
            { who: "outsider", action: "no temp tables without CONNECT", sql: "CREATE TEMPORARY TABLE t AS SELECT 1", expect: "denied" },
            // Schema creation (issue 11): the dev role has no CREATE on the database; its members create
            // only their families through dbt_platform.create_schema, owned by the dev role.
            { who: "dev_ci", action: "create any schema directly", sql: "CREATE SCHEMA dbt_pr_12", expect: "denied" },
            { who: "dev_ci", action: "create a PR schema through the platform", sql: "SELECT dbt_platform.create_schema('dbt_pr_12')", expect: "ok" },
            { who: "dev_ci", action: "create a PR custom schema through the platform", sql: "SELECT dbt_platform.create_schema('dbt_pr_12_shopify'); CREATE TABLE dbt_pr_12_shopify.t AS SELECT 1 AS x", expect: "ok" },
            { who: "dev_ci", action: "re-run: the PR schema exists already", sql: "SELECT dbt_platform.create_schema('dbt_pr_12')", expect: "ok" },
            { who: "postgres", action: "PR schemas are owned by role_dev", sql: "SELECT DISTINCT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname LIKE 'dbt\\_pr\\_12%'", expect: "ok", check: ownerIs("role_dev") },
            { who: "dev_ci", action: "drop its PR schemas (cleanup)", sql: "DROP SCHEMA dbt_pr_12_shopify CASCADE; DROP SCHEMA dbt_pr_12 CASCADE", expect: "ok" },
            { who: "dev_ci", action: "create a CI custom schema through the platform", sql: "SELECT dbt_platform.create_schema('dbt_ci_shopify')", expect: "ok" },
            { who: "dev_ci", action: "create a production-looking schema through the platform", sql: "SELECT dbt_platform.create_schema('analytics_finance')", expect: "denied" },
            { who: "dev_ci", action: "create a schema named after a role through the platform", sql: "SELECT dbt_platform.create_schema('role_prod')", expect: "denied" },
            { who: "dev_ci", action: "create in a developer's family", sql: "SELECT dbt_platform.create_schema('dbt_anton_shopify')", expect: "denied" },
            { who: "anton", action: "developer creates own custom schema", sql: "SELECT dbt_platform.create_schema('dbt_anton_shopify'); CREATE TABLE dbt_anton_shopify.t AS SELECT 1 AS x", expect: "ok" },
            { who: "anton", action: "developer creates any schema directly", sql: "CREATE SCHEMA anton_sandbox", expect: "denied" },
            { who: "maria", action: "developer creates another developer's family", sql: "SELECT dbt_platform.create_schema('dbt_anton_other')", expect: "denied" },
            { who: "dbt_bitbucket", action: "prod creates a custom schema through the platform", sql: "SELECT dbt_platform.create_schema('analytics_marketing'); CREATE TABLE analytics_marketing.t AS SELECT 1 AS x", expect: "ok" },
            { who: "postgres", action: "that custom schema is owned by role_prod", sql: "SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'analytics_marketing'", expect: "ok", check: ownerIs("role_prod") },
            { who: "dbt_bitbucket", action: "prod creates a PR-family schema", sql: "SELECT dbt_platform.create_schema('dbt_pr_99')", expect: "denied" },
            { who: "dbt_bitbucket", action: "prod refuses a squatted schema (exists, other owner)", sql: "SELECT dbt_platform.create_schema('dbt_ci')", expect: "denied" },
            { who: "dbt_bitbucket", action: "prod creates a reserved name", sql: "SELECT dbt_platform.create_schema('public')", expect: "denied" },
            // Cancellation (dbt's `select pg_terminate_backend(<pid>)` on the same login's other connection,
            // run as the masked group role): a bot may end its own sessions, nobody else's.
            { who: "dbt_bitbucket", action: "search_path is pinned (no $user, no public)", sql: "SHOW search_path", expect: "ok", check: (r) => assert.strictEqual(r[0].search_path, "dbt_platform, pg_catalog, analytics, public") },
            { who: "dev_ci", action: "CI search_path is pinned to its own schema", sql: "SHOW search_path", expect: "ok", check: (r) => assert.strictEqual(r[0].search_path, "dbt_platform, pg_catalog, dbt_ci, public") },
            { who: "dbt_bitbucket", action: "cancel: terminate own other session (dbt's statement)", sql: "select pg_terminate_backend({victim})", victim: "dbt_bitbucket", expect: "ok", check: (r) => assert.strictEqual(r[0].pg_terminate_backend, true) },
            { who: "dbt_scheduler", action: "cancel: terminate own other session", sql: "select pg_terminate_backend({victim})", victim: "dbt_scheduler", expect: "ok", check: (r) => assert.strictEqual(r[0].pg_terminate_backend, true) },
            { who: "dev_ci", action: "cancel: terminate own other session", sql: "select pg_terminate_backend({victim})", victim: "dev_ci", expect: "ok", check: (r) => assert.strictEqual(r[0].pg_terminate_backend, true) },
            { who: "anton", action: "cancel: developer (unmasked) terminates own session", sql: "select pg_terminate_backend({victim})", victim: "anton", expect: "ok", check: (r) => assert.strictEqual(r[0].pg_terminate_backend, true) },
            // dbt cancels every other open connection on --fail-fast; one whose session just ended is not an error (as pg_catalog's: false, a warning).
            { who: "dbt_bitbucket", action: "cancel: a session that already ended gives false, not an error", sql: "select pg_terminate_backend(2147483647)", expect: "ok", check: (r) => assert.strictEqual(r[0].pg_terminate_backend, false) },
            { who: "dbt_bitbucket", action: "cancel: masked bot without the platform function is refused (the bug)", sql: "select pg_catalog.pg_terminate_backend({victim})", victim: "dbt_bitbucket", expect: "denied" },
            { who: "dbt_bitbucket", action: "cancel: terminate another prod bot's session", sql: "select pg_terminate_backend({victim})", victim: "dbt_scheduler", expect: "denied" },
            { who: "dev_ci", action: "cancel: terminate the deploy bot's session", sql: "select pg_terminate_backend({victim})", victim: "dbt_bitbucket", expect: "denied" },
            { who: "dbt_bitbucket", action: "cancel: terminate the admin's session", sql: "select pg_terminate_backend({victim})", victim: "postgres", expect: "denied" },
            { who: "dev_ci", action: "cancel: terminate the admin's session, pg_catalog's function", sql: "select pg_catalog.pg_terminate_backend({victim})", victim: "postgres", expect: "denied" },
            { who: "dev_ci", action: "add a function to the platform schema", sql: "CREATE FUNCTION dbt_platform.pg_sleep(float8) RETURNS void LANGUAGE sql AS 'select'", expect: "denied" },
            // PUBLIC lost its default CONNECT.
            { who: "outsider", action: "connect to the warehouse database", sql: "SELECT 1", expect: "denied" },
            // Control: the same model with masking off reproduces the seed's problem.
            { who: "c:dbt_bitbucket_c", action: "control: create table in production", sql: "CREATE TABLE analytics.orders AS SELECT 1 AS id; CREATE VIEW analytics.orders_v AS SELECT id FROM analytics.orders", expect: "ok" },
            { who: "c:postgres", action: "control: table is owned by the bot itself", sql: ownerOf("analytics", "orders"), expect: "ok", check: ownerIs("dbt_bitbucket_c") },
            { who: "c:dbt_scheduler_c", action: "control: dbt rebuilds deploy bot's table", sql: dbtRebuild("table", "analytics", "orders", "select 2 as id"), expect: "denied" },
            { who: "c:dbt_scheduler_c", action: "control: dbt rebuilds deploy bot's view", sql: dbtRebuild("view", "analytics", "orders_v", "select id from analytics.orders"), expect: "denied" },
            { who: "c:dev_ci_c", action: "control: CI cannot read what an unmasked bot built", sql: "SELECT id FROM analytics.orders", expect: "denied" },
        ];

        const admin = { user: server.adminUser, password: server.adminPassword };
        const failures: string[] = [];
        let passed = 0;
        for (const cell of cells) {
            const isControl = cell.who.startsWith("c:");
            const who = isControl ? cell.who.slice(2) : cell.who;
            const database = isControl ? "access_control" : "access_test";
            const login = who === "postgres" ? { ...admin, database } : (isControl ? control : logins)[who];
            assert.ok(login, `no login for ${who}`);
            let sql = cell.sql;
            let victim: Client | undefined;
            if (cell.victim) {
                const v = cell.victim === "postgres" ? { ...admin, database } : (isControl ? control : logins)[cell.victim];
                victim = new Client({ ...server.config(v.database, v.user, v.password), application_name: "matrix-victim" });
                victim.on("error", () => {}); // the cell may terminate it
                await victim.connect();
                const pid = (victim as unknown as { processID: number }).processID;
                assert.ok(Number.isInteger(pid) && pid > 0, `no backend pid for ${cell.victim}`);
                sql = sql.replace("{victim}", String(pid));
            }
            const { rows, error } = await attempt(server, login, sql);
            await victim?.end().catch(() => {});
            let problem: string | undefined;
            if (cell.expect === "ok") {
                if (error) problem = `failed: ${error.message}`;
                else {
                    try {
                        cell.check?.(Array.isArray(rows) ? rows : []);
                    } catch (e) {
                        problem = `wrong result: ${(e as Error).message}`;
                    }
                }
            } else if (!error) {
                problem = "succeeded, expected permission denied";
            } else if (error.code !== INSUFFICIENT_PRIVILEGE) {
                // Any other error (missing table, syntax) would make a "denied" cell pass by accident.
                problem = `failed with ${error.code} (${error.message}), expected ${INSUFFICIENT_PRIVILEGE} insufficient_privilege`;
            }
            if (problem) failures.push(`${who} / ${cell.action}: ${problem}`);
            else passed++;
        }
        console.log(`access matrix: ${passed}/${cells.length} cells as declared`);
        assert.ok(cells.length >= 30, "the matrix must have at least 30 cells");
        assert.deepStrictEqual(failures, []);
    });
});
