/**
 * The platform repository's own pipelines, rendered for GitHub Actions, Bitbucket Pipelines and
 * Azure DevOps with both backends: validated against the publishers' schemas (and GitHub's parser),
 * every shell script parsed by bash, and the promotion rules asserted on the parsed documents.
 */
import assert from "assert";
import { spawnSync } from "child_process";
import { parse } from "yaml";
import {
    COMMENT_MARKER,
    PlatformPipelineArgs,
    platformProblems,
    renderPlatformAzure,
    renderPlatformBitbucket,
    renderPlatformGithub,
} from "../components/pipelines/platformRepo";
import { AZURE_UPSERT_COMMENT } from "../components/pipelines/platformRepo/azure";
import { BITBUCKET_UPSERT_COMMENT } from "../components/pipelines/platformRepo/bitbucket";
import { UPSERT_COMMENT_SCRIPT } from "../components/pipelines/platformRepo/github";
import { platformArgs } from "../scripts/render-platform";
import { azureSchemaErrors, bitbucketSchemaErrors, githubParserErrors, githubSchemaErrors } from "./support/pipelineSchemas";

const STACKS = ["dev", "sandbox", "staging", "prod"];
const S3: PlatformPipelineArgs = {
    stacks: STACKS,
    mainBranch: "main",
    backend: {
        kind: "s3",
        bucket: "acme-pulumi-state",
        region: "eu-west-1",
        previewRoleArn: "arn:aws:iam::123456789012:role/platform-preview",
        deployRoleArn: "arn:aws:iam::123456789012:role/platform-deploy",
        azureServiceConnections: { preview: "aws-platform-preview", deploy: "aws-platform-deploy" },
    },
    auditCron: "17 5 * * *",
    pulumiVersion: "3.248.0",
    nodeVersion: "20",
};
const CLOUD: PlatformPipelineArgs = { ...S3, backend: { kind: "pulumi-cloud", organization: "acme" } };

function bashErrors(script: string): string {
    assert.ok(script.trim().length > 0, "an empty script");
    const r = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
    return r.status === 0 ? "" : r.stderr;
}

/** Every shell script a document runs (GitHub run:, Bitbucket script items, Azure bash/inlineScript). */
function scripts(doc: any): string[] {
    const out: string[] = [];
    const walk = (v: any, key?: string) => {
        if (typeof v === "string" && (key === "run" || key === "bash" || key === "inlineScript")) out.push(v);
        else if (Array.isArray(v)) v.forEach((x) => walk(x, key === "script" || key === "after-script" ? "bash" : undefined));
        else if (v && typeof v === "object") Object.entries(v).forEach(([k, x]) => walk(x, k));
    };
    walk(doc);
    assert.ok(out.length > 0, "the document runs no script");
    return out;
}

describe("platform repository pipelines", () => {
    for (const [label, args] of [["S3 + KMS", S3], ["Pulumi Cloud", CLOUD]] as const) {
        describe(`with ${label}`, () => {
            it("GitHub: validates against the schema and GitHub's parser; preview per stack, promotion with approvals, one SHA", async () => {
                const files = renderPlatformGithub(args);
                assert.deepStrictEqual(Object.keys(files).sort(), [".github/workflows/platform-audit.yml", ".github/workflows/platform-deploy.yml", ".github/workflows/platform-preview.yml"]);
                for (const [name, text] of Object.entries(files)) {
                    assert.deepStrictEqual(githubSchemaErrors(text), [], `${name} fails the schema`);
                    assert.deepStrictEqual(await githubParserErrors(name, text), [], `${name} fails GitHub's parser`);
                    for (const s of scripts(parse(text))) assert.strictEqual(bashErrors(s), "", `${name}: ${s}`);
                }
                const preview = parse(files[".github/workflows/platform-preview.yml"]);
                assert.deepStrictEqual(Object.keys(preview.on), ["pull_request"]);
                const steps = preview.jobs.preview.steps;
                assert.ok(steps.some((s: any) => /^pulumi\/actions@[0-9a-f]{40}$/.test(s.uses)), "installs the CLI with pulumi/actions, pinned by commit SHA");
                // Every action of every platform workflow is pinned by commit SHA, its release tag as a comment.
                for (const [name, text] of Object.entries(files)) {
                    for (const line of text.split("\n").filter((l) => /^\s*(- )?uses:/.test(l))) {
                        assert.match(line, /uses: [\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/, `${name}: ${line.trim()}`);
                    }
                }
                const run = steps.find((s: any) => s.name === "Preview, SQL plan and access matrix").run;
                for (const stack of STACKS) {
                    assert.match(run, new RegExp(`pulumi preview --stack ${args.backend.kind === "s3" ? "" : "acme/"}${stack} --diff --policy-pack policy`));
                    assert.match(run, new RegExp(`diff -u sql/${stack}.sql sql-${stack}.sql`));
                    assert.match(run, new RegExp(`npm run --silent access -- --stack ${stack} --base access-base-${stack}.json`));
                }
                assert.match(run, /git worktree add --detach \.\.\/platform-base "\$BASE_SHA"/);
                assert.match(run, /npm install --prefix policy/, "installs the policy pack's own dependencies");
                const comment = steps.find((s: any) => s.name === "Post or update the PR comment");
                assert.strictEqual(comment.if, "always()");
                assert.match(comment.run, /^node -e .*PATCH/s);
                assert.deepStrictEqual(comment.env, { GITHUB_TOKEN: "${{ github.token }}", PR_NUMBER: "${{ github.event.pull_request.number }}" });
                assert.strictEqual(preview.permissions["pull-requests"], "write");

                const deploy = parse(files[".github/workflows/platform-deploy.yml"]);
                assert.deepStrictEqual(deploy.on, { push: { branches: ["main"] } });
                assert.deepStrictEqual(Object.keys(deploy.jobs), STACKS);
                STACKS.forEach((stack, i) => {
                    const job = deploy.jobs[stack];
                    assert.strictEqual(job.environment, stack, "approvals are the environment's required reviewers");
                    assert.deepStrictEqual(job.concurrency, { group: `pulumi-stack-${stack}`, "cancel-in-progress": false });
                    const sha = i === 0 ? "${{ github.sha }}" : `\${{ needs.${STACKS[i - 1]}.outputs.sha }}`;
                    assert.deepStrictEqual(job.needs, i === 0 ? undefined : [STACKS[i - 1]]);
                    assert.strictEqual(job.env.DEPLOY_SHA, sha);
                    assert.strictEqual(job.steps[0].with.ref, sha, "checks out the SHA the previous stage passed");
                    assert.ok(job.steps.some((s: any) => /pulumi up --stack \S+ --yes/.test(s.run ?? "")));
                });
                if (args.backend.kind === "s3") {
                    assert.strictEqual(deploy.jobs.dev.env.PULUMI_BACKEND_URL, "s3://acme-pulumi-state?region=eu-west-1");
                    assert.strictEqual(deploy.permissions["id-token"], "write");
                    assert.ok(deploy.jobs.prod.steps.some((s: any) => s.with?.["role-to-assume"] === "arn:aws:iam::123456789012:role/platform-deploy"));
                } else {
                    assert.strictEqual(deploy.jobs.dev.env.PULUMI_ACCESS_TOKEN, "${{ secrets.PULUMI_ACCESS_TOKEN }}");
                }
                const audit = parse(files[".github/workflows/platform-audit.yml"]);
                assert.deepStrictEqual(audit.on.schedule, [{ cron: "17 5 * * *" }]);
                assert.strictEqual(audit.jobs["audit-prod"].env.PGPASSWORD, "${{ secrets.AUDIT_PGPASSWORD_PROD }}");
            });

            it("Bitbucket: validates against the schema; manual trigger before each release stage, deployments per stack", () => {
                const files = renderPlatformBitbucket(args);
                const text = files["bitbucket-pipelines.yml"];
                assert.deepStrictEqual(bitbucketSchemaErrors(text), []);
                const doc = parse(text);
                for (const s of scripts(doc)) assert.strictEqual(bashErrors(s), "", s);
                const pr = doc.pipelines["pull-requests"]["**"][0].step;
                for (const stack of STACKS) assert.match(pr.script.join("\n"), new RegExp(`pulumi preview --stack \\S*${stack} --diff --policy-pack policy`));
                assert.match(pr["after-script"][0], /pullrequests/);
                const steps = doc.pipelines.branches.main.map((s: any) => s.step);
                assert.deepStrictEqual(steps.map((s: any) => s.deployment), STACKS);
                assert.deepStrictEqual(steps.map((s: any) => s.trigger), [undefined, "manual", "manual", "manual"]);
                for (const s of steps) assert.match(s.script.join("\n"), /export DEPLOY_SHA="\$BITBUCKET_COMMIT"/);
                assert.strictEqual(doc.pipelines.custom["platform-audit"].length, STACKS.length);
                assert.strictEqual(pr.oidc, args.backend.kind === "s3" ? true : undefined);
            });

            it("Azure DevOps: validates against the schema; a stage per stack in its environment, sequential locks, the audit on a schedule", () => {
                const files = renderPlatformAzure(args);
                for (const [name, text] of Object.entries(files)) {
                    assert.deepStrictEqual(azureSchemaErrors(text), [], `${name} fails the schema`);
                    for (const s of scripts(parse(text))) assert.strictEqual(bashErrors(s), "", `${name}: ${s}`);
                }
                const doc = parse(files["azure-pipelines.yml"]);
                const ups = doc.stages.filter((s: any) => s.stage.startsWith("up_"));
                assert.deepStrictEqual(ups.map((s: any) => s.jobs[0].environment), STACKS);
                assert.deepStrictEqual(ups.map((s: any) => s.dependsOn), [[], ["up_dev"], ["up_sandbox"], ["up_staging"]]);
                for (const s of ups) assert.strictEqual(s.lockBehavior, "sequential");
                const comment = doc.stages[0].jobs[0].steps.find((s: any) => s.displayName === "Post or update the PR comment");
                assert.strictEqual(comment.env.SYSTEM_ACCESSTOKEN, "$(System.AccessToken)");
                const audit = parse(files["azure-pipelines-audit.yml"]);
                assert.strictEqual(audit.schedules[0].cron, "17 5 * * *");
            });
        });
    }

    it("the comment scripts are valid JavaScript and look for their own marker", () => {
        const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
        for (const script of [UPSERT_COMMENT_SCRIPT, BITBUCKET_UPSERT_COMMENT, AZURE_UPSERT_COMMENT]) {
            assert.doesNotThrow(() => new AsyncFunction("require", "context", "github", script));
            assert.ok(script.includes(JSON.stringify(COMMENT_MARKER)));
        }
    });

    it("no secret value is rendered: credentials are references to the CI system's secrets", () => {
        const all = [renderPlatformGithub(CLOUD), renderPlatformBitbucket(CLOUD), renderPlatformAzure(CLOUD), renderPlatformGithub(S3)].flatMap((f) => Object.values(f)).join("\n");
        assert.doesNotMatch(all, /PULUMI_ACCESS_TOKEN: (?!\$\{\{ secrets\.|\$\()/);
        assert.doesNotMatch(all, /PULUMI_CONFIG_PASSPHRASE/);
        assert.doesNotMatch(all, /AKIA[0-9A-Z]{16}/);
    });

    it("rejects bad arguments naming the field, before rendering", () => {
        assert.deepStrictEqual(platformProblems({ ...S3, stacks: ["dev", "Prod!"], auditCron: "daily" }), [
            'stacks: "Prod!" is not a stack name (lower-case letters, digits, -)',
            'auditCron: "daily" is not a five-field cron expression',
        ]);
        assert.throws(() => renderPlatformGithub({ ...S3, backend: { ...(S3.backend as any), deployRoleArn: "deploy" } }), /backend\.deployRoleArn: "deploy" is not an IAM role ARN/);
        assert.throws(() => renderPlatformAzure({ ...S3, backend: { ...(S3.backend as any), azureServiceConnections: undefined } }), /backend\.azureServiceConnections/);
    });

    it("render:platform takes the stacks from the Pulumi.<stack>.yaml files in promotion order", () => {
        const args = platformArgs(["--backend", "pulumi-cloud", "--organization", "acme"]);
        // The promotion order first, then the other stacks (the Snowflake and Redshift examples) by name.
        assert.deepStrictEqual(args.stacks, [...STACKS, "redshift", "snowflake"]);
        assert.throws(() => platformArgs(["--backend", "s3"]), /--bucket is required/);
    });
});
