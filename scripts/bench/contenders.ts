/**
 * The pull-request pipelines `bench:ci` races, as shell steps run in a checkout of the dbt
 * repository. "ours" is never restated here: it is the PR job of the rendered pipeline model, so
 * the benchmark always measures the CI the platform renders today.
 */
import { Job, PipelineModel, shq } from "../../components/pipelines";
import { LATEST_MANIFEST_KEY } from "../../components/aws/artifactStore";

/** One step of a job, run in its own bash (errexit, pipefail) as GitHub and Azure do. */
export interface BenchStep {
    name: string;
    lines: string[];
    /** success: only when all previous steps passed; always: also after a failure. */
    when: "success" | "always";
    continueOnError?: boolean;
}

export interface Contender {
    name: string;
    /** Plain environment of the job on top of the connection settings. */
    env: Record<string, string>;
    steps: BenchStep[];
    /** Schemas this contender builds into start with this; dropped after each run. */
    schemaPrefix: string;
}

/**
 * Installing Python packages costs every contender the same (and the venv already has them), so
 * the benchmark leaves that one line out; `dbt --version` and `dbt deps` still run.
 */
const INSTALL_LINE = /^python -m pip install /;

function fromJob(name: string, job: Job, env: Record<string, string>, schemaPrefix: string): Contender {
    return {
        name,
        env: { ...job.env, ...env },
        schemaPrefix,
        steps: job.steps.map((s) => ({ name: s.name, lines: s.lines.filter((l) => !INSTALL_LINE.test(l.trim())), when: s.when, continueOnError: s.continueOnError })),
    };
}

/** The rendered PR job; PR_NUMBER makes its schema `<prefix><n>`. */
export function oursPullRequest(model: PipelineModel, prNumber: number): Contender {
    const job = model.jobs.find((j) => j.id === "pull-request");
    if (!job) throw new Error(`stack ${model.context.stack} renders no pull-request job (no CI target)`);
    // The CI system's context for a same-repository PR into the main branch.
    const context = { PR_NUMBER: String(prNumber), PR_TARGET_BRANCH: model.context.mainBranch, IS_FORK: "false", RUN_ID: `bench-pr-${prNumber}` };
    return fromJob("ours", job, context, `${model.context.warehouse.pullRequestSchemas.prefix}${prNumber}`);
}

/** The rendered deploy job: a slim deploy (state:modified+ against the last good production manifest). */
export function oursDeploy(model: PipelineModel, runId: string): Contender {
    const job = model.jobs.find((j) => j.id === "deploy")!;
    return fromJob("ours-deploy", job, { RUN_ID: runId, SOURCE_BRANCH: model.context.mainBranch, FULL_REFRESH: "false" }, "");
}

/**
 * Our deploy job building everything (FULL_BUILD, as by hand or on dbt.fullBuildSchedule): the full
 * deploy the issue compares our PR job with. A plain `dbt build` of the whole project (seed 002's deploy)
 * deadlocks on Postgres's pg_rewrite when 4 threads replace tables that views share; ours retries that.
 */
export function fullDeploy(model: PipelineModel, runId: string): Contender {
    const deploy = oursDeploy(model, runId);
    return { ...deploy, name: "full-deploy", env: { ...deploy.env, FULL_BUILD: "true" } };
}

function manifestUrl(bucket: string): string {
    return shq(`s3://${bucket}/${LATEST_MANIFEST_KEY}`);
}

/**
 * Seed 000 (Bitbucket): deps, the manifest from the last deploy (Bitbucket Downloads there, the
 * same S3 object here), then `dbt seed`, `dbt run $DBT_FLAGS`, `dbt test $DBT_FLAGS` on the default
 * (CI) target with DBT_FLAGS="--defer --state target-deferred/ --select +state:modified".
 */
export function seed000(bucket: string, profilesDir: string, schema: string): Contender {
    return {
        name: "seed000",
        env: { DBT_PROFILES_DIR: profilesDir, DBT_CI_SCHEMA: schema },
        schemaPrefix: schema,
        steps: [
            {
                name: "Set up and build",
                lines: [
                    "dbt deps",
                    `mkdir -p target-deferred/; aws s3 cp ${manifestUrl(bucket)} target-deferred/manifest.json || true`,
                    'if [ -f target-deferred/manifest.json ]; then export DBT_FLAGS="--defer --state target-deferred/ --select +state:modified"; else export DBT_FLAGS=""; fi',
                    "dbt seed",
                    "dbt run $DBT_FLAGS",
                    "dbt test $DBT_FLAGS",
                ],
                when: "success",
            },
        ],
    };
}

/**
 * Seed 002 (GitHub Actions ci.yml): deps, fetch the manifest, source freshness (continue on
 * error), `dbt build --select state:modified+ --defer --state .artifacts/ --fail-fast`, and the
 * cleanup run-operation. The project has no dbt_project_evaluator, so that step is left out.
 */
export function seed002(bucket: string, profilesDir: string, schema: string): Contender {
    return {
        name: "seed002",
        env: { DBT_PROFILES_DIR: profilesDir, DBT_CI_SCHEMA: schema },
        schemaPrefix: schema,
        steps: [
            { name: "Install dbt packages", lines: ["dbt deps"], when: "success" },
            {
                name: "Fetch production manifest (for deferral)",
                lines: ["mkdir -p .artifacts", `aws s3 cp ${manifestUrl(bucket)} .artifacts/manifest.json || echo "No production manifest found"`],
                when: "success",
            },
            { name: "Check source freshness", lines: ["dbt source freshness --target ci"], when: "success", continueOnError: true },
            {
                name: "Run slim CI (changed models + downstream)",
                lines: [
                    "if [ -f .artifacts/manifest.json ]; then",
                    "  dbt build --target ci --select state:modified+ --defer --state .artifacts/ --fail-fast",
                    "else",
                    "  dbt build --target ci --fail-fast",
                    "fi",
                ],
                when: "success",
            },
            { name: "Clean up CI schema", lines: [`dbt run-operation drop_schema --args "{schema_name: ${schema}}" --target ci`], when: "always", continueOnError: true },
        ],
    };
}

/** Seed 002's drop_schema macro, for Postgres (no database qualifier on DROP SCHEMA). */
export const SEED002_DROP_SCHEMA_MACRO = [
    "{% macro drop_schema(schema_name) %}",
    "  {% set drop_query %}drop schema if exists {{ schema_name }} cascade{% endset %}",
    "  {% do run_query(drop_query) %}",
    "{% endmacro %}",
    "",
].join("\n");

/**
 * Seed 003 (Azure DevOps): a full `dbt run` and `dbt test --target ci` on every pull request. Its
 * project had no seeds; this one has, so a `dbt seed` comes first (without it the run fails).
 */
export function seed003(profilesDir: string, schema: string): Contender {
    return {
        name: "seed003",
        env: { DBT_PROFILES_DIR: profilesDir, DBT_CI_SCHEMA: schema },
        schemaPrefix: schema,
        steps: [{ name: "Run and test dbt", lines: ["dbt seed --target ci", "dbt run --target ci", "dbt test --target ci"], when: "success" }],
    };
}
