/**
 * tsx scripts/janitor.ts --ci github|bitbucket|azure-devops --repository <repo> [--prefix dbt_pr_]
 *                        [--ttl-hours <h>] [--api-url <base>] [--execute]
 *
 * Drops orphaned PR schemas on a Postgres warehouse: families whose pull request is closed, or whose
 * recorded creation time is older than the TTL. A dry run unless --execute. The warehouse login is
 * libpq's environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE); the CI token is
 * GITHUB_TOKEN, BITBUCKET_TOKEN, or AZURE_DEVOPS_EXT_PAT / SYSTEM_ACCESSTOKEN, read per request.
 */
import { Client } from "pg";
import {
    AzureDevopsPullRequests,
    BitbucketPullRequests,
    GithubPullRequests,
    PullRequestState,
    runJanitor,
} from "../components/janitor";

interface Args {
    ci: "github" | "bitbucket" | "azure-devops";
    repository: string;
    prefix: string;
    ttlHours?: number;
    apiUrl?: string;
    execute: boolean;
}

const USAGE = "usage: --ci github|bitbucket|azure-devops --repository <repo> [--prefix dbt_pr_] [--ttl-hours <h>] [--api-url <base>] [--execute]";

function parseArgs(argv: string[]): Args {
    const a: Partial<Args> = { prefix: "dbt_pr_", execute: false };
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
    const client = new Client();
    await client.connect();
    try {
        await runJanitor({
            kind: "postgres",
            sql: { query: async (text, params) => (await client.query(text, params as any[])).rows as any[] },
            prefix: a.prefix,
            pullRequests: pullRequests(a),
            ttlHours: a.ttlHours,
            execute: a.execute,
        });
    } finally {
        await client.end();
    }
}

main().catch((e) => {
    console.error((e as Error).message);
    process.exit(1);
});
