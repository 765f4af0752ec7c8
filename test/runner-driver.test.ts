/**
 * @integration The PR job's one-process dbt driver (components/pipelines/runner.ts) with real dbt
 * on a real Postgres: one parse for every command, a `?` command's failure (stale or missing
 * sources) is a warning, any other failure stops the driver with dbt's exit code.
 */
import assert from "assert";
import { spawnSync } from "child_process";
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
});
