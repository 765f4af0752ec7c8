/**
 * SnowflakeWarehouse under Pulumi mocks: every role, membership, grant (privileges, object type,
 * all/future, level), ownership grant, warehouse and service-user key, asserted on the recorded
 * inputs by type and name; validation before registration; the contract outputs; and the plan as
 * reviewable SQL. (The mocks generate real RSA key pairs for tls.PrivateKey.)
 */
import assert from "assert";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import {
    inPullRequestFamily,
    publicKeyBody,
    pullRequestSchemaName,
    renderSnowflakeSql,
    normaliseSnowflake,
    SnowflakeWarehouse,
    SnowflakeWarehouseArgs,
    snowflakeAccessPlan,
    staleSnowflakeSql,
    writeFileLines,
} from "../components/warehouse";
import { find, installMocks, plainStrings, Recorded, resolve } from "../scripts/offline";

const S = {
    database: "snowflake:index/database:Database",
    warehouse: "snowflake:index/warehouse:Warehouse",
    accountRole: "snowflake:index/accountRole:AccountRole",
    databaseRole: "snowflake:index/databaseRole:DatabaseRole",
    grantDatabaseRole: "snowflake:index/grantDatabaseRole:GrantDatabaseRole",
    grantAccountRole: "snowflake:index/grantAccountRole:GrantAccountRole",
    toDatabaseRole: "snowflake:index/grantPrivilegesToDatabaseRole:GrantPrivilegesToDatabaseRole",
    toAccountRole: "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
    ownership: "snowflake:index/grantOwnership:GrantOwnership",
    serviceUser: "snowflake:index/serviceUser:ServiceUser",
    networkPolicy: "snowflake:index/networkPolicy:NetworkPolicy",
    provider: "pulumi:providers:snowflake",
    key: "tls:index/privateKey:PrivateKey",
} as const;

/** A seed-002-shaped organisation: ANALYTICS / ANALYTICS_DEV, three bots, one rotating its key. */
function seed002(overrides: Partial<SnowflakeWarehouseArgs> = {}): SnowflakeWarehouseArgs {
    return {
        account: "ACME-ANALYTICS",
        admin: { user: "PULUMI_ADMIN", privateKey: "-----BEGIN PRIVATE KEY-----\nadmin\n-----END PRIVATE KEY-----\n" },
        warehouses: { transform: { size: "SMALL", statementTimeoutSeconds: 7200 }, ci: { autoSuspendSeconds: 120 } },
        users: [
            { name: "SVC_DBT_CI", duty: "ci" },
            { name: "SVC_DBT_DEPLOY", duty: "deploy", secondKey: true, activeKey: 2 },
            { name: "SVC_DBT_SCHEDULER", duty: "scheduler" },
        ],
        networkPolicy: { allowedIpList: ["192.0.2.0/24"] },
        profile: "dbt_transform",
        ...overrides,
    };
}

async function declare(args: SnowflakeWarehouseArgs) {
    const { resources, settle } = await installMocks("snowflake");
    let wh: SnowflakeWarehouse | undefined;
    let error: unknown;
    try {
        wh = new SnowflakeWarehouse("analytics", args);
    } catch (e) {
        error = e;
    }
    await settle();
    return { resources, wh, error };
}

const fqn = (db: string, role: string) => `"${db}"."${role}"`;

describe("SnowflakeWarehouse (seed 002 under mocks)", () => {
    let resources: Recorded[];
    let wh: SnowflakeWarehouse;
    before(async function () {
        this.timeout(60_000);
        const r = await declare(seed002());
        if (r.error) throw r.error;
        resources = r.resources;
        wh = r.wh!;
    });
    const r = (type: string, suffix: string) => find(resources, type, `analytics-${suffix}`);
    const ofType = (type: string) => resources.filter((x) => x.type === type);

    it("registers every child under the component, named after it", () => {
        const component = find(resources, "dbt-platform:warehouse:SnowflakeWarehouse", "analytics");
        for (const x of resources.filter((y) => y !== component)) {
            assert.strictEqual(x.parent, component.urn, `${x.name} must be a child of the warehouse`);
            assert.ok(x.name.startsWith("analytics-"), `${x.name} must be named after its parent`);
        }
    });

    it("logs in as SYSADMIN and SECURITYADMIN with the admin's key pair, the key a secret", () => {
        for (const role of ["SYSADMIN", "SECURITYADMIN"]) {
            const p = r(S.provider, role.toLowerCase());
            assert.strictEqual(p.inputs.organizationName, "ACME");
            assert.strictEqual(p.inputs.accountName, "ANALYTICS");
            assert.strictEqual(p.inputs.user, "PULUMI_ADMIN");
            assert.strictEqual(p.inputs.authenticator, "SNOWFLAKE_JWT");
            assert.strictEqual(p.inputs.role, role);
            assert.strictEqual(p.inputs.password, undefined);
            assert.ok(p.secretInputs.includes("privateKey"), "the admin key must reach the engine as a secret");
        }
        const sys = r(S.provider, "sysadmin").urn;
        for (const x of [...ofType(S.database), ...ofType(S.warehouse), ...ofType(S.databaseRole)]) assert.ok(x.provider.startsWith(`${sys}::`), `${x.name} is created as SYSADMIN`);
        const sec = r(S.provider, "securityadmin").urn;
        const asSec = [S.accountRole, S.grantDatabaseRole, S.grantAccountRole, S.toDatabaseRole, S.toAccountRole, S.ownership, S.serviceUser, S.networkPolicy];
        for (const x of resources.filter((y) => asSec.includes(y.type as never))) assert.ok(x.provider.startsWith(`${sec}::`), `${x.name} is managed as SECURITYADMIN`);
    });

    it("creates the production and development databases", () => {
        assert.deepStrictEqual(r(S.database, "database-production").inputs, { name: "ANALYTICS", comment: "dbt production (managed by dbt-platform)" });
        assert.deepStrictEqual(r(S.database, "database-development").inputs, { name: "ANALYTICS_DEV", comment: "dbt development (managed by dbt-platform)" });
        assert.strictEqual(ofType(S.database).length, 2);
    });

    it("creates one virtual warehouse per duty with size, auto-suspend, auto-resume and statement timeout", () => {
        const expected = {
            transform: { name: "TRANSFORMING", warehouseSize: "SMALL", autoSuspend: 60, statementTimeoutInSeconds: 7200 },
            ci: { name: "CI", warehouseSize: "XSMALL", autoSuspend: 120, statementTimeoutInSeconds: 3600 },
            reporting: { name: "REPORTING", warehouseSize: "XSMALL", autoSuspend: 60, statementTimeoutInSeconds: 3600 },
        };
        for (const [duty, e] of Object.entries(expected)) {
            assert.deepStrictEqual(r(S.warehouse, `warehouse-${duty}`).inputs, { ...e, autoResume: "true", initiallySuspended: true, comment: `dbt ${duty} (managed by dbt-platform)` });
        }
        assert.strictEqual(ofType(S.warehouse).length, 3);
    });

    it("creates the functional roles as account roles and the access roles as database roles", () => {
        assert.deepStrictEqual(ofType(S.accountRole).map((x) => [x.name, x.inputs.name]).sort(), [
            ["analytics-role-ci", "TRANSFORMER_CI"],
            ["analytics-role-reporter", "REPORTER"],
            ["analytics-role-transformer", "TRANSFORMER"],
        ]);
        assert.deepStrictEqual(ofType(S.databaseRole).map((x) => [x.name, x.inputs.database, x.inputs.name]).sort(), [
            ["analytics-access-development-read", "ANALYTICS_DEV", "ANALYTICS_DEV_READ"],
            ["analytics-access-development-write", "ANALYTICS_DEV", "ANALYTICS_DEV_WRITE"],
            ["analytics-access-production-read", "ANALYTICS", "ANALYTICS_READ"],
            ["analytics-access-production-write", "ANALYTICS", "ANALYTICS_WRITE"],
        ]);
    });

    it("grants access roles to functional roles and the functional roles to SYSADMIN", () => {
        const dbMemberships: Record<string, string>[] = ofType(S.grantDatabaseRole).map((x) => ({ name: x.name, ...x.inputs }));
        assert.deepStrictEqual(dbMemberships.sort((a, b) => a.name.localeCompare(b.name)), [
            { name: "analytics-membership-development-read-to-development-write", databaseRoleName: fqn("ANALYTICS_DEV", "ANALYTICS_DEV_READ"), parentDatabaseRoleName: fqn("ANALYTICS_DEV", "ANALYTICS_DEV_WRITE") },
            { name: "analytics-membership-development-write-to-ci", databaseRoleName: fqn("ANALYTICS_DEV", "ANALYTICS_DEV_WRITE"), parentRoleName: "TRANSFORMER_CI" },
            { name: "analytics-membership-production-read-to-ci", databaseRoleName: fqn("ANALYTICS", "ANALYTICS_READ"), parentRoleName: "TRANSFORMER_CI" },
            { name: "analytics-membership-production-read-to-production-write", databaseRoleName: fqn("ANALYTICS", "ANALYTICS_READ"), parentDatabaseRoleName: fqn("ANALYTICS", "ANALYTICS_WRITE") },
            { name: "analytics-membership-production-read-to-reporter", databaseRoleName: fqn("ANALYTICS", "ANALYTICS_READ"), parentRoleName: "REPORTER" },
            { name: "analytics-membership-production-write-to-transformer", databaseRoleName: fqn("ANALYTICS", "ANALYTICS_WRITE"), parentRoleName: "TRANSFORMER" },
        ]);
        for (const role of ["TRANSFORMER", "TRANSFORMER_CI", "REPORTER"]) {
            const key = role === "TRANSFORMER_CI" ? "ci" : role.toLowerCase();
            assert.deepStrictEqual(r(S.grantAccountRole, `membership-${key}-to-sysadmin`).inputs, { roleName: role, parentRoleName: "SYSADMIN" });
        }
        // The CI role never writes production; the reporter never writes anywhere.
        assert.ok(!dbMemberships.some((m) => m.databaseRoleName === fqn("ANALYTICS", "ANALYTICS_WRITE") && m.parentRoleName !== "TRANSFORMER"));
        assert.ok(!dbMemberships.some((m) => m.parentRoleName === "REPORTER" && m.databaseRoleName !== fqn("ANALYTICS", "ANALYTICS_READ")));
    });

    it("grants privileges on current and future objects at database level, to the access roles", () => {
        const got = ofType(S.toDatabaseRole).map((x) => ({ name: x.name.replace("analytics-grant-", ""), ...x.inputs })).sort((a, b) => a.name.localeCompare(b.name));
        const expected: Record<string, unknown>[] = [];
        for (const [key, db] of [["development", "ANALYTICS_DEV"], ["production", "ANALYTICS"]] as const) {
            const read = fqn(db, `${db}_READ`);
            const write = fqn(db, `${db}_WRITE`);
            const objects = (level: string, role: string, types: [string, string[]][]) =>
                types.flatMap(([plural, privileges]) =>
                    (["all", "future"] as const).map((scope) => ({ name: `${key}-${level}-${plural.toLowerCase()}-${scope}`, databaseRoleName: role, privileges, onSchemaObject: { [scope]: { objectTypePlural: plural, inDatabase: db } } })),
                );
            expected.push(
                { name: `${key}-read-database`, databaseRoleName: read, privileges: ["USAGE"], onDatabase: db },
                { name: `${key}-read-schemas-all`, databaseRoleName: read, privileges: ["USAGE"], onSchema: { allSchemasInDatabase: db } },
                { name: `${key}-read-schemas-future`, databaseRoleName: read, privileges: ["USAGE"], onSchema: { futureSchemasInDatabase: db } },
                ...objects("read", read, [["TABLES", ["SELECT"]], ["VIEWS", ["SELECT"]]]),
                { name: `${key}-write-database`, databaseRoleName: write, privileges: ["CREATE SCHEMA"], onDatabase: db },
                { name: `${key}-write-schemas-all`, databaseRoleName: write, privileges: ["CREATE TABLE", "CREATE VIEW"], onSchema: { allSchemasInDatabase: db } },
                { name: `${key}-write-schemas-future`, databaseRoleName: write, privileges: ["CREATE TABLE", "CREATE VIEW"], onSchema: { futureSchemasInDatabase: db } },
                ...objects("write", write, [["TABLES", ["INSERT", "UPDATE", "DELETE", "TRUNCATE"]]]),
            );
        }
        expected.sort((a, b) => String(a.name).localeCompare(String(b.name)));
        assert.deepStrictEqual(got, expected);
    });

    it("declares no schema-level grant (it would override the database-level future grants)", () => {
        for (const x of [...ofType(S.toDatabaseRole), ...ofType(S.toAccountRole), ...ofType(S.ownership)]) {
            const text = JSON.stringify(x.inputs);
            assert.ok(!/inSchema|schemaName/.test(text), `${x.name} is schema-level: ${text}`);
        }
    });

    it("lets each functional role use only its warehouse", () => {
        const got = ofType(S.toAccountRole).map((x) => [x.name, x.inputs]).sort();
        assert.deepStrictEqual(got, [
            ["analytics-grant-warehouse-ci", { accountRoleName: "TRANSFORMER_CI", privileges: ["USAGE"], onAccountObject: { objectType: "WAREHOUSE", objectName: "CI" } }],
            ["analytics-grant-warehouse-reporting", { accountRoleName: "REPORTER", privileges: ["USAGE"], onAccountObject: { objectType: "WAREHOUSE", objectName: "REPORTING" } }],
            ["analytics-grant-warehouse-transform", { accountRoleName: "TRANSFORMER", privileges: ["USAGE"], onAccountObject: { objectType: "WAREHOUSE", objectName: "TRANSFORMING" } }],
        ]);
    });

    it("gives TRANSFORMER future ownership of production schemas, tables and views (role masking's counterpart)", () => {
        const got = ofType(S.ownership).map((x) => [x.name, x.inputs]).sort();
        assert.deepStrictEqual(got, [
            ["analytics-ownership-production-schemas-future", { accountRoleName: "TRANSFORMER", on: { future: { objectTypePlural: "SCHEMAS", inDatabase: "ANALYTICS" } } }],
            ["analytics-ownership-production-tables-future", { accountRoleName: "TRANSFORMER", on: { future: { objectTypePlural: "TABLES", inDatabase: "ANALYTICS" } } }],
            ["analytics-ownership-production-views-future", { accountRoleName: "TRANSFORMER", on: { future: { objectTypePlural: "VIEWS", inDatabase: "ANALYTICS" } } }],
        ]);
        // Both production bots act as TRANSFORMER, so either can replace what the other built.
        assert.strictEqual(r(S.serviceUser, "user-SVC_DBT_DEPLOY").inputs.defaultRole, "TRANSFORMER");
        assert.strictEqual(r(S.serviceUser, "user-SVC_DBT_SCHEDULER").inputs.defaultRole, "TRANSFORMER");
        assert.deepStrictEqual(wh.dbtProjectConfig, { models: { "+copy_grants": true } });
    });

    it("creates key-pair service users without passwords, the public key without PEM header, one functional role each", async () => {
        const keys = Object.fromEntries(ofType(S.key).map((k) => [k.name, k]));
        assert.deepStrictEqual(Object.keys(keys).sort(), [
            "analytics-user-SVC_DBT_CI-key-1",
            "analytics-user-SVC_DBT_DEPLOY-key-1",
            "analytics-user-SVC_DBT_DEPLOY-key-2",
            "analytics-user-SVC_DBT_SCHEDULER-key-1",
        ]);
        for (const k of Object.values(keys)) assert.deepStrictEqual(k.inputs, { algorithm: "RSA", rsaBits: 2048 });
        const expected = {
            SVC_DBT_CI: ["TRANSFORMER_CI", "CI"],
            SVC_DBT_DEPLOY: ["TRANSFORMER", "TRANSFORMING"],
            SVC_DBT_SCHEDULER: ["TRANSFORMER", "TRANSFORMING"],
        } as const;
        for (const [user, [role, warehouse]] of Object.entries(expected)) {
            const u = r(S.serviceUser, `user-${user}`).inputs;
            assert.strictEqual(u.name, user);
            assert.strictEqual(u.defaultRole, role);
            assert.strictEqual(u.defaultWarehouse, warehouse);
            assert.strictEqual(u.defaultSecondaryRolesOption, "NONE");
            assert.strictEqual(u.networkPolicy, "DBT_SERVICE_USERS");
            assert.ok(!("password" in u), `${user} must have no password`);
            const pem = keys[`analytics-user-${user}-key-1`].state.publicKeyPem as string;
            assert.strictEqual(u.rsaPublicKey, publicKeyBody(pem));
            assert.match(u.rsaPublicKey, /^MII[A-Za-z0-9+/]+=*$/, "one line, no header or footer");
            assert.deepStrictEqual(r(S.grantAccountRole, `user-${user}-role`).inputs, { roleName: role, userName: user });
        }
        // Rotation: the deploy bot carries a second key and its target uses it.
        const deploy = r(S.serviceUser, "user-SVC_DBT_DEPLOY").inputs;
        assert.strictEqual(deploy.rsaPublicKey2, publicKeyBody(keys["analytics-user-SVC_DBT_DEPLOY-key-2"].state.publicKeyPem));
        assert.notStrictEqual(deploy.rsaPublicKey2, deploy.rsaPublicKey);
        assert.strictEqual(r(S.serviceUser, "user-SVC_DBT_CI").inputs.rsaPublicKey2, undefined);
        const targets = (await resolve(wh.targets)).value;
        const publicOf = (privatePem: string) => publicKeyBody(crypto.createPublicKey(privatePem).export({ type: "spki", format: "pem" }) as string);
        assert.strictEqual(publicOf(targets.prod.private_key), deploy.rsaPublicKey2, "prod uses key 2 (activeKey: 2)");
        assert.strictEqual(publicOf(targets.ci.private_key), r(S.serviceUser, "user-SVC_DBT_CI").inputs.rsaPublicKey);
        assert.strictEqual(publicOf(targets.scheduler.private_key), r(S.serviceUser, "user-SVC_DBT_SCHEDULER").inputs.rsaPublicKey);
    });

    it("never puts a private key into any resource's plain inputs", async () => {
        const targets = (await resolve(wh.targets)).value;
        const bodies = Object.values(targets).map((t) => t.private_key.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "").slice(0, 64));
        for (const x of resources) {
            const plain = plainStrings(x.inputs, x.secretInputs).join("\n").replace(/\s+/g, "");
            for (const b of bodies) assert.ok(!plain.includes(b), `${x.type} ${x.name} carries a private key in plain text`);
        }
    });

    it("declares the network policy the service users are attached to", () => {
        assert.deepStrictEqual(r(S.networkPolicy, "network-policy").inputs, { name: "DBT_SERVICE_USERS", allowedIpLists: ["192.0.2.0/24"], comment: "dbt service users (managed by dbt-platform)" });
    });

    it("exports the contract: targets, seed-002 credential JSON and environment as secrets, profiles with env_var() only", async () => {
        assert.deepStrictEqual(wh.targetNames, { ci: "ci", deploy: "prod", scheduler: "scheduler" });
        assert.deepStrictEqual(wh.adapter, { type: "snowflake", package: "dbt-snowflake", version: "1.11.6" });
        const targets = await resolve(wh.targets);
        assert.strictEqual(targets.secret, true);
        const { private_key: _ci, ...ci } = targets.value.ci;
        assert.deepStrictEqual(ci, { account: "ACME-ANALYTICS", user: "SVC_DBT_CI", role: "TRANSFORMER_CI", warehouse: "CI", database: "ANALYTICS_DEV", schema: "DBT_CI" });
        const { private_key: _prod, ...prod } = targets.value.prod;
        assert.deepStrictEqual(prod, { account: "ACME-ANALYTICS", user: "SVC_DBT_DEPLOY", role: "TRANSFORMER", warehouse: "TRANSFORMING", database: "ANALYTICS", schema: "ANALYTICS" });
        assert.match(targets.value.prod.private_key, /^-----BEGIN PRIVATE KEY-----\n/, "PKCS#8 PEM, as dbt-snowflake's private_key_path reads");

        const secrets = await resolve(wh.credentialSecrets);
        assert.strictEqual(secrets.secret, true);
        for (const t of ["ci", "prod", "scheduler"]) {
            const doc = JSON.parse(secrets.value[t]);
            assert.deepStrictEqual(Object.keys(doc), ["account", "user", "role", "warehouse", "database", "schema", "private_key"]);
            assert.strictEqual(doc.private_key, targets.value[t].private_key);
        }

        const env = await resolve(wh.profileEnvironment);
        assert.strictEqual(env.secret, true);
        assert.deepStrictEqual(wh.targetEnv.ci.map((v) => [v.name, v.secret, v.file?.pathVariable ?? "", v.perRun ?? ""]), [
            ["DBT_CI_ACCOUNT", false, "", ""],
            ["DBT_CI_USER", false, "", ""],
            ["DBT_CI_ROLE", false, "", ""],
            ["DBT_CI_WAREHOUSE", false, "", ""],
            ["DBT_CI_DATABASE", false, "", ""],
            ["DBT_CI_SCHEMA", false, "", "pull-request-schema"],
            ["DBT_CI_PRIVATE_KEY", true, "DBT_CI_PRIVATE_KEY_PATH", ""],
        ]);
        assert.strictEqual(wh.targetEnv.prod.find((v) => v.field === "schema")!.perRun, undefined);

        const yaml = (await resolve(wh.profilesYaml)).value;
        const profile = parse(yaml).dbt_transform;
        assert.strictEqual(profile.target, "ci");
        for (const [t, out] of Object.entries<any>(profile.outputs)) {
            const T = t.toUpperCase();
            assert.deepStrictEqual(out, {
                type: "snowflake",
                account: `{{ env_var('DBT_${T}_ACCOUNT') }}`,
                user: `{{ env_var('DBT_${T}_USER') }}`,
                role: `{{ env_var('DBT_${T}_ROLE') }}`,
                warehouse: `{{ env_var('DBT_${T}_WAREHOUSE') }}`,
                database: `{{ env_var('DBT_${T}_DATABASE') }}`,
                schema: `{{ env_var('DBT_${T}_SCHEMA') }}`,
                private_key_path: `{{ env_var('DBT_${T}_PRIVATE_KEY_PATH') }}`,
                threads: 4,
                client_session_keep_alive: false,
            });
        }
        // Every variable profiles.yml reads is exported or is a key file's path, and nothing else.
        const referenced = new Set([...yaml.matchAll(/env_var\('([A-Z0-9_]+)'\)/g)].map((m) => m[1]));
        const provided = new Set(Object.values(wh.targetEnv).flat().map((v) => v.file?.pathVariable ?? v.name));
        assert.deepStrictEqual([...referenced].sort(), [...provided].sort());
        assert.deepStrictEqual(Object.keys(env.value).sort(), Object.values(wh.targetEnv).flat().map((v) => v.name).sort());
        for (const v of Object.values(env.value)) if (v.length >= 20) assert.ok(!yaml.includes(v), "no credential value may appear in profiles.yml");
    });

    it("exposes the access plan as data, the same one the resources were declared from", () => {
        const plan = wh.accessPlan;
        assert.deepStrictEqual(SnowflakeWarehouse.accessPlan("analytics", seed002()), plan);
        assert.deepStrictEqual(plan.roles.map((x) => [x.kind, x.database ?? "", x.name]), [
            ["functional", "", "TRANSFORMER"],
            ["functional", "", "TRANSFORMER_CI"],
            ["functional", "", "REPORTER"],
            ["access", "ANALYTICS", "ANALYTICS_READ"],
            ["access", "ANALYTICS", "ANALYTICS_WRITE"],
            ["access", "ANALYTICS_DEV", "ANALYTICS_DEV_READ"],
            ["access", "ANALYTICS_DEV", "ANALYTICS_DEV_WRITE"],
            ["system", "", "SYSADMIN"],
        ]);
        assert.deepStrictEqual(plan.logins, [
            { name: "SVC_DBT_CI", duty: "ci", roles: [{ name: "TRANSFORMER_CI" }], sessionRole: { name: "TRANSFORMER_CI" }, auth: "key-pair" },
            { name: "SVC_DBT_DEPLOY", duty: "deploy", roles: [{ name: "TRANSFORMER" }], sessionRole: { name: "TRANSFORMER" }, auth: "key-pair" },
            { name: "SVC_DBT_SCHEDULER", duty: "scheduler", roles: [{ name: "TRANSFORMER" }], sessionRole: { name: "TRANSFORMER" }, auth: "key-pair" },
        ]);
        // One resource per plan entry, no more.
        assert.strictEqual(resources.filter((x) => x.type === S.toDatabaseRole || x.type === S.toAccountRole).length, plan.grants.length);
        assert.strictEqual(resources.filter((x) => x.type === S.ownership).length, plan.ownerships.length);
        assert.strictEqual(resources.filter((x) => x.name.startsWith("analytics-membership-")).length, plan.memberships.length);
    });

    it("names PR schemas CI_PR_<n> in the development database, with the custom-schema family", () => {
        const spec = wh.pullRequestSchemas;
        assert.deepStrictEqual({ ...spec, dropMacro: undefined }, { prefix: "CI_PR_", database: "ANALYTICS_DEV", case: "upper", createdBy: "dbt", dropMacroName: "dbt_platform_drop_pr_schema", dropMacro: undefined });
        assert.strictEqual(pullRequestSchemaName(spec, 42), "CI_PR_42");
        assert.ok(inPullRequestFamily(spec, 42, "ci_pr_42_staging"));
        assert.ok(!inPullRequestFamily(spec, 4, "CI_PR_42"));
        assert.match(spec.dropMacro, /\{% macro dbt_platform_drop_pr_schema\(schema_name\) %\}/);
        assert.match(spec.dropMacro, /startswith\(schema_name, '\{\{ base \}\}_'\)/);
    });
});

describe("SnowflakeWarehouse variants", () => {
    it("without a network policy or second key declares neither", async () => {
        const { resources, wh, error } = await declare(seed002({ networkPolicy: undefined, users: [{ name: "SVC_DBT_DEPLOY", duty: "deploy" }] }));
        assert.ifError(error);
        assert.strictEqual(resources.filter((x) => x.type === S.networkPolicy).length, 0);
        const user = find(resources, S.serviceUser, "analytics-user-SVC_DBT_DEPLOY").inputs;
        assert.strictEqual(user.networkPolicy, undefined);
        assert.strictEqual(user.rsaPublicKey2, undefined);
        assert.deepStrictEqual(wh!.targetNames, { deploy: "prod" });
        assert.strictEqual(parse((await resolve(wh!.profilesYaml)).value).dbt_transform.target, "prod");
    });

    it("with existing databases registers no Database but still grants on them", async () => {
        const { resources, error } = await declare(seed002({ createDatabases: false }));
        assert.ifError(error);
        assert.strictEqual(resources.filter((x) => x.type === S.database).length, 0);
        assert.strictEqual(find(resources, S.toDatabaseRole, "analytics-grant-production-read-database").inputs.onDatabase, "ANALYTICS");
    });

    it("with an endpoint (fakesnow, PrivateLink) adds host, port and protocol to targets, secret and profile", async () => {
        const { wh, error } = await declare(seed002({ endpoint: { host: "127.0.0.1", port: 8123, protocol: "http" }, deployTarget: "staging" }));
        assert.ifError(error);
        assert.deepStrictEqual(wh!.credentialFields, ["account", "user", "role", "warehouse", "database", "schema", "private_key", "host", "port", "protocol"]);
        const out = parse((await resolve(wh!.profilesYaml)).value).dbt_transform.outputs.staging;
        assert.strictEqual(out.port, "{{ env_var('DBT_STAGING_PORT') | int }}");
        assert.strictEqual(out.protocol, "{{ env_var('DBT_STAGING_PROTOCOL') }}");
        const doc = JSON.parse((await resolve(wh!.credentialSecrets)).value.staging);
        assert.deepStrictEqual([doc.host, doc.port, doc.protocol], ["127.0.0.1", "8123", "http"]);
    });
});

describe("SnowflakeWarehouse validation", () => {
    const cases: [string, Partial<SnowflakeWarehouseArgs>, RegExp][] = [
        ["an account without organization", { account: "ANALYTICS" }, /account = "ANALYTICS": expected an account identifier <organization>-<account>/],
        ["a lower-case database", { productionDatabase: "analytics" }, /productionDatabase = "analytics": expected an upper-case identifier/],
        ["the same database twice", { developmentDatabase: "ANALYTICS" }, /developmentDatabase: must differ from productionDatabase/],
        ["a reserved schema name", { productionSchema: "TABLE" }, /productionSchema = "TABLE": expected a name other than the reserved keyword TABLE/],
        ["a system role as functional role", { roles: { transformer: "SYSADMIN" } }, /roles\.transformer = "SYSADMIN": expected a role other than the system role SYSADMIN/],
        ["an unknown size", { warehouses: { ci: { size: "HUGE" } } }, /warehouses\.ci\.size = "HUGE": expected one of XSMALL/],
        ["a too-short auto-suspend", { warehouses: { reporting: { autoSuspendSeconds: 5 } } }, /warehouses\.reporting\.autoSuspendSeconds = 5: expected a whole number of seconds from 60/],
        ["a statement timeout over 7 days", { warehouses: { transform: { statementTimeoutSeconds: 700_000 } } }, /warehouses\.transform\.statementTimeoutSeconds = 700000/],
        ["no deploy user", { users: [{ name: "SVC_DBT_CI", duty: "ci" }] }, /users: expected a deploy user/],
        ["two ci users", { users: [{ name: "A", duty: "deploy" }, { name: "B", duty: "ci" }, { name: "C", duty: "ci" }] }, /users: expected at most one ci user, found 2/],
        ["a quote in a user name", { users: [{ name: 'SVC"; DROP USER X; --', duty: "deploy" }] }, /users\[0\]\.name = .*expected an upper-case identifier/],
        ["key 2 active without a second key", { users: [{ name: "SVC", duty: "deploy", activeKey: 2 }] }, /users\[0\]\.activeKey = 2: needs secondKey: true/],
        ["a bad CIDR", { networkPolicy: { allowedIpList: ["10.0.0.0/33"] } }, /networkPolicy\.allowedIpList\[0\] = "10\.0\.0\.0\/33": expected an IPv4 address or CIDR/],
        ["a lower-case PR prefix", { pullRequestPrefix: "ci_pr_" }, /pullRequestPrefix = "ci_pr_": expected an upper-case schema name prefix/],
        ["a CI schema inside the PR family", { ciSchema: "CI_PR_7" }, /ciSchema = "CI_PR_7": must not look like a pull-request schema CI_PR_<n>/],
        ["deploy target ci", { deployTarget: "ci" }, /deployTarget = "ci": expected a target name other than ci, scheduler/],
        ["no admin or providers", { admin: undefined }, /admin: expected an admin login/],
        ["rsaBits 1024", { rsaBits: 1024 as 2048 }, /rsaBits = 1024: expected 2048 or 4096/],
    ];
    for (const [what, overrides, message] of cases) {
        it(`rejects ${what}, naming the field, before registering anything`, async () => {
            assert.throws(() => SnowflakeWarehouse.validate("analytics", seed002(overrides)), message);
            const { resources, error } = await declare(seed002(overrides));
            assert.match(String((error as Error)?.message), message);
            assert.match(String((error as Error)?.message), /^SnowflakeWarehouse analytics: invalid arguments:/);
            assert.deepStrictEqual(resources.map((x) => x.name), [], "nothing may be registered");
        });
    }

    it("accepts the provider's hyphenated sizes and stores the canonical one", () => {
        assert.strictEqual(normaliseSnowflake("x", seed002({ warehouses: { ci: { size: "x-small" }, transform: { size: "2X-LARGE" } } })).warehouses.transform.size, "XXLARGE");
    });
});

describe("Snowflake access plan as SQL", () => {
    const model = normaliseSnowflake("analytics", seed002());
    const sql = renderSnowflakeSql("analytics", model);

    it("is a pure function of the arguments", () => {
        assert.strictEqual(SnowflakeWarehouse.renderSql("analytics", seed002()), sql);
        assert.strictEqual(staleSnowflakeSql(sql, sql), undefined);
        assert.match(staleSnowflakeSql(sql.replace("TRUNCATE", "TRUNCATE, REFERENCES"), sql)!, /^line \d+: committed ".*REFERENCES.*", expected/);
    });

    it("renders one statement per planned grant, membership and ownership, with quoted identifiers", () => {
        const plan = snowflakeAccessPlan(model);
        const lines = sql.split("\n");
        assert.strictEqual(lines.filter((l) => /^GRANT (?!OWNERSHIP|ROLE|DATABASE ROLE)/.test(l)).length, plan.grants.length);
        assert.strictEqual(lines.filter((l) => /^GRANT OWNERSHIP/.test(l)).length, plan.ownerships.length);
        for (const line of [
            'GRANT USAGE ON FUTURE SCHEMAS IN DATABASE "ANALYTICS_DEV" TO DATABASE ROLE "ANALYTICS_DEV"."ANALYTICS_DEV_READ";',
            'GRANT SELECT ON ALL VIEWS IN DATABASE "ANALYTICS" TO DATABASE ROLE "ANALYTICS"."ANALYTICS_READ";',
            'GRANT CREATE SCHEMA ON DATABASE "ANALYTICS_DEV" TO DATABASE ROLE "ANALYTICS_DEV"."ANALYTICS_DEV_WRITE";',
            'GRANT DATABASE ROLE "ANALYTICS"."ANALYTICS_READ" TO ROLE "TRANSFORMER_CI";',
            'GRANT ROLE "TRANSFORMER" TO ROLE "SYSADMIN";',
            'GRANT OWNERSHIP ON FUTURE TABLES IN DATABASE "ANALYTICS" TO ROLE "TRANSFORMER";',
            'GRANT USAGE ON WAREHOUSE "TRANSFORMING" TO ROLE "TRANSFORMER";',
            'CREATE NETWORK POLICY IF NOT EXISTS "DBT_SERVICE_USERS" ALLOWED_IP_LIST = (\'192.0.2.0/24\');',
            'GRANT ROLE "TRANSFORMER" TO USER "SVC_DBT_DEPLOY";',
        ]) {
            assert.ok(lines.includes(line), `missing: ${line}`);
        }
        assert.ok(lines.some((l) => l.startsWith('CREATE WAREHOUSE IF NOT EXISTS "TRANSFORMING" WAREHOUSE_SIZE = SMALL AUTO_SUSPEND = 60 AUTO_RESUME = TRUE INITIALLY_SUSPENDED = TRUE STATEMENT_TIMEOUT_IN_SECONDS = 7200')));
        const deploy = lines.find((l) => l.startsWith('CREATE USER IF NOT EXISTS "SVC_DBT_DEPLOY"'))!;
        assert.match(deploy, /TYPE = SERVICE DEFAULT_ROLE = "TRANSFORMER" DEFAULT_WAREHOUSE = "TRANSFORMING" RSA_PUBLIC_KEY = '<public key of analytics-user-SVC_DBT_DEPLOY-key-1>' RSA_PUBLIC_KEY_2 = '<public key of analytics-user-SVC_DBT_DEPLOY-key-2>' NETWORK_POLICY = "DBT_SERVICE_USERS"/);
        assert.ok(!lines.some((l) => !l.startsWith("--") && /PASSWORD/i.test(l)), "no passwords anywhere");
        assert.ok(!/IN SCHEMA/.test(sql), "no schema-level grants");
    });
});

describe("contract helpers", () => {
    const keyVar = { field: "private_key", name: "DBT_CI_PRIVATE_KEY", secret: true, file: { pathVariable: "DBT_CI_PRIVATE_KEY_PATH", path: "${RUNNER_TEMP:-/tmp}/dbt-platform/ci.p8" } };
    const pem = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;

    it("renders the lines that write a file variable with mode 600 and export its path", () => {
        assert.deepStrictEqual(writeFileLines([keyVar, { field: "user", name: "DBT_CI_USER", secret: false }]), [
            'export DBT_CI_PRIVATE_KEY_PATH="${RUNNER_TEMP:-/tmp}/dbt-platform/ci.p8"',
            'mkdir -p "$(dirname "$DBT_CI_PRIVATE_KEY_PATH")"',
            "(umask 077 && printf '%s\\n' \"$DBT_CI_PRIVATE_KEY\" > \"$DBT_CI_PRIVATE_KEY_PATH\")",
            'chmod 600 "$DBT_CI_PRIVATE_KEY_PATH"',
        ]);
    });

    for (const base64 of [false, true]) {
        it(`writes the key file in bash${base64 ? " from a base64 variable (Bitbucket)" : ""}: mode 600, the exact PEM, a usable key`, () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sf-keyfile-"));
            try {
                const script = ["set -eu", ...writeFileLines([keyVar], { base64 }), 'stat -c %a "$DBT_CI_PRIVATE_KEY_PATH"', 'echo "$DBT_CI_PRIVATE_KEY_PATH"'].join("\n");
                const value = base64 ? Buffer.from(pem).toString("base64") : pem;
                const r = spawnSync("bash", ["--noprofile", "--norc", "-c", script], { env: { PATH: process.env.PATH, RUNNER_TEMP: dir, DBT_CI_PRIVATE_KEY: value }, encoding: "utf8" });
                assert.strictEqual(r.status, 0, r.stderr);
                const [mode, file] = r.stdout.trim().split("\n");
                assert.strictEqual(mode, "600");
                assert.strictEqual(file, path.join(dir, "dbt-platform", "ci.p8"));
                assert.strictEqual(fs.readFileSync(file, "utf8").trim(), pem.trim());
                assert.strictEqual(crypto.createPrivateKey(fs.readFileSync(file)).asymmetricKeyType, "rsa");
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });
    }
});
