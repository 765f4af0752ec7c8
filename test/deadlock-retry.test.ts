/**
 * @integration Deploys survive a Postgres deadlock (issue 16 follow-up): the deploy job's rendered
 * build lines run with real dbt on a real Postgres against a project where one model deadlocks
 * (SQLSTATE 40P01) a set number of times. A deadlock is retried with `dbt retry` (at most twice),
 * in the full build and in the slim deploy; any other failure fails the job at once. The scheduled
 * runner's entrypoint (what the Fargate task runs) does the same, with moto_server as the bucket.
 */
import assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { renderEntrypoint } from "../components/aws/scheduled/runner";
import { pipelineModel } from "../components/pipelines/model";
import { parseStackConfig } from "../components/config";
import { pipelineContext } from "../components/platform";
import { withCiSystem } from "../scripts/render";
import { ROOT, toPulumiConfig } from "../scripts/offline";
import { bash, RunResult } from "./support/ciRun";
import { MotoServer, startMoto } from "./support/moto";
import { startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv, pythonEnv } from "./support/python";

const DATABASE = "postgres";
const ROLES = { bucket: "acme-dbt-deadlock", pullRequestRoleArn: "arn:aws:iam::123456789012:role/pr", deployRoleArn: "arn:aws:iam::123456789012:role/deploy" };

/**
 * `flaky` calls dl_flaky(), which raises `deadlock detected` (40P01) while the sequence is at or
 * below dl_deadlocks.n: a sequence's nextval survives the failed transaction's rollback.
 */
const SETUP = `
create table if not exists public.dl_deadlocks (n int not null);
create sequence if not exists public.dl_calls;
create or replace function public.dl_flaky() returns int language plpgsql volatile as $$
begin
  if nextval('public.dl_calls') <= (select n from public.dl_deadlocks) then
    raise exception 'deadlock detected' using errcode = '40P01', detail = 'Process 4242 waits for AccessExclusiveLock on relation 1259 (test)';
  end if;
  return 1;
end $$;`;

/** The project: a deadlocking table with a view and a table downstream, and independent models. */
const MODELS: Record<string, string> = {
    base: "{{ config(materialized='table') }} select 1 as id",
    flaky: "{{ config(materialized='table') }} select b.id, public.dl_flaky() as ok from {{ ref('base') }} b",
    down_view: "{{ config(materialized='view') }} select id from {{ ref('flaky') }}",
    down_table: "{{ config(materialized='table') }} select id from {{ ref('down_view') }}",
    other_a: "{{ config(materialized='table') }} select 2 as id",
    other_b: "{{ config(materialized='view') }} select id from {{ ref('other_a') }}",
};

function project(schema: string, extra: Record<string, string> = {}): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-deadlock-"));
    fs.writeFileSync(path.join(dir, "dbt_project.yml"), "name: deadlock\nversion: '1.0'\nconfig-version: 2\nprofile: deadlock\nmodel-paths: [models]\n");
    fs.mkdirSync(path.join(dir, "models"));
    for (const [name, sql] of Object.entries({ ...MODELS, ...extra })) fs.writeFileSync(path.join(dir, "models", `${name}.sql`), `${sql}\n`);
    fs.mkdirSync(path.join(dir, ".ci"));
    // The deploy job's variables, as the rendered profiles.yml reads them; 4 threads as in production.
    const env = (v: string) => `"{{ env_var('DBT_PROD_${v}') }}"`;
    fs.writeFileSync(
        path.join(dir, ".ci", "profiles.yml"),
        `deadlock:\n  target: prod\n  outputs:\n    prod:\n      type: postgres\n      threads: 4\n      host: ${env("HOST")}\n      port: "{{ env_var('DBT_PROD_PORT') | int }}"\n      user: ${env("USER")}\n      password: ${env("PASSWORD")}\n      dbname: ${env("DBNAME")}\n      schema: ${schema}\n`,
    );
    return dir;
}

describe("deploys retry a Postgres deadlock with dbt retry @integration", function () {
    this.timeout(900_000);
    let server: TestServer;
    let moto: MotoServer;
    let buildScript: string;
    const dirs: string[] = [];

    /** The job's (or the task's) environment: the prod target's variables pointing at the test server. */
    function targetEnv(dir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
        return pythonEnv({
            DBT_PROFILES_DIR: ".ci",
            DBT_LOG_PATH: path.join(dir, "logs"),
            DBT_PROD_HOST: server.host,
            DBT_PROD_PORT: String(server.port),
            DBT_PROD_USER: server.adminUser,
            DBT_PROD_PASSWORD: server.adminPassword,
            DBT_PROD_DBNAME: DATABASE,
            DBT_PROD_SCHEMA: "unused",
            ...extra,
        });
    }

    /** Runs the deploy job's build step as rendered (its preamble included) in `dir`. */
    function deployBuild(dir: string, extra: Record<string, string> = {}): RunResult {
        const r = bash(buildScript, dir, targetEnv(dir, extra), []);
        return { code: r.code, output: r.output.replace(/\x1b\[[0-9;]*m/g, "") };
    }

    async function deadlocks(n: number): Promise<void> {
        await server.admin(DATABASE, "truncate public.dl_deadlocks");
        await server.admin(DATABASE, "insert into public.dl_deadlocks values ($1)", [n]);
        await server.admin(DATABASE, "alter sequence public.dl_calls restart with 1");
    }

    /** Models of `names` that exist as relations in `schema`. */
    async function built(schema: string, names: string[]): Promise<string[]> {
        const rows = await server.admin<{ relname: string }>(DATABASE, "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('r', 'v')", [schema]);
        return names.filter((m) => rows.some((r) => r.relname === m));
    }

    const retries = (out: string) => (out.match(/deadlock \(40P01\): dbt retry \d of 2/g) ?? []).length;

    before(async function () {
        ensurePythonEnv();
        [server, moto] = await Promise.all([startPostgres(), startMoto()]);
        await moto.createBucket(ROLES.bucket);
        await server.admin(DATABASE, SETUP);
        const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.prod.yaml`, "utf8")).config;
        doc["dbt-platform:features"] = { docsSite: false, scheduledRuns: false, projectEvaluator: false };
        delete doc["dbt-platform:scheduledRuns"];
        const scripts = (["github", "bitbucket", "azure-devops"] as const).map((system) => {
            const { config } = withCiSystem(toPulumiConfig(doc), system);
            const model = pipelineModel(pipelineContext(parseStackConfig("prod", config), undefined, ROLES));
            return model.jobs.find((j) => j.id === "deploy")!.steps.find((s) => s.id === "build")!.lines.join("\n");
        });
        // The lines live in the model: the three CI systems run the same build step.
        assert.ok(scripts.every((s) => s === scripts[0]), "the build step differs between CI systems");
        buildScript = scripts[0];
    });

    after(async function () {
        for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
        await Promise.all([server?.stop(), moto?.stop()]);
    });

    it("a full build that deadlocks once is retried and builds every model", async () => {
        const dir = project("dl_full");
        dirs.push(dir);
        await deadlocks(1);
        const r = deployBuild(dir, { FULL_BUILD: "true" });
        const models = Object.keys(MODELS);
        const ok = await built("dl_full", models);
        console.log(`deadlock: retried ${retries(r.output)} time(s), built ${ok.length} of ${models.length} models`);
        assert.strictEqual(r.code, 0, r.output);
        assert.strictEqual(retries(r.output), 1, r.output);
        assert.match(r.output, /deadlock detected/);
        assert.deepStrictEqual(ok, models);
        // The retry runs one node at a time: concurrent drops are what deadlock (a 4-thread retry of a 500-model
        // full build deadlocked again on both tries).
        const retry = r.output.slice(r.output.indexOf("dbt retry 1 of 2"));
        assert.match(retry, /Concurrency: 1 threads \(target='prod'\)/, retry.slice(0, 2000));
    });

    it("a slim deploy (state:modified+ with deferral) that deadlocks is retried", async () => {
        const dir = project("dl_slim");
        dirs.push(dir);
        await deadlocks(0);
        const first = deployBuild(dir);
        assert.strictEqual(first.code, 0, first.output);
        // The last good production manifest, then a merge that changes the deadlocking model.
        fs.mkdirSync(path.join(dir, ".state"));
        fs.copyFileSync(path.join(dir, "target", "manifest.json"), path.join(dir, ".state", "manifest.json"));
        fs.writeFileSync(path.join(dir, "models", "flaky.sql"), `${MODELS.flaky} where b.id > 0\n`);
        await server.admin(DATABASE, "drop view dl_slim.down_view cascade");
        await deadlocks(1);
        const r = deployBuild(dir);
        const ok = await built("dl_slim", Object.keys(MODELS));
        console.log(`deadlock: retried ${retries(r.output)} time(s), built ${ok.length} of ${Object.keys(MODELS).length} models`);
        assert.strictEqual(r.code, 0, r.output);
        assert.match(r.output, /Slim deploy: building state:modified\+/);
        assert.strictEqual(retries(r.output), 1, r.output);
        assert.deepStrictEqual(ok, Object.keys(MODELS));
    });

    it("a deadlock that persists is retried at most twice, then fails the job", async () => {
        const dir = project("dl_persist");
        dirs.push(dir);
        await deadlocks(10);
        const r = deployBuild(dir, { FULL_BUILD: "true" });
        const ok = await built("dl_persist", Object.keys(MODELS));
        console.log(`deadlock: retried ${retries(r.output)} time(s), built ${ok.length} of ${Object.keys(MODELS).length} models`);
        assert.notStrictEqual(r.code, 0, r.output);
        assert.strictEqual(retries(r.output), 2, r.output);
        assert.ok(!ok.includes("flaky") && !ok.includes("down_view") && !ok.includes("down_table"), ok.join(","));
    });

    it("any other failure fails the job at once: a failing model is not retried", async () => {
        const dir = project("dl_broken", { broken: "{{ config(materialized='table') }} select 1 / 0 as id from {{ ref('base') }}", after_broken: "select id from {{ ref('broken') }}" });
        dirs.push(dir);
        await deadlocks(0);
        const r = deployBuild(dir, { FULL_BUILD: "true" });
        console.log(`deadlock: retried ${retries(r.output)} time(s), built ${(await built("dl_broken", [...Object.keys(MODELS), "broken", "after_broken"])).length} of ${Object.keys(MODELS).length + 2} models`);
        assert.notStrictEqual(r.code, 0, r.output);
        assert.match(r.output, /division by zero/);
        assert.strictEqual(retries(r.output), 0, r.output);
        assert.doesNotMatch(r.output, /dbt retry/);
    });

    it("the scheduled runner's entrypoint (full mode) retries a deadlock and publishes a good run", async () => {
        const dir = project("dl_sched");
        dirs.push(dir);
        const entry = path.join(dir, "..", `${path.basename(dir)}-entrypoint.sh`);
        fs.writeFileSync(entry, renderEntrypoint(), { mode: 0o755 });
        dirs.push(entry);
        const env = targetEnv(dir, { ...moto.env, DBT_ARTIFACTS_BUCKET: ROLES.bucket, DBT_PROJECT_KEY: "projects/p.tar.gz", DBT_PROJECT_MANIFEST_KEY: "projects/p/manifest.json", DBT_RUN_STATE_PREFIX: "runs/", DBT_TARGET: "prod", DBT_RUNNER_MODE: "full", DBT_RUNNER_WORKDIR: path.join(dir, "run") });
        // The release's project tarball and manifest, as the platform's release publishes them.
        // The tarball is written outside the directory tar reads (else tar may see "." change under it and exit 1).
        const tarball = `${dir}-p.tar.gz`;
        dirs.push(tarball);
        const publish = bash(`tar -czf ${tarball} --exclude=./run . && echo '{}' > ../${path.basename(dir)}-m.json && aws s3 cp --only-show-errors ${tarball} s3://${ROLES.bucket}/projects/p.tar.gz && aws s3 cp --only-show-errors ../${path.basename(dir)}-m.json s3://${ROLES.bucket}/projects/p/manifest.json`, dir, env);
        assert.strictEqual(publish.code, 0, publish.output);
        await deadlocks(1);
        const r = bash(`bash ${entry}`, dir, env, []);
        const models = Object.keys(MODELS);
        const ok = await built("dl_sched", models);
        console.log(`deadlock: retried ${retries(r.output)} time(s), built ${ok.length} of ${models.length} models`);
        assert.strictEqual(r.code, 0, r.output);
        assert.strictEqual(retries(r.output), 1, r.output);
        assert.deepStrictEqual(ok, models);
        // Only a good run becomes the baseline.
        assert.ok((await moto.listKeys(ROLES.bucket, "runs/latest/")).includes("runs/latest/run_results.json"));
    });
});
