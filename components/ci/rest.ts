/**
 * A small JSON REST client shared by the CI-system dynamic providers (Bitbucket, Azure DevOps).
 *
 * Why our own and not each SDK: the providers need the same behaviour everywhere — retry 429 with
 * Retry-After and 5xx/dropped connections with capped exponential backoff, and errors that name the
 * resource and never echo a request body or credential — and they must stay serialisable by Pulumi
 * (no captured secrets, no module-level clients). Credentials are read by the caller inside each
 * provider method and passed in per client.
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
    /** Per-attempt timeout in ms (default 30000). */
    timeoutMs?: number;
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

/** Parses Retry-After (seconds or an HTTP date) into ms; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
    if (!value) return undefined;
    if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
    const at = Date.parse(value);
    return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

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

    /** Sends a request, retrying 429, 5xx and dropped connections; throws RestError otherwise. */
    async request<T = any>(req: RestRequest): Promise<RestResponse<T>> {
        const { service, maxAttempts } = this.opts;
        const url = this.url(req.path, req.query);
        const what = `${service} ${req.method} ${new URL(url).pathname} (${req.resource})`;
        let lastProblem = "";
        let maybeApplied = false;
        for (let attempt = 1; attempt <= maxAttempts; attempt++) {
            let res: Response;
            try {
                res = await fetch(url, {
                    method: req.method,
                    headers: this.headers(req),
                    body: req.raw ? req.raw.body : req.json === undefined ? undefined : JSON.stringify(req.json),
                    signal: AbortSignal.timeout(this.opts.timeoutMs),
                });
            } catch (err) {
                // A dropped connection may have landed the write: callers make creates idempotent (adopt on 409).
                lastProblem = `network error: ${causeOf(err)}`;
                maybeApplied = true;
                if (attempt < maxAttempts) await this.opts.sleep(this.backoff(attempt));
                continue;
            }
            const body = await readBody(res);
            if (res.ok || req.accept?.includes(res.status)) return { status: res.status, headers: res.headers, body: body as T, attempts: attempt, maybeApplied };
            if (RETRYABLE_STATUS.includes(res.status) && attempt < maxAttempts) {
                lastProblem = `HTTP ${res.status}`;
                if (res.status !== 429) maybeApplied = true;
                const hinted = retryAfterMs(res.headers.get("retry-after"));
                await this.opts.sleep(Math.min(hinted ?? this.backoff(attempt), this.opts.maxDelayMs));
                continue;
            }
            throw restError(this.describe(what, res.status, body, req.resource), res.status, req.resource);
        }
        throw restError(`${what}: gave up after ${maxAttempts} attempts (last: ${lastProblem})`, undefined, req.resource);
    }

    private headers(req: RestRequest): Record<string, string> {
        const h: Record<string, string> = { Accept: "application/json", ...this.opts.headers };
        const auth = this.opts.authorization?.();
        if (auth) h.Authorization = auth;
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
    const e = err as { message?: string; cause?: { code?: string; message?: string } };
    return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}
