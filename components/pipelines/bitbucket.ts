/**
 * Bitbucket Pipelines: one `bitbucket-pipelines.yml` with the pull-request pipeline, the main
 * branch deploy (or a custom, manually run release pipeline for a promoted stage).
 *
 * Bitbucket runs a step's `script` items in one shell, but `after-script` in its own: every item
 * carries the model's preamble, so each derives its own schema and context.
 */
import { ContextVariable, inProject, Job, PARTIAL_PARSE_CACHE_DIR, partialParseCopyLines, PipelineModel, renderCiYaml, shq, Step } from "./model";
import { resolvePins } from "./versions";

const CONTEXT: Record<ContextVariable, string> = {
    PR_NUMBER: "$BITBUCKET_PR_ID",
    PR_TARGET_BRANCH: "$BITBUCKET_PR_DESTINATION_BRANCH",
    // Bitbucket does not say; a fork PR gets no secured variables, which the variable checks report.
    IS_FORK: "false",
    RUN_ID: "$BITBUCKET_BUILD_NUMBER",
    SOURCE_BRANCH: "$BITBUCKET_BRANCH",
};

/** The file that assumes the AWS role from the step's OIDC token (read by the AWS CLI). */
const TOKEN_FILE = "$BITBUCKET_CLONE_DIR/.aws-web-identity-token";

function contextLines(job: Job, region: string | undefined): string[] {
    const lines = job.context.map((c) => `export ${c}="${CONTEXT[c]}"`);
    for (const [k, v] of Object.entries(job.env)) lines.push(`export ${k}=${shq(v)}`);
    if (job.awsRoleArn && region) {
        // The AWS CLI assumes AWS_ROLE_ARN with the web identity token on its own.
        lines.push(
            `export AWS_DEFAULT_REGION=${shq(region)}`,
            `export AWS_ROLE_ARN=${shq(job.awsRoleArn)}`,
            `export AWS_WEB_IDENTITY_TOKEN_FILE="${TOKEN_FILE}"`,
            `printf '%s' "$BITBUCKET_STEP_OIDC_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE"`,
        );
    }
    return lines;
}

function scriptItem(step: Step): string {
    const body = step.lines.join("\n");
    if (!step.continueOnError) return `# ${step.name}\n${body}`;
    // A non-blocking step runs in a subshell so its failure cannot end the script.
    return `# ${step.name} (not blocking)\nif ! (\n${body}\n); then echo "warning: step '${step.name}' failed (not blocking)"; fi`;
}

function stepDocument(model: PipelineModel, job: Job, extraEnv: Record<string, string> = {}): Record<string, unknown> {
    const region = model.context.aws?.region;
    const context = [...contextLines(job, region), ...Object.entries(extraEnv).map(([k, v]) => `export ${k}=${shq(v)}`)].join("\n");
    const main = job.steps.filter((s) => s.when === "success");
    const always = job.steps.filter((s) => s.when === "always");
    const step: Record<string, unknown> = { name: job.name };
    if (job.deploymentEnvironment) step.deployment = job.deploymentEnvironment;
    // Bitbucket never cancels an older run: a concurrency group queues runs instead. Group names are static
    // (variables are not documented to expand there), so all PR runs of the stack queue behind each other.
    step["concurrency-group"] = job.id === "pull-request" ? `dbt-ci-${model.context.stack}-pull-requests` : `dbt-deploy-${model.context.stack}`;
    if (job.awsRoleArn) step.oidc = true;
    // docker build/push (the scheduled-run image) needs Bitbucket's docker service.
    if (job.steps.some((s) => s.docker)) step.services = ["docker"];
    step["max-time"] = 120;
    step.caches = ["pip", ...Object.keys(CACHES)];
    // The partial-parse file goes in before the first dbt command and back out after a successful run (caches are saved only then).
    const restore = `# Restore dbt's partial parse from the cache\n${partialParseCopyLines(model.context, job.id, "restore").join("\n")}`;
    // The job's steps left the shell in the project folder: back to the clone directory the copy lines start from.
    const save = `# Save dbt's partial parse to the cache\ncd "$BITBUCKET_CLONE_DIR"\n${partialParseCopyLines(model.context, job.id, "save").join("\n")}`;
    step.script = [`# Context from Bitbucket and the stack\n${context}`, restore, ...main.map(scriptItem), save];
    if (always.length > 0) step["after-script"] = [`# Context from Bitbucket and the stack\n${context}`, ...always.map(scriptItem)];
    return { step };
}

/**
 * Custom caches, project folder relative to the clone directory. Bitbucket documents `key: files:`
 * caches, but the vendored schema (Atlassian's published one) accepts only a path per cache: a path
 * cache is saved by the first successful step without it and kept 7 days, unchanged, so a restored
 * dbt_packages may be older than the lock file (the install step's DEPS_MARKER then runs `dbt deps`
 * again) and the partial-parse folder holds the files of the runs that saved it.
 */
const CACHES = { "dbt-packages": "dbt_packages", "dbt-partial-parse": PARTIAL_PARSE_CACHE_DIR } as const;

/** Renders bitbucket-pipelines.yml. */
export function renderBitbucket(model: PipelineModel): Record<string, string> {
    const ctx = model.context;
    const pipelines: Record<string, unknown> = {};
    for (const job of model.jobs) {
        const step = stepDocument(model, job);
        if (job.trigger.kind === "pull-request") {
            pipelines["pull-requests"] = { "**": [step] };
        } else if (job.trigger.kind === "push") {
            pipelines.branches = { [job.trigger.branch]: [step] };
        } else {
            const variables = job.fullRefreshInput
                ? [{ variables: [{ name: "FULL_REFRESH", default: "false", "allowed-values": ["false", "true"] }, { name: "FULL_REFRESH_SELECT" }] }]
                : [];
            pipelines.custom = { [`release-${ctx.stack}`]: [...variables, step] };
        }
        // A full build, run by hand or by a Bitbucket schedule (schedules live in the repository settings, not in this file).
        if (job.fullBuild) pipelines.custom = { ...(pipelines.custom as object), [`full-build-${ctx.stack}`]: [stepDocument(model, job, { FULL_BUILD: "true" })] };
    }
    // Pinned by digest: a re-pushed tag cannot change what runs with the deployment's credentials.
    const caches = Object.fromEntries(Object.entries(CACHES).map(([name, rel]) => [name, inProject(ctx, rel)]));
    const doc = { image: resolvePins(ctx.pins).bitbucketImage, definitions: { caches }, pipelines };
    return { "bitbucket-pipelines.yml": renderCiYaml(ctx.stack, doc) };
}
