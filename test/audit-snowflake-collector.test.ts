/**
 * The Snowflake drift audit collects its own catalog (issue 15 follow-up): collectSnowflakeRows runs
 * exactly SNOWFLAKE_AUDIT_QUERIES, expanded, through scripts/snowflake-catalog.py (the venv's
 * snowflake-connector-python, key-pair auth) and maps the results to the recorded-catalog shape.
 *   - Recorded shapes: a runner answering each expanded statement from the recorded fixture (in the
 *     documented column shapes) yields the fixture back, and the audit of it reports nothing. This is
 *     the proof for the commands fakesnow rejects (SHOW ROLES / DATABASE ROLES / GRANTS / FUTURE GRANTS).
 *   - @integration fakesnow: the real collector, logged in with a key pair, against fakesnow's server;
 *     records which audit commands it supports and which it rejects, and maps the supported ones.
 *   - @integration the rendered scheduled audit job for a Snowflake stack, run by bash with the
 *     collector pointed at fakesnow, gets as far as the audit reading the collected catalog.
 */
import assert from "assert";
import { spawnSync } from "child_process";
import { generateKeyPairSync } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { auditSnowflakeDeclared, collectSnowflakeRows, RunShow, showRows, SNOWFLAKE_AUDIT_QUERIES, snowflakeAuditSql, SnowflakeRows } from "../components/access/warehouses";
import { auditKind, auditSecretNames, PlatformPipelineArgs, renderPlatformAzure, renderPlatformBitbucket, renderPlatformGithub } from "../components/pipelines/platformRepo";
import { withSnowflakeCollector } from "../scripts/audit";
import { ROOT } from "../scripts/offline";
import { platformArgs } from "../scripts/render-platform";
import { declaredSnowflake } from "./support/declaredWarehouses";
import { FakesnowServer, startFakesnow } from "./support/fakesnow";
import { azureSchemaErrors, bitbucketSchemaErrors, githubParserErrors, githubSchemaErrors } from "./support/pipelineSchemas";
import { pythonEnv } from "./support/python";

const FIXTURE: SnowflakeRows & { _comment?: string } = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "audit", "snowflake-catalog.json"), "utf8"));
const KEYS = Object.keys(SNOWFLAKE_AUDIT_QUERIES) as (keyof SnowflakeRows)[];
/** The audit's own login and role, and the providers' admin: outside the plan (as the recorded-catalog test ignores them). */
const IGNORED = ["AUDITOR", "AUDIT_READER", "PULUMI_ADMIN"];

const sortedJson = (rows: Record<string, any>[]) => rows.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).sort()))).sort();
const strip = (rows: Record<string, any>[], column: string) => rows.map(({ [column]: _, ...rest }) => rest);

/**
 * What Snowflake would answer to each expanded statement after the fixture's apply: the fixture's
 * rows of that statement, as tuples under their documented columns. SHOW DATABASE ROLES and SHOW
 * GRANTS TO DATABASE ROLE have no database column: the runner adds it, so it is taken off here.
 */
function recordedAnswers(): Map<string, Record<string, any>[]> {
    const answers = new Map<string, Record<string, any>[]>();
    const add = (key: keyof SnowflakeRows, values: Record<string, string>, rows: Record<string, any>[]) => answers.set(snowflakeAuditSql(key, values), rows);
    add("users", {}, FIXTURE.users);
    add("roles", {}, FIXTURE.roles);
    for (const database of ["ANALYTICS", "ANALYTICS_DEV"]) {
        add("databaseRoles", { database }, strip(FIXTURE.databaseRoles.filter((r) => r.database_name === database), "database_name"));
        for (const key of ["schemas", "tables", "views"] as const) add(key, { database }, FIXTURE[key].filter((r) => r.database_name === database));
        add("futureGrantsInDatabase", { database }, FIXTURE.futureGrantsInDatabase.filter((g) => String(g.name).startsWith(`${database}.`)));
    }
    for (const role of ["TRANSFORMER", "TRANSFORMER_CI", "REPORTER", "AUDIT_READER"]) {
        add("grantsOfRole", { role }, FIXTURE.grantsOfRole.filter((g) => g.role === role));
        add("grantsToRole", { role }, FIXTURE.grantsToRole.filter((g) => g.grantee_name === role));
    }
    for (const r of FIXTURE.databaseRoles) {
        add("grantsToDatabaseRole", { database: r.database_name, databaseRole: r.name }, strip(FIXTURE.grantsToDatabaseRole.filter((g) => g.database_name === r.database_name && g.grantee_name === r.name), "database_name"));
    }
    for (const s of FIXTURE.schemas.filter((s) => s.name !== "INFORMATION_SCHEMA")) {
        add("futureGrantsInSchema", { database: s.database_name, schema: s.name }, FIXTURE.futureGrantsInSchema.filter((g) => String(g.name).startsWith(`${s.database_name}.${s.name}.`)));
    }
    return answers;
}

/** A runner answering from recorded rows (columns as the connector names them), refusing any statement it has no answer for. */
function recordedRunner(answers: Map<string, Record<string, any>[]>, ran: string[]): RunShow {
    return async (sql) => {
        ran.push(sql);
        const rows = answers.get(sql);
        if (!rows) throw new Error(`no recorded answer for ${sql}`);
        const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
        return { columns, rows: rows.map((r) => columns.map((c) => r[c])) };
    };
}

function pkcs8Pem(): string {
    return generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

/** The collector's connection to fakesnow through the audit's environment (the stack's warehouse.endpoint is overridden the same way). */
function collectorEnv(fakesnow: FakesnowServer, key: string): Record<string, string> {
    return { SNOWFLAKE_ACCOUNT: "ACME-ANALYTICS", SNOWFLAKE_USER: "AUDITOR", SNOWFLAKE_PRIVATE_KEY: key, SNOWFLAKE_HOST: fakesnow.host, SNOWFLAKE_PORT: String(fakesnow.port), SNOWFLAKE_PROTOCOL: "http" };
}

/** Sets env for the duration of fn, restoring what was there. */
async function withEnv<T>(env: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
    const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    const set = (e: Record<string, string | undefined>) => Object.entries(e).forEach(([k, v]) => (v === undefined ? delete process.env[k] : (process.env[k] = v)));
    set(env);
    try {
        return await fn();
    } finally {
        set(before);
    }
}

const tempKeyDirs = () => fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith("dbt-platform-audit-"));

describe("Snowflake drift audit collector", () => {
    it("maps each SHOW result to the recorded shape: lower-case columns, database_name only where the command has none", () => {
        assert.deepStrictEqual(showRows({ columns: ["NAME", "Owner"], rows: [["ANALYTICS_READ", "SYSADMIN"]] }, "ANALYTICS"), [{ name: "ANALYTICS_READ", owner: "SYSADMIN", database_name: "ANALYTICS" }]);
        assert.deepStrictEqual(showRows({ columns: ["name", "database_name"], rows: [["MARTS", "ANALYTICS"]] }, "OTHER"), [{ name: "MARTS", database_name: "ANALYTICS" }]);
        assert.deepStrictEqual(showRows({ columns: ["name", "default_role"], rows: [["SVC_DBT_CI"]] }), [{ name: "SVC_DBT_CI", default_role: null }]);
    });

    it("recorded shapes: runs exactly SNOWFLAKE_AUDIT_QUERIES expanded, collects the recorded catalog back, and its audit reports nothing", async () => {
        const wh = await declaredSnowflake();
        const answers = recordedAnswers();
        const ran: string[] = [];
        const { rows, uncollected } = await collectSnowflakeRows(wh, recordedRunner(answers, ran));
        assert.deepStrictEqual(uncollected, []);
        assert.deepStrictEqual([...ran].sort(), [...answers.keys()].sort(), "every expanded statement runs once, and nothing else");
        for (const sql of ran) assert.ok(KEYS.some((k) => new RegExp(`^${SNOWFLAKE_AUDIT_QUERIES[k].sql.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{\w+\}/g, '"[^"]+"')}$`).test(sql)), `${sql} is one of SNOWFLAKE_AUDIT_QUERIES`);
        let mapped = 0;
        for (const key of KEYS) {
            assert.deepStrictEqual(sortedJson(rows[key]), sortedJson(FIXTURE[key]), `${key}: collected rows are the recorded ones`);
            mapped++;
        }
        const drifts = auditSnowflakeDeclared(wh, rows, { ignoreRoles: IGNORED });
        assert.deepStrictEqual(drifts, []);
        console.log(`snowflake collector (recorded shapes): ${ran.length} statements, ${mapped}/${KEYS.length} queries mapped, audit of the collected catalog: ${drifts.length} drifts`);
    });

    it("recorded shapes: a statement the warehouse rejects fails the collection naming it, unless partial", async () => {
        const wh = await declaredSnowflake();
        const answers = recordedAnswers();
        answers.delete(snowflakeAuditSql("grantsToRole", { role: "REPORTER" }));
        await assert.rejects(collectSnowflakeRows(wh, recordedRunner(answers, [])), /Snowflake audit query grantsToRole \(SHOW GRANTS TO ROLE "REPORTER"\) failed: no recorded answer/);
        const { uncollected } = await collectSnowflakeRows(wh, recordedRunner(answers, []), { partial: true });
        assert.deepStrictEqual(uncollected.map((u) => u.sql), ['SHOW GRANTS TO ROLE "REPORTER"']);
    });

    describe("on fakesnow @integration", function () {
        this.timeout(600_000);
        let fakesnow: FakesnowServer;
        before(async () => {
            fakesnow = await startFakesnow();
            // What a production run leaves (ANALYTICS.MARTS.ORDERS, ANALYTICS.STAGING.STG_ORDERS), and one declared user.
            await fakesnow.sql([
                "CREATE DATABASE ANALYTICS",
                "CREATE DATABASE ANALYTICS_DEV",
                "CREATE SCHEMA ANALYTICS.MARTS",
                "CREATE SCHEMA ANALYTICS.STAGING",
                "CREATE TABLE ANALYTICS.MARTS.ORDERS (ID INT)",
                "CREATE VIEW ANALYTICS.STAGING.STG_ORDERS AS SELECT ID FROM ANALYTICS.MARTS.ORDERS",
                "CREATE USER SVC_DBT_CI",
            ]);
        });
        after(async () => {
            await fakesnow?.stop();
        });

        it("logs in with a key pair (mode-600 temp file, removed), records which audit commands fakesnow supports, maps the supported ones", async () => {
            const wh = await declaredSnowflake();
            const samples: Record<string, Record<string, string>> = {
                database: { database: "ANALYTICS" },
                role: { role: "TRANSFORMER" },
                databaseRole: { database: "ANALYTICS", databaseRole: "ANALYTICS_READ" },
                schema: { database: "ANALYTICS", schema: "MARTS" },
            };
            const before = tempKeyDirs();
            // The endpoint from the stack's warehouse.endpoint (as the profiles get it), not from SNOWFLAKE_HOST/PORT/PROTOCOL.
            const warehouse = { account: "ACME-ANALYTICS", endpoint: { host: fakesnow.host, port: fakesnow.port, protocol: "http" } };
            const env = { ...collectorEnv(fakesnow, pkcs8Pem()), SNOWFLAKE_HOST: undefined, SNOWFLAKE_PORT: undefined, SNOWFLAKE_PROTOCOL: undefined, SNOWFLAKE_PRIVATE_KEY_PATH: undefined };
            const supported: string[] = [];
            const rejected: string[] = [];
            const { rows, uncollected } = await withEnv(env, () =>
                withSnowflakeCollector(warehouse, async (run) => {
                    const dirs = tempKeyDirs().filter((d) => !before.includes(d));
                    assert.strictEqual(dirs.length, 1, "one private temp directory for the key");
                    const keyFile = path.join(os.tmpdir(), dirs[0], "audit_key.p8");
                    assert.strictEqual(fs.statSync(keyFile).mode & 0o777, 0o600, "the key file is mode 600");
                    for (const key of KEYS) {
                        const each = (SNOWFLAKE_AUDIT_QUERIES[key] as { each?: string }).each;
                        const sql = snowflakeAuditSql(key, each ? samples[each] : {});
                        const command = SNOWFLAKE_AUDIT_QUERIES[key].sql.replace(/ \{.*$/, "");
                        try {
                            const result = await run(sql);
                            assert.deepStrictEqual(result.columns, result.columns.map((c) => c.toLowerCase()), `${sql}: the connector returns SHOW columns lower-case`);
                            supported.push(command);
                        } catch (e) {
                            rejected.push(command);
                        }
                    }
                    // Read-only by construction: the collector refuses anything but one SHOW statement before it reaches the warehouse.
                    for (const sql of ["CREATE ROLE INTRUDER", "SHOW USERS; DROP USER SVC_DBT_CI"]) await assert.rejects(run(sql), /refused \(the audit only runs single SHOW statements\)/);
                    return collectSnowflakeRows(wh, run, { partial: true });
                }),
            );
            assert.deepStrictEqual(tempKeyDirs().filter((d) => !before.includes(d)), [], "the key file is removed");
            console.log(`snowflake collector on fakesnow: supported ${supported.join(", ")}; rejected ${rejected.join(", ")}`);
            assert.deepStrictEqual(supported, ["SHOW USERS", "SHOW SCHEMAS IN DATABASE", "SHOW TABLES IN DATABASE", "SHOW VIEWS IN DATABASE"]);
            // The per-role and per-database-role commands expand over SHOW ROLES / SHOW DATABASE ROLES, which fakesnow rejects: none of them runs.
            assert.deepStrictEqual(new Set(uncollected.map((u) => u.key)), new Set(["roles", "databaseRoles", "futureGrantsInDatabase", "futureGrantsInSchema"]));
            // The supported commands' rows in the recorded shape (fakesnow's SHOW SCHEMAS has no owner column; Snowflake's has).
            assert.deepStrictEqual(rows.users.map((u) => [u.name, u.default_role]), [["SVC_DBT_CI", null]]);
            assert.deepStrictEqual(rows.schemas.map((s) => `${s.database_name}.${s.name}`).filter((n) => !/information_schema/i.test(n)).sort(), ["ANALYTICS.MARTS", "ANALYTICS.STAGING"]);
            assert.deepStrictEqual(rows.tables.map((t) => [t.database_name, t.schema_name, t.name, t.owner]), [["ANALYTICS", "MARTS", "ORDERS", "SYSADMIN"]]);
            assert.deepStrictEqual(rows.views.map((v) => [v.database_name, v.schema_name, v.name, v.owner]), [["ANALYTICS", "STAGING", "STG_ORDERS", "SYSADMIN"]]);
        });

        it("the rendered audit job for the Snowflake stack, run by bash against fakesnow, reaches the audit of the collected catalog", async () => {
            const args: PlatformPipelineArgs = { ...platformArgs(["--backend", "pulumi-cloud", "--organization", "acme"]) };
            assert.strictEqual(auditKind(args, "snowflake"), "snowflake", "render:platform reads the stack's warehouse kind");
            assert.strictEqual(auditKind(args, "redshift"), "redshift");
            assert.strictEqual(auditKind(args, "dev"), "postgres");
            // Rendered files still validate, for every system.
            const github = renderPlatformGithub(args);
            for (const [name, text] of Object.entries(github)) {
                assert.deepStrictEqual(githubSchemaErrors(text), [], name);
                assert.deepStrictEqual(await githubParserErrors(name, text), [], name);
            }
            assert.deepStrictEqual(bitbucketSchemaErrors(renderPlatformBitbucket(args)["bitbucket-pipelines.yml"]), []);
            for (const text of Object.values(renderPlatformAzure(args))) assert.deepStrictEqual(azureSchemaErrors(text), []);

            const jobs = parse(github[".github/workflows/platform-audit.yml"]).jobs;
            // Postgres and Redshift jobs as they were.
            for (const stack of ["dev", "redshift"]) {
                assert.deepStrictEqual(jobs[`audit-${stack}`].env, { PGUSER: `\${{ secrets.AUDIT_PGUSER_${stack.toUpperCase()} }}`, PGPASSWORD: `\${{ secrets.AUDIT_PGPASSWORD_${stack.toUpperCase()} }}` });
                assert.strictEqual(jobs[`audit-${stack}`].steps.at(-1).run, `set -euo pipefail\nnpm ci\nnpm run --silent audit -- --stack ${stack}`);
            }
            const job = jobs["audit-snowflake"];
            assert.deepStrictEqual(job.env, {
                SNOWFLAKE_ACCOUNT: "${{ secrets.AUDIT_SNOWFLAKE_ACCOUNT_SNOWFLAKE }}",
                SNOWFLAKE_USER: "${{ secrets.AUDIT_SNOWFLAKE_USER_SNOWFLAKE }}",
                SNOWFLAKE_PRIVATE_KEY: "${{ secrets.AUDIT_SNOWFLAKE_PRIVATE_KEY_SNOWFLAKE }}",
            });
            assert.deepStrictEqual(Object.keys(auditSecretNames("snowflake", "snowflake")), Object.keys(job.env));
            const bitbucketAudit = parse(renderPlatformBitbucket(args)["bitbucket-pipelines.yml"]).pipelines.custom["platform-audit"].find((s: any) => s.step.name === "drift audit snowflake").step;
            assert.match(bitbucketAudit.script[0], /export SNOWFLAKE_ACCOUNT="\$AUDIT_SNOWFLAKE_ACCOUNT_SNOWFLAKE" SNOWFLAKE_USER="\$AUDIT_SNOWFLAKE_USER_SNOWFLAKE" SNOWFLAKE_PRIVATE_KEY="\$AUDIT_SNOWFLAKE_PRIVATE_KEY_SNOWFLAKE"/);
            const azureAudit = parse(renderPlatformAzure(args)["azure-pipelines-audit.yml"]).jobs.find((j: any) => j.job === "audit_snowflake").steps.at(-1);
            assert.strictEqual(azureAudit.env.SNOWFLAKE_PRIVATE_KEY, "$(AUDIT_SNOWFLAKE_PRIVATE_KEY_SNOWFLAKE)");

            const script: string = job.steps.at(-1).run;
            assert.strictEqual(script, "set -euo pipefail\nnpm ci\nbash scripts/python-env.sh\nnpm run --silent audit -- --stack snowflake");
            // The job's lines as they are, except that `npm ci` would replace this checkout's node_modules: it is a no-op here.
            const shim = 'npm() { if [ "$1" = ci ]; then echo "npm ci: kept the checkout\'s node_modules"; else command npm "$@"; fi; }\n';
            const base = Object.fromEntries(Object.entries(pythonEnv()).filter(([k]) => !/^(SNOWFLAKE_|PG|AUDIT_)/.test(k)));
            const key = Buffer.from(pkcs8Pem()).toString("base64");
            const runJob = (extra: Record<string, string>) =>
                spawnSync("bash", ["-c", shim + script], { cwd: ROOT, env: { ...base, ...collectorEnv(fakesnow, key), ...extra }, encoding: "utf8", timeout: 300_000 });

            // As rendered: the collector runs and stops at the first statement fakesnow rejects, naming it.
            const strict = runJob({});
            assert.strictEqual(strict.status, 2, strict.stderr);
            assert.match(strict.stderr, /Snowflake audit query roles \(SHOW ROLES\) failed/);
            assert.doesNotMatch(strict.stderr + strict.stdout, /--catalog/);

            // Past the rejected statements (fakesnow only): the audit reads the collected catalog and reports from it.
            const partial = runJob({ AUDIT_SNOWFLAKE_PARTIAL: "1" });
            assert.doesNotMatch(partial.stderr + partial.stdout, /--catalog/);
            assert.strictEqual(partial.status, 2, partial.stderr);
            const header = /^audit snowflake: (\d+) drifts from the declared plan$/m.exec(partial.stdout);
            assert.ok(header, partial.stdout);
            // Rows only the collected catalog holds: the table fakesnow's SYSADMIN owns, the declared user that is there and the one that is not.
            assert.match(partial.stdout, /changed ownership: table ANALYTICS\.MARTS\.ORDERS \(declared TRANSFORMER, live SYSADMIN\)/);
            assert.match(partial.stdout, /missing login: SVC_DBT_DEPLOY/);
            assert.doesNotMatch(partial.stdout, /missing login: SVC_DBT_CI/);
            const incomplete = /catalog incomplete, (\d+) statement\(s\) not collected/.exec(partial.stderr);
            assert.ok(incomplete, partial.stderr);
            for (const out of [strict, partial]) {
                assert.ok(!(out.stdout + out.stderr).includes(key) && !/PRIVATE KEY|MII[A-Za-z0-9+/]{20}/.test(out.stdout + out.stderr), "the key is never echoed");
            }
            console.log(`snowflake audit job on fakesnow: exit ${partial.status}, the audit read the collected catalog (${header[1]} drifts, ${incomplete[1]} statements not collected); as rendered: exit ${strict.status} at SHOW ROLES; no --catalog asked`);
        });
    });
});
