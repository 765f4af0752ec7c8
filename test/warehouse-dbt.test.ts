/**
 * @integration Real dbt against exactly what the dev stack's warehouse declares, applied to a real
 * Postgres as the provider would:
 * - dbt's own cancellation under role masking: the masked deploy bot runs `dbt run --fail-fast` on
 *   a project where one model fails at once while another sleeps. dbt cancels the sleeping
 *   connection with `select pg_terminate_backend(<pid>)` on its own other connection, whose
 *   current_user is the group role, not the login that owns the backend.
 * - schema creation without CREATE on the database for the dev role: CI builds a pull-request
 *   schema and a `+schema` custom schema through the platform's create_schema macro, and an
 *   incremental model twice (temporary tables), as do the prod bots.
 */
import assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { applyRecorded } from "./support/apply";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "./support/python";
import { startPostgres, TestServer } from "./support/postgres";
import { resolve, ROOT, runProgram, toPulumiConfig } from "../scripts/offline";
import { CREATE_SCHEMA_MACRO } from "../components/warehouse/postgres/warehouse";

const PROJECT = path.resolve(__dirname, "fixtures", "cancel-project");

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, timeoutMs: number): Promise<{ code: number | null; output: string }> {
    return new Promise((done, fail) => {
        const child = spawn(cmd, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        const timer = setTimeout(() => {
            child.kill("SIGKILL");
            fail(new Error(`${cmd} ${args.join(" ")} did not finish in ${timeoutMs} ms:\n${output}`));
        }, timeoutMs);
        child.on("error", fail);
        child.on("close", (code) => {
            clearTimeout(timer);
            done({ code, output });
        });
    });
}

describe("real dbt on the warehouse: cancellation and schema creation @integration", function () {
    this.timeout(240_000);
    let server: TestServer;
    let tmp: string;
    let env: NodeJS.ProcessEnv;

    before(async () => {
        ensurePythonEnv();
        server = await startPostgres();
        const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.dev.yaml`, "utf8")).config;
        doc["dbt-platform:warehouse"].connection = { host: server.host, port: server.port, database: "cancel_test", username: server.adminUser, sslmode: "disable" };
        const { resources, exports } = await runProgram("dev", toPulumiConfig(doc));
        await applyRecorded(server, resources);
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-cancel-"));
        fs.cpSync(PROJECT, path.join(tmp, "project"), { recursive: true });
        fs.writeFileSync(path.join(tmp, "profiles.yml"), (await resolve(exports.profilesYaml)).value as string);
        const profileEnv = (await resolve(exports.profileEnvironment)).value as Record<string, string>;
        env = pythonEnv({ ...profileEnv, DBT_PROFILES_DIR: tmp });
    });

    after(async () => {
        await server?.stop();
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("--fail-fast as the masked deploy bot cancels its own connection and shows the real error", async () => {
        const project = path.join(tmp, "project");
        const started = Date.now();
        const r = await run(path.join(VENV_BIN, "dbt"), ["run", "--fail-fast", "--threads", "2", "--target", "prod"], env, project, 180_000);
        const elapsed = Date.now() - started;
        assert.notStrictEqual(r.code, 0, `dbt must fail:\n${r.output}`);
        // The failing model's own error, not the cancellation's permission error, reaches the console.
        assert.match(r.output, /division by zero/, r.output);
        assert.doesNotMatch(r.output, /permission denied to terminate process|must be a member of the role whose process/, r.output);
        const results = JSON.parse(fs.readFileSync(path.join(project, "target", "run_results.json"), "utf8"));
        const status = Object.fromEntries(results.results.map((x: any) => [x.unique_id.split(".").pop(), x.status]));
        assert.strictEqual(status.fails_fast, "error", JSON.stringify(status));
        // The sleeping model was terminated, not waited for (it sleeps 60 s).
        assert.ok(elapsed < 50_000, `dbt took ${elapsed} ms: the slow model was not cancelled`);
        const leftover = await server.admin("cancel_test", "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()");
        assert.strictEqual(leftover[0].n, 0, "the slow model's backend is still running");
        console.log("cancel: real error shown");
    });

    it("Ctrl-C (SIGINT) of the masked scheduler bot's run cancels its running query", async () => {
        const project = path.join(tmp, "project");
        const child = spawn(path.join(VENV_BIN, "dbt"), ["run", "--select", "slow_model", "--target", "scheduler"], { env, cwd: project, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        const started = Date.now();
        const closed = new Promise<number | null>((done) => child.on("close", done));
        await new Promise<void>((ready, fail) => {
            const timer = setTimeout(() => fail(new Error(`slow_model never started:\n${output}`)), 60_000);
            const onData = (d: Buffer) => {
                output += d;
                if (/START sql table model analytics\.slow_model/.test(output)) {
                    clearTimeout(timer);
                    ready();
                }
            };
            child.stdout.on("data", onData);
            child.stderr.on("data", (d) => (output += d));
        });
        // Give the query time to reach the server before interrupting, as a person pressing Ctrl-C would.
        await new Promise((r) => setTimeout(r, 1500));
        child.kill("SIGINT");
        const code = await closed;
        assert.notStrictEqual(code, 0, output);
        assert.ok(Date.now() - started < 45_000, `dbt did not stop on SIGINT:\n${output}`);
        assert.match(output, /CANCEL query model\.cancel_project\.slow_model/, output);
        assert.doesNotMatch(output, /permission denied to terminate process|must be a member of the role whose process/, output);
        const leftover = await server.admin("cancel_test", "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()");
        assert.strictEqual(leftover[0].n, 0, "the interrupted model's backend is still running");
    });

    it("CI and prod bots build PR, custom and incremental models through create_schema, twice", async () => {
        const project = path.join(tmp, "schemas");
        fs.mkdirSync(path.join(project, "models"), { recursive: true });
        fs.mkdirSync(path.join(project, "macros"), { recursive: true });
        fs.writeFileSync(path.join(project, "dbt_project.yml"), "name: schemas_project\nversion: '1.0.0'\nprofile: acme_analytics\nmodels:\n  schemas_project:\n    +materialized: table\n");
        fs.writeFileSync(path.join(project, "models", "base.sql"), "select 1 as id");
        fs.writeFileSync(path.join(project, "models", "shop.sql"), "{{ config(schema='shopify') }}\nselect id from {{ ref('base') }}");
        fs.writeFileSync(
            path.join(project, "models", "events.sql"),
            "{{ config(materialized='incremental', unique_key='id') }}\nselect id from {{ ref('base') }}\n{% if is_incremental() %}where id >= (select max(id) from {{ this }}){% endif %}",
        );
        const dbt = (target: string, extra: Record<string, string> = {}) =>
            run(path.join(VENV_BIN, "dbt"), ["run", "--target", target], { ...env, ...extra }, project, 120_000);
        // Without the macro dbt's own `create schema` is refused: the dev role has no CREATE on the database.
        const refused = await dbt("ci", { DBT_CI_SCHEMA: "dbt_pr_7" });
        assert.notStrictEqual(refused.code, 0, refused.output);
        assert.match(refused.output, /permission denied for database/, refused.output);

        fs.writeFileSync(path.join(project, "macros", "create_schema.sql"), CREATE_SCHEMA_MACRO);
        for (const [target, extra] of [["ci", { DBT_CI_SCHEMA: "dbt_pr_7" }], ["prod", {}], ["scheduler", {}]] as const) {
            for (const round of [1, 2]) {
                const r = await dbt(target, extra);
                assert.strictEqual(r.code, 0, `${target} run ${round}:\n${r.output}`);
            }
        }
        const owners = await server.admin(
            "cancel_test",
            "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname IN ('dbt_pr_7', 'dbt_pr_7_shopify', 'analytics', 'analytics_shopify') ORDER BY 1",
        );
        assert.deepStrictEqual(owners, [
            { nspname: "analytics", owner: "role_prod" },
            { nspname: "analytics_shopify", owner: "role_prod" },
            { nspname: "dbt_pr_7", owner: "role_dev" },
            { nspname: "dbt_pr_7_shopify", owner: "role_dev" },
        ]);
        const events = await server.admin("cancel_test", "SELECT count(*)::int AS n, pg_get_userbyid(c.relowner) AS owner FROM analytics.events, pg_class c WHERE c.oid = 'analytics.events'::regclass GROUP BY 2");
        assert.deepStrictEqual(events, [{ n: 1, owner: "role_prod" }]);
    });
});
