/**
 * The docs preview's URL on the pull request (issue 16 §5): on GitHub one comment, found by its marker
 * and updated in place, with `pull-requests: write` only when the docs site is on; on Bitbucket and Azure
 * DevOps the URL is in the job log. On GitHub the preview is also removed when the pull request closes
 * (`pull_request: closed`), with exactly list + delete under docs/pr/ added to the PR role. Under mocks, the
 * rendered files and the PR role's policy; against the fake GitHub comments API (test/support/fakePrComments.ts),
 * the rendered comment step's shell lines run as the runner runs them, twice; against moto, the removal job's.
 */
import assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { CiIdentity } from "../components/aws";
import { DOCS_PREVIEW_COMMENT_FILE, docsPreviewCommentMarker } from "../components/pipelines";
import { withCiSystem } from "../scripts/render";
import { find, Recorded, resolve, runProgram, stackConfig } from "../scripts/offline";
import { runGithubJob } from "./support/ciRun";
import { FakeCommentServer, startFakeCommentServer } from "./support/fakePrComments";
import { MotoServer, startMoto } from "./support/moto";
import { githubParserErrors, githubSchemaErrors } from "./support/pipelineSchemas";
import { ensurePythonEnv, pythonEnv } from "./support/python";

const COMMENT_STEP = "Post or update the docs preview comment";
const CI_YML = ".github/workflows/ci.yml";

/** The stack's rendered files and its docs site URL (with `features` overridden when given). */
async function rendered(stack: string, system?: "github" | "bitbucket" | "azure-devops", features?: Record<string, boolean>) {
    let config = stackConfig(stack);
    if (system) config = withCiSystem(config, system).config;
    if (features) config = { ...config, "dbt-platform:features": JSON.stringify({ ...JSON.parse(config["dbt-platform:features"] ?? "{}"), ...features }) };
    const { exports, resources } = await runProgram(stack, config);
    return {
        resources: resources as Recorded[],
        files: (await resolve(exports.pipelineFiles)).value as Record<string, string>,
        docsUrl: exports.docsUrl ? ((await resolve(exports.docsUrl)).value as string) : undefined,
        settings: (await resolve(exports.profileEnvironment)).value as Record<string, string>,
        repository: JSON.parse(config["dbt-platform:ci"]).repository as string,
    };
}

describe("docs preview comment: rendered files under mocks", function () {
    this.timeout(120_000);

    it("GitHub with the docs site: the comment step right after the preview is published, its token in its env only, pull-requests: write on ci.yml only", async () => {
        const { files } = await rendered("snowflake");
        for (const f of [CI_YML, ".github/workflows/deploy.yml"]) {
            assert.deepStrictEqual(githubSchemaErrors(files[f]), [], `${f} fails its schema`);
            assert.deepStrictEqual(await githubParserErrors(f, files[f]), [], `${f} fails GitHub's parser`);
        }
        const ci = parse(files[CI_YML]);
        assert.deepStrictEqual(ci.permissions, { contents: "read", "id-token": "write", "pull-requests": "write" });
        assert.deepStrictEqual(parse(files[".github/workflows/deploy.yml"]).permissions, { contents: "read", "id-token": "write" });
        const steps: any[] = ci.jobs["slim-ci"].steps;
        const names = steps.map((s) => s.name);
        const at = names.indexOf(COMMENT_STEP);
        assert.strictEqual(names[at - 1], "Publish the docs preview (docs/pr/<n>/)", names.join(" | "));
        const step = steps[at];
        assert.deepStrictEqual(step.env, { GITHUB_TOKEN: "${{ github.token }}" });
        assert.strictEqual(step.if, undefined, "only after the preview is published");
        assert.strictEqual(step["continue-on-error"], undefined, "the step itself turns a comment failure into a warning");
        assert.ok(step.run.includes(JSON.stringify(docsPreviewCommentMarker("snowflake"))), "the script looks for this stack's marker");
        // No other step is handed the token, and checkout does not leave it in .git/config for the dbt steps.
        assert.deepStrictEqual(steps.filter((s) => JSON.stringify(s).includes("github.token")).map((s) => s.name), [COMMENT_STEP]);
        assert.deepStrictEqual(steps.find((s) => s.name === "Checkout").with, { "persist-credentials": false });
    });

    it("GitHub with the docs site: ci.yml also runs on closed, where only the removal job runs, with id-token only and no checkout", async () => {
        const { files } = await rendered("snowflake");
        const ci = parse(files[CI_YML]);
        assert.deepStrictEqual(ci.on, { pull_request: { branches: ["main"], types: ["opened", "synchronize", "reopened", "closed"] } });
        assert.deepStrictEqual(Object.keys(ci.jobs), ["slim-ci", "docs-preview-cleanup"]);
        assert.strictEqual(ci.jobs["slim-ci"].if, "github.event.action != 'closed'");
        const removal = ci.jobs["docs-preview-cleanup"];
        assert.strictEqual(removal.if, "github.event.action == 'closed' && github.event.pull_request.head.repo.full_name == github.repository");
        assert.deepStrictEqual(removal.permissions, { "id-token": "write" });
        assert.deepStrictEqual(removal.env, { PR_NUMBER: "${{ github.event.pull_request.number }}" });
        assert.deepStrictEqual(removal.steps.map((s: any) => s.uses?.split("@")[0] ?? s.name), ["actions/setup-python", "aws-actions/configure-aws-credentials", "Remove the pull request's docs preview (docs/pr/<n>/)"]);
        assert.strictEqual(removal.steps[1].with["role-to-assume"], ci.jobs["slim-ci"].steps.find((s: any) => s.name === "Configure AWS credentials (OIDC)").with["role-to-assume"], "the PR role");
        assert.match(removal.steps[2].run, /\naws s3 rm s3:\/\/dbt-snowflake-artifacts-bucket-[0-9a-f]+\/docs\/pr\/"\$PR_NUMBER\/" --recursive --only-show-errors\n/);
        // The same per-PR group as slim CI: the close cancels a run still building the preview before removing it.
        assert.strictEqual(ci.concurrency.group, "dbt-ci-snowflake-pr-${{ github.event.pull_request.number }}");
    });

    it("GitHub with the docs site: the PR role may also list docs/pr/ and delete under it, nothing more (exact policy); Bitbucket's stays put-only", async () => {
        const { resources } = await rendered("snowflake");
        const bucketArn = find(resources, "aws:s3/bucket:Bucket", "dbt-snowflake-artifacts-bucket").state.arn;
        const secretArn = resources.find((x) => x.type === "aws:secretsmanager/secret:Secret" && x.inputs.name === "dbt/snowflake/ci")!.state.arn;
        assert.deepStrictEqual(JSON.parse(find(resources, "aws:iam/rolePolicy:RolePolicy", "dbt-snowflake-ci-pull-request-policy").inputs.policy), {
            Version: "2012-10-17",
            Statement: [
                { Sid: "ReadArtifacts", Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${bucketArn}/artifacts/*`] },
                { Sid: "ListPrefixes", Effect: "Allow", Action: ["s3:ListBucket"], Resource: [bucketArn], Condition: { StringLike: { "s3:prefix": ["artifacts/*", "docs/pr/*"] } } },
                { Sid: "PublishDocsPreviews", Effect: "Allow", Action: ["s3:PutObject"], Resource: [`${bucketArn}/docs/pr/*`] },
                { Sid: "RemoveDocsPreviews", Effect: "Allow", Action: ["s3:DeleteObject"], Resource: [`${bucketArn}/docs/pr/*`] },
                { Sid: "ReadCiCredentials", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [secretArn] },
            ],
        });
        // The same stack on Bitbucket (no close trigger there; the janitor removes previews): list artifacts/ only, put only.
        const bb = await rendered("snowflake", "bitbucket");
        const policy = JSON.parse(find(bb.resources, "aws:iam/rolePolicy:RolePolicy", "dbt-snowflake-ci-pull-request-policy").inputs.policy);
        assert.deepStrictEqual(policy.Statement.find((x: any) => x.Sid === "ListPrefixes").Condition, { StringLike: { "s3:prefix": ["artifacts/*"] } });
        assert.deepStrictEqual(policy.Statement.map((x: any) => x.Sid), ["ReadArtifacts", "ListPrefixes", "PublishDocsPreviews", "ReadCiCredentials"]);
        assert.ok(!Object.values(bb.files).some((t) => t.includes("aws s3 rm")));
        // Removal without previews is refused, naming the field.
        const args = { system: "github" as const, github: { repository: "acme/dbt", mainBranch: "main" }, artifactsBucketArn: "arn:aws:s3:::acme-dbt", credentialSecretArns: {} };
        assert.throws(() => CiIdentity.validate("ci", { ...args, docsPreviewCleanup: true }), /docsPreviewCleanup = true: expected docsPreviewPrefix as well/);
        assert.doesNotThrow(() => CiIdentity.validate("ci", { ...args, docsPreviewPrefix: "docs/pr/", docsPreviewCleanup: true }));
    });

    it("GitHub without the docs site: no comment step, no pull-requests permission, no close trigger, no delete", async () => {
        const { files, resources } = await rendered("snowflake", undefined, { docsSite: false });
        const ci = parse(files[CI_YML]);
        assert.deepStrictEqual(ci.on, { pull_request: { branches: ["main"] } });
        assert.deepStrictEqual(Object.keys(ci.jobs), ["slim-ci"]);
        assert.strictEqual(ci.jobs["slim-ci"].if, undefined);
        assert.ok(!find(resources, "aws:iam/rolePolicy:RolePolicy", "dbt-snowflake-ci-pull-request-policy").inputs.policy.includes("docs/"));
        assert.deepStrictEqual(ci.permissions, { contents: "read", "id-token": "write" });
        const steps: any[] = ci.jobs["slim-ci"].steps;
        assert.ok(!steps.some((s) => s.name === COMMENT_STEP || s.name.startsWith("Publish the docs preview")));
        assert.ok(!files[CI_YML].includes("github.token"));
        assert.strictEqual(steps.find((s) => s.name === "Checkout").with, undefined);
        assert.deepStrictEqual(githubSchemaErrors(files[CI_YML]), []);
        assert.deepStrictEqual(await githubParserErrors(CI_YML, files[CI_YML]), []);
    });

    it("Bitbucket and Azure DevOps with the docs site: the URL is printed in the job, no comment is posted", async () => {
        for (const system of ["bitbucket", "azure-devops"] as const) {
            const { files, docsUrl } = await rendered("prod", system);
            const all = Object.values(files).join("\n");
            assert.ok(docsUrl);
            assert.ok(all.includes(`echo "Docs preview: "${docsUrl}/pr/"$PR_NUMBER/index.html"`), `${system}: the URL is printed`);
            assert.ok(!all.includes("dbt-platform:docs-preview:"), `${system}: no comment`);
        }
    });
});

describe("docs preview comment: the rendered GitHub step against the fake comments API @integration", function () {
    this.timeout(300_000);
    const PR = 42;
    const dirs: string[] = [];
    const servers: FakeCommentServer[] = [];
    let r: Awaited<ReturnType<typeof rendered>>;

    before(async () => {
        r = await rendered("snowflake");
    });

    after(async () => {
        for (const s of servers) await s.stop();
        for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    });

    async function server(opts: { foreignPages?: string } = {}): Promise<FakeCommentServer> {
        // 150 people's comments: the job's own is on the second page of 100.
        const s = await startFakeCommentServer("github", { repository: r.repository, pr: PR, peopleComments: 150, ...opts });
        servers.push(s);
        return s;
    }

    /** Runs the rendered PR job's comment step (its `uses` steps emulated) as GitHub would, in a checkout whose target/ holds the published docs. */
    async function commentRun(api: FakeCommentServer, runId: string, token = api.token) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "docs-preview-comment-"));
        dirs.push(dir);
        fs.mkdirSync(path.join(dir, "target"));
        const job = parse(r.files[CI_YML]).jobs["slim-ci"];
        const only = { ...job, steps: job.steps.filter((s: any) => s.uses || s.name === COMMENT_STEP) };
        assert.strictEqual(only.steps.filter((s: any) => s.run).length, 1);
        const result = await runGithubJob(only, dir, {
            settings: {},
            context: {
                "github.event.pull_request.number": String(PR),
                "github.base_ref": "main",
                "github.event.pull_request.head.repo.full_name != github.repository": "false",
                "github.event.pull_request.head.repo.full_name == github.repository": "true",
                "github.run_id": runId,
                "github.run_attempt": "1",
                "github.token": token,
            },
            // The runner's own variables.
            env: { PATH: process.env.PATH, HOME: os.tmpdir(), GITHUB_API_URL: api.apiUrl, GITHUB_REPOSITORY: r.repository, GITHUB_SERVER_URL: "https://github.com", GITHUB_RUN_ID: runId },
            // aws-secretsmanager-get-secrets exports the target's variables (the secret's JSON keys).
            onUses: (step, env) => {
                if (String(step.uses).startsWith("aws-actions/aws-secretsmanager-get-secrets@")) Object.assign(env, r.settings);
            },
            nonBlocking: true,
        });
        return { ...result, body: fs.readFileSync(path.join(dir, DOCS_PREVIEW_COMMENT_FILE), "utf8") };
    }

    it("posts one comment carrying the preview URL on the first run and updates it in place on the next", async () => {
        const api = await server();
        const url = `${r.docsUrl}/pr/${PR}/index.html`;
        const first = await commentRun(api, "7001");
        assert.strictEqual(first.code, 0, first.output);
        assert.doesNotMatch(first.output, /::warning/);
        const mine = api.comments.filter((c) => c.bot);
        assert.strictEqual(mine.length, 1, api.requests.join("\n"));
        assert.strictEqual(mine[0].body, first.body);
        assert.ok(mine[0].body.startsWith(`${docsPreviewCommentMarker("snowflake")}\n**dbt docs preview** (stack snowflake): ${url}\n`), mine[0].body);
        assert.match(mine[0].body, /\[this run\]\(https:\/\/github\.com\/acme-data\/analytics-dbt\/actions\/runs\/7001\)/);
        assert.match(first.output, new RegExp(`Docs preview comment on pull request #${PR} is up to date: ${url.replace(/[.]/g, "\\.")}`));

        const before = api.requests.length;
        const second = await commentRun(api, "7002");
        assert.strictEqual(second.code, 0, second.output);
        const now = api.comments.filter((c) => c.bot);
        assert.deepStrictEqual(now.map((c) => c.id), [mine[0].id], "still exactly one comment, the same one");
        assert.match(now[0].body, /actions\/runs\/7002\)/, "updated in place with the new run");
        const calls = api.requests.slice(before);
        assert.deepStrictEqual(calls.map((c) => c.split(" ")[0]), ["GET", "GET", "PATCH"], calls.join("\n"));
        assert.ok(calls.every((c) => /→ 200$/.test(c)), calls.join("\n"));
        assert.strictEqual(api.comments.filter((c) => !c.bot).length, 150, "people's comments untouched");
        console.log(`docs preview comment (github): ${now.length} comment after 2 runs, updated in place`);
    });

    it("a comment that cannot be posted is a warning, never a failed job (token without the permission, a page link to another origin)", async () => {
        const refused = await server();
        const bad = await commentRun(refused, "7003", "read-only-token");
        assert.strictEqual(bad.code, 0, bad.output);
        assert.match(bad.output, /listing PR comments: HTTP 401/);
        assert.match(bad.output, /::warning title=Docs preview comment::Could not post or update the pull request comment .*The preview is published: https:\/\/\S+\/pr\/42\/index\.html/);
        assert.ok(!refused.comments.some((c) => c.bot));

        const elsewhere = await server();
        const foreign = await server({ foreignPages: elsewhere.apiUrl });
        const out = await commentRun(foreign, "7004");
        assert.strictEqual(out.code, 0, out.output);
        assert.match(out.output, /refusing to follow a page link to another origin/);
        assert.match(out.output, /::warning title=Docs preview comment::/);
        assert.deepStrictEqual(elsewhere.requests, [], "nothing (no token) reached the other origin");
        assert.ok(!foreign.comments.some((c) => c.bot));
    });
});

describe("docs preview removal at close: the rendered GitHub job against moto S3 @integration", function () {
    this.timeout(300_000);
    let moto: MotoServer;
    const dirs: string[] = [];

    before(async () => {
        ensurePythonEnv();
        moto = await startMoto();
    });

    after(async () => {
        for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
        await moto?.stop();
    });

    it("removes exactly the closed pull request's docs/pr/<n>/ and leaves other previews and the production docs", async () => {
        const r = await rendered("snowflake");
        const job = parse(r.files[CI_YML]).jobs["docs-preview-cleanup"];
        const bucket = /s3:\/\/([a-z0-9.-]+)\/docs\/pr\//.exec(job.steps[2].run)![1];
        await moto.createBucket(bucket);
        const env = pythonEnv(moto.env);
        const put = async (key: string) => {
            const r = await runGithubJob({ steps: [{ name: "put", run: `printf x | aws s3 cp - s3://${bucket}/${key} --only-show-errors` }] }, os.tmpdir(), { settings: {}, context: {}, env });
            assert.strictEqual(r.code, 0, r.output);
        };
        for (const pr of [42, 43]) for (const f of ["index.html", "manifest.json", "catalog.json"]) await put(`docs/pr/${pr}/${f}`);
        await put("docs/index.html");
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "docs-preview-removal-"));
        dirs.push(dir);
        let assumed = "";
        const result = await runGithubJob(job, dir, {
            settings: {},
            context: { "github.event.pull_request.number": "42", "github.event.action == 'closed' && github.event.pull_request.head.repo.full_name == github.repository": "true" },
            env,
            // configure-aws-credentials: the PR role's session (moto's credentials stand in for it).
            onUses: (step) => {
                if (String(step.uses).startsWith("aws-actions/configure-aws-credentials@")) assumed = step.with["role-to-assume"];
                else assert.ok(String(step.uses).startsWith("actions/setup-python@"), step.uses);
            },
        });
        assert.strictEqual(result.code, 0, result.output);
        assert.match(assumed, /:role\/dbt-snowflake-ci-pull-request$/);
        assert.match(result.output, new RegExp(`Docs preview removed: s3://${bucket}/docs/pr/42/ \\(pull request #42 closed\\)`));
        assert.deepStrictEqual(await moto.listKeys(bucket, "docs/pr/42/"), []);
        assert.deepStrictEqual(await moto.listKeys(bucket, "docs/pr/43/"), ["docs/pr/43/catalog.json", "docs/pr/43/index.html", "docs/pr/43/manifest.json"]);
        assert.deepStrictEqual(await moto.listKeys(bucket, "docs/index.html"), ["docs/index.html"]);
        console.log(`docs preview removal (github): pull_request closed removed docs/pr/42/ (3 files), kept docs/pr/43/ and the production docs`);
    });
});
