/**
 * Local servers for the pull-request comment APIs the platform's preview comment uses, enforcing
 * the documented contract: paths, methods, auth scheme, headers, pagination and who may edit.
 * - GitHub REST: GET/POST /repos/{owner}/{repo}/issues/{n}/comments (per_page ≤ 100, default 30;
 *   Link header rel="next"), PATCH /repos/{owner}/{repo}/issues/comments/{id}; Bearer token,
 *   Accept: application/vnd.github+json; only the author may edit; bodies over 65536 characters 422.
 * - Bitbucket Cloud 2.0: GET/POST /2.0/repositories/{workspace}/{repo}/pullrequests/{id}/comments
 *   (pagelen ≤ 100, default 10; `next` URL), PUT …/comments/{comment_id} with {content: {raw}}; Bearer.
 * - Azure DevOps Git 7.1: GET/POST /{org}/{project}/_apis/git/repositories/{repo}/pullRequests/{id}/threads,
 *   PATCH …/threads/{threadId}/comments/{commentId}; api-version=7.1, Bearer (System.AccessToken).
 * Each starts with comments by people (some quoting the bot's comment) so the step must page and pick its own.
 */
import * as http from "http";
import { freePort } from "./postgres";

export type CommentSystem = "github" | "bitbucket" | "azure-devops";

export interface StoredComment {
    id: number;
    author: string;
    bot: boolean;
    body: string;
    /** Azure DevOps: the thread the comment opens. */
    thread?: number;
}

export interface FakeCommentServer {
    /** What the step's environment points at (GITHUB_API_URL, BITBUCKET_API_URL, SYSTEM_COLLECTIONURI). */
    apiUrl: string;
    token: string;
    /** The token's identity: comments it creates carry this author. */
    botName: string;
    comments: StoredComment[];
    /** Requests served, as `METHOD path?query → status`. */
    requests: string[];
    stop(): Promise<void>;
}

const LIMIT = 65536;

/** `foreignPages`: page links point at another origin (a compromised or misconfigured API), which a client must not follow. */
export async function startFakeCommentServer(system: CommentSystem, opts: { repository: string; pr: number; peopleComments?: number; foreignPages?: string }): Promise<FakeCommentServer> {
    const token = `${system}-comment-token`;
    const botName = system === "github" ? "github-actions[bot]" : system === "bitbucket" ? "dbt-platform-preview" : "Project Collection Build Service";
    const requests: string[] = [];
    const comments: StoredComment[] = [];
    let nextId = 1000;
    for (let i = 0; i < (opts.peopleComments ?? 0); i++) {
        // Every seventh person replies quoting the bot's comment (Markdown quotes start with "> ").
        const body = i % 7 === 3 ? "> <!-- dbt-platform:platform-preview -->\n> ## Platform preview\n\nwhy does this change?" : `review comment ${i}`;
        comments.push({ id: nextId++, author: `person${i % 3}`, bot: false, body, thread: system === "azure-devops" ? nextId++ : undefined });
    }
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;

    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c) => chunks.push(c));
        req.on("end", () => {
            const url = new URL(req.url ?? "/", origin);
            const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
                requests.push(`${req.method} ${url.pathname}${url.search} → ${status}`);
                res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
            };
            let payload: any;
            try {
                payload = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
            } catch {
                return send(400, { message: "body is not JSON" });
            }
            if (req.headers.authorization !== `Bearer ${token}`) return send(401, { message: "bad credentials" });
            if (payload !== undefined && !String(req.headers["content-type"]).startsWith("application/json")) return send(415, { message: "expected Content-Type: application/json" });
            if (system === "github") return github(url, req.method ?? "", payload, send, req.headers);
            if (system === "bitbucket") return bitbucket(url, req.method ?? "", payload, send);
            return azure(url, req.method ?? "", payload, send);
        });
    });

    type Send = (status: number, body: unknown, headers?: Record<string, string>) => void;
    const page = (all: StoredComment[], size: number, n: number) => all.slice((n - 1) * size, n * size);
    const posInt = (v: string | null, dflt: number) => (v === null ? dflt : /^[1-9]\d*$/.test(v) ? Number(v) : NaN);

    function github(url: URL, method: string, payload: any, send: Send, headers: http.IncomingHttpHeaders) {
        if (headers.accept !== "application/vnd.github+json") return send(415, { message: "expected Accept: application/vnd.github+json" });
        const view = (c: StoredComment) => ({ id: c.id, body: c.body, user: { login: c.author, type: c.bot ? "Bot" : "User" } });
        const list = new RegExp(`^/repos/${opts.repository}/issues/(\\d+)/comments$`).exec(url.pathname);
        const one = new RegExp(`^/repos/${opts.repository}/issues/comments/(\\d+)$`).exec(url.pathname);
        if (list) {
            if (Number(list[1]) !== opts.pr) return send(404, { message: "Not Found" });
            if (method === "GET") {
                const perPage = posInt(url.searchParams.get("per_page"), 30);
                const n = posInt(url.searchParams.get("page"), 1);
                if (!(perPage <= 100) || !(n >= 1)) return send(422, { message: "per_page is at most 100; page is a positive integer" });
                const last = Math.max(1, Math.ceil(comments.length / perPage));
                const link = (p: number, rel: string) => `<${opts.foreignPages ?? origin}${url.pathname}?per_page=${perPage}&page=${p}>; rel="${rel}"`;
                const links = [...(n < last ? [link(n + 1, "next"), link(last, "last")] : []), ...(n > 1 ? [link(1, "first"), link(n - 1, "prev")] : [])];
                return send(200, page(comments, perPage, n).map(view), links.length ? { link: links.join(", ") } : {});
            }
            if (method === "POST") {
                if (typeof payload?.body !== "string") return send(422, { message: "body is required" });
                if (payload.body.length > LIMIT) return send(422, { message: "body is too long (maximum is 65536 characters)" });
                const c = { id: nextId++, author: botName, bot: true, body: payload.body };
                comments.push(c);
                return send(201, view(c));
            }
            return send(404, { message: "Not Found" });
        }
        if (one && method === "PATCH") {
            const c = comments.find((x) => x.id === Number(one[1]));
            if (!c) return send(404, { message: "Not Found" });
            if (c.author !== botName) return send(403, { message: "Resource not accessible by integration" });
            if (typeof payload?.body !== "string" || payload.body.length > LIMIT) return send(422, { message: "body is required, at most 65536 characters" });
            c.body = payload.body;
            return send(200, view(c));
        }
        return send(404, { message: "Not Found" });
    }

    function bitbucket(url: URL, method: string, payload: any, send: Send) {
        const view = (c: StoredComment) => ({ id: c.id, type: "pullrequest_comment", deleted: false, content: { raw: c.body, markup: "markdown" }, user: { display_name: c.author, type: "user" } });
        const prefix = `^/2\\.0/repositories/${opts.repository}/pullrequests/(\\d+)/comments`;
        const list = new RegExp(`${prefix}$`).exec(url.pathname);
        const one = new RegExp(`${prefix}/(\\d+)$`).exec(url.pathname);
        const m = list ?? one;
        if (!m || Number(m[1]) !== opts.pr) return send(404, { type: "error", error: { message: "Not found" } });
        if (list && method === "GET") {
            const pagelen = posInt(url.searchParams.get("pagelen"), 10);
            const n = posInt(url.searchParams.get("page"), 1);
            if (!(pagelen <= 100) || !(n >= 1)) return send(400, { type: "error", error: { message: "Invalid pagelen or page" } });
            const more = n * pagelen < comments.length;
            return send(200, {
                pagelen,
                page: n,
                size: comments.length,
                values: page(comments, pagelen, n).map(view),
                ...(more ? { next: `${opts.foreignPages ?? origin}${url.pathname}?pagelen=${pagelen}&page=${n + 1}` } : {}),
            });
        }
        if (typeof payload?.content?.raw !== "string" && (method === "POST" || method === "PUT")) return send(400, { type: "error", error: { message: "content.raw is required" } });
        if (list && method === "POST") {
            const c = { id: nextId++, author: botName, bot: true, body: payload.content.raw };
            comments.push(c);
            return send(201, view(c));
        }
        if (one && method === "PUT") {
            const c = comments.find((x) => x.id === Number(one[2]));
            if (!c) return send(404, { type: "error", error: { message: "Not found" } });
            if (c.author !== botName) return send(403, { type: "error", error: { message: "You can only edit your own comments" } });
            c.body = payload.content.raw;
            return send(200, view(c));
        }
        return send(405, { type: "error", error: { message: "Method not allowed" } });
    }

    function azure(url: URL, method: string, payload: any, send: Send) {
        if (url.searchParams.get("api-version") !== "7.1") return send(400, { message: "The api-version query parameter (7.1) is required" });
        const [org, project, repo] = opts.repository.split("/");
        const prefix = `^/${org}/${encodeURIComponent(project)}/_apis/git/repositories/${repo}/pullRequests/(\\d+)/threads`;
        const list = new RegExp(`${prefix}$`).exec(url.pathname);
        const one = new RegExp(`${prefix}/(\\d+)/comments/(\\d+)$`).exec(url.pathname);
        const m = list ?? one;
        if (!m || Number(m[1]) !== opts.pr) return send(404, { message: "TF401180: The requested pull request was not found." });
        const comment = (c: StoredComment) => ({ id: 1, parentCommentId: 0, content: c.body, commentType: "text", author: { displayName: c.author } });
        const thread = (c: StoredComment) => ({ id: c.thread, isDeleted: false, status: "active", comments: [comment(c)] });
        if (list && method === "GET") return send(200, { value: comments.map(thread), count: comments.length });
        if (list && method === "POST") {
            const first = payload?.comments?.[0];
            if (typeof first?.content !== "string" || first.parentCommentId !== 0) return send(400, { message: "a thread needs a first comment (parentCommentId 0) with content" });
            const c = { id: nextId++, author: botName, bot: true, body: first.content, thread: nextId++ };
            comments.push(c);
            return send(200, thread(c));
        }
        if (one && method === "PATCH") {
            const c = comments.find((x) => x.thread === Number(one[2]));
            if (!c || Number(one[3]) !== 1) return send(404, { message: "The requested comment was not found." });
            if (c.author !== botName) return send(403, { message: "Only the author may edit a comment." });
            if (typeof payload?.content !== "string") return send(400, { message: "content is required" });
            c.body = payload.content;
            return send(200, comment(c));
        }
        return send(405, { message: "Method not allowed" });
    }

    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    const apiUrl = system === "github" ? origin : system === "bitbucket" ? `${origin}/2.0` : `${origin}/${opts.repository.split("/")[0]}/`;
    return { apiUrl, token, botName, comments, requests, stop: () => new Promise<void>((r) => server.close(() => r())) };
}
