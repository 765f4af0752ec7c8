/**
 * @integration What the partial-parse cache is worth, measured with real dbt on the real-shaped
 * project: target/partial_parse.msgpack saved by one run is reused by the next run with the same
 * profile, and discarded when a profile value changes — the schema included. A PR's schema is
 * `<prefix><n>`, so the cache is only good for later runs of the same PR: the rendered caches are
 * keyed per PR (and per dbt version, whose msgpack format changes), never shared between PRs.
 */
import assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { stringify } from "yaml";
import { ensurePythonEnv, pythonEnv } from "./support/python";

const REAL_PROJECT = path.resolve(__dirname, "fixtures", "real-project");

describe("partial parse: reused for the same profile, discarded when the schema changes @integration", function () {
    this.timeout(300_000);
    let dir: string;

    before(() => {
        ensurePythonEnv();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-partial-parse-"));
        fs.cpSync(REAL_PROJECT, dir, { recursive: true });
        // dbt parse never connects: a profile shaped like the rendered one (schema from the job's environment) is enough.
        const ci = { type: "postgres", host: "127.0.0.1", port: 5432, user: "u", password: "p", dbname: "d", schema: "{{ env_var('DBT_CI_SCHEMA') }}", threads: 4 };
        fs.mkdirSync(path.join(dir, ".ci"));
        fs.writeFileSync(path.join(dir, ".ci/profiles.yml"), stringify({ acme_analytics: { target: "ci", outputs: { ci } } }));
        assert.strictEqual(spawnSync("dbt", ["deps", "--quiet"], { cwd: dir, env: pythonEnv({ DBT_PROFILES_DIR: ".ci", DBT_CI_SCHEMA: "x" }) }).status, 0);
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    function parse(schema: string): { seconds: number; output: string } {
        const started = process.hrtime.bigint();
        const r = spawnSync("dbt", ["parse", "--target", "ci"], { cwd: dir, env: pythonEnv({ DBT_PROFILES_DIR: ".ci", DBT_CI_SCHEMA: schema, DBT_LOG_PATH: path.join(dir, "logs") }), encoding: "utf8" });
        assert.strictEqual(r.status, 0, `${r.stdout}${r.stderr}`);
        return { seconds: Number(process.hrtime.bigint() - started) / 1e9, output: `${r.stdout}${r.stderr}` };
    }

    it("a restored msgpack saves the full parse for the same PR schema, and is discarded for another PR's", () => {
        const cold = parse("dbt_pr_1");
        assert.match(cold.output, /Unable to do partial parsing because saved manifest not found/);
        assert.ok(fs.existsSync(path.join(dir, "target/partial_parse.msgpack")));
        const same = parse("dbt_pr_1");
        assert.ok(!/Unable to do partial parsing/.test(same.output), same.output);
        const other = parse("dbt_pr_2");
        assert.match(other.output, /Unable to do partial parsing because profile has changed/);
        console.log(`      partial parse: cold ${cold.seconds.toFixed(1)} s, same PR schema ${same.seconds.toFixed(1)} s (reused), another PR's schema ${other.seconds.toFixed(1)} s (discarded: profile has changed)`);
    });
});
