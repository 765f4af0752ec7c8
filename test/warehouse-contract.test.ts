/**
 * PostgresWarehouse implements the warehouse contract (components/warehouse/contract.ts): its contract
 * fields agree with what it registers and renders, so the platform can read them instead of Postgres names.
 */
import assert from "assert";
import { parse } from "yaml";
import { DROP_SCHEMA_MACRO, dropSchemaMacro } from "../components/warehouse/postgres/macros";
import { CREATE_SCHEMA_MACRO, PostgresWarehouse, PostgresWarehouseArgs, pullRequestSchemaName, Warehouse } from "../components/warehouse";
import { installMocks, resolve } from "../scripts/offline";

const ARGS: PostgresWarehouseArgs = {
    connection: { host: "db.internal", port: 5432, username: "admin", password: "admin-password" },
    database: "analytics",
    users: [{ name: "svc_ci", duty: "ci" }, { name: "dbt_deploy", duty: "deploy" }, { name: "dbt_scheduler", duty: "scheduler" }],
    productionSchemas: ["analytics", "analytics_marts"],
    developers: [{ name: "alice", schema: "dev_alice" }],
    profile: "acme",
};

describe("PostgresWarehouse implements the warehouse contract", () => {
    let wh: Warehouse & PostgresWarehouse;
    before(async () => {
        const { settle } = await installMocks("dev");
        wh = new PostgresWarehouse("wh", ARGS);
        await settle();
    });

    it("names its kind, adapter and PR schemas (the existing macro, lower case)", () => {
        assert.strictEqual(wh.kind, "postgres");
        assert.deepStrictEqual(wh.adapter, { type: "postgres", package: "dbt-postgres", version: "1.11.0" });
        assert.deepStrictEqual(
            { ...wh.pullRequestSchemas, dropMacro: undefined, createMacro: undefined },
            { prefix: "dbt_pr_", database: "analytics", case: "lower", createdBy: "dbt", dropMacroName: DROP_SCHEMA_MACRO, dropMacro: undefined, dropMacroCall: "claim", createMacro: undefined },
        );
        // The reset claims the schema for its run; CI creates it through the platform's function.
        assert.strictEqual(wh.pullRequestSchemas.createMacro?.source, CREATE_SCHEMA_MACRO);
        assert.strictEqual(wh.pullRequestSchemas.dropMacro, dropSchemaMacro("dbt_pr_"));
        assert.strictEqual(pullRequestSchemaName(wh.pullRequestSchemas, 42), "dbt_pr_42");
    });

    it("targetEnv lists exactly the variables profiles.yml reads; only the password is secret; the CI schema is per run", async () => {
        const profiles = parse((await resolve(wh.profilesYaml)).value).acme.outputs as Record<string, Record<string, unknown>>;
        assert.deepStrictEqual(Object.keys(wh.targetEnv).sort(), Object.keys(profiles).sort());
        for (const [target, vars] of Object.entries(wh.targetEnv)) {
            const read = Object.values(profiles[target]).flatMap((v) => [...String(v).matchAll(/env_var\('([A-Z0-9_]+)'\)/g)].map((m) => m[1]));
            assert.deepStrictEqual(vars.map((v) => v.name).sort(), read.sort(), target);
            assert.deepStrictEqual(vars.filter((v) => v.secret).map((v) => v.field), ["password"], target);
            assert.deepStrictEqual(vars.filter((v) => v.perRun).map((v) => v.field), target === "ci" ? ["schema"] : [], target);
            assert.ok(vars.every((v) => !v.file), `${target}: Postgres has no file fields`);
        }
        const env = await resolve(wh.profileEnvironment);
        assert.ok(env.secret);
        assert.deepStrictEqual(Object.keys(env.value).sort(), Object.values(wh.targetEnv).flat().map((v) => v.name).sort());
    });

    it("credentialSecrets: one flat JSON of credentialFields per target, a secret, equal to the targets", async () => {
        const secrets = await resolve(wh.credentialSecrets);
        const targets = await resolve(wh.targets);
        assert.ok(secrets.secret);
        assert.deepStrictEqual(Object.keys(secrets.value).sort(), ["ci", "prod", "scheduler"]);
        for (const [t, json] of Object.entries(secrets.value)) {
            const doc = JSON.parse(json);
            assert.deepStrictEqual(Object.keys(doc), [...wh.credentialFields], t);
            for (const f of wh.credentialFields) assert.strictEqual(doc[f], String((targets.value[t] as unknown as Record<string, unknown>)[f]), `${t}.${f}`);
        }
    });

    it("accessPlan: group roles, masked bot logins, production read grants and ownerships", () => {
        const plan = wh.accessPlan;
        assert.deepStrictEqual(PostgresWarehouse.accessPlan("wh", ARGS), plan, "the static plan is the constructor's");
        assert.deepStrictEqual(plan.roles.map((r) => [r.name, r.kind]), [["role_dev", "group"], ["role_prod", "group"]]);
        assert.deepStrictEqual(
            plan.logins.map((l) => [l.name, l.duty, l.sessionRole?.name]),
            [["svc_ci", "ci", "role_dev"], ["dbt_deploy", "deploy", "role_prod"], ["dbt_scheduler", "scheduler", "role_prod"], ["alice", undefined, undefined]],
        );
        const select = plan.grants.filter((g) => g.privileges.includes("SELECT") && g.to.name === "role_dev");
        assert.deepStrictEqual(
            select.map((g) => [g.on.level, "schema" in g.on ? g.on.schema : undefined, "scope" in g.on ? g.on.scope : undefined, g.forCreator?.name]),
            [
                ["schema", "analytics", "all", undefined],
                ["schema", "analytics", "future", "role_prod"],
                ["schema", "analytics_marts", "all", undefined],
                ["schema", "analytics_marts", "future", "role_prod"],
                ["database", undefined, "future", "role_prod"],
            ],
        );
        assert.deepStrictEqual(
            plan.ownerships.map((o) => [o.on.level === "object" ? o.on.name : "?", o.to.name]),
            [["analytics", "role_prod"], ["analytics_marts", "role_prod"], ["dbt_ci", "role_dev"], ["dev_alice", "alice"]],
        );
        const masked = { ...ARGS, roleMasking: false };
        assert.ok(PostgresWarehouse.accessPlan("wh", masked).logins.every((l) => l.sessionRole === undefined), "no session role without role masking");
    });
});
