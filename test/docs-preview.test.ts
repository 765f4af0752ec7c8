/**
 * Per-PR docs previews (issue 16 §5): under mocks, the bucket's lifecycle rule and the PR role's exact
 * policy; end to end, the rendered PR step publishes docs/pr/<n>/ to moto S3 with real dbt on a real
 * Postgres, and the janitor (fake CI API + moto) removes a closed PR's preview and keeps an open one's.
 */
import assert from "assert";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { BitbucketPullRequests, sweepDocsPreviews } from "../components/janitor";
import { CiIdentity } from "../components/aws";
import { SettingVariable } from "../components/pipelines";
import { find, Recorded, resolve, ROOT, runProgram, stackConfig, toPulumiConfig } from "../scripts/offline";
import { applyRecorded } from "./support/apply";
import { runBitbucketStep } from "./support/ciRun";
import { copyFixture } from "./support/dbtProject";
import { startFakePrServer } from "./support/fakePullRequests";
import { MotoServer, startMoto } from "./support/moto";
import { startPostgres, TestServer } from "./support/postgres";
import { ensurePythonEnv, pythonEnv, VENV_BIN } from "./support/python";

const json = (r: Recorded, key: string) => JSON.parse(r.inputs[key]);
const rules = (resources: Recorded[], stack: string) => find(resources, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", `dbt-${stack}-artifacts-lifecycle`).inputs.rules as any[];
const prStep = (file: string) => parse(file).pipelines["pull-requests"]["**"][0].step;

describe("docs preview: under mocks", function () {
    this.timeout(120_000);

    it("prod (docs site): docs/pr/ expires after aws.docs.previewRetentionDays (default 14), and after the configured value", async () => {
        const { resources } = await runProgram("prod");
        assert.deepStrictEqual(rules(resources, "prod").find((r) => r.id === "expire-docs-previews"), { id: "expire-docs-previews", status: "Enabled", filter: { prefix: "docs/pr/" }, expiration: { days: 14 } });
        const config = stackConfig("prod");
        const awsConfig = JSON.parse(config["dbt-platform:aws"]);
        awsConfig.docs.previewRetentionDays = 3;
        const three = await runProgram("prod", { ...config, "dbt-platform:aws": JSON.stringify(awsConfig) });
        assert.deepStrictEqual(rules(three.resources, "prod").find((r) => r.id === "expire-docs-previews")?.expiration, { days: 3 });
    });

    it("prod: the PR role may put objects under docs/pr/ only; it reads artifacts and its secret as before", async () => {
        const { resources } = await runProgram("prod");
        const bucketArn = find(resources, "aws:s3/bucket:Bucket", "dbt-prod-artifacts-bucket").state.arn;
        const secretArn = resources.find((x) => x.type === "aws:secretsmanager/secret:Secret" && x.inputs.name === "dbt/prod/ci")!.state.arn;
        assert.deepStrictEqual(json(find(resources, "aws:iam/rolePolicy:RolePolicy", "dbt-prod-ci-pull-request-policy"), "policy"), {
            Version: "2012-10-17",
            Statement: [
                { Sid: "ReadArtifacts", Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${bucketArn}/artifacts/*`] },
                { Sid: "ListPrefixes", Effect: "Allow", Action: ["s3:ListBucket"], Resource: [bucketArn], Condition: { StringLike: { "s3:prefix": ["artifacts/*"] } } },
                { Sid: "PublishDocsPreviews", Effect: "Allow", Action: ["s3:PutObject"], Resource: [`${bucketArn}/docs/pr/*`] },
                { Sid: "ReadCiCredentials", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [secretArn] },
            ],
        });
        // The PR step generates docs in the driver (deferring when there is a manifest) and publishes them.
        const bb = (await resolve((await runProgram("prod")).exports.pipelineFiles)).value as Record<string, string>;
        const step = prStep(bb["bitbucket-pipelines.yml"]);
        const script = (step.script as string[]).join("\n");
        assert.match(script, /"docs generate --target ci --defer --state \.state --exclude package:dbt_project_evaluator"/);
        assert.match(script, /aws s3 cp "target\/\$f" s3:\/\/dbt-prod-artifacts-bucket-[0-9a-f]+\/docs\/pr\/"\$PR_NUMBER\/\$f" --cache-control no-cache/);
    });

    it("a stack without the docs site: no preview rule, no preview permission, no preview step", async () => {
        const { resources, exports } = await runProgram("sandbox");
        assert.ok(!rules(resources, "sandbox").some((r) => r.id === "expire-docs-previews"));
        assert.ok(!JSON.stringify(json(find(resources, "aws:iam/rolePolicy:RolePolicy", "dbt-sandbox-ci-pull-request-policy"), "policy")).includes("docs/"));
        const files = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
        assert.ok(!Object.values(files).some((t) => t.includes("docs/pr/") || t.includes("docs generate --target ci")));
    });

    it("CiIdentity refuses a preview prefix that is not strictly under the docs prefix", () => {
        const args = { system: "github" as const, github: { repository: "acme/dbt", mainBranch: "main" }, artifactsBucketArn: "arn:aws:s3:::acme-dbt", credentialSecretArns: {} };
        assert.throws(() => CiIdentity.validate("ci", { ...args, docsPreviewPrefix: "docs/" }), /docsPreviewPrefix = "docs\/": expected a prefix strictly under docsPrefix docs\//);
        assert.throws(() => CiIdentity.validate("ci", { ...args, docsPreviewPrefix: "artifacts/pr/" }), /docsPreviewPrefix = "artifacts\/pr\/"/);
        assert.doesNotThrow(() => CiIdentity.validate("ci", { ...args, docsPreviewPrefix: "docs/pr/" }));
    });

    it("aws.docs.previewRetentionDays is validated by the config module", async () => {
        const config = stackConfig("prod");
        const awsConfig = JSON.parse(config["dbt-platform:aws"]);
        awsConfig.docs.previewRetentionDays = 0;
        await assert.rejects(runProgram("prod", { ...config, "dbt-platform:aws": JSON.stringify(awsConfig) }), /previewRetentionDays/);
    });
});

describe("docs preview: the PR job publishes, the janitor removes closed PRs' previews @integration", function () {
    this.timeout(900_000);
    const BUCKET = "acme-dbt-previews";
    const DATABASE = "analytics_previews";
    let server: TestServer;
    let moto: MotoServer;
    let bitbucket: Record<string, string>;
    let settings: Record<string, string>;
    let variables: SettingVariable[];
    let repository: string;
    const dirs: string[] = [];

    before(async () => {
        ensurePythonEnv();
        [server, moto] = await Promise.all([startPostgres(), startMoto()]);
        await moto.createBucket(BUCKET);
        // The prod stack with its docs site, pointed at the test servers; scheduled runs off.
        const doc = parse(fs.readFileSync(`${ROOT}/Pulumi.prod.yaml`, "utf8")).config;
        doc["dbt-platform:warehouse"].connection = { host: server.host, port: server.port, database: DATABASE, username: server.adminUser, sslmode: "disable" };
        doc["dbt-platform:warehouse"].createDatabase = true;
        doc["dbt-platform:aws"].artifacts.bucketName = BUCKET;
        doc["dbt-platform:features"] = { docsSite: true, scheduledRuns: false, projectEvaluator: false };
        delete doc["dbt-platform:scheduledRuns"];
        repository = doc["dbt-platform:ci"].repository;
        const { resources, exports } = await runProgram("prod", toPulumiConfig(doc));
        await applyRecorded(server, resources);
        settings = (await resolve(exports.profileEnvironment)).value as Record<string, string>;
        variables = ((await resolve(exports.pipelineVariables)).value as Record<string, SettingVariable[]>)["pull-request"];
        bitbucket = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
    });

    after(async () => {
        for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
        await Promise.all([moto?.stop(), server?.stop()]);
    });

    /** Runs the rendered Bitbucket PR step for pull request `pr` on a fresh checkout. */
    async function pullRequest(pr: number) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "docs-preview-repo-"));
        dirs.push(dir);
        copyFixture(dir);
        for (const [rel, text] of Object.entries(bitbucket)) {
            fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
            fs.writeFileSync(path.join(dir, rel), text);
        }
        const vars = Object.fromEntries(variables.map((v) => [v.name, settings[v.name]]));
        const env = pythonEnv({
            ...vars,
            AWS_ENDPOINT_URL: moto.endpoint,
            DBT_LOG_PATH: fs.mkdtempSync(path.join(os.tmpdir(), "docs-preview-logs-")),
            BITBUCKET_CLONE_DIR: dir,
            BITBUCKET_STEP_OIDC_TOKEN: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJlMmUifQ.",
            BITBUCKET_PR_ID: String(pr),
            BITBUCKET_BUILD_NUMBER: String(100 + pr),
            BITBUCKET_PR_DESTINATION_BRANCH: "main",
        });
        const { script, after } = await runBitbucketStep(prStep(bitbucket["bitbucket-pipelines.yml"]), dir, env);
        assert.strictEqual(script.code, 0, script.output.slice(-4000));
        assert.strictEqual(after!.code, 0, after!.output.slice(-3000));
        return { out: script.output, dir };
    }

    it("publishes docs/pr/<n>/ from the PR job's lines; the janitor removes the closed PR's preview and keeps the open one's", async () => {
        const { out, dir } = await pullRequest(21);
        assert.match(out, /dbt-platform: dbt docs generate --target ci/);
        // The link on the stack's docs domain (aws.docs.domain).
        assert.match(out, /Docs preview: https:\/\/dbt-docs\.acme\.example\/pr\/21\/index\.html \(s3:\/\/acme-dbt-previews\/docs\/pr\/21\/\)/);
        const keys = await moto.listKeys(BUCKET, "docs/pr/21/");
        assert.deepStrictEqual(keys, ["docs/pr/21/catalog.json", "docs/pr/21/index.html", "docs/pr/21/manifest.json"]);
        const index = await moto.getObject(BUCKET, "docs/pr/21/index.html");
        assert.match(index!.toString(), /<html/i);
        const catalog = JSON.parse((await moto.getObject(BUCKET, "docs/pr/21/catalog.json"))!.toString());
        assert.ok(Object.keys(catalog.nodes).length > 0, "the catalog documents the PR's relations");
        // With a production manifest to defer to (PR 21's stands in), the preview is generated with deferral, in the same process.
        const put = spawnSync(path.join(VENV_BIN, "aws"), ["s3", "cp", path.join(dir, "target/manifest.json"), `s3://${BUCKET}/artifacts/latest/manifest.json`], { env: pythonEnv(moto.env), encoding: "utf8" });
        assert.strictEqual(put.status, 0, put.stderr);
        const second = await pullRequest(22);
        assert.match(second.out, /Deferring to the production manifest/);
        assert.match(second.out, /dbt-platform: dbt docs generate --target ci --defer --state \.state/);
        assert.deepStrictEqual(await moto.listKeys(BUCKET, "docs/pr/22/"), ["docs/pr/22/catalog.json", "docs/pr/22/index.html", "docs/pr/22/manifest.json"]);

        // PR 21 is merged, PR 22 still open: the janitor, against the fake Bitbucket API and moto.
        const api = await startFakePrServer("bitbucket", repository, { 21: "closed", 22: "open" });
        try {
            const aws = (args: string[]) =>
                new Promise<string>((res, rej) => {
                    const child = spawn(path.join(VENV_BIN, "aws"), args, { env: pythonEnv(moto.env), stdio: ["ignore", "pipe", "pipe"] });
                    let o = "";
                    let e = "";
                    child.stdout.on("data", (b: Buffer) => (o += b.toString()));
                    child.stderr.on("data", (b: Buffer) => (e += b.toString()));
                    child.on("close", (code) => (code === 0 ? res(o) : rej(new Error(`aws ${args.join(" ")}: ${e}`))));
                });
            const prs = new BitbucketPullRequests(repository, { baseUrl: api.baseUrl, token: () => api.token, baseDelayMs: 5 });
            const lines: string[] = [];
            const dry = await sweepDocsPreviews({ bucket: BUCKET, pullRequests: prs, aws, log: (l) => lines.push(l) });
            assert.strictEqual(dry.removed, 0);
            assert.strictEqual((await moto.listKeys(BUCKET, "docs/pr/21/")).length, 3, "a dry run removed something");
            const report = await sweepDocsPreviews({ bucket: BUCKET, pullRequests: prs, aws, execute: true, log: (l) => lines.push(l) });
            assert.deepStrictEqual(report.previews, [{ pr: 21, state: "closed", action: "remove" }, { pr: 22, state: "open", action: "keep" }]);
            assert.deepStrictEqual(await moto.listKeys(BUCKET, "docs/pr/21/"), []);
            assert.strictEqual((await moto.listKeys(BUCKET, "docs/pr/22/")).length, 3);
            assert.ok(lines.includes("janitor: removed docs preview s3://acme-dbt-previews/docs/pr/21/ (PR 21 closed)"), lines.join("\n"));
            console.log(`      docs preview: published docs/pr/21/ (${keys.length} files); janitor removed ${report.removed} of ${report.closed} closed`);
        } finally {
            await api.stop();
        }
    });
});
