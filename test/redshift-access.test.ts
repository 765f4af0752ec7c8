/**
 * @integration The Redshift access plan (RedshiftWarehouse.plan) applied step by step through the
 * `redshift:*` dynamic providers (check → create, in dependency order) to a real Postgres 15, where
 * the group-based Redshift dialect runs as is: CREATE USER … PASSWORD, CREATE GROUP, ALTER GROUP …
 * ADD USER, GRANT … TO GROUP, ALTER DEFAULT PRIVILEGES FOR USER … TO GROUP, CREATE SCHEMA …
 * AUTHORIZATION, COMMENT ON SCHEMA, pg_user / pg_group / pg_namespace / pg_default_acl.
 *
 * Then: an access matrix with SQLSTATE-exact denials, idempotence (refresh + diff of every resource
 * is a no-op and issues only catalog SELECTs), drift (out-of-band REVOKE, owner change, DROP USER
 * reported by read and repaired by update), adoption refusal, delete, and a provider serialised as
 * the engine serialises it running against the same server.
 *
 * Not executed here (Redshift-only; golden SQL in test/redshift-warehouse.test.ts): the RBAC steps
 * (CREATE ROLE, GRANT ROLE, TO ROLE), PASSWORD DISABLE, GRANT DROP/ALTER ON TABLE, scoped permissions.
 */
import assert from "assert";
import * as crypto from "crypto";
import Module from "module";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Client, DatabaseError } from "pg";
import {
    REDSHIFT_ADMIN_PASSWORD_ENV,
    REDSHIFT_OWNERSHIP_MARKER,
    RedshiftPlanStep,
    RedshiftAdminConnection,
    RedshiftDiff,
    redshiftProviderObjects,
    RedshiftWarehouse,
    RedshiftWarehouseArgs,
    REDSHIFT_SQL_LOG_SLOT,
    RedshiftSqlLogEntry,
} from "../components/warehouse/redshift";
import * as fs from "fs";
import * as os from "os";
import { stringify } from "yaml";
import { runDbt } from "./support/dbtProject";
import { freePort, startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv } from "./support/python";
import { redshiftPullRequestSchemas, withRedshiftSession } from "../components/warehouse/redshift";

const DATABASE = "rs_access";
const INSUFFICIENT_PRIVILEGE = "42501";

/** A seed-003-shaped organisation: production schemas, a staging custom schema, two developers. */
const ARGS: RedshiftWarehouseArgs = {
    connection: { host: "unused", port: 5439, user: "unused" },
    database: DATABASE,
    productionSchemas: ["analytics", "analytics_staging"],
    customSchemas: ["staging"],
    developers: [{ name: "anton" }, { name: "maria" }],
    profile: "redshift_development",
};

/** A password Redshift accepts (upper, lower, digit), unique per call. */
const newPassword = () => `Rs${crypto.randomBytes(12).toString("hex")}9`;

interface Applied {
    step: RedshiftPlanStep<string>;
    id: string;
    inputs: Record<string, any>;
    outs: Record<string, any>;
}

interface Cell {
    who: string;
    action: string;
    sql: string;
    expect: "ok" | "denied";
    check?: (rows: any[]) => void;
}

/** dbt-redshift's rebuild of an existing relation: build beside it, rename the old away, rename in, drop. */
function dbtRebuild(kind: "table" | "view", schema: string, name: string, select: string): string {
    const rel = (n: string) => `"${schema}"."${n}"`;
    return [
        `create ${kind} ${rel(`${name}__dbt_tmp`)} as (${select})`,
        `alter table ${rel(name)} rename to "${name}__dbt_backup"`,
        `alter table ${rel(`${name}__dbt_tmp`)} rename to "${name}"`,
        `drop ${kind} if exists ${rel(`${name}__dbt_backup`)} cascade`,
    ].join(";\n");
}

function sqlLog(): RedshiftSqlLogEntry[] {
    const log: RedshiftSqlLogEntry[] = [];
    (globalThis as Record<symbol, unknown>)[Symbol.for(REDSHIFT_SQL_LOG_SLOT)] = log;
    return log;
}

function stopLogging(): void {
    delete (globalThis as Record<symbol, unknown>)[Symbol.for(REDSHIFT_SQL_LOG_SLOT)];
}

async function rejects(p: Promise<unknown>): Promise<string> {
    try {
        await p;
    } catch (e) {
        return (e as Error).message;
    }
    throw new Error("expected a rejection");
}

describe("Redshift providers on a real Postgres 15 @integration", function () {
    this.timeout(180_000);
    let server: TestServer;
    let connection: RedshiftAdminConnection;
    const passwords: Record<string, string> = {};
    const applied: Applied[] = [];
    const byKey = (key: string) => {
        const a = applied.find((x) => x.step.key === key);
        assert.ok(a, `no applied step ${key}`);
        return a;
    };

    async function checked(kind: keyof typeof redshiftProviderObjects, props: Record<string, unknown>) {
        const provider = redshiftProviderObjects[kind];
        const res = await provider.check!({}, { ...props, connection });
        assert.deepStrictEqual(res.failures ?? [], [], `${kind} check failed`);
        return res.inputs as Record<string, any>;
    }

    async function attempt(user: string, sql: string): Promise<{ rows?: any[]; error?: DatabaseError }> {
        const password = user === server.adminUser ? server.adminPassword : passwords[user];
        const client = new Client(server.config(DATABASE, user, password));
        try {
            await client.connect();
        } catch (err) {
            return { error: err as DatabaseError };
        }
        try {
            const res = await client.query(sql);
            return { rows: Array.isArray(res) ? res[res.length - 1].rows : res.rows };
        } catch (err) {
            return { error: err as DatabaseError };
        } finally {
            await client.end();
        }
    }

    before(async () => {
        server = await startPostgres();
        await server.admin("postgres", `CREATE DATABASE ${DATABASE}`);
        connection = { host: server.host, port: server.port, database: DATABASE, user: server.adminUser, password: server.adminPassword, sslmode: "disable" };
        const plan = RedshiftWarehouse.plan("rs", ARGS, (u) => (passwords[u] = newPassword()));
        for (const step of plan.filter((s) => !s.redshiftOnly)) {
            // Dependency order is plan order; check every `after` came first.
            for (const dep of step.after) assert.ok(applied.some((a) => a.step.key === dep), `${step.key} before ${dep}`);
            const inputs = await checked(step.kind, step.props);
            const { id, outs } = await redshiftProviderObjects[step.kind].create(inputs);
            applied.push({ step, id, inputs, outs });
        }
        // A second production-group user: the control that shows why production needs one shared identity.
        passwords.dbt_other = newPassword();
        await server.admin(DATABASE, `CREATE USER dbt_other PASSWORD '${passwords.dbt_other}'; ALTER GROUP grp_prod ADD USER dbt_other`);
        passwords.outsider = newPassword();
        await server.admin(DATABASE, `CREATE USER outsider PASSWORD '${passwords.outsider}'`);
    });

    after(async () => {
        stopLogging();
        await server?.stop();
    });

    it("applies every Postgres-runnable step of the plan, and only the RBAC steps are left out", () => {
        const plan = RedshiftWarehouse.plan("rs", { ...ARGS, rbac: true });
        const skipped = plan.filter((s) => s.redshiftOnly).map((s) => s.kind);
        assert.deepStrictEqual([...new Set(skipped)], ["Role", "RoleGrant"]);
        assert.strictEqual(applied.length, plan.length - skipped.length);
        assert.ok(applied.every((a) => !("password" in a.outs)), "no user password in outputs");
    });

    it("every cell of the access matrix holds", async () => {
        const ownerIs = (expected: string) => (rows: any[]) => assert.deepStrictEqual(rows.map((r) => r.owner), [expected]);
        const ownerOf = (schema: string, rel: string) =>
            `SELECT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '${schema}' AND c.relname = '${rel}'`;
        const admin = server.adminUser;
        // deploy and scheduler are duties; both log in as the production identity dbt_prod (the targets say so).
        const deploy = "dbt_prod";
        const scheduler = "dbt_prod";
        const cells: Cell[] = [
            // The deploy duty builds production.
            { who: deploy, action: "deploy: create table in production", sql: "CREATE TABLE analytics.orders AS SELECT 1 AS id", expect: "ok" },
            { who: deploy, action: "deploy: create view in production", sql: "CREATE VIEW analytics.orders_v AS SELECT id FROM analytics.orders", expect: "ok" },
            { who: admin, action: "deploy's table is owned by the production identity", sql: ownerOf("analytics", "orders"), expect: "ok", check: ownerIs("dbt_prod") },
            { who: deploy, action: "deploy: build in the declared custom schema", sql: "CREATE TABLE analytics_staging.stg_dogs AS SELECT 1 AS dog_id", expect: "ok" },
            // The scheduler rebuilds what the deploy built, and back.
            { who: scheduler, action: "scheduler: dbt rebuilds deploy's view", sql: dbtRebuild("view", "analytics", "orders_v", "select id from analytics.orders"), expect: "ok" },
            { who: scheduler, action: "scheduler: dbt rebuilds deploy's table", sql: "drop view analytics.orders_v; " + dbtRebuild("table", "analytics", "orders", "select 2 as id"), expect: "ok" },
            { who: deploy, action: "deploy: dbt rebuilds scheduler's table", sql: dbtRebuild("table", "analytics", "orders", "select 3 as id"), expect: "ok" },
            { who: deploy, action: "deploy: create a custom schema at run time (CREATE on database)", sql: "CREATE SCHEMA analytics_extra; CREATE TABLE analytics_extra.t AS SELECT 1 AS x", expect: "ok" },
            // Control: another prod-group user may not replace production. This is why the identity is shared.
            { who: "dbt_other", action: "control: a second prod-group user rebuilds production", sql: dbtRebuild("table", "analytics", "orders", "select 4 as id"), expect: "denied" },
            { who: "dbt_other", action: "control: a second prod-group user creates in production", sql: "CREATE TABLE analytics.other (id int)", expect: "denied" },
            // CI builds in dbt_build_<n> and reads production for deferral, and changes nothing there.
            { who: "dbt_ci", action: "ci: read production table (deferral)", sql: "SELECT id FROM analytics.orders", expect: "ok", check: (r) => assert.deepStrictEqual(r, [{ id: 3 }]) },
            { who: "dbt_ci", action: "ci: read the declared custom schema", sql: "SELECT dog_id FROM analytics_staging.stg_dogs", expect: "ok" },
            { who: "dbt_ci", action: "ci: read a custom schema created at run time (no USAGE; declare it)", sql: "SELECT x FROM analytics_extra.t", expect: "denied" },
            { who: "dbt_ci", action: "ci: create PR build schema and build in it", sql: "CREATE SCHEMA dbt_build_1066; CREATE TABLE dbt_build_1066.fact_dogs AS SELECT id FROM analytics.orders", expect: "ok" },
            { who: "dbt_ci", action: "ci: create the PR custom schema", sql: "CREATE SCHEMA dbt_build_1066_staging; CREATE VIEW dbt_build_1066_staging.dim_dog AS SELECT 1 AS dog_id", expect: "ok" },
            { who: "dbt_ci", action: "ci: create table in production", sql: "CREATE TABLE analytics.ci_table AS SELECT 1 AS x", expect: "denied" },
            { who: "dbt_ci", action: "ci: create view in production", sql: "CREATE VIEW analytics.ci_view AS SELECT 1 AS x", expect: "denied" },
            { who: "dbt_ci", action: "ci: drop production table", sql: "DROP TABLE analytics.orders CASCADE", expect: "denied" },
            { who: "dbt_ci", action: "ci: alter production table", sql: "ALTER TABLE analytics.orders ADD COLUMN x int", expect: "denied" },
            { who: "dbt_ci", action: "ci: insert into production table", sql: "INSERT INTO analytics.orders VALUES (4)", expect: "denied" },
            { who: "dbt_ci", action: "ci: create in the production custom schema", sql: "CREATE TABLE analytics_staging.x (id int)", expect: "denied" },
            { who: deploy, action: "deploy: read a PR build", sql: "SELECT * FROM dbt_build_1066.fact_dogs", expect: "denied" },
            { who: deploy, action: "deploy: create in a PR build schema", sql: "CREATE TABLE dbt_build_1066.x (id int)", expect: "denied" },
            { who: "anton", action: "developer: read a PR build", sql: "SELECT * FROM dbt_build_1066.fact_dogs", expect: "denied" },
            { who: "dbt_ci", action: "ci: drop the PR schemas (cleanup)", sql: "DROP SCHEMA dbt_build_1066 CASCADE; DROP SCHEMA dbt_build_1066_staging CASCADE", expect: "ok" },
            // Developers build their own family, read production, and stay private.
            { who: "anton", action: "developer: build in own schema", sql: "CREATE TABLE anton.scratch AS SELECT 1 AS x", expect: "ok" },
            { who: "anton", action: "developer: build in own custom schema anton_staging", sql: "CREATE VIEW anton_staging.dim_dog AS SELECT id FROM analytics.orders", expect: "ok" },
            { who: admin, action: "developer schema family is owned by the developer", sql: "SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'anton_staging'", expect: "ok", check: ownerIs("anton") },
            { who: "anton", action: "developer: read production (local deferral)", sql: "SELECT id FROM analytics.orders", expect: "ok" },
            { who: "anton", action: "developer: create a schema outside the family", sql: "CREATE SCHEMA anton_marts", expect: "denied" },
            { who: "anton", action: "developer: create table in production", sql: "CREATE TABLE analytics.t (id int)", expect: "denied" },
            { who: "maria", action: "developer: read another developer's table", sql: "SELECT * FROM anton.scratch", expect: "denied" },
            { who: "maria", action: "developer: read another developer's custom schema", sql: "SELECT * FROM anton_staging.dim_dog", expect: "denied" },
            { who: "maria", action: "developer: create in another developer's schema", sql: "CREATE TABLE anton_staging.t (id int)", expect: "denied" },
            { who: "maria", action: "developer: drop another developer's table", sql: "DROP TABLE anton.scratch", expect: "denied" },
            { who: "anton", action: "developer: drop another developer's schema", sql: "DROP SCHEMA maria_staging", expect: "denied" },
            { who: "dbt_ci", action: "ci: read a developer's table", sql: "SELECT * FROM anton.scratch", expect: "denied" },
            { who: deploy, action: "deploy: read a developer's table", sql: "SELECT * FROM anton.scratch", expect: "denied" },
            { who: deploy, action: "deploy: create in a developer's schema", sql: "CREATE TABLE maria.x (id int)", expect: "denied" },
            // Relations the production identity creates later stay readable (ALTER DEFAULT PRIVILEGES FOR USER).
            { who: scheduler, action: "scheduler: create a new production table later", sql: "CREATE TABLE analytics.late_model AS SELECT 7 AS v", expect: "ok" },
            { who: "dbt_ci", action: "ci: read the later table (default privileges)", sql: "SELECT v FROM analytics.late_model", expect: "ok", check: (r) => assert.deepStrictEqual(r, [{ v: 7 }]) },
            { who: "maria", action: "developer: read the later table (default privileges)", sql: "SELECT v FROM analytics.late_model", expect: "ok" },
            // A login in no group reads nothing.
            { who: "outsider", action: "outsider: read production", sql: "SELECT id FROM analytics.orders", expect: "denied" },
        ];

        const failures: string[] = [];
        let passed = 0;
        for (const cell of cells) {
            const { rows, error } = await attempt(cell.who, cell.sql);
            let problem: string | undefined;
            if (cell.expect === "ok") {
                if (error) problem = `failed: ${error.message}`;
                else {
                    try {
                        cell.check?.(rows ?? []);
                    } catch (e) {
                        problem = `wrong result: ${(e as Error).message}`;
                    }
                }
            } else if (!error) {
                problem = "succeeded, expected permission denied";
            } else if (error.code !== INSUFFICIENT_PRIVILEGE) {
                // Any other error (missing relation, syntax) would make a "denied" cell pass by accident.
                problem = `failed with ${error.code} (${error.message}), expected ${INSUFFICIENT_PRIVILEGE} insufficient_privilege`;
            }
            if (problem) failures.push(`${cell.who} / ${cell.action}: ${problem}`);
            else passed++;
        }
        console.log(`redshift access matrix: ${passed}/${cells.length} cells as declared (on postgres)`);
        assert.ok(cells.length >= 30, "the matrix must have at least 30 cells");
        assert.deepStrictEqual(failures, []);
    });

    it("a second apply is a no-op: every read reports the recorded state, every diff is empty, no SQL write is issued", async () => {
        const log = sqlLog();
        try {
            for (const a of applied) {
                const provider = redshiftProviderObjects[a.step.kind];
                const read = await provider.read!(a.id, a.outs);
                assert.strictEqual(read.id, a.id, a.step.key);
                assert.deepStrictEqual(read.props, a.outs, `${a.step.key}: read reports the recorded state`);
                const inputs = await checked(a.step.kind, a.step.props);
                const diff = (await provider.diff!(a.id, read.props, inputs)) as RedshiftDiff;
                assert.deepStrictEqual(diff.changedKeys, [], `${a.step.key}: no changes`);
                assert.strictEqual(diff.changes, false, a.step.key);
            }
        } finally {
            stopLogging();
        }
        assert.ok(log.length >= applied.length, "statements were logged");
        const writes = log.filter((e) => e.kind !== "read" || !/^SELECT /.test(e.sql));
        assert.deepStrictEqual(writes, [], "refresh and diff issue catalog SELECTs only");
    });

    it("read reports an out-of-band REVOKE on one table; update restores it", async () => {
        const a = byKey("select-analytics");
        await server.admin(DATABASE, "REVOKE SELECT ON analytics.orders FROM GROUP grp_dev");
        assert.strictEqual((await attempt("dbt_ci", "SELECT id FROM analytics.orders")).error?.code, INSUFFICIENT_PRIVILEGE);
        const provider = redshiftProviderObjects.TableGrant;
        const read = await provider.read!(a.id, a.outs);
        assert.deepStrictEqual(read.props!.privileges, []);
        assert.deepStrictEqual(read.props!.lackingRelations, ["orders"]);
        const diff = (await provider.diff!(a.id, read.props, a.inputs)) as RedshiftDiff;
        assert.deepStrictEqual([diff.changes, diff.changedKeys, diff.replaces], [true, ["privileges"], []]);
        const log = sqlLog();
        const { outs } = await provider.update!(a.id, read.props, a.inputs);
        stopLogging();
        assert.deepStrictEqual(log.filter((e) => e.kind === "write").map((e) => e.sql), ['GRANT SELECT ON ALL TABLES IN SCHEMA "analytics" TO GROUP "grp_dev"']);
        assert.deepStrictEqual(outs!.privileges, ["SELECT"]);
        assert.deepStrictEqual((await attempt("dbt_ci", "SELECT id FROM analytics.orders")).rows, [{ id: 3 }]);
        assert.strictEqual(((await provider.diff!(a.id, (await provider.read!(a.id, outs)).props, a.inputs)) as RedshiftDiff).changes, false);
    });

    it("read reports an out-of-band REVOKE of schema USAGE and of default privileges; update restores them", async () => {
        await server.admin(DATABASE, "REVOKE USAGE ON SCHEMA analytics FROM GROUP grp_dev");
        await server.admin(DATABASE, "ALTER DEFAULT PRIVILEGES FOR USER dbt_prod IN SCHEMA analytics REVOKE SELECT ON TABLES FROM GROUP grp_dev");
        for (const [key, kind] of [["usage-analytics", "SchemaGrant"], ["defaults-analytics", "DefaultPrivileges"]] as const) {
            const a = byKey(key);
            const provider = redshiftProviderObjects[kind];
            const read = await provider.read!(a.id, a.outs);
            assert.deepStrictEqual(read.props!.privileges, [], key);
            const diff = (await provider.diff!(a.id, read.props, a.inputs)) as RedshiftDiff;
            assert.deepStrictEqual(diff.changedKeys, ["privileges"], key);
            const { outs } = await provider.update!(a.id, read.props, a.inputs);
            assert.deepStrictEqual(outs, a.outs, `${key}: back to the declared state`);
        }
        await attempt("dbt_prod", "CREATE TABLE analytics.after_repair AS SELECT 1 AS y");
        assert.deepStrictEqual((await attempt("maria", "SELECT y FROM analytics.after_repair")).rows, [{ y: 1 }]);
    });

    it("read reports an out-of-band owner change of a schema; update gives it back", async () => {
        const a = byKey("schema-maria_staging");
        await server.admin(DATABASE, "ALTER SCHEMA maria_staging OWNER TO dbt_ci");
        const provider = redshiftProviderObjects.Schema;
        const read = await provider.read!(a.id, a.outs);
        assert.strictEqual(read.props!.owner, "dbt_ci");
        const diff = (await provider.diff!(a.id, read.props, a.inputs)) as RedshiftDiff;
        assert.deepStrictEqual([diff.changedKeys, diff.replaces], [["owner"], []]);
        await provider.update!(a.id, read.props, a.inputs);
        assert.deepStrictEqual(await server.admin(DATABASE, "SELECT pg_get_userbyid(nspowner) AS o FROM pg_namespace WHERE nspname = 'maria_staging'"), [{ o: "maria" }]);
    });

    it("read reports an out-of-band DROP USER as deleted; the next apply creates it again", async () => {
        const provider = redshiftProviderObjects.User;
        passwords.tmp_bot = newPassword();
        const inputs = await checked("User", { name: "tmp_bot", password: passwords.tmp_bot });
        const { id, outs } = await provider.create(inputs);
        assert.deepStrictEqual(Object.keys(outs).sort(), ["connection", "name", "passwordHash", "passwordSalt"]);
        await server.admin(DATABASE, "DROP USER tmp_bot");
        assert.deepStrictEqual(await provider.read!(id, outs), {}, "gone: no id");
        // The engine drops it from state; the next `up` runs create.
        await provider.create(inputs);
        assert.deepStrictEqual((await attempt("tmp_bot", "SELECT current_user AS u")).rows, [{ u: "tmp_bot" }]);
        // Group membership removed out of band is reported the same way.
        const m = byKey("member-grp_dev-maria");
        await server.admin(DATABASE, "ALTER GROUP grp_dev DROP USER maria");
        assert.deepStrictEqual(await redshiftProviderObjects.GroupMember.read!(m.id, m.outs), {});
        await redshiftProviderObjects.GroupMember.create(m.inputs);
        assert.ok((await redshiftProviderObjects.GroupMember.read!(m.id, m.outs)).id);
    });

    it("a new password is an update: diff sees it through the hash, update sets it, and the old one stops working", async () => {
        const provider = redshiftProviderObjects.User;
        const a = byKey("user-maria");
        const next = newPassword();
        const inputs = await checked("User", { ...a.step.props, password: next });
        const diff = (await provider.diff!(a.id, a.outs, inputs)) as RedshiftDiff;
        assert.deepStrictEqual([diff.changedKeys, diff.replaces], [["password"], []]);
        const log = sqlLog();
        const { outs } = await provider.update!(a.id, a.outs, inputs);
        stopLogging();
        assert.ok(log.every((e) => !e.sql.includes(next)), "the statement log never holds the password");
        assert.ok(!JSON.stringify(outs).includes(next), "outputs never hold the password");
        const old = passwords.maria;
        passwords.maria = next;
        assert.ok((await attempt("maria", "SELECT 1 AS one")).rows);
        passwords.maria = old;
        assert.strictEqual((await attempt("maria", "SELECT 1")).error?.code, "28P01");
        passwords.maria = next;
    });

    it("refuses to take over an existing user, group or schema that is not ours, unless adopt: true", async () => {
        const squatter = newPassword();
        await server.admin(DATABASE, `CREATE USER squatter PASSWORD '${squatter}'; CREATE GROUP squatters; CREATE SCHEMA squat`);
        for (const [kind, props, label] of [
            ["User", { name: "squatter", password: newPassword() }, 'Redshift user "squatter"'],
            ["Group", { name: "squatters" }, 'Redshift group "squatters"'],
            ["Schema", { name: "squat", owner: "dbt_prod" }, 'Redshift schema "squat"'],
        ] as const) {
            const log = sqlLog();
            const message = await rejects(redshiftProviderObjects[kind].create(await checked(kind, props)));
            stopLogging();
            assert.ok(message.startsWith(`${label} already exists and was not created by dbt-platform; refusing to take it over.`), message);
            assert.deepStrictEqual(log.filter((e) => e.kind === "write"), [], `${kind}: nothing written`);
        }
        // The owner of "squat" is still the admin: nothing changed.
        assert.deepStrictEqual(await server.admin(DATABASE, "SELECT pg_get_userbyid(nspowner) AS o FROM pg_namespace WHERE nspname = 'squat'"), [{ o: server.adminUser }]);
        // adopt: true takes the schema over and marks it ours.
        const { outs } = await redshiftProviderObjects.Schema.create(await checked("Schema", { name: "squat", owner: "dbt_prod", adopt: true }));
        assert.strictEqual(outs.owner, "dbt_prod");
        assert.deepStrictEqual(await server.admin(DATABASE, "SELECT obj_description(oid, 'pg_namespace') AS c FROM pg_namespace WHERE nspname = 'squat'"), [{ c: REDSHIFT_OWNERSHIP_MARKER }]);
        // A schema that carries our marker is ours: a create whose state was lost adopts it without adopt: true.
        const again = await redshiftProviderObjects.Schema.create(await checked("Schema", { name: "squat", owner: "dbt_prod" }));
        assert.strictEqual(again.id, "squat");
    });

    it("check names the resource and the property; bad identifiers never reach SQL", async () => {
        const res = await redshiftProviderObjects.SchemaGrant.check!({}, {
            connection: { ...connection, port: "5432" },
            schema: 'analytics"; DROP TABLE x; --',
            grantee: { kind: "group", name: "Grp_Dev" },
            privileges: ["SELECT"],
        });
        const reasons = res.failures!.map((f) => f.reason);
        assert.ok(reasons.some((r) => /connection\.port: expected a port number/.test(r)), reasons.join("\n"));
        assert.ok(reasons.some((r) => r.includes("schema must be a lower-case identifier")), reasons.join("\n"));
        assert.ok(reasons.some((r) => r.includes("grantee.name must be a lower-case identifier")), reasons.join("\n"));
        assert.ok(reasons.some((r) => r.includes("privileges must be a non-empty list of USAGE, CREATE")), reasons.join("\n"));
        assert.ok(reasons.every((r) => r.startsWith("Redshift grant on schema ")), reasons.join("\n"));
        const weak = await redshiftProviderObjects.User.check!({}, { connection, name: "bot", password: "alllowercase1" });
        assert.ok(weak.failures!.some((f) => f.property === "password" && !f.reason.includes("alllowercase1")));
    });

    it("delete removes what create made, revokes grants, and never drops a schema with relations in it", async () => {
        const grant = byKey("select-analytics_staging");
        await redshiftProviderObjects.TableGrant.delete!(grant.id, grant.outs);
        assert.strictEqual((await attempt("dbt_ci", "SELECT * FROM analytics_staging.stg_dogs")).error?.code, INSUFFICIENT_PRIVILEGE);
        assert.deepStrictEqual(await redshiftProviderObjects.TableGrant.read!(grant.id, grant.outs).then((r) => r.props!.privileges), []);
        await redshiftProviderObjects.TableGrant.create(grant.inputs);
        const schema = byKey("schema-anton");
        const message = await rejects(redshiftProviderObjects.Schema.delete!(schema.id, schema.outs));
        assert.ok(message.startsWith('Redshift schema "anton": cannot drop schema anton because other objects depend on it (SQLSTATE 2BP01)'), message);
        const tmp = await redshiftProviderObjects.User.create(await checked("User", { name: "tmp_gone", password: newPassword() }));
        await redshiftProviderObjects.User.delete!(tmp.id, tmp.outs);
        assert.deepStrictEqual(await server.admin(DATABASE, "SELECT usename FROM pg_user WHERE usename = 'tmp_gone'"), []);
        // Deleting what is already gone is not an error.
        await redshiftProviderObjects.User.delete!(tmp.id, tmp.outs);
    });

    it("the cleanup macro, run by real dbt as the CI user, drops exactly PR n's schema family and refuses anything else", async function () {
        this.timeout(300_000);
        ensurePythonEnv();
        const spec = redshiftPullRequestSchemas("dbt_build_", DATABASE);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rs-macro-"));
        try {
            fs.mkdirSync(path.join(dir, "macros"));
            fs.writeFileSync(path.join(dir, "macros", "dbt_platform.sql"), spec.dropMacro);
            fs.writeFileSync(path.join(dir, "dbt_project.yml"), stringify({ name: "rs_macro", version: "1.0.0", "config-version": 2, profile: "rs" }));
            // dbt-postgres stands in for dbt-redshift: the macro uses pg_namespace, left() and adapter.drop_schema, which both have.
            const ci = { type: "postgres", host: server.host, port: server.port, user: "dbt_ci", password: passwords.dbt_ci, dbname: DATABASE, schema: "dbt_build_0", threads: 1, sslmode: "disable" };
            fs.writeFileSync(path.join(dir, "profiles.yml"), stringify({ rs: { target: "ci", outputs: { ci } } }));
            for (const s of ["dbt_build_77", "dbt_build_77_staging", "dbt_build_770", "dbt_build_7"]) await attempt("dbt_ci", `CREATE SCHEMA ${s}; CREATE TABLE ${s}.t AS SELECT 1 AS x`);
            const env = { DBT_PROFILES_DIR: dir, DBT_LOG_PATH: path.join(dir, "logs") };
            await runDbt(["run-operation", spec.dropMacroName, "--args", "{schema_name: dbt_build_77}"], env, { cwd: dir });
            const left = await server.admin(DATABASE, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'dbt\\_build\\_%' ORDER BY nspname");
            assert.deepStrictEqual(left.map((r) => r.nspname), ["dbt_build_7", "dbt_build_770"], "only PR 77's family is gone");
            const refused = await runDbt(["run-operation", spec.dropMacroName, "--args", "{schema_name: analytics}"], env, { cwd: dir, allowFailure: true });
            assert.notStrictEqual(refused.code, 0);
            assert.match(refused.output, /refusing to drop analytics: only dbt_build_<pull request number> schemas are dropped/);
            assert.strictEqual((await server.admin(DATABASE, "SELECT 1 FROM pg_namespace WHERE nspname = 'analytics'")).length, 1);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("a connection that is refused is retried with capped backoff, then fails naming the resource", async () => {
        const port = await freePort();
        const started = Date.now();
        const message = await rejects(
            withRedshiftSession({ ...connection, port }, 'Redshift group "grp_x"', (s) => s.read("SELECT 1"), { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 60 }),
        );
        assert.match(message, /^Redshift group "grp_x": .*ECONNREFUSED.* after 3 attempts; statement: SELECT 1$/s);
        assert.ok(Date.now() - started >= 100, "waited between attempts");
        const capped = await rejects(withRedshiftSession({ ...connection, port }, "r", (s) => s.read("SELECT 1"), { maxAttempts: 50, baseDelayMs: 50, deadlineMs: 300 }));
        assert.ok(!/after 50 attempts/.test(capped), "the overall deadline stops the retries first");
    });

    describe("secrecy", () => {
        /** Serialises a provider as pulumi.dynamic.Resource does and loads it as the provider host does. */
        async function reloaded(provider: pulumi.dynamic.ResourceProvider): Promise<pulumi.dynamic.ResourceProvider> {
            const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
            const m = new Module(path.join(__dirname, "__provider.js"));
            m.paths = (Module as any)._nodeModulePaths(path.join(__dirname, ".."));
            (m as any)._compile(sf.text, m.id);
            return m.exports.handler();
        }

        it("no serialised provider holds the admin password or any user password, even after use", async () => {
            for (const [name, provider] of Object.entries(redshiftProviderObjects)) {
                const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
                for (const needle of [server.adminPassword, ...Object.values(passwords)]) {
                    assert.ok(!sf.text.includes(needle), `${name}: serialised provider contains a password`);
                }
                assert.strictEqual(sf.containsSecrets, false, name);
                assert.match(sf.text, new RegExp(`process\\.env\\[REDSHIFT_ADMIN_PASSWORD_ENV\\]|${REDSHIFT_ADMIN_PASSWORD_ENV}`), `${name}: reads the admin password per call`);
            }
        });

        it("a serialised provider, loaded as the provider host loads it, creates, reads and deletes on the server", async () => {
            const provider = await reloaded(redshiftProviderObjects.Group);
            const inputs = (await provider.check!({}, { connection, name: "grp_reloaded" })).inputs;
            const { id, outs } = await provider.create(inputs);
            assert.deepStrictEqual((await provider.read!(id, outs)).props, outs);
            await provider.delete!(id, outs);
            assert.deepStrictEqual(await provider.read!(id, outs), {});
        });

        it("without a password in the connection the provider reads REDSHIFT_ADMIN_PASSWORD per call, and says so when unset", async () => {
            const provider = redshiftProviderObjects.Group;
            const { password: _drop, ...bare } = connection;
            const inputs = (await provider.check!({}, { connection: bare, name: "grp_env" })).inputs;
            delete process.env[REDSHIFT_ADMIN_PASSWORD_ENV];
            const message = await rejects(provider.create(inputs));
            assert.strictEqual(message, `Redshift group "grp_env": no admin password; pass connection.password (a secret) or set ${REDSHIFT_ADMIN_PASSWORD_ENV}.`);
            process.env[REDSHIFT_ADMIN_PASSWORD_ENV] = server.adminPassword;
            try {
                const { id, outs } = await provider.create(inputs);
                assert.ok(!JSON.stringify(outs).includes(server.adminPassword));
                await provider.delete!(id, outs);
            } finally {
                delete process.env[REDSHIFT_ADMIN_PASSWORD_ENV];
            }
        });
    });
});
