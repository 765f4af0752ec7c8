/**
 * @integration Slim CI on Snowflake with real dbt-snowflake against fakesnow's server
 * (`fakesnow -s`, started here on 127.0.0.1) and moto_server as the artifacts bucket. The profiles,
 * environment and key files are the ones SnowflakeWarehouse renders (declared under mocks with an
 * endpoint pointing at fakesnow); dbt is driven directly, as the pipelines will (phase 2 runs the
 * rendered pipeline lines). A deploy builds production and publishes the manifest; a PR builds
 * exactly `state:modified+` in CI_PR_<n> in the development database, deferring to production;
 * the cleanup macro drops the PR's schema family and nothing else.
 *
 * What this proves: the rendered dbt-snowflake profile (env_var() only, private_key_path to a
 * mode-600 key file written by the contract's lines, host/port/protocol) connects and builds; dbt
 * accepts `copy_grants`; deferral across databases; the cleanup macro. What it cannot prove:
 * fakesnow accepts any login (the key pair is loaded and signed by the connector but not checked)
 * and rejects CREATE ROLE, GRANT, SHOW GRANTS and RSA_PUBLIC_KEY, so the access plan is not
 * executed here: it is asserted under mocks (test/snowflake.test.ts) and rendered as SQL for review.
 */
import assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse, stringify } from "yaml";
import { pullRequestSchemaName, SnowflakeWarehouse, writeFileLines } from "../components/warehouse";
import { LATEST_MANIFEST_KEY } from "../components/aws/artifactStore";
import { allModels, changeOneModel, copyFixture, descendants, modelsBuilt, PROFILE_NAME } from "./support/dbtProject";
import { FakesnowServer, startFakesnow } from "./support/fakesnow";
import { MotoServer, startMoto } from "./support/moto";
import { ensurePythonEnv, pythonEnv } from "./support/python";
import { installMocks, resolve } from "../scripts/offline";

const BUCKET = "acme-dbt-snowflake";
/** Mid-DAG: one staging parent (deferred), four models downstream, one of them fan-in. */
const CHANGED = "int_customer_sessions";
const PR = 42;
/**
 * Not seed 002's ANALYTICS.ANALYTICS: fakesnow (DuckDB) cannot resolve a view's references when a
 * schema has its database's name ("Ambiguous reference to catalog or schema"). Real Snowflake can.
 */
const PRODUCTION_SCHEMA = "DBT_PROD";

function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): { code: number; output: string } {
    const r = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", script], { cwd, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    return { code: r.status ?? 1, output: `${r.stdout}${r.stderr}` };
}

describe("Snowflake slim CI with real dbt-snowflake on fakesnow @integration", function () {
    this.timeout(900_000);
    let snow: FakesnowServer;
    let moto: MotoServer;
    let wh: SnowflakeWarehouse;
    let env: Record<string, string>;
    let tmp: string;
    let profilesDir: string;
    let prodDir: string;
    let prDir: string;

    /** Runs a job's lines: write the target's key file (the contract's lines), then `script`. */
    const job = (target: string, script: string, cwd: string, extra: Record<string, string> = {}) =>
        bash(["set -eu", ...writeFileLines(wh.targetEnv[target]), script].join("\n"), cwd, pythonEnv({ ...moto.env, ...env, ...extra, DBT_PROFILES_DIR: profilesDir, RUNNER_TEMP: tmp, DBT_LOG_PATH: path.join(tmp, "logs") }));
    const schemas = async (database: string) =>
        (await snow.sql([`select schema_name from ${database}.information_schema.schemata where schema_name <> 'INFORMATION_SCHEMA' order by 1`])).map((r) => String(r[0]));
    // Tables and views (fakesnow lists views only in information_schema.views; Snowflake in both).
    const relations = async (database: string, schema: string) =>
        (
            await snow.sql([
                `select table_name from ${database}.information_schema.tables where table_schema = '${schema}' ` +
                    `union select table_name from ${database}.information_schema.views where table_schema = '${schema}' order by 1`,
            ])
        ).map((r) => String(r[0]).toLowerCase());

    before(async function () {
        ensurePythonEnv();
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "snowflake-e2e-"));
        [snow, moto] = await Promise.all([startFakesnow(), startMoto()]);
        await moto.createBucket(BUCKET);

        // The component, under mocks, with the endpoint dbt must reach (fakesnow over http).
        const { settle } = await installMocks("snowflake");
        wh = new SnowflakeWarehouse("analytics", {
            account: "ACME-ANALYTICS",
            admin: { user: "PULUMI_ADMIN" },
            productionSchema: PRODUCTION_SCHEMA,
            users: [
                { name: "SVC_DBT_CI", duty: "ci" },
                { name: "SVC_DBT_DEPLOY", duty: "deploy" },
            ],
            profile: PROFILE_NAME,
            endpoint: { host: snow.host, port: snow.port, protocol: "http" },
        });
        await settle();
        env = (await resolve(wh.profileEnvironment)).value;
        profilesDir = path.join(tmp, "profiles");
        fs.mkdirSync(profilesDir);
        fs.writeFileSync(path.join(profilesDir, "profiles.yml"), (await resolve(wh.profilesYaml)).value);

        // What `pulumi up` creates (fakesnow takes CREATE DATABASE; roles and grants it rejects).
        await snow.sql(Object.values(wh.databases).map((d) => `create database if not exists ${d}`));

        const repo = (dir: string) => {
            copyFixture(dir);
            // The project configuration the warehouse asks for: copy grants across `create or replace`.
            const projectFile = path.join(dir, "dbt_project.yml");
            const project = parse(fs.readFileSync(projectFile, "utf8"));
            project.models = { ...wh.dbtProjectConfig.models, ...project.models };
            fs.writeFileSync(projectFile, stringify(project));
            fs.mkdirSync(path.join(dir, "macros"), { recursive: true });
            fs.writeFileSync(path.join(dir, "macros", `${wh.pullRequestSchemas.dropMacroName}.sql`), wh.pullRequestSchemas.dropMacro);
            return dir;
        };
        prodDir = repo(path.join(tmp, "main"));
        prDir = repo(path.join(tmp, "pr"));
        changeOneModel(prDir, CHANGED);
    });

    after(async function () {
        this.timeout(60_000);
        await Promise.allSettled([snow?.stop(), moto?.stop()]);
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("deploy: builds production with the rendered profile and a mode-600 key file, and publishes the manifest", async () => {
        const r = job(
            "prod",
            [
                'test "$(stat -c %a "$DBT_PROD_PRIVATE_KEY_PATH")" = 600',
                'head -1 "$DBT_PROD_PRIVATE_KEY_PATH" | grep -qx -- "-----BEGIN PRIVATE KEY-----"',
                "dbt build --target prod --fail-fast",
                `aws s3 cp target/manifest.json s3://${BUCKET}/${LATEST_MANIFEST_KEY}`,
            ].join("\n"),
            prodDir,
        );
        assert.strictEqual(r.code, 0, r.output.slice(-3000));
        const manifest = path.join(prodDir, "target", "manifest.json");
        const models = allModels(manifest);
        assert.deepStrictEqual(modelsBuilt(path.join(prodDir, "target", "run_results.json")), models);
        const built = await relations(wh.databases.production, PRODUCTION_SCHEMA);
        for (const id of models) assert.ok(built.includes(id.split(".").pop()!), `${id} missing from ${wh.databases.production}.${PRODUCTION_SCHEMA}`);
        // dbt rendered `copy grants` into every replace, as the project config asks.
        const compiledRun = fs.readFileSync(path.join(prodDir, "target", "run", "acme_analytics", "models", "marts", "dim_customers.sql"), "utf8");
        assert.match(compiledRun, /copy grants/i);
        const published = await moto.getObject(BUCKET, LATEST_MANIFEST_KEY);
        assert.ok(published, "manifest not published");
        assert.deepStrictEqual(Object.keys(JSON.parse(published.toString()).nodes).sort(), Object.keys(JSON.parse(fs.readFileSync(manifest, "utf8")).nodes).sort());
    });

    it(`PR ${PR}: builds exactly state:modified+ in CI_PR_${PR} of the development database, deferring to production`, async () => {
        const schema = pullRequestSchemaName(wh.pullRequestSchemas, PR);
        assert.strictEqual(schema, `CI_PR_${PR}`);
        const r = job(
            "ci",
            [
                "mkdir -p .state",
                `aws s3 cp s3://${BUCKET}/${LATEST_MANIFEST_KEY} .state/manifest.json`,
                "dbt build --target ci --select state:modified+ --defer --state .state --fail-fast",
            ].join("\n"),
            prDir,
            { DBT_CI_SCHEMA: schema },
        );
        assert.strictEqual(r.code, 0, r.output.slice(-3000));
        const manifest = path.join(prDir, "target", "manifest.json");
        const built = modelsBuilt(path.join(prDir, "target", "run_results.json"));
        const minimal = descendants(manifest, CHANGED);
        const total = allModels(manifest).length;
        console.log(`      slim ci (snowflake): built ${built.length} of ${total} models (minimal ${minimal.length})`);
        assert.deepStrictEqual(built, minimal);
        assert.ok(minimal.length < total / 2);
        // Exactly those relations landed in the PR schema of ANALYTICS_DEV ...
        assert.deepStrictEqual(await relations(wh.databases.development, schema), minimal.map((id) => id.split(".").pop()!).sort());
        // ... and the changed model read its unchanged parent from production (deferral across databases).
        const compiled = fs.readFileSync(path.join(prDir, "target", "compiled", "acme_analytics", "models", "intermediate", `${CHANGED}.sql`), "utf8");
        assert.match(compiled, new RegExp(`${wh.databases.production}\\.${PRODUCTION_SCHEMA}\\.stg_`, "i"));
        assert.doesNotMatch(compiled, new RegExp(`${wh.databases.development}\\.`, "i"));
    });

    it(`cleanup: drops CI_PR_${PR} and CI_PR_${PR}_<custom>, keeps other PRs and production, refuses other names`, async () => {
        // Schemas dbt would create for PR 42's custom schemas, and other PRs' (created as the CI role would).
        await snow.sql([`create schema ${wh.databases.development}.CI_PR_${PR}_STAGING`, `create schema ${wh.databases.development}.CI_PR_${PR}0`, `create schema ${wh.databases.development}.CI_PR_4`]);
        const refused = job("ci", `dbt run-operation ${wh.pullRequestSchemas.dropMacroName} --target ci --args "{schema_name: ${PRODUCTION_SCHEMA}}"`, prDir, { DBT_CI_SCHEMA: `CI_PR_${PR}` });
        assert.notStrictEqual(refused.code, 0);
        assert.match(refused.output, new RegExp(`refusing to drop ${PRODUCTION_SCHEMA}`));

        const r = job("ci", `dbt run-operation ${wh.pullRequestSchemas.dropMacroName} --target ci --args "{schema_name: $DBT_CI_SCHEMA}"`, prDir, { DBT_CI_SCHEMA: `CI_PR_${PR}` });
        assert.strictEqual(r.code, 0, r.output.slice(-3000));
        assert.match(r.output, new RegExp(`dropped schema ${wh.databases.development}\\.CI_PR_${PR}\\b`));
        assert.deepStrictEqual(await schemas(wh.databases.development), [`CI_PR_${PR}0`, "CI_PR_4"].sort());
        assert.ok((await schemas(wh.databases.production)).includes(PRODUCTION_SCHEMA), "production schema must survive");
        assert.ok((await relations(wh.databases.production, PRODUCTION_SCHEMA)).length > 30, "production relations must survive");
    });
});
