/**
 * The PR-schema janitor as a scheduled job of the platform repository. Unit: for every stack with
 * scheduled runs (render:platform reads them from the Pulumi.<stack>.yaml files), a GitHub `schedule:`
 * workflow, a Bitbucket custom pipeline and an Azure `schedules:` pipeline, each validating against the
 * publisher's schema, with the dry run before the real run and secrets only as references.
 * @integration: the rendered job's janitor steps run (bash, in this checkout, as each CI system runs
 * them: GitHub's env expressions, Bitbucket's one shell, Azure's $(macros)) against a real Postgres and
 * the project's fake CI server for the prod stack's dbt repository (Bitbucket acme-data/analytics-dbt).
 * Not run: the jobs' checkout/setup-node and `npm ci` steps (this checkout's node_modules stands in).
 */
import assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as path from "path";
import * as readline from "readline";
import { parse } from "yaml";
import { janitorProblems, PlatformPipelineArgs, renderPlatformAzure, renderPlatformBitbucket, renderPlatformGithub } from "../components/pipelines/platformRepo";
import { JANITOR_SQL } from "../components/janitor";
import { platformArgs } from "../scripts/render-platform";
import { azureSchemaErrors, bitbucketSchemaErrors, githubParserErrors, githubSchemaErrors } from "./support/pipelineSchemas";
import { azureSteps, bash, runAzureJob, runBitbucketStep } from "./support/ciRun";
import type { PrSystem } from "./support/fakePullRequests";
import { startPostgres, TestServer } from "./support/postgres";
import { ROOT } from "../scripts/offline";

/**
 * The project's fake CI server (test/support/fakePullRequests.ts) in its own process: the harness runs the
 * rendered shell synchronously, which would starve a server on this process's event loop.
 */
async function fakePrServerProcess(system: PrSystem, repository: string, states: Record<number, "open" | "closed">) {
    const code = [
        `const { startFakePrServer } = require(${JSON.stringify(path.join(__dirname, "support", "fakePullRequests"))});`,
        "(async () => {",
        "  const s = await startFakePrServer(process.argv[1], process.argv[2], JSON.parse(process.argv[3]));",
        "  process.stdout.write(JSON.stringify({ baseUrl: s.baseUrl, token: s.token }) + '\\n');",
        "  process.stdin.on('end', async () => { process.stdout.write(JSON.stringify(s.requests) + '\\n'); await s.stop(); process.exit(0); });",
        "  process.stdin.resume();",
        "})();",
    ].join("\n");
    const child = spawn(process.execPath, ["--import", "tsx", "-e", code, system, repository, JSON.stringify(states)], { stdio: ["pipe", "pipe", "inherit"] });
    const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const first = await lines.next();
    const { baseUrl, token } = JSON.parse(String(first.value)) as { baseUrl: string; token: string };
    return {
        baseUrl,
        token,
        /** Stops the server; resolves to the requests it served (`METHOD path?query`). */
        async stop(): Promise<string[]> {
            child.stdin!.end();
            const last = await lines.next();
            return JSON.parse(String(last.value)) as string[];
        },
    };
}

const ARGS: PlatformPipelineArgs = platformArgs(["--backend", "pulumi-cloud", "--organization", "acme"]);
const bashOk = (script: string) => spawnSync("bash", ["-n"], { input: script, encoding: "utf8" }).status === 0;

describe("janitor: a scheduled job of the platform repository", () => {
    it("render:platform schedules it for the stacks with scheduled runs, at scheduledRuns.janitor.schedule", () => {
        assert.deepStrictEqual(ARGS.janitor, [
            { stack: "staging", ciSystem: "bitbucket", cron: "0 3 * * *" },
            { stack: "prod", ciSystem: "bitbucket", cron: "0 3 * * *" },
            // The example Redshift stack (Azure DevOps): the janitor speaks the Postgres protocol there too.
            { stack: "redshift", ciSystem: "azure-devops", cron: "0 3 * * *" },
        ]);
        assert.deepStrictEqual(janitorProblems([{ stack: "qa", ciSystem: "github", cron: "daily" }, { stack: "prod", ciSystem: "gitlab" as any, cron: "0 3 * * *" }], ARGS.stacks), [
            'janitor[0].stack: "qa" is not one of the stacks',
            'janitor[0].cron: "daily" is not a five-field cron expression',
            'janitor[1].ciSystem: "gitlab" is not github, bitbucket or azure-devops',
        ]);
        // Without a janitor entry, no janitor file or pipeline.
        const none = { ...ARGS, janitor: [] };
        assert.ok(!(".github/workflows/platform-janitor.yml" in renderPlatformGithub(none)));
        assert.ok(!("azure-pipelines-janitor.yml" in renderPlatformAzure(none)));
        assert.ok(!Object.keys(parse(renderPlatformBitbucket(none)["bitbucket-pipelines.yml"]).pipelines.custom).some((k) => k.startsWith("platform-janitor")));
    });

    it("GitHub: platform-janitor.yml validates (schema and parser); per stack its cron, dry run then the real run, secrets by reference", async () => {
        const text = renderPlatformGithub(ARGS)[".github/workflows/platform-janitor.yml"];
        assert.deepStrictEqual(githubSchemaErrors(text), []);
        assert.deepStrictEqual(await githubParserErrors("platform-janitor.yml", text), []);
        const doc = parse(text);
        assert.deepStrictEqual(doc.on, { schedule: [{ cron: "0 3 * * *" }], workflow_dispatch: {} });
        const job = doc.jobs["janitor-prod"];
        assert.strictEqual(job.if, "github.event_name == 'workflow_dispatch' || github.event.schedule == '0 3 * * *'");
        assert.deepStrictEqual(job.env, { PGUSER: "${{ secrets.JANITOR_PGUSER_PROD }}", PGPASSWORD: "${{ secrets.JANITOR_PGPASSWORD_PROD }}", BITBUCKET_TOKEN: "${{ secrets.JANITOR_CI_TOKEN_PROD }}" });
        const runs = job.steps.filter((s: any) => s.run).map((s: any) => s.run.split("\n").pop());
        assert.deepStrictEqual(runs, ["npm ci", "npx --no-install tsx scripts/janitor.ts --stack prod", "npx --no-install tsx scripts/janitor.ts --stack prod --execute"]);
        for (const s of job.steps.filter((x: any) => x.run)) assert.ok(bashOk(s.run), s.run);
        assert.deepStrictEqual(Object.keys(doc.jobs), ["janitor-staging", "janitor-prod", "janitor-redshift"]);
        assert.strictEqual(doc.jobs["janitor-redshift"].env.AZURE_DEVOPS_EXT_PAT, "${{ secrets.JANITOR_CI_TOKEN_REDSHIFT }}");
    });

    it("Bitbucket: a custom pipeline per stack validates; Azure: a schedule and a job per stack validate, each job only on its own schedule", () => {
        const bb = renderPlatformBitbucket(ARGS)["bitbucket-pipelines.yml"];
        assert.deepStrictEqual(bitbucketSchemaErrors(bb), []);
        const step = parse(bb).pipelines.custom["platform-janitor-prod"][0].step;
        assert.deepStrictEqual(step.script.map((s: string) => s.split("\n")[0]), ["# Install", "# Janitor prod: dry run", "# Janitor prod: drop orphaned PR schemas"]);
        assert.match(step.script[1], /^export PGUSER="\$JANITOR_PGUSER_PROD" PGPASSWORD="\$JANITOR_PGPASSWORD_PROD" BITBUCKET_TOKEN="\$JANITOR_CI_TOKEN_PROD"$/m);
        for (const s of step.script) assert.ok(bashOk(s), s);

        const az = renderPlatformAzure(ARGS)["azure-pipelines-janitor.yml"];
        assert.deepStrictEqual(azureSchemaErrors(az), []);
        const doc = parse(az);
        assert.deepStrictEqual(doc.schedules.map((s: any) => [s.cron, s.displayName, s.always]), [["0 3 * * *", "PR-schema janitor staging", true], ["0 3 * * *", "PR-schema janitor prod", true], ["0 3 * * *", "PR-schema janitor redshift", true]]);
        const job = doc.jobs.find((j: any) => j.job === "janitor_prod");
        assert.strictEqual(job.condition, "or(eq(variables['Build.Reason'], 'Manual'), eq(variables['Build.CronSchedule.DisplayName'], 'PR-schema janitor prod'))");
        assert.deepStrictEqual(job.steps[3].env, { PGUSER: "$(JANITOR_PGUSER_PROD)", PGPASSWORD: "$(JANITOR_PGPASSWORD_PROD)", BITBUCKET_TOKEN: "$(JANITOR_CI_TOKEN_PROD)" });
        for (const s of job.steps.filter((x: any) => x.bash)) assert.ok(bashOk(s.bash), s.bash);
    });
});

describe("janitor: the rendered scheduled job against a real Postgres and the fake CI server @integration", function () {
    this.timeout(300_000);
    let server: TestServer;
    const NOW = Date.now();
    const DAY = 86_400_000;
    before(async () => {
        server = await startPostgres();
    });
    after(async () => {
        await server?.stop();
    });

    /** PR 1 closed (two schemas), 2 open (two), 3 closed, 4 open but past the stack's TTL (168 h), 5 open. */
    async function seed(db: string): Promise<void> {
        await server.admin("postgres", `create database ${db}`);
        for (const s of ["dbt_pr_1", "dbt_pr_1_marts", "dbt_pr_2", "dbt_pr_2_staging", "dbt_pr_3", "dbt_pr_4", "dbt_pr_5", "analytics"]) await server.admin(db, `create schema ${s}`);
        await server.admin(db, "create table dbt_pr_1.orders as select 1 as id");
        for (const [schema, pr, at] of [["dbt_pr_1", 1, NOW], ["dbt_pr_2", 2, NOW], ["dbt_pr_4", 4, NOW - 10 * DAY]] as const) {
            for (const s of JANITOR_SQL.postgres.mark(schema, pr, new Date(at))) await server.admin(db, s);
        }
    }
    const left = async (db: string) => (await server.admin<{ s: string }>(db, "select nspname as s from pg_namespace where nspname like 'dbt_pr%' or nspname = 'analytics' order by 1")).map((r) => r.s);

    for (const system of ["github", "bitbucket", "azure-devops"] as const) {
        it(`${system}: the dry run drops nothing, then the real run drops every orphaned family and keeps the open ones`, async () => {
            const db = `janitor_job_${system.replace("-", "_")}`;
            await seed(db);
            // The prod stack's dbt repository is on Bitbucket, whatever system runs the platform repository.
            const api = await fakePrServerProcess("bitbucket", "acme-data/analytics-dbt", { 1: "closed", 2: "open", 3: "closed", 4: "open", 5: "open" });
            let stopped = false;
            // The CI system's secrets, and what the checkout's environment points at: the test servers.
            const secrets = { JANITOR_PGUSER_PROD: server.adminUser, JANITOR_PGPASSWORD_PROD: server.adminPassword, JANITOR_CI_TOKEN_PROD: api.token };
            const env: NodeJS.ProcessEnv = { ...process.env, PGHOST: server.host, PGPORT: String(server.port), PGDATABASE: db, PGSSLMODE: "disable", JANITOR_API_URL: api.baseUrl };
            for (const k of ["PGUSER", "PGPASSWORD", "BITBUCKET_TOKEN", "GITHUB_TOKEN", "AZURE_DEVOPS_EXT_PAT", "SYSTEM_ACCESSTOKEN"]) delete env[k];
            let output = "";
            try {
                if (system === "github") {
                    const job = parse(renderPlatformGithub(ARGS)[".github/workflows/platform-janitor.yml"]).jobs["janitor-prod"];
                    const jobEnv = { ...env };
                    for (const [k, v] of Object.entries(job.env as Record<string, string>)) jobEnv[k] = v.replace(/\$\{\{ secrets\.([A-Z0-9_]+) \}\}/, (_, n: string) => (secrets as Record<string, string>)[n]);
                    for (const s of job.steps.filter((x: any) => x.run && x.name !== "Install")) {
                        const r = bash(s.run, ROOT, jobEnv);
                        output += r.output;
                        assert.strictEqual(r.code, 0, r.output);
                    }
                } else if (system === "bitbucket") {
                    const step = parse(renderPlatformBitbucket(ARGS)["bitbucket-pipelines.yml"]).pipelines.custom["platform-janitor-prod"][0].step;
                    const { script } = await runBitbucketStep({ ...step, script: step.script.filter((s: string) => !s.startsWith("# Install")) }, ROOT, { ...env, ...secrets });
                    output = script.output;
                    assert.strictEqual(script.code, 0, script.output);
                } else {
                    const stage = { jobs: [parse(renderPlatformAzure(ARGS)["azure-pipelines-janitor.yml"]).jobs.find((j: any) => j.job === "janitor_prod")] };
                    const steps = azureSteps(stage).filter((s: any) => s.bash && s.displayName !== "Install");
                    const r = await runAzureJob(steps, ROOT, { variables: secrets, secureFiles: {}, env, awsEnv: {} });
                    output = r.output;
                    assert.strictEqual(r.code, 0, r.output);
                }
                const lines = output.split("\n");
                assert.ok(lines.includes("janitor (dry run): would drop dbt_pr_1, dbt_pr_1_marts (PR 1 closed)"), output);
                assert.ok(lines.includes("janitor (dry run): dropped 0 of 3 orphaned, kept 2 open"), output);
                const summary = lines.find((l) => /^janitor: dropped \d+ of \d+ orphaned, kept \d+ open$/.test(l));
                assert.strictEqual(summary, "janitor: dropped 3 of 3 orphaned, kept 2 open", output);
                // The dry run came first: its summary precedes the real run's.
                assert.ok(lines.indexOf("janitor (dry run): dropped 0 of 3 orphaned, kept 2 open") < lines.indexOf(summary!));
                console.log(summary);
                assert.deepStrictEqual(await left(db), ["analytics", "dbt_pr_2", "dbt_pr_2_staging", "dbt_pr_5"]);
                stopped = true;
                const requests = await api.stop();
                // Each run asked once per family; only this repository's pull requests.
                assert.strictEqual(requests.length, 2 * 5, requests.join("\n"));
                assert.ok(requests.every((r) => /^GET \/(2\.0\/)?repositories\/acme-data\/analytics-dbt\/pullrequests\/[1-5]$/.test(r)), requests.join("\n"));
            } finally {
                if (!stopped) await api.stop();
            }
        });
    }
});
