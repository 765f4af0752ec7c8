/** Unit tests under Pulumi mocks: the recorded inputs of what PostgresWarehouse declares. */
import assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { PostgresWarehouse } from "../components";
import { createSql, POSTGRES_TYPES, redactPasswords, renderScript } from "../components/warehouse/postgres/providerSql";
import { PROGRAM_SECRET_OUTPUTS } from "../policy/policies";
import { sqlPlan } from "../scripts/sql-plan";
import { find, installMocks, Recorded, resolve, ROOT, runProgram, stackConfig } from "../scripts/offline";

const T = POSTGRES_TYPES;
const STACKS = ["dev", "sandbox", "staging", "prod"] as const;

/** All URNs `r` waits for, directly or transitively. */
function ancestors(resources: Recorded[], r: Recorded): Set<string> {
    const byUrn = new Map(resources.map((x) => [x.urn, x]));
    const seen = new Set<string>();
    const stack = [...r.dependencies];
    while (stack.length) {
        const u = stack.pop()!;
        if (seen.has(u)) continue;
        seen.add(u);
        stack.push(...(byUrn.get(u)?.dependencies ?? []));
    }
    return seen;
}

describe("program under mocks", () => {
    for (const stack of STACKS) {
        it(`evaluates the ${stack} stack`, async () => {
            const { resources, exports } = await runProgram(stack);
            assert.ok(resources.length > 10, `${stack}: expected resources, got ${resources.length}`);
            const platform = find(resources, "dbt-platform:index:DbtPlatform", `dbt-${stack}`);
            const wh = find(resources, "dbt-platform:warehouse:PostgresWarehouse", `dbt-${stack}-warehouse`);
            assert.strictEqual(wh.parent, platform.urn);
            for (const r of resources.filter((x) => x.type.startsWith("postgresql:") || x.type.startsWith("random:"))) {
                assert.strictEqual(r.parent, wh.urn, `${r.name} must be a child of the warehouse`);
                assert.ok(r.name.startsWith(`dbt-${stack}-warehouse-`), `${r.name} must be named after its parent`);
            }
            const yaml = (await resolve(exports.profilesYaml)).value as string;
            assert.ok(parse(yaml).acme_analytics.outputs, `${stack}: profiles.yml must parse`);
            // The policy pack exempts these outputs because the SDK hides secretness from it: prove it here.
            for (const key of PROGRAM_SECRET_OUTPUTS) {
                if (key === "docsBasicAuth" && exports[key] === undefined) continue; // only with basic-auth docs (platform.test.ts)
                assert.strictEqual((await resolve(exports[key])).secret, true, `${stack}: output ${key} must be a secret`);
            }
        });
    }
});

describe("PostgresWarehouse (dev stack)", () => {
    let resources: Recorded[];
    let exports: Record<string, pulumi.Output<any>>;
    before(async () => {
        ({ resources, exports } = await runProgram("dev"));
    });
    const r = (type: string, suffix: string) => find(resources, type, `dbt-dev-warehouse-${suffix}`);

    it("creates the group roles without login", () => {
        assert.deepStrictEqual(r(T.role, "role-dev").inputs, { name: "role_dev", login: false, inherit: true });
        assert.deepStrictEqual(r(T.role, "role-prod").inputs, { name: "role_prod", login: false, inherit: true });
    });

    it("creates bot logins in their group role with role masking", () => {
        const expected: Record<string, string> = { dev_ci: "role_dev", dbt_bitbucket: "role_prod", dbt_scheduler: "role_prod" };
        for (const [user, group] of Object.entries(expected)) {
            const { inputs } = r(T.role, `user-${user}`);
            assert.strictEqual(inputs.name, user);
            assert.strictEqual(inputs.login, true);
            assert.deepStrictEqual(inputs.roles, [group]);
            assert.strictEqual(inputs.assumeRole, group, `${user} must be masked to ${group}`);
            assert.match(inputs.password, /^[A-Za-z0-9]{40}$/);
        }
    });

    it("pins every bot's search_path: the platform schema, an explicit pg_catalog, its group's schema, read-only public", () => {
        const expected: Record<string, string> = { dev_ci: "dbt_ci", dbt_bitbucket: "analytics", dbt_scheduler: "analytics" };
        for (const [user, own] of Object.entries(expected)) {
            assert.deepStrictEqual(r(T.role, `user-${user}`).inputs.searchPaths, ["dbt_platform", "pg_catalog", own, "public"], user);
        }
        for (const dev of ["anton", "maria"]) assert.strictEqual(r(T.role, `developer-${dev}`).inputs.searchPaths, undefined);
    });

    it("shadows pg_terminate_backend with a SECURITY DEFINER function in the admin-owned platform schema", () => {
        const schema = r(T.schema, "schema-platform");
        assert.deepStrictEqual(schema.inputs, { name: "dbt_platform", database: "analytics_dev", ifNotExists: true, dropCascade: true });
        const fn = r(T.function, "function-terminate-backend");
        assert.deepStrictEqual(
            { ...fn.inputs, body: undefined },
            {
                database: "analytics_dev", schema: "dbt_platform", name: "pg_terminate_backend",
                args: [{ name: "pid", type: "integer" }, { name: "timeout", type: "bigint", default: "0" }],
                returns: "boolean", language: "plpgsql", securityDefiner: true, body: undefined,
            },
        );
        assert.ok(fn.dependencies.includes(schema.urn));
        // Runs as the admin: everything it calls is schema-qualified, and it checks the caller's login.
        assert.match(fn.inputs.body, /a\.usename OPERATOR\(pg_catalog\.=\) SESSION_USER/);
        assert.match(fn.inputs.body, /RETURN pg_catalog\.pg_terminate_backend\(\$1, \$2\)/);
        for (const g of ["dev", "prod"]) {
            assert.deepStrictEqual(r(T.grant, `grant-${g}-usage-platform`).inputs.privileges, ["USAGE"]);
            assert.ok(r(T.grant, `grant-${g}-usage-platform`).dependencies.includes(fn.urn));
        }
    });

    it("lets the dev role create only its schema families, through a SECURITY DEFINER create_schema", () => {
        const fn = r(T.function, "function-create-schema");
        assert.deepStrictEqual({ ...fn.inputs, body: undefined }, {
            database: "analytics_dev", schema: "dbt_platform", name: "create_schema", args: [{ name: "schema_name", type: "text" }],
            returns: "void", language: "plpgsql", securityDefiner: true, body: undefined,
        });
        const body: string = fn.inputs.body;
        assert.ok(body.includes("'^(dbt_pr_[0-9]+|dbt_ci)(_[a-z0-9_]+)?$'"), "PR and CI families");
        assert.ok(body.includes("SESSION_USER OPERATOR(pg_catalog.=) 'anton' AND schema_name OPERATOR(pg_catalog.~) '^dbt_anton_[a-z0-9_]+$'"));
        assert.ok(body.includes("SESSION_USER OPERATOR(pg_catalog.=) 'maria' AND schema_name OPERATOR(pg_catalog.~) '^dbt_maria_[a-z0-9_]+$'"));
        for (const name of ["public", "information_schema", "dbt_platform", "role_dev", "role_prod", "dev_ci", "dbt_bitbucket", "dbt_scheduler", "anton", "maria"]) {
            assert.ok(body.includes(`'${name}'`), `${name} must be reserved`);
        }
        // No unqualified operator or cast: a caller may set its own search_path before calling.
        assert.doesNotMatch(body.replace(/OPERATOR\(pg_catalog\.[=~>]\)|ERRCODE = /g, ""), /[^:]\s[=~]\s|::(?!pg_catalog\.)/);
        assert.ok(!resources.some((x) => x.type === T.grantRole), "a superuser admin needs no membership");
    });

    it("generates one secret password per login with random.RandomPassword", () => {
        const passwords = resources.filter((x) => x.type === "random:index/randomPassword:RandomPassword");
        assert.deepStrictEqual(passwords.map((p) => p.name).sort(), [
            "dbt-dev-warehouse-developer-anton-password",
            "dbt-dev-warehouse-developer-maria-password",
            "dbt-dev-warehouse-user-dbt_bitbucket-password",
            "dbt-dev-warehouse-user-dbt_scheduler-password",
            "dbt-dev-warehouse-user-dev_ci-password",
        ]);
        passwords.forEach((p) => assert.deepStrictEqual(p.inputs, { length: 40, special: false }));
        const all = resources.filter((x) => x.type === T.role && x.inputs.login).map((x) => x.inputs.password);
        assert.strictEqual(new Set(all).size, all.length, "passwords must differ");
    });

    it("creates developers unmasked, each owning a private schema", () => {
        for (const [dev, schema] of [["anton", "dbt_anton"], ["maria", "dbt_maria"]]) {
            const role = r(T.role, `developer-${dev}`).inputs;
            assert.deepStrictEqual(role.roles, ["role_dev"]);
            assert.strictEqual(role.assumeRole, undefined);
            assert.deepStrictEqual(r(T.schema, `schema-${schema}`).inputs, {
                name: schema, database: "analytics_dev", owner: dev, ifNotExists: true, dropCascade: true,
            });
        }
    });

    it("retains production on destroy and drops only what the stack alone owns", () => {
        const retained = resources.filter((x) => x.type.startsWith("postgresql:index/") && x.retainOnDelete).map((x) => x.name).sort();
        assert.deepStrictEqual(retained, [
            "dbt-dev-warehouse-database", "dbt-dev-warehouse-role-dev", "dbt-dev-warehouse-role-prod",
            "dbt-dev-warehouse-schema-analytics", "dbt-dev-warehouse-schema-staging",
        ]);
        for (const s of ["analytics", "staging"]) assert.strictEqual(r(T.schema, `schema-${s}`).inputs.dropCascade, false, `${s} must never cascade`);
        for (const s of ["dbt_ci", "dbt_anton", "dbt_maria", "platform"]) assert.strictEqual(r(T.schema, `schema-${s}`).inputs.dropCascade, true, `${s} is ours to drop`);
        assert.ok(resources.every((x) => x.importId === ""), "nothing is imported unless adoptRetained");
    });

    it("deletes logins through a provider on the warehouse database (REASSIGN/DROP OWNED run there)", () => {
        const onDb = find(resources, "pulumi:providers:postgresql", "dbt-dev-warehouse-provider-database");
        assert.strictEqual(onDb.inputs.database, "analytics_dev");
        assert.ok(onDb.dependencies.includes(r(T.database, "database").urn), "the provider connects after the database exists");
        for (const login of ["user-dev_ci", "user-dbt_bitbucket", "user-dbt_scheduler", "developer-anton", "developer-maria"]) {
            assert.ok(r(T.role, login).provider.startsWith(`${onDb.urn}::`), login);
        }
        assert.ok(r(T.role, "role-prod").provider.startsWith(`${find(resources, "pulumi:providers:postgresql", "dbt-dev-warehouse-provider").urn}::`));
    });

    it("creates the CI schema owned by role_dev and production schemas owned by role_prod", () => {
        assert.strictEqual(r(T.schema, "schema-dbt_ci").inputs.owner, "role_dev");
        for (const s of ["analytics", "staging"]) assert.strictEqual(r(T.schema, `schema-${s}`).inputs.owner, "role_prod");
    });

    it("grants CONNECT and TEMPORARY on the database to both group roles, CREATE to the prod role only, and revokes PUBLIC", () => {
        const expected: Record<string, string[]> = { dev: ["CONNECT", "TEMPORARY"], prod: ["CONNECT", "CREATE", "TEMPORARY"] };
        for (const g of ["dev", "prod"]) {
            assert.deepStrictEqual(r(T.grant, `grant-${g}-database`).inputs, {
                database: "analytics_dev", role: `role_${g}`, objectType: "database", privileges: expected[g],
            });
        }
        assert.deepStrictEqual(r(T.grant, "grant-public-database").inputs, { database: "analytics_dev", role: "public", objectType: "database", privileges: [] });
        assert.deepStrictEqual(r(T.grant, "grant-public-schema").inputs, { database: "analytics_dev", role: "public", schema: "public", objectType: "schema", privileges: ["USAGE"] });
    });

    it("gives the dev role read-only access to production, now and for later objects", () => {
        for (const s of ["analytics", "staging"]) {
            assert.deepStrictEqual(r(T.grant, `grant-dev-usage-${s}`).inputs.privileges, ["USAGE"]);
            assert.deepStrictEqual(r(T.grant, `grant-dev-select-${s}`).inputs, {
                database: "analytics_dev", role: "role_dev", schema: s, objectType: "table", privileges: ["SELECT"],
            });
            assert.deepStrictEqual(r(T.defaultPrivileges, `defaults-dev-select-${s}`).inputs, {
                database: "analytics_dev", owner: "role_prod", role: "role_dev", schema: s, objectType: "table", privileges: ["SELECT"],
            });
        }
        // Custom schemas the prod bots create at run time, and their tables, stay readable too.
        assert.deepStrictEqual(r(T.defaultPrivileges, "defaults-dev-schemas").inputs, {
            database: "analytics_dev", owner: "role_prod", role: "role_dev", objectType: "schema", privileges: ["USAGE"],
        });
        assert.deepStrictEqual(r(T.defaultPrivileges, "defaults-dev-tables").inputs, {
            database: "analytics_dev", owner: "role_prod", role: "role_dev", objectType: "table", privileges: ["SELECT"],
        });
        const prodGrants = resources.filter((x) => (x.type === T.grant || x.type === T.defaultPrivileges) && x.inputs.role === "role_dev");
        for (const g of prodGrants) {
            assert.ok(g.inputs.privileges.every((p: string) => ["USAGE", "SELECT", "CONNECT", "CREATE", "TEMPORARY"].includes(p)), `${g.name}: ${g.inputs.privileges}`);
            if (g.inputs.schema) assert.ok(!g.inputs.privileges.includes("CREATE"), `${g.name} must not allow CREATE in production`);
        }
    });

    it("declares one Grant per (role, database, schema, object type)", () => {
        const keys = resources
            .filter((x) => x.type === T.grant || x.type === T.defaultPrivileges)
            .map((x) => `${x.type}|${x.inputs.role}|${x.inputs.database}|${x.inputs.schema ?? ""}|${x.inputs.objectType}`);
        assert.strictEqual(new Set(keys).size, keys.length);
    });

    it("never lets two privilege changes on the same role or object run concurrently", () => {
        const privileged = resources.filter((x) => x.type === T.grant || x.type === T.defaultPrivileges);
        assert.ok(privileged.length >= 8);
        const target = (x: Recorded) => `${x.inputs.database}|${x.inputs.objectType === "database" ? "" : x.inputs.schema}`;
        let pairs = 0;
        for (const a of privileged) {
            for (const b of privileged) {
                if (a === b || a.urn > b.urn) continue;
                if (a.inputs.role !== b.inputs.role && target(a) !== target(b)) continue;
                pairs++;
                const ordered = ancestors(resources, a).has(b.urn) || ancestors(resources, b).has(a.urn);
                assert.ok(ordered, `${a.name} and ${b.name} touch the same role or object but may run concurrently`);
            }
        }
        assert.ok(pairs > 10, `expected many related pairs, checked ${pairs}`);
    });

    it("orders every grant after the roles and schemas it names", () => {
        for (const g of resources.filter((x) => x.type === T.grant || x.type === T.defaultPrivileges)) {
            const deps = ancestors(resources, g);
            const names = resources.filter((x) => deps.has(x.urn));
            if (g.inputs.role !== "public") assert.ok(names.some((x) => x.type === T.role && x.inputs.name === g.inputs.role), `${g.name} before its role`);
            // Schema public exists in every database; every other schema is declared and must come first.
            if (g.inputs.schema && g.inputs.schema !== "public") {
                assert.ok(names.some((x) => x.type === T.schema && x.inputs.name === g.inputs.schema), `${g.name} before its schema`);
            }
            assert.ok(names.some((x) => x.type === T.database), `${g.name} before the database`);
        }
    });

    it("exports connection settings per target with passwords as secrets", async () => {
        const targets = await resolve(exports.dbtTargets);
        assert.strictEqual(targets.secret, true);
        assert.deepStrictEqual(Object.keys(targets.value).sort(), ["ci", "prod", "scheduler"]);
        const roles = Object.fromEntries(resources.filter((x) => x.type === T.role && x.inputs.login).map((x) => [x.inputs.name, x.inputs.password]));
        const expect = { ci: ["dev_ci", "dbt_ci"], prod: ["dbt_bitbucket", "analytics"], scheduler: ["dbt_scheduler", "analytics"] } as const;
        for (const [t, [user, schema]] of Object.entries(expect)) {
            assert.deepStrictEqual(targets.value[t], {
                host: "127.0.0.1", port: 54329, user, password: roles[user], dbname: "analytics_dev", schema,
            });
        }
        const devs = await resolve(exports.developerTargets);
        assert.strictEqual(devs.secret, true);
        assert.deepStrictEqual(Object.keys(devs.value).sort(), ["anton", "maria"]);
        assert.strictEqual(devs.value.maria.schema, "dbt_maria");
        const env = await resolve(exports.profileEnvironment);
        assert.strictEqual(env.secret, true);
        assert.strictEqual(env.value.DBT_CI_PASSWORD, roles.dev_ci);
        assert.strictEqual(env.value.DBT_PROD_SCHEMA, "analytics");
    });

    it("renders profiles.yml with env_var() references only", async () => {
        const { value: yaml, secret } = await resolve(exports.profilesYaml);
        assert.strictEqual(secret, false, "profiles.yml carries no secret and need not be one");
        const doc = parse(yaml as string);
        const profile = doc.acme_analytics;
        assert.strictEqual(profile.target, "ci");
        assert.deepStrictEqual(Object.keys(profile.outputs), ["ci", "prod", "scheduler"]);
        for (const [t, out] of Object.entries<any>(profile.outputs)) {
            const T_ = t.toUpperCase();
            assert.strictEqual(out.type, "postgres");
            assert.strictEqual(out.user, `{{ env_var('DBT_${T_}_USER') }}`);
            assert.strictEqual(out.password, `{{ env_var('DBT_${T_}_PASSWORD') }}`);
            assert.strictEqual(out.port, `{{ env_var('DBT_${T_}_PORT') | int }}`);
            assert.strictEqual(out.threads, 4);
        }
        const env = (await resolve(exports.profileEnvironment)).value as Record<string, string>;
        for (const value of Object.values(env)) {
            if (value.length >= 20) assert.ok(!(yaml as string).includes(value), "no credential value may appear in profiles.yml");
        }
        // Every variable the profile reads is exported, and none is left over.
        const referenced = [...(yaml as string).matchAll(/env_var\('([A-Z0-9_]+)'\)/g)].map((m) => m[1]).sort();
        assert.deepStrictEqual([...new Set(referenced)], Object.keys(env).sort());
    });
});

describe("PostgresWarehouse (other stacks and options)", () => {
    it("names the deploy target after the release stage and leaves out CI when none is declared", async () => {
        const { resources, exports } = await runProgram("staging");
        const targets = (await resolve(exports.dbtTargets)).value as Record<string, any>;
        assert.deepStrictEqual(Object.keys(targets).sort(), ["scheduler", "staging"]);
        assert.strictEqual(parse((await resolve(exports.profilesYaml)).value as string).acme_analytics.target, "staging");
        assert.ok(!resources.some((x) => x.type === T.schema && x.inputs.name === "dbt_ci"), "no CI schema without a CI user");
        assert.ok(!resources.some((x) => x.type === T.database), "release stages use an existing database");
        const provider = find(resources, "pulumi:providers:postgresql", "dbt-staging-warehouse-provider");
        assert.strictEqual(provider.inputs.sslmode, "verify-full");
        assert.strictEqual(provider.inputs.superuser, "false");
    });

    it("makes a non-superuser admin a member of both group roles, so create_schema can hand schemas to them", async () => {
        const { resources } = await runProgram("staging");
        const grants = resources.filter((x) => x.type === T.grantRole).map((x) => [x.name, x.inputs]);
        assert.deepStrictEqual(grants, [
            ["dbt-staging-warehouse-admin-in-dev", { role: "platform_admin", grantRole: "role_dev" }],
            ["dbt-staging-warehouse-admin-in-prod", { role: "platform_admin", grantRole: "role_prod" }],
        ]);
    });

    it("imports the retained database and group roles with adoptRetained", async () => {
        const { resources, settle } = await installMocks("dev");
        new PostgresWarehouse("adopt", {
            connection: { host: "db", port: 5432, username: "admin" },
            database: "analytics",
            createDatabase: true,
            adoptRetained: true,
            users: [{ name: "deploy_bot", duty: "deploy" }],
            productionSchemas: ["analytics"],
            profile: "p",
        });
        await settle();
        const imported = resources.filter((x) => x.importId).map((x) => [x.name, x.importId]);
        assert.deepStrictEqual(imported, [["adopt-database", "analytics"], ["adopt-role-dev", "role_dev"], ["adopt-role-prod", "role_prod"]]);
    });

    it("writes sslrootcert into profiles.yml when given, and validates it", async () => {
        const { resources, settle } = await installMocks("dev");
        const base = {
            connection: { host: "db", port: 5432, username: "admin" },
            database: "analytics",
            users: [{ name: "deploy_bot", duty: "deploy" as const }],
            productionSchemas: ["analytics"],
            profile: "p",
            dbtSslmode: "verify-full",
        };
        const wh = new PostgresWarehouse("tls", { ...base, dbtSslrootcert: "system" });
        const plain = new PostgresWarehouse("notls", base);
        await settle();
        assert.deepStrictEqual(parse((await resolve(wh.profilesYaml)).value as string).p.outputs.prod.sslrootcert, "system");
        assert.ok(!("sslrootcert" in parse((await resolve(plain.profilesYaml)).value as string).p.outputs.prod));
        // The CA path is the runner's, not the deploying machine's: the provider never gets it.
        assert.ok(resources.filter((x) => x.type === "pulumi:providers:postgresql").every((x) => x.inputs.sslrootcert === undefined));
        PostgresWarehouse.validate("v", { ...base, dbtSslrootcert: "/etc/ssl/certs/rds-global-bundle.pem" });
        for (const bad of ["relative/ca.pem", "/etc/{{ env_var('X') }}", "/a b.pem", "/x'.pem", ""]) {
            assert.throws(() => PostgresWarehouse.validate("v", { ...base, dbtSslrootcert: bad }), /dbtSslrootcert = .*: expected system or an absolute path/, bad);
        }
    });

    it("rejects reserved and family names as schema names", () => {
        const base = {
            connection: { host: "db", port: 5432, username: "admin" },
            database: "analytics",
            users: [{ name: "ci_bot", duty: "ci" as const }, { name: "deploy_bot", duty: "deploy" as const }],
            developers: [{ name: "ann" }],
            profile: "p",
        };
        const cases: [Partial<Parameters<typeof PostgresWarehouse.validate>[1]>, RegExp][] = [
            [{ productionSchemas: ["public"] }, /productionSchemas\[0\] = "public": expected a schema name that is not reserved/],
            [{ productionSchemas: ["pg_temp_1"] }, /productionSchemas\[0\] = "pg_temp_1": expected a name not starting with pg_/],
            [{ productionSchemas: ["information_schema"] }, /productionSchemas\[0\] = "information_schema"/],
            [{ productionSchemas: ["role_prod"] }, /productionSchemas\[0\] = "role_prod": expected a schema name that is not reserved/],
            [{ productionSchemas: ["deploy_bot"] }, /productionSchemas\[0\] = "deploy_bot": expected a schema name that is not reserved/],
            [{ productionSchemas: ["dbt_platform"] }, /productionSchemas\[0\] = "dbt_platform": expected a schema name that is not reserved/],
            [{ productionSchemas: ["analytics"], ciSchema: "role_dev" }, /ciSchema = "role_dev": expected a schema name that is not reserved/],
            [{ productionSchemas: ["analytics"], developers: [{ name: "ann", schema: "ci_bot" }] }, /developers\[0\]\.schema = "ci_bot"/],
            [{ productionSchemas: ["dbt_pr_1_x"] }, /productionSchemas\[0\] = "dbt_pr_1_x": expected a name outside the pull-request, CI and developer schema families/],
            [{ productionSchemas: ["dbt_ann_finance"] }, /productionSchemas\[0\] = "dbt_ann_finance": expected a name outside/],
            [{ productionSchemas: ["analytics"], pullRequestPrefix: "pg_pr_" }, /pullRequestPrefix = "pg_pr_"/],
        ];
        for (const [override, expected] of cases) {
            assert.throws(() => PostgresWarehouse.validate("v", { ...base, productionSchemas: [], ...override } as any), expected, JSON.stringify(override));
        }
        PostgresWarehouse.validate("v", { ...base, productionSchemas: ["analytics", "analytics_pr_1"] });
    });

    it("passes a secret admin password to the provider", async () => {
        const config = { ...stackConfig("prod"), "dbt-platform:warehouseAdminPassword": "s3cret-admin-pw" };
        const { resources } = await runProgram("prod", config, ["dbt-platform:warehouseAdminPassword"]);
        assert.strictEqual(find(resources, "pulumi:providers:postgresql", "dbt-prod-warehouse-provider").inputs.password, "s3cret-admin-pw");
    });

    it("leaves assumeRole off every login when role masking is switched off", async () => {
        const { resources, settle } = await installMocks("dev");
        new PostgresWarehouse("nomask", {
            connection: { host: "db", port: 5432, username: "admin" },
            database: "analytics",
            users: [{ name: "ci_bot", duty: "ci" }, { name: "deploy_bot", duty: "deploy" }],
            roleMasking: false,
            productionSchemas: ["analytics"],
            profile: "p",
        });
        await settle();
        const logins = resources.filter((x) => x.type === T.role && x.inputs.login);
        assert.strictEqual(logins.length, 2);
        logins.forEach((l) => assert.strictEqual(l.inputs.assumeRole, undefined));
    });

    it("rejects unsafe names before registering any child", async () => {
        const { resources, settle } = await installMocks("dev");
        assert.throws(
            () =>
                new PostgresWarehouse("bad", {
                    connection: { host: "db", port: 5432, username: "admin" },
                    database: "analytics",
                    users: [{ name: 'x"; drop table y; --', duty: "deploy" }, { name: "a", duty: "deploy" }],
                    productionSchemas: ["Analytics"],
                    profile: "p",
                }),
            (e: Error) =>
                /users\[0\]\.name = "x\\"; drop table y; --": expected a lower-case identifier/.test(e.message) &&
                /productionSchemas\[0\]/.test(e.message) &&
                /at most one deploy user, found 2/.test(e.message),
        );
        await settle();
        assert.deepStrictEqual(resources.filter((x) => x.name.startsWith("bad-")), []);
    });
});

describe("provider SQL translation", () => {
    it("quotes identifiers and literals, and masks the login's session role", () => {
        const step = createSql(T.role, "r", { name: 'we"ird', login: true, password: "it's", roles: ["role_prod"], assumeRole: "role_prod" });
        assert.deepStrictEqual(step.statements.map((s) => s.text), [
            `CREATE ROLE "we""ird" WITH ENCRYPTED PASSWORD 'it''s' VALID UNTIL 'infinity' CONNECTION LIMIT -1 NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT LOGIN`,
            `GRANT "role_prod" TO "we""ird"`,
            `ALTER ROLE "we""ird" SET ROLE "role_prod"`,
        ]);
    });

    it("revokes then grants, on ALL TABLES when no objects are named", () => {
        const step = createSql(T.grant, "g", { database: "db", role: "role_dev", schema: "analytics", objectType: "table", privileges: ["SELECT"] });
        assert.strictEqual(step.database, "db");
        assert.deepStrictEqual(step.statements.slice(1).map((s) => s.text), [
            `REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA "analytics" FROM "role_dev"`,
            `GRANT SELECT ON ALL TABLES IN SCHEMA "analytics" TO "role_dev"`,
        ]);
        const pub = createSql(T.grant, "p", { database: "db", role: "public", objectType: "database", privileges: [] });
        assert.deepStrictEqual(pub.statements.map((s) => s.text), [`REVOKE ALL PRIVILEGES ON DATABASE "db" FROM PUBLIC`]);
    });

    it("translates a Function as the provider's createFunction does", () => {
        const step = createSql(T.function, "f", {
            database: "db", schema: "s", name: "f", args: [{ name: "a", type: "integer" }, { name: "b", type: "bigint", default: "0" }],
            returns: "boolean", language: "plpgsql", securityDefiner: true, body: "BEGIN RETURN true; END;",
        });
        assert.strictEqual(step.database, "db");
        assert.strictEqual(
            step.statements[0].text,
            'CREATE FUNCTION "s"."f" (\n    a integer,\n    b bigint DEFAULT 0\n)\nRETURNS boolean\nLANGUAGE plpgsql\nSECURITY DEFINER\nAS $function$BEGIN RETURN true; END;$function$',
        );
    });

    it("renders a reviewable script with passwords redacted", () => {
        const script = renderScript([createSql(T.role, "r", { name: "u", login: true, password: "hunter2" })]);
        assert.ok(!script.includes("hunter2"));
        assert.match(script, /PASSWORD '\[secret\]'/);
        assert.strictEqual(redactPasswords("PASSWORD 'a''b' LOGIN"), "PASSWORD '[secret]' LOGIN");
    });
});

describe("SQL plans in sql/", () => {
    // Snowflake and Redshift stacks: the reviewable plan of their warehouse component (see scripts/sql-plan.ts).
    for (const stack of [...STACKS, "snowflake", "redshift"]) {
        it(`sql/${stack}.sql is what the program declares now`, async () => {
            const current = fs.readFileSync(path.join(ROOT, "sql", `${stack}.sql`), "utf8");
            assert.strictEqual(await sqlPlan(stack), current, `run: npm run sql -- --stack ${stack} --write`);
        });
    }

    it("orders the plan so every statement follows what it depends on and hides passwords", async () => {
        const plan = fs.readFileSync(path.join(ROOT, "sql", "dev.sql"), "utf8");
        const at = (s: string) => {
            const i = plan.indexOf(s);
            assert.ok(i >= 0, `plan lacks ${s}`);
            return i;
        };
        assert.ok(at(`CREATE ROLE "role_prod"`) < at(`GRANT "role_prod" TO "dbt_bitbucket"`));
        assert.ok(at(`CREATE SCHEMA IF NOT EXISTS "analytics"`) < at(`GRANT SELECT ON ALL TABLES IN SCHEMA "analytics"`));
        assert.ok(at(`CREATE DATABASE "analytics_dev"`) < at(`CREATE SCHEMA IF NOT EXISTS "dbt_ci"`));
        assert.ok(!/PASSWORD '(?!\[secret\])/.test(plan), "passwords must be redacted");
    });

    it("sql/snowflake.sql: the grant plan as SQL, key-pair users without keys or passwords", () => {
        const plan = fs.readFileSync(path.join(ROOT, "sql", "snowflake.sql"), "utf8");
        for (const s of [
            `CREATE DATABASE IF NOT EXISTS "ANALYTICS_DEV"`,
            `CREATE ROLE IF NOT EXISTS "TRANSFORMER"`,
            `CREATE USER IF NOT EXISTS "SVC_DBT_DEPLOY" TYPE = SERVICE DEFAULT_ROLE = "TRANSFORMER"`,
            `GRANT ROLE "TRANSFORMER_CI" TO USER "SVC_DBT_CI";`,
        ]) {
            assert.ok(plan.includes(s), `plan lacks ${s}`);
        }
        assert.ok(!/PASSWORD|BEGIN (RSA )?PRIVATE KEY|RSA_PUBLIC_KEY = '(?!<public key of )/.test(plan), "no credential in the plan");
    });

    it("sql/redshift.sql: one production identity owns production; passwords redacted", () => {
        const plan = fs.readFileSync(path.join(ROOT, "sql", "redshift.sql"), "utf8");
        for (const s of [`CREATE SCHEMA "dbt" AUTHORIZATION "dbt_prod";`, `CREATE SCHEMA "anton_staging" AUTHORIZATION "anton";`, `ALTER DEFAULT PRIVILEGES FOR USER "dbt_prod"`]) {
            assert.ok(plan.includes(s), `plan lacks ${s}`);
        }
        assert.deepStrictEqual(plan.match(/^CREATE USER "[a-z_]+"/gm), ['CREATE USER "dbt_prod"', 'CREATE USER "dbt_ci"', 'CREATE USER "anton"', 'CREATE USER "maria"'], "deploy and scheduler share dbt_prod");
        assert.ok(!/PASSWORD '(?!\*\*\*)/.test(plan), "passwords must be redacted");
    });
});
