/**
 * The platform repository's own pipelines (this Pulumi program, not the dbt project): on pull
 * requests `pulumi preview --diff` per stack with the policy pack enforced, one PR comment updated in
 * place (preview summary, SQL-plan diff, access-matrix diff); on main `pulumi up` stack by stack with
 * an approval before each release stage, one run per stack at a time, every stage on the commit
 * that passed the one before; and a scheduled drift audit. The shell each system runs is built here
 * once; github.ts, bitbucket.ts and azure.ts only wrap it in their YAML.
 */
import { S3_BUCKET_NAME } from "../../config/rules";
import { renderYaml, shq } from "../model";
import { JanitorJob, janitorProblems } from "./janitor";

/** Where Pulumi keeps state and how it encrypts secrets. */
export type PlatformBackend =
    | {
          kind: "s3";
          /** State bucket (the backend URL is s3://<bucket>?region=<region>). */
          bucket: string;
          region: string;
          /** Role the pull-request jobs assume by OIDC: read state, decrypt with the KMS key, no writes. */
          previewRoleArn: string;
          /** Role the deploy jobs assume by OIDC: write state, use the KMS key. */
          deployRoleArn: string;
          /** Azure DevOps AWS service connections (AWS Toolkit, OIDC) for preview and deploy. */
          azureServiceConnections?: { preview: string; deploy: string };
      }
    | {
          kind: "pulumi-cloud";
          /** Pulumi Cloud organisation owning the stacks. */
          organization: string;
      };

export interface PlatformPipelineArgs {
    /** Stacks in promotion order: the first deploys on merge, every later one after an approval. */
    stacks: string[];
    mainBranch: string;
    backend: PlatformBackend;
    /** Cron (UTC) of the scheduled drift audit. */
    auditCron: string;
    /** Pulumi CLI version the jobs install. */
    pulumiVersion: string;
    nodeVersion: string;
    /** The PR-schema janitor per stack with scheduled runs (janitor.ts); none when absent. */
    janitor?: JanitorJob[];
    /** Warehouse kind per stack (default postgres): decides the audit job's login secrets and collector. */
    warehouseKinds?: Record<string, AuditWarehouseKind>;
}

/** The warehouse kinds the drift audit reads. */
export type AuditWarehouseKind = "postgres" | "redshift" | "snowflake";

/** The hidden marker that identifies the platform's own PR comment, so it is updated, not repeated. */
export const COMMENT_MARKER = "<!-- dbt-platform:platform-preview -->";
/** File the preview job writes the comment body to. */
export const COMMENT_FILE = "platform-preview-comment.md";

/** Problems with the arguments, each naming the field; empty when they can be rendered. */
export function platformProblems(args: PlatformPipelineArgs): string[] {
    const problems: string[] = [];
    if (args.stacks.length === 0) problems.push("stacks: expected at least one stack");
    for (const s of args.stacks) if (!/^[a-z][a-z0-9-]*$/.test(s)) problems.push(`stacks: ${JSON.stringify(s)} is not a stack name (lower-case letters, digits, -)`);
    if (new Set(args.stacks).size !== args.stacks.length) problems.push("stacks: a stack is listed twice");
    if (!/^[A-Za-z0-9._/-]+$/.test(args.mainBranch)) problems.push(`mainBranch: ${JSON.stringify(args.mainBranch)} is not a branch name`);
    if (args.auditCron.trim().split(/\s+/).length !== 5) problems.push(`auditCron: ${JSON.stringify(args.auditCron)} is not a five-field cron expression`);
    if (args.backend.kind === "s3") {
        if (!S3_BUCKET_NAME.test(args.backend.bucket)) problems.push(`backend.bucket: ${JSON.stringify(args.backend.bucket)} is not an S3 bucket name`);
        for (const k of ["previewRoleArn", "deployRoleArn"] as const) {
            if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(args.backend[k])) problems.push(`backend.${k}: ${JSON.stringify(args.backend[k])} is not an IAM role ARN`);
        }
    } else if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(args.backend.organization)) {
        problems.push(`backend.organization: ${JSON.stringify(args.backend.organization)} is not a Pulumi organisation name`);
    }
    problems.push(...janitorProblems(args.janitor, args.stacks));
    return problems;
}

export function validatePlatformArgs(args: PlatformPipelineArgs): void {
    const problems = platformProblems(args);
    if (problems.length) throw new Error(`platform pipelines: ${problems.join("; ")}`);
}

/** The fully qualified stack name the CLI is given. */
export function stackRef(args: PlatformPipelineArgs, stack: string): string {
    return args.backend.kind === "pulumi-cloud" ? `${args.backend.organization}/${stack}` : stack;
}

/** Environment every Pulumi job sets: the backend URL (no secret; credentials come from OIDC or the CI's secret store). */
export function backendEnv(args: PlatformPipelineArgs): Record<string, string> {
    return args.backend.kind === "s3"
        ? { PULUMI_BACKEND_URL: `s3://${args.backend.bucket}?region=${args.backend.region}`, AWS_REGION: args.backend.region }
        : { PULUMI_BACKEND_URL: "https://api.pulumi.com" };
}

/** Installs the project and logs in to the backend (PULUMI_ACCESS_TOKEN for Pulumi Cloud comes from the CI's secrets). */
export function setupLines(): string[] {
    // The policy pack is its own Node project: pulumi runs it from policy/ with policy/node_modules.
    return ["npm ci", "npm install --prefix policy --no-audit --no-fund", 'pulumi login "$PULUMI_BACKEND_URL"'];
}

/**
 * The pull-request job: for every stack, the preview with the policy pack enforced, the SQL plan
 * regenerated against the committed sql/<stack>.sql, and the access matrix of the base commit
 * against the head; all of it into one comment body. BASE_SHA is the target branch's commit.
 */
export function previewLines(args: PlatformPipelineArgs): string[] {
    const lines = [
        "set -euo pipefail",
        ...setupLines(),
        // The base commit's access matrix comes from its own checkout and its own dependencies.
        'git worktree add --detach ../platform-base "$BASE_SHA"',
        "(cd ../platform-base && npm ci)",
        `{ echo ${shq(COMMENT_MARKER)}; echo "## Platform preview for $(git rev-parse --short HEAD)"; } > ${COMMENT_FILE}`,
        "status=0",
    ];
    for (const stack of args.stacks) {
        const ref = shq(stackRef(args, stack));
        lines.push(
            `# ${stack}`,
            `if pulumi preview --stack ${ref} --diff --policy-pack policy --non-interactive > preview-${stack}.txt 2>&1; then result=ok; else result=failed; status=1; fi`,
            `npm run --silent sql -- --stack ${stack} > sql-${stack}.sql`,
            // A base commit from before the matrix existed compares against an empty one.
            `(cd ../platform-base && npm run --silent access -- --stack ${stack} --format json) > access-base-${stack}.json || echo '{"kind":"postgres","database":"","schemas":[],"rows":[]}' > access-base-${stack}.json`,
            `npm run --silent access -- --stack ${stack} --base access-base-${stack}.json > access-diff-${stack}.md`,
            `{`,
            `  echo "### Stack ${stack}: preview $result"`,
            `  echo '<details><summary>pulumi preview --diff (policy pack enforced)</summary>'; echo; echo '\`\`\`'; grep -E '^(Resources:|Policies:|    [+~-]|  [+~-]|.*mandatory|.*advisory| +[0-9]+ )' preview-${stack}.txt | tail -n 60 || true; echo '\`\`\`'; echo '</details>'`,
            `  echo; echo '**SQL plan** (sql/${stack}.sql regenerated vs committed):'; echo '\`\`\`diff'; diff -u sql/${stack}.sql sql-${stack}.sql && echo '(unchanged)' || true; echo '\`\`\`'`,
            `  echo; echo '**Access matrix** (base vs head):'; cat access-diff-${stack}.md`,
            `} >> ${COMMENT_FILE}`,
        );
    }
    lines.push('exit "$status"');
    return lines;
}

/** One deploy stage: `pulumi up` on exactly the commit that passed the stage before. */
export function upLines(args: PlatformPipelineArgs, stack: string): string[] {
    return [
        "set -euo pipefail",
        // Refuse to deploy anything but the commit the earlier stage passed.
        'test -n "$DEPLOY_SHA" && test "$(git rev-parse HEAD)" = "$DEPLOY_SHA" || { echo "checked out $(git rev-parse HEAD), expected DEPLOY_SHA=$DEPLOY_SHA" >&2; exit 1; }',
        ...setupLines(),
        `pulumi up --stack ${shq(stackRef(args, stack))} --yes --diff --policy-pack policy --non-interactive`,
    ];
}

/** The warehouse kind of a stack's audit (postgres unless the arguments say otherwise). */
export function auditKind(args: Pick<PlatformPipelineArgs, "warehouseKinds">, stack: string): AuditWarehouseKind {
    return args.warehouseKinds?.[stack] ?? "postgres";
}

/**
 * The scheduled drift audit of one stack, as its read-only login from the CI's secrets. Snowflake's
 * audit collects its catalog itself (scripts/snowflake-catalog.py, snowflake-connector-python from
 * the pinned .venv), so that job sets up the Python environment first.
 */
export function auditLines(stack: string, kind: AuditWarehouseKind = "postgres"): string[] {
    return ["set -euo pipefail", "npm ci", ...(kind === "snowflake" ? ["bash scripts/python-env.sh"] : []), `npm run --silent audit -- --stack ${stack}`];
}

/**
 * Environment variable → secret / variable name, per stack, the audit job maps from the CI
 * system's secrets (never in files): PGUSER / PGPASSWORD for Postgres and Redshift; for Snowflake
 * the account, the audit user and its PKCS#8 private key (the PEM, or its base64 where the CI
 * system cannot hold newlines), which the audit writes to a mode-600 temp file.
 */
export function auditSecretNames(stack: string, kind: AuditWarehouseKind = "postgres"): Record<string, string> {
    const s = stack.toUpperCase().replace(/-/g, "_");
    return kind === "snowflake"
        ? { SNOWFLAKE_ACCOUNT: `AUDIT_SNOWFLAKE_ACCOUNT_${s}`, SNOWFLAKE_USER: `AUDIT_SNOWFLAKE_USER_${s}`, SNOWFLAKE_PRIVATE_KEY: `AUDIT_SNOWFLAKE_PRIVATE_KEY_${s}` }
        : { PGUSER: `AUDIT_PGUSER_${s}`, PGPASSWORD: `AUDIT_PGPASSWORD_${s}` };
}

/** A rendered platform CI file: the do-not-edit header, then the document (no YAML anchors). */
export function renderPlatformYaml(doc: unknown, comments: Record<string, string> = {}): string {
    return renderYaml("# Rendered by dbt-platform for the platform repository; do not edit by hand (npm run render:platform).\n", doc, comments);
}
