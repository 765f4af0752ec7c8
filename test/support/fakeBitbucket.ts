/**
 * A fake Bitbucket Cloud REST 2.0 server for the Bitbucket provider tests: a real HTTP server on
 * 127.0.0.1 that implements the documented contract of the endpoints the providers use.
 *
 *   GET|PUT              /2.0/repositories/{ws}/{repo}/pipelines_config
 *   GET|POST             /2.0/repositories/{ws}/{repo}/pipelines_config/variables/
 *   GET|PUT|DELETE       /2.0/repositories/{ws}/{repo}/pipelines_config/variables/{variable_uuid}
 *   GET|POST             /2.0/repositories/{ws}/{repo}/environments/
 *   GET|DELETE           /2.0/repositories/{ws}/{repo}/environments/{environment_uuid}
 *   POST                 /2.0/repositories/{ws}/{repo}/environments/{environment_uuid}/changes/   (202)
 *   GET|POST             /2.0/repositories/{ws}/{repo}/deployments_config/environments/{environment_uuid}/variables
 *   PUT|DELETE           /2.0/repositories/{ws}/{repo}/deployments_config/environments/{environment_uuid}/variables/{variable_uuid}
 *
 * Behaviour: bearer token required (401 without or with a wrong one; 403 on writes with the
 * read-only token), paged lists `{ page, pagelen, size, values, next }` with a small default page
 * (`?pagelen=` honoured up to a maximum, `next` an absolute URL), 201 on create, 204 on delete,
 * 409 on a duplicate variable key or environment name, 400 on malformed JSON or missing fields,
 * 404 on unknown repositories, UUIDs and paths, 405 on other methods; secured values never returned;
 * UUIDs in braces. Fault injection: failNext, dropNextCreate, deleteOutOfBand; every request is logged.
 */
import * as crypto from "crypto";
import * as http from "http";
import { freePort } from "./postgres";

export type FakeEnvironmentType = "Test" | "Staging" | "Production";

/** A stored variable (the fake keeps values; the API never returns secured ones). */
export interface StoredVariable {
    uuid: string;
    key: string;
    value: string;
    secured: boolean;
}

/** A stored deployment environment with its variables. */
export interface StoredEnvironment {
    uuid: string;
    name: string;
    slug: string;
    type: FakeEnvironmentType;
    variables: StoredVariable[];
}

interface RepoState {
    pipelinesEnabled: boolean;
    variables: StoredVariable[];
    environments: StoredEnvironment[];
}

/** One request as the fake saw it (the Authorization value itself is not kept). */
export interface LoggedRequest {
    method: string;
    /** Path as sent (percent-encoded). */
    path: string;
    /** Query parameters. */
    query: Record<string, string>;
    /** How the request authenticated. */
    auth: "none" | "valid" | "read-only" | "invalid";
    /** Parsed JSON body, when any. */
    body?: unknown;
    /** Status answered; 0 when the connection was dropped. */
    status: number;
}

export interface FakeBitbucketOptions {
    /** The bearer token with full access. */
    token: string;
    /** A bearer token that may read but not write (403 on writes). */
    readOnlyToken?: string;
    /** Page length when the client sends none (default 2, so tests paginate). */
    pagelen?: number;
    /** Largest `pagelen` honoured (default 100, Bitbucket's usual maximum). */
    maxPagelen?: number;
}

interface Fault {
    pattern: RegExp;
    method?: string;
    status: number;
    times: number;
    headers: Record<string, string>;
}

const TYPE_RANK: Record<FakeEnvironmentType, number> = { Test: 0, Staging: 1, Production: 2 };
const TYPE_UUID: Record<FakeEnvironmentType, string> = {
    Test: "{c8e1f3a2-0d5b-4f6e-9a7c-1b2d3e4f5a60}",
    Staging: "{d9f2a4b3-1e6c-4a7f-8b8d-2c3e4f5a6b71}",
    Production: "{eaa3b5c4-2f7d-4b8a-9c9e-3d4f5a6b7c82}",
};
const KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

class HttpFailure extends Error {
    constructor(public readonly status: number, message: string, public readonly detail?: unknown) {
        super(message);
    }
}

const newUuid = () => `{${crypto.randomUUID()}}`;
const slugOf = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");

export class FakeBitbucket {
    /** Every request, oldest first. */
    readonly log: LoggedRequest[] = [];
    private readonly repos = new Map<string, RepoState>();
    private faults: Fault[] = [];
    private dropCreate = 0;
    private readonly opts: Required<Omit<FakeBitbucketOptions, "readOnlyToken">> & Pick<FakeBitbucketOptions, "readOnlyToken">;

    private constructor(private readonly server: http.Server, readonly port: number, options: FakeBitbucketOptions) {
        this.opts = { pagelen: 2, maxPagelen: 100, ...options };
    }

    /** Starts the fake on a free loopback port. */
    static async start(options: FakeBitbucketOptions): Promise<FakeBitbucket> {
        const port = await freePort();
        let fake: FakeBitbucket | undefined;
        // A client that hangs up mid-request must not become an unhandled rejection in the test process.
        const server = http.createServer((req, res) => void fake!.handle(req, res).catch(() => res.destroy()));
        await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(port, "127.0.0.1", () => resolve());
        });
        fake = new FakeBitbucket(server, port, options);
        return fake;
    }

    /** The API base URL (what the resources take as apiUrl). */
    get url(): string {
        return `http://127.0.0.1:${this.port}/2.0`;
    }

    /** Stops the server, cutting keep-alive connections. */
    async close(): Promise<void> {
        this.server.closeAllConnections();
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }

    // ----- state set-up and inspection (no HTTP) -----

    /**
     * Registers a repository. Like Bitbucket, every repository starts with the built-in Test, Staging
     * and Production environments (names capitalised, types to match); `defaultEnvironments: false` leaves them out.
     */
    addRepo(workspace: string, repoSlug: string, opts: { defaultEnvironments?: boolean; pipelinesEnabled?: boolean } = {}): void {
        const state: RepoState = { pipelinesEnabled: opts.pipelinesEnabled ?? false, variables: [], environments: [] };
        if (opts.defaultEnvironments ?? true) {
            for (const type of ["Test", "Staging", "Production"] as FakeEnvironmentType[]) {
                state.environments.push({ uuid: newUuid(), name: type, slug: slugOf(type), type, variables: [] });
            }
        }
        this.repos.set(`${workspace}/${repoSlug}`, state);
    }

    /** Adds a repository variable directly (as if made in the UI). */
    seedVariable(workspace: string, repoSlug: string, v: { key: string; value: string; secured?: boolean }): StoredVariable {
        const stored = { uuid: newUuid(), key: v.key, value: v.value, secured: v.secured ?? false };
        this.repo(workspace, repoSlug).variables.push(stored);
        return stored;
    }

    /** Adds a deployment environment directly. */
    seedEnvironment(workspace: string, repoSlug: string, name: string, type: FakeEnvironmentType): StoredEnvironment {
        const env = { uuid: newUuid(), name, slug: slugOf(name), type, variables: [] };
        this.repo(workspace, repoSlug).environments.push(env);
        return env;
    }

    /** Repository variables as stored (values included, for assertions). */
    variables(workspace: string, repoSlug: string): StoredVariable[] {
        return this.repo(workspace, repoSlug).variables;
    }

    /** Deployment environments as stored. */
    environments(workspace: string, repoSlug: string): StoredEnvironment[] {
        return this.repo(workspace, repoSlug).environments;
    }

    /** Variables of one deployment environment as stored. */
    deploymentVariables(workspace: string, repoSlug: string, environmentUuid: string): StoredVariable[] {
        const env = this.repo(workspace, repoSlug).environments.find((e) => e.uuid === environmentUuid);
        if (!env) throw new Error(`fake: no environment ${environmentUuid} in ${workspace}/${repoSlug}`);
        return env.variables;
    }

    /** Whether Pipelines is enabled. */
    pipelinesEnabled(workspace: string, repoSlug: string): boolean {
        return this.repo(workspace, repoSlug).pipelinesEnabled;
    }

    /** Flips Pipelines out of band. */
    setPipelinesEnabled(workspace: string, repoSlug: string, enabled: boolean): void {
        this.repo(workspace, repoSlug).pipelinesEnabled = enabled;
    }

    // ----- fault injection -----

    /**
     * The next `times` requests whose path matches `pattern` (and `method`, when given) answer
     * `status` with `headers` (e.g. Retry-After) and a Bitbucket error body, before any other check.
     */
    failNext(pattern: RegExp, status: number, times = 1, headers: Record<string, string> = {}, method?: string): void {
        this.faults.push({ pattern, status, times, headers, method });
    }

    /** The next create (POST of a variable or environment) stores the object, then drops the connection unanswered. */
    dropNextCreate(): void {
        this.dropCreate++;
    }

    /** Deletes an object as someone in the UI would. */
    deleteOutOfBand(kind: "variable" | "environment" | "deploymentVariable", workspace: string, repoSlug: string, keyOrName: string, environmentUuid?: string): void {
        const repo = this.repo(workspace, repoSlug);
        const list: { key?: string; name?: string }[] =
            kind === "variable" ? repo.variables : kind === "environment" ? repo.environments : this.deploymentVariables(workspace, repoSlug, environmentUuid ?? "");
        const at = list.findIndex((o) => (kind === "environment" ? o.name : o.key) === keyOrName);
        if (at < 0) throw new Error(`fake: no ${kind} ${keyOrName} to delete in ${workspace}/${repoSlug}`);
        list.splice(at, 1);
    }

    /** Requests matching method and a path pattern. */
    requests(method: string, pattern: RegExp): LoggedRequest[] {
        return this.log.filter((r) => r.method === method && pattern.test(r.path));
    }

    private repo(workspace: string, repoSlug: string): RepoState {
        const r = this.repos.get(`${workspace}/${repoSlug}`);
        if (!r) throw new Error(`fake: unknown repository ${workspace}/${repoSlug}`);
        return r;
    }

    // ----- HTTP -----

    private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        const url = new URL(req.url ?? "/", `http://127.0.0.1:${this.port}`);
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const text = Buffer.concat(chunks).toString("utf8");
        const entry: LoggedRequest = { method: req.method ?? "GET", path: url.pathname, query: Object.fromEntries(url.searchParams), auth: "none", status: 0 };
        this.log.push(entry);
        if (text) {
            try {
                entry.body = JSON.parse(text);
            } catch {
                entry.body = text;
            }
        }
        const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
            entry.status = status;
            const payload = body === undefined ? "" : JSON.stringify(body);
            res.writeHead(status, { ...(payload ? { "Content-Type": "application/json" } : {}), ...headers });
            res.end(payload);
        };
        const error = (status: number, message: string, detail?: unknown, headers?: Record<string, string>) =>
            send(status, { type: "error", error: detail === undefined ? { message } : { message, detail } }, headers);

        const fault = this.faults.find((f) => f.times > 0 && f.pattern.test(url.pathname) && (!f.method || f.method === entry.method));
        if (fault) {
            fault.times--;
            return error(fault.status, `Injected failure (${fault.status})`, undefined, fault.headers);
        }

        const authz = req.headers.authorization ?? "";
        const bearer = /^Bearer (.+)$/.exec(authz)?.[1];
        entry.auth = !authz ? "none" : bearer === this.opts.token ? "valid" : bearer && bearer === this.opts.readOnlyToken ? "read-only" : "invalid";
        if (entry.auth === "none" || entry.auth === "invalid") return error(401, "Access token expired or invalid.");
        if (entry.auth === "read-only" && entry.method !== "GET") {
            return error(403, "Your credentials lack one or more required privilege scopes.", { required: ["pipeline:variable"], granted: ["pipeline"] });
        }

        try {
            const out = this.route(entry.method, url, text, () => this.shouldDrop());
            if (out === "drop") {
                // The object is stored; the client never learns it.
                req.socket.destroy();
                return;
            }
            send(out.status, out.body);
        } catch (e) {
            if (e instanceof HttpFailure) return error(e.status, e.message, e.detail);
            return error(500, `fake: ${(e as Error).message}`);
        }
    }

    private shouldDrop(): boolean {
        if (this.dropCreate === 0) return false;
        this.dropCreate--;
        return true;
    }

    /** Dispatches one authenticated request; returns the answer, or "drop" after a stored create. */
    private route(method: string, url: URL, text: string, drop: () => boolean): { status: number; body?: unknown } | "drop" {
        const prefix = "/2.0/";
        if (!url.pathname.startsWith(prefix)) throw new HttpFailure(404, "Resource not found");
        const parts = url.pathname.slice(prefix.length).split("/");
        if (parts[parts.length - 1] === "") parts.pop(); // a trailing slash is the same collection
        let segs: string[];
        try {
            segs = parts.map(decodeURIComponent);
        } catch {
            throw new HttpFailure(400, "Malformed path");
        }
        if (segs[0] !== "repositories" || segs.length < 3) throw new HttpFailure(404, "Resource not found");
        const [, ws, slug, ...rest] = segs;
        const repo = this.repos.get(`${ws}/${slug}`);
        if (!repo) throw new HttpFailure(404, `Repository ${ws}/${slug} not found`);
        const path = rest.join("/");
        const allow = (...methods: string[]) => {
            if (!methods.includes(method)) throw new HttpFailure(405, `Method ${method} not allowed on this resource`);
        };
        const body = () => parseJson(text);

        if (path === "pipelines_config") {
            allow("GET", "PUT");
            if (method === "PUT") {
                const b = body();
                if (typeof b.enabled !== "boolean") throw new HttpFailure(400, "enabled must be a boolean");
                repo.pipelinesEnabled = b.enabled;
            }
            return { status: 200, body: { type: "repository_pipelines_configuration", enabled: repo.pipelinesEnabled, repository: { type: "repository", full_name: `${ws}/${slug}` } } };
        }

        if (rest[0] === "pipelines_config" && rest[1] === "variables") {
            if (rest.length === 2) return this.variableCollection(method, url, repo.variables, "pipeline_variable", body, drop);
            if (rest.length === 3) return this.variableItem(method, repo.variables, rest[2], "pipeline_variable", body, true);
        }

        if (rest[0] === "environments") {
            if (rest.length === 1) {
                allow("GET", "POST");
                if (method === "GET") return { status: 200, body: this.page(url, repo.environments.map(envJson)) };
                const b = body();
                if (typeof b.name !== "string" || b.name.trim() === "") throw new HttpFailure(400, "name is required");
                const type = (b.environment_type as { name?: unknown } | undefined)?.name;
                if (typeof type !== "string" || !(type in TYPE_RANK)) throw new HttpFailure(400, "environment_type.name must be Test, Staging or Production");
                if (repo.environments.some((e) => e.name.toLowerCase() === (b.name as string).toLowerCase())) {
                    throw new HttpFailure(409, `An environment with the name ${b.name} already exists.`);
                }
                const env: StoredEnvironment = { uuid: newUuid(), name: b.name, slug: slugOf(b.name), type: type as FakeEnvironmentType, variables: [] };
                repo.environments.push(env);
                return drop() ? "drop" : { status: 201, body: envJson(env) };
            }
            const at = repo.environments.findIndex((e) => e.uuid === rest[1]);
            if (at < 0) throw new HttpFailure(404, `Environment ${rest[1]} not found`);
            const env = repo.environments[at];
            if (rest.length === 2) {
                allow("GET", "DELETE");
                if (method === "GET") return { status: 200, body: envJson(env) };
                repo.environments.splice(at, 1);
                return { status: 204 };
            }
            if (rest.length === 3 && rest[2] === "changes") {
                allow("POST");
                const change = body().change as { name?: unknown } | undefined;
                if (change && typeof change.name === "string" && change.name.trim()) {
                    if (repo.environments.some((e) => e !== env && e.name.toLowerCase() === (change.name as string).toLowerCase())) {
                        throw new HttpFailure(409, `An environment with the name ${change.name} already exists.`);
                    }
                    env.name = change.name;
                    env.slug = slugOf(change.name);
                }
                return { status: 202 };
            }
        }

        if (rest[0] === "deployments_config" && rest[1] === "environments" && rest[3] === "variables") {
            const env = repo.environments.find((e) => e.uuid === rest[2]);
            if (!env) throw new HttpFailure(404, `Environment ${rest[2]} not found`);
            if (rest.length === 4) return this.variableCollection(method, url, env.variables, "deployment_variable", body, drop);
            // No GET of a single deployment variable in the API.
            if (rest.length === 5) return this.variableItem(method, env.variables, rest[4], "deployment_variable", body, false);
        }

        throw new HttpFailure(404, "Resource not found");
    }

    private variableCollection(
        method: string,
        url: URL,
        list: StoredVariable[],
        type: string,
        body: () => Record<string, unknown>,
        drop: () => boolean,
    ): { status: number; body?: unknown } | "drop" {
        if (method === "GET") return { status: 200, body: this.page(url, list.map((v) => variableJson(v, type))) };
        if (method !== "POST") throw new HttpFailure(405, `Method ${method} not allowed on this resource`);
        const b = body();
        if (typeof b.key !== "string" || !KEY_PATTERN.test(b.key)) throw new HttpFailure(400, "key is required: letters, digits and underscores, not starting with a digit");
        if (typeof b.value !== "string") throw new HttpFailure(400, "value is required");
        if (b.secured !== undefined && typeof b.secured !== "boolean") throw new HttpFailure(400, "secured must be a boolean");
        if (list.some((v) => v.key === b.key)) throw new HttpFailure(409, `A variable with the key ${b.key} already exists.`, { key: b.key });
        const v: StoredVariable = { uuid: newUuid(), key: b.key, value: b.value, secured: b.secured === true };
        list.push(v);
        return drop() ? "drop" : { status: 201, body: variableJson(v, type) };
    }

    private variableItem(
        method: string,
        list: StoredVariable[],
        uuid: string,
        type: string,
        body: () => Record<string, unknown>,
        hasGet: boolean,
    ): { status: number; body?: unknown } {
        const allowed = hasGet ? ["GET", "PUT", "DELETE"] : ["PUT", "DELETE"];
        if (!allowed.includes(method)) throw new HttpFailure(405, `Method ${method} not allowed on this resource`);
        const at = list.findIndex((v) => v.uuid === uuid);
        if (at < 0) throw new HttpFailure(404, `Variable ${uuid} not found`);
        const v = list[at];
        if (method === "GET") return { status: 200, body: variableJson(v, type) };
        if (method === "DELETE") {
            list.splice(at, 1);
            return { status: 204 };
        }
        const b = body();
        if (b.key !== undefined && (typeof b.key !== "string" || !KEY_PATTERN.test(b.key))) throw new HttpFailure(400, "key must be letters, digits and underscores");
        if (b.value !== undefined && typeof b.value !== "string") throw new HttpFailure(400, "value must be a string");
        if (b.secured !== undefined && typeof b.secured !== "boolean") throw new HttpFailure(400, "secured must be a boolean");
        if (v.secured && b.secured === false) throw new HttpFailure(400, "A secured variable cannot be made unsecured; delete it and create it again.");
        if (typeof b.key === "string" && b.key !== v.key && list.some((o) => o.key === b.key)) {
            throw new HttpFailure(409, `A variable with the key ${b.key} already exists.`);
        }
        if (typeof b.key === "string") v.key = b.key;
        if (typeof b.value === "string") v.value = b.value;
        if (b.secured === true) v.secured = true;
        return { status: 200, body: variableJson(v, type) };
    }

    /** One page of `items` per `page` and `pagelen`, with an absolute `next`. */
    private page<T>(url: URL, items: T[]): { page: number; pagelen: number; size: number; values: T[]; next?: string; previous?: string } {
        const positive = (name: string, fallback: number) => {
            const raw = url.searchParams.get(name);
            if (raw === null) return fallback;
            const n = Number(raw);
            if (!Number.isInteger(n) || n < 1) throw new HttpFailure(400, `${name} must be a positive integer`);
            return n;
        };
        const pagelen = Math.min(positive("pagelen", this.opts.pagelen), this.opts.maxPagelen);
        const page = positive("page", 1);
        const start = (page - 1) * pagelen;
        const out: { page: number; pagelen: number; size: number; values: T[]; next?: string; previous?: string } = {
            page,
            pagelen,
            size: items.length,
            values: items.slice(start, start + pagelen),
        };
        const link = (p: number) => {
            const u = new URL(url.toString());
            u.searchParams.set("page", String(p));
            return `http://127.0.0.1:${this.port}${u.pathname}${u.search}`;
        };
        if (start + pagelen < items.length) out.next = link(page + 1);
        if (page > 1) out.previous = link(page - 1);
        return out;
    }
}

function parseJson(text: string): Record<string, unknown> {
    let parsed: unknown;
    try {
        parsed = JSON.parse(text);
    } catch {
        throw new HttpFailure(400, "Malformed JSON in the request body");
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new HttpFailure(400, "The request body must be a JSON object");
    return parsed as Record<string, unknown>;
}

/** A variable as the API shows it: never the value of a secured one. */
function variableJson(v: StoredVariable, type: string): Record<string, unknown> {
    return v.secured ? { type, uuid: v.uuid, key: v.key, secured: true } : { type, uuid: v.uuid, key: v.key, value: v.value, secured: false };
}

function envJson(e: StoredEnvironment): Record<string, unknown> {
    return {
        type: "deployment_environment",
        uuid: e.uuid,
        name: e.name,
        slug: e.slug,
        rank: TYPE_RANK[e.type],
        hidden: false,
        environment_type: { type: "deployment_environment_type", uuid: TYPE_UUID[e.type], name: e.type, rank: TYPE_RANK[e.type] },
        lock: { type: "deployment_environment_lock_open", name: "OPEN" },
        restrictions: { type: "deployment_restrictions_configuration", admin_only: false },
    };
}
