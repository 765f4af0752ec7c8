/**
 * tsx scripts/janitor.ts --ci github|bitbucket|azure-devops --repository <repo> [--prefix dbt_pr_]
 *                        [--ttl-hours <h>] [--api-url <base>] [--docs-bucket <bucket>] [--execute]
 * tsx scripts/janitor.ts --stack <stack> [--execute]
 *
 * Drops orphaned PR schemas on a Postgres warehouse (or Redshift, with --stack): families whose pull request is closed, or whose
 * recorded creation time is older than the TTL. A dry run unless --execute. The warehouse login is
 * libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE); the CI token is
 * GITHUB_TOKEN, BITBUCKET_TOKEN, or AZURE_DEVOPS_EXT_PAT / SYSTEM_ACCESSTOKEN, read per request.
 * With --stack (the platform repository's scheduled job) the CI system, repository, API URL, prefix,
 * TTL (scheduledRuns.janitor.ttlHours) and connection come from the validated Pulumi.<stack>.yaml;
 * the PG* variables override the connection and JANITOR_API_URL the CI API (a proxy or a test server).
 * With a docs bucket (--docs-bucket; with --stack and features.docsSite, JANITOR_DOCS_BUCKET)
 * it also removes closed pull requests' docs previews (docs/pr/<n>/) through the AWS CLI on PATH.
 */
import { Client } from "pg";
import { parseStackConfig } from "../components/config";
import { stackConfig } from "./offline";
import {
    AzureDevopsPullRequests,
    BitbucketPullRequests,
    GithubPullRequests,
    PullRequestState,
    runJanitor,
    sweepDocsPreviews,
} from "../components/janitor";

interface Args {
    /** Warehouse kind reached over the Postgres protocol (Postgres; Redshift with --stack). */
    kind: "postgres" | "redshift";
    ci: "github" | "bitbucket" | "azure-devops";
    repository: string;
    prefix: string;
    ttlHours?: number;
    apiUrl?: string;
    /** The docs site's bucket: closed PRs' docs previews are removed too. */
    docsBucket?: string;
    execute: boolean;
}

const USAGE = "usage: --ci github|bitbucket|azure-devops --repository <repo> [--prefix dbt_pr_] [--ttl-hours <h>] [--api-url <base>] [--docs-bucket <bucket>] [--execute], or --stack <stack> [--execute]";

/** The janitor's arguments from a stack's validated config; sets the libpq defaults the environment does not. */
function stackArgs(stack: string, execute: boolean): Args {
    const config = parseStackConfig(stack, stackConfig(stack));
    const wh = config.warehouse;
    if (wh.kind === "snowflake") throw new Error(`janitor: stack ${stack}: warehouse.kind snowflake: this script speaks the Postgres protocol (Postgres, Redshift)`);
    const c = wh.connection;
    // A Redshift Serverless stack has no host in its config: PGHOST names the workgroup endpoint.
    const defaults: Record<string, string | undefined> = { PGHOST: c.host, PGPORT: String(c.port), PGDATABASE: c.database, PGSSLMODE: c.sslmode };
    for (const [k, v] of Object.entries(defaults)) if (!process.env[k] && v !== undefined) process.env[k] = v;
    return {
        kind: wh.kind,
        ci: config.ci.system,
        repository: config.ci.repository,
        prefix: wh.schemas.pullRequestPrefix,
        ttlHours: config.scheduledRuns?.janitor.ttlHours,
        apiUrl: process.env.JANITOR_API_URL || config.ci.apiUrl,
        // Opt-in: the sweep needs AWS credentials (and the CLI) in the job, which the platform repository's janitor job does not have yet.
        docsBucket: config.features.docsSite ? process.env.JANITOR_DOCS_BUCKET || undefined : undefined,
        execute,
    };
}

function parseArgs(argv: string[]): Args {
    const at = argv.indexOf("--stack");
    if (at >= 0) {
        const rest = argv.filter((_, i) => i !== at && i !== at + 1);
        const stack = argv[at + 1];
        if (!stack || stack.startsWith("--") || rest.some((x) => x !== "--execute")) throw new Error(`--stack takes a stack name and only --execute besides; ${USAGE}`);
        return stackArgs(stack, rest.includes("--execute"));
    }
    const a: Partial<Args> = { kind: "postgres", prefix: "dbt_pr_", execute: false };
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        if (flag === "--execute") {
            a.execute = true;
            continue;
        }
        const value = argv[++i];
        if (value === undefined || value.startsWith("--")) throw new Error(`${flag} needs a value; ${USAGE}`);
        if (flag === "--ci") {
            if (!["github", "bitbucket", "azure-devops"].includes(value)) throw new Error(`--ci ${value}: expected github, bitbucket or azure-devops`);
            a.ci = value as Args["ci"];
        } else if (flag === "--repository") a.repository = value;
        else if (flag === "--prefix") a.prefix = value;
        else if (flag === "--api-url") a.apiUrl = value;
        else if (flag === "--docs-bucket") a.docsBucket = value;
        else if (flag === "--ttl-hours") {
            const h = Number(value);
            if (!(Number.isFinite(h) && h > 0)) throw new Error(`--ttl-hours ${value}: expected a positive number of hours`);
            a.ttlHours = h;
        } else throw new Error(`unknown argument ${flag}; ${USAGE}`);
    }
    if (!a.ci || !a.repository) throw new Error(`--ci and --repository are required; ${USAGE}`);
    return a as Args;
}

function token(names: string[]): () => string {
    return () => {
        for (const n of names) if (process.env[n]) return process.env[n]!;
        throw new Error(`janitor: no CI token: set ${names.join(" or ")}`);
    };
}

function pullRequests(a: Args): PullRequestState {
    const common = { baseUrl: a.apiUrl };
    switch (a.ci) {
        case "github":
            return new GithubPullRequests(a.repository, { ...common, token: token(["GITHUB_TOKEN"]) });
        case "bitbucket":
            return new BitbucketPullRequests(a.repository, { ...common, token: token(["BITBUCKET_TOKEN"]) });
        case "azure-devops":
            return new AzureDevopsPullRequests(a.repository, { ...common, token: token(["AZURE_DEVOPS_EXT_PAT", "SYSTEM_ACCESSTOKEN"]) });
    }
}

async function main(): Promise<void> {
    const a = parseArgs(process.argv.slice(2));
    const prs = pullRequests(a);
    const client = new Client();
    await client.connect();
    try {
        await runJanitor({
            kind: a.kind,
            sql: { query: async (text, params) => (await client.query(text, params as any[])).rows as any[] },
            prefix: a.prefix,
            pullRequests: prs,
            ttlHours: a.ttlHours,
            execute: a.execute,
        });
        if (a.docsBucket) await sweepDocsPreviews({ bucket: a.docsBucket, pullRequests: prs, execute: a.execute });
    } finally {
        await client.end();
    }
}

main().catch((e) => {
    console.error((e as Error).message);
    process.exit(1);
});
