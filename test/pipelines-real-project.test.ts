/**
 * @integration The rendered pipelines of all three CI systems, executed against a real-shaped dbt
 * project (test/fixtures/real-project: incrementals, a snapshot, seeds, a source, two custom
 * schemas, an ephemeral model, local packages) on a real Postgres with the platform's access model
 * applied, and moto_server as the artifacts bucket. Issue 10: incrementals and snapshots run
 * twice by every bot, PR schema families are reset and dropped (never a neighbour's), a failing
 * model shows its real error, the manifest fetch fails loudly, the evaluator gate is real, fork
 * PRs are skipped, full refreshes need a selector, and a project in a subdirectory works.
 */
import assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { azureNames, DRIVER_PATH, PipelineModel, renderPipelineFiles, RenderedPipelines } from "../components/pipelines";
import { SAME_REPOSITORY } from "../components/pipelines/github";
import { parseStackConfig } from "../components/config";
import { pipelineContext } from "../components/platform";
import { withCiSystem } from "../scripts/render";
import { resolve, runProgram, toPulumiConfig } from "../scripts/offline";
import { applyRecorded } from "./support/apply";
import { azureSteps, bash, RunHooks, RunResult, runAzureJob, runBitbucketStep, runGithubJob } from "./support/ciRun";
import { changeOneModel } from "./support/dbtProject";
import { MotoServer, startMoto } from "./support/moto";
import { startPostgres, TestServer } from "./support/postgres";
import { stackOnServers } from "./support/stackOnServers";
import { ensurePythonEnv, pythonEnv } from "./support/python";

const REAL_PROJECT = path.resolve(__dirname, "fixtures", "real-project");
const BUCKET = "acme-dbt-real";
const DATABASE = "analytics_real";
const PREFIX = "dbt_pr_";
/** Logins of the prod stack's bots (Pulumi.prod.yaml). */
const BOTS = { ci: "dev_ci", deploy: "dbt_bitbucket", scheduler: "dbt_cloud" } as const;
/** Incremental models and the snapshot, with the schema (suffix of the target schema) dbt puts them in. */
const INCREMENTAL = { fct_orders: "_shop", fct_customer_revenue: "_shop", fct_web_events: "_events", snap_customers: "" } as const;

type System = "bitbucket" | "github" | "azure-devops";

interface PrRun {
    pr: number;
    run: string;
    fork?: boolean;
    target?: string;
    /** Settings the CI system does not pass (e.g. secured variables on a fork's PR). */
    withhold?: string[];
    hooks?: RunHooks;
}

interface DeployRun {
    run: string;
    bot?: "deploy" | "scheduler";
    fullRefresh?: boolean;
    select?: string;
    /** A full build (by hand or on the schedule) instead of the slim deploy's state:modified+. */
    fullBuild?: boolean;
}

/** The last status dbt printed for `<schema>.<name>` (e.g. INSERT, MERGE, SELECT), and how often it was built. */
function lastStatus(output: string, schema: string, name: string): { status?: string; count: number } {
    const re = new RegExp(`OK (?:created sql incremental model|snapshotted) ${schema}\\.${name} [ .]*\\[([A-Z]+)`, "g");
    const all = [...output.matchAll(re)];
    return { status: all[all.length - 1]?.[1], count: all.length };
}

/** Problems with an output that should show a second (incremental) run of `names` into schemas under `base`. */
function incrementalProblems(output: string, base: string, names: (keyof typeof INCREMENTAL)[], minRuns: number): string[] {
    const problems: string[] = [];
    for (const n of names) {
        const { status, count } = lastStatus(output, `${base}${INCREMENTAL[n]}`, n);
        // A first build is CREATE TABLE AS (SELECT n); a second run goes through dbt's temp table (INSERT/MERGE).
        if (count < minRuns || !status || status === "SELECT") problems.push(`${base}${INCREMENTAL[n]}.${n}: built ${count} time(s), last ${status ?? "never"}`);
    }
    return problems;
}

describe("pipelines on a real-shaped dbt project (all three CI systems) @integration", function () {
    this.timeout(1_200_000);
    let server: TestServer;
    let moto: MotoServer;
    let settings: Record<string, string>;
    let profilesYaml: string;
    let roles: { pullRequestRoleArn: string; deployRoleArn: string };
    let baseConfig: Record<string, string>;
    const rendered: Partial<Record<System, RenderedPipelines>> = {};
    const dirs: string[] = [];

    /** Renders a system's files from the same stack (one warehouse, one set of passwords). */
    function render(system: System, changes: { bucket?: string; projectDir?: string } = {}): RenderedPipelines {
        const { config } = withCiSystem(baseConfig, system);
        if (changes.projectDir) config["dbt-platform:dbt"] = JSON.stringify({ ...JSON.parse(config["dbt-platform:dbt"]), projectDir: changes.projectDir });
        const parsed = parseStackConfig("prod", config);
        return renderPipelineFiles(pipelineContext(parsed, undefined, { bucket: changes.bucket ?? BUCKET, ...roles }), profilesYaml);
    }

    /** A repository checkout: the real project (in `projectDir`), the rendered files, then the PR's edits. */
    function checkout(files: Record<string, string>, opts: { projectDir?: string; edit?: (project: string) => void } = {}): string {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-real-repo-"));
        dirs.push(dir);
        const project = path.join(dir, opts.projectDir ?? ".");
        fs.cpSync(REAL_PROJECT, project, { recursive: true });
        for (const [rel, text] of Object.entries(files)) {
            fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
            fs.writeFileSync(path.join(dir, rel), text);
        }
        opts.edit?.(project);
        return dir;
    }

    const logs = () => fs.mkdtempSync(path.join(os.tmpdir(), "dbt-real-logs-"));

    /** The job's settings as the CI system stores them; the scheduler runs the deploy job with its own login. */
    function jobSettings(model: PipelineModel, job: "pull-request" | "deploy", bot: "deploy" | "scheduler" = "deploy", withhold: string[] = []): Record<string, string> {
        const out: Record<string, string> = {};
        for (const v of model.jobs.find((j) => j.id === job)!.variables) {
            const source = bot === "scheduler" ? v.name.replace(/^DBT_PROD_/, "DBT_SCHEDULER_") : v.name;
            assert.ok(settings[source] !== undefined, `no value for ${source}`);
            if (!withhold.includes(v.name)) out[v.name] = settings[source];
        }
        return out;
    }

    /** dbt colours status words even without a terminal; assertions read the plain text. */
    const plain = (r: RunResult): RunResult => ({ code: r.code, output: r.output.replace(/\x1b\[[0-9;]*m/g, "") });

    async function runPr(system: System, r: RenderedPipelines, dir: string, o: PrRun): Promise<RunResult> {
        return plain(await prRun(system, r, dir, o));
    }

    async function runDeploy(system: System, r: RenderedPipelines, dir: string, o: DeployRun): Promise<RunResult> {
        return plain(await deployRun(system, r, dir, o));
    }

    async function prRun(system: System, r: RenderedPipelines, dir: string, o: PrRun): Promise<RunResult> {
        const vars = jobSettings(r.model, "pull-request", "deploy", o.withhold);
        const base = pythonEnv({ AWS_ENDPOINT_URL: moto.endpoint, DBT_LOG_PATH: logs() });
        if (system === "bitbucket") {
            const step = parse(r.files["bitbucket-pipelines.yml"]).pipelines["pull-requests"]["**"][0].step;
            const env = { ...base, ...vars, BITBUCKET_PR_ID: String(o.pr), BITBUCKET_BUILD_NUMBER: o.run, BITBUCKET_PR_DESTINATION_BRANCH: o.target ?? "main", BITBUCKET_CLONE_DIR: dir, BITBUCKET_STEP_OIDC_TOKEN: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJiYiJ9." };
            const { script, after } = await runBitbucketStep(step, dir, env, o.hooks);
            return { code: script.code, output: script.output + (after?.output ?? "") };
        }
        if (system === "github") {
            const job = parse(r.files[".github/workflows/ci.yml"]).jobs["slim-ci"];
            const context = {
                "github.event.pull_request.number": String(o.pr),
                "github.base_ref": o.target ?? "main",
                "github.event.pull_request.head.repo.full_name != github.repository": o.fork ? "true" : "false",
                "github.event.pull_request.head.repo.full_name == github.repository": o.fork ? "false" : "true",
                "github.run_id": o.run,
                "github.run_attempt": "1",
            };
            return runGithubJob(job, dir, { settings: vars, context, env: base, withheld: o.withhold, onUses: githubUses(dir) }, o.hooks);
        }
        const doc = parse(r.files["azure-pipelines.yml"]);
        const variables = {
            ...vars,
            "System.PullRequest.PullRequestId": String(o.pr),
            "System.PullRequest.TargetBranch": `refs/heads/${o.target ?? "main"}`,
            "System.PullRequest.IsFork": o.fork ? "True" : "False",
            "Build.BuildId": o.run,
        };
        return runAzure(azureSteps(doc.stages.find((s: any) => s.stage === "slim_ci")), dir, variables, {}, base, o.hooks);
    }

    async function deployRun(system: System, r: RenderedPipelines, dir: string, o: DeployRun): Promise<RunResult> {
        const vars = jobSettings(r.model, "deploy", o.bot ?? "deploy");
        const base = pythonEnv({ AWS_ENDPOINT_URL: moto.endpoint, DBT_LOG_PATH: logs() });
        if (system === "bitbucket") {
            const custom = parse(r.files["bitbucket-pipelines.yml"]).pipelines.custom["release-prod"];
            const step = custom.find((x: any) => x.step).step;
            const env = { ...base, ...vars, BITBUCKET_BRANCH: "main", BITBUCKET_BUILD_NUMBER: o.run, BITBUCKET_CLONE_DIR: dir, BITBUCKET_STEP_OIDC_TOKEN: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJiYiJ9." };
            if (o.fullRefresh) Object.assign(env, { FULL_REFRESH: "true", FULL_REFRESH_SELECT: o.select ?? "" });
            // The full-build-prod custom pipeline exports it.
            if (o.fullBuild) Object.assign(env, { FULL_BUILD: "true" });
            const { script } = await runBitbucketStep(step, dir, env);
            return script;
        }
        if (system === "github") {
            const job = parse(r.files[".github/workflows/deploy.yml"]).jobs.deploy;
            const context = {
                "github.run_id": o.run,
                "github.run_attempt": "1",
                "github.ref_name": "main",
                "inputs.full_refresh && 'true' || 'false'": o.fullRefresh ? "true" : "false",
                "inputs.full_refresh_select": o.select ?? "",
                "inputs.full_build && 'true' || 'false'": o.fullBuild ? "true" : "false",
            };
            return runGithubJob(job, dir, { settings: vars, context, env: base, onUses: githubUses(dir) });
        }
        const doc = parse(r.files["azure-pipelines.yml"]);
        const variables = { ...vars, "Build.BuildId": o.run, "Build.SourceBranch": "refs/heads/main" };
        const parameters = { fullRefresh: o.fullRefresh ? "True" : "False", fullRefreshSelect: o.select ?? " ", fullBuild: o.fullBuild ? "True" : "False" };
        return runAzure(azureSteps(doc.stages.find((s: any) => s.stage === "deploy")), dir, variables, parameters, base);
    }

    function runAzure(steps: any[], dir: string, variables: Record<string, string>, parameters: Record<string, string>, env: NodeJS.ProcessEnv, hooks?: RunHooks): Promise<RunResult> {
        // The service connection hands the step credentials (moto accepts any).
        const awsEnv = { AWS_ACCESS_KEY_ID: "azure-service-connection", AWS_SECRET_ACCESS_KEY: "azure-service-connection" };
        return runAzureJob(steps, dir, { variables, parameters, secureFiles: { [azureNames("prod").profilesSecureFile("pull-request")]: profilesYaml, [azureNames("prod").profilesSecureFile("deploy")]: profilesYaml }, env, awsEnv }, hooks);
    }

    /** configure-aws-credentials: assume the role the workflow names with the job's OIDC token. */
    const githubUses = (dir: string) => (step: any, env: NodeJS.ProcessEnv) => {
        if (!String(step.uses).startsWith("aws-actions/configure-aws-credentials")) return;
        const token = path.join(dir, ".gh-oidc-token");
        fs.writeFileSync(token, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJnaCJ9.");
        Object.assign(env, { AWS_ROLE_ARN: step.with["role-to-assume"], AWS_WEB_IDENTITY_TOKEN_FILE: token, AWS_DEFAULT_REGION: step.with["aws-region"] });
    };

    async function schemas(like: string): Promise<string[]> {
        const rows = await server.admin<{ nspname: string }>(DATABASE, "select nspname from pg_namespace where nspname like $1 order by 1", [like]);
        return rows.map((r) => r.nspname);
    }

    /** The PR's family as the cleanup must see it: `<prefix><n>` and `<prefix><n>_*`, nothing of `<prefix><n><digit>`. */
    async function family(pr: number): Promise<string[]> {
        return (await schemas(`${PREFIX}${pr}%`)).filter((s) => s === `${PREFIX}${pr}` || s.startsWith(`${PREFIX}${pr}_`));
    }

    async function relations(schema: string): Promise<string[]> {
        const rows = await server.admin<{ relname: string }>(DATABASE, "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('r', 'v') order by 1", [schema]);
        return rows.map((r) => r.relname);
    }

    async function addLandingEvents(n: number): Promise<void> {
        await server.admin(
            DATABASE,
            `insert into landing.web_events select m + g, (g % 5) + 1, 'view', (select max(occurred_at) from landing.web_events) + g * interval '1 minute' from (select max(event_id) as m from landing.web_events) x, generate_series(1, ${n}) g`,
        );
    }

    before(async function () {
        ensurePythonEnv();
        [server, moto] = await Promise.all([startPostgres(), startMoto()]);
        await moto.createBucket(BUCKET);

        // The prod stack with the evaluator gate on, pointed at the test servers (no CloudFront here).
        const doc = stackOnServers("prod", server, { database: DATABASE, bucket: BUCKET, features: { docsSite: false, scheduledRuns: false, projectEvaluator: true } });
        baseConfig = toPulumiConfig(doc);
        const { resources, exports } = await runProgram("prod", baseConfig);
        await applyRecorded(server, resources);
        settings = (await resolve(exports.profileEnvironment)).value as Record<string, string>;
        profilesYaml = (await resolve(exports.profilesYaml)).value as string;
        const arns = exports.ciRoleArns as unknown as Record<"pullRequest" | "deploy", import("@pulumi/pulumi").Output<string>>;
        roles = { pullRequestRoleArn: (await resolve(arns.pullRequest)).value, deployRoleArn: (await resolve(arns.deploy)).value };
        for (const s of ["bitbucket", "github", "azure-devops"] as const) rendered[s] = render(s);

        // What an ingestion tool loads: the source the project reads by name, readable by both groups.
        await server.admin(
            DATABASE,
            `create schema landing;
             create table landing.web_events as
               select g as event_id, (g % 5) + 1 as customer_id, 'view'::text as event_type, timestamp '2026-11-01' + g * interval '1 hour' as occurred_at
               from generate_series(1, 20) g;
             grant usage on schema landing to role_dev, role_prod;
             grant select on all tables in schema landing to role_dev, role_prod;`,
        );
    });

    after(async () => {
        for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
        await Promise.all([moto?.stop(), server?.stop()]);
    });

    const SYSTEMS: [System, number][] = [
        ["bitbucket", 11],
        ["github", 21],
        ["azure-devops", 31],
    ];

    for (const [system, pr] of SYSTEMS) {
        describe(system, () => {
            it("incrementals and the snapshot run twice for every bot; the PR's schema family is reset and dropped, never a neighbour's", async () => {
                const r = rendered[system]!;
                const problems: string[] = [];
                const ran: string[] = [];
                // Production is shared by the three systems: the first builds it from scratch, so every later run is incremental.
                // The first system runs each production bot twice; the others once more each (already their second run or later).
                const runs = system === "bitbucket" ? [1, 2] : [1];
                for (const [bot, login] of [["deploy", BOTS.deploy], ["scheduler", BOTS.scheduler]] as const) {
                    let output = "";
                    for (const n of runs) {
                        await addLandingEvents(3);
                        // Full builds (the schedule's): a slim deploy of an unchanged project builds nothing.
                        const d = await runDeploy(system, r, checkout(r.files), { run: `${system}-${bot}-${n}`, bot, fullBuild: true });
                        assert.strictEqual(d.code, 0, `${bot} run ${n} failed:\n${d.output.slice(-4000)}`);
                        output += d.output;
                    }
                    problems.push(...incrementalProblems(output, "analytics", ["fct_orders", "fct_customer_revenue", "fct_web_events", "snap_customers"], runs.length).map((p) => `${login}: ${p}`));
                    ran.push(login);
                }
                // Role masking: whichever bot built production, the objects belong to the prod group role.
                const owners = await server.admin<{ owner: string }>(
                    DATABASE,
                    "select distinct pg_get_userbyid(c.relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('analytics', 'analytics_shop', 'analytics_events') and c.relkind in ('r', 'v')",
                );
                assert.deepStrictEqual(owners.map((o) => o.owner), ["role_prod"]);
                // Production never holds the evaluator's relations.
                assert.ok(!(await relations("analytics")).includes("fct_model_naming_conventions"), "the deploy built dbt_project_evaluator's models");

                // A neighbour PR (dbt_pr_112 next to dbt_pr_11: a bare prefix match would take it) and a stale custom schema of this PR's last run.
                const neighbour = pr * 10 + 2;
                await server.admin(
                    DATABASE,
                    `create schema ${PREFIX}${neighbour}; create table ${PREFIX}${neighbour}.keep (x int);
                     create schema ${PREFIX}${neighbour}_shop; create table ${PREFIX}${neighbour}_shop.keep (x int);
                     create schema ${PREFIX}${pr}_events authorization role_dev; create table ${PREFIX}${pr}_events.stale_from_last_run (x int);
                     alter table ${PREFIX}${pr}_events.stale_from_last_run owner to role_dev;`,
                );

                // CI: a PR changing both staging parents. The build step runs again without its reset (the driver's first
                // command), so the CI login's incrementals and the snapshot take the incremental path on its own tables: a job
                // re-run starts with the reset, so this is the only way the CI login meets relations it built.
                const dir = checkout(r.files, { edit: (p) => ["stg_orders", "stg_customers"].forEach((m) => changeOneModel(p, m)) });
                let created: string[] = [];
                let stale: string[] = [];
                const withoutReset = (script: string) => {
                    const out = script.replace(/ "run-operation dbt_platform_drop_pr_schemas [^\n]*?claim: true\}\\""/g, "");
                    assert.notStrictEqual(out, script, "the build step has no reset to leave out");
                    return out;
                };
                const hooks: RunHooks = {
                    repeat: ["Slim CI"],
                    again: withoutReset,
                    beforeCleanup: async () => {
                        created = await family(pr);
                        stale = await relations(`${PREFIX}${pr}_events`);
                    },
                };
                const ci = await runPr(system, r, dir, { pr, run: `${system}-ci-1`, hooks });
                assert.strictEqual(ci.code, 0, ci.output.slice(-4000));
                assert.match(ci.output, /Deferring to the production manifest/);
                problems.push(...incrementalProblems(ci.output, `${PREFIX}${pr}`, ["fct_orders", "fct_customer_revenue", "snap_customers"], 2).map((p) => `${BOTS.ci}: ${p}`));
                ran.push(BOTS.ci);
                assert.deepStrictEqual(problems, []);
                console.log(`      real project: incremental x2 ok for ${ran.join(", ")}`);

                // The reset dropped the last run's leftovers (stg_*+ never rebuilds the _events schema); the cleanup dropped the whole family.
                assert.deepStrictEqual(created, [`${PREFIX}${pr}`, `${PREFIX}${pr}_shop`]);
                assert.deepStrictEqual(stale, [], "the reset left the last run's relations");
                const left = await family(pr);
                console.log(`      pr cleanup: ${left.length} of ${created.length} PR schemas left`);
                assert.deepStrictEqual(left, []);
                assert.deepStrictEqual(await relations(`${PREFIX}${neighbour}`), ["keep"], "the cleanup touched another PR's schema");
                assert.deepStrictEqual(await relations(`${PREFIX}${neighbour}_shop`), ["keep"], "the cleanup touched another PR's custom schema");
            });

            it("a failing model with --fail-fast shows the real error", async () => {
                const r = rendered[system]!;
                const dir = checkout(r.files, {
                    edit: (p) => {
                        // Fails a second in, while fct_slow is still running: --fail-fast must cancel it.
                        fs.writeFileSync(path.join(p, "models/marts/fct_boom.sql"), "select 1 / (select 0 from pg_sleep(1)) as boom\n");
                        fs.writeFileSync(path.join(p, "models/marts/fct_slow.sql"), "select 1 as slept from pg_sleep(8)\n");
                    },
                });
                const run = await runPr(system, r, dir, { pr: pr + 5, run: `${system}-ci-cancel` });
                assert.notStrictEqual(run.code, 0, "the build with a failing model passed");
                assert.match(run.output, /division by zero/, `the real error is not on the console:\n${run.output.slice(-3000)}`);
                assert.ok(!/must be a member of the role whose process is being terminated/.test(run.output), "the cancellation error replaced the real one");
                assert.deepStrictEqual(await family(pr + 5), [], "the failed run's schemas were not dropped");
                console.log("      cancel: real error shown");
            });
        });
    }

    describe("policies", () => {
        before(async function () {
            // Run on their own (--grep), these need the production the system tests build.
            if ((await relations("analytics")).includes("raw_orders")) return;
            const d = await runDeploy("bitbucket", rendered.bitbucket!, checkout(rendered.bitbucket!.files), { run: "policies-prod" });
            assert.strictEqual(d.code, 0, d.output.slice(-3000));
        });

        it("cleanup of an older run leaves the schemas a newer run of the same PR holds", async () => {
            // The rendered reset and cleanup lines, interleaved as a cancelled run and its successor would (Azure does not wait).
            const r = rendered.bitbucket!;
            const job = r.model.jobs.find((j) => j.id === "pull-request")!;
            const stepLines = (id: string) => job.steps.find((s) => s.id === id)!.lines;
            // The reset is the build step's driver's first command: the step's own preamble, then the driver with that command alone.
            const build = stepLines("build");
            const resetArg = build.join("\n").match(/ ("run-operation dbt_platform_drop_pr_schemas [^\n]*?claim: true\}\\"")/)![1];
            const preamble = build.slice(0, build.findIndex((l) => l.startsWith("DEPS_KEY=") || l.startsWith("if [ -f .state/manifest.json ]")));
            const lines = (id: string) => (id === "reset" ? [...preamble, `python ${DRIVER_PATH} ${resetArg}`] : stepLines(id)).join("\n");
            const dir = checkout(r.files);
            const env = { ...pythonEnv({ DBT_LOG_PATH: logs() }), ...jobSettings(r.model, "pull-request"), PR_NUMBER: "41", PR_TARGET_BRANCH: "main", IS_FORK: "false", DBT_PROFILES_DIR: ".ci" };
            const step = (id: string, run: string) => {
                const res = bash(lines(id), dir, { ...env, RUN_ID: run });
                assert.strictEqual(res.code, 0, `${id} of ${run}:\n${res.output.slice(-3000)}`);
                return res.output;
            };
            assert.strictEqual(bash("dbt deps --quiet", dir, env).code, 0);
            step("reset", "older");
            await server.admin(DATABASE, "create table dbt_pr_41.built_by_older (x int)");
            step("reset", "newer");
            assert.deepStrictEqual(await relations("dbt_pr_41"), [], "the newer run's reset left the older run's relations");
            await server.admin(DATABASE, "create schema dbt_pr_41_shop authorization role_dev");
            const older = step("cleanup", "older");
            assert.match(older, /left analytics_real\.dbt_pr_41: a newer run holds it \(dbt-platform run newer\)/);
            assert.deepStrictEqual(await family(41), ["dbt_pr_41", "dbt_pr_41_shop"]);
            assert.match(step("cleanup", "newer"), /dropped schemas analytics_real\.dbt_pr_41, analytics_real\.dbt_pr_41_shop/);
            assert.deepStrictEqual(await family(41), []);
        });

        it("the cleanup macro refuses anything outside <prefix><n>", () => {
            const r = rendered.bitbucket!;
            const dir = checkout(r.files);
            const env = { ...pythonEnv({ DBT_LOG_PATH: logs() }), ...jobSettings(r.model, "pull-request"), DBT_CI_SCHEMA: "analytics", DBT_PROFILES_DIR: ".ci" };
            assert.strictEqual(bash("dbt deps --quiet", dir, env).code, 0);
            for (const name of ["analytics", "dbt_pr_7_shop"]) {
                const res = bash(`dbt run-operation dbt_platform_drop_pr_schemas --target ci --args "{schema_name: ${name}, run_id: r1}"`, dir, env);
                assert.notStrictEqual(res.code, 0, `dropped ${name}`);
                assert.match(res.output, new RegExp(`refusing to drop ${name}: only dbt_pr_<pull request number> schemas`));
            }
        });

        it("manifest fetch: a missing bucket (or any failure but a missing key) fails the job naming bucket, key and role", async () => {
            // The missing-key case (full build with a notice) is the 37-model e2e's first PR, before any deploy.
            const missing = render("github", { bucket: "acme-dbt-no-such-bucket" });
            const bad = await runPr("github", missing, checkout(missing.files), { pr: 52, run: "gh-nobucket" });
            assert.notStrictEqual(bad.code, 0, "a broken bucket became a full build");
            assert.match(bad.output, /NoSuchBucket/);
            assert.ok(bad.output.includes(`Cannot fetch the production manifest: bucket acme-dbt-no-such-bucket, key artifacts/latest/manifest.json, as role ${roles.pullRequestRoleArn}.`), bad.output.slice(-2000));
            assert.ok(!/OK created sql/.test(bad.output), "dbt built after a failed fetch");
            assert.deepStrictEqual(await family(52), []);
        });

        it("the evaluator gate fails a PR with a violation, and fails when the package is missing", async () => {
            const r = rendered["azure-devops"]!;
            const violation = await runPr("azure-devops", r, checkout(r.files, { edit: (p) => fs.writeFileSync(path.join(p, "models/marts/customer_report.sql"), "select * from {{ ref('dim_customers') }}\n") }), { pr: 61, run: "az-eval" });
            assert.notStrictEqual(violation.code, 0, "a naming violation passed the gate");
            assert.match(violation.output, /FAIL 1 dbt_project_evaluator_is_empty_fct_model_naming_conventions_/);
            assert.match(violation.output, /dbt_project_evaluator: violations/);
            assert.deepStrictEqual(await family(61), [], "the failed PR's schemas were not dropped");

            const missing = await runPr("azure-devops", r, checkout(r.files, { edit: (p) => fs.writeFileSync(path.join(p, "packages.yml"), "packages:\n  - local: packages/shop_utils\n") }), { pr: 62, run: "az-noeval" });
            assert.notStrictEqual(missing.code, 0, "a missing evaluator package passed the gate");
            assert.match(missing.output, /features\.projectEvaluator is on, but the project has no dbt_project_evaluator tests/);
            assert.ok(!/OK created sql/.test(missing.output), "dbt built before the missing package was reported");
        });

        it("fork PRs are skipped with a notice (GitHub, Azure); on Bitbucket a withheld secured variable fails by name", async () => {
            for (const system of ["github", "azure-devops"] as const) {
                const r = rendered[system]!;
                const res = await runPr(system, r, checkout(r.files), { pr: 71, run: `${system}-fork`, fork: true, withhold: ["DBT_CI_PASSWORD"] });
                assert.strictEqual(res.code, 0, res.output.slice(-2000));
                assert.match(res.output, /Pull request from a fork: slim CI skipped/);
                assert.ok(!/Running with dbt/.test(res.output), `${system}: dbt ran for a fork`);
                if (system === "github") assert.strictEqual(parse(r.files[".github/workflows/ci.yml"]).jobs["slim-ci"].steps.find((s: any) => String(s.uses).startsWith("aws-actions/")).if, SAME_REPOSITORY, "a fork's PR would fail at the OIDC step");
            }
            const r = rendered.bitbucket!;
            const res = await runPr("bitbucket", r, checkout(r.files), { pr: 72, run: "bb-fork", withhold: ["DBT_CI_PASSWORD"] });
            assert.notStrictEqual(res.code, 0);
            assert.match(res.output, /DBT_CI_PASSWORD is not set: it comes from the CI settings/);
            assert.ok(!/Running with dbt/.test(res.output), "dbt ran without credentials");
            assert.deepStrictEqual([...(await family(71)), ...(await family(72))], []);
        });

        it("Bitbucket: a PR into another branch is skipped (pull-requests filters on the source branch only)", async () => {
            const r = rendered.bitbucket!;
            const res = await runPr("bitbucket", r, checkout(r.files), { pr: 73, run: "bb-develop", target: "develop" });
            assert.strictEqual(res.code, 0, res.output.slice(-2000));
            assert.match(res.output, /Slim CI runs for pull requests into main; this one targets develop: skipped/);
            assert.ok(!/Running with dbt/.test(res.output));
        });

        it("a full refresh needs a selector and never drops seeds (their views survive)", async () => {
            const r = rendered.bitbucket!;
            const before = await relations("analytics");
            const seedOids = async () => server.admin<{ relname: string; oid: number }>(DATABASE, "select relname, c.oid::int as oid from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'analytics' and relname like 'raw_%' order by 1");
            const oids = await seedOids();
            const refused = await runDeploy("bitbucket", r, checkout(r.files), { run: "bb-fr-1", fullRefresh: true });
            assert.notStrictEqual(refused.code, 0);
            assert.match(refused.output, /Refusing a full refresh without a selector/);
            assert.ok(!/OK created|OK loaded seed/.test(refused.output), "dbt built before the refusal");

            const ok = await runDeploy("bitbucket", r, checkout(r.files), { run: "bb-fr-2", fullRefresh: true, select: "fct_orders+ raw_orders+" });
            assert.strictEqual(ok.code, 0, ok.output.slice(-4000));
            // fct_orders was rebuilt from scratch (CREATE TABLE AS), then the regular build ran incrementally.
            assert.match(ok.output, /OK created sql incremental model analytics_shop\.fct_orders [ .]*\[SELECT/);
            assert.deepStrictEqual(await seedOids(), oids, "a seed was dropped and recreated");
            assert.deepStrictEqual(await relations("analytics"), before, "production lost or gained relations");
        });

        it("a project in a subdirectory (dbt.projectDir): deploy and slim CI run there", async () => {
            const r = render("github", { projectDir: "transform/dbt" });
            assert.ok(r.files["transform/dbt/macros/dbt_platform_drop_pr_schemas.sql"] && r.files["transform/dbt/.ci/profiles.yml"]);
            const d = await runDeploy("github", r, checkout(r.files, { projectDir: "transform/dbt" }), { run: "gh-subdir-1" });
            assert.strictEqual(d.code, 0, d.output.slice(-4000));
            assert.deepStrictEqual(await moto.listKeys(BUCKET, "artifacts/history/gh-subdir-1-1/"), ["artifacts/history/gh-subdir-1-1/manifest.json", "artifacts/history/gh-subdir-1-1/run_results.json"]);
            const dir = checkout(r.files, { projectDir: "transform/dbt", edit: (p) => changeOneModel(p, "stg_orders") });
            const ci = await runPr("github", r, dir, { pr: 81, run: "gh-subdir-ci" });
            assert.strictEqual(ci.code, 0, ci.output.slice(-4000));
            assert.match(ci.output, /Deferring to the production manifest/);
            assert.match(ci.output, /OK created sql incremental model dbt_pr_81_shop\.fct_orders/);
            assert.ok(!fs.existsSync(path.join(dir, "target")) && fs.existsSync(path.join(dir, "transform/dbt/target/run_results.json")), "dbt did not run in the project folder");
            assert.deepStrictEqual(await family(81), []);
        });
    });
});
