/**
 * The PR-schema janitor. Unit: families, marks and the SQL per warehouse kind. @integration: a real
 * Postgres with open and closed PRs served by a local server per CI system (documented GET-pull-request
 * endpoint and auth): a dry run drops nothing, the real run drops exactly the orphaned families.
 */
import assert from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Client } from "pg";
import {
    AzureDevopsPullRequests,
    BitbucketPullRequests,
    families,
    GithubPullRequests,
    JANITOR_SQL,
    likePrefix,
    markMacro,
    markText,
    parseMark,
    PullRequestState,
    runJanitor,
    SqlExecutor,
} from "../components/janitor";
import { FakePrServer, PrSystem, startFakePrServer } from "./support/fakePullRequests";
import { startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv, REPO_ROOT } from "./support/python";
import { runDbt } from "./support/dbtProject";
import { writeSourcedProject } from "./support/sourcedProject";

describe("janitor: PR schema families and SQL", () => {
    it("groups <prefix><n> and <prefix><n>_<custom>; ignores everything else", () => {
        const at = new Date("2026-11-01T10:00:00Z");
        const f = families("dbt_pr_", [
            { schema: "dbt_pr_12_marts", mark: null },
            { schema: "dbt_pr_12", mark: markText(12, at) },
            { schema: "dbt_pr_3" },
            { schema: "dbt_pr_x" },
            { schema: "dbt_pr_" },
            { schema: "dbt_pr_07" },
            { schema: "dbt_production" },
            { schema: "dbt_pr_12_" },
        ]);
        assert.deepStrictEqual(f, [
            { pr: 3, schemas: ["dbt_pr_3"] },
            { pr: 12, schemas: ["dbt_pr_12", "dbt_pr_12_marts"], createdAt: at },
        ]);
        assert.strictEqual(markText(12, at), "dbt-platform pr-schema pr=12 created_at=2026-11-01T10:00:00Z");
        assert.deepStrictEqual(parseMark("dbt-platform pr-schema pr=12 created_at=2026-11-01T10:00:00Z"), at);
        assert.strictEqual(parseMark("hand-written comment"), undefined);
        assert.strictEqual(likePrefix("dbt_pr_"), "dbt\\_pr\\_%");
        assert.throws(() => families("Robert'); drop", []), /pull-request prefix .*expected a lower-case identifier prefix/);
    });

    it("SQL for every warehouse kind quotes names and records the mark once", () => {
        const at = new Date("2026-11-01T10:00:00Z");
        assert.deepStrictEqual(JANITOR_SQL.postgres.drop("dbt_pr_1"), ['drop schema if exists "dbt_pr_1" cascade']);
        assert.match(JANITOR_SQL.postgres.mark("dbt_pr_1", 1, at)[0], /is null then comment on schema "dbt_pr_1" is 'dbt-platform pr-schema pr=1 created_at=2026-11-01T10:00:00Z'/);
        assert.deepStrictEqual(JANITOR_SQL.redshift.drop("dbt_pr_1"), ['drop schema if exists "dbt_pr_1" cascade', "delete from dbt_platform.pr_schema_marks where schema_name = 'dbt_pr_1'"]);
        assert.match(JANITOR_SQL.redshift.list, /from svv_all_schemas s left join dbt_platform\.pr_schema_marks m/);
        assert.match(JANITOR_SQL.snowflake.list, /from information_schema\.schemata where lower\(schema_name\) like \?/);
        assert.deepStrictEqual(JANITOR_SQL.snowflake.mark("dbt_pr_1", 1, at), ["alter schema if exists dbt_pr_1 set comment = 'dbt-platform pr-schema pr=1 created_at=2026-11-01T10:00:00Z'"]);
        assert.match(markMacro("dbt_pr_"), /modules\.re\.match\('\^dbt_pr_\(\[0-9\]\+\)\$', schema\)/);
    });
});

describe("janitor on a real Postgres with each CI system's API @integration", function () {
    this.timeout(300_000);
    let server: TestServer;
    const NOW = new Date();
    const DAY = 86_400_000;

    before(async () => {
        ensurePythonEnv();
        server = await startPostgres();
    });
    after(async () => {
        await server?.stop();
    });

    async function executor(db: string): Promise<{ sql: SqlExecutor; end: () => Promise<void> }> {
        const c = new Client(server.config(db));
        await c.connect();
        return { sql: { query: async (text, params) => (await c.query(text, params as any[])).rows as any[] }, end: () => c.end() };
    }

    async function schemas(db: string): Promise<string[]> {
        return (await server.admin<{ s: string }>(db, "select nspname as s from pg_namespace where nspname like 'dbt_pr%' or nspname in ('dbt_production', 'analytics') order by 1")).map((r) => r.s);
    }

    const cases: { system: PrSystem; repository: string; make: (s: FakePrServer) => PullRequestState }[] = [
        { system: "github", repository: "acme/analytics-dbt", make: (s) => new GithubPullRequests("acme/analytics-dbt", { baseUrl: s.baseUrl, token: () => s.token, baseDelayMs: 5 }) },
        { system: "bitbucket", repository: "acme/analytics-dbt", make: (s) => new BitbucketPullRequests("acme/analytics-dbt", { baseUrl: s.baseUrl, token: () => s.token, baseDelayMs: 5 }) },
        { system: "azure-devops", repository: "acme/analytics/analytics-dbt", make: (s) => new AzureDevopsPullRequests("acme/analytics/analytics-dbt", { baseUrl: s.baseUrl, token: () => s.token, baseDelayMs: 5 }) },
    ];

    for (const c of cases) {
        it(`${c.system}: dry run drops nothing; the real run drops the closed and expired families, keeps the open ones`, async () => {
            const db = `janitor_${c.system.replace("-", "_")}`;
            await server.admin("postgres", `create database ${db}`);
            // PR 1 closed (two schemas), 2 open (two schemas), 3 closed without a mark, 4 open but past the TTL,
            // 5 open without a mark, 6 unknown to the CI system; and names that are not PR schemas.
            for (const s of ["dbt_pr_1", "dbt_pr_1_marts", "dbt_pr_2", "dbt_pr_2_staging", "dbt_pr_3", "dbt_pr_4", "dbt_pr_5", "dbt_pr_6", "dbt_pr_x", "dbt_pr_07", "dbt_production", "analytics"]) {
                await server.admin(db, `create schema ${s}`);
            }
            await server.admin(db, "create table dbt_pr_1.orders as select 1 as id");
            await server.admin(db, "create view dbt_pr_1_marts.orders_v as select * from dbt_pr_1.orders");
            // CI's mark, as CI runs it after creating each schema; a second mark keeps the first time.
            for (const [schema, pr, at] of [["dbt_pr_1", 1, NOW], ["dbt_pr_2", 2, NOW], ["dbt_pr_4", 4, new Date(NOW.getTime() - 10 * DAY)]] as const) {
                for (const s of JANITOR_SQL.postgres.mark(schema, pr, at)) await server.admin(db, s);
            }
            for (const s of JANITOR_SQL.postgres.mark("dbt_pr_4", 4, NOW)) await server.admin(db, s);
            const before = await schemas(db);

            const api = await startFakePrServer(c.system, c.repository, { 1: "closed", 2: "open", 3: "closed", 4: "open", 5: "open" }, { failFirst: true });
            const { sql, end } = await executor(db);
            try {
                const lines: string[] = [];
                const options = { kind: "postgres" as const, sql, prefix: "dbt_pr_", pullRequests: c.make(api), ttlHours: 168, now: NOW, log: (l: string) => lines.push(l) };
                const dry = await runJanitor(options);
                assert.strictEqual(dry.summary, "janitor (dry run): dropped 0 of 3 orphaned, kept 2 open");
                assert.deepStrictEqual(await schemas(db), before, "the dry run changed something");
                assert.ok(lines.includes("janitor (dry run): would drop dbt_pr_1, dbt_pr_1_marts (PR 1 closed)"), lines.join("\n"));

                lines.length = 0;
                const real = await runJanitor({ ...options, execute: true });
                assert.deepStrictEqual(lines, [
                    "janitor: dropped dbt_pr_1, dbt_pr_1_marts (PR 1 closed)",
                    "janitor: keep dbt_pr_2, dbt_pr_2_staging (PR 2 open)",
                    "janitor: dropped dbt_pr_3 (PR 3 closed)",
                    "janitor: dropped dbt_pr_4 (PR 4 open, created 240 h ago, past the TTL of 168 h)",
                    "janitor: keep dbt_pr_5 (PR 5 open)",
                    `janitor: keep dbt_pr_6 (PR 6 not found on ${c.system} ${c.repository}, no TTL reached)`,
                    "janitor: dropped 3 of 3 orphaned, kept 2 open",
                ]);
                assert.strictEqual(real.dropped, real.orphaned);
                console.log(real.summary);
                assert.deepStrictEqual(await schemas(db), ["analytics", "dbt_pr_07", "dbt_pr_2", "dbt_pr_2_staging", "dbt_pr_5", "dbt_pr_6", "dbt_pr_x", "dbt_production"]);
                // The API was asked once per family per run, plus the one 503 it retried.
                assert.strictEqual(api.requests.length, 1 + 6 * 2);

                // A second run has nothing left to drop.
                const again = await runJanitor({ ...options, execute: true, log: () => {} });
                assert.strictEqual(again.summary, "janitor: dropped 0 of 0 orphaned, kept 2 open");
            } finally {
                await end();
                await api.stop();
            }
        });
    }

    it("scripts/janitor.ts: a dry run by default, --execute drops; libpq environment and GITHUB_TOKEN", async () => {
        const db = "janitor_cli";
        await server.admin("postgres", `create database ${db}`);
        for (const sch of ["dbt_pr_21", "dbt_pr_21_marts", "dbt_pr_22"]) await server.admin(db, `create schema ${sch}`);
        const api = await startFakePrServer("github", "acme/analytics-dbt", { 21: "closed", 22: "open" });
        try {
            const env = { ...process.env, PGHOST: server.host, PGPORT: String(server.port), PGUSER: server.adminUser, PGPASSWORD: server.adminPassword, PGDATABASE: db, GITHUB_TOKEN: api.token };
            const cli = (extra: string[]) =>
                new Promise<{ code: number | null; out: string }>((resolve) => {
                    const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "scripts", "janitor.ts"), "--ci", "github", "--repository", "acme/analytics-dbt", "--api-url", api.baseUrl, ...extra], { env, stdio: ["ignore", "pipe", "pipe"] });
                    let out = "";
                    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
                    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
                    child.on("close", (code) => resolve({ code, out }));
                });
            const dry = await cli([]);
            assert.strictEqual(dry.code, 0, dry.out);
            assert.match(dry.out, /janitor \(dry run\): would drop dbt_pr_21, dbt_pr_21_marts \(PR 21 closed\)/);
            assert.match(dry.out, /janitor \(dry run\): dropped 0 of 1 orphaned, kept 1 open/);
            assert.deepStrictEqual(await schemas(db), ["dbt_pr_21", "dbt_pr_21_marts", "dbt_pr_22"]);
            const real = await cli(["--execute"]);
            assert.strictEqual(real.code, 0, real.out);
            assert.match(real.out, /^janitor: dropped 1 of 1 orphaned, kept 1 open$/m);
            assert.deepStrictEqual(await schemas(db), ["dbt_pr_22"]);
        } finally {
            await api.stop();
        }
    });

    it("the CI-side macro records the creation time once, with real dbt (dbt run-operation)", async () => {
        const db = "janitor_macro";
        await server.admin("postgres", `create database ${db}`);
        await server.admin(db, "create schema raw");
        await server.admin(db, "create schema dbt_pr_31");
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "janitor-macro-"));
        try {
            writeSourcedProject(dir);
            fs.mkdirSync(path.join(dir, "macros"));
            fs.writeFileSync(path.join(dir, "macros", "dbt_platform_mark_pr_schema.sql"), markMacro("dbt_pr_"));
            const env = {
                DBT_PROFILES_DIR: path.join(dir, ".ci"), DBT_LOG_PATH: path.join(dir, "logs"),
                DBT_SCHEDULER_HOST: server.host, DBT_SCHEDULER_PORT: String(server.port), DBT_SCHEDULER_USER: server.adminUser,
                DBT_SCHEDULER_PASSWORD: server.adminPassword, DBT_SCHEDULER_DBNAME: db, DBT_SCHEDULER_SCHEMA: "dbt_pr_31",
            };
            const comment = async () => (await server.admin<{ c: string | null }>(db, "select obj_description('dbt_pr_31'::regnamespace, 'pg_namespace') as c"))[0].c;
            await runDbt(["run-operation", "dbt_platform_mark_pr_schema"], env, { cwd: dir });
            const first = await comment();
            const at = parseMark(first);
            assert.ok(at && Math.abs(at.getTime() - Date.now()) < 5 * 60_000, `no creation time in the comment: ${first}`);
            assert.match(first!, /^dbt-platform pr-schema pr=31 created_at=/);
            await new Promise((r) => setTimeout(r, 1100));
            await runDbt(["run-operation", "dbt_platform_mark_pr_schema"], env, { cwd: dir });
            assert.strictEqual(await comment(), first, "a second CI run moved the recorded creation time");
            // Outside a PR schema the macro does nothing.
            await runDbt(["run-operation", "dbt_platform_mark_pr_schema"], { ...env, DBT_SCHEDULER_SCHEMA: "raw" }, { cwd: dir });
            assert.strictEqual((await server.admin<{ c: string | null }>(db, "select obj_description('raw'::regnamespace, 'pg_namespace') as c"))[0].c, null);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("a wrong token fails the run with an error naming the system and the pull request, dropping nothing", async () => {
        const db = "janitor_auth";
        await server.admin("postgres", `create database ${db}`);
        await server.admin(db, "create schema dbt_pr_9");
        const api = await startFakePrServer("github", "acme/analytics-dbt", { 9: "closed" });
        const { sql, end } = await executor(db);
        try {
            const pullRequests = new GithubPullRequests("acme/analytics-dbt", { baseUrl: api.baseUrl, token: () => "wrong", baseDelayMs: 5 });
            await assert.rejects(runJanitor({ kind: "postgres", sql, prefix: "dbt_pr_", pullRequests, execute: true, log: () => {} }), /GitHub GET \/repos\/acme\/analytics-dbt\/pulls\/9 \(pull request #9 of acme\/analytics-dbt\)/);
            assert.deepStrictEqual(await schemas(db), ["dbt_pr_9"]);
        } finally {
            await end();
            await api.stop();
        }
    });
});
