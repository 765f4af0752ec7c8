/**
 * Caches that spare a PR job repeated work (issue 16 §3): Bitbucket's custom caches and Azure's
 * Cache@2 tasks for pip, dbt_packages and the partial-parse file (per PR and dbt version, copied
 * through a folder), validated against the publishers' schemas; and, with real dbt and a real
 * Postgres, the install step skipping `dbt deps` when dbt_packages was restored for the same
 * package-lock.yml (a `local:` package, no network), running it again when the lock changes.
 */
import assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse, stringify } from "yaml";
import { DBT_CORE_VERSION, DEPS_MARKER, PipelineContext, pipelineModel, renderPipelineFiles } from "../components/pipelines";
import { azureSteps, bash, runAzureJob, runBitbucketStep } from "./support/ciRun";
import { azureSchemaErrors, bitbucketSchemaErrors } from "./support/pipelineSchemas";
import { postgresPipelineWarehouse } from "./support/pipelineWarehouse";
import { startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv, pythonEnv } from "./support/python";

const ctx = (over: Partial<PipelineContext> = {}): PipelineContext => ({
    stack: "dev",
    system: "bitbucket",
    repository: "acme/analytics",
    mainBranch: "main",
    dbt: { profile: "acme", version: DBT_CORE_VERSION, pythonVersion: "3.11", projectDir: "transform/dbt" },
    targets: { ci: "ci", deploy: "prod" },
    warehouse: postgresPipelineWarehouse({ ci: "ci", deploy: "prod" }),
    environment: { kind: "development" },
    aws: { region: "eu-west-1", bucket: "b", pullRequestRoleArn: "arn:pr", deployRoleArn: "arn:deploy", azureServiceConnection: "aws" },
    projectEvaluator: false,
    ...over,
});

const SKIPPED = "dbt deps skipped: dbt_packages was restored for this package-lock.yml";

describe("caches: Bitbucket and Azure DevOps, dbt deps skipped on a restored dbt_packages", function () {
    this.timeout(600_000);

    it("Bitbucket: path caches for dbt_packages and the partial-parse folder (the schema has no keyed caches), on every step; file validates", () => {
        for (const c of [ctx(), ctx({ stack: "prod", environment: { kind: "release", promotesFrom: "staging" } })]) {
            const text = renderPipelineFiles(c, "").files["bitbucket-pipelines.yml"];
            assert.deepStrictEqual(bitbucketSchemaErrors(text), []);
            const doc = parse(text);
            assert.deepStrictEqual(doc.definitions.caches, { "dbt-packages": "transform/dbt/dbt_packages", "dbt-partial-parse": "transform/dbt/.dbt-partial-parse" });
            const steps = [...Object.values(doc.pipelines["pull-requests"] ?? {}), ...Object.values(doc.pipelines.branches ?? {}), ...Object.values(doc.pipelines.custom)].flat() as any[];
            for (const s of steps.filter((x) => x.step)) {
                assert.deepStrictEqual(s.step.caches, ["pip", "dbt-packages", "dbt-partial-parse"]);
                // Restored right after the context, before any dbt command; saved last, from the clone directory.
                assert.match(s.step.script[1], /^# Restore dbt's partial parse from the cache\n/);
                assert.match(s.step.script.at(-1), /^# Save dbt's partial parse to the cache\ncd "\$BITBUCKET_CLONE_DIR"\n/);
                assert.ok(s.step.script.some((i: string) => i.includes(SKIPPED)));
            }
        }
        const pr = parse(renderPipelineFiles(ctx(), "").files["bitbucket-pipelines.yml"]).pipelines["pull-requests"]["**"][0].step.script as string[];
        assert.ok(pr[1].includes(`transform/dbt/.dbt-partial-parse/${DBT_CORE_VERSION}/dev-pr-$PR_NUMBER.msgpack`), pr[1]);
    });

    it("Azure: Cache@2 for pip, dbt_packages (packages.yml | package-lock.yml | dbt version) and partial parse per PR and dbt version; file validates", () => {
        const text = renderPipelineFiles(ctx({ system: "azure-devops" }), "").files["azure-pipelines.yml"];
        assert.deepStrictEqual(azureSchemaErrors(text), []);
        const doc = parse(text);
        const v = `"${DBT_CORE_VERSION}"`;
        for (const [stage, scope] of [["slim_ci", '"dev-pr-$(System.PullRequest.PullRequestId)"'], ["deploy", '"dev-deploy"']]) {
            const steps = azureSteps(doc.stages.find((s: any) => s.stage === stage));
            const caches = steps.filter((s) => s.task === "Cache@2");
            assert.deepStrictEqual(caches.map((s) => s.inputs), [
                {
                    key: `pip | "$(Agent.OS)" | "python-3.11" | "dbt-core==${DBT_CORE_VERSION} dbt-postgres==1.11.0 awscli==1.46.2"`,
                    restoreKeys: 'pip | "$(Agent.OS)" | "python-3.11"',
                    path: "$(Pipeline.Workspace)/.pip",
                },
                { key: `dbt_packages | ${v} | $(Pipeline.Workspace)/dbt-cache-keys/dbt_packages`, path: "transform/dbt/dbt_packages" },
                { key: `dbt_partial_parse | ${v} | ${scope} | "$(Build.BuildId)"`, restoreKeys: `dbt_partial_parse | ${v} | ${scope}`, path: "transform/dbt/.dbt-partial-parse" },
            ]);
            const at = (name: string) => steps.findIndex((s) => s.displayName === name);
            // The key file exists before the task that hashes it; the msgpack is restored before the first dbt step and saved after the last.
            assert.ok(at("dbt_packages cache key (packages.yml, package-lock.yml)") < steps.indexOf(caches[1]));
            assert.ok(steps.indexOf(caches[2]) < at("Restore dbt's partial parse from the cache"));
            assert.ok(at("Restore dbt's partial parse from the cache") < at("Install dbt"));
            assert.strictEqual(steps.at(-1).displayName, "Save dbt's partial parse to the cache");
            assert.ok(steps.find((s) => s.displayName === "Install dbt").env.PIP_CACHE_DIR === "$(Pipeline.Workspace)/.pip");
            // The copies get the PR number only, never the warehouse's credentials.
            for (const name of ["Restore dbt's partial parse from the cache", "Save dbt's partial parse to the cache"]) {
                assert.deepStrictEqual(steps.find((s) => s.displayName === name).env, stage === "slim_ci" ? { PR_NUMBER: "$(System.PullRequest.PullRequestId)" } : undefined);
            }
            // The deploy's install step runs deps; the PR job's one dbt process does (runner.ts --deps), decided in its build step.
            const deps = stage === "slim_ci" ? steps.find((s) => String(s.bash ?? "").includes("dbt_platform_run.py $DBT_DEPS")) : steps.find((s) => s.displayName === "Install dbt");
            assert.ok(deps?.bash.includes(SKIPPED), stage);
        }
    });

    it("GitHub: the install step skips dbt deps the same way", () => {
        const ci = parse(renderPipelineFiles(ctx({ system: "github" }), "").files[".github/workflows/ci.yml"]).jobs["slim-ci"].steps as any[];
        const build = ci.find((s) => String(s.run ?? "").includes("dbt_platform_run.py $DBT_DEPS"));
        assert.ok(build?.run.includes(SKIPPED) && !ci.find((s) => s.name === "Install dbt").run.includes("dbt deps"));
    });

    describe("with real dbt and a real Postgres @integration", () => {
        let pg: TestServer;
        let root: string;
        before(async () => {
            ensurePythonEnv();
            pg = await startPostgres();
            root = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-caches-"));
        });
        after(async () => {
            await pg?.stop();
            fs.rmSync(root, { recursive: true, force: true });
        });

        /** The deploy job's rendered install step itself (preamble, pip, versions, deps), run from the clone directory as Bitbucket does; asserts it passed, and times it. */
        function timedInstall(repo: string, env: NodeJS.ProcessEnv): () => { output: string; seconds: number } {
            const job = pipelineModel(ctx({ aws: undefined })).jobs.find((j) => j.id === "deploy")!;
            const install = job.steps.find((s) => s.id === "install")!;
            const settings = Object.fromEntries(job.variables.map((v) => [v.name, "unused by dbt deps"]));
            return () => {
                const started = process.hrtime.bigint();
                const r = bash(install.lines.join("\n"), repo, { ...env, ...settings });
                assert.strictEqual(r.code, 0, r.output);
                return { output: r.output, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
            };
        }

        /** A checkout: transform/dbt holds a project whose model calls a macro of a `local:` package (no network). */
        function checkout(name: string): { repo: string; project: string } {
            const repo = path.join(root, name);
            const project = path.join(repo, "transform/dbt");
            const pkg = path.join(repo, "packages/answers");
            fs.mkdirSync(path.join(pkg, "macros"), { recursive: true });
            fs.writeFileSync(path.join(pkg, "dbt_project.yml"), stringify({ name: "answers", version: "1.0.0", "config-version": 2 }));
            fs.writeFileSync(path.join(pkg, "macros/answer.sql"), "{% macro answer() %}42{% endmacro %}\n");
            fs.mkdirSync(path.join(project, "models"), { recursive: true });
            fs.writeFileSync(path.join(project, "dbt_project.yml"), stringify({ name: "acme", version: "1.0.0", "config-version": 2, profile: "acme" }));
            fs.writeFileSync(path.join(project, "models/the_answer.sql"), "select {{ answers.answer() }} as answer\n");
            fs.writeFileSync(path.join(project, "packages.yml"), stringify({ packages: [{ local: "../../packages/answers" }] }));
            fs.mkdirSync(path.join(project, ".ci"));
            const prod = { type: "postgres", host: pg.host, port: pg.port, user: pg.adminUser, password: pg.adminPassword, dbname: "postgres", schema: "caches_prod", threads: 1 };
            fs.writeFileSync(path.join(project, ".ci/profiles.yml"), stringify({ acme: { target: "prod", outputs: { prod } } }));
            return { repo, project };
        }

        it("the second run skips dbt deps and still builds; a changed lock runs deps again", async () => {
            const { repo, project } = checkout("deps");
            const env = pythonEnv({ DBT_PROFILES_DIR: ".ci", BITBUCKET_CLONE_DIR: repo, BITBUCKET_BUILD_NUMBER: "1", BITBUCKET_BRANCH: "main" });
            // The repository commits its lock file, as `dbt deps --lock` writes it.
            assert.strictEqual(bash("dbt deps --lock --quiet", project, env).code, 0);
            assert.ok(fs.existsSync(path.join(project, "package-lock.yml")));
            const runInstall = timedInstall(repo, env);
            const build = () => {
                const r = bash("dbt build --target prod", project, env);
                assert.strictEqual(r.code, 0, r.output);
            };
            const cold = runInstall();
            assert.ok(!cold.output.includes(SKIPPED), cold.output);
            assert.ok(fs.existsSync(path.join(project, "dbt_packages", DEPS_MARKER)));
            build();
            // A fresh checkout with dbt_packages restored from the cache (target/ and logs/ are not cached).
            fs.rmSync(path.join(project, "target"), { recursive: true, force: true });
            const warm = runInstall();
            assert.ok(warm.output.includes(SKIPPED), warm.output);
            build();
            // The lock changes (a second local package): deps runs again and the build uses what it installed.
            const pkg2 = path.join(repo, "packages/more");
            fs.mkdirSync(path.join(pkg2, "macros"), { recursive: true });
            fs.writeFileSync(path.join(pkg2, "dbt_project.yml"), stringify({ name: "more", version: "1.0.0", "config-version": 2 }));
            fs.writeFileSync(path.join(pkg2, "macros/more.sql"), "{% macro more() %}1{% endmacro %}\n");
            fs.writeFileSync(path.join(project, "packages.yml"), stringify({ packages: [{ local: "../../packages/answers" }, { local: "../../packages/more" }] }));
            assert.strictEqual(bash("dbt deps --lock --quiet", project, env).code, 0);
            fs.writeFileSync(path.join(project, "models/the_answer.sql"), "select {{ answers.answer() }} + {{ more.more() }} as answer\n");
            const changed = runInstall();
            assert.ok(!changed.output.includes(SKIPPED), changed.output);
            build();
            const again = runInstall();
            assert.ok(again.output.includes(SKIPPED), again.output);
            console.log(
                `      caches: install step with dbt deps ${cold.seconds.toFixed(1)} s, skipped on a restored dbt_packages ${warm.seconds.toFixed(1)} s (saved ${(cold.seconds - warm.seconds).toFixed(1)} s); changed lock: deps ran again (${changed.seconds.toFixed(1)} s)`,
            );
        });

        it("on the real-shaped project (two local packages): the install step with and without dbt deps, measured", () => {
            const repo = path.join(root, "real");
            const project = path.join(repo, "transform/dbt");
            fs.cpSync(path.resolve(__dirname, "fixtures", "real-project"), project, { recursive: true });
            const env = pythonEnv({ DBT_PROFILES_DIR: ".ci" });
            assert.strictEqual(bash("dbt deps --lock --quiet", project, env).code, 0);
            const run = timedInstall(repo, env);
            const cold = run();
            const warm = run();
            assert.ok(!cold.output.includes(SKIPPED) && warm.output.includes(SKIPPED), warm.output);
            assert.ok(fs.existsSync(path.join(project, "dbt_packages/shop_utils/dbt_project.yml")));
            console.log(`      caches (real-shaped project): install step ${cold.seconds.toFixed(1)} s with dbt deps, ${warm.seconds.toFixed(1)} s on a restored dbt_packages (saved ${(cold.seconds - warm.seconds).toFixed(1)} s)`);
        });

        it("Bitbucket and Azure runs: the partial-parse file saved by one run of a PR is restored by its next run, not by another PR's", async () => {
            const { repo, project } = checkout("parse");
            assert.strictEqual(bash("dbt deps --quiet", project, pythonEnv({ DBT_PROFILES_DIR: ".ci" })).code, 0);
            const c = ctx({ aws: undefined });
            const cached = (pr: number) => path.join(repo, `transform/dbt/.dbt-partial-parse/${DBT_CORE_VERSION}/dev-pr-${pr}.msgpack`);
            const bb = parse(renderPipelineFiles(c, "").files["bitbucket-pipelines.yml"]).pipelines["pull-requests"]["**"][0].step;
            // Only the cache items: the restore, then dbt parse (as the build would), then the save.
            const items = (pr: number) => [bb.script[0], bb.script[1], "cd transform/dbt && dbt parse --target prod", bb.script.at(-1)];
            const env = (pr: number) => pythonEnv({ DBT_PROFILES_DIR: ".ci", BITBUCKET_CLONE_DIR: repo, BITBUCKET_PR_ID: String(pr), BITBUCKET_BUILD_NUMBER: "2", BITBUCKET_PR_DESTINATION_BRANCH: "main" });
            const first = await runBitbucketStep({ script: items(5) }, repo, env(5));
            assert.strictEqual(first.script.code, 0, first.script.output);
            assert.match(first.script.output, /No cached partial parse for dev-pr-5/);
            assert.ok(fs.existsSync(cached(5)));
            fs.rmSync(path.join(repo, "transform/dbt/target"), { recursive: true, force: true });
            const second = await runBitbucketStep({ script: items(5) }, repo, env(5));
            assert.strictEqual(second.script.code, 0, second.script.output);
            assert.match(second.script.output, /Restored dbt's partial parse \(dev-pr-5/);
            // dbt used it: no full parse.
            assert.ok(!/Unable to do partial parsing/.test(second.script.output), second.script.output);
            fs.rmSync(path.join(repo, "transform/dbt/target"), { recursive: true, force: true });
            const other = await runBitbucketStep({ script: items(6) }, repo, env(6));
            assert.match(other.script.output, /No cached partial parse for dev-pr-6/);
            assert.match(other.script.output, /Unable to do partial parsing because saved manifest not found/);
            // Azure: the same copy steps, with the runner's Cache@2 a miss.
            const az = azureSteps(parse(renderPipelineFiles({ ...c, system: "azure-devops" }, "").files["azure-pipelines.yml"]).stages.find((s: any) => s.stage === "slim_ci"));
            const restore = az.find((s) => s.displayName === "Restore dbt's partial parse from the cache");
            const save = az.at(-1);
            fs.rmSync(path.join(repo, "transform/dbt/target"), { recursive: true, force: true });
            const parseStep = { bash: "cd transform/dbt && DBT_PROFILES_DIR=.ci dbt parse --target prod", displayName: "parse" };
            const r = await runAzureJob([restore, parseStep, save], repo, { variables: { "System.PullRequest.PullRequestId": "5" }, secureFiles: {}, env: pythonEnv(), awsEnv: {} });
            assert.strictEqual(r.code, 0, r.output);
            assert.match(r.output, /Restored dbt's partial parse \(dev-pr-5/);
            assert.ok(!/Unable to do partial parsing/.test(r.output), r.output);
        });
    });
});
