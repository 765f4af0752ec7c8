/**
 * The PR-schema janitor as a scheduled job of the platform repository, one per stack with scheduled
 * runs: a dry run (what it would drop and keep), then the real run (`scripts/janitor.ts --stack`,
 * which reads the CI system, repository, prefix, TTL and connection from Pulumi.<stack>.yaml). The
 * warehouse login and the dbt repository's CI token are the CI system's secrets, never in a file.
 * github.ts, bitbucket.ts and azure.ts wrap these lines in their scheduler's YAML.
 */
import type { CiSystem } from "../../config/stack";

/** One stack's janitor: when it runs and which CI system holds the dbt repository's pull requests. */
export interface JanitorJob {
    stack: string;
    /** The dbt repository's CI system (the stack's ci.system), whose API says which pull requests are open. */
    ciSystem: CiSystem;
    /** Five-field cron, UTC (scheduledRuns.janitor.schedule). */
    cron: string;
}

/** The variable scripts/janitor.ts reads the dbt repository's CI token from, per system. */
export const JANITOR_TOKEN_VARIABLE: Record<CiSystem, string> = { github: "GITHUB_TOKEN", bitbucket: "BITBUCKET_TOKEN", "azure-devops": "AZURE_DEVOPS_EXT_PAT" };

/**
 * Secret names per stack: a warehouse login that may drop the PR schemas (a member of the dev role, e.g.
 * the CI bot's), and a token that may read the dbt repository's pull requests.
 */
export function janitorSecretNames(stack: string): { user: string; password: string; token: string } {
    const s = stack.toUpperCase().replace(/-/g, "_");
    return { user: `JANITOR_PGUSER_${s}`, password: `JANITOR_PGPASSWORD_${s}`, token: `JANITOR_CI_TOKEN_${s}` };
}

/** Installs the platform's dependencies (its own step: the janitor steps below need only the checkout and node_modules). */
export function janitorInstallLines(): string[] {
    return ["set -euo pipefail", "npm ci"];
}

/** The janitor run of one stack: a dry run unless `execute`. */
export function janitorLines(stack: string, execute: boolean): string[] {
    return ["set -euo pipefail", `npx --no-install tsx scripts/janitor.ts --stack ${stack}${execute ? " --execute" : ""}`];
}

/** Problems with the janitor jobs, each naming the field; empty when they can be rendered. */
export function janitorProblems(jobs: JanitorJob[] | undefined, stacks: string[]): string[] {
    const problems: string[] = [];
    (jobs ?? []).forEach((j, i) => {
        if (!stacks.includes(j.stack)) problems.push(`janitor[${i}].stack: ${JSON.stringify(j.stack)} is not one of the stacks`);
        if (!(j.ciSystem in JANITOR_TOKEN_VARIABLE)) problems.push(`janitor[${i}].ciSystem: ${JSON.stringify(j.ciSystem)} is not github, bitbucket or azure-devops`);
        if (!/^(\S+ ){4}\S+$/.test(j.cron)) problems.push(`janitor[${i}].cron: ${JSON.stringify(j.cron)} is not a five-field cron expression`);
    });
    const names = (jobs ?? []).map((j) => j.stack);
    if (new Set(names).size !== names.length) problems.push("janitor: a stack is listed twice");
    return problems;
}

/** Job or stage id part for a stack (`-` is not allowed in Azure ids). */
export function janitorId(stack: string): string {
    return stack.replace(/-/g, "_");
}
