/**
 * Azure Pipelines: one `azure-pipelines.yml` with a pull-request stage and a deploy stage that
 * runs as a deployment job in an environment (approvals and the exclusive lock live there).
 *
 * Seed 003 keeps profiles.yml as a secure file; so do we: the job downloads it and points
 * DBT_PROFILES_DIR at it. Secret variables of a variable group are not exported to scripts by
 * Azure, so every settings variable is mapped explicitly in `env`.
 */
import { ContextVariable, depsKeyLine, inProject, Job, PARTIAL_PARSE_CACHE_DIR, partialParseCopyLines, PipelineContext, PipelineModel, pipPackages, renderCiYaml, shq } from "./model";

const CONTEXT: Record<ContextVariable, string> = {
    PR_NUMBER: "$(System.PullRequest.PullRequestId)",
    PR_TARGET_BRANCH: "$(System.PullRequest.TargetBranch)",
    IS_FORK: "$(System.PullRequest.IsFork)",
    RUN_ID: "$(Build.BuildId)",
    SOURCE_BRANCH: "$(Build.SourceBranch)",
};

/** Names of the Azure DevOps objects the pipeline references (CiSettings creates them). */
export function azureNames(stack: string): {
    variableGroup: (job: Job["id"]) => string;
    profilesSecureFile: (job: Job["id"]) => string;
    pipeline: string;
} {
    return {
        variableGroup: (job) => `dbt-${stack}-${job}`,
        // One file per job: the deploy job's can then be main-only on every stage, while PR runs keep theirs.
        profilesSecureFile: (job) => (job === "deploy" ? `dbt-${stack}-profiles-deploy.yml` : `dbt-${stack}-profiles.yml`),
        pipeline: `dbt-${stack}`,
    };
}

const PROFILES_STEP_NAME = "profiles";

/** pip's cache folder (PIP_CACHE_DIR of every step), outside the checkout. */
const PIP_CACHE = "$(Pipeline.Workspace)/.pip";
/** The dbt_packages cache key file: depsKeyLine's hash of packages.yml and package-lock.yml. */
const DEPS_KEY_FILE = "$(Pipeline.Workspace)/dbt-cache-keys/dbt_packages";

/**
 * Cache@2 tasks: pip; dbt_packages keyed on packages.yml / package-lock.yml and dbt's version; the
 * partial-parse folder per PR (the deploy's per stack) and dbt version. A key file must exist when the
 * task runs and a project need not commit package-lock.yml, so the dbt_packages key is a file holding
 * the hash of whichever of the two exist (the one the install step's marker holds). Literals are quoted:
 * an unquoted segment with a dot or slash is read as a file path. A cache key is saved once, so the
 * partial-parse key ends with the build id and is restored from the newest of its prefix.
 */
function cacheSteps(ctx: PipelineContext, job: Job): Record<string, unknown>[] {
    const version = `"${ctx.dbt.version}"`;
    const scope = job.id === "pull-request" ? `"${ctx.stack}-pr-$(System.PullRequest.PullRequestId)"` : `"${ctx.stack}-deploy"`;
    const parsePrefix = `dbt_partial_parse | ${version} | ${scope}`;
    const pipPrefix = `pip | "$(Agent.OS)" | "python-${ctx.dbt.pythonVersion}"`;
    const project = inProject(ctx, ".");
    return [
        { task: "Cache@2", displayName: "Cache pip", inputs: { key: `${pipPrefix} | "${pipPackages(ctx).join(" ")}"`, restoreKeys: pipPrefix, path: PIP_CACHE } },
        {
            bash: ["set -eu", `mkdir -p "$(dirname "${DEPS_KEY_FILE}")"`, ...(project === "." ? [] : [`cd ${shq(project)}`]), depsKeyLine(ctx), `echo "$DEPS_KEY" > "${DEPS_KEY_FILE}"`].join("\n"),
            displayName: "dbt_packages cache key (packages.yml, package-lock.yml)",
        },
        { task: "Cache@2", displayName: "Cache dbt packages", inputs: { key: `dbt_packages | ${version} | ${DEPS_KEY_FILE}`, path: inProject(ctx, "dbt_packages") } },
        {
            task: "Cache@2",
            displayName: "Cache dbt partial parsing",
            inputs: { key: `${parsePrefix} | "$(Build.BuildId)"`, restoreKeys: parsePrefix, path: inProject(ctx, PARTIAL_PARSE_CACHE_DIR) },
        },
    ];
}

function steps(model: PipelineModel, job: Job): Record<string, unknown>[] {
    const ctx = model.context;
    const names = azureNames(ctx.stack);
    const env: Record<string, string> = {};
    for (const c of job.context) env[c] = CONTEXT[c];
    if (job.fullRefreshInput) {
        env.FULL_REFRESH = "${{ parameters.fullRefresh }}";
        env.FULL_REFRESH_SELECT = "${{ parameters.fullRefreshSelect }}";
    }
    if (job.fullBuild) {
        // A run by hand with fullBuild, or a scheduled run (BUILD_REASON Schedule), builds everything.
        env.FULL_BUILD = "${{ parameters.fullBuild }}";
        env.BUILD_REASON = "$(Build.Reason)";
    }
    for (const v of job.variables) env[v.name] = `$(${v.name})`;
    // profiles.yml comes from the secure file, so DBT_PROFILES_DIR points at its folder.
    env.DBT_PROFILES_DIR = "$(Agent.TempDirectory)/dbt-profiles";
    env.PIP_CACHE_DIR = PIP_CACHE;
    // The partial-parse copies read only the PR number: no warehouse credentials reach them.
    const copyEnv = job.context.includes("PR_NUMBER") ? { env: { PR_NUMBER: CONTEXT.PR_NUMBER } } : {};
    const out: Record<string, unknown>[] = [
        { checkout: "self" },
        { task: "UsePythonVersion@0", displayName: "Use Python", inputs: { versionSpec: ctx.dbt.pythonVersion } },
        { task: "DownloadSecureFile@1", name: PROFILES_STEP_NAME, displayName: "Download profiles.yml", inputs: { secureFile: names.profilesSecureFile(job.id) } },
        {
            bash: [
                "set -eu",
                'mkdir -p "$(Agent.TempDirectory)/dbt-profiles"',
                `cp "$(${PROFILES_STEP_NAME}.secureFilePath)" "$(Agent.TempDirectory)/dbt-profiles/profiles.yml"`,
            ].join("\n"),
            displayName: "Install profiles.yml",
        },
        ...cacheSteps(ctx, job),
        { bash: partialParseCopyLines(ctx, job.id, "restore").join("\n"), displayName: "Restore dbt's partial parse from the cache", ...copyEnv },
    ];
    for (const s of job.steps) {
        const common: Record<string, unknown> = { displayName: s.name };
        if (s.when === "always") common.condition = "always()";
        if (s.continueOnError) common.continueOnError = true;
        const script = s.lines.join("\n");
        if (s.aws && ctx.aws) {
            out.push({
                task: "AWSShellScript@1",
                ...common,
                inputs: {
                    awsCredentials: job.id === "deploy" ? (ctx.aws.azureDeployServiceConnection ?? ctx.aws.azureServiceConnection) : ctx.aws.azureServiceConnection,
                    regionName: ctx.aws.region,
                    scriptType: "inline",
                    inlineScript: script,
                },
                env,
            });
        } else {
            out.push({ bash: script, ...common, env });
        }
    }
    // After a successful run (Cache@2 saves only then), the post-job step uploads the folder.
    out.push({ bash: partialParseCopyLines(ctx, job.id, "save").join("\n"), displayName: "Save dbt's partial parse to the cache", ...copyEnv });
    return out;
}

/** Renders azure-pipelines.yml. */
export function renderAzure(model: PipelineModel): Record<string, string> {
    const ctx = model.context;
    const names = azureNames(ctx.stack);
    const stages: Record<string, unknown>[] = [];
    const pr = model.jobs.find((j) => j.id === "pull-request");
    const deploy = model.jobs.find((j) => j.id === "deploy")!;
    if (pr) {
        stages.push({
            stage: "slim_ci",
            displayName: pr.name,
            condition: "eq(variables['Build.Reason'], 'PullRequest')",
            jobs: [{ job: "slim_ci", displayName: pr.name, timeoutInMinutes: 120, variables: [{ group: names.variableGroup(pr.id) }], steps: steps(model, pr) }],
        });
    }
    const deployJob: Record<string, unknown> = {
        deployment: "deploy",
        displayName: deploy.name,
        timeoutInMinutes: 120,
        environment: deploy.deploymentEnvironment ?? ctx.stack,
        variables: [{ group: names.variableGroup(deploy.id) }],
        strategy: { runOnce: { deploy: { steps: steps(model, deploy) } } },
    };
    stages.push({
        stage: "deploy",
        displayName: deploy.name,
        dependsOn: [],
        // Deploys run only for the main branch, never for a pull request; a promoted stage also waits for its environment's approval.
        condition: `and(ne(variables['Build.Reason'], 'PullRequest'), eq(variables['Build.SourceBranch'], 'refs/heads/${ctx.mainBranch}'))`,
        // With the environment's exclusive lock check, a newer deploy waits instead of overlapping.
        lockBehavior: "sequential",
        jobs: [deployJob],
    });
    const doc: Record<string, unknown> = {};
    const parameters: Record<string, unknown>[] = [];
    if (deploy.fullRefreshInput) {
        parameters.push(
            { name: "fullRefresh", displayName: "Rebuild the selection below from scratch (--full-refresh; seeds are never refreshed)", type: "boolean", default: false },
            { name: "fullRefreshSelect", displayName: "dbt selector to rebuild from scratch (required with fullRefresh), e.g. fct_orders+", type: "string", default: " " },
        );
    }
    if (deploy.fullBuild) parameters.push({ name: "fullBuild", displayName: "Build the whole project, not only what changed since the last good production manifest", type: "boolean", default: false });
    if (parameters.length > 0) doc.parameters = parameters;
    doc.trigger = deploy.trigger.kind === "push" ? { batch: true, branches: { include: [ctx.mainBranch] } } : "none";
    // always: the full build runs even when nothing was merged since the last scheduled run.
    if (deploy.fullBuild?.schedule) doc.schedules = [{ cron: deploy.fullBuild.schedule, displayName: `Full build of ${ctx.stack}`, branches: { include: [ctx.mainBranch] }, always: true }];
    doc.pr = pr ? { autoCancel: true, branches: { include: [ctx.mainBranch] } } : "none";
    doc.pool = { vmImage: "ubuntu-latest" };
    doc.stages = stages;
    return { "azure-pipelines.yml": renderCiYaml(ctx.stack, doc) };
}
