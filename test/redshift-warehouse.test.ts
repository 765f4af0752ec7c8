/**
 * RedshiftWarehouse under mocks (recorded resources by type and name, secrets, ordering), its
 * profiles.yml and credential shapes, validation before registration, and the golden SQL of the
 * plan and of the Redshift-only statements (never executed; the Postgres proof is
 * test/redshift-access.test.ts). Regenerate the golden files with REDSHIFT_SQL_WRITE=1.
 */
import assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import {
    NOT_EXECUTED_ON_POSTGRES,
    REDSHIFT_ADAPTER,
    RedshiftServerless,
    redshiftSql,
    RedshiftWarehouse,
    RedshiftWarehouseArgs,
    renderRedshiftPlanSql,
} from "../components/warehouse/redshift";
import { find, installMocks, plainStrings, resolve, ROOT } from "../scripts/offline";

const T = (type: string) => `pulumi-nodejs:dynamic/redshift:${type}`;
const ADMIN_PASSWORD = "Admin-Secret-4f1c";

/** Seed 003's organisation: one production schema family, a staging custom schema, developer anton. */
const SEED_003: RedshiftWarehouseArgs = {
    connection: { host: "dbt.abc123.eu-west-1.redshift.amazonaws.com", port: 5439, user: "admin", password: ADMIN_PASSWORD },
    database: "dev",
    productionSchemas: ["dbt", "dbt_staging"],
    customSchemas: ["staging"],
    developers: [{ name: "anton" }, { name: "maria" }],
    profile: "redshift_development",
};

async function underMocks(args: RedshiftWarehouseArgs) {
    const { resources, settle } = await installMocks("redshift");
    const monitor = pulumi.runtime.getMonitor() as any;
    const register = monitor.registerResource.bind(monitor);
    const additionalSecrets = new Map<string, string[]>();
    monitor.registerResource = (req: any, callback: (err: any, resp: any) => void) => {
        additionalSecrets.set(req.getName(), req.getAdditionalsecretoutputsList());
        register(req, callback);
    };
    const wh = new RedshiftWarehouse("rs", args);
    await settle();
    return { wh, resources, additionalSecrets };
}

function golden(file: string, text: string): void {
    const p = path.join(ROOT, "sql", file);
    if (process.env.REDSHIFT_SQL_WRITE === "1") fs.writeFileSync(p, text);
    assert.strictEqual(text, fs.readFileSync(p, "utf8"), `sql/${file} is stale: run REDSHIFT_SQL_WRITE=1 npx mocha --no-config --node-option import=tsx --extension ts test/redshift-warehouse.test.ts`);
}

describe("RedshiftWarehouse (seed 003) under mocks", () => {
    let ctx: Awaited<ReturnType<typeof underMocks>>;
    before(async () => {
        ctx = await underMocks(SEED_003);
    });

    it("registers the component under its token, every child parented to it", () => {
        const component = find(ctx.resources, "dbt-platform:warehouse:RedshiftWarehouse", "rs");
        const children = ctx.resources.filter((r) => r.custom);
        assert.ok(children.length > 20);
        assert.ok(children.every((r) => r.parent === component.urn), "children { parent: this }");
        assert.ok(children.every((r) => r.name.startsWith("rs-")), "names rs-…");
    });

    it("creates the dev and prod groups, the shared production identity, the CI user and the developers", () => {
        assert.strictEqual(find(ctx.resources, T("Group"), "rs-group-dev").inputs.name, "grp_dev");
        assert.strictEqual(find(ctx.resources, T("Group"), "rs-group-prod").inputs.name, "grp_prod");
        const users = ctx.resources.filter((r) => r.type === T("User")).map((r) => r.inputs.name);
        assert.deepStrictEqual(users, ["dbt_prod", "dbt_ci", "anton", "maria"]);
        const members = ctx.resources.filter((r) => r.type === T("GroupMember")).map((r) => `${r.inputs.group}:${r.inputs.user}`);
        assert.deepStrictEqual(members, ["grp_prod:dbt_prod", "grp_dev:dbt_ci", "grp_dev:anton", "grp_dev:maria"]);
    });

    it("passwords come from random.RandomPassword meeting Redshift's rule, and reach the user as secret inputs only", () => {
        const pw = ctx.resources.filter((r) => r.type === "random:index/randomPassword:RandomPassword");
        assert.deepStrictEqual(pw.map((r) => r.name), ["rs-user-dbt_prod-password", "rs-user-dbt_ci-password", "rs-user-anton-password", "rs-user-maria-password"]);
        for (const r of pw) assert.deepStrictEqual([r.inputs.length, r.inputs.special, r.inputs.minUpper, r.inputs.minLower, r.inputs.minNumeric], [40, false, 2, 2, 2]);
        for (const u of ctx.resources.filter((r) => r.type === T("User"))) {
            assert.ok(u.secretInputs.includes("password"), `${u.name}: password is a secret input`);
            assert.ok(u.secretInputs.includes("connection"), `${u.name}: connection is a secret input`);
            assert.ok(!plainStrings(u.inputs, u.secretInputs).some((s) => s === ADMIN_PASSWORD || s.length === 40), `${u.name}: no plain secret`);
            assert.deepStrictEqual(ctx.additionalSecrets.get(u.name), ["connection", "password", "passwordHash"]);
        }
    });

    it("every Redshift resource carries the admin connection as a secret input, never in plain text", () => {
        for (const r of ctx.resources.filter((x) => x.type.startsWith("pulumi-nodejs:dynamic/redshift:"))) {
            assert.ok(r.secretInputs.includes("connection"), r.name);
            assert.deepStrictEqual(r.inputs.connection, { host: SEED_003.connection.host, port: 5439, database: "dev", user: "admin", password: ADMIN_PASSWORD });
            assert.ok(!plainStrings(r.inputs, r.secretInputs).includes(ADMIN_PASSWORD), r.name);
            assert.ok(ctx.additionalSecrets.get(r.name)!.includes("connection"), r.name);
        }
    });

    it("production schemas are owned by the production identity and readable by the dev group, now and later", () => {
        for (const s of ["dbt", "dbt_staging"]) {
            assert.deepStrictEqual(find(ctx.resources, T("Schema"), `rs-schema-${s}`).inputs.owner, "dbt_prod");
            const usage = find(ctx.resources, T("SchemaGrant"), `rs-usage-${s}`).inputs;
            assert.deepStrictEqual([usage.schema, usage.grantee, usage.privileges], [s, { kind: "group", name: "grp_dev" }, ["USAGE"]]);
            const select = find(ctx.resources, T("TableGrant"), `rs-select-${s}`).inputs;
            assert.deepStrictEqual([select.schema, select.grantee, select.privileges], [s, { kind: "group", name: "grp_dev" }, ["SELECT"]]);
            const defaults = find(ctx.resources, T("DefaultPrivileges"), `rs-defaults-${s}`).inputs;
            assert.deepStrictEqual([defaults.forUser, defaults.schema, defaults.privileges], ["dbt_prod", s, ["SELECT"]]);
        }
        assert.strictEqual(find(ctx.resources, T("DefaultPrivileges"), "rs-defaults-database").inputs.schema, undefined);
        assert.deepStrictEqual(find(ctx.resources, T("DatabaseGrant"), "rs-database-prod").inputs.grantee, { kind: "group", name: "grp_prod" });
        assert.deepStrictEqual(find(ctx.resources, T("DatabaseGrant"), "rs-database-dbt_ci").inputs.grantee, { kind: "user", name: "dbt_ci" });
    });

    it("developer schemas cover the custom-schema family (seed 003: anton, anton_staging), owned by the developer", () => {
        const schemas = ctx.resources.filter((r) => r.type === T("Schema")).map((r) => `${r.inputs.name}:${r.inputs.owner}`);
        assert.deepStrictEqual(schemas, ["dbt:dbt_prod", "dbt_staging:dbt_prod", "anton:anton", "anton_staging:anton", "maria:maria", "maria_staging:maria"]);
        assert.ok(!ctx.resources.some((r) => r.type === T("Role")), "no RBAC unless asked");
    });

    it("grants and memberships run one at a time, each after the objects it names", () => {
        const urnOf = (type: string, name: string) => find(ctx.resources, T(type), name).urn;
        const serial = ctx.resources.filter((r) => ["GroupMember", "DatabaseGrant", "SchemaGrant", "TableGrant", "DefaultPrivileges"].some((k) => r.type === T(k)));
        for (let i = 1; i < serial.length; i++) assert.ok(serial[i].dependencies.includes(serial[i - 1].urn), `${serial[i].name} after ${serial[i - 1].name}`);
        assert.ok(find(ctx.resources, T("SchemaGrant"), "rs-usage-dbt").dependencies.includes(urnOf("Schema", "rs-schema-dbt")));
        assert.ok(find(ctx.resources, T("Schema"), "rs-schema-anton_staging").dependencies.includes(urnOf("User", "rs-user-anton")));
        assert.ok(find(ctx.resources, T("GroupMember"), "rs-member-grp_dev-anton").dependencies.includes(urnOf("Group", "rs-group-dev")));
    });

    it("targets: deploy and scheduler share the production identity; CI builds in dbt_build_<PR>; developers in their own schema", async () => {
        assert.deepStrictEqual(ctx.wh.targetNames, { ci: "ci", deploy: "prod", scheduler: "scheduler" });
        const targets = await resolve(ctx.wh.targets);
        assert.strictEqual(targets.secret, true);
        const t = targets.value;
        assert.deepStrictEqual(Object.keys(t), ["ci", "prod", "scheduler"]);
        assert.strictEqual(t.prod.user, "dbt_prod");
        assert.strictEqual(t.scheduler.user, "dbt_prod");
        assert.strictEqual(t.prod.password, t.scheduler.password, "one credential for both duties");
        assert.strictEqual(t.ci.user, "dbt_ci");
        assert.strictEqual(t.ci.schema, "dbt_build_0");
        assert.strictEqual(ctx.wh.pullRequestSchemaPrefix, "dbt_build_");
        const devs = await resolve(ctx.wh.developerTargets);
        assert.strictEqual(devs.secret, true);
        assert.deepStrictEqual([devs.value.anton.schema, devs.value.anton.dbname], ["anton", "dev"]);
        const secrets = await resolve(ctx.wh.credentialSecrets);
        assert.strictEqual(secrets.secret, true);
        assert.deepStrictEqual(ctx.wh.credentialFields, ["host", "port", "user", "password", "dbname", "schema"]);
        const prod = JSON.parse(secrets.value.prod);
        assert.deepStrictEqual(Object.keys(prod), ["host", "port", "user", "password", "dbname", "schema"]);
        assert.deepStrictEqual([prod.user, prod.port, prod.dbname, prod.password], ["dbt_prod", "5439", "dev", t.prod.password]);
        assert.deepStrictEqual(JSON.parse(secrets.value.scheduler), prod, "deploy and scheduler: one identity, one credential");
        assert.deepStrictEqual(ctx.wh.adapter, REDSHIFT_ADAPTER);
        assert.deepStrictEqual([ctx.wh.kind, ctx.wh.adapter.type, ctx.wh.adapter.package], ["redshift", "redshift", "dbt-redshift"]);
    });

    it("profiles.yml is dbt-redshift with method database and env_var() references only", async () => {
        const yaml = (await resolve(ctx.wh.profilesYaml)).value;
        const doc = parse(yaml);
        const profile = doc.redshift_development;
        assert.strictEqual(profile.target, "ci");
        assert.deepStrictEqual(Object.keys(profile.outputs), ["ci", "prod", "scheduler"]);
        for (const [name, out] of Object.entries<any>(profile.outputs)) {
            assert.deepStrictEqual([out.type, out.method, out.sslmode], ["redshift", "database", "require"]);
            const up = name.toUpperCase();
            for (const f of ["host", "user", "password", "dbname", "schema"]) assert.strictEqual(out[f], `{{ env_var('DBT_${up}_${f.toUpperCase()}') }}`);
            assert.strictEqual(out.port, `{{ env_var('DBT_${up}_PORT') | int }}`);
        }
        const env = (await resolve(ctx.wh.profileEnvironment)).value;
        const targets = (await resolve(ctx.wh.targets)).value;
        assert.strictEqual(env.DBT_SCHEDULER_PASSWORD, targets.scheduler.password);
        assert.ok(!yaml.includes(targets.prod.password!), "no secret in profiles.yml");
    });
});

describe("RedshiftWarehouse and the warehouse contract", () => {
    let wh: RedshiftWarehouse;
    before(async () => {
        wh = (await underMocks(SEED_003)).wh;
    });

    it("targetEnv: DBT_<TARGET>_<FIELD>, the password secret, the CI schema computed per run", () => {
        assert.deepStrictEqual(Object.keys(wh.targetEnv), ["ci", "prod", "scheduler"]);
        assert.deepStrictEqual(wh.targetEnv.ci.map((v) => [v.name, v.secret, v.perRun ?? null]), [
            ["DBT_CI_HOST", false, null],
            ["DBT_CI_PORT", false, null],
            ["DBT_CI_USER", false, null],
            ["DBT_CI_PASSWORD", true, null],
            ["DBT_CI_DBNAME", false, null],
            ["DBT_CI_SCHEMA", false, "pull-request-schema"],
        ]);
        assert.ok(wh.targetEnv.prod.every((v) => v.perRun === undefined));
    });

    it("pullRequestSchemas: seed 003's dbt_build_<PR>, lower case, and a cleanup macro that drops only that family", () => {
        const pr = wh.pullRequestSchemas;
        assert.deepStrictEqual([pr.prefix, pr.database, pr.case, pr.createdBy, pr.dropMacroName], ["dbt_build_", "dev", "lower", "dbt", "dbt_platform_drop_pr_schema"]);
        assert.match(pr.dropMacro, /suffix\.isdigit\(\)/);
        assert.match(pr.dropMacro, /left\(nspname, \{\{ \(base \| length\) \+ 1 \}\}\) = '\{\{ base \}\}_'/);
        assert.ok(!/\blike\b/i.test(pr.dropMacro), "no LIKE: _ is a wildcard");
    });

    it("accessPlan: groups, memberships, grants (all and future, forCreator the production identity), ownerships, logins", () => {
        const plan = wh.accessPlan;
        assert.deepStrictEqual(RedshiftWarehouse.accessPlan("rs", SEED_003), plan);
        assert.deepStrictEqual(plan.roles.map((r) => [r.name, r.kind]), [["grp_dev", "group"], ["grp_prod", "group"]]);
        assert.deepStrictEqual(plan.memberships.map((m) => `${m.member.name}->${m.role.name}`), ["dbt_prod->grp_prod", "dbt_ci->grp_dev", "anton->grp_dev", "maria->grp_dev"]);
        const future = plan.grants.filter((g) => g.on.level !== "object" && g.on.scope === "future");
        assert.deepStrictEqual(future.map((g) => [g.on.level, (g.on as any).schema ?? null, g.forCreator?.name, g.to.name]), [
            ["schema", "dbt", "dbt_prod", "grp_dev"],
            ["schema", "dbt_staging", "dbt_prod", "grp_dev"],
            ["database", null, "dbt_prod", "grp_dev"],
        ]);
        assert.deepStrictEqual(plan.ownerships.map((o) => `${(o.on as any).name}:${o.to.name}`), ["dbt:dbt_prod", "dbt_staging:dbt_prod", "anton:anton", "anton_staging:anton", "maria:maria", "maria_staging:maria"]);
        assert.deepStrictEqual(plan.logins.map((l) => [l.name, l.duty ?? null]), [["dbt_prod", "deploy"], ["dbt_prod", "scheduler"], ["dbt_ci", "ci"], ["anton", null], ["maria", null]]);
        assert.ok(!JSON.stringify(plan).includes("password of"), "no password placeholder in the plan");
    });
});

describe("RedshiftWarehouse options", () => {
    it("IAM on a provisioned cluster: cluster_id and region, no password anywhere", async () => {
        const { wh } = await underMocks({ ...SEED_003, auth: { method: "iam", clusterId: "dbt-cluster", region: "eu-west-1" } });
        const out = parse((await resolve(wh.profilesYaml)).value).redshift_development.outputs.prod;
        assert.deepStrictEqual([out.method, out.cluster_id, out.region, out.password], ["iam", "dbt-cluster", "eu-west-1", undefined]);
        const env = (await resolve(wh.profileEnvironment)).value;
        assert.ok(!Object.keys(env).some((k) => k.endsWith("_PASSWORD")));
        assert.strictEqual(JSON.parse((await resolve(wh.credentialSecrets)).value.prod).password, undefined);
        assert.deepStrictEqual(wh.credentialFields, ["host", "port", "user", "dbname", "schema"]);
    });

    it("IAM on a Serverless workgroup: the workgroup endpoint is the host, no cluster_id", async () => {
        const { wh } = await underMocks({ ...SEED_003, auth: { method: "iam", workgroup: "dbt-wg", region: "eu-west-1" } });
        const out = parse((await resolve(wh.profilesYaml)).value).redshift_development.outputs.ci;
        assert.deepStrictEqual([out.method, out.cluster_id, out.region], ["iam", undefined, "eu-west-1"]);
    });

    it("rbac: true adds roles mirroring the groups (Redshift only)", async () => {
        const { resources } = await underMocks({ ...SEED_003, rbac: true });
        assert.deepStrictEqual(resources.filter((r) => r.type === T("Role")).map((r) => r.inputs.name), ["role_dev", "role_prod"]);
        const grants = resources.filter((r) => r.type === T("RoleGrant")).map((r) => `${r.inputs.role}:${r.inputs.grantee.name}`);
        assert.deepStrictEqual(grants, ["role_dev:dbt_ci", "role_dev:anton", "role_dev:maria", "role_prod:dbt_prod"]);
    });

    it("no CI user, a release-stage deploy target", async () => {
        const { wh, resources } = await underMocks({ ...SEED_003, ciUser: null, deployTarget: "staging" });
        assert.deepStrictEqual(wh.targetNames, { deploy: "staging", scheduler: "scheduler" });
        assert.ok(!resources.some((r) => r.type === T("User") && r.inputs.name === "dbt_ci"));
        assert.strictEqual(parse((await resolve(wh.profilesYaml)).value).redshift_development.target, "staging");
    });

    it("validate() names every bad field before anything registers", async () => {
        const bad: RedshiftWarehouseArgs = {
            ...SEED_003,
            database: "Dev",
            developers: [{ name: "anton" }, { name: "Maria" }],
            customSchemas: ["staging", "bad-name"],
            productionSchemas: ["dbt", "anton"],
            pullRequestSchemaPrefix: "dbt-build-",
            auth: { method: "iam", clusterId: "Bad_Cluster", region: "mars" },
            deployTarget: "ci",
        };
        let message = "";
        try {
            RedshiftWarehouse.validate("rs", bad);
        } catch (e) {
            message = (e as Error).message;
        }
        for (const needle of [
            'RedshiftWarehouse rs: invalid arguments:',
            'database = "Dev"',
            'developers[1].name = "Maria"',
            'customSchemas[1] = "bad-name"',
            "schema anton is declared more than once",
            'pullRequestSchemaPrefix = "dbt-build-"',
            'auth.clusterId = "Bad_Cluster"',
            'auth.region = "mars"',
            'deployTarget = "ci"',
        ]) {
            assert.ok(message.includes(needle), `missing ${needle} in:\n${message}`);
        }
        const { resources } = await installMocks("redshift");
        assert.throws(() => new RedshiftWarehouse("rs", bad), /invalid arguments/);
        await new Promise((r) => setTimeout(r, 20));
        assert.deepStrictEqual(resources, [], "nothing registered, not even the component");
        assert.throws(() => RedshiftWarehouse.validate("rs", { ...SEED_003, productionSchemas: ["dbt_build_main"] }), /starts with pullRequestSchemaPrefix dbt_build_/);
        assert.throws(() => RedshiftWarehouse.validate("rs", { ...SEED_003, productionUser: "public" }), /productionUser = "public"/);
    });
});

describe("Redshift golden SQL (sql/redshift-*.sql)", () => {
    it("sql/redshift-seed003.sql is the plan's first apply, RBAC included and marked Redshift-only", async () => {
        const text =
            "-- SQL the redshift:* providers issue on the first apply of a seed-003 organisation (rbac: true), passwords redacted.\n" +
            "-- Generated by test/redshift-warehouse.test.ts with REDSHIFT_SQL_WRITE=1; do not edit.\n" +
            (await renderRedshiftPlanSql(RedshiftWarehouse.plan("rs", { ...SEED_003, rbac: true }), "dev"));
        assert.ok(!/PASSWORD '(?!\*\*\*')/.test(text), "passwords redacted");
        const at = (s: string) => {
            const i = text.indexOf(s);
            assert.ok(i >= 0, `plan lacks ${s}`);
            return i;
        };
        assert.ok(at('CREATE GROUP "grp_dev";') < at('ALTER GROUP "grp_dev" ADD USER "dbt_ci";'));
        assert.ok(at('CREATE USER "dbt_prod" PASSWORD \'***\';') < at('CREATE SCHEMA "dbt" AUTHORIZATION "dbt_prod";'));
        at(`COMMENT ON SCHEMA "dbt" IS 'managed by dbt-platform';`);
        at('ALTER DEFAULT PRIVILEGES FOR USER "dbt_prod" IN SCHEMA "dbt" GRANT SELECT ON TABLES TO GROUP "grp_dev";');
        at('ALTER DEFAULT PRIVILEGES FOR USER "dbt_prod" GRANT SELECT ON TABLES TO GROUP "grp_dev";');
        at('GRANT CREATE ON DATABASE "dev" TO "dbt_ci";');
        at('CREATE SCHEMA "anton_staging" AUTHORIZATION "anton";');
        at('-- Role role-dev (Redshift only: not executed on Postgres)\nCREATE ROLE "role_dev";');
        at('GRANT ROLE "role_prod" TO "dbt_prod";');
        golden("redshift-seed003.sql", text);
    });

    it("sql/redshift-only.sql lists every Redshift-only statement form the library can issue", () => {
        const g = { kind: "role" as const, name: "role_prod" };
        const statements: [string, string][] = [
            ["ALTER USER … PASSWORD DISABLE", redshiftSql.disablePassword("dbt_prod")],
            ["CREATE ROLE / DROP ROLE", `${redshiftSql.createRole("role_prod")};\n${redshiftSql.dropRole("role_prod")}`],
            ["GRANT ROLE … TO …", redshiftSql.grantRole("GRANT", "role_prod", { kind: "user", name: "dbt_prod" })],
            ["GRANT … TO ROLE …", redshiftSql.grantOnSchema("GRANT", ["USAGE", "CREATE"], "dbt", g)],
            ["GRANT DROP / ALTER / TRUNCATE ON TABLE …", redshiftSql.grantTablePrivilege("GRANT", ["ALTER", "DROP"], "dbt", "fact_dogs", g)],
            ["GRANT … FOR TABLES IN SCHEMA … DATABASE … (scoped permissions)", redshiftSql.scopedTables("GRANT", ["SELECT"], "dbt", "dev", g)],
        ];
        assert.deepStrictEqual(statements.map(([k]) => k), [...NOT_EXECUTED_ON_POSTGRES]);
        assert.throws(() => redshiftSql.scopedTables("GRANT", ["SELECT"], "dbt", "dev", { kind: "group", name: "grp_dev" }), /cannot be granted to groups/);
        const text =
            "-- Redshift-only statement forms: rendered here, never executed by the tests (Postgres 15 rejects them).\n" +
            statements.map(([k, s]) => `-- ${k}\n${s};`).join("\n") +
            "\n";
        golden("redshift-only.sql", text);
    });
});

describe("RedshiftServerless (optional namespace and workgroup)", () => {
    it("creates a namespace with a generated secret admin password and a private workgroup, and feeds RedshiftWarehouse", async () => {
        const { resources, settle } = await installMocks("redshift");
        const sls = new RedshiftServerless("rs", { namespaceName: "dbt-analytics", workgroupName: "dbt-wg", subnetIds: ["subnet-1"], securityGroupIds: ["sg-1"] });
        const wh = new RedshiftWarehouse("wh", { ...SEED_003, database: sls.dbName, connection: sls.adminConnection, auth: sls.iamAuth("eu-west-1") });
        await settle();
        const ns = find(resources, "aws:redshiftserverless/namespace:Namespace", "rs-namespace");
        assert.deepStrictEqual([ns.inputs.namespaceName, ns.inputs.dbName, ns.inputs.adminUsername], ["dbt-analytics", "dev", "dbt_admin"]);
        assert.ok(ns.secretInputs.includes("adminUserPassword"));
        assert.ok(!plainStrings(ns.inputs, ns.secretInputs).includes(ns.inputs.adminUserPassword));
        const wg = find(resources, "aws:redshiftserverless/workgroup:Workgroup", "rs-workgroup");
        assert.deepStrictEqual([wg.inputs.workgroupName, wg.inputs.namespaceName, wg.inputs.baseCapacity, wg.inputs.publiclyAccessible, wg.inputs.port], ["dbt-wg", "dbt-analytics", 8, false, 5439]);
        const user = find(resources, T("User"), "wh-user-dbt_prod");
        assert.strictEqual(user.inputs.connection.user, "dbt_admin");
        assert.strictEqual(user.inputs.connection.password, ns.inputs.adminUserPassword);
        const out = parse((await resolve(wh.profilesYaml)).value).redshift_development.outputs.prod;
        assert.deepStrictEqual([out.method, out.region, out.cluster_id], ["iam", "eu-west-1", undefined]);
    });

    it("validate() names bad names and capacities", () => {
        assert.throws(
            () => RedshiftServerless.validate("rs", { namespaceName: "NS", workgroupName: "wg", baseCapacity: 12, maxCapacity: 4 }),
            (e: Error) =>
                ['namespaceName = "NS"', 'workgroupName = "wg"', "baseCapacity = 12", "maxCapacity = 4"].every((n) => e.message.includes(n)),
        );
    });
});
