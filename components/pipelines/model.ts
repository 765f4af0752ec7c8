/**
 * One CI-system-neutral model of the dbt pipelines (seeds 000, 002, 003): slim CI on pull requests,
 * CD on the main branch (or a gated release for a promoted stage), with every name, bucket, role
 * and schema taken from the stack. Renderers turn it into Bitbucket, GitHub or Azure files.
 *
 * Shell lines only ever reference environment variables for secrets; the renderers decide where
 * those variables come from (secured variables, secrets, variable groups) and provide the
 * per-system context variables listed in CONTEXT_VARIABLES.
 */
import * as path from "path";
import { Document, isScalar, visit } from "yaml";
import { HISTORY_PREFIX, LATEST_MANIFEST_KEY, DOCS_PREFIX, DOCS_PREVIEW_PREFIX } from "../aws/artifactStore";
import type { CiSystem } from "../config/stack";
import { pullRequestPrefixProblem } from "../config/rules";
import { envAlias, PipelineWarehouse, TargetEnvVar, writeFileLines } from "../warehouse/contract";
import { localLoopContext, localLoopProblems } from "./localLoop";
import { deadlockRetryLines, DriverOptions, driverLine, FINALLY_PREFIX, OPTIONAL_PREFIX } from "./runner";
import { githubUpsertCommentScript } from "./githubComment";
import { AWSCLI_VERSION, PinOverrides, pinProblems, PYTHON_VERSION } from "./versions";
import { releaseProblems, releaseSteps, ScheduledRelease } from "./release";

/** Where the rendered profiles.yml lives in the dbt repository (DBT_PROFILES_DIR). */
export const PROFILES_DIR = ".ci";
/** Written (with the run id) by the PR job's driver once its cleanup dropped the PR's schemas; the always-run cleanup step then has nothing to do. */
export const PR_CLEANUP_DONE = "target/dbt-platform-pr-cleanup.done";
/** Where CI keeps the production manifest it defers to. */
export const STATE_DIR = ".state";
/** The dbt package whose tests are the project-evaluator gate (features.projectEvaluator). */
export const EVALUATOR_PACKAGE = "dbt_project_evaluator";
/** Default of dbt.manifestMaxAgeHours: an older production manifest is not deferred to. */
export const MANIFEST_MAX_AGE_HOURS = 240;
/** Default of dbt.fullBuildSchedule (cron, UTC): a weekly full build of a stage that deploys on every merge. */
export const FULL_BUILD_SCHEDULE = "0 4 * * 0";

/** Variables each renderer must set from the CI system's own context before any step runs. */
export const CONTEXT_VARIABLES = {
    /** Pull-request number (CI job only). */
    PR_NUMBER: "pull-request number",
    /** Branch the pull request merges into (CI job only; refs/heads/ is stripped). */
    PR_TARGET_BRANCH: "pull-request target branch",
    /** "true"/"True" when the pull request comes from a fork (CI job only; "false" where the system cannot tell). */
    IS_FORK: "pull request from a fork",
    /** Unique id of this run, for the manifest history key. */
    RUN_ID: "run id",
    /** Branch the run was built from (release guard). */
    SOURCE_BRANCH: "source branch name",
} as const;
export type ContextVariable = keyof typeof CONTEXT_VARIABLES;

/** Plain (resolved) inputs of the pipeline model; all values come from the stack. */
export interface PipelineContext {
    /** Stack name (dev, sandbox, staging, prod). */
    stack: string;
    /** CI system the files are for. */
    system: CiSystem;
    /** `workspace/repo`, `owner/repo` or `organization/project/repo`. */
    repository: string;
    /** Branch whose commits deploy. */
    mainBranch: string;
    /** projectDir: the dbt project's folder relative to the repository root (default `.`, the root). */
    dbt: {
        profile: string;
        version: string;
        pythonVersion: string;
        projectDir?: string;
        /** Hours after which the production manifest is too old to defer to (default MANIFEST_MAX_AGE_HOURS). */
        manifestMaxAgeHours?: number;
        /** Cron (UTC) of the full build of a deploy-on-merge stage (default FULL_BUILD_SCHEDULE). */
        fullBuildSchedule?: string;
    };
    /** dbt target names: the CI bot's (absent when the stack has no CI user) and the deploy bot's. */
    targets: { ci?: string; deploy: string };
    /**
     * The warehouse, as the contract describes it: adapter, each target's variables (secret, file,
     * per run), the PR-schema family and its drop macro, the deploy check. Nothing else of the
     * warehouse reaches the pipelines.
     */
    warehouse: PipelineWarehouse;
    /**
     * Secrets Manager secret name per target. When set for a job's target, the GitHub job reads the
     * target's variables from it (aws-secretsmanager-get-secrets, seed 002) instead of GitHub secrets.
     */
    credentialSecretNames?: Record<string, string>;
    /** development: deploy on every push to main; release: a stage, gated when it promotes from another. */
    environment: { kind: "development" | "release"; promotesFrom?: string };
    /** AWS wiring (aws.enabled): bucket, docs distribution and CI roles. */
    aws?: {
        region: string;
        bucket: string;
        distributionId?: string;
        /** Base URL of the docs site (https://…), for the docs preview's link. */
        docsUrl?: string;
        pullRequestRoleArn?: string;
        deployRoleArn: string;
        /** Azure DevOps service connections (AWS Toolkit, workload identity federation). */
        azureServiceConnection?: string;
        azureDeployServiceConnection?: string;
    };
    /** Run the dbt_project_evaluator package as a CI gate. */
    projectEvaluator: boolean;
    /**
     * Deployment environment of the deploy job (GitHub environment, Bitbucket deployment, Azure
     * environment); it must match the deploy role's OIDC trust, so the platform decides it.
     */
    deploymentEnvironment?: string;
    /** Overrides of the pinned actions and Bitbucket image (versions.ts holds the defaults). */
    pins?: PinOverrides;
    /** Scheduled runs (features.scheduledRuns): the deploy job also pushes the runner image and publishes the project (release.ts). */
    scheduled?: ScheduledRelease;
    /** The developers' local loop (localLoop.ts): rendered when the stack has AWS and developers; `target` is their dbt target. */
    localLoop?: { target: string };
}

/** A variable a job reads from the CI system's settings (created by CiSettings). */
export interface SettingVariable {
    name: string;
    /** Stored as a secured variable / secret. */
    secret: boolean;
}

/** One step: shell lines run in order with `set -e` semantics by every CI system we render. */
export interface Step {
    id: string;
    name: string;
    lines: string[];
    /** success: only when all previous steps passed; always: also after a failure (cleanup). */
    when: "success" | "always";
    /** A failure is reported but does not fail the job (e.g. source freshness). */
    continueOnError?: boolean;
    /** The step calls AWS and needs the job's role. */
    aws?: boolean;
    /** The step runs docker (Bitbucket needs the docker service for it). */
    docker?: boolean;
}

/** A job: one trigger, one dbt target, one set of settings variables. */
export interface Job {
    id: "pull-request" | "deploy";
    name: string;
    trigger: { kind: "pull-request" } | { kind: "push"; branch: string } | { kind: "manual"; branch: string };
    /** dbt target the job builds with. */
    target: string;
    /** Variables from the CI system's settings this job reads. */
    variables: SettingVariable[];
    /** Context variables the renderer must provide. */
    context: ContextVariable[];
    /** Plain environment, identical on every system. */
    env: Record<string, string>;
    /** AWS role the job assumes (the PR role or the deploy role). */
    awsRoleArn?: string;
    /**
     * The target's credential secret, read with the job's role before any step runs (GitHub:
     * aws-secretsmanager-get-secrets with parse-json-secrets): it exports `<alias>_<KEY>` per JSON key,
     * the variables `variables` would otherwise hold.
     */
    credentialSecret?: { secretId: string; alias: string };
    /** Deployment environment (Bitbucket deployment, GitHub environment, Azure environment). */
    deploymentEnvironment?: string;
    /** Runs of the same group: cancel the older one (PRs) or queue (deploys never overlap). */
    concurrency: { group: string; cancelInProgress: boolean };
    /** A manual release may rebuild a selection (FULL_REFRESH_SELECT) from scratch (FULL_REFRESH). */
    fullRefreshInput?: boolean;
    /**
     * The job builds state:modified+ unless the renderer sets FULL_BUILD=true (a run by hand or on
     * `schedule`, cron UTC) or, on Azure, BUILD_REASON is Schedule.
     */
    fullBuild?: { schedule?: string };
    steps: Step[];
}

/** The model for one stack. */
export interface PipelineModel {
    context: PipelineContext;
    jobs: Job[];
}

/**
 * A rendered CI file: the do-not-edit header, then the document (no YAML anchors: CI parsers differ on them).
 * `comments` maps a scalar value to a trailing comment (the tag of a SHA-pinned action).
 */
export function renderCiYaml(stack: string, doc: unknown, comments: Record<string, string> = {}): string {
    return renderYaml(`# Rendered by dbt-platform from stack ${stack}; do not edit by hand (npm run render -- --stack ${stack}).\n`, doc, comments);
}

/** `header`, then the document without anchors, with a trailing comment on each string scalar `comments` names (pinned `uses:` → tag). */
export function renderYaml(header: string, doc: unknown, comments: Record<string, string> = {}): string {
    const document = new Document(doc, { aliasDuplicateObjects: false });
    visit(document, {
        Scalar(_, node) {
            if (isScalar(node) && typeof node.value === "string" && Object.hasOwn(comments, node.value)) node.comment = ` ${comments[node.value]}`;
        },
    });
    return header + document.toString({ lineWidth: 0 });
}

/** Quotes a value for POSIX sh when it is not a plain word. */
export function shq(value: string): string {
    return /^[A-Za-z0-9_./:=@%+-]+$/.test(value) ? value : `'${value.replace(/'/g, `'"'"'`)}'`;
}

/** The environment variables of `target` that profiles.yml reads (the contract's targetEnv). */
function targetEnv(ctx: PipelineContext, target: string): TargetEnvVar[] {
    const vars = ctx.warehouse.targetEnv[target];
    if (!vars) throw new Error(`pipelines for stack ${ctx.stack}: the warehouse has no target ${target} (has: ${Object.keys(ctx.warehouse.targetEnv).join(", ") || "none"})`);
    return vars;
}

/**
 * The variable the PR job sets to the pull request's schema: the one the warehouse marks per run, or,
 * when CI shares a target with another duty, that target's `schema` field (dbt's target schema).
 */
function pullRequestSchemaVariable(vars: readonly TargetEnvVar[]): TargetEnvVar | undefined {
    return vars.find((v) => v.perRun === "pull-request-schema") ?? vars.find((v) => v.field === "schema");
}

/** The variables a job reads from the CI settings: every target variable except those it computes per run (`computed`). */
function targetVariables(ctx: PipelineContext, target: string, computed?: TargetEnvVar): SettingVariable[] {
    return targetEnv(ctx, target)
        .filter((v) => !(computed ? v === computed : v.perRun))
        .map((v) => ({ name: v.name, secret: v.secret }));
}

/** The Secrets Manager secret a GitHub job reads its target's variables from, when the stack has one. */
function credentialSecret(ctx: PipelineContext, target: string): Job["credentialSecret"] {
    const secretId = ctx.credentialSecretNames?.[target];
    return ctx.system === "github" && ctx.aws && secretId ? { secretId, alias: envAlias(target) } : undefined;
}

/**
 * The preamble lines that write a target's file-valued variables (key files) with mode 600. Bitbucket's
 * and Azure's secured variables cannot carry newlines, so there the value is base64 (CiSettings stores it so).
 */
function fileLines(ctx: PipelineContext, target: string): string[] {
    return writeFileLines(targetEnv(ctx, target), { base64: fileVariablesBase64(ctx.system) });
}

/** Whether file-valued variables of this CI system hold base64 (see fileLines). */
export function fileVariablesBase64(system: CiSystem): boolean {
    return system !== "github";
}

/** Problems with a context, each naming the field; empty when the model can be built. */
export function contextProblems(ctx: PipelineContext): string[] {
    const problems: string[] = [];
    const dirProblem = projectDirProblem(projectDir(ctx));
    if (dirProblem) problems.push(`dbt.projectDir = ${JSON.stringify(ctx.dbt.projectDir)}: ${dirProblem}`);
    // The stack config's own rule (in the warehouse's case): a prefix the config accepts never fails here, after registration.
    const prs = ctx.warehouse.pullRequestSchemas;
    const folded = prs.case === "upper" ? prs.prefix.toLowerCase() : prs.prefix;
    const prefixProblem = pullRequestPrefixProblem(folded) ?? (prs.case === "upper" && prs.prefix !== prs.prefix.toUpperCase() ? "an upper-case prefix (the warehouse folds names to upper case)" : undefined);
    if (prefixProblem) problems.push(`warehouse.pullRequestSchemas.prefix = ${JSON.stringify(prs.prefix)}: expected ${prefixProblem}`);
    const adapter = ctx.warehouse.adapter;
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(adapter.package)) problems.push(`warehouse.adapter.package = ${JSON.stringify(adapter.package)}: expected a PyPI package name such as dbt-postgres`);
    if (!/^\d+\.\d+\.\d+$/.test(adapter.version)) problems.push(`warehouse.adapter.version = ${JSON.stringify(adapter.version)}: expected an exact version such as 1.11.0`);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(prs.dropMacroName)) problems.push(`warehouse.pullRequestSchemas.dropMacroName = ${JSON.stringify(prs.dropMacroName)}: expected a macro name`);
    for (const t of [ctx.targets.ci, ctx.targets.deploy]) {
        if (t !== undefined && !ctx.warehouse.targetEnv[t]) problems.push(`targets: the warehouse has no target ${t} (has: ${Object.keys(ctx.warehouse.targetEnv).join(", ") || "none"})`);
    }
    if (ctx.targets.ci && ctx.warehouse.targetEnv[ctx.targets.ci] && !pullRequestSchemaVariable(ctx.warehouse.targetEnv[ctx.targets.ci])) {
        problems.push(`warehouse.targetEnv.${ctx.targets.ci}: expected the variable that carries the per-run pull-request schema`);
    }
    problems.push(...pinProblems(ctx.pins));
    // The default image digest is python:<PYTHON_VERSION>-slim's: another Python needs its own pinned image.
    if (ctx.system === "bitbucket" && ctx.dbt.pythonVersion !== PYTHON_VERSION && !ctx.pins?.bitbucketImage) {
        problems.push(`pins.bitbucketImage: expected an image pinned by digest for dbt.pythonVersion ${ctx.dbt.pythonVersion} (the default is python:${PYTHON_VERSION}-slim)`);
    }
    if (ctx.aws) {
        if (!ctx.aws.bucket) problems.push("aws.bucket: expected the artifacts bucket name");
        if (!ctx.aws.deployRoleArn) problems.push("aws.deployRoleArn: expected the deploy role ARN");
        if (ctx.targets.ci && !ctx.aws.pullRequestRoleArn) problems.push("aws.pullRequestRoleArn: expected the pull-request role ARN (the CI job reads the manifest)");
        if (ctx.system === "azure-devops" && !ctx.aws.azureServiceConnection) problems.push("aws.azureServiceConnection: expected the AWS service connection name");
    }
    problems.push(...releaseProblems(ctx));
    // The Makefile's values land in make and sh: a context that cannot render it fails here, with the pipelines.
    const loop = localLoopContext(ctx);
    if (loop) problems.push(...localLoopProblems(loop).map((p) => `local loop: ${p}`));
    return problems;
}

/** Why `dir` is not a usable dbt project folder (relative, inside the repository, shell-safe), or undefined. */
export function projectDirProblem(dir: string): string | undefined {
    if (dir === ".") return undefined;
    if (dir.split("/").some((seg) => seg === "." || seg === "..")) return "expected a path inside the repository (no . or .. segments)";
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*(\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/.test(dir)) return "expected . or a relative path such as transform/dbt (letters, digits, _ . -, no leading or trailing /)";
    return undefined;
}

/** A path of the dbt project (macros/, .ci/profiles.yml) relative to the repository root. */
export function inProject(ctx: PipelineContext, rel: string): string {
    return projectDir(ctx) === "." ? rel : path.posix.join(projectDir(ctx), rel);
}

function projectDir(ctx: PipelineContext): string {
    return ctx.dbt.projectDir ?? ".";
}

/** Prints the installed dbt-core and adapter versions. */
function versionsLine(adapterPackage: string): string {
    return `import importlib.metadata as m; print("dbt-core", m.version("dbt-core"), "${adapterPackage}", m.version("${adapterPackage}"))`;
}

/** The pinned Python packages the install step installs (the pip cache keys on them). */
export function pipPackages(ctx: PipelineContext): string[] {
    const adapter = ctx.warehouse.adapter;
    const pkgs = [`dbt-core==${ctx.dbt.version}`, `${adapter.package}==${adapter.version}`];
    if (ctx.aws) pkgs.push(`awscli==${AWSCLI_VERSION}`);
    return pkgs;
}

/** Inside dbt_packages: the key (depsKeyLine) of the packages.yml / package-lock.yml that `dbt deps` last installed there. */
export const DEPS_MARKER = ".dbt-platform-deps";

/**
 * Sets DEPS_KEY to a hash of dbt's version and the hashes of packages.yml and package-lock.yml (a missing
 * file simply leaves its line out). Run from the project folder; Azure's dbt_packages cache keys on it too.
 */
export function depsKeyLine(ctx: PipelineContext): string {
    return `DEPS_KEY="$({ echo ${shq(`dbt-core ${ctx.dbt.version}`)}; sha256sum packages.yml package-lock.yml 2>/dev/null || true; } | sha256sum | cut -c1-64)"`;
}

/**
 * `dbt deps`, unless the (cache-restored) dbt_packages was installed for this very package-lock.yml:
 * then deps would only reinstall the same versions. Without a lock file, deps resolves, so it always runs.
 * "driver": the decision only, in DBT_DEPS (`--deps` or empty) for the one-process driver, which runs
 * deps in its own process; `depsMarkerLines` records the install after it.
 */
function depsLines(ctx: PipelineContext, mode: "shell" | "driver" = "shell"): string[] {
    return [
        depsKeyLine(ctx),
        `if [ -f package-lock.yml ] && [ -d dbt_packages ] && [ "$(cat dbt_packages/${DEPS_MARKER} 2>/dev/null || true)" = "$DEPS_KEY" ]; then`,
        `  echo "dbt deps skipped: dbt_packages was restored for this package-lock.yml"`,
        ...(mode === "driver" ? ['  DBT_DEPS=""'] : []),
        // No package file: dbt deps would only say there is nothing to install.
        "elif [ ! -f packages.yml ] && [ ! -f dependencies.yml ]; then",
        `  echo "dbt deps skipped: the project has no packages.yml or dependencies.yml"`,
        ...(mode === "driver" ? ['  DBT_DEPS=""', "else", '  DBT_DEPS="--deps"', "fi"] : ["else", "  dbt deps", ...depsMarkerLines(ctx).map((l) => `  ${l}`), "fi"]),
    ];
}

/** After a successful install only, keyed on the files as deps left them (it writes a missing lock). */
function depsMarkerLines(ctx: PipelineContext): string[] {
    return [depsKeyLine(ctx), `mkdir -p dbt_packages && echo "$DEPS_KEY" > dbt_packages/${DEPS_MARKER}`];
}

/** deps: false when the job's one-process driver installs the packages (depsLines "driver"). */
function installStep(ctx: PipelineContext, deps = true): Step {
    const adapter = ctx.warehouse.adapter;
    return {
        id: "install",
        name: "Install dbt",
        // The installed versions, read locally: `dbt --version` also asks PyPI for the latest release on every run.
        lines: [`python -m pip install --quiet ${pipPackages(ctx).map(shq).join(" ")}`, `python -c ${shq(versionsLine(adapter.package))}`, ...(deps ? depsLines(ctx) : [])],
        when: "success",
    };
}

/**
 * Bitbucket's and Azure's caches hold folders: the PR job's (and the deploy's) partial-parse file is
 * copied between target/ and `<project>/PARTIAL_PARSE_CACHE_DIR/<dbt version>/<scope>.msgpack`, one file
 * per PR (dbt discards it when the profile, the PR schema included, changes) and per dbt version.
 */
export const PARTIAL_PARSE_CACHE_DIR = ".dbt-partial-parse";

/** Shell lines, run from the repository root, that copy the partial-parse file out of the cache folder (restore) or into it (save). */
export function partialParseCopyLines(ctx: PipelineContext, job: Job["id"], direction: "restore" | "save"): string[] {
    const scope = job === "pull-request" ? `${ctx.stack}-pr-$PR_NUMBER` : `${ctx.stack}-deploy`;
    const cached = `${inProject(ctx, PARTIAL_PARSE_CACHE_DIR)}/${ctx.dbt.version}/${scope}.msgpack`;
    const target = inProject(ctx, "target/partial_parse.msgpack");
    // The PR number is checked before it becomes part of a path (the job's own checks come later).
    const guard = job === "pull-request" ? [`case "$PR_NUMBER" in ''|*[!0-9]*) echo "PR_NUMBER must be the pull request number, got '$PR_NUMBER'" >&2; exit 1;; esac`] : [];
    const copy =
        direction === "restore"
            ? [
                  `if [ -f "${cached}" ]; then`,
                  `  mkdir -p ${shq(path.posix.dirname(target))} && cp "${cached}" ${shq(target)}`,
                  `  echo "Restored dbt's partial parse (${scope}, dbt ${ctx.dbt.version}) from the cache"`,
                  "else",
                  `  echo "No cached partial parse for ${scope} (dbt ${ctx.dbt.version}): dbt parses the project in full"`,
                  "fi",
              ]
            : [`if [ -f ${shq(target)} ]; then mkdir -p "$(dirname "${cached}")" && cp ${shq(target)} "${cached}"; fi`];
    return ["set -eu", ...guard, ...copy];
}

/** A line that fails the step, naming the variable, when a settings variable is unset or empty. */
function variableChecks(variables: readonly SettingVariable[], why: string, source = "the CI settings (CiSettings)"): string[] {
    const names = variables.map((v) => v.name).join(" ");
    return [`for v in ${names}; do if [ -z "$(printenv "$v" || true)" ]; then echo "$v is not set: it comes from ${source}. ${why}" >&2; exit 1; fi; done`];
}

function cdProject(ctx: PipelineContext): string[] {
    // Every step runs from the dbt project folder: relative DBT_PROFILES_DIR, .state and target/ resolve there.
    return projectDir(ctx) === "." ? [] : [`cd ${shq(projectDir(ctx))}`];
}

/** `--exclude package:dbt_project_evaluator` when the gate is on: its models never land in production or slim CI. */
function evaluatorExclude(ctx: PipelineContext): string {
    return ctx.projectEvaluator ? ` --exclude package:${EVALUATOR_PACKAGE}` : "";
}

/**
 * Refuses (deletes) a fetched manifest written by another dbt minor version, or older than the
 * allowed age: argv = manifest path, max age in hours. A manifest that cannot be read fails the step.
 */
export const MANIFEST_GUARD = [
    "import datetime as dt, importlib.metadata as md, json, os, sys",
    "path, max_hours = sys.argv[1], float(sys.argv[2])",
    "meta = json.load(open(path))['metadata']",
    "ours, theirs = md.version('dbt-core'), str(meta.get('dbt_version', 'unknown'))",
    "minor = lambda v: '.'.join(v.split('.')[:2])",
    "at = dt.datetime.fromisoformat(str(meta['generated_at']).replace('Z', '+00:00'))",
    "at = at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)",
    "age = (dt.datetime.now(dt.timezone.utc) - at).total_seconds() / 3600",
    "why = None",
    "if minor(theirs) != minor(ours): why = 'it was written by dbt %s and this job runs dbt %s (another minor version: state comparison and deferral are not reliable across them)' % (theirs, ours)",
    "elif age > max_hours: why = 'it is %.1f hours old (generated %s), older than dbt.manifestMaxAgeHours = %g' % (age, meta['generated_at'], max_hours)",
    "if why: os.remove(path); print('Refusing to defer to the production manifest: %s. This run builds everything.' % why)",
    "else: print('Production manifest: dbt %s, %.1f hours old' % (theirs, age))",
].join("\n");

function manifestFetchLines(ctx: PipelineContext & { aws: NonNullable<PipelineContext["aws"]> }, job: Job["id"]): string[] {
    const state = STATE_DIR;
    const url = `s3://${ctx.aws.bucket}/${LATEST_MANIFEST_KEY}`;
    const identity =
        ctx.system === "azure-devops"
            ? `the AWS service connection ${job === "deploy" ? (ctx.aws.azureDeployServiceConnection ?? ctx.aws.azureServiceConnection) : ctx.aws.azureServiceConnection}`
            : `role ${job === "deploy" ? ctx.aws.deployRoleArn : ctx.aws.pullRequestRoleArn}`;
    const maxAge = ctx.dbt.manifestMaxAgeHours ?? MANIFEST_MAX_AGE_HOURS;
    // Only a missing key means "no production manifest yet"; any other failure (credentials, 403, no bucket) fails the job.
    return [
        `mkdir -p ${state}`,
        `rm -f ${state}/manifest.json`,
        `if aws s3api get-object --bucket ${shq(ctx.aws.bucket)} --key ${shq(LATEST_MANIFEST_KEY)} ${state}/manifest.json > /dev/null 2> ${state}/fetch.err; then`,
        `  echo "Deferring to the production manifest ${url}"`,
        // Another dbt minor version or a stale manifest: refused with the reason, and the run builds everything.
        `  python -c ${shq(MANIFEST_GUARD)} ${state}/manifest.json ${maxAge}`,
        `elif grep -q 'NoSuchKey' ${state}/fetch.err; then`,
        `  rm -f ${state}/manifest.json`,
        `  echo "No production manifest yet (${url} does not exist): this run builds everything"`,
        "else",
        `  rm -f ${state}/manifest.json`,
        `  cat ${state}/fetch.err >&2`,
        `  echo ${shq(`Cannot fetch the production manifest: bucket ${ctx.aws.bucket}, key ${LATEST_MANIFEST_KEY}, as ${identity}. Failing instead of building everything.`)} >&2`,
        "  exit 1",
        "fi",
    ];
}

function pullRequestJob(ctx: PipelineContext, ci: string): Job {
    const prs = ctx.warehouse.pullRequestSchemas;
    const schemaVar = pullRequestSchemaVariable(targetEnv(ctx, ci))!.name;
    const state = STATE_DIR;
    const exclude = evaluatorExclude(ctx);
    // The contract's calling convention: with a run claim the reset marks the schema and the cleanup honours the mark.
    const dropArgs = (claim: boolean) =>
        prs.dropMacroCall === "claim" ? `--args "{schema_name: $${schemaVar}, run_id: '$RUN_ID', claim: ${claim}}"` : `--args "{schema_name: $${schemaVar}}"`;
    // Without the evaluator gate, everything dbt does runs in the build step's one process (runner.ts): deps when
    // no dbt_packages was restored, the reset, freshness, clone, build, docs and, last whatever happened, the cleanup.
    // The gate builds its models in the PR schema after that step, so with it deps and cleanup stay steps of their own.
    const oneProcess = !ctx.projectEvaluator;
    const install = installStep(ctx, !oneProcess);
    if (ctx.projectEvaluator) {
        // A missing package is an error before anything is built, not a gate that selects nothing.
        install.lines.push(
            `if [ -z "$(dbt --quiet ls --target ${ci} --resource-type test --select package:${EVALUATOR_PACKAGE} --output name)" ]; then`,
            `  echo "features.projectEvaluator is on, but the project has no ${EVALUATOR_PACKAGE} tests: add the package to packages.yml (dbt deps)" >&2`,
            "  exit 1",
            "fi",
        );
    }
    const steps: Step[] = [install];
    if (ctx.aws) {
        steps.push({
            id: "fetch-manifest",
            name: "Fetch the production manifest (deferral)",
            lines: manifestFetchLines({ ...ctx, aws: ctx.aws }, "pull-request"),
            when: "success",
            aws: true,
        });
    }
    // The reset drops the PR's whole schema family (a re-run starts clean) and marks the PR schema with this run,
    // so an older run's cleanup leaves it alone. Then source freshness (a warning), and with a production manifest
    // `dbt clone` of the modified incremental models that production has (dbt's documented CI pattern: they then
    // build incrementally on production's rows where the warehouse clones), and the slim build.
    const reset = `run-operation ${prs.dropMacroName} --target ${ci} ${dropArgs(true)}`;
    const cleanup = `run-operation ${prs.dropMacroName} --target ${ci} ${dropArgs(false)}`;
    const freshness = `${OPTIONAL_PREFIX}source freshness --target ${ci}`;
    // Docs preview (features.docsSite): `dbt docs generate` in the same process, after the build, on the same parse;
    // with deferral, unbuilt nodes document production's relations.
    const previews = Boolean(ctx.aws?.distributionId);
    const docs = (defer: boolean) => (previews ? [`docs generate --target ${ci}${defer ? ` --defer --state ${state}` : ""}${exclude}`] : []);
    const around = (commands: string[]) => (oneProcess ? [reset, ...commands, `${FINALLY_PREFIX}${cleanup}`] : [reset, ...commands]);
    const options: DriverOptions = oneProcess ? { deps: "$DBT_DEPS", finallyDone: { path: PR_CLEANUP_DONE, value: "$RUN_ID" } } : {};
    steps.push({
        id: "build",
        name: `Slim CI: reset the PR's schemas, source freshness (warning only), build modified models and their descendants${previews ? ", the docs preview" : ""}${oneProcess ? ", drop the PR's schemas" : ""}`,
        lines: [
            ...(oneProcess ? depsLines(ctx, "driver") : []),
            `if [ -f ${state}/manifest.json ]; then`,
            `  ${driverLine(around([freshness, `clone --target ${ci} --select state:modified+,config.materialized:incremental,state:old --state ${state}${exclude}`, `build --target ${ci} --select state:modified+ --defer --state ${state} --fail-fast${exclude}`, ...docs(true)]), options)}`,
            "else",
            `  ${driverLine(around([freshness, `build --target ${ci} --fail-fast${exclude}`, ...docs(false)]), options)}`,
            "fi",
            ...(oneProcess ? ['if [ -n "$DBT_DEPS" ]; then', ...depsMarkerLines(ctx).map((l) => `  ${l}`), "fi"] : []),
        ],
        when: "success",
    });
    if (ctx.aws && previews) steps.push(docsPreviewStep(ctx.aws.bucket, ctx.aws.docsUrl));
    steps.push(...docsPreviewCommentSteps(ctx));
    if (ctx.projectEvaluator) {
        steps.push({
            id: "project-evaluator",
            name: "dbt_project_evaluator gate",
            // The package's documented CI switch (its tests read the severity from this variable), then a check of
            // run_results that fails on any non-passing evaluator test even where the project lacks that override.
            lines: [
                "export DBT_PROJECT_EVALUATOR_SEVERITY=error",
                `if ! dbt build --target ${ci} --select package:${EVALUATOR_PACKAGE}; then echo "${EVALUATOR_PACKAGE}: violations (see above)" >&2; exit 1; fi`,
                `python -c ${shq(EVALUATOR_CHECK)}`,
            ],
            when: "success",
        });
    }
    steps.push({
        id: "cleanup",
        name: "Drop the pull request's schemas",
        // Always, also after a failure or a cancel: unless the build step's driver already dropped them in this run.
        lines: oneProcess
            ? [
                  `if [ "$(cat ${PR_CLEANUP_DONE} 2>/dev/null || true)" = "$RUN_ID" ]; then`,
                  `  echo "The build step already dropped the pull request's schemas"`,
                  "else",
                  `  dbt ${cleanup}`,
                  "fi",
              ]
            : [`dbt ${cleanup}`],
        when: "always",
        continueOnError: true,
    });
    // The PR schema is computed, so its variable is not a setting; with a credential secret, nothing is.
    const secret = credentialSecret(ctx, ci);
    const variables = targetVariables(ctx, ci, pullRequestSchemaVariable(targetEnv(ctx, ci)));
    return {
        id: "pull-request",
        name: "dbt slim CI",
        trigger: { kind: "pull-request" },
        target: ci,
        variables: secret ? [] : variables,
        context: ["PR_NUMBER", "PR_TARGET_BRANCH", "IS_FORK", "RUN_ID"],
        env: { DBT_PROFILES_DIR: PROFILES_DIR },
        awsRoleArn: ctx.aws?.pullRequestRoleArn,
        ...(secret ? { credentialSecret: secret } : {}),
        concurrency: { group: `dbt-ci-${ctx.stack}-pr-$PR_NUMBER`, cancelInProgress: true },
        // Each step may run in a fresh shell (GitHub, Azure) or after-script (Bitbucket): derive the schema in each.
        steps: withPreamble(steps, [
            `case "$PR_NUMBER" in ''|*[!0-9]*) echo "PR_NUMBER must be the pull request number, got '$PR_NUMBER'" >&2; exit 1;; esac`,
            `case "$RUN_ID" in ''|*[!A-Za-z0-9_.-]*) echo "RUN_ID must be the CI run id, got '$RUN_ID'" >&2; exit 1;; esac`,
            // Bitbucket's pull-requests trigger filters on the source branch: the target is checked here (GitHub and Azure filter on it too).
            `if [ "\${PR_TARGET_BRANCH#refs/heads/}" != ${shq(ctx.mainBranch)} ]; then echo "Slim CI runs for pull requests into ${ctx.mainBranch}; this one targets $PR_TARGET_BRANCH: skipped"; exit 0; fi`,
            // Fork policy: no warehouse or AWS credentials reach a fork's code, so its PR is skipped with a notice (a maintainer re-pushes the branch to the repository to test it).
            `case "$IS_FORK" in [Tt]rue) echo "Pull request from a fork: slim CI skipped (forks get no warehouse or AWS credentials; push the branch to this repository to run it)"; exit 0;; esac`,
            ...(secret
                ? variableChecks(variables, "Check the job's role may read it.", `the credential secret ${secret.secretId}`)
                : variableChecks(variables, "Pull requests from forks get no secrets (Bitbucket cannot tell us it is a fork).")),
            `export ${schemaVar}=${shq(prs.prefix)}"$PR_NUMBER"`,
            ...fileLines(ctx, ci),
            ...cdProject(ctx),
        ]),
    };
}

/**
 * Publishes the PR's `dbt docs generate` output to docs/pr/<n>/ on the docs site's bucket (the PR role
 * may write only there). no-cache: CloudFront revalidates, so a re-push shows at once without an invalidation
 * (which the PR role cannot make). A lifecycle rule expires the prefix; the janitor removes it when the PR closes,
 * and on GitHub the workflow's own close job at once (docsPreviewRemoveLines).
 */
function docsPreviewStep(bucket: string, docsUrl: string | undefined): Step {
    const dest = `s3://${bucket}/${DOCS_PREVIEW_PREFIX}`;
    return {
        id: DOCS_PREVIEW_STEP,
        name: "Publish the docs preview (docs/pr/<n>/)",
        lines: [
            "for f in index.html manifest.json catalog.json; do",
            `  aws s3 cp "target/$f" ${shq(dest)}"$PR_NUMBER/$f" --cache-control no-cache --only-show-errors`,
            "done",
            `echo "Docs preview: "${docsPreviewUrl(docsUrl)}" (${dest}$PR_NUMBER/)"`,
        ],
        when: "success",
        aws: true,
    };
}

/** Id of the step that publishes the docs preview (the PR job has it exactly when previews are on). */
export const DOCS_PREVIEW_STEP = "docs-preview";

/**
 * GitHub's `pull_request: closed` job: removes the closed pull request's preview at once (the lifecycle rule and
 * the janitor remain the backstop, and the only removal on Bitbucket and Azure DevOps). It checks nothing out: no
 * code of the pull request runs with the role. Delete markers only: the bucket is versioned.
 */
export function docsPreviewRemoveLines(bucket: string): string[] {
    const dest = `s3://${bucket}/${DOCS_PREVIEW_PREFIX}`;
    return [
        "set -eu",
        `case "$PR_NUMBER" in ''|*[!0-9]*) echo "PR_NUMBER must be the pull request number, got '$PR_NUMBER'" >&2; exit 1;; esac`,
        `python -m pip install --quiet ${shq(`awscli==${AWSCLI_VERSION}`)}`,
        `aws s3 rm ${shq(dest)}"$PR_NUMBER/" --recursive --only-show-errors`,
        `echo "Docs preview removed: ${dest}$PR_NUMBER/ (pull request #$PR_NUMBER closed)"`,
    ];
}

/** The preview's link as a shell word: the site serves the docs prefix at its root (origin path), so the preview is /pr/<n>/ there. */
function docsPreviewUrl(docsUrl: string | undefined): string {
    const site = docsUrl ? docsUrl.replace(/\/+$/, "") : "";
    return `${shq(`${site}/${DOCS_PREVIEW_PREFIX.slice(DOCS_PREFIX.length)}`)}"$PR_NUMBER/index.html"`;
}

/** Id of the step that posts the docs preview's URL on the pull request: GitHub's renderer gives it the token and the job `pull-requests: write`. */
export const DOCS_PREVIEW_COMMENT_STEP = "docs-preview-comment";
/** Where that step writes the comment body (in the dbt project's target/, beside the published docs). */
export const DOCS_PREVIEW_COMMENT_FILE = "target/docs-preview-comment.md";

/** The hidden marker of a stack's docs preview comment (per stack: one repository may render several stacks' CI). */
export function docsPreviewCommentMarker(stack: string): string {
    return `<!-- dbt-platform:docs-preview:${stack} -->`;
}

/**
 * GitHub: after the preview is published, one PR comment carrying its URL, found by its marker and updated in
 * place on every re-push (githubComment.ts, the script the platform repository's preview comment runs), with the
 * job's GITHUB_TOKEN. A failure is a warning annotation, never a failed job: the preview is published and its URL
 * printed already, and some tokens cannot comment at all (Dependabot's pull requests get a read-only token).
 * Bitbucket and Azure DevOps: no step; the URL is in the job log (docsPreviewStep).
 */
export function docsPreviewCommentSteps(ctx: PipelineContext): Step[] {
    if (ctx.system !== "github" || !ctx.aws?.distributionId || !ctx.aws.docsUrl) return [];
    const marker = docsPreviewCommentMarker(ctx.stack);
    const script = githubUpsertCommentScript({ marker, bodyFile: DOCS_PREVIEW_COMMENT_FILE, missingBody: "The docs preview comment has no body; see the run log." });
    return [
        {
            id: DOCS_PREVIEW_COMMENT_STEP,
            name: "Post or update the docs preview comment",
            lines: [
                `url=${docsPreviewUrl(ctx.aws.docsUrl)}`,
                'run="${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-}/actions/runs/${GITHUB_RUN_ID:-}"',
                "{",
                `  echo ${shq(marker)}`,
                `  echo ${shq(`**dbt docs preview** (stack ${ctx.stack}): `)}"$url"`,
                "  echo",
                `  echo "Generated by [this run]($run) from the pull request's latest push; this comment is updated in place on every push."`,
                `} > ${DOCS_PREVIEW_COMMENT_FILE}`,
                `if node -e ${shq(script)}; then`,
                `  echo "Docs preview comment on pull request #$PR_NUMBER is up to date: $url"`,
                "else",
                // A workflow command: the warning shows on the run's summary; the job's result stays the build's.
                `  echo "::warning title=Docs preview comment::Could not post or update the pull request comment (the token needs pull-requests: write; Dependabot's is read-only). The preview is published: $url"`,
                "fi",
            ],
            when: "success",
        },
    ];
}

/** Fails when any dbt_project_evaluator test in target/run_results.json did not pass (warn included). */
const EVALUATOR_CHECK = [
    "import json, sys",
    "rs = [r for r in json.load(open('target/run_results.json'))['results'] if r['unique_id'].startswith('test." + "dbt_project_evaluator" + ".')]",
    "bad = [r['unique_id'] + ': ' + r['status'] for r in rs if r['status'] != 'pass']",
    "print('dbt_project_evaluator: %d tests, %d not passing' % (len(rs), len(bad)))",
    "[print('  ' + b, file=sys.stderr) for b in bad]",
    "sys.exit(1 if bad or not rs else 0)",
].join("\n");

function deployJob(ctx: PipelineContext): Job {
    const target = ctx.targets.deploy;
    const gated = ctx.environment.kind === "release" && ctx.environment.promotesFrom !== undefined;
    const steps: Step[] = [];
    if (gated) {
        steps.push({
            id: "guard",
            name: `Release only from ${ctx.mainBranch}`,
            // Seed 003: releases are allowed only from artifacts built on the main branch.
            lines: [
                `if [ "\${SOURCE_BRANCH#refs/heads/}" != ${shq(ctx.mainBranch)} ]; then echo "Releases to ${ctx.stack} are only allowed from ${ctx.mainBranch} (this run: $SOURCE_BRANCH)" >&2; exit 1; fi`,
            ],
            when: "success",
        });
    }
    const exclude = evaluatorExclude(ctx);
    steps.push(installStep(ctx));
    const check = ctx.warehouse.deployCheck;
    if (check) {
        steps.push({
            id: "schema-ownership",
            name: "Refuse target schemas the production role does not own",
            // Before anything is written: a schema another role created (squatted) fails the job, naming it and its owner.
            lines: [`dbt run-operation ${check.macroName} --target ${target}`],
            when: "success",
        });
    }
    if (ctx.aws) {
        steps.push({
            id: "fetch-manifest",
            name: "Fetch the last good production manifest (slim deploy)",
            lines: manifestFetchLines({ ...ctx, aws: ctx.aws }, "deploy"),
            when: "success",
            aws: true,
        });
    }
    steps.push({
        id: "build",
        name: `Build ${ctx.stack} (target ${target})`,
        // A full refresh needs a selector and never touches seeds (their drop cascades to every dependent view);
        // the regular build then brings the whole project up to date.
        // A build that fails on a Postgres deadlock reruns what failed or was skipped (runner.ts).
        lines: [
            ...deadlockRetryLines(),
            'if [ "${FULL_REFRESH:-false}" = "true" ]; then',
            '  case "${FULL_REFRESH_SELECT:-}" in *[![:space:]]*) ;; *) echo "Refusing a full refresh without a selector: set FULL_REFRESH_SELECT (dbt --select syntax, e.g. fct_orders+)" >&2; exit 1;; esac',
            `  dbt_deadlock_retry dbt build --target ${target} --fail-fast --full-refresh --select "$FULL_REFRESH_SELECT" --exclude resource_type:seed${exclude}`,
            "fi",
            ...slimDeployLines(ctx, target, exclude),
        ],
        when: "success",
    });
    if (ctx.aws) {
        const bucket = ctx.aws.bucket;
        steps.push({
            id: "publish-manifest",
            name: "Publish the manifest (history, then latest)",
            // History first: `latest` only ever points at a run whose history copy exists.
            lines: [
                `aws s3 cp target/manifest.json ${shq(`s3://${bucket}/${HISTORY_PREFIX}`)}"$RUN_ID"/manifest.json`,
                `aws s3 cp target/run_results.json ${shq(`s3://${bucket}/${HISTORY_PREFIX}`)}"$RUN_ID"/run_results.json`,
                `aws s3 cp target/manifest.json ${shq(`s3://${bucket}/${LATEST_MANIFEST_KEY}`)}`,
            ],
            when: "success",
            aws: true,
        });
        if (ctx.aws.distributionId) {
            steps.push({
                id: "docs",
                name: "Generate and publish dbt docs",
                lines: [
                    `dbt docs generate --target ${target}`,
                    `aws s3 sync target/ ${shq(`s3://${bucket}/${DOCS_PREFIX}`)} --delete --exclude '*' --include index.html --include catalog.json --include manifest.json --include run_results.json`,
                    `aws cloudfront create-invalidation --distribution-id ${shq(ctx.aws.distributionId)} --paths '/*'`,
                ],
                when: "success",
                aws: true,
            });
        }
    }
    // Scheduled runs: after a successful deploy, the runner image and the project by commit.
    steps.push(...releaseSteps(ctx));
    const context: ContextVariable[] = gated ? ["SOURCE_BRANCH", "RUN_ID"] : ["RUN_ID"];
    const secret = credentialSecret(ctx, target);
    const variables = targetVariables(ctx, target);
    return {
        id: "deploy",
        name: gated ? `dbt release to ${ctx.stack}` : `dbt deploy ${ctx.stack}`,
        trigger: gated ? { kind: "manual", branch: ctx.mainBranch } : { kind: "push", branch: ctx.mainBranch },
        target,
        variables: secret ? [] : variables,
        context,
        env: { DBT_PROFILES_DIR: PROFILES_DIR },
        awsRoleArn: ctx.aws?.deployRoleArn,
        ...(secret ? { credentialSecret: secret } : {}),
        deploymentEnvironment: ctx.deploymentEnvironment,
        concurrency: { group: `dbt-deploy-${ctx.stack}`, cancelInProgress: false },
        fullRefreshInput: gated,
        // A stage that deploys on every merge also gets a scheduled full build; a gated release only by hand.
        fullBuild: gated ? {} : { schedule: ctx.dbt.fullBuildSchedule ?? FULL_BUILD_SCHEDULE },
        steps: withPreamble(steps, [
            ...(secret ? variableChecks(variables, "Check the job's role may read it.", `the credential secret ${secret.secretId}`) : variableChecks(variables, "Check the deployment's variables.")),
            ...fileLines(ctx, target),
            ...cdProject(ctx),
        ]),
    };
}

/**
 * dbt Cloud's merge job: with the last good production manifest, only state:modified+ is built
 * (unselected parents already are production); everything when there is none, when it was refused,
 * by hand or on the schedule (FULL_BUILD, Azure's BUILD_REASON), and after a full refresh.
 */
function slimDeployLines(ctx: PipelineContext, target: string, exclude: string): string[] {
    const full = `dbt_deadlock_retry dbt build --target ${target} --fail-fast${exclude}`;
    if (!ctx.aws) return [full];
    const state = STATE_DIR;
    return [
        'case "${FULL_BUILD:-false}:${FULL_REFRESH:-false}:${BUILD_REASON:-}" in',
        `  [Tt]rue:*|*:[Tt]rue:*|*:Schedule) if [ -f ${state}/manifest.json ]; then echo "Full build (by hand, on the schedule or after a full refresh): not deferring to the production manifest"; rm -f ${state}/manifest.json; fi;;`,
        "esac",
        `if [ -f ${state}/manifest.json ]; then`,
        `  echo "Slim deploy: building state:modified+ against the last good production manifest"`,
        `  dbt_deadlock_retry dbt build --target ${target} --fail-fast --select state:modified+ --defer --state ${state}${exclude}`,
        "else",
        `  ${full}`,
        "fi",
    ];
}

/** Every step fails on its first failing line, whatever shell the CI system starts, and derives its own environment. */
function withPreamble(steps: Step[], preamble: string[]): Step[] {
    return steps.map((s) => ({ ...s, lines: ["set -eu", ...preamble, ...s.lines] }));
}

/** Builds the pipeline model of a stack; throws naming every bad field. */
export function pipelineModel(ctx: PipelineContext): PipelineModel {
    const problems = contextProblems(ctx);
    if (problems.length > 0) throw new Error(`pipelines for stack ${ctx.stack}: invalid context:\n  - ${problems.join("\n  - ")}`);
    const jobs: Job[] = [];
    if (ctx.targets.ci) jobs.push(pullRequestJob(ctx, ctx.targets.ci));
    jobs.push(deployJob(ctx));
    return { context: ctx, jobs };
}

/** Every settings variable the model reads, per job. */
export function settingVariables(model: PipelineModel): Partial<Record<Job["id"], SettingVariable[]>> {
    // Partial: a stack without a CI user has no pull-request job.
    return Object.fromEntries(model.jobs.map((j) => [j.id, j.variables]));
}
