/**
 * @integration Slim CI on Snowflake through the RENDERED pipelines: the snowflake stack
 * (Pulumi.snowflake.yaml, evaluated by the program under mocks with its endpoint pointed at
 * fakesnow's server, `fakesnow -s` on 127.0.0.1) renders .github/workflows/ci.yml and deploy.yml,
 * and their very shell lines run (test/support/ciRun.ts: each `run` step in its own bash, the job
 * env's expressions evaluated) with real dbt-snowflake, moto_server as the artifacts bucket and as
 * Secrets Manager. The two actions the workflows use are emulated as GitHub runs them:
 * configure-aws-credentials assumes the role the file names (moto's STS), and
 * aws-secretsmanager-get-secrets reads each `secret-ids` entry from moto's Secrets Manager with that
 * role and exports `<ALIAS>_<KEY>` per JSON key (parse-json-secrets). The secrets hold exactly what
 * WarehouseCredentials records for the stack (the warehouse contract's credentialSecrets).
 *
 * A deploy builds production and publishes the manifest; a PR builds exactly `state:modified+` in
 * CI_PR_<n> of the development database, deferring to production, and its cleanup step drops the
 * PR's schema family (CI_PR_<n>, CI_PR_<n>_<custom>) and nothing else.
 *
 * What this proves: the rendered jobs (install line, credential secret → env, private key written
 * to a mode-600 file whose path profiles.yml reads as private_key_path, PR schema, reset and
 * cleanup macro calls, manifest fetch and publish) work end to end with dbt-snowflake; dbt accepts
 * `copy_grants`; deferral across databases. What it cannot prove: fakesnow accepts any login (the
 * key pair is loaded and signed by the connector but not checked) and rejects CREATE ROLE, GRANT,
 * SHOW GRANTS and RSA_PUBLIC_KEY, so the access plan is not executed here: it is asserted under
 * mocks (test/snowflake.test.ts) and rendered as SQL for review (sql/snowflake.sql).
 */
import assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse, stringify } from "yaml";
import { LATEST_MANIFEST_KEY } from "../components/aws/artifactStore";
import { COPY_GRANTS_PROJECT_CONFIG } from "../components/warehouse/snowflake/plan";
import { runGithubJob } from "./support/ciRun";
import { allModels, changeOneModel, copyFixture, descendants, modelsBuilt, PROFILE_NAME } from "./support/dbtProject";
import { FakesnowServer, startFakesnow } from "./support/fakesnow";
import { MotoServer, startMoto } from "./support/moto";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "./support/python";
import { Recorded, resolve, ROOT, runProgram, toPulumiConfig } from "../scripts/offline";

const STACK = "snowflake";
const BUCKET = "acme-dbt-snowflake-e2e";
/** Mid-DAG: one staging parent (deferred), four models downstream, one of them fan-in. */
const CHANGED = "int_customer_sessions";
const PR = 42;
const SECRETS_ACTION = "aws-actions/aws-secretsmanager-get-secrets";

describe("Snowflake slim CI through the rendered GitHub workflows, real dbt-snowflake on fakesnow @integration", function () {
    this.timeout(900_000);
    let snow: FakesnowServer;
    let moto: MotoServer;
    let files: Record<string, string>;
    let databases: { production: string; development: string };
    let productionSchema: string;
    let tmp: string;
    const dirs: string[] = [];

    /** The venv's AWS CLI against moto with `env`'s credentials (the job's role, or the test's keys). */
    const awsCli = (args: string[], env: NodeJS.ProcessEnv) => {
        const r = spawnSync(path.join(VENV_BIN, "aws"), args, { env, encoding: "utf8" });
        if (r.status !== 0) throw new Error(`aws ${args.join(" ")} failed: ${r.stderr}`);
        return r.stdout;
    };

    /** A dbt repository checkout: the fixture, the rendered files and the project config the warehouse asks for. */
    function checkout(change: boolean): string {
        const dir = fs.mkdtempSync(path.join(tmp, "repo-"));
        dirs.push(dir);
        copyFixture(dir);
        for (const [rel, text] of Object.entries(files)) {
            fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
            fs.writeFileSync(path.join(dir, rel), text);
        }
        // copy_grants across dbt's `create or replace` (SnowflakeWarehouse.dbtProjectConfig).
        const projectFile = path.join(dir, "dbt_project.yml");
        const project = parse(fs.readFileSync(projectFile, "utf8"));
        project.models = { ...COPY_GRANTS_PROJECT_CONFIG.models, ...project.models };
        fs.writeFileSync(projectFile, stringify(project));
        if (change) changeOneModel(dir, CHANGED);
        return dir;
    }

    /** Runs a workflow job as GitHub would; the two `uses:` steps are emulated as described above. */
    function runJob(job: any, dir: string, context: Record<string, string>, between?: () => void | Promise<void>) {
        const runnerTemp = fs.mkdtempSync(path.join(tmp, "runner-"));
        const env = pythonEnv({ AWS_ENDPOINT_URL: moto.endpoint, RUNNER_TEMP: runnerTemp, DBT_LOG_PATH: path.join(runnerTemp, "logs") });
        const read: string[] = [];
        const onUses = (step: any, jobEnv: NodeJS.ProcessEnv) => {
            const uses = String(step.uses);
            if (uses.startsWith("aws-actions/configure-aws-credentials")) {
                const token = path.join(runnerTemp, "oidc-token");
                fs.writeFileSync(token, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJnaCJ9.");
                Object.assign(jobEnv, { AWS_ROLE_ARN: step.with["role-to-assume"], AWS_WEB_IDENTITY_TOKEN_FILE: token, AWS_DEFAULT_REGION: step.with["aws-region"] });
            } else if (uses.startsWith(`${SECRETS_ACTION}@`)) {
                assert.strictEqual(String(step.with["parse-json-secrets"]), "true");
                // One `ALIAS, secret-id` per line; with the job's role (no static keys), like the action.
                for (const line of String(step.with["secret-ids"]).split("\n").filter((l) => l.trim())) {
                    const [alias, id] = line.split(",").map((x) => x.trim());
                    const json = JSON.parse(awsCli(["secretsmanager", "get-secret-value", "--secret-id", id, "--query", "SecretString", "--output", "text"], jobEnv));
                    for (const [k, v] of Object.entries(json)) jobEnv[`${alias}_${k.toUpperCase().replace(/[^A-Z0-9_]/g, "_")}`] = String(v);
                    read.push(id);
                }
            } else if (!uses.startsWith("actions/checkout@") && !uses.startsWith("actions/setup-python@") && !uses.startsWith("actions/cache@")) {
                // Checkout and Python are the test's own (the checkout dir, the venv); a cache step is a miss (cold caches).
                throw new Error(`the workflow uses ${uses}, which this test does not emulate`);
            }
        };
        return runGithubJob(job, dir, { settings: {}, context, env, onUses }, { beforeCleanup: between }).then((r) => ({ ...r, read, runnerTemp }));
    }

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

    // A push to main (the deploy's FULL_BUILD expression reads the event: a push is a slim deploy).
    const ghContext = { "github.run_id": "7001", "github.run_attempt": "1", "github.ref_name": "main", "github.event_name != 'push' && 'true' || 'false'": "false" };

    before(async function () {
        ensurePythonEnv();
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "snowflake-e2e-"));
        [snow, moto] = await Promise.all([startFakesnow(), startMoto()]);
        await moto.createBucket(BUCKET);

        // The snowflake stack, pointed at the test servers: dbt reaches fakesnow over http; no docs site (no CloudFront here).
        const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.${STACK}.yaml`, "utf8")).config;
        const wh = doc["dbt-platform:warehouse"];
        wh.endpoint = { host: snow.host, port: snow.port, protocol: "http" };
        doc["dbt-platform:dbt"].profile = PROFILE_NAME;
        doc["dbt-platform:aws"].artifacts.bucketName = BUCKET;
        doc["dbt-platform:features"] = { ...doc["dbt-platform:features"], docsSite: false };
        delete doc["dbt-platform:aws"].docs;
        const { resources, exports } = await runProgram(STACK, toPulumiConfig(doc));
        files = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
        databases = wh.databases;
        productionSchema = wh.schemas.production;

        // What `pulumi up` creates: the databases (fakesnow takes CREATE DATABASE; roles and grants it rejects) and
        // the credential secrets, with exactly the JSON WarehouseCredentials records.
        await snow.sql(Object.values(databases).map((d) => `create database if not exists ${d}`));
        const secretNames = exports.credentialSecretNames as unknown as Record<string, import("@pulumi/pulumi").Output<string>>;
        for (const [target, output] of Object.entries(secretNames)) {
            const name = (await resolve(output)).value;
            const version = resources.find((r: Recorded) => r.type === "aws:secretsmanager/secretVersion:SecretVersion" && r.name === `dbt-${STACK}-credentials-${target}-version`);
            assert.ok(version, `no recorded secret version for ${target}`);
            awsCli(["secretsmanager", "create-secret", "--name", name, "--secret-string", version.inputs.secretString], pythonEnv(moto.env));
        }
    });

    after(async function () {
        this.timeout(60_000);
        await Promise.allSettled([snow?.stop(), moto?.stop()]);
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("the rendered jobs install dbt-snowflake and read the credential secret, never a GitHub secret", () => {
        for (const f of [".github/workflows/ci.yml", ".github/workflows/deploy.yml"]) {
            const text = files[f];
            assert.match(text, /dbt-snowflake==\d+\.\d+\.\d+/, f);
            assert.match(text, new RegExp(`uses: ${SECRETS_ACTION}@[0-9a-f]{40} # v`), f);
            assert.doesNotMatch(text, /\$\{\{\s*(secrets|vars)\./, `${f} reads GitHub secrets or variables`);
            assert.doesNotMatch(text, /BEGIN PRIVATE KEY/, `${f} holds a key`);
        }
        assert.match(parse(files[".ci/profiles.yml"])[PROFILE_NAME].outputs.ci.private_key_path, /env_var\('DBT_CI_PRIVATE_KEY_PATH'\)/);
    });

    it("deploy.yml: builds production with the key from Secrets Manager in a mode-600 file, and publishes the manifest", async () => {
        const deploy = parse(files[".github/workflows/deploy.yml"]).jobs.deploy;
        const dir = checkout(false);
        const r = await runJob(deploy, dir, ghContext);
        assert.strictEqual(r.code, 0, r.output.slice(-3000));
        assert.deepStrictEqual(r.read, [`dbt/${STACK}/prod`]);
        // The key file the preamble wrote, where profiles.yml's private_key_path points, readable by the owner only.
        const key = path.join(r.runnerTemp, "dbt-platform", "prod-snowflake-key.p8");
        assert.strictEqual((fs.statSync(key).mode & 0o777).toString(8), "600");
        assert.match(fs.readFileSync(key, "utf8"), /^-----BEGIN PRIVATE KEY-----\n/);
        assert.match(r.output, /dbt-core 1\.11\.\d+ dbt-snowflake 1\.11\.\d+/);
        const manifest = path.join(dir, "target", "manifest.json");
        const models = allModels(manifest);
        assert.deepStrictEqual(modelsBuilt(path.join(dir, "target", "run_results.json")), models);
        const built = await relations(databases.production, productionSchema);
        for (const id of models) assert.ok(built.includes(id.split(".").pop()!), `${id} missing from ${databases.production}.${productionSchema}`);
        // dbt rendered `copy grants` into every replace, as the project config asks.
        assert.match(fs.readFileSync(path.join(dir, "target", "run", PROFILE_NAME, "models", "marts", "dim_customers.sql"), "utf8"), /copy grants/i);
        const published = await moto.getObject(BUCKET, LATEST_MANIFEST_KEY);
        assert.ok(published, "manifest not published");
        assert.deepStrictEqual(Object.keys(JSON.parse(published.toString()).nodes).sort(), Object.keys(JSON.parse(fs.readFileSync(manifest, "utf8")).nodes).sort());
        assert.deepStrictEqual(await moto.listKeys(BUCKET, "artifacts/history/7001-1/"), ["artifacts/history/7001-1/manifest.json", "artifacts/history/7001-1/run_results.json"]);
    });

    it(`ci.yml, PR ${PR}: builds exactly state:modified+ in CI_PR_${PR} deferring to production, then drops the PR's schema family`, async () => {
        const schema = `CI_PR_${PR}`;
        // Left over from an earlier run of this PR (a custom schema), and other PRs' schemas the cleanup must keep.
        await snow.sql([`create schema ${databases.development}.${schema}_STAGING`, `create schema ${databases.development}.${schema}0`, `create schema ${databases.development}.CI_PR_4`]);
        const rendered = parse(files[".github/workflows/ci.yml"]).jobs["slim-ci"];
        // The build step's one dbt process drops the PR's schemas last (its `!` command). To look into the PR schema
        // first, this run leaves that command out: the always-run cleanup step then drops them (its fallback).
        const finallyCleanup = / "!run-operation dbt_platform_drop_pr_schema [^\n]*?\}\\""/g;
        const ci = { ...rendered, steps: rendered.steps.map((s: any) => (s.run && finallyCleanup.test(s.run) ? { ...s, run: s.run.replace(finallyCleanup, "") } : s)) };
        assert.notDeepStrictEqual(ci, rendered, "the build step has no cleanup command");
        const dir = checkout(true);
        let built: string[] = [];
        let inPrSchema: string[] = [];
        const r = await runJob(
            ci,
            dir,
            {
                ...ghContext,
                "github.event.pull_request.number": String(PR),
                "github.base_ref": "main",
                "github.event.pull_request.head.repo.full_name != github.repository": "false",
                "github.event.pull_request.head.repo.full_name == github.repository": "true",
            },
            async () => {
                built = modelsBuilt(path.join(dir, "target", "run_results.json"));
                inPrSchema = await relations(databases.development, schema);
            },
        );
        assert.strictEqual(r.code, 0, r.output.slice(-3000));
        assert.deepStrictEqual(r.read, [`dbt/${STACK}/ci`]);
        assert.match(r.output, /Deferring to the production manifest/);
        const manifest = path.join(dir, "target", "manifest.json");
        const minimal = descendants(manifest, CHANGED);
        const total = allModels(manifest).length;
        console.log(`      slim ci (snowflake): built ${built.length} of ${total} models (minimal ${minimal.length})`);
        assert.deepStrictEqual(built, minimal);
        assert.ok(minimal.length < total / 2);
        // Exactly those relations landed in the PR schema of the development database ...
        assert.deepStrictEqual(inPrSchema, minimal.map((id) => id.split(".").pop()!).sort());
        // ... and the changed model read its unchanged parent from production (deferral across databases).
        const compiled = fs.readFileSync(path.join(dir, "target", "compiled", PROFILE_NAME, "models", "intermediate", `${CHANGED}.sql`), "utf8");
        assert.match(compiled, new RegExp(`${databases.production}\\.${productionSchema}\\.stg_`, "i"));
        assert.doesNotMatch(compiled, new RegExp(`${databases.development}\\.`, "i"));
        // The cleanup step dropped the family (CI_PR_42, CI_PR_42_STAGING), kept other PRs' schemas and production.
        assert.match(r.output, new RegExp(`dropped schema ${databases.development}\\.${schema}\\b`));
        assert.deepStrictEqual(await schemas(databases.development), [`${schema}0`, "CI_PR_4"].sort());
        assert.ok((await relations(databases.production, productionSchema)).length >= total, "production relations must survive");

        // The job as rendered (a re-push of the PR): the build step's own cleanup drops the family, the always-run step has nothing left to do.
        await snow.sql([`create schema ${databases.development}.${schema}_STAGING`]);
        const again = await runJob(rendered, checkout(true), {
            ...ghContext,
            "github.run_id": "7002",
            "github.event.pull_request.number": String(PR),
            "github.base_ref": "main",
            "github.event.pull_request.head.repo.full_name != github.repository": "false",
            "github.event.pull_request.head.repo.full_name == github.repository": "true",
        });
        assert.strictEqual(again.code, 0, again.output.slice(-3000));
        // The last drop is the driver's `!` command, after the build (the first one is its reset).
        const lastDrop = again.output.slice(again.output.lastIndexOf("dbt-platform: dbt run-operation dbt_platform_drop_pr_schema"));
        assert.ok(again.output.indexOf("dbt-platform: dbt build") < again.output.lastIndexOf("dbt-platform: dbt run-operation dbt_platform_drop_pr_schema"), again.output.slice(-3000));
        assert.match(lastDrop, new RegExp(`dropped schema ${databases.development}\\.${schema}\\b`), lastDrop);
        assert.match(again.output, /The build step already dropped the pull request's schemas/);
        assert.deepStrictEqual(await schemas(databases.development), [`${schema}0`, "CI_PR_4"].sort());
    });

    it("the rendered cleanup macro refuses any schema that is not CI_PR_<n>", async () => {
        const ci = parse(files[".github/workflows/ci.yml"]).jobs["slim-ci"];
        const cleanup = ci.steps.find((s: any) => s.name === "Drop the pull request's schemas");
        assert.ok(cleanup, "no cleanup step");
        // The cleanup step's own lines, with the schema variable pointing at production.
        const dir = checkout(false);
        const job = { ...ci, steps: [...ci.steps.filter((s: any) => s.uses), { ...cleanup, run: cleanup.run.replace(/export DBT_CI_SCHEMA=.*\n/, `export DBT_CI_SCHEMA=${productionSchema}\n`) }] };
        const context = {
            ...ghContext,
            "github.event.pull_request.number": String(PR),
            "github.base_ref": "main",
            "github.event.pull_request.head.repo.full_name != github.repository": "false",
            "github.event.pull_request.head.repo.full_name == github.repository": "true",
        };
        const r = await runJob({ ...job, steps: job.steps.map((s: any) => (s.run ? { ...s, "continue-on-error": false } : s)) }, dir, context);
        assert.notStrictEqual(r.code, 0);
        assert.match(r.output, new RegExp(`refusing to drop ${productionSchema}`));
        assert.ok((await schemas(databases.production)).includes(productionSchema), "production schema must survive");
    });
});
