/**
 * Bitbucket Pipelines for the platform repository: the pull-request preview (comment kept up to
 * date through the REST API with a repository access token), `pulumi up` per stack on main with a
 * manual trigger before each release stage, each step in its deployment environment (Bitbucket runs
 * one deployment per environment at a time), and a custom `platform-audit` pipeline to schedule.
 * Every step of one pipeline run builds the same commit ($BITBUCKET_COMMIT), checked again by upLines.
 */
import { auditKind, auditLines, auditSecretNames, backendEnv, COMMENT_FILE, COMMENT_MARKER, PlatformPipelineArgs, previewLines, renderPlatformYaml, upLines, validatePlatformArgs } from "./model";
import { shq } from "../model";
import { janitorInstallLines, janitorLines, janitorSecretNames, JANITOR_TOKEN_VARIABLE } from "./janitor";

const TOKEN_FILE = "$BITBUCKET_CLONE_DIR/.aws-web-identity-token";

/** Updates the comment that starts with the marker, or creates it (Bitbucket Cloud REST 2.0). */
export const BITBUCKET_UPSERT_COMMENT = [
    "const fs = require('fs');",
    `const marker = ${JSON.stringify(COMMENT_MARKER)};`,
    `const raw = fs.existsSync(${JSON.stringify(COMMENT_FILE)}) ? fs.readFileSync(${JSON.stringify(COMMENT_FILE)}, 'utf8') : marker + '\\nThe preview did not produce a report; see the pipeline log.';`,
    "// BITBUCKET_API_URL (not a Bitbucket variable) points the step at a proxy; by default Bitbucket Cloud's API.",
    "const api = (process.env.BITBUCKET_API_URL || 'https://api.bitbucket.org/2.0').replace(/\\/$/, '');",
    "const base = `${api}/repositories/${process.env.BITBUCKET_REPO_FULL_NAME}/pullrequests/${process.env.BITBUCKET_PR_ID}/comments`;",
    "const headers = { Authorization: `Bearer ${process.env.BITBUCKET_PR_COMMENT_TOKEN}`, 'Content-Type': 'application/json', Accept: 'application/json' };",
    "(async () => {",
    "  let url = `${base}?pagelen=100`, mine;",
    "  while (url && !mine) {",
    "    if (new URL(url).origin !== new URL(api).origin) throw new Error(`refusing to follow a page link to another origin: ${url}`);",
    "    const res = await fetch(url, { headers, redirect: 'error' });",
    "    if (!res.ok) throw new Error(`listing PR comments: HTTP ${res.status}`);",
    "    const page = await res.json();",
    "    mine = (page.values || []).find((c) => !c.deleted && ((c.content && c.content.raw) || '').startsWith(marker));",
    "    url = page.next;",
    "  }",
    "  const body = JSON.stringify({ content: { raw } });",
    "  const res = await fetch(mine ? `${base}/${mine.id}` : base, { method: mine ? 'PUT' : 'POST', headers, body, redirect: 'error' });",
    "  if (!res.ok) throw new Error(`${mine ? 'updating' : 'creating'} the PR comment: HTTP ${res.status}`);",
    "})().catch((e) => { console.error(e.message); process.exit(1); });",
].join("\n");

function contextLines(args: PlatformPipelineArgs, roleArn: string | undefined, extra: Record<string, string> = {}): string {
    const lines = Object.entries({ ...backendEnv(args), ...extra }).map(([k, v]) => `export ${k}=${shq(v)}`);
    if (roleArn) {
        lines.push(`export AWS_ROLE_ARN=${shq(roleArn)}`, `export AWS_WEB_IDENTITY_TOKEN_FILE="${TOKEN_FILE}"`, `printf '%s' "$BITBUCKET_STEP_OIDC_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE"`);
    }
    // PULUMI_ACCESS_TOKEN (Pulumi Cloud) is a secured repository variable, exported by Bitbucket itself.
    lines.push(`curl -fsSL https://get.pulumi.com | sh -s -- --version ${shq(args.pulumiVersion)}`, 'export PATH="$HOME/.pulumi/bin:$PATH"');
    return `# Context, credentials and the Pulumi CLI\n${lines.join("\n")}`;
}

export function renderPlatformBitbucket(args: PlatformPipelineArgs): Record<string, string> {
    validatePlatformArgs(args);
    const s3 = args.backend.kind === "s3" ? args.backend : undefined;
    const oidc = s3 ? { oidc: true } : {};
    const preview = {
        step: {
            name: "pulumi preview (every stack, policy pack enforced)",
            ...oidc,
            "max-time": 60,
            caches: ["node"],
            script: [
                contextLines(args, s3?.previewRoleArn),
                "# The base commit: where the pull request's branch leaves its destination\ngit fetch origin \"$BITBUCKET_PR_DESTINATION_BRANCH\"\nexport BASE_SHA=\"$(git merge-base HEAD FETCH_HEAD)\"",
                `# Preview, SQL plan and access matrix\n${previewLines(args).join("\n")}`,
            ],
            "after-script": [`# Post or update the PR comment\nnode -e ${shq(BITBUCKET_UPSERT_COMMENT)}`],
        },
    };
    const deploy = args.stacks.map((stack, i) => ({
        step: {
            name: `pulumi up ${stack}`,
            deployment: stack,
            // The approval before a release stage: a person with deployment permission starts it.
            ...(i > 0 ? { trigger: "manual" } : {}),
            ...oidc,
            "max-time": 60,
            caches: ["node"],
            script: [contextLines(args, s3?.deployRoleArn, {}), `export DEPLOY_SHA="$BITBUCKET_COMMIT"\n${upLines(args, stack).join("\n")}`],
        },
    }));
    const audit = args.stacks.map((stack) => {
        const kind = auditKind(args, stack);
        const exports = Object.entries(auditSecretNames(stack, kind)).map(([v, secret]) => `${v}="$${secret}"`);
        return {
            step: {
                name: `drift audit ${stack}`,
                "max-time": 30,
                caches: ["node"],
                script: [`# The read-only audit login comes from secured variables\nexport ${exports.join(" ")}\n${auditLines(stack, kind).join("\n")}`],
            },
        };
    });
    const doc = {
        image: `node:${args.nodeVersion}`,
        clone: { depth: "full" },
        pipelines: {
            "pull-requests": { "**": [preview] },
            branches: { [args.mainBranch]: deploy },
            // Scheduled in Repository settings → Pipelines → Schedules.
            custom: { "platform-audit": audit, ...janitorPipelines(args) },
        },
    };
    return { "bitbucket-pipelines.yml": renderPlatformYaml(doc) };
}

/** One custom pipeline per stack, `platform-janitor-<stack>`, scheduled in Repository settings → Pipelines → Schedules at its cron. */
function janitorPipelines(args: PlatformPipelineArgs): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const j of args.janitor ?? []) {
        const names = janitorSecretNames(j.stack);
        // The login and the dbt repository's token come from secured variables.
        const secrets = `export PGUSER="$${names.user}" PGPASSWORD="$${names.password}" ${JANITOR_TOKEN_VARIABLE[j.ciSystem]}="$${names.token}"`;
        out[`platform-janitor-${j.stack}`] = [
            {
                step: {
                    name: `PR-schema janitor ${j.stack} (schedule: ${j.cron} UTC)`,
                    "max-time": 30,
                    caches: ["node"],
                    script: [
                        `# Install\n${janitorInstallLines().join("\n")}`,
                        `# Janitor ${j.stack}: dry run\n${secrets}\n${janitorLines(j.stack, false).join("\n")}`,
                        `# Janitor ${j.stack}: drop orphaned PR schemas\n${secrets}\n${janitorLines(j.stack, true).join("\n")}`,
                    ],
                },
            },
        ];
    }
    return out;
}
