/**
 * @integration The rendered pipelines, executed. The program (under mocks) declares the warehouse
 * access model, which is applied to a real Postgres; moto_server is the S3 bucket. Then the very
 * shell lines of the rendered bitbucket-pipelines.yml and GitHub workflows run with the
 * environment each CI system would provide (its context variables, the settings variables the
 * model declares, AWS reached through the role the file names), against the 37-model fixture.
 */
import assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { renderPipelineFiles, SettingVariable } from "../components/pipelines";
import { parseStackConfig } from "../components/config";
import { pipelineContext } from "../components/platform";
import { applyRecorded } from "./support/apply";
import { attack } from "./support/attacks";
import { runBitbucketStep, runGithubJob } from "./support/ciRun";
import { allModels, changeOneModel, copyFixture, descendants, modelsBuilt } from "./support/dbtProject";
import { MotoServer, startMoto } from "./support/moto";
import { startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv, pythonEnv } from "./support/python";
import { resolve, ROOT, runProgram, toPulumiConfig } from "../scripts/offline";

const BUCKET = "acme-dbt-e2e";
const DATABASE = "analytics_e2e";
const CHANGED = "int_customer_sessions";

/** A dbt repository checkout: the fixture plus the rendered files. */
function checkout(files: Record<string, string>, change: boolean): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-e2e-repo-"));
    copyFixture(dir);
    for (const [rel, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), text);
    }
    if (change) changeOneModel(dir, CHANGED);
    return dir;
}

describe("pipelines end to end with real dbt @integration", function () {
    this.timeout(900_000);
    let server: TestServer;
    let moto: MotoServer;
    let settings: Record<string, string>;
    let bitbucket: Record<string, string>;
    let github: Record<string, string>;
    let jobVariables: Record<string, SettingVariable[]>;
    const dirs: string[] = [];
    const ciFiles = (files: Record<string, string>, change: boolean) => {
        const d = checkout(files, change);
        dirs.push(d);
        return d;
    };

    /** What a CI system puts in a job's environment: only the variables the model declares for it. */
    function jobEnv(job: "pull-request" | "deploy", extra: Record<string, string>): NodeJS.ProcessEnv {
        const vars: Record<string, string> = {};
        for (const v of jobVariables[job]) {
            assert.ok(settings[v.name] !== undefined, `no value for ${v.name}`);
            vars[v.name] = settings[v.name];
        }
        // No static AWS keys: the file's own lines must assume the role (moto's STS accepts the token).
        return pythonEnv({ ...vars, AWS_ENDPOINT_URL: moto.endpoint, DBT_LOG_PATH: fs.mkdtempSync(path.join(os.tmpdir(), "dbt-e2e-logs-")), ...extra });
    }

    /** Runs one Bitbucket step as Bitbucket does: script items in one shell, after-script in another. */
    function runBitbucket(step: any, dir: string, env: NodeJS.ProcessEnv, between?: () => void) {
        const base = { ...env, BITBUCKET_CLONE_DIR: dir, BITBUCKET_STEP_OIDC_TOKEN: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJlMmUifQ." };
        return runBitbucketStep(step, dir, base, { beforeCleanup: between });
    }

    /** Runs a GitHub job's `run` steps, each in its own shell; configure-aws-credentials assumes the role it names. */
    function runGithub(job: any, dir: string, context: Record<string, string>, between?: () => void) {
        const env = pythonEnv({ AWS_ENDPOINT_URL: moto.endpoint, DBT_LOG_PATH: fs.mkdtempSync(path.join(os.tmpdir(), "dbt-e2e-logs-")) });
        const onUses = (step: any, jobEnv: NodeJS.ProcessEnv) => {
            if (!String(step.uses).startsWith("aws-actions/configure-aws-credentials")) return;
            const token = path.join(dir, ".gh-oidc-token");
            fs.writeFileSync(token, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJnaCJ9.");
            Object.assign(jobEnv, { AWS_ROLE_ARN: step.with["role-to-assume"], AWS_WEB_IDENTITY_TOKEN_FILE: token, AWS_DEFAULT_REGION: step.with["aws-region"] });
        };
        return runGithubJob(job, dir, { settings, context, env, onUses }, { beforeCleanup: between });
    }

    /** The PR step or the release step of the rendered bitbucket-pipelines.yml. */
    function bitbucketStep(which: "pull-request" | "release"): any {
        const pipelines = parse(bitbucket["bitbucket-pipelines.yml"]).pipelines;
        return which === "pull-request" ? pipelines["pull-requests"]["**"][0].step : pipelines.custom["release-prod"].find((x: any) => x.step).step;
    }

    async function schemaExists(schema: string): Promise<boolean> {
        const rows = await server.admin(DATABASE, "select 1 from information_schema.schemata where schema_name = $1", [schema]);
        return rows.length > 0;
    }

    async function relationsIn(schema: string): Promise<string[]> {
        const rows = await server.admin<{ table_name: string }>(DATABASE, "select table_name from information_schema.tables where table_schema = $1 order by 1", [schema]);
        return rows.map((r) => r.table_name);
    }

    before(async function () {
        ensurePythonEnv();
        [server, moto] = await Promise.all([startPostgres(), startMoto()]);
        await moto.createBucket(BUCKET);

        // The prod stack, pointed at the test servers; docs are off (no CloudFront here) and the
        // fixture has no dbt_project_evaluator package.
        const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.prod.yaml`, "utf8")).config;
        const wh = doc["dbt-platform:warehouse"];
        wh.connection = { host: server.host, port: server.port, database: DATABASE, username: server.adminUser, sslmode: "disable" };
        wh.createDatabase = true;
        doc["dbt-platform:aws"].artifacts.bucketName = BUCKET;
        doc["dbt-platform:features"] = { docsSite: false, scheduledRuns: false, projectEvaluator: false };
        // Scheduled runs off: their section goes too (config refuses a section for a feature that is off).
        delete doc["dbt-platform:scheduledRuns"];
        const config = toPulumiConfig(doc);
        const { resources, exports } = await runProgram("prod", config);
        await applyRecorded(server, resources);

        settings = (await resolve(exports.profileEnvironment)).value as Record<string, string>;
        jobVariables = (await resolve(exports.pipelineVariables)).value as Record<string, SettingVariable[]>;
        bitbucket = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
        // GitHub's files come from the same platform function with the same outputs (one warehouse, one set of passwords).
        const ghConfig = parseStackConfig("prod", { ...config, "dbt-platform:ci": JSON.stringify({ system: "github", repository: "acme-data/analytics-dbt" }) });
        const arns = exports.ciRoleArns as unknown as Record<"pullRequest" | "deploy", import("@pulumi/pulumi").Output<string>>;
        const roles = { pullRequestRoleArn: (await resolve(arns.pullRequest)).value, deployRoleArn: (await resolve(arns.deploy)).value };
        const profiles = (await resolve(exports.profilesYaml)).value as string;
        github = renderPipelineFiles(pipelineContext(ghConfig, undefined, { bucket: BUCKET, ...roles }), profiles).files;
    });

    after(async () => {
        for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
        await Promise.all([moto?.stop(), server?.stop()]);
    });

    it("Bitbucket PR before any deploy: no manifest, so a full build in the PR schema, then cleanup", async () => {
        const step = bitbucketStep("pull-request");
        const dir = ciFiles(bitbucket, false);
        let built: string[] = [];
        const { script, after } = await runBitbucket(step, dir, jobEnv("pull-request", { BITBUCKET_PR_ID: "1", BITBUCKET_BUILD_NUMBER: "30", BITBUCKET_PR_DESTINATION_BRANCH: "main" }), () => {
            built = modelsBuilt(path.join(dir, "target/run_results.json"));
        });
        const left = await relationsIn("dbt_pr_1");
        assert.strictEqual(script.code, 0, script.output.slice(-3000));
        assert.match(script.output, /No production manifest yet/);
        assert.strictEqual(built.length, allModels(path.join(dir, "target/manifest.json")).length);
        assert.strictEqual(after!.code, 0, after!.output.slice(-3000));
        assert.deepStrictEqual(left, [], "cleanup left relations behind");
        assert.strictEqual(await schemaExists("dbt_pr_1"), false, "cleanup did not drop dbt_pr_1");
    });

    it("Bitbucket release refuses a commit that is not on main", async () => {
        const step = bitbucketStep("release");
        const dir = ciFiles(bitbucket, false);
        const { script } = await runBitbucket(step, dir, jobEnv("deploy", { BITBUCKET_BRANCH: "feature/x", BITBUCKET_BUILD_NUMBER: "40" }));
        assert.notStrictEqual(script.code, 0);
        assert.match(script.output, /Releases to prod are only allowed from main \(this run: feature\/x\)/);
        assert.ok(!fs.existsSync(path.join(dir, "target")), "dbt ran despite the guard");
    });

    it("Bitbucket release into a schema squatted by dev_ci fails before dbt builds anything, naming the schema and its owner", async () => {
        const tried = attack("production build into a squatted schema");
        const step = bitbucketStep("release");
        const dir = ciFiles(bitbucket, false);
        // dev_ci cannot create schemas any more: the admin stands in for a squatter who got one (analytics, owned by dev_ci).
        await server.admin(DATABASE, "alter schema analytics owner to dev_ci");
        try {
            const { script } = await runBitbucket(step, dir, jobEnv("deploy", { BITBUCKET_BRANCH: "main", BITBUCKET_BUILD_NUMBER: "39" }));
            assert.notStrictEqual(script.code, 0, script.output.slice(-3000));
            assert.match(script.output, /refusing to build: target schema\(s\) not owned by the production role: analytics \(owned by dev_ci\)/);
            assert.ok(!fs.existsSync(path.join(dir, "target/run_results.json")) || !/"unique_id": "model\./.test(fs.readFileSync(path.join(dir, "target/run_results.json"), "utf8")), "dbt built despite the check");
            assert.deepStrictEqual(await relationsIn("analytics"), [], "production wrote into the squatted schema");
            assert.strictEqual(await moto.getObject(BUCKET, "artifacts/latest/manifest.json"), undefined, "a manifest was published");
        } finally {
            await server.admin(DATABASE, "alter schema analytics owner to role_prod");
        }
        tried.blocked();
    });

    it("Bitbucket release from main: production built by the deploy bot, manifest published", async () => {
        const step = bitbucketStep("release");
        const dir = ciFiles(bitbucket, false);
        const { script } = await runBitbucket(step, dir, jobEnv("deploy", { BITBUCKET_BRANCH: "main", BITBUCKET_BUILD_NUMBER: "41" }));
        assert.strictEqual(script.code, 0, script.output.slice(-3000));
        // The same check passes on a clean warehouse (production's schema belongs to the prod role).
        assert.match(script.output, /dbt-platform: 1 target schema\(s\) absent or owned by the production role: analytics/);
        const models = allModels(path.join(dir, "target/manifest.json"));
        assert.strictEqual(modelsBuilt(path.join(dir, "target/run_results.json")).length, models.length);
        // Role masking: whatever bot builds production, the objects belong to the prod group role.
        const owners = await server.admin<{ owner: string }>(DATABASE, "select distinct pg_get_userbyid(c.relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'analytics' and c.relkind in ('r','v')");
        assert.deepStrictEqual(owners.map((o) => o.owner), ["role_prod"]);
        const latest = await moto.getObject(BUCKET, "artifacts/latest/manifest.json");
        assert.ok(latest, "latest manifest not in the bucket");
        assert.deepStrictEqual(JSON.parse(latest.toString()).nodes, JSON.parse(fs.readFileSync(path.join(dir, "target/manifest.json"), "utf8")).nodes);
        assert.deepStrictEqual(await moto.listKeys(BUCKET, "artifacts/history/41/"), ["artifacts/history/41/manifest.json", "artifacts/history/41/run_results.json"]);
    });

    it("Bitbucket PR changing one model: slim CI builds exactly it and its descendants, deferring the rest", async () => {
        const step = bitbucketStep("pull-request");
        const dir = ciFiles(bitbucket, true);
        let built: string[] = [];
        const { script, after } = await runBitbucket(step, dir, jobEnv("pull-request", { BITBUCKET_PR_ID: "7", BITBUCKET_BUILD_NUMBER: "42", BITBUCKET_PR_DESTINATION_BRANCH: "main" }), () => {
            built = modelsBuilt(path.join(dir, "target/run_results.json"));
        });
        assert.strictEqual(script.code, 0, script.output.slice(-3000));
        const manifest = path.join(dir, "target/manifest.json");
        const minimal = descendants(manifest, CHANGED);
        const total = allModels(manifest).length;
        console.log(`      slim ci: built ${built.length} of ${total} models (minimal ${minimal.length})`);
        assert.deepStrictEqual(built, minimal);
        assert.ok(minimal.length < total / 2);
        // The build's one dbt process dropped exactly this PR's schema last; the after-script had nothing left to do.
        assert.strictEqual(after!.code, 0, after!.output.slice(-3000));
        assert.match(after!.output, /The build step already dropped the pull request's schemas/);
        assert.strictEqual(await schemaExists("dbt_pr_7"), false);
        assert.ok((await relationsIn("analytics")).length >= total, "production was touched");
    });

    it("GitHub deploy.yml and ci.yml: the same release and slim CI through the workflow files", async () => {
        const deploy = parse(github[".github/workflows/deploy.yml"]).jobs.deploy;
        const ghContext = { "github.run_id": "9001", "github.run_attempt": "1", "github.ref_name": "main", "inputs.full_refresh && 'true' || 'false'": "false", "inputs.full_refresh_select": "", "inputs.full_build && 'true' || 'false'": "false" };
        const deployDir = ciFiles(github, false);
        const d = await runGithub(deploy, deployDir, ghContext);
        assert.strictEqual(d.code, 0, d.output.slice(-3000));
        assert.deepStrictEqual(await moto.listKeys(BUCKET, "artifacts/history/9001-1/"), ["artifacts/history/9001-1/manifest.json", "artifacts/history/9001-1/run_results.json"]);

        const ci = parse(github[".github/workflows/ci.yml"]).jobs["slim-ci"];
        const dir = ciFiles(github, true);
        let built: string[] = [];
        const r = await runGithub(ci, dir, { ...ghContext, "github.event.pull_request.number": "8", "github.base_ref": "main", "github.event.pull_request.head.repo.full_name != github.repository": "false", "github.event.pull_request.head.repo.full_name == github.repository": "true" }, () => {
            built = modelsBuilt(path.join(dir, "target/run_results.json"));
        });
        const relations = await relationsIn("dbt_pr_8");
        assert.strictEqual(r.code, 0, r.output.slice(-3000));
        const manifest = path.join(dir, "target/manifest.json");
        const minimal = descendants(manifest, CHANGED);
        console.log(`      slim ci (github): built ${built.length} of ${allModels(manifest).length} models (minimal ${minimal.length})`);
        assert.deepStrictEqual(built, minimal);
        assert.deepStrictEqual(relations, [], "the cleanup step did not run or did not drop the PR schema");
        assert.strictEqual(await schemaExists("dbt_pr_8"), false);
    });
});
