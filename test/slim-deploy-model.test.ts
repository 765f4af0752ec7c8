/**
 * Slim deploys and the manifest guards in the model and the three renderers (issue 16 #2, #3):
 * the full-build switches each CI system renders, the config keys that feed them, and the guard
 * script run by the venv's real Python and dbt-core against manifests of another minor version
 * and of a given age.
 */
import assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { parseStackConfig } from "../components/config";
import { DBT_CORE_VERSION, GITHUB_ACTION_PINS, MANIFEST_GUARD, PipelineContext, pipelineModel, renderPipelineFiles } from "../components/pipelines";
import { FULL_BUILD_ON_DISPATCH } from "../components/pipelines/github";
import { stackConfig } from "../scripts/offline";
import { azureSchemaErrors, bitbucketSchemaErrors, githubParserErrors, githubSchemaErrors } from "./support/pipelineSchemas";
import { ensurePythonEnv, pythonEnv } from "./support/python";
import { postgresPipelineWarehouse } from "./support/pipelineWarehouse";

const ctx = (over: Partial<PipelineContext> = {}): PipelineContext => ({
    stack: "dev",
    system: "github",
    repository: "acme/analytics",
    mainBranch: "main",
    dbt: { profile: "acme", version: DBT_CORE_VERSION, pythonVersion: "3.11", manifestMaxAgeHours: 36, fullBuildSchedule: "30 2 * * 1-5" },
    targets: { ci: "ci", deploy: "prod" },
    warehouse: postgresPipelineWarehouse({ ci: "ci", deploy: "prod" }),
    environment: { kind: "development" },
    aws: { region: "eu-west-1", bucket: "b", pullRequestRoleArn: "arn:pr", deployRoleArn: "arn:deploy", azureServiceConnection: "aws" },
    projectEvaluator: false,
    ...over,
});

describe("slim deploys: model, renderers and manifest guards", () => {
    it("the deploy job fetches the manifest as the deploy role, then builds state:modified+ with deferral, or everything", () => {
        const deploy = pipelineModel(ctx()).jobs.find((j) => j.id === "deploy")!;
        assert.deepStrictEqual(deploy.steps.map((s) => s.id), ["install", "schema-ownership", "fetch-manifest", "build", "publish-manifest"]);
        const fetch = deploy.steps.find((s) => s.id === "fetch-manifest")!;
        assert.strictEqual(fetch.aws, true);
        assert.ok(fetch.lines.some((l) => l.includes("as role arn:deploy. Failing")), "the fetch failure does not name the deploy role");
        assert.ok(fetch.lines.some((l) => l.endsWith(" .state/manifest.json 36")), "the guard does not get dbt.manifestMaxAgeHours");
        const build = deploy.steps.find((s) => s.id === "build")!.lines.join("\n");
        // Both builds go through the deadlock retry (test/deadlock-retry.test.ts).
        assert.match(build, /\n {2}dbt_deadlock_retry dbt build --target prod --fail-fast --select state:modified\+ --defer --state \.state\nelse\n {2}dbt_deadlock_retry dbt build --target prod --fail-fast\nfi$/);
        assert.match(build, /case "\$\{FULL_BUILD:-false\}:\$\{FULL_REFRESH:-false\}:\$\{BUILD_REASON:-\}" in\n {2}\[Tt\]rue:\*\|\*:\[Tt\]rue:\*\|\*:Schedule\) /);
        assert.deepStrictEqual(deploy.fullBuild, { schedule: "30 2 * * 1-5" });
        // Without AWS there is no manifest to defer to: always a full build.
        const local = pipelineModel(ctx({ aws: undefined })).jobs.find((j) => j.id === "deploy")!;
        assert.ok(!local.steps.some((s) => s.id === "fetch-manifest"));
        assert.ok(!local.steps.flatMap((s) => s.lines).some((l) => l.includes("state:modified")));
        // A gated release: full build only by hand.
        const release = pipelineModel(ctx({ stack: "prod", environment: { kind: "release", promotesFrom: "staging" } })).jobs.find((j) => j.id === "deploy")!;
        assert.deepStrictEqual(release.fullBuild, {});
    });

    it("GitHub: schedule + workflow_dispatch build everything on a merge-deployed stage, full_build input on a release; files validate", async () => {
        const dev = parse(renderPipelineFiles(ctx(), "").files[".github/workflows/deploy.yml"]);
        assert.deepStrictEqual(dev.on.schedule, [{ cron: "30 2 * * 1-5" }]);
        assert.ok("workflow_dispatch" in dev.on);
        assert.strictEqual(dev.jobs.deploy.env.FULL_BUILD, FULL_BUILD_ON_DISPATCH);
        const prodFiles = renderPipelineFiles(ctx({ stack: "prod", environment: { kind: "release", promotesFrom: "staging" } }), "").files;
        const prod = parse(prodFiles[".github/workflows/deploy.yml"]);
        assert.strictEqual(prod.on.schedule, undefined);
        assert.deepStrictEqual(prod.on.workflow_dispatch.inputs.full_build, { description: "Build the whole project, not only what changed since the last good production manifest", type: "boolean", default: false });
        assert.strictEqual(prod.jobs.deploy.env.FULL_BUILD, "${{ inputs.full_build && 'true' || 'false' }}");
        for (const files of [renderPipelineFiles(ctx(), "").files, prodFiles]) {
            const text = files[".github/workflows/deploy.yml"];
            assert.deepStrictEqual(githubSchemaErrors(text), []);
            assert.deepStrictEqual(await githubParserErrors("deploy.yml", text), []);
        }
    });

    it("GitHub caches: dbt_packages keyed on packages.yml/package-lock.yml, partial_parse.msgpack per PR (deploy: per stack) and dbt version", async () => {
        const files = renderPipelineFiles(ctx({ dbt: { ...ctx().dbt, projectDir: "transform/dbt" } }), "").files;
        const steps = (f: string, job: string) => parse(files[f]).jobs[job].steps as any[];
        const ci = steps(".github/workflows/ci.yml", "slim-ci");
        const packages = ci.find((s) => s.name === "Cache dbt packages");
        assert.strictEqual(packages.uses, `actions/cache@${GITHUB_ACTION_PINS.cache.sha}`);
        assert.deepStrictEqual(packages.with, { path: "transform/dbt/dbt_packages", key: `dbt-packages-${DBT_CORE_VERSION}-\${{ hashFiles('transform/dbt/packages.yml', 'transform/dbt/package-lock.yml') }}` });
        const prefix = `dbt-partial-parse-${DBT_CORE_VERSION}-dev-pr-\${{ github.event.pull_request.number }}-`;
        assert.deepStrictEqual(ci.find((s) => s.name === "Cache dbt partial parsing").with, { path: "transform/dbt/target/partial_parse.msgpack", key: `${prefix}\${{ github.run_id }}`, "restore-keys": prefix });
        // Restored before any dbt step runs.
        assert.ok(ci.findIndex((s) => s.name === "Cache dbt partial parsing") < ci.findIndex((s) => s.run));
        const deploy = steps(".github/workflows/deploy.yml", "deploy");
        assert.strictEqual(deploy.find((s) => s.name === "Cache dbt partial parsing").with["restore-keys"], `dbt-partial-parse-${DBT_CORE_VERSION}-dev-deploy-`);
        for (const f of [".github/workflows/ci.yml", ".github/workflows/deploy.yml"]) {
            assert.deepStrictEqual(githubSchemaErrors(files[f]), []);
            assert.deepStrictEqual(await githubParserErrors(f, files[f]), []);
        }
    });

    it("Bitbucket: a full-build-<stack> custom pipeline (run by hand or by a schedule) next to the deploy; file validates", () => {
        for (const c of [ctx({ system: "bitbucket" }), ctx({ system: "bitbucket", stack: "prod", environment: { kind: "release", promotesFrom: "staging" } })]) {
            const text = renderPipelineFiles(c, "").files["bitbucket-pipelines.yml"];
            assert.deepStrictEqual(bitbucketSchemaErrors(text), []);
            const doc = parse(text);
            const full = doc.pipelines.custom[`full-build-${c.stack}`];
            assert.strictEqual(full.length, 1);
            assert.match(full[0].step.script[0], /\nexport FULL_BUILD=true$/);
            assert.strictEqual(full[0].step["concurrency-group"], `dbt-deploy-${c.stack}`, "a full build could overlap a deploy");
            const deploy = c.environment.kind === "development" ? doc.pipelines.branches.main[0].step : doc.pipelines.custom[`release-${c.stack}`].find((x: any) => x.step).step;
            assert.ok(!/FULL_BUILD=true/.test(deploy.script[0]));
        }
    });

    it("Azure: a schedules entry (always) and a fullBuild parameter; BUILD_REASON reaches the build; file validates", () => {
        const text = renderPipelineFiles(ctx({ system: "azure-devops" }), "").files["azure-pipelines.yml"];
        assert.deepStrictEqual(azureSchemaErrors(text), []);
        const doc = parse(text);
        assert.deepStrictEqual(doc.schedules, [{ cron: "30 2 * * 1-5", displayName: "Full build of dev", branches: { include: ["main"] }, always: true }]);
        assert.deepStrictEqual(doc.parameters.map((p: any) => [p.name, p.default]), [["fullBuild", false]]);
        const steps = doc.stages.find((s: any) => s.stage === "deploy").jobs[0].strategy.runOnce.deploy.steps;
        const build = steps.find((s: any) => String(s.displayName).startsWith("Build dev"));
        assert.deepStrictEqual([build.env.FULL_BUILD, build.env.BUILD_REASON], ["${{ parameters.fullBuild }}", "$(Build.Reason)"]);
    });

    it("config: dbt.manifestMaxAgeHours and dbt.fullBuildSchedule have defaults and are validated", () => {
        const raw = stackConfig("dev");
        const dbt = JSON.parse(raw["dbt-platform:dbt"]);
        const parsed = parseStackConfig("dev", raw);
        assert.deepStrictEqual([parsed.dbt.manifestMaxAgeHours, parsed.dbt.fullBuildSchedule], [240, "0 4 * * 0"]);
        const withDbt = (extra: object) => ({ ...raw, "dbt-platform:dbt": JSON.stringify({ ...dbt, ...extra }) });
        assert.deepStrictEqual(parseStackConfig("dev", withDbt({ manifestMaxAgeHours: 48, fullBuildSchedule: "15 1 * * *" })).dbt.manifestMaxAgeHours, 48);
        assert.throws(() => parseStackConfig("dev", withDbt({ manifestMaxAgeHours: 0 })), /dbt\.manifestMaxAgeHours/);
        assert.throws(() => parseStackConfig("dev", withDbt({ fullBuildSchedule: "@daily; rm -rf /" })), /dbt\.fullBuildSchedule.*five-field cron/);
    });

    describe("the manifest guard (real Python, the venv's dbt-core)", () => {
        let dir: string;
        before(() => {
            ensurePythonEnv();
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "manifest-guard-"));
        });
        after(() => fs.rmSync(dir, { recursive: true, force: true }));

        function guard(meta: Record<string, unknown>, maxHours: number): { code: number; output: string; kept: boolean } {
            const file = path.join(dir, "manifest.json");
            fs.writeFileSync(file, JSON.stringify({ metadata: meta, nodes: {} }));
            const r = spawnSync("python", ["-c", MANIFEST_GUARD, file, String(maxHours)], { env: pythonEnv(), encoding: "utf8" });
            return { code: r.status ?? 1, output: `${r.stdout}${r.stderr}`, kept: fs.existsSync(file) };
        }
        const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString().replace(/\.\d+Z$/, ".123456Z");

        it("keeps a fresh manifest of the same minor version", () => {
            const r = guard({ dbt_version: "1.11.2", generated_at: hoursAgo(2) }, 240);
            assert.deepStrictEqual([r.code, r.kept], [0, true], r.output);
            assert.match(r.output, /^Production manifest: dbt 1\.11\.2, 2\.0 hours old$/m);
        });

        it("refuses a manifest from another dbt minor version, naming both versions", () => {
            const r = guard({ dbt_version: "1.10.7", generated_at: hoursAgo(1) }, 240);
            assert.deepStrictEqual([r.code, r.kept], [0, false], r.output);
            assert.match(r.output, new RegExp(`Refusing to defer to the production manifest: it was written by dbt 1\\.10\\.7 and this job runs dbt ${DBT_CORE_VERSION.replace(/\./g, "\\.")} \\(another minor version`));
            assert.match(r.output, /This run builds everything\./);
        });

        it("refuses a manifest older than dbt.manifestMaxAgeHours, naming its age and the key", () => {
            const r = guard({ dbt_version: DBT_CORE_VERSION, generated_at: hoursAgo(50) }, 36);
            assert.deepStrictEqual([r.code, r.kept], [0, false], r.output);
            assert.match(r.output, /Refusing to defer to the production manifest: it is 50\.0 hours old \(generated .*\), older than dbt\.manifestMaxAgeHours = 36\. This run builds everything\./);
        });

        it("fails the step on an unreadable manifest instead of guessing", () => {
            const file = path.join(dir, "manifest.json");
            fs.writeFileSync(file, "{not json");
            const r = spawnSync("python", ["-c", MANIFEST_GUARD, file, "240"], { env: pythonEnv(), encoding: "utf8" });
            assert.notStrictEqual(r.status, 0);
        });
    });
});
