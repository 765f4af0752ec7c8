/**
 * @integration `pulumi destroy` and a following `up` of the dev stack's warehouse (issue 9 §3) on a
 * real Postgres: the program's resources are applied with the provider's create SQL, dbt-like SQL
 * builds tables and views in production, CI and developer schemas, then every resource that is not
 * retainOnDelete is deleted with the provider's delete SQL in reverse dependency order, and the
 * stack is re-created with `adoptRetained` over what was kept.
 */
import assert from "assert";
import * as fs from "fs";
import { Client } from "pg";
import { parse } from "yaml";
import { applyRecorded, destroyRecorded } from "./support/apply";
import { startPostgres, TestServer } from "./support/postgres";
import { resolve, ROOT, runProgram, toPulumiConfig } from "../scripts/offline";
import { POSTGRES_TYPES } from "../components/warehouse/postgres/providerSql";

const DB = "destroy_test";

interface Login {
    user: string;
    password: string;
}

async function as(server: TestServer, login: Login, sql: string): Promise<any[]> {
    const c = new Client(server.config(DB, login.user, login.password));
    await c.connect();
    try {
        const res: any = await c.query(sql);
        return Array.isArray(res) ? res[res.length - 1].rows : res.rows;
    } catch (err) {
        throw new Error(`${login.user}: ${sql.slice(0, 80)}: ${(err as Error).message}`);
    } finally {
        await c.end();
    }
}

describe("destroy and re-create the warehouse on a real Postgres @integration", function () {
    this.timeout(180_000);
    let server: TestServer;
    const config = (adoptRetained: boolean) => {
        const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.dev.yaml`, "utf8")).config;
        const wh = doc["dbt-platform:warehouse"];
        wh.connection = { host: server.host, port: server.port, database: DB, username: server.adminUser, sslmode: "disable" };
        wh.adoptRetained = adoptRetained;
        return toPulumiConfig(doc);
    };
    const deploy = async (adoptRetained: boolean) => {
        const { resources, exports } = await runProgram("dev", config(adoptRetained));
        await applyRecorded(server, resources);
        const targets = { ...((await resolve(exports.dbtTargets)).value as Record<string, any>), ...((await resolve(exports.developerTargets)).value as Record<string, any>) };
        const logins: Record<string, Login> = Object.fromEntries(Object.values(targets).map((t: any) => [t.user, { user: t.user, password: t.password }]));
        return { resources, logins };
    };
    const schemas = async () => (await server.admin(DB, "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema)' ORDER BY 1")).map((r) => `${r.nspname}:${r.owner}`);
    const roles = async () => (await server.admin("postgres", "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> current_user ORDER BY 1")).map((r) => r.rolname);

    before(async () => {
        server = await startPostgres();
    });

    after(async () => {
        await server?.stop();
    });

    it("keeps production and its data, drops what the stack alone owns, exits 0, and a new up adopts what was kept", async () => {
        const first = await deploy(false);
        const l = first.logins;
        // dbt has built in production (a custom schema too), in CI (a view over production, as
        // deferral makes), in a PR schema the cleanup dropped and one it did not reach, and for developers.
        await as(server, l.dbt_bitbucket, "CREATE TABLE analytics.orders AS SELECT generate_series(1, 5) AS id; CREATE VIEW analytics.orders_v AS SELECT id FROM analytics.orders");
        await as(server, l.dbt_scheduler, "CREATE TABLE staging.stg_customers AS SELECT 1 AS customer_id");
        await as(server, l.dbt_bitbucket, "SELECT dbt_platform.create_schema('analytics_marketing'); CREATE TABLE analytics_marketing.spend AS SELECT 7 AS amount");
        await as(server, l.dev_ci, "CREATE TABLE dbt_ci.orders AS SELECT * FROM analytics.orders; CREATE VIEW dbt_ci.orders_v AS SELECT id FROM analytics.orders");
        await as(server, l.dev_ci, "SELECT dbt_platform.create_schema('dbt_pr_3'); CREATE VIEW dbt_pr_3.v AS SELECT id FROM analytics.orders; DROP SCHEMA dbt_pr_3 CASCADE");
        await as(server, l.dev_ci, "SELECT dbt_platform.create_schema('dbt_pr_4'); CREATE TABLE dbt_pr_4.t AS SELECT 1 AS x");
        await as(server, l.anton, "CREATE TABLE dbt_anton.t AS SELECT 1 AS x; SELECT dbt_platform.create_schema('dbt_anton_scratch'); CREATE TABLE dbt_anton_scratch.t AS SELECT 1 AS x");
        await as(server, l.maria, "CREATE VIEW dbt_maria.v AS SELECT id FROM analytics.orders");

        // pulumi destroy: must not fail (the seed of issue 9 failed here with 2BP01 on schema analytics).
        const steps = await destroyRecorded(server, first.resources);
        const retained = first.resources.filter((r) => r.type.startsWith("postgresql:index/") && r.retainOnDelete).map((r) => r.name).sort();
        assert.deepStrictEqual(retained, [
            "dbt-dev-warehouse-database", "dbt-dev-warehouse-role-dev", "dbt-dev-warehouse-role-prod",
            "dbt-dev-warehouse-schema-analytics", "dbt-dev-warehouse-schema-staging",
        ]);
        assert.ok(steps.some((s) => s.statements.some((x) => x.text === 'DROP SCHEMA IF EXISTS "dbt_ci" CASCADE')));

        // Production and its data are intact and still owned by the prod role.
        assert.deepStrictEqual(await server.admin(DB, "SELECT count(*)::int AS n FROM analytics.orders"), [{ n: 5 }]);
        assert.deepStrictEqual(await server.admin(DB, "SELECT customer_id FROM staging.stg_customers"), [{ customer_id: 1 }]);
        assert.deepStrictEqual(await server.admin(DB, "SELECT amount FROM analytics_marketing.spend"), [{ amount: 7 }]);
        assert.deepStrictEqual(
            await server.admin(DB, "SELECT tableowner AS owner FROM pg_tables WHERE schemaname = 'analytics' AND tablename = 'orders'"),
            [{ owner: "role_prod" }],
        );
        // CI, developer and platform schemas are gone; so are the logins. What is left besides
        // production is runtime debris the dev role owns (a PR schema its cleanup never reached, a
        // developer's scratch schema): the stack never declared those, the PR cleanup drops them.
        assert.deepStrictEqual(await schemas(), [
            "analytics:role_prod", "analytics_marketing:role_prod", "dbt_anton_scratch:role_dev", "dbt_pr_4:role_dev",
            "public:pg_database_owner", "staging:role_prod",
        ]);
        assert.deepStrictEqual(await roles(), ["role_dev", "role_prod"]);

        // pulumi up again, adopting what was retained.
        const second = await deploy(true);
        const imported = second.resources.filter((r) => r.importId).map((r) => [r.type, r.importId]);
        assert.deepStrictEqual(imported, [
            [POSTGRES_TYPES.database, DB],
            [POSTGRES_TYPES.role, "role_dev"],
            [POSTGRES_TYPES.role, "role_prod"],
        ]);
        const n = second.logins;
        // Masking's guarantee holds over the retained objects: a new prod bot rebuilds what the old ones built.
        await as(server, n.dbt_scheduler, [
            'create table "analytics"."orders__dbt_tmp" as (select generate_series(1, 6) as id)',
            'alter table "analytics"."orders" rename to "orders__dbt_backup"',
            'alter table "analytics"."orders__dbt_tmp" rename to "orders"',
            'drop table if exists "analytics"."orders__dbt_backup" cascade',
            "create view analytics.orders_v as select id from analytics.orders",
        ].join(";\n"));
        assert.deepStrictEqual(await as(server, n.dev_ci, "SELECT count(*)::int AS n FROM analytics.orders"), [{ n: 6 }]);
        assert.deepStrictEqual(await as(server, n.dev_ci, "SELECT amount FROM analytics_marketing.spend"), [{ amount: 7 }]);
        await as(server, n.dev_ci, "CREATE TEMPORARY TABLE t AS SELECT 1; CREATE TABLE dbt_ci.m AS SELECT id FROM analytics.orders");
        assert.deepStrictEqual(await as(server, n.dbt_bitbucket, "SELECT current_user AS u"), [{ u: "role_prod" }]);
        assert.ok((await schemas()).includes("dbt_ci:role_dev") && (await schemas()).includes("dbt_anton:anton"));

        // And a second destroy of the re-created stack exits 0 too.
        await destroyRecorded(server, second.resources);
        assert.deepStrictEqual(await server.admin(DB, "SELECT count(*)::int AS n FROM analytics.orders"), [{ n: 6 }]);
    });
});

