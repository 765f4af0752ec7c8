/**
 * A fake Azure DevOps REST API (7.1) on 127.0.0.1 for the azuredevops dynamic provider tests.
 *
 * It implements the documented contract of the routes the providers use: exact paths and methods,
 * api-version required on every call (400 without it; preview-only areas need "-preview"),
 * Basic-with-PAT or Bearer auth (203 sign-in page without credentials, 401 with a wrong token),
 * continuation-token paging (x-ms-continuationtoken header, continuationToken query) with a small
 * page size, duplicates answered as the service does (409 VariableGroupExistsException,
 * SecureFileExistsException, EnvironmentExistsException; 400 DefinitionExistsException), secret
 * variable values and secure file contents never returned, 404s with the service's typeKeys, and
 * error bodies shaped { $id, innerException, message, typeName, typeKey, errorCode, eventId }.
 *
 * Assumption (the docs name no error for it): a PUT of a build definition with a stale `revision`
 * answers 409.
 *
 * Checks (pipelines/checks/configurations) take only the documented check types (Approval, Task
 * Check with a definitionRef, Exclusive Lock, Extends Check) on existing resources, and go with their
 * resource. Branch policies (policy/configurations, REST 7.1, not preview) take only known policy
 * types; a Build policy must name an existing definition and an Exact/Prefix scope with a repository
 * and ref. `usage()` evaluates a run's access to a protected resource the way the service does
 * (pipeline permission, then every check on it), and `pullRequestBuilds()` which pipelines a pull
 * request into a branch queues.
 *
 * Fault injection: failNext (status, times, headers), dropNextCreate (store, then drop the
 * connection), deleteOutOfBand, plus a request log.
 */
import * as crypto from "crypto";
import * as http from "http";
import { freePort } from "./postgres";

/** How to start the fake. */
export interface FakeAzureDevopsOptions {
    /** Organization name in URLs (default "acme"). */
    organization?: string;
    /** Projects (default one project "dbt"). */
    projects?: { id?: string; name: string }[];
    /** PATs accepted with Basic auth (any user name). */
    pats?: string[];
    /** Tokens accepted with Bearer auth. */
    bearerTokens?: string[];
    /** Items per list page (default 2, so tests page). */
    pageSize?: number;
}

/** One request as the fake saw it. */
export interface LoggedRequest {
    method: string;
    path: string;
    query: Record<string, string>;
    /** HTTP status sent, or 0 when the connection was dropped. */
    status: number;
    auth: "basic" | "bearer" | "none" | "other";
    contentType?: string;
}

/** Kinds of stored objects (for deleteOutOfBand). */
export type FakeKind = "variablegroup" | "securefile" | "definition" | "environment" | "check" | "policy";

/** What a run of a pipeline on a branch gets when it asks for a protected resource. */
export interface FakeUsage {
    /** The pipeline may use the resource at all (permission granted to it or to all pipelines). */
    authorized: boolean;
    /** Checks that fail the run outright (e.g. branch control for another branch). */
    rejectedBy: string[];
    /** Checks the run waits on (approvals, an exclusive lock). */
    waitsFor: string[];
    /** The run gets the resource with no check in its way. */
    usableWithoutCheck: boolean;
}

interface StoredPolicy {
    id: number;
    projectId: string;
    revision: number;
    isEnabled: boolean;
    isBlocking: boolean;
    type: { id: string };
    settings: Record<string, any>;
    createdDate: string;
}

interface Project {
    id: string;
    name: string;
}

interface StoredVariable {
    value: string;
    isSecret: boolean;
}

interface StoredGroup {
    id: number;
    name: string;
    description: string;
    type: string;
    variables: Record<string, StoredVariable>;
    projectIds: string[];
    createdOn: string;
    modifiedOn: string;
}

interface StoredFile {
    id: string;
    name: string;
    projectId: string;
    content: Buffer;
    properties: Record<string, string>;
    createdOn: string;
    modifiedOn: string;
}

interface StoredDefinition {
    id: number;
    projectId: string;
    revision: number;
    body: Record<string, any>;
}

interface StoredEnvironment {
    id: number;
    name: string;
    description: string;
    projectId: string;
    createdOn: string;
    lastModifiedOn: string;
}

interface StoredCheck {
    id: number;
    projectId: string;
    version: number;
    type: { id: string; name?: string };
    settings: Record<string, any>;
    resource: { type: string; id: string; name?: string };
    timeout: number;
    createdOn: string;
}

interface StoredPermission {
    allPipelines: { authorized: boolean; authorizedOn: string } | null;
    pipelines: Map<number, { id: number; authorized: boolean; authorizedOn: string }>;
}

interface Failure {
    path: RegExp;
    method?: string;
    status: number;
    times: number;
    headers: Record<string, string>;
}

class HttpError extends Error {
    constructor(
        readonly status: number,
        readonly typeKey: string,
        message: string,
    ) {
        super(message);
    }
}

const USER = { id: "0f4c9c43-9b8f-4b9c-8a4a-2f8cbbf6d8a1", displayName: "Pulumi Bot", uniqueName: "bot@acme.example" };
const SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body>Sign in to your account</body></html>";
const MAX_SECURE_FILE = 10 * 1024 * 1024;
// Areas only offered as previews in REST 7.1.
const PREVIEW_ONLY = /\/_apis\/(distributedtask\/securefiles|distributedtask\/environments|pipelines\/checks|pipelines\/pipelinepermissions)/;
// Check types (upper case) and the branch control task a Task Check may run.
const APPROVAL_CHECK = "8C6F20A7-A545-4486-9777-F762FAFE0D4D";
const TASK_CHECK = "FE1DE3EE-A436-41B4-BB20-F6EB4CB879A7";
const EXCLUSIVE_LOCK_CHECK = "2EF31AD6-BAA0-403A-8B45-2CBC9B4E5563";
const EXTENDS_CHECK = "4020E66E-B0F3-47E1-BC88-48F3CC59B5F3";
const BRANCH_CONTROL_TASK = "86b05a0c-73e6-4f7d-b3cf-e38f3b39a75b";
const CHECKED_RESOURCE_TYPES = ["environment", "variablegroup", "securefile", "endpoint", "queue", "repository"];
// Policy types (lower case) the service knows, by id.
const BUILD_POLICY = "0609b952-1397-4640-95ec-e00a01b2c241";
const POLICY_TYPES: Record<string, string> = {
    [BUILD_POLICY]: "Build",
    "fa4e907d-c16b-4a4c-9dfa-4906e5d171dd": "Minimum number of reviewers",
    "fd2167ab-b0be-447a-8ec8-39368250530e": "Required reviewers",
    "cbdc66da-9728-4af8-aada-9a5a32e4a226": "Status",
};

/** The fake server. */
export class FakeAzureDevops {
    readonly organization: string;
    readonly projects: Project[];
    /** Every request, in order. */
    readonly log: LoggedRequest[] = [];
    url = "";
    pageSize: number;
    private pats: Set<string>;
    private bearers: Set<string>;
    private server?: http.Server;
    private failures: Failure[] = [];
    private drops: { path: RegExp; times: number }[] = [];
    private nextId = 1;
    private readonly groups = new Map<number, StoredGroup>();
    private readonly files = new Map<string, StoredFile>();
    private readonly definitions = new Map<number, StoredDefinition>();
    private readonly environments = new Map<number, StoredEnvironment>();
    private readonly checks = new Map<number, StoredCheck>();
    private readonly permissions = new Map<string, StoredPermission>();
    private readonly policies = new Map<number, StoredPolicy>();
    private readonly endpoints = new Map<string, { id: string; name: string; type: string; projectId: string }>();

    constructor(opts: FakeAzureDevopsOptions = {}) {
        this.organization = opts.organization ?? "acme";
        this.projects = (opts.projects ?? [{ name: "dbt" }]).map((p) => ({ id: p.id ?? crypto.randomUUID(), name: p.name }));
        this.pats = new Set(opts.pats ?? []);
        this.bearers = new Set(opts.bearerTokens ?? []);
        this.pageSize = opts.pageSize ?? 2;
    }

    /** Starts listening on a free loopback port. */
    async start(): Promise<this> {
        const port = await freePort();
        this.server = http.createServer((req, res) => void this.handle(req, res));
        await new Promise<void>((resolve, reject) => {
            this.server!.once("error", reject);
            this.server!.listen(port, "127.0.0.1", () => resolve());
        });
        this.url = `http://127.0.0.1:${port}`;
        return this;
    }

    /** Stops the server and drops open connections. */
    async close(): Promise<void> {
        if (!this.server) return;
        this.server.closeAllConnections();
        await new Promise<void>((resolve) => this.server!.close(() => resolve()));
        this.server = undefined;
    }

    /** Replaces the accepted tokens (e.g. to simulate a revoked PAT). */
    setTokens(tokens: { pats?: string[]; bearerTokens?: string[] }): void {
        this.pats = new Set(tokens.pats ?? []);
        this.bearers = new Set(tokens.bearerTokens ?? []);
    }

    /** The next `times` requests whose path matches answer `status` with `headers` (203 answers the sign-in page). */
    failNext(path: RegExp, status: number, times = 1, headers: Record<string, string> = {}, method?: string): void {
        this.failures.push({ path, status, times, headers, method });
    }

    /** The next create (POST) matching `path` stores the object, then drops the connection without answering. */
    dropNextCreate(path: RegExp = /./): void {
        this.drops.push({ path, times: 1 });
    }

    /** Deletes a stored object behind the providers' back. */
    deleteOutOfBand(kind: FakeKind, id: string | number): void {
        const gone =
            kind === "variablegroup"
                ? this.removeGroup(Number(id))
                : kind === "securefile"
                  ? this.removeFile(String(id))
                  : kind === "definition"
                    ? this.definitions.delete(Number(id))
                    : kind === "environment"
                      ? this.removeEnvironment(Number(id))
                      : kind === "policy"
                        ? this.policies.delete(Number(id))
                        : this.checks.delete(Number(id));
        if (!gone) throw new Error(`fake Azure DevOps: no ${kind} ${id} to delete`);
    }

    /** Requests matching method and path regex. */
    requests(method: string, path: RegExp): LoggedRequest[] {
        return this.log.filter((r) => r.method === method && path.test(r.path));
    }

    // ---- inspection and seeding (the test's view of the service's storage) ----

    project(name = this.projects[0].name): Project {
        const p = this.findProject(name);
        if (!p) throw new Error(`fake Azure DevOps: no project ${name}`);
        return p;
    }

    variableGroupsNamed(name: string): StoredGroup[] {
        return [...this.groups.values()].filter((g) => same(g.name, name));
    }

    variableGroup(id: number): StoredGroup | undefined {
        return this.groups.get(id);
    }

    secureFilesNamed(name: string): StoredFile[] {
        return [...this.files.values()].filter((f) => same(f.name, name));
    }

    secureFile(id: string): StoredFile | undefined {
        return this.files.get(id);
    }

    definitionsNamed(name: string): StoredDefinition[] {
        return [...this.definitions.values()].filter((d) => same(d.body.name, name));
    }

    definition(id: number): StoredDefinition | undefined {
        return this.definitions.get(id);
    }

    environmentsNamed(name: string): StoredEnvironment[] {
        return [...this.environments.values()].filter((e) => same(e.name, name));
    }

    environment(id: number): StoredEnvironment | undefined {
        return this.environments.get(id);
    }

    checksOn(environmentId: number): StoredCheck[] {
        return [...this.checks.values()].filter((c) => c.resource.type === "environment" && c.resource.id === String(environmentId));
    }

    check(id: number): StoredCheck | undefined {
        return this.checks.get(id);
    }

    /** Checks on any protected resource. */
    checksOnResource(type: string, id: string | number): StoredCheck[] {
        return [...this.checks.values()].filter((c) => c.resource.type === type && c.resource.id === String(id));
    }

    /** Stored branch policies. */
    allPolicies(): StoredPolicy[] {
        return [...this.policies.values()];
    }

    /** Definitions a pull request into `refName` of `repositoryId` queues: enabled Build policies whose scope matches. */
    pullRequestBuilds(repositoryId: string, refName: string): { definitionId: number; blocking: boolean }[] {
        return [...this.policies.values()]
            .filter((p) => p.isEnabled && p.type.id.toLowerCase() === BUILD_POLICY)
            .filter((p) => (p.settings.scope as any[]).some((sc) => same(sc.repositoryId, repositoryId) && scopeMatches(sc, refName)))
            .map((p) => ({ definitionId: Number(p.settings.buildDefinitionId), blocking: p.isBlocking }));
    }

    /**
     * A run of `pipelineId` on `sourceBranch` asking for a protected resource: the pipeline needs a
     * permission, then every check on the resource is evaluated (branch control against the run's
     * source branch; approvals and exclusive locks make it wait).
     */
    usage(resourceType: string, resourceId: string | number, run: { pipelineId: number; sourceBranch: string }): FakeUsage {
        const p = this.permissions.get(permKey(this.projects[0].id, resourceType, String(resourceId)));
        const authorized = !!p && (!!p.allPipelines?.authorized || !!p.pipelines.get(run.pipelineId)?.authorized);
        const rejectedBy: string[] = [];
        const waitsFor: string[] = [];
        for (const c of this.checksOnResource(resourceType, resourceId)) {
            const type = c.type.id.toUpperCase();
            if (type === APPROVAL_CHECK) waitsFor.push(`approval ${c.id}`);
            else if (type === EXCLUSIVE_LOCK_CHECK) waitsFor.push(`exclusive lock ${c.id}`);
            else if (type === TASK_CHECK && String(c.settings.definitionRef?.id).toLowerCase() === BRANCH_CONTROL_TASK) {
                const allowed = String(c.settings.inputs?.allowedBranches ?? "")
                    .split(",")
                    .map((b) => b.trim())
                    .filter(Boolean);
                if (!allowed.some((b) => wildcard(b)(run.sourceBranch))) rejectedBy.push(`branch control ${c.id} (allows ${allowed.join(", ")})`);
            } else waitsFor.push(`check ${c.id}`);
        }
        return { authorized, rejectedBy, waitsFor, usableWithoutCheck: authorized && rejectedBy.length === 0 && waitsFor.length === 0 };
    }

    permission(projectId: string, type: string, id: string | number): StoredPermission | undefined {
        return this.permissions.get(permKey(projectId, type, String(id)));
    }

    /** Adds a variable group directly, as if made in the web UI. */
    seedVariableGroup(name: string, variables: Record<string, StoredVariable>, project = this.projects[0].name): StoredGroup {
        const now = new Date().toISOString();
        const g: StoredGroup = {
            id: this.nextId++,
            name,
            description: "made by hand",
            type: "Vsts",
            variables,
            projectIds: [this.project(project).id],
            createdOn: now,
            modifiedOn: now,
        };
        this.groups.set(g.id, g);
        return g;
    }

    /** Adds a secure file directly. */
    seedSecureFile(name: string, content: string, project = this.projects[0].name): StoredFile {
        const now = new Date().toISOString();
        const f: StoredFile = {
            id: crypto.randomUUID(),
            name,
            projectId: this.project(project).id,
            content: Buffer.from(content),
            properties: {},
            createdOn: now,
            modifiedOn: now,
        };
        this.files.set(f.id, f);
        return f;
    }

    /** Adds a YAML pipeline directly. */
    seedDefinition(name: string, path = "\\", project = this.projects[0].name): StoredDefinition {
        const id = this.nextId++;
        const d: StoredDefinition = {
            id,
            projectId: this.project(project).id,
            revision: 3,
            body: {
                name,
                path,
                type: "build",
                process: { type: 2, yamlFilename: "old.yml" },
                repository: { id: "old", name: "old", type: "TfsGit", defaultBranch: "refs/heads/old" },
            },
        };
        this.definitions.set(id, d);
        return d;
    }

    /** Adds a service connection (service endpoint) directly, as made in the UI. */
    seedServiceEndpoint(name: string, type = "AWS", project = this.projects[0].name): { id: string; name: string } {
        const e = { id: crypto.randomUUID(), name, type, projectId: this.project(project).id };
        this.endpoints.set(e.id, e);
        return e;
    }

    /** Adds an environment directly. */
    seedEnvironment(name: string, project = this.projects[0].name): StoredEnvironment {
        const now = new Date().toISOString();
        const e: StoredEnvironment = {
            id: this.nextId++,
            name,
            description: "made by hand",
            projectId: this.project(project).id,
            createdOn: now,
            lastModifiedOn: now,
        };
        this.environments.set(e.id, e);
        return e;
    }

    /** Adds a check configuration on an environment directly (e.g. a branch control or an approval made in the UI). */
    seedCheck(environmentId: number, typeId: string, settings: Record<string, any> = {}): StoredCheck {
        const e = this.environments.get(environmentId);
        if (!e) throw new Error(`fake Azure DevOps: no environment ${environmentId}`);
        const c: StoredCheck = {
            id: this.nextId++,
            projectId: e.projectId,
            version: 1,
            type: { id: typeId },
            settings,
            resource: { type: "environment", id: String(environmentId), name: e.name },
            timeout: 43200,
            createdOn: new Date().toISOString(),
        };
        this.checks.set(c.id, c);
        return c;
    }

    // ---- request handling ----

    private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        const url = new URL(req.url ?? "/", "http://fake");
        const query = Object.fromEntries(url.searchParams.entries());
        const entry: LoggedRequest = {
            method: req.method ?? "GET",
            path: url.pathname,
            query,
            status: 0,
            auth: authKind(req.headers.authorization),
            contentType: req.headers["content-type"],
        };
        this.log.push(entry);
        res.on("finish", () => (entry.status = res.statusCode));
        const raw = await readAll(req);
        try {
            const failure = this.failures.find((f) => f.times > 0 && f.path.test(url.pathname) && (!f.method || f.method === req.method));
            if (failure) {
                failure.times--;
                if (failure.status === 203) return send(res, 203, SIGN_IN_PAGE, { "content-type": "text/html; charset=utf-8", ...failure.headers });
                throw Object.assign(new HttpError(failure.status, failureKey(failure.status), `Injected failure ${failure.status}.`), {
                    headers: failure.headers,
                });
            }
            this.authenticate(req, res);
            if (res.writableEnded) return;
            const version = apiVersion(req, query);
            if (!version) {
                throw new HttpError(
                    400,
                    "VssVersionNotSpecifiedException",
                    `No api-version was supplied for the "${req.method}" request. The version must be supplied either as part of the Accept header (e.g. "application/json; api-version=1.0") or as a query parameter (e.g. '?api-version=1.0').`,
                );
            }
            if (!/^\d+\.\d+(-preview(\.\d+)?)?$/.test(version))
                throw new HttpError(400, "VssInvalidApiVersionException", `The api-version '${version}' is not valid.`);
            if (PREVIEW_ONLY.test(url.pathname) && !version.includes("-preview")) {
                throw new HttpError(
                    400,
                    "VssInvalidPreviewVersionException",
                    `The requested version "${version}" of the resource is under preview. The -preview flag must be supplied in the api-version for such requests. For example: "${version}-preview"`,
                );
            }
            await this.route(req, res, url, query, raw);
        } catch (err) {
            if (res.writableEnded || res.destroyed) return;
            if (err instanceof HttpError) return sendError(res, err, (err as any).headers ?? {});
            sendError(res, new HttpError(500, "Exception", `Fake server error: ${(err as Error).message}`));
        }
    }

    private authenticate(req: http.IncomingMessage, res: http.ServerResponse): void {
        const h = req.headers.authorization;
        // Without credentials the service answers a sign-in page with 203, not 401.
        if (!h) return void send(res, 203, SIGN_IN_PAGE, { "content-type": "text/html; charset=utf-8" });
        let ok = false;
        if (h.startsWith("Basic ")) {
            const decoded = Buffer.from(h.slice(6), "base64").toString("utf8");
            ok = this.pats.has(decoded.slice(decoded.indexOf(":") + 1));
        } else if (h.startsWith("Bearer ")) ok = this.bearers.has(h.slice(7));
        if (!ok)
            send(res, 401, "TF400813: The user '' is not authorized to access this resource.", {
                "content-type": "text/plain; charset=utf-8",
                "www-authenticate": 'Basic realm="https://dev.azure.com/"',
            });
    }

    private async route(req: http.IncomingMessage, res: http.ServerResponse, url: URL, q: Record<string, string>, raw: Buffer): Promise<void> {
        const seg = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
        const m = req.method ?? "GET";
        if (seg[0] !== this.organization) throw new HttpError(404, "OrganizationNotFoundException", `The organization ${seg[0]} could not be found.`);
        const json = () => parseJson(raw, req.headers["content-type"]);
        if (seg[1] === "_apis") {
            const r = seg.slice(2);
            if (r[0] === "projects" && r.length === 2) {
                allow(m, ["GET"]);
                const p = this.findProject(r[1]);
                if (!p) throw projectMissing(r[1]);
                return send(res, 200, { id: p.id, name: p.name, state: "wellFormed", visibility: "private" });
            }
            if (r[0] === "distributedtask" && r[1] === "variablegroups") {
                if (r.length === 2) {
                    allow(m, ["POST"]);
                    return this.createGroup(res, url, json());
                }
                if (r.length === 3) {
                    allow(m, ["PUT", "DELETE"]);
                    return m === "PUT" ? this.updateGroup(res, Number(r[2]), json()) : this.deleteGroup(res, Number(r[2]), q);
                }
            }
            throw notFound(url.pathname);
        }
        const project = this.findProject(seg[1]);
        if (seg[2] !== "_apis") throw notFound(url.pathname);
        if (!project) throw projectMissing(seg[1]);
        const r = seg.slice(3);
        const id = r.length >= 3 ? r[2] : undefined;
        const area = `${r[0]}/${r[1]}`;
        if (area === "distributedtask/variablegroups") {
            allow(m, ["GET"]);
            return id === undefined ? this.listGroups(res, project, q) : this.getGroup(res, project, Number(id));
        }
        if (area === "distributedtask/securefiles") {
            if (id === undefined) {
                allow(m, ["GET", "POST"]);
                return m === "POST" ? this.uploadFile(res, url, project, q, raw, req) : this.listFiles(res, project, q);
            }
            allow(m, ["GET", "PATCH", "DELETE"]);
            return m === "GET"
                ? this.getFile(res, project, id)
                : m === "PATCH"
                  ? this.patchFile(res, project, id, json())
                  : this.deleteFile(res, project, id);
        }
        if (area === "build/definitions") {
            if (id === undefined) {
                allow(m, ["GET", "POST"]);
                return m === "POST" ? this.createDefinition(res, url, project, json()) : this.listDefinitions(res, project, q);
            }
            allow(m, ["GET", "PUT", "DELETE"]);
            return m === "GET"
                ? this.getDefinition(res, project, Number(id))
                : m === "PUT"
                  ? this.putDefinition(res, project, Number(id), json())
                  : this.deleteDefinition(res, project, Number(id));
        }
        if (area === "distributedtask/environments") {
            if (id === undefined) {
                allow(m, ["GET", "POST"]);
                return m === "POST" ? this.createEnvironment(res, url, project, json()) : this.listEnvironments(res, project, q);
            }
            allow(m, ["GET", "PATCH", "DELETE"]);
            return m === "GET"
                ? this.getEnvironment(res, project, Number(id))
                : m === "PATCH"
                  ? this.patchEnvironment(res, project, Number(id), json())
                  : this.deleteEnvironment(res, project, Number(id));
        }
        if (area === "pipelines/checks" && r[2] === "configurations") {
            const cid = r[3];
            if (cid === undefined) {
                allow(m, ["GET", "POST"]);
                return m === "POST" ? this.createCheck(res, url, project, json()) : this.listChecks(res, project, q);
            }
            allow(m, ["GET", "PATCH", "DELETE"]);
            return m === "GET"
                ? this.getCheck(res, project, Number(cid), q)
                : m === "PATCH"
                  ? this.patchCheck(res, project, Number(cid), json())
                  : this.deleteCheck(res, project, Number(cid));
        }
        if (area === "serviceendpoint/endpoints" && id === undefined) {
            allow(m, ["GET"]);
            // Endpoints - Get Service Endpoints By Names: endpointNames is a comma-separated list, matched case-insensitively.
            const wanted = (q.endpointNames ?? "").split(",").map((n) => n.trim()).filter(Boolean);
            const value = [...this.endpoints.values()]
                .filter((e) => e.projectId === project.id && (wanted.length === 0 || wanted.some((n) => same(n, e.name))))
                .map((e) => ({ id: e.id, name: e.name, type: e.type, isReady: true, serviceEndpointProjectReferences: [{ projectReference: { id: project.id, name: project.name }, name: e.name }] }));
            return send(res, 200, { count: value.length, value });
        }
        if (area === "policy/configurations") {
            if (id === undefined) {
                allow(m, ["GET", "POST"]);
                return m === "POST" ? this.createPolicy(res, url, project, json()) : this.listPolicies(res, project, q);
            }
            allow(m, ["GET", "PUT", "DELETE"]);
            return m === "GET"
                ? send(res, 200, this.policyView(this.policyIn(project, Number(id)), project))
                : m === "PUT"
                  ? this.putPolicy(res, project, Number(id), json())
                  : this.deletePolicy(res, project, Number(id));
        }
        if (area === "pipelines/pipelinepermissions" && r.length === 4) {
            allow(m, ["GET", "PATCH"]);
            return m === "GET" ? this.getPermission(res, project, r[2], r[3]) : this.patchPermission(res, project, r[2], r[3], json());
        }
        throw notFound(url.pathname);
    }

    /** Answers a create, unless a drop was requested: then the object stays stored and the connection dies. */
    private created(res: http.ServerResponse, url: URL, body: unknown): void {
        const drop = this.drops.find((d) => d.times > 0 && d.path.test(url.pathname));
        if (drop) {
            drop.times--;
            res.socket?.destroy();
            return;
        }
        send(res, 200, body);
    }

    private paged<T>(res: http.ServerResponse, items: T[], q: Record<string, string>): void {
        const start = q.continuationToken ? Number(q.continuationToken) : 0;
        if (!Number.isInteger(start) || start < 0 || start > items.length)
            throw new HttpError(400, "InvalidContinuationTokenException", `The continuation token '${q.continuationToken}' is not valid.`);
        const top = q.$top ? Number(q.$top) : Infinity;
        const size = Math.min(this.pageSize, top > 0 ? top : this.pageSize);
        const page = items.slice(start, start + size);
        const headers: Record<string, string> = {};
        if (start + size < items.length) headers["x-ms-continuationtoken"] = String(start + size);
        send(res, 200, { count: page.length, value: page }, headers);
    }

    private findProject(nameOrId: string): Project | undefined {
        return this.projects.find((p) => same(p.name, nameOrId) || same(p.id, nameOrId));
    }

    // ---- variable groups ----

    private groupView(g: StoredGroup) {
        return {
            id: g.id,
            type: g.type,
            name: g.name,
            description: g.description,
            // Secret values are never returned.
            variables: Object.fromEntries(
                Object.entries(g.variables).map(([k, v]) => [k, v.isSecret ? { value: null, isSecret: true } : { value: v.value }]),
            ),
            createdBy: USER,
            createdOn: g.createdOn,
            modifiedBy: USER,
            modifiedOn: g.modifiedOn,
            isShared: false,
            variableGroupProjectReferences: g.projectIds.map((pid) => ({
                projectReference: { id: pid, name: this.projects.find((p) => p.id === pid)?.name },
                name: g.name,
                description: g.description,
            })),
        };
    }

    private groupParams(
        body: any,
        existing?: StoredGroup,
    ): { name: string; description: string; type: string; variables: Record<string, StoredVariable>; projectIds: string[] } {
        if (!body || typeof body !== "object") throw argumentNull("group");
        if (typeof body.name !== "string" || !body.name.trim()) throw argumentNull("group.Name");
        const refs = body.variableGroupProjectReferences;
        if (!Array.isArray(refs) || refs.length === 0)
            throw new HttpError(400, "ArgumentException", "Variable group must have at least one project reference.");
        const projectIds = refs.map((ref: any) => {
            const p = this.findProject(String(ref?.projectReference?.id ?? ""));
            if (!p)
                throw new HttpError(
                    400,
                    "ArgumentException",
                    `Invalid project reference ${JSON.stringify(ref?.projectReference ?? null)} in variable group project references.`,
                );
            return p.id;
        });
        const vars = body.variables;
        if (!vars || typeof vars !== "object" || Object.keys(vars).length === 0)
            throw new HttpError(400, "InvalidOperationException", "Variable group must have at least one variable defined.");
        const variables: Record<string, StoredVariable> = {};
        for (const [k, v] of Object.entries<any>(vars)) {
            const isSecret = !!v?.isSecret;
            // A secret sent without a value keeps the stored one, as the service does.
            const value = v?.value ?? (isSecret ? existing?.variables[k]?.value : undefined) ?? "";
            variables[k] = { value: String(value), isSecret };
        }
        return {
            name: body.name,
            description: typeof body.description === "string" ? body.description : "",
            type: body.type ?? "Vsts",
            variables,
            projectIds,
        };
    }

    private assertGroupNameFree(name: string, projectIds: string[], except?: number): void {
        const clash = [...this.groups.values()].find(
            (g) => g.id !== except && same(g.name, name) && g.projectIds.some((p) => projectIds.includes(p)),
        );
        if (clash) throw new HttpError(409, "VariableGroupExistsException", `Variable group with name '${name}' already exists.`);
    }

    private createGroup(res: http.ServerResponse, url: URL, body: any): void {
        const p = this.groupParams(body);
        this.assertGroupNameFree(p.name, p.projectIds);
        const now = new Date().toISOString();
        const g: StoredGroup = { id: this.nextId++, ...p, createdOn: now, modifiedOn: now };
        this.groups.set(g.id, g);
        this.created(res, url, this.groupView(g));
    }

    private updateGroup(res: http.ServerResponse, id: number, body: any): void {
        const g = this.groups.get(id);
        if (!g) throw groupMissing(id);
        const p = this.groupParams(body, g);
        this.assertGroupNameFree(p.name, p.projectIds, id);
        Object.assign(g, p, { modifiedOn: new Date().toISOString() });
        send(res, 200, this.groupView(g));
    }

    private deleteGroup(res: http.ServerResponse, id: number, q: Record<string, string>): void {
        if (!q.projectIds) throw argumentNull("projectIds");
        const g = this.groups.get(id);
        if (!g) throw groupMissing(id);
        const ids = q.projectIds.split(",").map((s) => this.findProject(s)?.id);
        g.projectIds = g.projectIds.filter((p) => !ids.includes(p));
        if (g.projectIds.length === 0) this.removeGroup(id);
        send(res, 204, undefined);
    }

    private listGroups(res: http.ServerResponse, project: Project, q: Record<string, string>): void {
        const match = q.groupName ? wildcard(q.groupName) : () => true;
        const items = [...this.groups.values()]
            .filter((g) => g.projectIds.includes(project.id) && match(g.name))
            .sort((a, b) => b.id - a.id)
            .map((g) => this.groupView(g));
        this.paged(res, items, q);
    }

    private getGroup(res: http.ServerResponse, project: Project, id: number): void {
        const g = this.groups.get(id);
        if (!g || !g.projectIds.includes(project.id)) throw groupMissing(id);
        send(res, 200, this.groupView(g));
    }

    private removeGroup(id: number): boolean {
        const g = this.groups.get(id);
        if (!g) return false;
        this.groups.delete(id);
        for (const pid of g.projectIds) this.permissions.delete(permKey(pid, "variablegroup", String(id)));
        for (const c of this.checksOnResource("variablegroup", id)) this.checks.delete(c.id);
        return true;
    }

    // ---- secure files ----

    private fileView(f: StoredFile) {
        // The content is never part of an answer.
        return {
            id: f.id,
            name: f.name,
            properties: f.properties,
            createdBy: USER,
            createdOn: f.createdOn,
            modifiedBy: USER,
            modifiedOn: f.modifiedOn,
        };
    }

    private uploadFile(
        res: http.ServerResponse,
        url: URL,
        project: Project,
        q: Record<string, string>,
        raw: Buffer,
        req: http.IncomingMessage,
    ): void {
        if (!q.name) throw argumentNull("name");
        if (!/^application\/octet-stream/i.test(req.headers["content-type"] ?? ""))
            throw new HttpError(
                415,
                "UnsupportedMediaTypeException",
                "The request entity's media type is not supported; upload secure files as application/octet-stream.",
            );
        if (raw.length === 0) throw new HttpError(400, "ArgumentException", "The secure file content is empty.");
        if (raw.length > MAX_SECURE_FILE) throw new HttpError(400, "ArgumentException", "Secure files are limited to 10 MB.");
        if ([...this.files.values()].some((f) => f.projectId === project.id && same(f.name, q.name))) {
            throw new HttpError(409, "SecureFileExistsException", `A secure file with name ${q.name} already exists in project ${project.name}.`);
        }
        const now = new Date().toISOString();
        const f: StoredFile = {
            id: crypto.randomUUID(),
            name: q.name,
            projectId: project.id,
            content: raw,
            properties: {},
            createdOn: now,
            modifiedOn: now,
        };
        this.files.set(f.id, f);
        this.created(res, url, this.fileView(f));
    }

    private listFiles(res: http.ServerResponse, project: Project, q: Record<string, string>): void {
        const match = q.namePattern ? wildcard(q.namePattern) : () => true;
        const items = [...this.files.values()].filter((f) => f.projectId === project.id && match(f.name)).map((f) => this.fileView(f));
        this.paged(res, items, q);
    }

    private fileIn(project: Project, id: string): StoredFile {
        const f = this.files.get(id);
        if (!f || f.projectId !== project.id)
            throw new HttpError(404, "SecureFileNotFoundException", `Secure file ${id} was not found in project ${project.name}.`);
        return f;
    }

    private getFile(res: http.ServerResponse, project: Project, id: string): void {
        send(res, 200, this.fileView(this.fileIn(project, id)));
    }

    private patchFile(res: http.ServerResponse, project: Project, id: string, body: any): void {
        const f = this.fileIn(project, id);
        if (!body || typeof body !== "object") throw argumentNull("secureFile");
        if (typeof body.name === "string" && body.name !== f.name) {
            if ([...this.files.values()].some((o) => o.id !== id && o.projectId === project.id && same(o.name, body.name))) {
                throw new HttpError(
                    409,
                    "SecureFileExistsException",
                    `A secure file with name ${body.name} already exists in project ${project.name}.`,
                );
            }
            f.name = body.name;
        }
        if (body.properties && typeof body.properties === "object") f.properties = body.properties;
        f.modifiedOn = new Date().toISOString();
        send(res, 200, this.fileView(f));
    }

    private deleteFile(res: http.ServerResponse, project: Project, id: string): void {
        this.fileIn(project, id);
        this.removeFile(id);
        send(res, 204, undefined);
    }

    private removeFile(id: string): boolean {
        const f = this.files.get(id);
        if (!f) return false;
        this.files.delete(id);
        this.permissions.delete(permKey(f.projectId, "securefile", id));
        for (const c of this.checksOnResource("securefile", id)) this.checks.delete(c.id);
        return true;
    }

    // ---- build definitions ----

    private definitionView(d: StoredDefinition, project: Project) {
        const url = `${this.url}/${this.organization}/${project.id}/_apis/build/Definitions/${d.id}?revision=${d.revision}`;
        return {
            ...d.body,
            id: d.id,
            revision: d.revision,
            url,
            uri: `vstfs:///Build/Definition/${d.id}`,
            path: d.body.path ?? "\\",
            project: { id: project.id, name: project.name },
            authoredBy: USER,
            _links: { self: { href: url }, web: { href: `${this.url}/${this.organization}/${project.id}/_build/definition?definitionId=${d.id}` } },
        };
    }

    private validateDefinition(body: any): void {
        if (!body || typeof body !== "object") throw argumentNull("definition");
        if (typeof body.name !== "string" || !body.name.trim()) throw argumentNull("definition.Name");
        if (!body.process || typeof body.process !== "object") throw new HttpError(400, "InvalidDefinitionException", "The pipeline has no process.");
        if (body.process.type === 2 && (typeof body.process.yamlFilename !== "string" || !body.process.yamlFilename))
            throw new HttpError(400, "InvalidDefinitionException", "A YAML pipeline needs process.yamlFilename.");
        const r = body.repository;
        if (!r || typeof r !== "object" || !r.type || !(r.id || r.name))
            throw new HttpError(
                400,
                "MissingRepositoryException",
                "The pipeline's repository is missing or incomplete (type and id or name are required).",
            );
    }

    private assertDefinitionNameFree(project: Project, name: string, path: string, except?: number): void {
        const clash = [...this.definitions.values()].find(
            (d) => d.id !== except && d.projectId === project.id && same(d.body.name, name) && same(d.body.path ?? "\\", path),
        );
        if (clash) throw new HttpError(400, "DefinitionExistsException", `Build pipeline ${name} already exists for project ${project.name}`);
    }

    private createDefinition(res: http.ServerResponse, url: URL, project: Project, body: any): void {
        this.validateDefinition(body);
        const path = body.path ?? "\\";
        this.assertDefinitionNameFree(project, body.name, path);
        const d: StoredDefinition = { id: this.nextId++, projectId: project.id, revision: 1, body: { ...body, path } };
        this.definitions.set(d.id, d);
        this.created(res, url, this.definitionView(d, project));
    }

    private listDefinitions(res: http.ServerResponse, project: Project, q: Record<string, string>): void {
        const match = q.name ? wildcard(q.name) : () => true;
        const items = [...this.definitions.values()]
            .filter((d) => d.projectId === project.id && match(d.body.name) && (!q.path || same(d.body.path ?? "\\", q.path)))
            .sort((a, b) => String(a.body.name).localeCompare(String(b.body.name)))
            .map((d) => {
                const v = this.definitionView(d, project);
                // The list answers references, not whole definitions.
                return {
                    id: v.id,
                    name: d.body.name,
                    path: v.path,
                    revision: v.revision,
                    url: v.url,
                    uri: v.uri,
                    type: "build",
                    queueStatus: "enabled",
                    project: v.project,
                    _links: v._links,
                };
            });
        this.paged(res, items, q);
    }

    private definitionIn(project: Project, id: number): StoredDefinition {
        const d = this.definitions.get(id);
        if (!d || d.projectId !== project.id) throw new HttpError(404, "DefinitionNotFoundException", `Build pipeline ${id} was not found.`);
        return d;
    }

    private getDefinition(res: http.ServerResponse, project: Project, id: number): void {
        send(res, 200, this.definitionView(this.definitionIn(project, id), project));
    }

    private putDefinition(res: http.ServerResponse, project: Project, id: number, body: any): void {
        const d = this.definitionIn(project, id);
        this.validateDefinition(body);
        if (Number(body.id) !== id)
            throw new HttpError(
                400,
                "DefinitionNotMatchedException",
                `The request specifies pipeline ID ${id} but the supplied pipeline has ID ${body.id ?? 0}.`,
            );
        if (Number(body.revision) !== d.revision) {
            throw new HttpError(
                409,
                "DefinitionRevisionConflict",
                `The pipeline was changed by someone else: revision ${d.revision} is current, the update was based on ${body.revision}. Get the latest version and try again.`,
            );
        }
        const path = body.path ?? "\\";
        this.assertDefinitionNameFree(project, body.name, path, id);
        const { id: _id, revision: _rev, _links, url, uri, project: _p, authoredBy, ...rest } = body;
        d.body = { ...rest, path };
        d.revision++;
        send(res, 200, this.definitionView(d, project));
    }

    private deleteDefinition(res: http.ServerResponse, project: Project, id: number): void {
        this.definitionIn(project, id);
        this.definitions.delete(id);
        send(res, 204, undefined);
    }

    // ---- environments ----

    private environmentView(e: StoredEnvironment, project: Project) {
        return {
            id: e.id,
            name: e.name,
            description: e.description,
            createdBy: USER,
            createdOn: e.createdOn,
            lastModifiedBy: USER,
            lastModifiedOn: e.lastModifiedOn,
            project: { id: project.id, name: project.name },
        };
    }

    private assertEnvironmentNameFree(project: Project, name: string, except?: number): void {
        if ([...this.environments.values()].some((e) => e.id !== except && e.projectId === project.id && same(e.name, name))) {
            throw new HttpError(409, "EnvironmentExistsException", `Environment '${name}' already exists in current project.`);
        }
    }

    private createEnvironment(res: http.ServerResponse, url: URL, project: Project, body: any): void {
        if (!body || typeof body !== "object" || typeof body.name !== "string" || !body.name.trim())
            throw argumentNull("environmentCreateParameter.Name");
        this.assertEnvironmentNameFree(project, body.name);
        const now = new Date().toISOString();
        const e: StoredEnvironment = {
            id: this.nextId++,
            name: body.name,
            description: body.description ?? "",
            projectId: project.id,
            createdOn: now,
            lastModifiedOn: now,
        };
        this.environments.set(e.id, e);
        this.created(res, url, this.environmentView(e, project));
    }

    private listEnvironments(res: http.ServerResponse, project: Project, q: Record<string, string>): void {
        const match = q.name ? wildcard(q.name) : () => true;
        const items = [...this.environments.values()]
            .filter((e) => e.projectId === project.id && match(e.name))
            .map((e) => this.environmentView(e, project));
        this.paged(res, items, q);
    }

    private environmentIn(project: Project, id: number): StoredEnvironment {
        const e = this.environments.get(id);
        if (!e || e.projectId !== project.id) throw new HttpError(404, "EnvironmentNotFoundException", `Environment ${id} not found.`);
        return e;
    }

    private getEnvironment(res: http.ServerResponse, project: Project, id: number): void {
        send(res, 200, this.environmentView(this.environmentIn(project, id), project));
    }

    private patchEnvironment(res: http.ServerResponse, project: Project, id: number, body: any): void {
        const e = this.environmentIn(project, id);
        if (!body || typeof body !== "object") throw argumentNull("environmentUpdateParameter");
        if (typeof body.name === "string" && body.name !== e.name) {
            this.assertEnvironmentNameFree(project, body.name, id);
            e.name = body.name;
        }
        if (typeof body.description === "string") e.description = body.description;
        e.lastModifiedOn = new Date().toISOString();
        send(res, 200, this.environmentView(e, project));
    }

    private deleteEnvironment(res: http.ServerResponse, project: Project, id: number): void {
        this.environmentIn(project, id);
        this.removeEnvironment(id);
        send(res, 204, undefined);
    }

    private removeEnvironment(id: number): boolean {
        const e = this.environments.get(id);
        if (!e) return false;
        this.environments.delete(id);
        // Checks and permissions belong to the environment and go with it.
        for (const c of this.checksOn(id)) this.checks.delete(c.id);
        this.permissions.delete(permKey(e.projectId, "environment", String(id)));
        return true;
    }

    // ---- check configurations ----

    private checkView(c: StoredCheck, project: Project, withSettings: boolean) {
        const url = `${this.url}/${this.organization}/${project.id}/_apis/pipelines/checks/configurations/${c.id}`;
        return {
            id: c.id,
            version: c.version,
            type: c.type,
            url,
            resource: c.resource,
            timeout: c.timeout,
            ...(withSettings ? { settings: c.settings } : {}),
            createdBy: USER,
            createdOn: c.createdOn,
            modifiedBy: USER,
            modifiedOn: c.createdOn,
            _links: { self: { href: url } },
        };
    }

    private checkParams(project: Project, body: any): Pick<StoredCheck, "type" | "settings" | "resource" | "timeout"> {
        if (!body || typeof body !== "object") throw argumentNull("configuration");
        if (!body.type?.id) throw argumentNull("configuration.Type");
        const r = body.resource;
        if (!r?.type || r.id === undefined) throw argumentNull("configuration.Resource");
        if (!CHECKED_RESOURCE_TYPES.includes(r.type)) throw new HttpError(400, "ArgumentException", `Resource type ${r.type} does not support checks.`);
        if (r.type === "environment" && !this.environments.get(Number(r.id)))
            throw new HttpError(404, "EnvironmentNotFoundException", `Environment ${r.id} not found.`);
        if ((r.type === "variablegroup" || r.type === "securefile" || r.type === "endpoint") && !this.resourceExists(project, r.type, String(r.id)))
            throw new HttpError(404, "ResourceNotFoundException", `Resource ${r.type} ${r.id} was not found.`);
        const type = String(body.type.id).toUpperCase();
        if (![APPROVAL_CHECK, TASK_CHECK, EXCLUSIVE_LOCK_CHECK, EXTENDS_CHECK].includes(type))
            throw new HttpError(400, "CheckTypeNotFoundException", `Check type ${body.type.id} does not exist.`);
        if (type === APPROVAL_CHECK && !(Array.isArray(body.settings?.approvers) && body.settings.approvers.length > 0)) {
            throw new HttpError(400, "ArgumentException", "An approval check needs at least one approver.");
        }
        if (type === TASK_CHECK) {
            // A task check runs the task its definitionRef names, with string inputs.
            const d = body.settings?.definitionRef;
            if (!d?.id || !d?.name || !d?.version) throw argumentNull("configuration.Settings.DefinitionRef");
            if (String(d.id).toLowerCase() === BRANCH_CONTROL_TASK) {
                const inputs = body.settings?.inputs;
                if (typeof inputs?.allowedBranches !== "string" || inputs.allowedBranches.trim() === "")
                    throw new HttpError(400, "ArgumentException", "Branch control needs inputs.allowedBranches (a comma-separated list).");
                if (inputs.ensureProtectionOfBranch !== undefined && !["true", "false"].includes(inputs.ensureProtectionOfBranch))
                    throw new HttpError(400, "ArgumentException", "inputs.ensureProtectionOfBranch must be \"true\" or \"false\".");
            }
        }
        void project;
        return {
            type: body.type,
            settings: body.settings ?? {},
            resource: { type: r.type, id: String(r.id), name: r.name },
            timeout: Number(body.timeout ?? 43200),
        };
    }

    private createCheck(res: http.ServerResponse, url: URL, project: Project, body: any): void {
        const p = this.checkParams(project, body);
        const c: StoredCheck = { id: this.nextId++, projectId: project.id, version: 1, createdOn: new Date().toISOString(), ...p };
        this.checks.set(c.id, c);
        this.created(res, url, this.checkView(c, project, true));
    }

    private listChecks(res: http.ServerResponse, project: Project, q: Record<string, string>): void {
        const items = [...this.checks.values()]
            .filter(
                (c) =>
                    c.projectId === project.id &&
                    (!q.resourceType || c.resource.type === q.resourceType) &&
                    (!q.resourceId || c.resource.id === q.resourceId),
            )
            .map((c) => this.checkView(c, project, q.$expand === "settings"));
        this.paged(res, items, q);
    }

    private checkIn(project: Project, id: number): StoredCheck {
        const c = this.checks.get(id);
        if (!c || c.projectId !== project.id)
            throw new HttpError(404, "CheckConfigurationNotFoundException", `Check configuration ${id} does not exist.`);
        return c;
    }

    private getCheck(res: http.ServerResponse, project: Project, id: number, q: Record<string, string>): void {
        send(res, 200, this.checkView(this.checkIn(project, id), project, q.$expand === "settings"));
    }

    private patchCheck(res: http.ServerResponse, project: Project, id: number, body: any): void {
        const c = this.checkIn(project, id);
        Object.assign(c, this.checkParams(project, body));
        c.version++;
        send(res, 200, this.checkView(c, project, true));
    }

    private deleteCheck(res: http.ServerResponse, project: Project, id: number): void {
        this.checkIn(project, id);
        this.checks.delete(id);
        send(res, 204, undefined);
    }

    // ---- branch policies ----

    private policyView(p: StoredPolicy, project: Project) {
        const url = `${this.url}/${this.organization}/${project.id}/_apis/policy/configurations/${p.id}`;
        return {
            id: p.id,
            revision: p.revision,
            isEnabled: p.isEnabled,
            isBlocking: p.isBlocking,
            isDeleted: false,
            isEnterpriseManaged: false,
            type: { id: p.type.id, displayName: POLICY_TYPES[p.type.id.toLowerCase()], url: `${this.url}/${this.organization}/_apis/policy/types/${p.type.id}` },
            settings: p.settings,
            createdBy: USER,
            createdDate: p.createdDate,
            url,
            _links: { self: { href: url } },
        };
    }

    private policyParams(project: Project, body: any): Omit<StoredPolicy, "id" | "projectId" | "revision" | "createdDate"> {
        if (!body || typeof body !== "object") throw argumentNull("configuration");
        const typeId = String(body.type?.id ?? "").toLowerCase();
        if (!typeId) throw argumentNull("configuration.Type");
        if (!POLICY_TYPES[typeId]) throw new HttpError(404, "PolicyTypeNotFoundException", `The policy type ${body.type.id} does not exist.`);
        if (typeof body.isEnabled !== "boolean" || typeof body.isBlocking !== "boolean")
            throw new HttpError(400, "InvalidArgumentValueException", "isEnabled and isBlocking are required booleans.");
        const settings = body.settings;
        if (!settings || typeof settings !== "object") throw argumentNull("configuration.Settings");
        if (typeId === BUILD_POLICY) {
            const def = this.definitions.get(Number(settings.buildDefinitionId));
            if (!def || def.projectId !== project.id)
                throw new HttpError(400, "InvalidArgumentValueException", `The build definition ${settings.buildDefinitionId} does not exist in the project.`);
            if (!Array.isArray(settings.scope) || settings.scope.length === 0) throw new HttpError(400, "InvalidArgumentValueException", "A Build policy needs a scope.");
            for (const sc of settings.scope) {
                if (!sc?.repositoryId || typeof sc.refName !== "string" || !sc.refName.startsWith("refs/") || !["Exact", "Prefix"].includes(sc.matchKind))
                    throw new HttpError(400, "InvalidArgumentValueException", "Each scope needs a repositoryId, a refs/… refName and matchKind Exact or Prefix.");
            }
        }
        return { isEnabled: body.isEnabled, isBlocking: body.isBlocking, type: { id: typeId }, settings };
    }

    private createPolicy(res: http.ServerResponse, url: URL, project: Project, body: any): void {
        const p: StoredPolicy = { id: this.nextId++, projectId: project.id, revision: 1, createdDate: new Date().toISOString(), ...this.policyParams(project, body) };
        this.policies.set(p.id, p);
        this.created(res, url, this.policyView(p, project));
    }

    private listPolicies(res: http.ServerResponse, project: Project, q: Record<string, string>): void {
        const items = [...this.policies.values()]
            // Configurations - List filters by policyType only (scope filters belong to the git area).
            .filter((p) => p.projectId === project.id && (!q.policyType || same(p.type.id, q.policyType)))
            .map((p) => this.policyView(p, project));
        this.paged(res, items, q);
    }

    private policyIn(project: Project, id: number): StoredPolicy {
        const p = this.policies.get(id);
        if (!p || p.projectId !== project.id) throw new HttpError(404, "PolicyConfigurationNotFoundException", `Policy configuration ${id} does not exist.`);
        return p;
    }

    private putPolicy(res: http.ServerResponse, project: Project, id: number, body: any): void {
        const p = this.policyIn(project, id);
        Object.assign(p, this.policyParams(project, body));
        p.revision++;
        send(res, 200, this.policyView(p, project));
    }

    private deletePolicy(res: http.ServerResponse, project: Project, id: number): void {
        this.policyIn(project, id);
        this.policies.delete(id);
        send(res, 204, undefined);
    }

    // ---- pipeline permissions ----

    private resourceExists(project: Project, type: string, id: string): boolean {
        if (type === "variablegroup") return !!this.groups.get(Number(id))?.projectIds.includes(project.id);
        if (type === "securefile") return this.files.get(id)?.projectId === project.id;
        if (type === "environment") return this.environments.get(Number(id))?.projectId === project.id;
        if (type === "endpoint") return this.endpoints.get(id)?.projectId === project.id;
        if (type === "queue") return true;
        throw new HttpError(400, "ArgumentException", `Resource type ${type} is not supported.`);
    }

    private permissionView(project: Project, type: string, id: string) {
        const p = this.permissions.get(permKey(project.id, type, id));
        return {
            resource: { type, id },
            pipelines: p ? [...p.pipelines.values()].filter((x) => x.authorized).map((x) => ({ ...x, authorizedBy: USER })) : [],
            allPipelines: p?.allPipelines ? { ...p.allPipelines, authorizedBy: USER } : null,
        };
    }

    private getPermission(res: http.ServerResponse, project: Project, type: string, id: string): void {
        if (!this.resourceExists(project, type, id)) throw new HttpError(404, "ResourceNotFoundException", `Resource ${type} ${id} was not found.`);
        send(res, 200, this.permissionView(project, type, id));
    }

    private patchPermission(res: http.ServerResponse, project: Project, type: string, id: string, body: any): void {
        if (!this.resourceExists(project, type, id)) throw new HttpError(404, "ResourceNotFoundException", `Resource ${type} ${id} was not found.`);
        if (!body || typeof body !== "object") throw argumentNull("resourceAuthorization");
        const key = permKey(project.id, type, id);
        const p = this.permissions.get(key) ?? { allPipelines: null, pipelines: new Map() };
        const now = new Date().toISOString();
        for (const x of Array.isArray(body.pipelines) ? body.pipelines : []) {
            const pid = Number(x?.id);
            if (!this.definitions.get(pid) || this.definitions.get(pid)!.projectId !== project.id)
                throw new HttpError(404, "DefinitionNotFoundException", `Build pipeline ${x?.id} was not found.`);
            if (x.authorized) p.pipelines.set(pid, { id: pid, authorized: true, authorizedOn: now });
            else p.pipelines.delete(pid);
        }
        if (body.allPipelines && typeof body.allPipelines === "object")
            p.allPipelines = body.allPipelines.authorized ? { authorized: true, authorizedOn: now } : null;
        this.permissions.set(key, p);
        send(res, 200, this.permissionView(project, type, id));
    }
}

// ---- helpers ----

function same(a: string | undefined, b: string | undefined): boolean {
    return (a ?? "").toLowerCase() === (b ?? "").toLowerCase();
}

function wildcard(pattern: string): (name: string) => boolean {
    const re = new RegExp(
        `^${pattern
            .split("*")
            .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
            .join(".*")}$`,
        "i",
    );
    return (name) => re.test(name);
}

/** A policy scope matches a ref exactly or, for Prefix, as a prefix. */
function scopeMatches(sc: { refName?: string; matchKind?: string }, refName: string): boolean {
    return sc.matchKind === "Prefix" ? refName.startsWith(sc.refName ?? "") : sc.refName === refName;
}

function permKey(projectId: string, type: string, id: string): string {
    return `${projectId}|${type}|${id}`;
}

function authKind(h: string | undefined): LoggedRequest["auth"] {
    if (!h) return "none";
    if (h.startsWith("Basic ")) return "basic";
    if (h.startsWith("Bearer ")) return "bearer";
    return "other";
}

function apiVersion(req: http.IncomingMessage, q: Record<string, string>): string | undefined {
    if (q["api-version"]) return q["api-version"];
    const m = /api-version=([^;,\s]+)/.exec(String(req.headers.accept ?? ""));
    return m?.[1];
}

function allow(method: string, methods: string[]): void {
    if (!methods.includes(method))
        throw new HttpError(405, "MethodNotAllowedException", `The requested resource does not support http method '${method}'.`);
}

function notFound(path: string): HttpError {
    return new HttpError(404, "ResourceNotFoundException", `The resource ${path} cannot be found.`);
}

function projectMissing(name: string): HttpError {
    return new HttpError(
        404,
        "ProjectDoesNotExistWithNameException",
        `TF200016: The following project does not exist: ${name}. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.`,
    );
}

function groupMissing(id: number): HttpError {
    return new HttpError(404, "VariableGroupNotFoundException", `Variable group with id ${id} does not exist.`);
}

function argumentNull(name: string): HttpError {
    return new HttpError(400, "ArgumentNullException", `Value cannot be null.\r\nParameter name: ${name}`);
}

function failureKey(status: number): string {
    return status === 429
        ? "RequestThrottledException"
        : status === 403
          ? "AccessCheckException"
          : status === 404
            ? "ResourceNotFoundException"
            : status >= 500
              ? "Exception"
              : "InjectedFailureException";
}

function parseJson(raw: Buffer, contentType: string | undefined): any {
    if (!/application\/json/i.test(contentType ?? ""))
        throw new HttpError(415, "UnsupportedMediaTypeException", "The request entity's media type is not supported; send application/json.");
    try {
        return JSON.parse(raw.toString("utf8"));
    } catch {
        // The service's model binder yields null for unparsable JSON, so the action sees no argument.
        throw argumentNull("body");
    }
}

function readAll(req: http.IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => resolve(Buffer.concat(chunks)));
        req.on("error", reject);
    });
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed) return;
    const text = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(status, {
        ...(typeof body === "string" || body === undefined ? {} : { "content-type": "application/json; charset=utf-8; api-version=7.1" }),
        ...headers,
    });
    res.end(text);
}

function sendError(res: http.ServerResponse, err: HttpError, headers: Record<string, string> = {}): void {
    send(
        res,
        err.status,
        {
            $id: "1",
            innerException: null,
            message: err.message,
            typeName: `Microsoft.TeamFoundation.DistributedTask.WebApi.${err.typeKey}, Microsoft.TeamFoundation.DistributedTask.WebApi`,
            typeKey: err.typeKey,
            errorCode: 0,
            eventId: 3000,
        },
        headers,
    );
}
