/**
 * @integration The PR job's one-process dbt driver (components/pipelines/runner.ts) with real dbt
 * on a real Postgres: one parse for every command, a `?` command's failure (stale or missing
 * sources) is a warning, any other failure stops the driver with dbt's exit code; `!` commands
 * (the PR schemas' cleanup) run last whatever happened, also after an interrupt; `--deps` installs
 * packages in the same process; every command's run results are kept.
 */
import assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DRIVER_PATH, DRIVER_SCRIPT, driverLine } from "../components/pipelines";
import { bash } from "./support/ciRun";
import { writeProfiles } from "./support/dbtProject";
import { startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv, pythonEnv } from "./support/python";

describe("one-process dbt driver @integration", function () {
    this.timeout(300_000);
    let server: TestServer;
    let dir: string;
    let env: NodeJS.ProcessEnv;

    before(async () => {
        ensurePythonEnv();
        server = await startPostgres();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-driver-"));
        fs.mkdirSync(path.join(dir, "models"));
        fs.writeFileSync(path.join(dir, "dbt_project.yml"), "name: driver_check\nversion: '1.0.0'\nprofile: acme_analytics\nmodel-paths: [models]\n");
        fs.writeFileSync(path.join(dir, "models/ok_model.sql"), "select 1 as id\n");
        fs.writeFileSync(path.join(dir, "models/child_model.sql"), "select id from {{ ref('ok_model') }}\n");
        // A source with a freshness check on a table nobody loaded: `dbt source freshness` fails.
        fs.writeFileSync(
            path.join(dir, "models/_sources.yml"),
            "version: 2\nsources:\n  - name: landing\n    schema: landing\n    loaded_at_field: loaded_at\n    freshness: {error_after: {count: 1, period: hour}}\n    tables:\n      - name: never_loaded\n",
        );
        fs.mkdirSync(path.join(dir, ".ci"));
        fs.writeFileSync(path.join(dir, DRIVER_PATH), DRIVER_SCRIPT);
        writeProfiles(path.join(dir, ".ci"), { ci: { host: server.host, port: server.port, user: server.adminUser, password: server.adminPassword, dbname: "postgres", schema: "driver_ci", threads: 2 } });
        env = pythonEnv({ DBT_PROFILES_DIR: ".ci", DBT_LOG_PATH: path.join(dir, "logs") });
    });
    after(async () => {
        fs.rmSync(dir, { recursive: true, force: true });
        await server?.stop();
    });

    it("parses once, reports a failing freshness check as a warning, and builds", () => {
        const r = bash(driverLine(["?source freshness --target ci", "build --target ci --fail-fast"]), dir, env);
        assert.strictEqual(r.code, 0, r.output.slice(-3000));
        assert.match(r.output, /dbt-platform: parsed once in \d+\.\d s; 2 command\(s\) reuse the manifest/);
        assert.match(r.output, /warning: dbt source freshness failed \(not blocking\)/);
        assert.match(r.output, /OK created sql view model driver_ci\.child_model/);
        const rr = JSON.parse(fs.readFileSync(path.join(dir, "target/run_results.json"), "utf8"));
        assert.deepStrictEqual(rr.results.map((x: any) => x.unique_id).sort(), ["model.driver_check.child_model", "model.driver_check.ok_model"]);
    });

    it("stops at the first failing command with dbt's exit code, and never runs the next", () => {
        fs.writeFileSync(path.join(dir, "models/broken_model.sql"), "{{ config(materialized='table') }}\nselect 1 / (select 0) as boom\n");
        try {
            const r = bash(driverLine(["build --target ci --fail-fast --select broken_model", "run --target ci --select ok_model"]), dir, env);
            assert.strictEqual(r.code, 1, r.output.slice(-3000));
            assert.match(r.output, /division by zero/);
            assert.ok(!r.output.includes("dbt-platform: dbt run --target ci --select ok_model"), "the driver ran a command after a failure");
        } finally {
            fs.rmSync(path.join(dir, "models/broken_model.sql"));
        }
    });

    it("a project that does not parse fails before any command runs", () => {
        fs.writeFileSync(path.join(dir, "models/bad_ref.sql"), "select * from {{ ref('no_such_model') }}\n");
        try {
            const r = spawnSync("bash", ["-c", driverLine(["build --target ci"])], { cwd: dir, env, encoding: "utf8" });
            assert.strictEqual(r.status, 2, `${r.stdout}${r.stderr}`);
            assert.match(`${r.stdout}${r.stderr}`, /dbt-platform: dbt parse failed/);
        } finally {
            fs.rmSync(path.join(dir, "models/bad_ref.sql"));
        }
    });
    it("runs `!` commands last, also after a failure; marks the cleanup done only when it passed; keeps the build's run results", () => {
        fs.writeFileSync(path.join(dir, "models/broken_model.sql"), "{{ config(materialized='table') }}\nselect 1 / (select 0) as boom\n");
        fs.mkdirSync(path.join(dir, "macros"), { recursive: true });
        fs.writeFileSync(path.join(dir, "macros/cleanup.sql"), "{% macro cleanup(fail=false) %}{% if fail %}{{ exceptions.raise_compiler_error('cleanup failed') }}{% endif %}{% do run_query('drop schema if exists driver_ci cascade') %}{% endmacro %}\n");
        const done = "target/cleanup.done";
        try {
            const failed = bash(driverLine(["build --target ci --fail-fast --select broken_model", "run --target ci --select ok_model", "!run-operation cleanup --target ci"], { finallyDone: { path: done, value: "$RUN_ID" } }), dir, { ...env, RUN_ID: "run-7" });
            assert.strictEqual(failed.code, 1, failed.output.slice(-3000));
            assert.ok(!failed.output.includes("dbt-platform: dbt run --target ci --select ok_model"), "the driver ran a command after a failure");
            assert.match(failed.output, /dbt-platform: dbt run-operation cleanup --target ci\n/, "the cleanup did not run after the failure");
            assert.strictEqual(fs.readFileSync(path.join(dir, done), "utf8"), "run-7\n");
            // target/run_results.json is still the failed build's (dbt retry, artifacts); the cleanup's is kept beside it.
            const rr = JSON.parse(fs.readFileSync(path.join(dir, "target/run_results.json"), "utf8"));
            assert.deepStrictEqual(rr.results.map((x: any) => [x.unique_id, x.status]), [["model.driver_check.broken_model", "error"]]);
            assert.deepStrictEqual(fs.readdirSync(path.join(dir, "target/dbt-platform")).sort(), ["01-build.json", "03-run-operation.json"]);
            const bad = bash(driverLine(["run --target ci --select ok_model", "!run-operation cleanup --target ci --args '{fail: true}'"], { finallyDone: { path: done, value: "$RUN_ID" } }), dir, { ...env, RUN_ID: "run-8" });
            assert.strictEqual(bad.code, 0, bad.output.slice(-3000));
            assert.match(bad.output, /warning: dbt run-operation cleanup failed \(not blocking\)/);
            assert.ok(!fs.existsSync(path.join(dir, done)), "a failed cleanup was marked done (the always-run step would skip it)");
        } finally {
            fs.rmSync(path.join(dir, "models/broken_model.sql"));
            fs.rmSync(path.join(dir, "macros"), { recursive: true });
        }
    });

    it("an interrupt (a cancelled job) still runs the `!` cleanup before the driver exits", async () => {
        fs.writeFileSync(path.join(dir, "models/slow_model.sql"), "{{ config(materialized='table') }}\nselect 1 as slept from pg_sleep(60)\n");
        fs.mkdirSync(path.join(dir, "macros"), { recursive: true });
        fs.writeFileSync(path.join(dir, "macros/cleanup.sql"), "{% macro cleanup() %}{% do log('cleanup ran', info=True) %}{% endmacro %}\n");
        try {
            const child = spawn("bash", ["-c", `exec ${driverLine(["run --target ci --select slow_model", "!run-operation cleanup --target ci"])}`], { cwd: dir, env: { ...env, PYTHONUNBUFFERED: "1" }, stdio: ["ignore", "pipe", "pipe"] });
            let output = "";
            child.stdout.on("data", (b: Buffer) => (output += b.toString()));
            child.stderr.on("data", (b: Buffer) => (output += b.toString()));
            const exited = new Promise<number>((resolve) => child.on("exit", (c, sig) => resolve(c ?? (sig ? 128 : -1))));
            const deadline = Date.now() + 60_000;
            while (!/START sql table model driver_ci\.slow_model/.test(output) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
            await new Promise((r) => setTimeout(r, 1000));
            const interrupted = Date.now();
            child.kill("SIGINT");
            const kill = setTimeout(() => child.kill("SIGKILL"), 60_000);
            const code = await exited;
            clearTimeout(kill);
            assert.notStrictEqual(code, 0, output.slice(-3000));
            assert.ok(Date.now() - interrupted < 30_000, "the driver waited for the slow model instead of stopping");
            assert.match(output, /cleanup ran/, `the cleanup did not run after the interrupt:\n${output.slice(-3000)}`);
        } finally {
            fs.rmSync(path.join(dir, "models/slow_model.sql"));
            fs.rmSync(path.join(dir, "macros"), { recursive: true });
        }
    });

    it("--deps installs the packages in the same process before its one parse", () => {
        const pkg = path.join(dir, "pkgs/answers");
        fs.mkdirSync(path.join(pkg, "macros"), { recursive: true });
        fs.writeFileSync(path.join(pkg, "dbt_project.yml"), "name: answers\nversion: '1.0.0'\nmacro-paths: [macros]\n");
        fs.writeFileSync(path.join(pkg, "macros/answer.sql"), "{% macro answer() %}42{% endmacro %}\n");
        fs.writeFileSync(path.join(dir, "packages.yml"), "packages:\n  - local: pkgs/answers\n");
        fs.writeFileSync(path.join(dir, "models/uses_package.sql"), "select {{ answers.answer() }} as answer\n");
        try {
            const r = bash(driverLine(["run --target ci --select uses_package"], { deps: true }), dir, env);
            assert.strictEqual(r.code, 0, r.output.slice(-3000));
            assert.match(r.output, /dbt-platform: dbt deps\n[\s\S]*dbt-platform: parsed once in/);
            assert.match(r.output, /OK created sql view model driver_ci\.uses_package/);
            assert.ok(fs.existsSync(path.join(dir, "dbt_packages/answers/dbt_project.yml")));
        } finally {
            for (const p of ["models/uses_package.sql", "packages.yml", "package-lock.yml"]) fs.rmSync(path.join(dir, p), { force: true });
            for (const p of ["pkgs", "dbt_packages"]) fs.rmSync(path.join(dir, p), { recursive: true, force: true });
        }
    });
});
