/**
 * CloudWatch JSON filter patterns: the matcher against the documented examples, then the patterns
 * ScheduledRuns declares against REAL dbt 1.11 JSON log lines (@integration: dbt build on a real
 * Postgres, one passing run and one failing run). moto stores metric filters but never evaluates them.
 */
import assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { compileFilterPattern, matchingLines } from "../components/aws/scheduled/filterPattern";
import { ERROR_FILTER_PATTERN, HEARTBEAT_FILTER_PATTERN } from "../components/aws/scheduledRuns";
import { runDbt } from "./support/dbtProject";
import { startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv } from "./support/python";
import { RAW_SOURCES_SQL, writeSourcedProject } from "./support/sourcedProject";

describe("CloudWatch JSON filter pattern matcher", () => {
    // The event of the CloudWatch Logs documentation's JSON examples.
    const event = JSON.stringify({
        eventType: "UpdateTrail",
        sourceIPAddress: "123.123.123.123",
        arrayKey: ["value", "another value"],
        objectList: [{ name: "a", id: 1 }, { name: "b", id: 2 }],
        SomeObject: null,
        cidr: "123.123.123.123/32",
        ThisFlag: true,
        bandwidth: 80,
        latency: 20,
        user: { email: "John.Stiles@example.com", id: 1 },
        coordinates: [[0, 30], [-12, 45]],
        actions: ["GET", "PUT", "DELETE"],
    });
    const cases: [string, boolean][] = [
        ['{ $.eventType = "UpdateTrail" }', true],
        ['{ $.eventType != "UpdateTrail" }', false],
        ["{ $.sourceIPAddress != 123.123.* }", false],
        ["{ $.sourceIPAddress = 123.123.* }", true],
        ['{ $.arrayKey[0] = "value" }', true],
        ["{ $.objectList[1].id = 2 }", true],
        ["{ $.SomeObject IS NULL }", true],
        ["{ $.SomeOtherObject NOT EXISTS }", true],
        ["{ $.SomeObject EXISTS }", true],
        ["{ $.ThisFlag IS TRUE }", true],
        ["{ $.ThisFlag IS FALSE }", false],
        ["{ $.bandwidth > 75 }", true],
        ["{ $.latency < 50 }", true],
        ["{ $.latency >= 21 }", false],
        ["{ $.latency <= 20 }", true],
        ['{ ($.user.id = 1) && ($.user.email = "John.Stiles@example.com") }', true],
        ['{ ($.user.id = 2) || ($.actions[0] = "GET") }', true],
        // && binds tighter than ||, as in the documentation's mixed example (which matches).
        ['{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nomatch" }', true],
        ['{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nomatch" }', false],
        ["{ $.cidr = %123\\.123\\.[0-9.]+/32% }", true],
        ["{ $.objectList[*].name = \"b\" }", true],
        ['{ $.missing = "x" }', false],
        ['{ $.missing != "x" }', false],
    ];
    for (const [pattern, expected] of cases) {
        it(`${pattern} → ${expected}`, () => assert.strictEqual(compileFilterPattern(pattern).matches(event), expected));
    }
    it("never matches a non-JSON event, and rejects a malformed pattern naming the offset", () => {
        assert.strictEqual(compileFilterPattern('{ $.a = "b" }').matches("ERROR something"), false);
        assert.throws(() => compileFilterPattern("{ $.a = }"), /filter pattern "\{ \$\.a = \}": expected a value at offset/);
        assert.throws(() => compileFilterPattern("{ $.a > \"x\" }"), /> needs a number/);
        assert.throws(() => compileFilterPattern('$.a = "b"'), /expected "\{"/);
    });
});

describe("declared filter patterns on real dbt 1.11 JSON logs @integration", function () {
    this.timeout(600_000);
    let server: TestServer;
    let passing: string;
    let failing: string;
    let empty: string;
    const dirs: string[] = [];
    const DB = "analytics_logs";

    before(async function () {
        ensurePythonEnv();
        server = await startPostgres();
        await server.admin("postgres", `create database ${DB}`);
        for (const s of RAW_SOURCES_SQL) await server.admin(DB, s);
        const run = async (broken: boolean, select: string[] = []) => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-logs-"));
            dirs.push(dir);
            writeSourcedProject(dir, { broken });
            const env = {
                DBT_PROFILES_DIR: path.join(dir, ".ci"),
                DBT_LOG_PATH: path.join(dir, "logs"),
                DBT_SCHEDULER_HOST: server.host,
                DBT_SCHEDULER_PORT: String(server.port),
                DBT_SCHEDULER_USER: server.adminUser,
                DBT_SCHEDULER_PASSWORD: server.adminPassword,
                DBT_SCHEDULER_DBNAME: DB,
                DBT_SCHEDULER_SCHEMA: broken ? "analytics_failing" : "analytics_passing",
            };
            // Exactly the flags the runner passes (runDbt adds --no-use-colors).
            const r = await runDbt(["--log-format", "json", "build", ...select], env, { cwd: dir, allowFailure: true });
            assert.strictEqual(r.code, broken ? 1 : 0, r.output.slice(-3000));
            return r.output;
        };
        passing = await run(false);
        failing = await run(true);
        // A build that selects nothing, as a fresher+ run without new data does.
        empty = await run(false, ["--select", "tag:nothing_has_this_tag"]);
    });

    after(async () => {
        for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
        await server?.stop();
    });

    it("every stdout line is one JSON event with info.level and info.name", () => {
        for (const line of [...passing.split("\n"), ...failing.split("\n")].filter((l) => l.trim())) {
            const e = JSON.parse(line);
            assert.ok(typeof e.info?.level === "string" && typeof e.info?.name === "string", line);
        }
    });

    it("errors: no match on the passing run; the failing run's error events match", () => {
        assert.deepStrictEqual(matchingLines(ERROR_FILTER_PATTERN, passing), []);
        const errors = matchingLines(ERROR_FILTER_PATTERN, failing).map((l) => JSON.parse(l));
        assert.ok(errors.length >= 1, "no error event matched in the failing run");
        assert.ok(errors.some((e) => /broken/.test(JSON.stringify(e))), "no error event names the failing model");
        assert.ok(errors.every((e) => e.info.level === "error"));
        // Seed 003's pre-1.0 pattern never matches dbt 1.11's log.
        assert.deepStrictEqual(matchingLines('{ $.levelname = "ERROR" }', failing), []);
        console.log(`      log filters: ${errors.length} error events in the failing run (${[...new Set(errors.map((e) => e.info.name))].join(", ")}), 0 in the passing run`);
    });

    it("heartbeat: exactly one event per completed build: StatsLine (passing or failing) or NothingToDo", () => {
        const none = matchingLines(HEARTBEAT_FILTER_PATTERN, empty).map((l) => JSON.parse(l));
        assert.deepStrictEqual(none.map((e) => e.info.name), ["NothingToDo"]);
        assert.deepStrictEqual(matchingLines(ERROR_FILTER_PATTERN, empty), []);
        const ok = matchingLines(HEARTBEAT_FILTER_PATTERN, passing).map((l) => JSON.parse(l));
        const bad = matchingLines(HEARTBEAT_FILTER_PATTERN, failing).map((l) => JSON.parse(l));
        assert.strictEqual(ok.length, 1);
        assert.strictEqual(bad.length, 1);
        assert.match(ok[0].info.msg, /^Done\. PASS=\d+ WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=\d+$/);
        assert.strictEqual(ok[0].data.stats.error, 0);
        assert.ok(bad[0].data.stats.error >= 1);
        console.log(`      log filters: heartbeat "${ok[0].info.msg}" / "${bad[0].info.msg}"`);
    });
});
