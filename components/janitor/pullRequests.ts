/**
 * Whether a pull request is still open, from each CI system's REST API (GET one pull request by id).
 * Base URLs are injectable so tests (and self-hosted servers) can point them elsewhere; tokens are
 * read per call from a function, never stored on the object.
 *   GitHub        GET {base}/repos/{owner}/{repo}/pulls/{n}          state: open | closed
 *   Bitbucket     GET {base}/repositories/{workspace}/{repo}/pullrequests/{id}
 *                 state: OPEN | MERGED | DECLINED | SUPERSEDED
 *   Azure DevOps  GET {base}/{org}/{project}/_apis/git/repositories/{repo}/pullrequests/{id}?api-version=7.1
 *                 status: active | abandoned | completed
 */
import { RestClient } from "../ci/rest";

/** `open`, `closed`, or `unknown` when the system has no such pull request (404). */
export type PullRequestStatus = "open" | "closed" | "unknown";

/** The state of pull requests on one repository. */
export interface PullRequestState {
    /** System and repository, for messages: "github acme/dbt". */
    readonly describe: string;
    /** The state of pull request `n`; throws (naming it) when the API fails. */
    state(n: number): Promise<PullRequestStatus>;
}

/** Options shared by the three implementations. */
export interface PullRequestStateOptions {
    /** API base URL (defaults: https://api.github.com, https://api.bitbucket.org/2.0, https://dev.azure.com). */
    baseUrl?: string;
    /** Token, read on each request. */
    token: () => string;
    /** Retry tuning for tests (see RestClient). */
    baseDelayMs?: number;
    /** Attempts per request (default 6). */
    maxAttempts?: number;
}

function client(service: string, baseUrl: string, authorization: () => string, o: PullRequestStateOptions, headers?: Record<string, string>, authHint?: string) {
    // Only the tuning that is set: an explicit undefined would override RestClient's defaults.
    const tuning = Object.fromEntries(Object.entries({ baseDelayMs: o.baseDelayMs, maxAttempts: o.maxAttempts }).filter(([, v]) => v !== undefined));
    return new RestClient({ service, baseUrl, authorization, authHint, headers, maxDelayMs: 10_000, ...tuning });
}

/** GitHub: `owner/repo`. */
export class GithubPullRequests implements PullRequestState {
    public readonly describe: string;
    private readonly rest: RestClient;
    constructor(private readonly repository: string, o: PullRequestStateOptions) {
        if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repository)) throw new Error(`janitor: GitHub repository ${JSON.stringify(repository)}: expected owner/repo`);
        this.describe = `github ${repository}`;
        this.rest = client("GitHub", o.baseUrl ?? "https://api.github.com", () => `Bearer ${o.token()}`, o,
            { Accept: "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28" }, "a token with pull requests: read (GITHUB_TOKEN)");
    }
    async state(n: number): Promise<PullRequestStatus> {
        const r = await this.rest.request<{ state?: string }>({ method: "GET", path: `repos/${this.repository}/pulls/${n}`, resource: `pull request #${n} of ${this.repository}`, accept: [404] });
        if (r.status === 404) return "unknown";
        return r.body?.state === "open" ? "open" : r.body?.state === "closed" ? "closed" : unexpected(this.describe, n, r.body?.state);
    }
}

/** Bitbucket Cloud: `workspace/repo`. */
export class BitbucketPullRequests implements PullRequestState {
    public readonly describe: string;
    private readonly rest: RestClient;
    constructor(private readonly repository: string, o: PullRequestStateOptions) {
        if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repository)) throw new Error(`janitor: Bitbucket repository ${JSON.stringify(repository)}: expected workspace/repo`);
        this.describe = `bitbucket ${repository}`;
        this.rest = client("Bitbucket", o.baseUrl ?? "https://api.bitbucket.org/2.0", () => `Bearer ${o.token()}`, o, undefined, "a token with pullrequest scope (BITBUCKET_TOKEN)");
    }
    async state(n: number): Promise<PullRequestStatus> {
        const r = await this.rest.request<{ state?: string }>({ method: "GET", path: `repositories/${this.repository}/pullrequests/${n}`, resource: `pull request #${n} of ${this.repository}`, accept: [404] });
        if (r.status === 404) return "unknown";
        const s = r.body?.state;
        return s === "OPEN" ? "open" : s === "MERGED" || s === "DECLINED" || s === "SUPERSEDED" ? "closed" : unexpected(this.describe, n, s);
    }
}

/** Azure DevOps: `organization/project/repository` (repository name or id). */
export class AzureDevopsPullRequests implements PullRequestState {
    public readonly describe: string;
    private readonly rest: RestClient;
    private readonly parts: string[];
    constructor(repository: string, o: PullRequestStateOptions) {
        this.parts = repository.split("/");
        if (this.parts.length !== 3 || this.parts.some((p) => !/^[A-Za-z0-9_. -]+$/.test(p))) throw new Error(`janitor: Azure DevOps repository ${JSON.stringify(repository)}: expected organization/project/repository`);
        this.describe = `azure-devops ${repository}`;
        // A PAT goes in Basic auth with an empty user name.
        this.rest = client("Azure DevOps", o.baseUrl ?? "https://dev.azure.com", () => `Basic ${Buffer.from(`:${o.token()}`).toString("base64")}`, o,
            undefined, "a PAT with Code (read) (AZURE_DEVOPS_EXT_PAT or SYSTEM_ACCESSTOKEN)");
    }
    async state(n: number): Promise<PullRequestStatus> {
        const [org, project, repo] = this.parts.map(encodeURIComponent);
        const r = await this.rest.request<{ status?: string }>({
            method: "GET",
            path: `${org}/${project}/_apis/git/repositories/${repo}/pullrequests/${n}`,
            query: { "api-version": "7.1" },
            resource: `pull request ${n} of ${this.parts.join("/")}`,
            accept: [404],
        });
        if (r.status === 404) return "unknown";
        const s = r.body?.status;
        return s === "active" ? "open" : s === "completed" || s === "abandoned" ? "closed" : unexpected(this.describe, n, s);
    }
}

function unexpected(describe: string, n: number, state: unknown): never {
    throw new Error(`janitor: ${describe}: pull request ${n} has an unexpected state ${JSON.stringify(state)}`);
}
