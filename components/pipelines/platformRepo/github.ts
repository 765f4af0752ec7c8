/**
 * GitHub Actions for the platform repository: platform-preview.yml (pull requests, one comment
 * kept up to date by a step that finds its marker through the REST API), platform-deploy.yml (main: one
 * job per stack, environments for approvals, a concurrency group per stack, the SHA handed from
 * stage to stage) and platform-audit.yml (scheduled drift audit).
 */
import { GITHUB_ACTION_PINS, PLATFORM_ACTION_PINS } from "../versions";
import { shq } from "../model";
import { githubUpsertCommentScript } from "../githubComment";
import { auditKind, auditLines, auditSecretNames, backendEnv, COMMENT_FILE, COMMENT_MARKER, PlatformPipelineArgs, previewLines, renderPlatformYaml, upLines, validatePlatformArgs } from "./model";
import { janitorInstallLines, janitorLines, janitorSecretNames, JANITOR_TOKEN_VARIABLE } from "./janitor";

/** Actions the platform workflows use, each pinned by commit SHA (the release tag is written as a comment). */
const PLATFORM_PINS = { ...GITHUB_ACTION_PINS, ...PLATFORM_ACTION_PINS };
export const PLATFORM_ACTIONS = Object.fromEntries(Object.entries(PLATFORM_PINS).map(([k, p]) => [k, `${p.repo}@${p.sha}`])) as Record<keyof typeof PLATFORM_PINS, string>;
/** `uses:` value → `# <tag>` comment. */
const PIN_COMMENTS = Object.fromEntries(Object.values(PLATFORM_PINS).map((p) => [`${p.repo}@${p.sha}`, p.tag]));

type Step = Record<string, unknown>;

function commonSteps(args: PlatformPipelineArgs, ref: string | undefined, roleArn: string | undefined): Step[] {
    const steps: Step[] = [
        { name: "Checkout", uses: PLATFORM_ACTIONS.checkout, with: { "fetch-depth": 0, ...(ref ? { ref } : {}) } },
        { name: "Set up Node", uses: PLATFORM_ACTIONS.setupNode, with: { "node-version": args.nodeVersion, cache: "npm" } },
    ];
    if (roleArn && args.backend.kind === "s3") {
        steps.push({ name: "AWS credentials (OIDC) for the state bucket and KMS key", uses: PLATFORM_ACTIONS.awsCredentials, with: { "role-to-assume": roleArn, "aws-region": args.backend.region } });
    }
    // Without a command the action only installs the CLI: the scripts run pulumi themselves.
    steps.push({ name: "Install Pulumi", uses: PLATFORM_ACTIONS.pulumi, with: { "pulumi-version": args.pulumiVersion } });
    return steps;
}

function env(args: PlatformPipelineArgs, extra: Record<string, string> = {}): Record<string, string> {
    const out: Record<string, string> = { ...backendEnv(args), ...extra };
    if (args.backend.kind === "pulumi-cloud") out.PULUMI_ACCESS_TOKEN = "${{ secrets.PULUMI_ACCESS_TOKEN }}";
    return out;
}

/** The preview job's comment script: one comment, found by its marker and updated in place (githubComment.ts, shared with the dbt PR job's docs preview). */
export const UPSERT_COMMENT_SCRIPT = githubUpsertCommentScript({ marker: COMMENT_MARKER, bodyFile: COMMENT_FILE, missingBody: "The preview did not produce a report; see the run log." });

export function renderPlatformGithub(args: PlatformPipelineArgs): Record<string, string> {
    validatePlatformArgs(args);
    const s3 = args.backend.kind === "s3" ? args.backend : undefined;
    const preview = {
        name: "Platform preview",
        on: { pull_request: { branches: [args.mainBranch] } },
        permissions: { contents: "read", "pull-requests": "write", ...(s3 ? { "id-token": "write" } : {}) },
        concurrency: { group: "platform-preview-${{ github.event.pull_request.number }}", "cancel-in-progress": true },
        jobs: {
            preview: {
                name: "pulumi preview (every stack, policy pack enforced)",
                "runs-on": "ubuntu-latest",
                "timeout-minutes": 60,
                env: env(args, { BASE_SHA: "${{ github.event.pull_request.base.sha }}" }),
                defaults: { run: { shell: "bash" } },
                steps: [
                    ...commonSteps(args, undefined, s3?.previewRoleArn),
                    { name: "Preview, SQL plan and access matrix", run: previewLines(args).join("\n") },
                    {
                        name: "Post or update the PR comment",
                        if: "always()",
                        env: { GITHUB_TOKEN: "${{ github.token }}", PR_NUMBER: "${{ github.event.pull_request.number }}" },
                        run: `node -e ${shq(UPSERT_COMMENT_SCRIPT)}`,
                    },
                ],
            },
        },
    };

    const jobs: Record<string, unknown> = {};
    args.stacks.forEach((stack, i) => {
        const previous = i > 0 ? args.stacks[i - 1] : undefined;
        const sha = previous ? `\${{ needs.${previous}.outputs.sha }}` : "${{ github.sha }}";
        jobs[stack] = {
            name: `pulumi up ${stack}`,
            ...(previous ? { needs: [previous] } : {}),
            "runs-on": "ubuntu-latest",
            "timeout-minutes": 60,
            // Required reviewers on the environment are the approval before a release stage.
            environment: stack,
            // One run per stack at a time; a queued deploy waits rather than cancelling one in flight.
            concurrency: { group: `pulumi-stack-${stack}`, "cancel-in-progress": false },
            outputs: { sha: "${{ steps.deployed.outputs.sha }}" },
            env: env(args, { DEPLOY_SHA: sha }),
            defaults: { run: { shell: "bash" } },
            steps: [
                ...commonSteps(args, sha, s3?.deployRoleArn),
                { name: `pulumi up ${stack}`, run: upLines(args, stack).join("\n") },
                { name: "Hand the deployed commit to the next stage", id: "deployed", run: 'echo "sha=$DEPLOY_SHA" >> "$GITHUB_OUTPUT"' },
            ],
        };
    });
    const deploy = {
        name: "Platform deploy",
        on: { push: { branches: [args.mainBranch] } },
        permissions: { contents: "read", ...(s3 ? { "id-token": "write" } : {}) },
        jobs,
    };

    const auditJobs: Record<string, unknown> = {};
    for (const stack of args.stacks) {
        const kind = auditKind(args, stack);
        auditJobs[`audit-${stack}`] = {
            name: `drift audit ${stack}`,
            "runs-on": "ubuntu-latest",
            "timeout-minutes": 30,
            env: Object.fromEntries(Object.entries(auditSecretNames(stack, kind)).map(([v, secret]) => [v, `\${{ secrets.${secret} }}`])),
            defaults: { run: { shell: "bash" } },
            steps: [
                { name: "Checkout", uses: PLATFORM_ACTIONS.checkout, with: { ref: args.mainBranch } },
                { name: "Set up Node", uses: PLATFORM_ACTIONS.setupNode, with: { "node-version": args.nodeVersion, cache: "npm" } },
                { name: `Audit ${stack} against the declared plan`, run: auditLines(stack, kind).join("\n") },
            ],
        };
    }
    const audit = {
        name: "Platform drift audit",
        on: { schedule: [{ cron: args.auditCron }], workflow_dispatch: {} },
        permissions: { contents: "read" },
        jobs: auditJobs,
    };
    return {
        ".github/workflows/platform-preview.yml": renderPlatformYaml(preview, PIN_COMMENTS),
        ".github/workflows/platform-deploy.yml": renderPlatformYaml(deploy, PIN_COMMENTS),
        ".github/workflows/platform-audit.yml": renderPlatformYaml(audit, PIN_COMMENTS),
        ...(args.janitor?.length ? { ".github/workflows/platform-janitor.yml": renderPlatformYaml(janitorWorkflow(args), PIN_COMMENTS) } : {}),
    };
}

/** The scheduled PR-schema janitor: one job per stack, each on its own cron (github.event.schedule names the one that fired). */
function janitorWorkflow(args: PlatformPipelineArgs): Record<string, unknown> {
    const jobs: Record<string, unknown> = {};
    for (const j of args.janitor ?? []) {
        const names = janitorSecretNames(j.stack);
        jobs[`janitor-${j.stack}`] = {
            name: `PR-schema janitor ${j.stack}`,
            if: `github.event_name == 'workflow_dispatch' || github.event.schedule == '${j.cron}'`,
            "runs-on": "ubuntu-latest",
            "timeout-minutes": 30,
            concurrency: { group: `platform-janitor-${j.stack}`, "cancel-in-progress": false },
            env: {
                PGUSER: `\${{ secrets.${names.user} }}`,
                PGPASSWORD: `\${{ secrets.${names.password} }}`,
                [JANITOR_TOKEN_VARIABLE[j.ciSystem]]: `\${{ secrets.${names.token} }}`,
            },
            defaults: { run: { shell: "bash" } },
            steps: [
                { name: "Checkout", uses: PLATFORM_ACTIONS.checkout, with: { ref: args.mainBranch } },
                { name: "Set up Node", uses: PLATFORM_ACTIONS.setupNode, with: { "node-version": args.nodeVersion, cache: "npm" } },
                { name: "Install", run: janitorInstallLines().join("\n") },
                { name: `Janitor ${j.stack}: dry run`, run: janitorLines(j.stack, false).join("\n") },
                { name: `Janitor ${j.stack}: drop orphaned PR schemas`, run: janitorLines(j.stack, true).join("\n") },
            ],
        };
    }
    return {
        name: "Platform PR-schema janitor",
        on: { schedule: [...new Set((args.janitor ?? []).map((j) => j.cron))].map((cron) => ({ cron })), workflow_dispatch: {} },
        permissions: { contents: "read" },
        jobs,
    };
}
