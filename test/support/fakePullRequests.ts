/**
 * Minimal local servers for "GET one pull request" on GitHub, Bitbucket Cloud and Azure DevOps,
 * enforcing the documented path, auth scheme and (Azure) api-version; unknown ids answer 404.
 * `failFirst` answers the first request 503 so the client's retry is exercised.
 */
import * as http from "http";
import { freePort } from "./postgres";

export type PrSystem = "github" | "bitbucket" | "azure-devops";

export interface FakePrServer {
    baseUrl: string;
    token: string;
    /** Requests served, as `METHOD path?query`. */
    requests: string[];
    stop(): Promise<void>;
}

/** `states`: PR number → "open" or "closed" (closed is reported as the system's merged/completed or declined/abandoned). */
export async function startFakePrServer(system: PrSystem, repository: string, states: Record<number, "open" | "closed">, opts: { failFirst?: boolean } = {}): Promise<FakePrServer> {
    const token = `${system}-test-token`;
    const requests: string[] = [];
    let failed = !opts.failFirst;
    const routes: Record<PrSystem, { path: RegExp; auth: string; body: (n: number, s: "open" | "closed") => unknown }> = {
        github: {
            path: new RegExp(`^/repos/${repository}/pulls/(\\d+)$`),
            auth: `Bearer ${token}`,
            body: (n, s) => ({ number: n, state: s, merged: s === "closed" && n % 2 === 1 }),
        },
        bitbucket: {
            path: new RegExp(`^/2\\.0/repositories/${repository}/pullrequests/(\\d+)$`),
            auth: `Bearer ${token}`,
            body: (n, s) => ({ id: n, type: "pullrequest", state: s === "open" ? "OPEN" : n % 2 === 1 ? "MERGED" : "DECLINED" }),
        },
        "azure-devops": {
            path: (() => {
                const [org, project, repo] = repository.split("/");
                return new RegExp(`^/${org}/${project}/_apis/git/repositories/${repo}/pullrequests/(\\d+)$`);
            })(),
            auth: `Basic ${Buffer.from(`:${token}`).toString("base64")}`,
            body: (n, s) => ({ pullRequestId: n, status: s === "open" ? "active" : n % 2 === 1 ? "completed" : "abandoned" }),
        },
    };
    const route = routes[system];
    const server = http.createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://localhost");
        requests.push(`${req.method} ${url.pathname}${url.search}`);
        const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
        if (!failed) {
            failed = true;
            return json(503, { message: "try again" });
        }
        if (req.method !== "GET") return json(405, { message: "method not allowed" });
        if (req.headers.authorization !== route.auth) return json(401, { message: "unauthorized" });
        if (system === "github" && req.headers.accept !== "application/vnd.github+json") return json(415, { message: "expected Accept: application/vnd.github+json" });
        if (system === "azure-devops" && url.searchParams.get("api-version") !== "7.1") return json(400, { message: "api-version 7.1 required" });
        const m = route.path.exec(url.pathname);
        if (!m) return json(404, { message: "no such route" });
        const n = Number(m[1]);
        if (!(n in states)) return json(404, { message: `no pull request ${n}` });
        return json(200, route.body(n, states[n]));
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    const prefix = system === "bitbucket" ? "/2.0" : "";
    return {
        baseUrl: `http://127.0.0.1:${port}${prefix}`,
        token,
        requests,
        stop: () => new Promise<void>((r) => server.close(() => r())),
    };
}
