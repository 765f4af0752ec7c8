/**
 * GitHub Actions: `.github/workflows/ci.yml` (pull requests) and `deploy.yml` (main / release).
 */
import { ContextVariable, DOCS_PREVIEW_COMMENT_STEP, DOCS_PREVIEW_STEP, docsPreviewRemoveLines, inProject, Job, PipelineModel, renderCiYaml, SettingVariable } from "./model";
import { GithubAction, resolvePins } from "./versions";

const CONTEXT: Record<ContextVariable, string> = {
    PR_NUMBER: "${{ github.event.pull_request.number }}",
    PR_TARGET_BRANCH: "${{ github.base_ref }}",
    IS_FORK: "${{ github.event.pull_request.head.repo.full_name != github.repository }}",
    RUN_ID: "${{ github.run_id }}-${{ github.run_attempt }}",
    SOURCE_BRANCH: "${{ github.ref_name }}",
};

/** FULL_BUILD of a deploy-on-merge job: true unless a push (merge) started the run. */
export const FULL_BUILD_ON_DISPATCH = "${{ github.event_name != 'push' && 'true' || 'false' }}";

/** True when the pull request's head is in this repository (not a fork). */
export const SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository";

/** `owner/repo@<sha>` of each action, and the comment naming its tag. */
function actionRefs(model: PipelineModel): { uses: Record<GithubAction, string>; comments: Record<string, string> } {
    const pins = resolvePins(model.context.pins);
    const uses = {} as Record<GithubAction, string>;
    const comments: Record<string, string> = {};
    for (const [k, p] of Object.entries(pins.actions)) {
        uses[k as GithubAction] = `${p.repo}@${p.sha}`;
        comments[`${p.repo}@${p.sha}`] = p.tag;
    }
    return { uses, comments };
}

/** How a settings variable is referenced: passwords are secrets, the rest plain variables. */
export function githubReference(v: SettingVariable): string {
    return v.secret ? `\${{ secrets.${v.name} }}` : `\${{ vars.${v.name} }}`;
}

interface GithubStep {
    name: string;
    uses?: string;
    with?: Record<string, string | boolean>;
    run?: string;
    env?: Record<string, string>;
    if?: string;
    "continue-on-error"?: boolean;
}

function jobDocument(model: PipelineModel, job: Job, uses: Record<GithubAction, string>): Record<string, unknown> {
    const ctx = model.context;
    const env: Record<string, string> = { ...job.env };
    for (const c of job.context) env[c] = CONTEXT[c];
    if (job.fullRefreshInput) {
        env.FULL_REFRESH = "${{ inputs.full_refresh && 'true' || 'false' }}";
        env.FULL_REFRESH_SELECT = "${{ inputs.full_refresh_select }}";
    }
    // A merge builds state:modified+; a run by hand (workflow_dispatch) or on the schedule builds everything.
    if (job.fullBuild) env.FULL_BUILD = job.trigger.kind === "push" ? FULL_BUILD_ON_DISPATCH : "${{ inputs.full_build && 'true' || 'false' }}";
    for (const v of job.variables) env[v.name] = githubReference(v);
    // A job whose token may write pull requests keeps it out of .git/config (checkout persists it there by default),
    // so only the commenting step holds it, not the steps that run the pull request's dbt code.
    const comments = postsComment(job);
    const steps: GithubStep[] = [
        { name: "Checkout", uses: uses.checkout, ...(comments ? { with: { "persist-credentials": false } } : {}) },
        { name: "Set up Python", uses: uses.setupPython, with: { "python-version": ctx.dbt.pythonVersion, cache: "pip" } },
        ...cacheSteps(model, job, uses),
    ];
    if (job.awsRoleArn && ctx.aws) {
        const step: GithubStep = {
            name: "Configure AWS credentials (OIDC)",
            uses: uses.awsCredentials,
            with: { "role-to-assume": job.awsRoleArn, "aws-region": ctx.aws.region },
        };
        // A fork's PR gets no OIDC token: skip the role so the run steps can report the fork policy instead of failing here.
        if (job.context.includes("IS_FORK")) step.if = SAME_REPOSITORY;
        steps.push(step);
        if (job.credentialSecret) {
            // Seed 002: the target's JSON secret becomes <alias>_<KEY> variables (masked), exactly what profiles.yml reads.
            const read: GithubStep = {
                name: "Read the warehouse credentials (Secrets Manager)",
                uses: uses.secretsManager,
                with: { "secret-ids": `${job.credentialSecret.alias}, ${job.credentialSecret.secretId}`, "parse-json-secrets": true },
            };
            if (step.if) read.if = step.if;
            steps.push(read);
        }
    }
    for (const s of job.steps) {
        const step: GithubStep = { name: s.name, run: s.lines.join("\n") };
        if (s.id === DOCS_PREVIEW_COMMENT_STEP) step.env = { GITHUB_TOKEN: "${{ github.token }}" };
        if (s.when === "always") step.if = "always()";
        if (s.continueOnError) step["continue-on-error"] = true;
        steps.push(step);
    }
    const doc: Record<string, unknown> = {
        name: job.name,
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 120,
    };
    if (job.deploymentEnvironment) doc.environment = job.deploymentEnvironment;
    doc.env = env;
    doc.defaults = { run: { shell: "bash" } };
    doc.steps = steps;
    return doc;
}

/**
 * dbt_packages keyed on packages.yml / package-lock.yml, and target/partial_parse.msgpack. dbt
 * discards the msgpack when any profile value changes, and a PR's schema is `<prefix><n>`: it is
 * keyed per PR (the deploy's per stack) and per dbt version, saved under the run id (a cache key is
 * written once) and restored from the newest run of the same prefix.
 */
function cacheSteps(model: PipelineModel, job: Job, uses: Record<GithubAction, string>): GithubStep[] {
    const ctx = model.context;
    const dir = (rel: string) => inProject(ctx, rel);
    const scope = job.id === "pull-request" ? `${ctx.stack}-pr-\${{ github.event.pull_request.number }}` : `${ctx.stack}-deploy`;
    const parsePrefix = `dbt-partial-parse-${ctx.dbt.version}-${scope}-`;
    return [
        {
            name: "Cache dbt packages",
            uses: uses.cache,
            with: { path: dir("dbt_packages"), key: `dbt-packages-${ctx.dbt.version}-\${{ hashFiles('${dir("packages.yml")}', '${dir("package-lock.yml")}') }}` },
        },
        {
            name: "Cache dbt partial parsing",
            uses: uses.cache,
            with: { path: dir("target/partial_parse.msgpack"), key: `${parsePrefix}\${{ github.run_id }}`, "restore-keys": parsePrefix },
        },
    ];
}

/** The job posts a pull-request comment (the docs preview's): its token needs pull-requests: write, and only that step gets it. */
function postsComment(job: Job): boolean {
    return job.steps.some((s) => s.id === DOCS_PREVIEW_COMMENT_STEP);
}

function permissions(job: Job): Record<string, string> {
    // id-token only when a role is assumed, pull-requests only when a step comments: least privilege for the GITHUB_TOKEN.
    return {
        contents: "read",
        ...(job.awsRoleArn ? { "id-token": "write" } : {}),
        ...(postsComment(job) ? { "pull-requests": "write" } : {}),
    };
}

/** Event types of ci.yml when it also removes the docs preview: GitHub's defaults, and closed. */
export const PULL_REQUEST_TYPES_WITH_CLOSE = ["opened", "synchronize", "reopened", "closed"];

/**
 * With docs previews, ci.yml also runs on `closed` and this job removes the pull request's preview with the PR role
 * (CiIdentity docsPreviewCleanup); slim CI skips that event. No checkout: nothing of the pull request runs here, and
 * the token gets id-token only. It shares the workflow's per-PR concurrency group, so a run still building the
 * preview is cancelled first and cannot publish it again after the removal. A fork's pull request never published one.
 */
function previewRemovalJob(model: PipelineModel, job: Job, uses: Record<GithubAction, string>): Record<string, unknown> | undefined {
    const aws = model.context.aws;
    if (job.id !== "pull-request" || !aws || !job.awsRoleArn || !job.steps.some((s) => s.id === DOCS_PREVIEW_STEP)) return undefined;
    return {
        name: "Remove the docs preview (pull request closed)",
        if: `github.event.action == 'closed' && ${SAME_REPOSITORY}`,
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 15,
        permissions: { "id-token": "write" },
        env: { PR_NUMBER: CONTEXT.PR_NUMBER },
        defaults: { run: { shell: "bash" } },
        steps: [
            // No pip cache: it keys on requirement files of a checkout this job does not make.
            { name: "Set up Python", uses: uses.setupPython, with: { "python-version": model.context.dbt.pythonVersion } },
            { name: "Configure AWS credentials (OIDC)", uses: uses.awsCredentials, with: { "role-to-assume": job.awsRoleArn, "aws-region": aws.region } },
            { name: "Remove the pull request's docs preview (docs/pr/<n>/)", run: docsPreviewRemoveLines(aws.bucket).join("\n") },
        ],
    };
}

function concurrencyGroup(job: Job): string {
    return job.concurrency.group.replace("$PR_NUMBER", CONTEXT.PR_NUMBER);
}

/** Renders ci.yml and deploy.yml (paths relative to the repository root). */
export function renderGithub(model: PipelineModel): Record<string, string> {
    const files: Record<string, string> = {};
    const ctx = model.context;
    const refs = actionRefs(model);
    for (const job of model.jobs) {
        let on: Record<string, unknown>;
        if (job.trigger.kind === "pull-request") on = { pull_request: { branches: [ctx.mainBranch] } };
        else if (job.trigger.kind === "push") {
            on = { push: { branches: [job.trigger.branch] }, workflow_dispatch: {} };
            if (job.fullBuild?.schedule) on.schedule = [{ cron: job.fullBuild.schedule }];
        } else {
            const inputs: Record<string, unknown> = {
                full_refresh: { description: "Rebuild the selection below from scratch (--full-refresh; seeds are never refreshed)", type: "boolean", default: false },
                full_refresh_select: { description: "dbt selector of what to rebuild from scratch (required with full_refresh), e.g. fct_orders+", type: "string", default: "" },
            };
            if (job.fullBuild) inputs.full_build = { description: "Build the whole project, not only what changed since the last good production manifest", type: "boolean", default: false };
            on = { workflow_dispatch: { inputs } };
        }
        const jobs: Record<string, unknown> = { [job.id === "pull-request" ? "slim-ci" : "deploy"]: jobDocument(model, job, refs.uses) };
        const removal = previewRemovalJob(model, job, refs.uses);
        if (removal) {
            on = { pull_request: { branches: [ctx.mainBranch], types: PULL_REQUEST_TYPES_WITH_CLOSE } };
            const { name, ...rest } = jobs["slim-ci"] as Record<string, unknown>;
            jobs["slim-ci"] = { name, if: "github.event.action != 'closed'", ...rest };
            jobs["docs-preview-cleanup"] = removal;
        }
        const doc = {
            name: `${job.name} (${ctx.stack})`,
            on,
            permissions: permissions(job),
            concurrency: { group: concurrencyGroup(job), "cancel-in-progress": job.concurrency.cancelInProgress },
            jobs,
        };
        const file = job.id === "pull-request" ? ".github/workflows/ci.yml" : ".github/workflows/deploy.yml";
        files[file] = renderCiYaml(ctx.stack, doc, refs.comments);
    }
    return files;
}
