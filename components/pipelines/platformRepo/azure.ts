/**
 * Azure DevOps for the platform repository: azure-pipelines.yml with the pull-request preview
 * (comment thread kept up to date through the Git REST API with the job's System.AccessToken) and
 * one deployment stage per stack on main, each in its environment (approvals and the exclusive lock
 * check live there; lockBehavior sequential queues instead of overlapping); and
 * azure-pipelines-audit.yml, the scheduled drift audit. All stages of a run build one commit
 * (Build.SourceVersion), checked again by upLines.
 */
import { auditKind, auditLines, auditSecretNames, backendEnv, COMMENT_FILE, COMMENT_MARKER, PlatformPipelineArgs, previewLines, renderPlatformYaml, upLines, validatePlatformArgs } from "./model";
import { janitorId, janitorInstallLines, janitorLines, janitorSecretNames, JANITOR_TOKEN_VARIABLE } from "./janitor";

/** Variable group holding PULUMI_ACCESS_TOKEN (Pulumi Cloud) and the audit logins, as secrets. */
export const PLATFORM_VARIABLE_GROUP = "dbt-platform-pulumi";

/** Updates the thread whose first comment starts with the marker, or opens it (Azure DevOps Git REST 7.1). */
export const AZURE_UPSERT_COMMENT = [
    "const fs = require('fs');",
    `const marker = ${JSON.stringify(COMMENT_MARKER)};`,
    `const content = fs.existsSync(${JSON.stringify(COMMENT_FILE)}) ? fs.readFileSync(${JSON.stringify(COMMENT_FILE)}, 'utf8') : marker + '\\nThe preview did not produce a report; see the pipeline log.';`,
    "const e = process.env;",
    "const base = `${e.SYSTEM_COLLECTIONURI}${encodeURIComponent(e.SYSTEM_TEAMPROJECT)}/_apis/git/repositories/${e.BUILD_REPOSITORY_ID}/pullRequests/${e.SYSTEM_PULLREQUEST_PULLREQUESTID}/threads`;",
    "const headers = { Authorization: `Bearer ${e.SYSTEM_ACCESSTOKEN}`, 'Content-Type': 'application/json' };",
    "(async () => {",
    "  const res = await fetch(`${base}?api-version=7.1`, { headers, redirect: 'error' });",
    "  if (!res.ok) throw new Error(`listing PR threads: HTTP ${res.status}`);",
    "  const thread = ((await res.json()).value || []).find((t) => !t.isDeleted && t.comments && t.comments[0] && (t.comments[0].content || '').startsWith(marker));",
    "  const url = thread ? `${base}/${thread.id}/comments/${thread.comments[0].id}?api-version=7.1` : `${base}?api-version=7.1`;",
    "  const body = thread ? { content } : { comments: [{ parentCommentId: 0, content, commentType: 1 }], status: 4 };",
    "  const out = await fetch(url, { method: thread ? 'PATCH' : 'POST', headers, body: JSON.stringify(body), redirect: 'error' });",
    "  if (!out.ok) throw new Error(`${thread ? 'updating' : 'creating'} the PR comment: HTTP ${out.status}`);",
    "})().catch((err) => { console.error(err.message); process.exit(1); });",
].join("\n");

type Step = Record<string, unknown>;

function pulumiSteps(args: PlatformPipelineArgs, script: string[], serviceConnection: string | undefined, env: Record<string, string>): Step[] {
    const steps: Step[] = [
        { task: "NodeTool@0", displayName: "Set up Node", inputs: { versionSpec: `${args.nodeVersion}.x` } },
        {
            bash: [`curl -fsSL https://get.pulumi.com | sh -s -- --version ${args.pulumiVersion}`, 'echo "##vso[task.prependpath]$HOME/.pulumi/bin"'].join("\n"),
            displayName: "Install Pulumi",
        },
    ];
    const secretEnv: Record<string, string> = { ...env };
    // Secret variables reach a script only when mapped explicitly.
    if (args.backend.kind === "pulumi-cloud") secretEnv.PULUMI_ACCESS_TOKEN = "$(PULUMI_ACCESS_TOKEN)";
    if (args.backend.kind === "s3" && serviceConnection) {
        steps.push({ task: "AWSShellScript@1", displayName: "Pulumi", inputs: { awsCredentials: serviceConnection, regionName: args.backend.region, scriptType: "inline", inlineScript: script.join("\n") }, env: secretEnv });
    } else {
        steps.push({ bash: script.join("\n"), displayName: "Pulumi", env: secretEnv });
    }
    return steps;
}

export function renderPlatformAzure(args: PlatformPipelineArgs): Record<string, string> {
    validatePlatformArgs(args);
    const connections = args.backend.kind === "s3" ? args.backend.azureServiceConnections : undefined;
    if (args.backend.kind === "s3" && !connections) throw new Error("platform pipelines: backend.azureServiceConnections: expected the AWS service connections (preview, deploy) for Azure DevOps");
    const backend = backendEnv(args);
    const stages: Record<string, unknown>[] = [
        {
            stage: "preview",
            displayName: "pulumi preview (every stack, policy pack enforced)",
            condition: "eq(variables['Build.Reason'], 'PullRequest')",
            jobs: [
                {
                    job: "preview",
                    timeoutInMinutes: 60,
                    variables: [{ group: PLATFORM_VARIABLE_GROUP }],
                    steps: [
                        { checkout: "self", fetchDepth: 0 },
                        ...pulumiSteps(args, ["export BASE_SHA=\"$(git rev-parse \"origin/${SYSTEM_PULLREQUEST_TARGETBRANCH#refs/heads/}\")\"", ...previewLines(args)], connections?.preview, backend),
                        { bash: `node -e '${AZURE_UPSERT_COMMENT.replace(/'/g, `'"'"'`)}'`, displayName: "Post or update the PR comment", condition: "always()", env: { SYSTEM_ACCESSTOKEN: "$(System.AccessToken)" } },
                    ],
                },
            ],
        },
    ];
    args.stacks.forEach((stack, i) => {
        stages.push({
            stage: `up_${stack.replace(/-/g, "_")}`,
            displayName: `pulumi up ${stack}`,
            dependsOn: i === 0 ? [] : [`up_${args.stacks[i - 1].replace(/-/g, "_")}`],
            condition: `and(succeeded(), ne(variables['Build.Reason'], 'PullRequest'), eq(variables['Build.SourceBranch'], 'refs/heads/${args.mainBranch}'))`,
            lockBehavior: "sequential",
            jobs: [
                {
                    deployment: "up",
                    displayName: `pulumi up ${stack}`,
                    timeoutInMinutes: 60,
                    environment: stack,
                    variables: [{ group: PLATFORM_VARIABLE_GROUP }],
                    strategy: {
                        runOnce: {
                            deploy: {
                                steps: [
                                    { checkout: "self", fetchDepth: 0 },
                                    ...pulumiSteps(args, upLines(args, stack), connections?.deploy, { ...backend, DEPLOY_SHA: "$(Build.SourceVersion)" }),
                                ],
                            },
                        },
                    },
                },
            ],
        });
    });
    const main = {
        trigger: { batch: true, branches: { include: [args.mainBranch] } },
        pr: { autoCancel: true, branches: { include: [args.mainBranch] } },
        pool: { vmImage: "ubuntu-latest" },
        stages,
    };
    const audit = {
        trigger: "none",
        pr: "none",
        schedules: [{ cron: args.auditCron, displayName: "Drift audit", branches: { include: [args.mainBranch] }, always: true }],
        pool: { vmImage: "ubuntu-latest" },
        jobs: args.stacks.map((stack) => {
            const kind = auditKind(args, stack);
            return {
                job: `audit_${stack.replace(/-/g, "_")}`,
                displayName: `drift audit ${stack}`,
                timeoutInMinutes: 30,
                variables: [{ group: PLATFORM_VARIABLE_GROUP }],
                steps: [
                    { task: "NodeTool@0", displayName: "Set up Node", inputs: { versionSpec: `${args.nodeVersion}.x` } },
                    {
                        bash: auditLines(stack, kind).join("\n"),
                        displayName: `Audit ${stack} against the declared plan`,
                        env: Object.fromEntries(Object.entries(auditSecretNames(stack, kind)).map(([v, secret]) => [v, `$(${secret})`])),
                    },
                ],
            };
        }),
    };
    return {
        "azure-pipelines.yml": renderPlatformYaml(main),
        "azure-pipelines-audit.yml": renderPlatformYaml(audit),
        ...(args.janitor?.length ? { "azure-pipelines-janitor.yml": renderPlatformYaml(janitorPipeline(args)) } : {}),
    };
}

/** The scheduled PR-schema janitor: one schedule and one job per stack; a job runs for its own schedule (or a manual run). */
function janitorPipeline(args: PlatformPipelineArgs): Record<string, unknown> {
    const jobs = args.janitor ?? [];
    const display = (stack: string) => `PR-schema janitor ${stack}`;
    return {
        trigger: "none",
        pr: "none",
        schedules: jobs.map((j) => ({ cron: j.cron, displayName: display(j.stack), branches: { include: [args.mainBranch] }, always: true })),
        pool: { vmImage: "ubuntu-latest" },
        jobs: jobs.map((j) => {
            const names = janitorSecretNames(j.stack);
            // Secret variables reach a script only when mapped explicitly.
            const env = { PGUSER: `$(${names.user})`, PGPASSWORD: `$(${names.password})`, [JANITOR_TOKEN_VARIABLE[j.ciSystem]]: `$(${names.token})` };
            return {
                job: `janitor_${janitorId(j.stack)}`,
                displayName: display(j.stack),
                condition: `or(eq(variables['Build.Reason'], 'Manual'), eq(variables['Build.CronSchedule.DisplayName'], '${display(j.stack)}'))`,
                timeoutInMinutes: 30,
                variables: [{ group: PLATFORM_VARIABLE_GROUP }],
                steps: [
                    { task: "NodeTool@0", displayName: "Set up Node", inputs: { versionSpec: `${args.nodeVersion}.x` } },
                    { bash: janitorInstallLines().join("\n"), displayName: "Install" },
                    { bash: janitorLines(j.stack, false).join("\n"), displayName: `Janitor ${j.stack}: dry run`, env },
                    { bash: janitorLines(j.stack, true).join("\n"), displayName: `Janitor ${j.stack}: drop orphaned PR schemas`, env },
                ],
            };
        }),
    };
}
