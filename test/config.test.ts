/**
 * Stack config schema: the four checked-in stacks parse with the right defaults, every kind of
 * bad value is rejected with the exact config path and a useful "expected" text, secrets never
 * reach the error message, and a bad config stops the program before any resource exists.
 */
import assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as util from "util";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { ConfigError, ConfigProblem, loadStackConfig, loadWarehouseSecrets, parseStackConfig, PostgresWarehouseConfig, StackConfig } from "../components/config";
import { installMocks, Recorded, ROOT, runProgram, stackConfig, toPulumiConfig } from "../scripts/offline";
import { DBT_CORE_VERSION, DBT_POSTGRES_VERSION, PYTHON_VERSION } from "../components/pipelines/versions";

const NS = "dbt-platform";
const ENV = `${NS}:environment`;
const DBT = `${NS}:dbt`;
const WH = `${NS}:warehouse`;
const CI = `${NS}:ci`;
const AWS = `${NS}:aws`;
const FEATURES = `${NS}:features`;

/** The dev stack's config map exactly as written in Pulumi.dev.yaml (objects, not JSON). */
const DEV_YAML: Record<string, any> = parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config;

/** A deep clone of the dev stack's config, changed by `mutate`, serialised as the Pulumi CLI does. */
function devWith(mutate: (c: Record<string, any>) => void): Record<string, string> {
    const c = structuredClone(DEV_YAML);
    mutate(c);
    return toPulumiConfig(c);
}

/** The Postgres section of a parsed config (the four Postgres stacks). */
function pg(c: StackConfig): PostgresWarehouseConfig {
    assert.strictEqual(c.warehouse.kind, "postgres");
    return c.warehouse as PostgresWarehouseConfig;
}

/** Parses `raw` expecting a ConfigError; returns it. */
function rejects(raw: Record<string, unknown>, stack = "dev", secretKeys: string[] = []): ConfigError {
    let caught: unknown;
    try {
        parseStackConfig(stack, raw, secretKeys);
    } catch (e) {
        caught = e;
    }
    assert.ok(caught !== undefined, "expected parseStackConfig to throw, but it accepted the config");
    assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
    return caught;
}

function describeProblems(problems: readonly ConfigProblem[]): string {
    return problems.map((p) => `${p.path}: ${p.expected}`).join("\n    ");
}

/** The one problem at exactly `at` whose expected text matches `expected`. */
function problemAt(err: ConfigError, at: string, expected: RegExp): ConfigProblem {
    const hit = err.problems.find((p) => p.path === at && expected.test(p.expected));
    assert.ok(hit, `no problem at ${at} expecting ${expected}; problems were:\n    ${describeProblems(err.problems)}`);
    return hit;
}

describe("stack config", () => {
    describe("checked-in stacks parse", () => {
        const parsed: Record<string, StackConfig> = {};
        for (const stack of ["dev", "sandbox", "staging", "prod", "snowflake", "redshift"]) {
            it(`Pulumi.${stack}.yaml is valid`, () => {
                parsed[stack] = parseStackConfig(stack, stackConfig(stack));
                assert.strictEqual(parsed[stack].stack, stack);
            });
        }

        it("dev: a development stack on the local Postgres, no cloud", () => {
            const c = parseStackConfig("dev", stackConfig("dev"));
            assert.deepStrictEqual(c.environment, { kind: "development", promotesFrom: undefined });
            // Tool versions default to the ones the end-to-end tests install.
            assert.deepStrictEqual(c.dbt, {
                profile: "acme_analytics",
                threads: 4,
                version: DBT_CORE_VERSION,
                adapterVersion: DBT_POSTGRES_VERSION,
                pythonVersion: PYTHON_VERSION,
                projectDir: ".",
                manifestMaxAgeHours: 240,
                fullBuildSchedule: "0 4 * * 0",
            });
            assert.deepStrictEqual(c.aws, { enabled: false, region: "eu-west-1", artifacts: { retentionDays: 90 }, docs: { access: "public", allowedCidrs: [], allowPublic: false, previewRetentionDays: 14 } });
            assert.deepStrictEqual(c.features, { docsSite: false, scheduledRuns: false, projectEvaluator: false });
            assert.deepStrictEqual(c.ci, { system: "bitbucket", repository: "acme-data/analytics-dbt", mainBranch: "main", manageSettings: false, approvers: [], azureRepositoryId: undefined, apiUrl: undefined, adoptExisting: false });
            const wh = c.warehouse;
            assert.strictEqual(wh.kind, "postgres");
            assert.deepStrictEqual(wh.connection, {
                host: "127.0.0.1",
                port: 54329,
                database: "analytics_dev",
                username: "postgres",
                sslmode: "disable",
                superuser: true, // default
            });
            assert.strictEqual(wh.createDatabase, true);
            assert.strictEqual(wh.roleMasking, true, "roleMasking defaults to true");
            assert.strictEqual(wh.revokePublicConnect, true, "revokePublicConnect defaults to true");
            assert.deepStrictEqual(wh.roles, { dev: "role_dev", prod: "role_prod" });
            assert.deepStrictEqual(wh.users, [
                { name: "dev_ci", role: "role_dev", duty: "ci" },
                { name: "dbt_bitbucket", role: "role_prod", duty: "deploy" },
                { name: "dbt_scheduler", role: "role_prod", duty: "scheduler" },
            ]);
            assert.deepStrictEqual(wh.schemas, { ci: "dbt_ci", production: ["analytics", "staging"], pullRequestPrefix: "dbt_pr_" });
            assert.deepStrictEqual(wh.developers, [
                { name: "anton", schema: "dbt_anton" }, // schema defaults to dbt_<name>
                { name: "maria", schema: "dbt_maria" },
            ]);
            assert.strictEqual(c.adminPasswordKey, undefined);
        });

        it("sandbox: first release stage, promotes from nothing, defaults filled in", () => {
            const c = parseStackConfig("sandbox", stackConfig("sandbox"));
            assert.strictEqual(c.environment.kind, "release");
            assert.strictEqual(c.environment.promotesFrom, undefined);
            assert.deepStrictEqual(c.aws, {
                enabled: true,
                region: "eu-west-1",
                artifacts: { retentionDays: 90 },
                docs: { access: "public", allowedCidrs: [], allowPublic: false, previewRetentionDays: 14 },
                bitbucket: {
                    workspaceUuid: "{3c5f1a2e-8d4b-4f6a-9c1e-2b7d5e8f0a13}",
                    repositoryUuid: "{9e2d7c41-5b3a-4e8f-a6d2-1c4b8f7e3a95}",
                    deploymentEnvironmentUuid: "{a1b2c3d4-0001-4f6a-9c1e-2b7d5e8f0a13}",
                },
            });
            assert.deepStrictEqual(c.features, { docsSite: false, scheduledRuns: false, projectEvaluator: true });
            assert.strictEqual(c.ci.mainBranch, "main", "mainBranch defaults to main");
            const wh = pg(c);
            assert.strictEqual(wh.createDatabase, false, "createDatabase defaults to false");
            assert.strictEqual(wh.connection.superuser, false);
            assert.strictEqual(wh.connection.sslmode, "verify-full");
            assert.strictEqual(wh.schemas.pullRequestPrefix, "dbt_pr_", "pullRequestPrefix defaults to dbt_pr_");
            assert.deepStrictEqual(wh.schemas.production, ["analytics", "staging", "marts"]);
            assert.deepStrictEqual(wh.developers, [], "developers default to none");
            assert.deepStrictEqual(wh.users.map((u) => u.duty), ["deploy", "scheduler"]);
            assert.strictEqual(c.dbt.threads, 8);
        });

        it("staging: promotes from sandbox", () => {
            const c = parseStackConfig("staging", stackConfig("staging"));
            assert.deepStrictEqual(c.environment, { kind: "release", promotesFrom: "sandbox" });
            assert.strictEqual(c.features.scheduledRuns, true);
            assert.strictEqual(c.features.docsSite, false);
            assert.strictEqual(pg(c).roleMasking, true);
        });

        it("prod: promotes from staging with ci, deploy and scheduler bots", () => {
            const c = parseStackConfig("prod", stackConfig("prod"));
            assert.deepStrictEqual(c.environment, { kind: "release", promotesFrom: "staging" });
            assert.deepStrictEqual(c.warehouse.users, [
                { name: "dev_ci", role: "role_dev", duty: "ci" },
                { name: "dbt_bitbucket", role: "role_prod", duty: "deploy" },
                { name: "dbt_cloud", role: "role_prod", duty: "scheduler" },
            ]);
            assert.deepStrictEqual(c.features, { docsSite: true, scheduledRuns: true, projectEvaluator: true });
            assert.deepStrictEqual(c.scheduledRuns, {
                schedules: [{ name: "nightly", cron: "cron(0 5 * * ? *)", timezone: "Europe/Berlin", maximumRetryAttempts: 2 }],
                runIntervalMinutes: 1440,
                heartbeatGraceMinutes: 60,
                network: { subnetIds: ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], securityGroupIds: ["sg-0123abcd"], assignPublicIp: false },
                cpu: 1024,
                memory: 2048,
                logRetentionDays: 90,
                alerts: [{ protocol: "email", endpoint: "data-alerts@acme.example" }],
                freshOnly: false,
                fullBuildEvery: 24,
                imageRetentionCount: 20,
                janitor: { ttlHours: 168, schedule: "0 3 * * *" },
            });
            assert.deepStrictEqual(c.aws.docs, {
                domain: "dbt-docs.acme.example",
                hostedZoneId: "Z0ACME1234567890",
                access: "ip-allowlist",
                allowedCidrs: ["203.0.113.0/24", "198.51.100.17/32"],
                allowPublic: false,
                previewRetentionDays: 14,
            });
            assert.strictEqual(c.aws.enabled, true);
            assert.strictEqual(pg(c).connection.host, "warehouse-prod.acme.internal");
            assert.strictEqual(pg(c).connection.superuser, false);
            assert.deepStrictEqual(pg(c).developers.map((d) => d.schema), ["dbt_anton", "dbt_maria", "dbt_kwame"]);
        });

        it("dbt.projectDir: a project in a subfolder of the repository", () => {
            const raw = stackConfig("dev");
            const dbt = JSON.parse(JSON.stringify(typeof raw[DBT] === "string" ? JSON.parse(raw[DBT]) : raw[DBT])) as Record<string, unknown>;
            raw[DBT] = JSON.stringify({ ...dbt, projectDir: "transform/dbt-project" });
            assert.strictEqual(parseStackConfig("dev", raw).dbt.projectDir, "transform/dbt-project");
        });

        it("accepts objects as plain values as well as JSON text", () => {
            const c = parseStackConfig("dev", { ...DEV_YAML });
            assert.strictEqual(pg(c).connection.port, 54329);
        });

        it("ignores other namespaces and records the secret admin password key", () => {
            const raw = { ...stackConfig("dev"), "aws:region": "us-east-1", [`${NS}:warehouseAdminPassword`]: "s3cr3t" };
            const c = parseStackConfig("dev", raw, [`${NS}:warehouseAdminPassword`]);
            assert.strictEqual(c.adminPasswordKey, `${NS}:warehouseAdminPassword`);
            assert.strictEqual(c.aws.region, "eu-west-1");
        });
    });

    describe("warehouse.adoptRetained and warehouse.connection.sslrootcert", () => {
        const WH = `${NS}:warehouse`;
        it("defaults adoptRetained to false and leaves sslrootcert unset", () => {
            const c = parseStackConfig("dev", stackConfig("dev"));
            assert.strictEqual(pg(c).adoptRetained, false);
            assert.strictEqual(pg(c).connection.sslrootcert, undefined);
        });
        it("accepts adoptRetained: true and sslrootcert system or an absolute path", () => {
            for (const cert of ["system", "/etc/ssl/certs/rds-global-bundle.pem"]) {
                const c = parseStackConfig("dev", devWith((d) => {
                    d[WH].adoptRetained = true;
                    d[WH].connection.sslrootcert = cert;
                }));
                assert.strictEqual(pg(c).adoptRetained, true);
                assert.strictEqual(pg(c).connection.sslrootcert, cert);
            }
        });
        it("rejects a non-boolean adoptRetained and an unsafe sslrootcert, naming the key", () => {
            problemAt(rejects(devWith((d) => (d[WH].adoptRetained = "yes"))), `${WH}.adoptRetained`, /true or false|boolean/);
            for (const bad of ["ca.pem", "/etc/{{ env_var('X') }}", "/a b.pem", 42]) {
                problemAt(rejects(devWith((d) => (d[WH].connection.sslrootcert = bad))), `${WH}.connection.sslrootcert`, /system or an absolute path/);
            }
        });
    });

    describe("CI tokens and ci.apiUrl (issue 9 §2)", () => {
        const TOKEN = "bbtok-secret-value-8e1f";
        const withToken = (key: string, value: string, mutate: (c: Record<string, any>) => void = () => undefined) => ({ ...devWith(mutate), [`${NS}:${key}`]: value });

        it("the token keys the README documents are accepted as secrets, for the stack's CI system", () => {
            assert.doesNotThrow(() => parseStackConfig("dev", withToken("bitbucketToken", TOKEN), [`${NS}:bitbucketToken`]));
            const azure = (c: Record<string, any>) => (c[CI] = { system: "azure-devops", repository: "acme/data/analytics-dbt" });
            assert.doesNotThrow(() => parseStackConfig("dev", withToken("azureDevopsToken", TOKEN, azure), [`${NS}:azureDevopsToken`]));
        });

        it("through the Pulumi runtime: `pulumi config set --secret bitbucketToken` passes loadStackConfig; plaintext fails naming the key", async () => {
            await installMocks("dev");
            try {
                pulumi.runtime.setAllConfig(withToken("bitbucketToken", TOKEN), [`${NS}:bitbucketToken`]);
                assert.strictEqual(loadStackConfig().ci.system, "bitbucket");
                pulumi.runtime.setAllConfig(withToken("bitbucketToken", TOKEN), []);
                assert.throws(() => loadStackConfig(), (e: Error) => e instanceof ConfigError && e.message.includes(`${NS}:bitbucketToken`) && !e.message.includes(TOKEN));
            } finally {
                pulumi.runtime.setAllConfig({}, []);
            }
        });

        it("a plaintext token, an empty one, or one for another CI system is an error naming the key, never showing the value", () => {
            const plain = rejects(withToken("bitbucketToken", TOKEN));
            problemAt(plain, `${NS}:bitbucketToken`, /a secret \(pulumi config set --secret bitbucketToken <token>\)/);
            assert.ok(!plain.message.includes(TOKEN), plain.message);
            problemAt(rejects(withToken("bitbucketToken", " ", undefined), "dev", [`${NS}:bitbucketToken`]), `${NS}:bitbucketToken`, /a non-empty token string/);
            const other = rejects(withToken("azureDevopsToken", TOKEN), "dev", [`${NS}:azureDevopsToken`]);
            problemAt(other, `${NS}:azureDevopsToken`, /no azureDevopsToken unless ci.system is azure-devops \(ci.system is bitbucket\)/);
            assert.ok(!other.message.includes(TOKEN), other.message);
            problemAt(rejects(withToken("githubToken", TOKEN), "dev", [`${NS}:githubToken`]), `${NS}:githubToken`, /no such key/);
        });

        it("ci.apiUrl: https (any path), or http to loopback only; trailing slash dropped", () => {
            const parsed = (url: string) => parseStackConfig("dev", devWith((c) => (c[CI].apiUrl = url))).ci.apiUrl;
            assert.strictEqual(parsed("https://bitbucket-proxy.acme.internal/2.0/"), "https://bitbucket-proxy.acme.internal/2.0");
            assert.strictEqual(parsed("http://127.0.0.1:8443/2.0"), "http://127.0.0.1:8443/2.0");
            assert.strictEqual(parsed("http://localhost:9000"), "http://localhost:9000");
            assert.strictEqual(parseStackConfig("dev", devWith(() => undefined)).ci.apiUrl, undefined);
        });

        it("ci.adoptExisting: a boolean, Bitbucket only", () => {
            assert.strictEqual(parseStackConfig("dev", devWith((c) => (c[CI].adoptExisting = true))).ci.adoptExisting, true);
            problemAt(rejects(devWith((c) => (c[CI].adoptExisting = "yes"))), `${CI}.adoptExisting`, /true or false/);
            const azure = devWith((c) => (c[CI] = { system: "azure-devops", repository: "acme/data/analytics-dbt", adoptExisting: true }));
            problemAt(rejects(azure), `${CI}.adoptExisting`, /only for ci.system bitbucket/);
        });

        const hostile: [string, unknown, RegExp][] = [
            ["plain http to a remote host", "http://bitbucket.acme.internal/2.0", /an https URL \(http only to a loopback host/],
            ["http to a host that only starts like loopback", "http://127.0.0.1.evil.example/2.0", /an https URL \(http only to a loopback host/],
            ["credentials in the URL", "https://bot:hunter2@bitbucket.acme.internal/2.0", /without credentials/],
            ["a query string", "https://bitbucket.acme.internal/2.0?token=x", /without a query string/],
            ["an empty query string", "https://bitbucket.acme.internal/2.0?", /without a query string/],
            ["a fragment", "https://bitbucket.acme.internal/2.0#frag", /without a fragment/],
            ["another scheme", "ftp://bitbucket.acme.internal/2.0", /an https URL/],
            ["not a URL", "bitbucket.acme.internal/2.0", /an absolute https URL/],
            ["not a string", 443, /an https URL \(a non-empty string\)/],
        ];
        for (const [name, value, expected] of hostile) {
            it(`ci.apiUrl rejects ${name}`, () => {
                const err = rejects(devWith((c) => (c[CI].apiUrl = value)));
                const p = problemAt(err, `${CI}.apiUrl`, expected);
                assert.match(p.expected, /the bitbucket API base, e\.g\. https:\/\/api\.bitbucket\.org\/2\.0/);
                assert.ok(!err.message.includes("hunter2"), err.message);
            });
        }
    });

    describe("rejects bad configs with the exact path", () => {
        const HOSTILE = `x"; drop table y; --`;
        const LOWER_IDENT = /a lower-case identifier: a letter or underscore/;
        const cases: { name: string; mutate: (c: Record<string, any>) => void; path: string; expected: RegExp }[] = [
            // environment
            { name: "missing environment key", mutate: (c) => delete c[ENV], path: ENV, expected: /an object with kind \(development or release\)/ },
            { name: "environment not an object", mutate: (c) => (c[ENV] = "development"), path: ENV, expected: /an object with keys kind, promotesFrom/ },
            { name: "environment.kind production", mutate: (c) => (c[ENV].kind = "production"), path: `${ENV}.kind`, expected: /one of development, release/ },
            { name: "environment.kind missing", mutate: (c) => delete c[ENV].kind, path: `${ENV}.kind`, expected: /this key is required/ },
            {
                name: "promotesFrom on a development stack",
                mutate: (c) => (c[ENV].promotesFrom = "sandbox"),
                path: `${ENV}.promotesFrom`,
                expected: /no promotesFrom on a development stack/,
            },
            // dbt
            { name: "missing dbt.profile", mutate: (c) => delete c[DBT].profile, path: `${DBT}.profile`, expected: /a value \(this key is required\)/ },
            { name: "dbt.profile with a dash", mutate: (c) => (c[DBT].profile = "acme-analytics"), path: `${DBT}.profile`, expected: /a dbt profile name/ },
            { name: "threads 0", mutate: (c) => (c[DBT].threads = 0), path: `${DBT}.threads`, expected: /an integer from 1 to 64/ },
            { name: "threads 65", mutate: (c) => (c[DBT].threads = 65), path: `${DBT}.threads`, expected: /an integer from 1 to 64/ },
            { name: 'threads "4" (a string)', mutate: (c) => (c[DBT].threads = "4"), path: `${DBT}.threads`, expected: /an integer from 1 to 64/ },
            { name: "threads 2.5", mutate: (c) => (c[DBT].threads = 2.5), path: `${DBT}.threads`, expected: /an integer from 1 to 64/ },
            { name: "dbt version range", mutate: (c) => (c[DBT].version = ">=1.10"), path: `${DBT}.version`, expected: /an exact version/ },
            { name: "dbt version with a shell word", mutate: (c) => (c[DBT].version = "1.10.0; rm -rf /"), path: `${DBT}.version`, expected: /an exact version/ },
            { name: "adapter version 1.9", mutate: (c) => (c[DBT].adapterVersion = "1.9"), path: `${DBT}.adapterVersion`, expected: /an exact version/ },
            { name: "python version 3", mutate: (c) => (c[DBT].pythonVersion = "3"), path: `${DBT}.pythonVersion`, expected: /a Python minor version/ },
            { name: "projectDir absolute", mutate: (c) => (c[DBT].projectDir = "/srv/dbt"), path: `${DBT}.projectDir`, expected: /a relative path such as transform\/dbt/ },
            { name: "projectDir leaving the repository", mutate: (c) => (c[DBT].projectDir = "dbt/../../etc"), path: `${DBT}.projectDir`, expected: /a path inside the repository/ },
            { name: "projectDir with a shell word", mutate: (c) => (c[DBT].projectDir = "dbt;rm"), path: `${DBT}.projectDir`, expected: /a relative path/ },
            { name: "projectDir with a trailing /", mutate: (c) => (c[DBT].projectDir = "transform/"), path: `${DBT}.projectDir`, expected: /no leading or trailing/ },
            // unknown keys
            {
                name: "unknown top-level key dbt-platform:warehose",
                mutate: (c) => (c[`${NS}:warehose`] = { kind: "postgres" }),
                path: `${NS}:warehose`,
                expected: /no such key; known keys are .*dbt-platform:warehouse\b/,
            },
            {
                name: "unknown nested key warehouse.connection.hots",
                mutate: (c) => (c[WH].connection.hots = "db.example.com"),
                path: `${WH}.connection.hots`,
                expected: /no such key; known keys of dbt-platform:warehouse\.connection are host, port/,
            },
            { name: "unknown key in a user", mutate: (c) => (c[WH].users[1].password = "x"), path: `${WH}.users[1].password`, expected: /no such key; known keys of .*users\[1\] are name, role, duty/ },
            // warehouse kind and connection
            { name: "missing warehouse", mutate: (c) => delete c[WH], path: WH, expected: /an object with kind \(postgres, snowflake or redshift\)/ },
            { name: "warehouse kind oracle", mutate: (c) => (c[WH].kind = "oracle"), path: `${WH}.kind`, expected: /one of postgres, redshift, snowflake/ },
            // A kind takes its own section: Postgres keys under kind redshift or snowflake are unknown there.
            { name: "warehouse kind redshift with a Postgres section", mutate: (c) => (c[WH].kind = "redshift"), path: `${WH}.createDatabase`, expected: /no such key; known keys of dbt-platform:warehouse are kind, connection, groups/ },
            { name: "warehouse kind snowflake with a Postgres section", mutate: (c) => (c[WH].kind = "snowflake"), path: `${WH}.account`, expected: /this key is required/ },
            { name: 'port "5432" (a string)', mutate: (c) => (c[WH].connection.port = "5432"), path: `${WH}.connection.port`, expected: /an integer from 1 to 65535/ },
            { name: "port 70000", mutate: (c) => (c[WH].connection.port = 70000), path: `${WH}.connection.port`, expected: /an integer from 1 to 65535/ },
            { name: "port 0", mutate: (c) => (c[WH].connection.port = 0), path: `${WH}.connection.port`, expected: /an integer from 1 to 65535/ },
            { name: "host with shell characters", mutate: (c) => (c[WH].connection.host = "db; rm -rf /"), path: `${WH}.connection.host`, expected: /a host name or IP address/ },
            { name: "missing connection.host", mutate: (c) => delete c[WH].connection.host, path: `${WH}.connection.host`, expected: /this key is required/ },
            { name: "sslmode on", mutate: (c) => (c[WH].connection.sslmode = "on"), path: `${WH}.connection.sslmode`, expected: /one of disable, allow, prefer, require, verify-ca, verify-full/ },
            // identifiers
            { name: "hostile user name", mutate: (c) => (c[WH].users[0].name = HOSTILE), path: `${WH}.users[0].name`, expected: LOWER_IDENT },
            { name: "hostile production schema", mutate: (c) => (c[WH].schemas.production[1] = HOSTILE), path: `${WH}.schemas.production[1]`, expected: LOWER_IDENT },
            { name: "hostile ci schema", mutate: (c) => (c[WH].schemas.ci = HOSTILE), path: `${WH}.schemas.ci`, expected: LOWER_IDENT },
            { name: "hostile developer schema", mutate: (c) => (c[WH].developers[1].schema = HOSTILE), path: `${WH}.developers[1].schema`, expected: LOWER_IDENT },
            { name: "hostile database name", mutate: (c) => (c[WH].connection.database = HOSTILE), path: `${WH}.connection.database`, expected: LOWER_IDENT },
            { name: "database name as a number", mutate: (c) => (c[WH].connection.database = 42), path: `${WH}.connection.database`, expected: /a database name \(string\)/ },
            { name: "upper-case developer name", mutate: (c) => (c[WH].developers[0].name = "Anton"), path: `${WH}.developers[0].name`, expected: LOWER_IDENT },
            { name: "64-character schema name", mutate: (c) => (c[WH].schemas.ci = "s".repeat(64)), path: `${WH}.schemas.ci`, expected: /at most 63 characters/ },
            { name: "64-character user name", mutate: (c) => (c[WH].users[2].name = "u".repeat(64)), path: `${WH}.users[2].name`, expected: /at most 63 characters/ },
            { name: "pg_ prefixed role", mutate: (c) => (c[WH].roles.prod = "pg_prod"), path: `${WH}.roles.prod`, expected: /not starting with pg_/ },
            { name: "pg_ prefixed schema", mutate: (c) => (c[WH].schemas.production[0] = "pg_analytics"), path: `${WH}.schemas.production[0]`, expected: /not starting with pg_/ },
            { name: "reserved role name public", mutate: (c) => (c[WH].users[2].name = "public"), path: `${WH}.users[2].name`, expected: /other than the reserved "public"/ },
            { name: "reserved role name current_user as dev role", mutate: (c) => (c[WH].roles.dev = "current_user"), path: `${WH}.roles.dev`, expected: /reserved "current_user"/ },
            { name: "schema information_schema", mutate: (c) => (c[WH].schemas.production[0] = "information_schema"), path: `${WH}.schemas.production[0]`, expected: /other than information_schema/ },
            // roles, users and duties
            { name: "dev and prod roles the same", mutate: (c) => (c[WH].roles.prod = "role_dev"), path: `${WH}.roles.prod`, expected: /a different role from roles\.dev/ },
            {
                name: "duplicate user names",
                mutate: (c) => (c[WH].users[2].name = "dbt_bitbucket"),
                path: `${WH}.users[2].name`,
                expected: /a login name not already used \(dbt_bitbucket is declared at dbt-platform:warehouse\.users\[1\]\.name\)/,
            },
            {
                name: "user named like a group role",
                mutate: (c) => (c[WH].users[1].name = "role_prod"),
                path: `${WH}.users[1].name`,
                expected: /not already used \(role_prod is declared at dbt-platform:warehouse\.roles\)/,
            },
            {
                name: "developer with the same name as a user",
                mutate: (c) => (c[WH].developers[1].name = "dev_ci"),
                path: `${WH}.developers[1].name`,
                expected: /not already used \(dev_ci is declared at dbt-platform:warehouse\.users\[0\]\.name\)/,
            },
            {
                name: "two developers with the same name",
                mutate: (c) => c[WH].developers.push({ name: "anton", schema: "dbt_anton2" }),
                path: `${WH}.developers[2].name`,
                expected: /not already used \(anton is declared at dbt-platform:warehouse\.developers\[0\]\.name\)/,
            },
            {
                name: "user mapped to an undeclared role",
                mutate: (c) => (c[WH].users[1].role = "role_admin"),
                path: `${WH}.users[1].role`,
                expected: /one of the declared group roles \(role_dev, role_prod\)/,
            },
            {
                name: "ci user mapped to role_prod",
                mutate: (c) => (c[WH].users[0].role = "role_prod"),
                path: `${WH}.users[0].role`,
                expected: /^role_dev for a ci user/,
            },
            {
                name: "deploy user mapped to role_dev",
                mutate: (c) => (c[WH].users[1].role = "role_dev"),
                path: `${WH}.users[1].role`,
                expected: /^role_prod for a deploy user/,
            },
            { name: "unknown duty", mutate: (c) => (c[WH].users[1].duty = "build"), path: `${WH}.users[1].duty`, expected: /one of ci, deploy, scheduler/ },
            { name: "user without a role", mutate: (c) => delete c[WH].users[2].role, path: `${WH}.users[2].role`, expected: /this key is required/ },
            {
                name: "two users with duty deploy",
                mutate: (c) => (c[WH].users[2].duty = "deploy"),
                path: `${WH}.users`,
                expected: /at most one user with duty deploy \(found dbt_bitbucket, dbt_scheduler\)/,
            },
            { name: "no deploy user", mutate: (c) => c[WH].users.splice(1, 1), path: `${WH}.users`, expected: /a user with duty deploy/ },
            { name: "users not a list", mutate: (c) => (c[WH].users = { name: "dev_ci", role: "role_dev", duty: "ci" }), path: `${WH}.users`, expected: /a list of \{name, role, duty\}/ },
            { name: "users missing", mutate: (c) => delete c[WH].users, path: `${WH}.users`, expected: /this key is required/ },
            { name: "developers not a list", mutate: (c) => (c[WH].developers = "anton"), path: `${WH}.developers`, expected: /a list of \{name, schema\}/ },
            // schemas
            {
                name: "ci schema also a production schema",
                mutate: (c) => (c[WH].schemas.ci = "analytics"),
                path: `${WH}.schemas.production[0]`,
                expected: /a schema not already declared \(analytics is declared at dbt-platform:warehouse\.schemas\.ci\)/,
            },
            {
                name: "developer schema equals a production schema",
                mutate: (c) => (c[WH].developers[1].schema = "staging"),
                path: `${WH}.developers[1].schema`,
                expected: /a schema not already declared \(staging is declared at dbt-platform:warehouse\.schemas\.production\[1\]\)/,
            },
            {
                name: "developer default schema equals the ci schema",
                mutate: (c) => c[WH].developers.push({ name: "ci" }),
                path: `${WH}.developers[2].schema`,
                expected: /not already declared \(dbt_ci is declared at dbt-platform:warehouse\.schemas\.ci\)/,
            },
            { name: "empty production list", mutate: (c) => (c[WH].schemas.production = []), path: `${WH}.schemas.production`, expected: /a non-empty list of schema names/ },
            { name: "production not a list", mutate: (c) => (c[WH].schemas.production = "analytics"), path: `${WH}.schemas.production`, expected: /a non-empty list of schema names/ },
            {
                name: "pullRequestPrefix matching a developer schema",
                mutate: (c) => (c[WH].developers[1].schema = "dbt_pr_42"),
                path: `${WH}.schemas.pullRequestPrefix`,
                expected: /a prefix that no declared schema matches \(dbt_pr_42 at dbt-platform:warehouse\.developers\[1\]\.schema would be dropped/,
            },
            {
                name: "pullRequestPrefix dbt_ matching a production schema",
                mutate: (c) => {
                    c[WH].schemas.pullRequestPrefix = "dbt_";
                    c[WH].schemas.production = ["analytics", "dbt_2024"];
                },
                path: `${WH}.schemas.pullRequestPrefix`,
                expected: /a prefix that no declared schema matches \(dbt_2024 at dbt-platform:warehouse\.schemas\.production\[1\]/,
            },
            {
                // 41: the pipelines' drop-schema macro takes no more, and config and pipelines share one rule.
                name: "pullRequestPrefix too long (42 characters)",
                mutate: (c) => (c[WH].schemas.pullRequestPrefix = "p".repeat(42)),
                path: `${WH}.schemas.pullRequestPrefix`,
                expected: /at most 41 characters/,
            },
            { name: "pullRequestPrefix starting pg_", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "pg_pr_"), path: `${WH}.schemas.pullRequestPrefix`, expected: /not starting with pg_/ },
            { name: "pullRequestPrefix with a dash", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "dbt-pr-"), path: `${WH}.schemas.pullRequestPrefix`, expected: /a schema-name prefix/ },
            // booleans
            { name: 'roleMasking "yes"', mutate: (c) => (c[WH].roleMasking = "yes"), path: `${WH}.roleMasking`, expected: /^true or false$/ },
            { name: 'createDatabase "true" (a string)', mutate: (c) => (c[WH].createDatabase = "true"), path: `${WH}.createDatabase`, expected: /^true or false$/ },
            { name: "aws.enabled 1", mutate: (c) => (c[AWS].enabled = 1), path: `${AWS}.enabled`, expected: /^true or false$/ },
            // ci
            { name: "ci.system gitlab", mutate: (c) => (c[CI].system = "gitlab"), path: `${CI}.system`, expected: /one of bitbucket, github, azure-devops/ },
            {
                name: "azure-devops repository without a project",
                mutate: (c) => (c[CI].system = "azure-devops"),
                path: `${CI}.repository`,
                expected: /an? azure-devops repository as organization\/project\/repository/,
            },
            {
                name: "github repository with three segments",
                mutate: (c) => {
                    c[CI].system = "github";
                    c[CI].repository = "acme/data/analytics-dbt";
                },
                path: `${CI}.repository`,
                expected: /a github repository as owner\/repository/,
            },
            { name: "bitbucket repository URL", mutate: (c) => (c[CI].repository = "https://bitbucket.org/acme-data/analytics-dbt"), path: `${CI}.repository`, expected: /workspace\/repository/ },
            { name: "mainBranch with ..", mutate: (c) => (c[CI].mainBranch = "main..x"), path: `${CI}.mainBranch`, expected: /a git branch name/ },
            { name: "ci missing", mutate: (c) => delete c[CI], path: CI, expected: /an object with system and repository/ },
            // aws and features
            { name: "docsSite while aws is disabled", mutate: (c) => (c[FEATURES] = { docsSite: true }), path: `${FEATURES}.docsSite`, expected: /false while aws\.enabled is false/ },
            { name: "bad aws region", mutate: (c) => (c[AWS].region = "europe-west"), path: `${AWS}.region`, expected: /an AWS region such as eu-west-1/ },
            { name: "aws retentionDays 0", mutate: (c) => (c[AWS].artifacts = { retentionDays: 0 }), path: `${AWS}.artifacts.retentionDays`, expected: /an integer from 1 to 3650/ },
            { name: "aws bucket name with upper case", mutate: (c) => (c[AWS].artifacts = { bucketName: "Acme_Artifacts" }), path: `${AWS}.artifacts.bucketName`, expected: /an S3 bucket name/ },
            { name: "aws kms key not an ARN", mutate: (c) => (c[AWS].artifacts = { kmsKeyArn: "my-key" }), path: `${AWS}.artifacts.kmsKeyArn`, expected: /a KMS key ARN/ },
            { name: "aws kms alias ARN (IAM cannot name a key by alias)", mutate: (c) => (c[AWS].artifacts = { kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:alias/dbt" }), path: `${AWS}.artifacts.kmsKeyArn`, expected: /cannot name a key by alias/ },
            { name: "docs CIDR with host bits", mutate: (c) => (c[AWS].docs = { access: "ip-allowlist", allowedCidrs: ["203.0.113.5/24"] }), path: `${AWS}.docs.allowedCidrs[0]`, expected: /without host bits/ },
            { name: "docs CIDRs without ip-allowlist", mutate: (c) => (c[AWS].docs = { access: "basic-auth", allowedCidrs: ["203.0.113.0/24"] }), path: `${AWS}.docs.allowedCidrs`, expected: /no CIDRs unless docs\.access is ip-allowlist/ },
            { name: "bitbucket uuid with one brace", mutate: (c) => (c[AWS].bitbucket = { workspaceUuid: "{3c5f1a2e-8d4b-4f6a-9c1e-2b7d5e8f0a13", repositoryUuid: "9e2d7c41-5b3a-4e8f-a6d2-1c4b8f7e3a95" }), path: `${AWS}.bitbucket.workspaceUuid`, expected: /a UUID/ },
            { name: "bitbucket workspace in upper case", mutate: (c) => (c[CI].repository = "Acme-Data/analytics-dbt"), path: `${CI}.repository`, expected: /workspace ID in lower case/ },
            { name: "docs domain without hosted zone", mutate: (c) => (c[AWS].docs = { domain: "docs.acme.example" }), path: `${AWS}.docs.hostedZoneId`, expected: /Route 53 zone of docs\.domain/ },
            { name: "docs ip-allowlist without CIDRs", mutate: (c) => (c[AWS].docs = { access: "ip-allowlist" }), path: `${AWS}.docs.allowedCidrs`, expected: /at least one CIDR/ },
            { name: "docs bad CIDR", mutate: (c) => (c[AWS].docs = { access: "ip-allowlist", allowedCidrs: ["10.0.0.0/8", "300.1.1.1/24"] }), path: `${AWS}.docs.allowedCidrs[1]`, expected: /an IPv4 CIDR/ },
            { name: "docs access mode unknown", mutate: (c) => (c[AWS].docs = { access: "vpn" }), path: `${AWS}.docs.access`, expected: /one of public, basic-auth, ip-allowlist/ },
            { name: "aws on with bitbucket but no OIDC uuids", mutate: (c) => (c[AWS].enabled = true), path: `${AWS}.bitbucket`, expected: /workspaceUuid and repositoryUuid/ },
            { name: "bitbucket repository uuid malformed", mutate: (c) => (c[AWS].bitbucket = { workspaceUuid: "{3c5f1a2e-8d4b-4f6a-9c1e-2b7d5e8f0a13}", repositoryUuid: "repo-1" }), path: `${AWS}.bitbucket.repositoryUuid`, expected: /a UUID/ },
            { name: "aws on with azure-devops but no federation details", mutate: (c) => { c[CI] = { system: "azure-devops", repository: "acme/analytics/dbt" }; c[AWS].enabled = true; }, path: `${AWS}.azureDevops`, expected: /organizationId and serviceConnection/ },
            { name: "OIDC provider ARN malformed", mutate: (c) => (c[AWS].oidcProviderArn = "arn:aws:iam::123:oidc-provider/x"), path: `${AWS}.oidcProviderArn`, expected: /an IAM OIDC provider ARN/ },
            { name: "upper-case aws region", mutate: (c) => (c[AWS].region = "EU-WEST-1"), path: `${AWS}.region`, expected: /an AWS region/ },
            { name: "unknown feature", mutate: (c) => (c[FEATURES] = { docs: true }), path: `${FEATURES}.docs`, expected: /no such key; known keys of dbt-platform:features are docsSite/ },
            {
                name: "admin password as an object",
                mutate: (c) => (c[`${NS}:warehouseAdminPassword`] = { value: "x" }),
                path: `${NS}:warehouseAdminPassword`,
                expected: /a secret string/,
            },
        ];

        it(`covers at least 24 distinct bad configs (${cases.length})`, () => {
            assert.ok(cases.length >= 24);
            assert.strictEqual(new Set(cases.map((c) => c.name)).size, cases.length, "case names are distinct");
            const configs = cases.map((c) => JSON.stringify(devWith(c.mutate)));
            assert.strictEqual(new Set(configs).size, cases.length, "every case is a different config");
        });

        for (const c of cases) {
            it(`${c.name} -> ${c.path}`, () => {
                const err = rejects(devWith(c.mutate), "dev");
                assert.match(err.message, /^Invalid configuration for stack "dev" \(\d+ problems?\):\n/);
                assert.strictEqual(err.name, "ConfigError");
                const p = problemAt(err, c.path, c.expected);
                // The message lists the problem on its own line.
                assert.ok(
                    err.message.split("\n").some((line) => line.startsWith(`  - ${p.path}: `) && line.endsWith(`; expected ${p.expected}`)),
                    `message does not list ${p.path}:\n${err.message}`,
                );
            });
        }

        it("names the stack it was given", () => {
            const err = rejects(devWith((c) => (c[DBT].threads = 0)), "feature-x");
            assert.ok(err.message.startsWith(`Invalid configuration for stack "feature-x"`));
        });

        it("prints its message where Pulumi reports unhandled errors (util.inspect)", () => {
            // The Node language host logs uncaught errors with util.inspect(err), which renders err.stack.
            // BUG: ConfigError's constructor parameter property `stack` overwrites Error#stack with the
            // stack name, so `pulumi up` shows "[dev] { problems: [...] }" and never the message.
            const err = rejects(devWith((c) => (c[DBT].threads = 0)), "dev");
            const shown = util.inspect(err);
            assert.ok(shown.includes(`Invalid configuration for stack "dev"`), `util.inspect shows:\n${shown}`);
            assert.ok(shown.includes("  - dbt-platform:dbt.threads: got 0; expected an integer from 1 to 64"), `util.inspect shows:\n${shown}`);
        });

        it("shows the offending value, or missing", () => {
            const err = rejects(devWith((c) => {
                c[DBT].threads = 65;
                delete c[DBT].profile;
            }));
            assert.match(err.message, /  - dbt-platform:dbt\.threads: got 65; expected an integer from 1 to 64/);
            assert.match(err.message, /  - dbt-platform:dbt\.profile: missing; expected a value \(this key is required\)/);
            assert.strictEqual(problemAt(err, `${DBT}.threads`, /integer/).value, 65);
        });

        it("promotesFrom on a release stage must be a stack name", () => {
            const raw = { ...stackConfig("staging"), [ENV]: JSON.stringify({ kind: "release", promotesFrom: "Sandbox Stage" }) };
            const err = rejects(raw, "staging");
            assert.ok(err.message.startsWith(`Invalid configuration for stack "staging"`));
            problemAt(err, `${ENV}.promotesFrom`, /a stack name: lower-case letters, digits and dashes/);
        });
    });

    describe("reports every problem at once", () => {
        it("three independent mistakes give three problems in one error", () => {
            const err = rejects(devWith((c) => {
                c[DBT].threads = 0;
                c[CI].system = "gitlab";
                c[WH].users[0].name = "Dev_CI";
            }));
            assert.ok(err.problems.length >= 3, `expected >= 3 problems, got:\n    ${describeProblems(err.problems)}`);
            problemAt(err, `${DBT}.threads`, /an integer from 1 to 64/);
            problemAt(err, `${CI}.system`, /one of bitbucket, github, azure-devops/);
            problemAt(err, `${WH}.users[0].name`, /a lower-case identifier/);
            assert.match(err.message, new RegExp(`\\(${err.problems.length} problems\\)`));
            for (const p of [`${DBT}.threads`, `${CI}.system`, `${WH}.users[0].name`]) {
                assert.ok(err.message.includes(`\n  - ${p}: `), `message lists ${p}`);
            }
        });

        it("mistakes in every section are all reported", () => {
            const err = rejects(devWith((c) => {
                c[ENV].kind = "prod";
                c[DBT].threads = "8";
                c[WH].connection.port = 99999;
                c[WH].schemas.production = [];
                c[CI].repository = "no-slash";
                c[AWS].region = "mars-1";
                c[`${NS}:warehose`] = {};
            }));
            const paths = err.problems.map((p) => p.path);
            for (const want of [
                `${ENV}.kind`,
                `${DBT}.threads`,
                `${WH}.connection.port`,
                `${WH}.schemas.production`,
                `${CI}.repository`,
                `${AWS}.region`,
                `${NS}:warehose`,
            ]) {
                assert.ok(paths.includes(want), `missing ${want} in ${paths.join(", ")}`);
            }
        });
    });

    describe("secrets", () => {
        const SECRET = "hunter2-Sup3r-S3cret-Value";

        it("a secret under an unknown key never appears in the message", () => {
            const key = `${NS}:adminPassword`; // a typo of warehouseAdminPassword
            const err = rejects({ ...stackConfig("dev"), [key]: SECRET }, "dev", [key]);
            problemAt(err, key, /no such key/);
            assert.ok(!err.message.includes(SECRET), `secret leaked:\n${err.message}`);
            assert.ok(!err.message.includes("hunter2"), "not even a fragment of the secret leaks");
            assert.ok(!JSON.stringify(err.problems).includes(SECRET), "problems carry no secret value");
        });

        it("a secret object under a known key with a bad nested value stays hidden", () => {
            const raw = devWith((c) => (c[WH].connection.port = SECRET));
            const err = rejects(raw, "dev", [WH]);
            problemAt(err, `${WH}.connection.port`, /an integer/);
            assert.ok(!err.message.includes(SECRET), `secret leaked:\n${err.message}`);
        });

        it("a non-string admin password is reported without its value", () => {
            const key = `${NS}:warehouseAdminPassword`;
            const err = rejects({ ...stackConfig("dev"), [key]: JSON.stringify({ pw: SECRET }) }, "dev", [key]);
            problemAt(err, key, /a secret string/);
            assert.ok(!err.message.includes(SECRET), `secret leaked:\n${err.message}`);
        });

        it("non-secret values are still shown (masking is targeted)", () => {
            const key = `${NS}:adminPassword`;
            const err = rejects({ ...stackConfig("dev"), [key]: "plain-value" }, "dev", []);
            assert.ok(err.message.includes("plain-value"));
        });
    });

    describe("the program fails before registering anything", () => {
        /** Evaluates index.ts under mocks like runProgram, but keeps the record when the require throws. */
        async function evaluate(stack: string, config: Record<string, string>, secretKeys: string[] = []): Promise<{ resources: Recorded[]; error: unknown }> {
            const { resources, settle } = await installMocks(stack);
            pulumi.runtime.setAllConfig(config, secretKeys);
            const entry = require.resolve(path.join(ROOT, "index.ts"));
            delete require.cache[entry];
            let error: unknown;
            try {
                require(entry);
            } catch (e) {
                error = e;
            }
            await settle();
            delete require.cache[entry];
            return { resources, error };
        }

        it("the good dev config registers resources (so zero below means something)", async () => {
            const { resources } = await runProgram("dev");
            assert.ok(resources.length > 0);
        });

        it("runProgram rejects with a ConfigError for a bad config", async () => {
            const bad = devWith((c) => (c[WH].users[0].name = `x"; drop table y; --`));
            await assert.rejects(runProgram("dev", bad), (e: unknown) => {
                assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
                assert.ok(e.message.startsWith(`Invalid configuration for stack "dev"`));
                problemAt(e, `${WH}.users[0].name`, /a lower-case identifier/);
                return true;
            });
        });

        it("a bad config throws ConfigError while loading index.ts and records zero resources", async () => {
            const bad = devWith((c) => {
                c[WH].kind = "oracle";
                c[DBT].threads = 0;
            });
            const { resources, error } = await evaluate("dev", bad);
            assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
            assert.ok(error.message.startsWith(`Invalid configuration for stack "dev"`));
            problemAt(error, `${WH}.kind`, /^one of postgres, redshift, snowflake/);
            assert.deepStrictEqual(resources.map((r) => `${r.type}::${r.name}`), []);
        });

        it("a cross-field mistake (two deploy users) also stops before any resource", async () => {
            const { resources, error } = await evaluate("dev", devWith((c) => (c[WH].users[2].duty = "deploy")));
            assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
            assert.strictEqual(resources.length, 0);
        });

        it("secret config keys read through loadStackConfig stay out of the message", async () => {
            const SECRET = "runtime-Secret-Value-42";
            const key = `${NS}:adminPassword`;
            const { resources, error } = await evaluate("dev", { ...stackConfig("dev"), [key]: SECRET }, [key]);
            assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
            problemAt(error, key, /no such key/);
            assert.ok(!error.message.includes(SECRET), `secret leaked:\n${error.message}`);
            assert.strictEqual(resources.length, 0);
        });

        it("a developer whose default schema would be too long is a ConfigError, not a half-registered program", async () => {
            // BUG: the default schema dbt_<name> is not validated, so a 60-character developer name
            // (valid as a role) yields a 64-character schema; the component rejects it only after
            // DbtPlatform has been registered.
            const { resources, error } = await evaluate("dev", devWith((c) => (c[WH].developers[0].name = "d".repeat(60))));
            const registered = resources.map((r) => `${r.type}::${r.name}`);
            assert.ok(
                error instanceof ConfigError && registered.length === 0,
                `expected a ConfigError and no resources; got ${String(error)}\n  registered before the throw: ${registered.join(", ") || "(none)"}`,
            );
        });
    });

    describe("validator edge cases (paths and derived values)", () => {
        it("a developer's default schema dbt_<name> is checked like a declared one (64 characters)", () => {
            // BUG: accepted today. Name is 60 characters (valid), default schema is 64 (too long).
            const raw = devWith((c) => (c[WH].developers[0].name = "d".repeat(60)));
            const err = rejects(raw);
            const p = err.problems.find(
                (x) => /^dbt-platform:warehouse\.developers\[0\]\.(schema|name)$/.test(x.path) && /at most 63 characters/.test(x.expected),
            );
            assert.ok(p, `no 63-character problem for developers[0]; problems:\n    ${describeProblems(err.problems)}`);
        });

        it("a cross-field problem names the user's own index after an earlier user was rejected", () => {
            // BUG: users that fail validation are dropped before the cross-field rules run, which then
            // number the survivors 0..n-1. Here users[0] is rejected, and the scheduler's wrong group
            // role is reported at users[1].role instead of users[2].role.
            const raw = devWith((c) => {
                c[WH].users[0].role = "role_admin";
                c[WH].users[2].role = "role_dev";
            });
            const err = rejects(raw);
            problemAt(err, `${WH}.users[0].role`, /one of the declared group roles/);
            problemAt(err, `${WH}.users[2].role`, /^role_prod for a scheduler user/);
            assert.ok(
                !err.problems.some((p) => p.path === `${WH}.users[1].role`),
                `users[1] (dbt_bitbucket, role_prod, deploy) is valid but was blamed:\n    ${describeProblems(err.problems)}`,
            );
        });

        it("a duplicate developer schema names the developer's own index after an earlier developer was rejected", () => {
            // BUG: same re-numbering for developers: developers[1]'s schema clash is reported at developers[0].schema.
            const raw = devWith((c) => {
                c[WH].developers[0].name = "Anton";
                c[WH].developers[1].schema = "analytics";
            });
            const err = rejects(raw);
            problemAt(err, `${WH}.developers[0].name`, /a lower-case identifier/);
            problemAt(err, `${WH}.developers[1].schema`, /a schema not already declared \(analytics is declared at dbt-platform:warehouse\.schemas\.production\[0\]\)/);
            assert.ok(
                !err.problems.some((p) => p.path === `${WH}.developers[0].schema`),
                `developers[0] has no schema problem but was blamed:\n    ${describeProblems(err.problems)}`,
            );
        });
    });
});

describe("warehouse kinds snowflake and redshift (issues 12, 13)", () => {
    const SNOWFLAKE_YAML: Record<string, any> = parse(fs.readFileSync(path.join(ROOT, "Pulumi.snowflake.yaml"), "utf8")).config;
    const REDSHIFT_YAML: Record<string, any> = parse(fs.readFileSync(path.join(ROOT, "Pulumi.redshift.yaml"), "utf8")).config;
    const withYaml = (base: Record<string, any>, mutate: (c: Record<string, any>) => void) => {
        const c = structuredClone(base);
        mutate(c);
        return toPulumiConfig(c);
    };
    const PKCS8 = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";

    it("Pulumi.snowflake.yaml: the seed-002 organisation, every default applied", () => {
        const c = parseStackConfig("snowflake", stackConfig("snowflake"));
        assert.strictEqual(c.dbt.adapterVersion, "1.11.6", "dbt-snowflake's version by default");
        assert.deepStrictEqual(c.warehouse, {
            kind: "snowflake",
            account: "ACME-ANALYTICS",
            admin: { user: "PULUMI_ADMIN" },
            databases: { production: "ANALYTICS", development: "ANALYTICS_DEV" },
            createDatabases: true,
            schemas: { production: "MARTS", ci: "DBT_CI", pullRequestPrefix: "CI_PR_" },
            warehouses: {
                transform: { name: "TRANSFORMING", size: "SMALL", autoSuspendSeconds: 60, autoResume: true, statementTimeoutSeconds: 7200 },
                ci: { name: "CI", size: "XSMALL", autoSuspendSeconds: 60, autoResume: true, statementTimeoutSeconds: 3600 },
                reporting: { name: "REPORTING", size: "XSMALL", autoSuspendSeconds: 300, autoResume: true, statementTimeoutSeconds: 3600 },
            },
            roles: { transformer: "TRANSFORMER", ci: "TRANSFORMER_CI", reporter: "REPORTER" },
            users: [
                { name: "SVC_DBT_CI", duty: "ci", secondKey: false, activeKey: 1 },
                { name: "SVC_DBT_DEPLOY", duty: "deploy", secondKey: false, activeKey: 1 },
            ],
            rsaBits: 2048,
        });
        assert.deepStrictEqual([c.ci.system, c.aws.enabled, c.features.docsSite, c.environment.kind], ["github", true, true, "development"]);
        // The fakesnow note: a production schema named like its database makes views ambiguous there.
        assert.notStrictEqual(c.warehouse.kind === "snowflake" && c.warehouse.schemas.production, "ANALYTICS");
    });

    it("a minimal snowflake section takes SnowflakeWarehouse's defaults", () => {
        const c = parseStackConfig("snowflake", withYaml(SNOWFLAKE_YAML, (y) => (y[WH] = { kind: "snowflake", account: "ACME-ANALYTICS", admin: { user: "ADMIN" }, users: [{ name: "SVC_DEPLOY", duty: "deploy" }] })));
        const wh = c.warehouse;
        assert.ok(wh.kind === "snowflake");
        assert.deepStrictEqual([wh.databases, wh.createDatabases, wh.schemas, wh.roles, wh.rsaBits, wh.networkPolicy, wh.endpoint], [
            { production: "ANALYTICS", development: "ANALYTICS_DEV" },
            true,
            { production: "ANALYTICS", ci: "DBT_CI", pullRequestPrefix: "CI_PR_" },
            { transformer: "TRANSFORMER", ci: "TRANSFORMER_CI", reporter: "REPORTER" },
            2048,
            undefined,
            undefined,
        ]);
        assert.deepStrictEqual(wh.warehouses.ci, { name: "CI", size: "XSMALL", autoSuspendSeconds: 60, autoResume: true, statementTimeoutSeconds: 3600 });
    });

    it("snowflake: key rotation, a network policy and a fakesnow endpoint on this machine are accepted", () => {
        const c = parseStackConfig("snowflake", withYaml(SNOWFLAKE_YAML, (y) => {
            y[WH].users[1] = { name: "SVC_DBT_DEPLOY", duty: "deploy", secondKey: true, activeKey: 2 };
            y[WH].networkPolicy = { allowedIpList: ["192.0.2.0/24", "198.51.100.7"], blockedIpList: ["192.0.2.13"] };
            y[WH].endpoint = { host: "127.0.0.1", port: 18080, protocol: "http" };
        }));
        assert.ok(c.warehouse.kind === "snowflake");
        assert.deepStrictEqual(c.warehouse.users[1], { name: "SVC_DBT_DEPLOY", duty: "deploy", secondKey: true, activeKey: 2 });
        assert.deepStrictEqual(c.warehouse.networkPolicy, { name: "DBT_SERVICE_USERS", allowedIpList: ["192.0.2.0/24", "198.51.100.7"], blockedIpList: ["192.0.2.13"] });
        assert.deepStrictEqual(c.warehouse.endpoint, { host: "127.0.0.1", port: 18080, protocol: "http" });
    });

    it("Pulumi.redshift.yaml: the seed-003 organisation, every default applied", () => {
        const c = parseStackConfig("redshift", stackConfig("redshift"));
        assert.strictEqual(c.dbt.adapterVersion, "1.11.2", "dbt-redshift's version by default");
        assert.deepStrictEqual(c.warehouse, {
            kind: "redshift",
            connection: { host: "dbt.c3xample9abc.eu-west-1.redshift.amazonaws.com", port: 5439, database: "dev", username: "platform_admin", sslmode: "verify-full" },
            groups: { dev: "grp_dev", prod: "grp_prod" },
            users: [
                { name: "dbt_ci", duty: "ci" },
                { name: "dbt_prod", duty: "deploy" },
                { name: "dbt_prod", duty: "scheduler" },
            ],
            schemas: { production: ["dbt", "dbt_staging"], pullRequestPrefix: "dbt_build_" },
            customSchemas: ["staging"],
            developers: [
                { name: "anton", schema: "anton" },
                { name: "maria", schema: "maria" },
            ],
            rbac: false,
            roles: { dev: "role_dev", prod: "role_prod" },
            adopt: false,
            auth: { method: "database" },
        });
        assert.deepStrictEqual([c.ci.system, c.environment, c.features.scheduledRuns], ["azure-devops", { kind: "release", promotesFrom: "staging" }, true]);
    });

    it("redshift: IAM on a cluster, and Serverless with its defaults", () => {
        const iam = parseStackConfig("redshift", withYaml(REDSHIFT_YAML, (y) => (y[WH].auth = { method: "iam", clusterId: "dbt-cluster", region: "eu-west-1" })));
        assert.ok(iam.warehouse.kind === "redshift");
        assert.deepStrictEqual(iam.warehouse.auth, { method: "iam", clusterId: "dbt-cluster", region: "eu-west-1" });
        const sl = parseStackConfig("redshift", withYaml(REDSHIFT_YAML, (y) => {
            y[WH].connection = { sslmode: "require" };
            y[WH].serverless = { namespaceName: "acme-dbt", workgroupName: "acme-dbt-wg" };
        }));
        assert.ok(sl.warehouse.kind === "redshift");
        assert.deepStrictEqual(sl.warehouse.connection, { port: 5439, database: "dev", username: "dbt_admin", sslmode: "require" });
        assert.deepStrictEqual(sl.warehouse.serverless, { namespaceName: "acme-dbt", workgroupName: "acme-dbt-wg", baseCapacity: 8, publiclyAccessible: false });
    });

    it("the admin secret of each kind is accepted as a secret, and only for its kind", () => {
        const sf = `${NS}:snowflakePrivateKey`;
        const rs = `${NS}:redshiftAdminPassword`;
        assert.doesNotThrow(() => parseStackConfig("snowflake", { ...stackConfig("snowflake"), [sf]: PKCS8 }, [sf]));
        assert.doesNotThrow(() => parseStackConfig("redshift", { ...stackConfig("redshift"), [rs]: "s3cret-Admin" }, [rs]));
        const wrong = rejects({ ...stackConfig("dev"), [rs]: "s3cret-Admin" }, "dev", [rs]);
        const p = problemAt(wrong, rs, /no redshiftAdminPassword unless warehouse.kind is redshift \(warehouse.kind is postgres; its admin password is warehouseAdminPassword\)/);
        assert.strictEqual(p.value, "[secret]");
        assert.ok(!wrong.message.includes("s3cret-Admin"));
    });

    it("loadWarehouseSecrets reads the stack's kind's key through the Pulumi runtime, as a secret", async () => {
        await installMocks("snowflake");
        const sf = `${NS}:snowflakePrivateKey`;
        try {
            pulumi.runtime.setAllConfig({ ...stackConfig("snowflake"), [sf]: PKCS8 }, [sf]);
            const secrets = loadWarehouseSecrets(loadStackConfig());
            assert.deepStrictEqual(Object.keys(secrets), ["snowflakePrivateKey"]);
            const out = secrets.snowflakePrivateKey as pulumi.Output<string>;
            assert.strictEqual(await (out as any).isSecret, true);
            assert.strictEqual(await (out as any).promise(), PKCS8);
            pulumi.runtime.setAllConfig(stackConfig("dev"), []);
            assert.deepStrictEqual(loadWarehouseSecrets(loadStackConfig()), {}, "unset: the provider's environment variable applies");
        } finally {
            pulumi.runtime.setAllConfig({}, []);
        }
    });
});

describe("stack names", () => {
    for (const bad of ["ci", "scheduler", "prod-europe", "Prod", "a".repeat(41)]) {
        it(`rejects the stack name ${JSON.stringify(bad)}`, () => {
            const err = rejects(stackConfig("prod"), bad);
            problemAt(err, "stack name", /lower-case letters, digits and dashes, not ci or scheduler and not ending in a dash and six characters/);
        });
    }
    it("accepts prod-eu and staging-2", () => {
        for (const ok of ["prod-eu", "staging-2"]) assert.strictEqual(parseStackConfig(ok, stackConfig("prod")).stack, ok);
    });
});
