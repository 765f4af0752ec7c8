/**
 * A small JSON REST client shared by the CI-system dynamic providers (Bitbucket, Azure DevOps).
 *
 * Why our own and not each SDK: the providers need the same behaviour everywhere — retry 429 with
 * Retry-After and 5xx/dropped connections/broken bodies with capped exponential backoff inside one
 * overall deadline, never follow a redirect to another origin (the token and a secret body would go
 * with it), cap pagination, and errors that name the resource and never echo a request body or
 * credential — and they must stay serialisable by Pulumi (no captured secrets, no module-level
 * clients). Credentials are read by the caller inside each provider method and passed in per client.
 */

/** HTTP methods the providers use. */
export type RestMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** How a RestClient talks to one API. */
export interface RestClientOptions {
    /** Service name for messages, e.g. "Bitbucket". */
    service: string;
    /** Base URL that relative request paths are joined to, e.g. https://api.bitbucket.org/2.0. */
    baseUrl: string;
    /** Authorization header value (e.g. "Bearer …"); read per request, never logged. */
    authorization?: () => string;
    /** Hint appended to 401/403 errors, e.g. which variable or config key holds the token. */
    authHint?: string;
    /** Attempts per request including the first (default 6). */
    maxAttempts?: number;
    /** First backoff delay in ms (default 500); doubles per attempt. */
    baseDelayMs?: number;
    /** Upper bound of any single wait in ms, Retry-After included (default 30000). */
    maxDelayMs?: number;
    /** Per-attempt timeout in ms, body read included (default 30000). */
    timeoutMs?: number;
    /** Overall deadline of one request in ms, across every attempt, wait and redirect (default 120000). */
    deadlineMs?: number;
    /** Most pages a paginated listing may follow (default 200); see `checkPage`. */
    maxPages?: number;
    /** Most same-origin redirects (307/308, or any for GET) one request follows (default 5). */
    maxRedirects?: number;
    /** Replaceable sleep, for tests. */
    sleep?: (ms: number) => Promise<void>;
    /** Extra headers on every request (e.g. an Accept with an api-version). */
    headers?: Record<string, string>;
}

/** One request. */
export interface RestRequest {
    method: RestMethod;
    /** Path relative to baseUrl, or an absolute URL (pagination `next` links). */
    path: string;
    /** Query parameters; undefined values are left out. */
    query?: Record<string, string | number | boolean | undefined>;
    /** JSON body. */
    json?: unknown;
    /** Raw body with its content type (e.g. a secure file upload). */
    raw?: { body: Buffer | string; contentType: string };
    /** What is being acted on, for error messages: "repository variable DBT_CI_HOST in acme/dbt". */
    resource: string;
    /** Non-2xx statuses the caller handles itself (e.g. 404 on read, 409 on create). */
    accept?: number[];
}

/** A response: status, headers and the parsed JSON body (undefined when empty or not JSON). */
export interface RestResponse<T = any> {
    status: number;
    headers: Headers;
    body: T;
    /** Attempts this response took (1 when the first answered). */
    attempts?: number;
    /**
     * An earlier attempt may have been applied by the server although no answer arrived (dropped
     * connection, timeout, 5xx): a 409 on a create then likely names the object this call made.
     */
    maybeApplied?: boolean;
}

/** A failed request; the message names the service, the resource and what to do. */
export interface RestError extends Error {
    name: "RestError";
    /** HTTP status, or undefined for a network failure. */
    status: number | undefined;
    /** The resource named in the request. */
    resource: string;
}

/**
 * Makes a RestError. A factory over a plain Error, not a subclass: Pulumi serialises dynamic
 * providers' code, and a serialised `class extends Error` loses its message; so would a
 * module-level Set its contents, hence the plain array below.
 */
export function restError(message: string, status: number | undefined, resource: string): RestError {
    const err = new Error(message) as RestError;
    err.name = "RestError";
    err.status = status;
    err.resource = resource;
    return err;
}

/** True for errors made by restError (by name: instanceof does not survive serialisation). */
export function isRestError(err: unknown): err is RestError {
    return err instanceof Error && err.name === "RestError";
}

const RETRYABLE_STATUS = [429, 500, 502, 503, 504];

/**
 * Why `value` cannot be an API base URL, or undefined when it can: https, or http only to a loopback
 * host (local test servers); no credentials, query or fragment (the token is set separately and
 * request paths and queries are joined to the base).
 */
export function apiUrlProblem(value: unknown): string | undefined {
    if (typeof value !== "string" || value.trim() === "") return "an https URL (a non-empty string)";
    let u: URL;
    try {
        u = new URL(value);
    } catch {
        return "an absolute https URL";
    }
    const loopback = u.hostname === "localhost" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(u.hostname) || u.hostname === "[::1]";
    if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) return "an https URL (http only to a loopback host such as 127.0.0.1)";
    if (u.username || u.password) return "a URL without credentials in it (set the token separately)";
    if (u.search || value.includes("?")) return "a URL without a query string";
    if (u.hash || value.includes("#")) return "a URL without a fragment";
    return undefined;
}

/**
 * Parses Retry-After as RFC 9110 §10.2.3 defines it into ms: delay-seconds (digits only, so no sign
 * or fraction) or an HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms, all of which
 * start with a day name); a past date means now. Undefined for anything else ("-1", "1.5", "soon"):
 * the caller then backs off as without the header. Callers cap the result.
 */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
    const v = value?.trim();
    if (!v) return undefined;
    if (/^\d+$/.test(v)) return Number(v) * 1000;
    if (!/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /.test(v) || !/(GMT|\d{4})$/.test(v)) return undefined;
    const at = Date.parse(v.endsWith("GMT") ? v : `${v} GMT`);
    return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Statuses of a redirect response. */
const REDIRECT_STATUS = [301, 302, 303, 307, 308];

/** JSON REST client with retries and resource-naming errors. */
export class RestClient {
    private readonly opts: Required<Omit<RestClientOptions, "authorization" | "authHint" | "headers">> &
        Pick<RestClientOptions, "authorization" | "authHint" | "headers">;

    constructor(options: RestClientOptions) {
        this.opts = {
            maxAttempts: 6,
            baseDelayMs: 500,
            maxDelayMs: 30_000,
            timeoutMs: 30_000,
            deadlineMs: 120_000,
            maxPages: 200,
            maxRedirects: 5,
            sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
            ...options,
            baseUrl: options.baseUrl.replace(/\/+$/, ""),
        };
    }

    /** The absolute URL of a request path. */
    url(path: string, query?: RestRequest["query"]): string {
        const u = new URL(/^https?:\/\//.test(path) ? path : `${this.opts.baseUrl}/${path.replace(/^\/+/, "")}`);
        for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
        return u.toString();
    }

    /** Most pages a listing may follow (the `maxPages` option). */
    get maxPages(): number {
        return this.opts.maxPages;
    }

    /**
     * The page-cap check for any paginated listing (Bitbucket `next`, Azure continuation tokens):
     * call it before fetching page `page` (1-based); throws a RestError naming the listing past
     * `maxPages`, or when the server hands out a page link or token it already gave (a loop).
     */
    checkPage(page: number, listing: string, resource: string, seen?: string[], next?: string): void {
        if (page > this.opts.maxPages) {
            throw restError(`${this.opts.service} ${listing} (${resource}): more than ${this.opts.maxPages} pages; stopping (raise maxPages if the collection is really that large).`, undefined, resource);
        }
        if (seen && next !== undefined) {
            if (seen.includes(next)) throw restError(`${this.opts.service} ${listing} (${resource}): the server returned the same page link or continuation token twice; stopping.`, undefined, resource);
            seen.push(next);
        }
    }

    /**
     * Sends a request, retrying 429, 5xx, dropped connections and broken or stalled bodies within
     * the overall deadline; follows same-origin redirects only; throws RestError otherwise.
     */
    async request<T = any>(req: RestRequest): Promise<RestResponse<T>> {
        const { service, maxAttempts } = this.opts;
        const first = this.url(req.path, req.query);
        const origin = new URL(this.opts.baseUrl).origin;
        const what = `${service} ${req.method} ${new URL(first).pathname} (${req.resource})`;
        // An absolute URL (a pagination link) must stay on the API's origin: the credentials go with every request.
        if (new URL(first).origin !== origin) {
            throw restError(`${what}: ${new URL(first).origin} is not the API's origin (${origin}); the credentials are never sent there.`, undefined, req.resource);
        }
        const deadline = Date.now() + this.opts.deadlineMs;
        const pastDeadline = (attempts: number, last: string) =>
            restError(`${what}: no answer within the overall deadline of ${Math.round(this.opts.deadlineMs / 1000)} s (${attempts} attempt${attempts === 1 ? "" : "s"}; last: ${last})`, undefined, req.resource);
        let lastProblem = "";
        let maybeApplied = false;
        for (let attempt = 1; attempt <= maxAttempts; attempt++) {
            const remaining = deadline - Date.now();
            if (remaining <= 0) throw pastDeadline(attempt - 1, lastProblem || "none");
            const retry = async (problem: string, wait: number) => {
                lastProblem = problem;
                if (attempt >= maxAttempts) return;
                const left = deadline - Date.now();
                if (left <= 0) throw pastDeadline(attempt, problem);
                // Never sleep past the deadline: better one more try with what is left.
                await this.opts.sleep(Math.min(wait, this.opts.maxDelayMs, left));
            };
            // One timer per attempt, over the response and its body, never beyond the deadline.
            const signal = AbortSignal.timeout(Math.max(1, Math.min(this.opts.timeoutMs, remaining)));
            let url = first;
            let method: RestMethod = req.method;
            let res: Response | undefined;
            let redirects = 0;
            try {
                for (;;) {
                    res = await fetch(url, {
                        method,
                        headers: this.headers(req, method === req.method),
                        body: method !== req.method ? undefined : req.raw ? req.raw.body : req.json === undefined ? undefined : JSON.stringify(req.json),
                        signal,
                        redirect: "manual",
                    });
                    if (!REDIRECT_STATUS.includes(res.status) || req.accept?.includes(res.status)) break;
                    const next = this.redirectTarget(what, req, url, origin, method, res, ++redirects);
                    await res.body?.cancel().catch(() => undefined);
                    url = next.url;
                    method = next.method;
                }
            } catch (err) {
                if (isRestError(err)) throw err;
                // A dropped connection may have landed the write: callers make creates idempotent (adopt on 409).
                maybeApplied = true;
                await retry(`network error: ${causeOf(err)}`, this.backoff(attempt));
                continue;
            }
            let body: unknown;
            try {
                body = await readBody(res);
            } catch (err) {
                // The server answered (a write may have landed) but the body broke off or stalled: retried, and named if it keeps failing.
                maybeApplied = true;
                await retry(`reading the HTTP ${res.status} response body failed: ${causeOf(err)}`, this.backoff(attempt));
                continue;
            }
            if (res.ok || req.accept?.includes(res.status)) return { status: res.status, headers: res.headers, body: body as T, attempts: attempt, maybeApplied };
            if (RETRYABLE_STATUS.includes(res.status) && attempt < maxAttempts) {
                if (res.status !== 429) maybeApplied = true;
                const hinted = retryAfterMs(res.headers.get("retry-after"));
                await retry(`HTTP ${res.status}`, hinted ?? this.backoff(attempt));
                continue;
            }
            throw restError(this.describe(what, res.status, body, req.resource), res.status, req.resource);
        }
        throw restError(`${what}: gave up after ${maxAttempts} attempts (last: ${lastProblem})`, undefined, req.resource);
    }

    /**
     * Where a redirect may lead: only to the same origin (the Authorization header and any body go
     * along, so another host never gets them and its answer never counts); 307/308 keep the method
     * and body; 301/302/303 are followed for GET only (a write turned into a GET would "succeed"
     * without writing).
     */
    private redirectTarget(what: string, req: RestRequest, from: string, origin: string, method: RestMethod, res: Response, count: number): { url: string; method: RestMethod } {
        const location = res.headers.get("location");
        if (!location) throw restError(`${what}: HTTP ${res.status} redirect without a Location header.`, res.status, req.resource);
        let target: URL;
        try {
            target = new URL(location, from);
        } catch {
            throw restError(`${what}: HTTP ${res.status} redirect to an unreadable Location.`, res.status, req.resource);
        }
        if (target.origin !== origin) {
            throw restError(
                `${what}: HTTP ${res.status} redirect to another origin (${target.origin}${target.pathname}); not followed, so the credentials and request body stay with ${origin}. ` +
                    "Point apiUrl at the API's real address.",
                res.status,
                req.resource,
            );
        }
        if (count > this.opts.maxRedirects) throw restError(`${what}: more than ${this.opts.maxRedirects} redirects; stopping.`, res.status, req.resource);
        if (res.status !== 307 && res.status !== 308 && method !== "GET") {
            throw restError(`${what}: HTTP ${res.status} redirect of a ${method} to ${target.pathname}; only 307/308 keep a write's method and body, so it is not followed.`, res.status, req.resource);
        }
        return { url: target.toString(), method };
    }

    private headers(req: RestRequest, withBody = true): Record<string, string> {
        const h: Record<string, string> = { Accept: "application/json", ...this.opts.headers };
        const auth = this.opts.authorization?.();
        if (auth) h.Authorization = auth;
        if (!withBody) return h;
        if (req.raw) h["Content-Type"] = req.raw.contentType;
        else if (req.json !== undefined) h["Content-Type"] = "application/json";
        return h;
    }

    private backoff(attempt: number): number {
        const exp = this.opts.baseDelayMs * 2 ** (attempt - 1);
        // Full jitter keeps parallel resources from retrying in lockstep.
        return Math.min(this.opts.maxDelayMs, Math.round(exp / 2 + Math.random() * (exp / 2)));
    }

    private describe(what: string, status: number, body: unknown, resource: string): string {
        const detail = apiMessage(body);
        const hint = this.opts.authHint ? ` ${this.opts.authHint}` : "";
        switch (status) {
            case 401:
                return `${what}: ${this.opts.service} rejected the credentials (401 Unauthorized).${hint}${detail}`;
            case 403:
                return `${what}: the credentials lack permission for ${resource} (403 Forbidden).${hint}${detail}`;
            case 404:
                return `${what}: ${resource} was not found (404), or the credentials cannot see it.${detail}`;
            default:
                return `${what}: HTTP ${status}.${detail}`;
        }
    }
}

async function readBody(res: Response): Promise<unknown> {
    const text = await res.text();
    if (!text) return undefined;
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/** The API's own error text (Bitbucket `error.message`, Azure `message`), shortened; never the request. */
function apiMessage(body: unknown): string {
    let msg: unknown;
    if (typeof body === "string") msg = body;
    else if (body && typeof body === "object") {
        const b = body as any;
        msg = b.error?.message ?? b.message ?? b.error;
    }
    if (typeof msg !== "string" || msg.trim() === "") return "";
    const one = msg.replace(/\s+/g, " ").trim();
    return ` ${one.length > 300 ? `${one.slice(0, 300)}…` : one}`;
}

function causeOf(err: unknown): string {
    const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (e?.name === "TimeoutError") return "timed out";
    return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}
