/**
 * The warehouse factory (components/warehouse/factory.ts) under Pulumi mocks: for each
 * `warehouse.kind` of the checked-in stacks it builds the right component with the inputs the
 * config asks for (asserted on recorded resources by type and name), its planned targets are the
 * ones the component has, Postgres's mapping is exactly the one DbtPlatform registers today, and a
 * value only a component refuses stops validateWarehouse before anything is registered.
 */
import assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig, RedshiftWarehouseConfig, StackConfig } from "../components/config";
import {
    createWarehouse,
    plannedWarehouseTargets,
    PostgresWarehouse,
    RedshiftWarehouse,
    SnowflakeWarehouse,
    validateWarehouse,
    Warehouse,
    WarehouseSecrets,
} from "../components/warehouse";
import { find, installMocks, Recorded, resolve, runProgram, stackConfig } from "../scripts/offline";

const DYN = (kind: string) => `pulumi-nodejs:dynamic/redshift:${kind}`;
const SF = {
    component: "dbt-platform:warehouse:SnowflakeWarehouse",
    provider: "pulumi:providers:snowflake",
    database: "snowflake:index/database:Database",
    warehouse: "snowflake:index/warehouse:Warehouse",
    accountRole: "snowflake:index/accountRole:AccountRole",
    serviceUser: "snowflake:index/serviceUser:ServiceUser",
    key: "tls:index/privateKey:PrivateKey",
};
const PG = { component: "dbt-platform:warehouse:PostgresWarehouse", database: "postgresql:index/database:Database", role: "postgresql:index/role:Role", schema: "postgresql:index/schema:Schema" };
const RS = { component: "dbt-platform:warehouse:RedshiftWarehouse", serverless: "dbt-platform:warehouse:RedshiftServerless" };

/** The parent the platform would pass (DbtPlatform's children use `{ parent: this }`). */
class Parent extends pulumi.ComponentResource {
    constructor(name: string) {
        super("test:index:Parent", name, {});
    }
}

/** Builds the stack's warehouse through the factory under mocks, as DbtPlatform would (validate first). */
async function build(stack: string, config: StackConfig, secrets: WarehouseSecrets = {}) {
    const { resources, settle } = await installMocks(stack);
    const name = `dbt-${stack}-warehouse`;
    validateWarehouse(name, config, secrets);
    const parent = new Parent(`dbt-${stack}`);
    const warehouse = createWarehouse(name, config, secrets, { parent });
    await settle();
    const parentUrn = await resolve(parent.urn);
    return { resources, warehouse, name, parentUrn: parentUrn.value };
}

const of = (resources: Recorded[], type: string) => resources.filter((r) => r.type === type);

describe("warehouse factory: one component per warehouse.kind, from the stack config", () => {
    describe("postgres (Pulumi.dev.yaml)", () => {
        let ctx: Awaited<ReturnType<typeof build>>;
        const config = parseStackConfig("dev", stackConfig("dev"));
        before(async () => {
            ctx = await build("dev", config, { postgresAdminPassword: pulumi.secret("pg-Admin-pw") });
        });

        it("builds a PostgresWarehouse under the given parent, with the database, roles and schemas of the config", () => {
            assert.ok(ctx.warehouse instanceof PostgresWarehouse);
            assert.strictEqual(ctx.warehouse.kind, "postgres");
            assert.strictEqual(find(ctx.resources, PG.component, ctx.name).parent, ctx.parentUrn);
            assert.strictEqual(find(ctx.resources, PG.database, `${ctx.name}-database`).inputs.name, "analytics_dev");
            assert.strictEqual(find(ctx.resources, PG.role, `${ctx.name}-role-prod`).inputs.name, "role_prod");
            assert.strictEqual(find(ctx.resources, PG.role, `${ctx.name}-role-dev`).inputs.name, "role_dev");
            assert.deepStrictEqual(of(ctx.resources, PG.schema).map((r) => r.inputs.name).sort(), ["analytics", "dbt_anton", "dbt_ci", "dbt_maria", "dbt_platform", "staging"]);
            assert.deepStrictEqual(ctx.warehouse.adapter, { type: "postgres", package: "dbt-postgres", version: config.dbt.adapterVersion });
        });

        it("the admin password reaches the provider as a secret", () => {
            const providers = of(ctx.resources, "pulumi:providers:postgresql");
            assert.ok(providers.length > 0);
            for (const p of providers) {
                assert.strictEqual(p.inputs.password, "pg-Admin-pw", p.name);
                assert.ok(p.secretInputs.includes("password"), `${p.name}: password is secret`);
            }
        });

        it("plans the targets the component has", () => {
            assert.deepStrictEqual(plannedWarehouseTargets(config), ctx.warehouse.targetNames);
            assert.deepStrictEqual(plannedWarehouseTargets(config), { ci: "ci", deploy: "prod", scheduler: "scheduler" });
        });

        it("registers exactly what DbtPlatform's own mapping registers today (same types, names and inputs)", async () => {
            const key = "dbt-platform:warehouseAdminPassword";
            const { resources } = await runProgram("dev", { ...stackConfig("dev"), [key]: "pg-Admin-pw" }, [key]);
            // Generated passwords differ per run; everything else must match.
            const shape = (rs: Recorded[], name: string) =>
                rs
                    .filter((r) => r.name.startsWith(name) && r.type !== PG.component)
                    .map((r) => `${r.type}::${r.name}::${JSON.stringify(r.inputs, (k, v) => (k === "password" && v !== "pg-Admin-pw" ? "<generated>" : v))}`)
                    .sort();
            const viaFactory = shape(ctx.resources, ctx.name);
            assert.ok(viaFactory.length > 20);
            assert.deepStrictEqual(shape(resources, "dbt-dev-warehouse"), viaFactory);
        });
    });

    describe("snowflake (Pulumi.snowflake.yaml)", () => {
        const config = parseStackConfig("snowflake", stackConfig("snowflake"));
        const KEY = "-----BEGIN PRIVATE KEY-----\nMIIadmin\n-----END PRIVATE KEY-----\n";
        let ctx: Awaited<ReturnType<typeof build>>;
        before(async function () {
            this.timeout(60_000);
            ctx = await build("snowflake", config, { snowflakePrivateKey: pulumi.secret(KEY) });
        });

        it("builds a SnowflakeWarehouse under the given parent", () => {
            assert.ok(ctx.warehouse instanceof SnowflakeWarehouse);
            assert.strictEqual(ctx.warehouse.kind, "snowflake");
            assert.strictEqual(find(ctx.resources, SF.component, ctx.name).parent, ctx.parentUrn);
            assert.deepStrictEqual(ctx.warehouse.adapter, { type: "snowflake", package: "dbt-snowflake", version: "1.11.6" });
            assert.strictEqual(config.dbt.adapterVersion, "1.11.6", "dbt.adapterVersion defaults to dbt-snowflake's on snowflake");
        });

        it("databases, virtual warehouses, functional roles and service users as configured", () => {
            assert.strictEqual(find(ctx.resources, SF.database, `${ctx.name}-database-production`).inputs.name, "ANALYTICS");
            assert.strictEqual(find(ctx.resources, SF.database, `${ctx.name}-database-development`).inputs.name, "ANALYTICS_DEV");
            const t = find(ctx.resources, SF.warehouse, `${ctx.name}-warehouse-transform`).inputs;
            assert.deepStrictEqual([t.name, t.warehouseSize, t.autoSuspend, t.autoResume, t.statementTimeoutInSeconds], ["TRANSFORMING", "SMALL", 60, "true", 7200]);
            assert.strictEqual(find(ctx.resources, SF.warehouse, `${ctx.name}-warehouse-reporting`).inputs.autoSuspend, 300);
            assert.deepStrictEqual(of(ctx.resources, SF.accountRole).map((r) => `${r.name}=${r.inputs.name}`).sort(), [
                `${ctx.name}-role-ci=TRANSFORMER_CI`,
                `${ctx.name}-role-reporter=REPORTER`,
                `${ctx.name}-role-transformer=TRANSFORMER`,
            ]);
            const deploy = find(ctx.resources, SF.serviceUser, `${ctx.name}-user-SVC_DBT_DEPLOY`).inputs;
            assert.deepStrictEqual([deploy.name, deploy.defaultWarehouse, deploy.defaultRole], ["SVC_DBT_DEPLOY", "TRANSFORMING", "TRANSFORMER"]);
            assert.strictEqual(find(ctx.resources, SF.serviceUser, `${ctx.name}-user-SVC_DBT_CI`).inputs.defaultRole, "TRANSFORMER_CI");
            assert.strictEqual(of(ctx.resources, SF.serviceUser).length, 2);
            assert.strictEqual(find(ctx.resources, SF.key, `${ctx.name}-user-SVC_DBT_DEPLOY-key-1`).inputs.rsaBits, 2048);
        });

        it("the admin logs in with its key pair, the key a secret input of both providers", () => {
            for (const role of ["sysadmin", "securityadmin"]) {
                const p = find(ctx.resources, SF.provider, `${ctx.name}-${role}`);
                assert.deepStrictEqual([p.inputs.organizationName, p.inputs.accountName, p.inputs.user, p.inputs.authenticator, p.inputs.role], ["ACME", "ANALYTICS", "PULUMI_ADMIN", "SNOWFLAKE_JWT", role.toUpperCase()]);
                assert.strictEqual(p.inputs.privateKey, KEY);
                assert.ok(p.secretInputs.includes("privateKey"), `${p.name}: privateKey is secret`);
            }
        });

        it("plans the targets the component has; PR schemas CI_PR_<n> in ANALYTICS_DEV", () => {
            assert.deepStrictEqual(plannedWarehouseTargets(config), ctx.warehouse.targetNames);
            assert.deepStrictEqual(plannedWarehouseTargets(config), { ci: "ci", deploy: "prod" });
            assert.deepStrictEqual([ctx.warehouse.pullRequestSchemas.prefix, ctx.warehouse.pullRequestSchemas.database], ["CI_PR_", "ANALYTICS_DEV"]);
        });
    });

    describe("redshift (Pulumi.redshift.yaml)", () => {
        const config = parseStackConfig("redshift", stackConfig("redshift"));
        let ctx: Awaited<ReturnType<typeof build>>;
        before(async () => {
            ctx = await build("redshift", config, { redshiftAdminPassword: pulumi.secret("rs-Admin-pw") });
        });

        it("builds a RedshiftWarehouse under the given parent, no Serverless", () => {
            assert.ok(ctx.warehouse instanceof RedshiftWarehouse);
            assert.strictEqual(ctx.warehouse.kind, "redshift");
            assert.strictEqual(find(ctx.resources, RS.component, ctx.name).parent, ctx.parentUrn);
            assert.strictEqual(of(ctx.resources, RS.serverless).length, 0);
            assert.deepStrictEqual(ctx.warehouse.adapter, { type: "redshift", package: "dbt-redshift", version: "1.11.2" });
        });

        it("users, groups and schemas of seed 003; deploy and scheduler are one production user", () => {
            assert.deepStrictEqual(of(ctx.resources, DYN("User")).map((r) => r.inputs.name).sort(), ["anton", "dbt_ci", "dbt_prod", "maria"]);
            assert.deepStrictEqual(of(ctx.resources, DYN("Group")).map((r) => r.inputs.name).sort(), ["grp_dev", "grp_prod"]);
            const owners = Object.fromEntries(of(ctx.resources, DYN("Schema")).map((r) => [r.inputs.name, r.inputs.owner]));
            assert.deepStrictEqual(owners, { dbt: "dbt_prod", dbt_staging: "dbt_prod", anton: "anton", anton_staging: "anton", maria: "maria", maria_staging: "maria" });
            assert.strictEqual(find(ctx.resources, DYN("GroupMember"), `${ctx.name}-member-grp_prod-dbt_prod`).inputs.user, "dbt_prod");
        });

        it("the admin connection (with its password) is a secret input of every provider resource", () => {
            const user = find(ctx.resources, DYN("User"), `${ctx.name}-user-dbt_prod`);
            assert.ok(user.secretInputs.includes("connection"));
            assert.deepStrictEqual(user.inputs.connection, {
                host: "dbt.c3xample9abc.eu-west-1.redshift.amazonaws.com",
                port: 5439,
                database: "dev",
                user: "platform_admin",
                password: "rs-Admin-pw",
                sslmode: "verify-full",
            });
        });

        it("plans the targets the component has: ci, the stage, and scheduler", async () => {
            assert.deepStrictEqual(plannedWarehouseTargets(config), ctx.warehouse.targetNames);
            assert.deepStrictEqual(plannedWarehouseTargets(config), { ci: "ci", deploy: "redshift", scheduler: "scheduler" });
            const targets = (await resolve(ctx.warehouse.targets)).value as Record<string, { user: string; schema: string }>;
            assert.strictEqual(targets.redshift.user, targets.scheduler.user, "one production identity");
            assert.strictEqual(ctx.warehouse.pullRequestSchemas.prefix, "dbt_build_");
        });
    });

    describe("redshift with warehouse.serverless", () => {
        const raw = stackConfig("redshift");
        const wh = JSON.parse(raw["dbt-platform:warehouse"]);
        delete wh.connection.host;
        wh.connection.username = "dbt_admin";
        wh.serverless = { namespaceName: "acme-dbt", workgroupName: "acme-dbt-wg", baseCapacity: 8, subnetIds: ["subnet-0a1b2c3d"], securityGroupIds: ["sg-0123abcd"] };
        wh.auth = { method: "iam", region: "eu-west-1" };
        const config = parseStackConfig("redshift", { ...raw, "dbt-platform:warehouse": JSON.stringify(wh) });
        let ctx: Awaited<ReturnType<typeof build>>;
        before(async () => {
            ctx = await build("redshift", config);
        });

        it("the config defaults IAM logins to the Serverless workgroup", () => {
            assert.deepStrictEqual((config.warehouse as RedshiftWarehouseConfig).auth, { method: "iam", workgroup: "acme-dbt-wg", region: "eu-west-1" });
        });

        it("creates the namespace and workgroup next to the warehouse (same parent)", () => {
            const sl = find(ctx.resources, RS.serverless, `${ctx.name}-serverless`);
            assert.strictEqual(sl.parent, ctx.parentUrn);
            const ns = find(ctx.resources, "aws:redshiftserverless/namespace:Namespace", `${ctx.name}-serverless-namespace`);
            assert.deepStrictEqual([ns.inputs.namespaceName, ns.inputs.dbName, ns.inputs.adminUsername], ["acme-dbt", "dev", "dbt_admin"]);
            assert.ok(ns.secretInputs.includes("adminUserPassword"));
            const wg = find(ctx.resources, "aws:redshiftserverless/workgroup:Workgroup", `${ctx.name}-serverless-workgroup`);
            assert.deepStrictEqual([wg.inputs.workgroupName, wg.inputs.baseCapacity, wg.inputs.subnetIds, wg.inputs.securityGroupIds, wg.inputs.port], ["acme-dbt-wg", 8, ["subnet-0a1b2c3d"], ["sg-0123abcd"], 5439]);
        });

        it("the warehouse's providers log in as the namespace admin with its generated password", () => {
            const user = find(ctx.resources, DYN("User"), `${ctx.name}-user-dbt_prod`);
            const generated = find(ctx.resources, "random:index/randomPassword:RandomPassword", `${ctx.name}-serverless-admin-password`).state.result;
            assert.strictEqual(user.inputs.connection.user, "dbt_admin");
            assert.strictEqual(user.inputs.connection.password, generated);
            assert.ok(user.secretInputs.includes("connection"));
        });

        it("IAM profiles: the workgroup is addressed by its endpoint (host), no cluster_id", async () => {
            const yaml = (await resolve(ctx.warehouse.profilesYaml)).value;
            assert.match(yaml, /method: iam/);
            assert.match(yaml, /region: eu-west-1/);
            assert.doesNotMatch(yaml, /cluster_id/);
        });
    });

    describe("validateWarehouse", () => {
        it("throws naming the argument a component refuses, before anything is registered", async () => {
            const { resources, settle } = await installMocks("snowflake");
            const config = parseStackConfig("snowflake", stackConfig("snowflake"));
            // A value the config would refuse, set behind its back: the component's own check still holds.
            const bad: StackConfig = { ...config, warehouse: { ...(config.warehouse as Extract<StackConfig["warehouse"], { kind: "snowflake" }>), account: "acme analytics" } };
            assert.throws(() => validateWarehouse("dbt-snowflake-warehouse", bad, {}), /SnowflakeWarehouse dbt-snowflake-warehouse: invalid arguments:\n {2}- account = "acme analytics"/);
            await settle();
            assert.deepStrictEqual(resources, []);
        });

        it("accepts every checked-in stack's config", () => {
            for (const stack of ["dev", "sandbox", "staging", "prod", "snowflake", "redshift"]) {
                validateWarehouse(`dbt-${stack}-warehouse`, parseStackConfig(stack, stackConfig(stack)), {});
            }
        });

        it("accepts what the config accepts at its edges (no value passes config and fails the component)", () => {
            const variant = (stack: string, mutate: (wh: any) => void) => {
                const raw = stackConfig(stack);
                const wh = JSON.parse(raw["dbt-platform:warehouse"]);
                mutate(wh);
                const config = parseStackConfig(stack, { ...raw, "dbt-platform:warehouse": JSON.stringify(wh) });
                validateWarehouse(`dbt-${stack}-warehouse`, config, {});
            };
            variant("snowflake", (wh) => {
                wh.users[1] = { name: "SVC_DBT_DEPLOY", duty: "deploy", secondKey: true, activeKey: 2 };
                wh.users.push({ name: "S".repeat(255), duty: "scheduler" });
                wh.databases = { production: "P".repeat(249), development: "D_$" };
                wh.schemas = { production: "_", ci: "CI_PR_X", pullRequestPrefix: "P".repeat(41) };
                wh.warehouses = { transform: { size: "X6LARGE", autoSuspendSeconds: 86_400, statementTimeoutSeconds: 604_800 }, ci: { size: "XSMALL", autoSuspendSeconds: 60, statementTimeoutSeconds: 1 } };
                wh.rsaBits = 4096;
                wh.networkPolicy = { name: "NP", allowedIpList: ["0.0.0.0/0"], blockedIpList: ["10.0.0.1"] };
                wh.endpoint = { host: "localhost", port: 1, protocol: "http" };
            });
            variant("redshift", (wh) => {
                wh.auth = { method: "iam", clusterId: "a".repeat(63), region: "us-gov-west-1" };
                wh.rbac = true;
                wh.roles = { dev: "r_dev", prod: "r_prod" };
                wh.customSchemas = ["s".repeat(100)];
                wh.schemas.pullRequestPrefix = "p".repeat(16);
                wh.developers = [{ name: "u".repeat(127), schema: "a".repeat(26) }];
                wh.users = [{ name: "dbt_prod", duty: "scheduler" }, { name: "dbt_prod", duty: "deploy" }];
            });
            variant("redshift", (wh) => {
                delete wh.connection.host;
                wh.serverless = { namespaceName: "abc", workgroupName: "w".repeat(64), baseCapacity: 4, maxCapacity: 4 };
                wh.auth = { method: "iam", workgroup: "w".repeat(64), region: "eu-west-1" };
            });
        });
    });
});

// The factory returns the contract: the platform only needs these.
const _contract: (w: Warehouse) => unknown[] = (w) => [w.targetNames, w.profilesYaml, w.credentialSecrets, w.pullRequestSchemas, w.accessPlan];
void _contract;
