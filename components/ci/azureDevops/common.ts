/**
 * Shared pieces of the Azure DevOps dynamic providers: credentials, the REST client per call,
 * pagination, duplicate handling, input checks and salted hashes of secret values.
 *
 * Everything here is called from inside provider methods. Nothing holds a credential at module
 * level: Pulumi serialises each provider with the module values it references, so a token in a
 * module variable would end up in the state file. Process-level state (the token from stack
 * config, test hooks) lives on globalThis, which the closure serialiser references by name.
 */
import * as crypto from "crypto";
import type * as pulumi from "@pulumi/pulumi";
import { RestClient, RestClientOptions, isRestError, restError, RestRequest, RestResponse, retryAfterMs } from "../rest";

/** Pulumi module of every Azure DevOps dynamic resource: type tokens are pulumi-nodejs:dynamic/azuredevops:<Type>. */
export const MODULE = "azuredevops";

/** Default API root; tests point `apiUrl` at a local server. */
export const DEFAULT_API_URL = "https://dev.azure.com";

/** REST API versions (Azure DevOps REST 7.1); the preview ones are only offered as previews. */
export const API = {
    core: "7.1",
    variableGroups: "7.1",
    build: "7.1",
    secureFiles: "7.1-preview.1",
    environments: "7.1-preview.1",
    checks: "7.1-preview.1",
    pipelinePermissions: "7.1-preview.1",
    policies: "7.1",
    serviceEndpoints: "7.1",
} as const;

/** Stack config key read by the providers' `configure`. */
export const TOKEN_CONFIG_KEY = "dbt-platform:azureDevopsToken";

const STATE_KEY = "__dbtPlatformAzureDevopsProviderState";

/** Process-level state of the provider host (never captured by the serialised provider). */
interface ProcessState {
    /** Token from stack config, set by `configure`. */
    configuredToken?: string;
    /** Test hooks for the REST client (instant sleeps, fewer attempts). */
    rest?: Partial<Pick<RestClientOptions, "sleep" | "maxAttempts" | "baseDelayMs" | "maxDelayMs" | "timeoutMs">>;
}

function processState(): ProcessState {
    const g = globalThis as any;
    if (!g[STATE_KEY]) g[STATE_KEY] = {};
    return g[STATE_KEY] as ProcessState;
}

/** `configure` for every provider: keeps the stack-config token in process state, not in the provider. */
export async function configureFromStack(req: { config: { get(key: string): string | undefined } }): Promise<void> {
    const token = req.config.get(TOKEN_CONFIG_KEY);
    if (token) processState().configuredToken = token;
}

/** Test hook: REST client overrides (e.g. an instant, recording `sleep`); undefined clears them. */
export function setRestOverridesForTests(rest: ProcessState["rest"] | undefined): void {
    processState().rest = rest;
}

/** Test hook: forget a token set through `configure`. */
export function clearConfiguredTokenForTests(): void {
    delete processState().configuredToken;
}

const AUTH_HELP =
    "Set AZURE_DEVOPS_EXT_PAT to a personal access token (scopes: Build read & execute, Variable Groups read/create/manage, " +
    "Secure Files read/create/manage, Environment read & manage, Pipeline Resources use & manage), or SYSTEM_ACCESSTOKEN inside " +
    `an Azure Pipelines job, or run \`pulumi config set --secret ${TOKEN_CONFIG_KEY} <PAT>\`.`;

interface Credential {
    header: string;
    source: string;
}

/** The credential for this call, in order: AZURE_DEVOPS_EXT_PAT, SYSTEM_ACCESSTOKEN, stack config. */
function credential(what: string): Credential {
    const pat = process.env.AZURE_DEVOPS_EXT_PAT;
    if (pat) return { header: basic(pat), source: "AZURE_DEVOPS_EXT_PAT" };
    const system = process.env.SYSTEM_ACCESSTOKEN;
    if (system) return { header: `Bearer ${system}`, source: "SYSTEM_ACCESSTOKEN" };
    const configured = processState().configuredToken;
    if (configured) return { header: basic(configured), source: `stack config ${TOKEN_CONFIG_KEY}` };
    throw new Error(`Azure DevOps ${what}: no credentials found. ${AUTH_HELP}`);
}

// A PAT goes as Basic with an empty user name.
function basic(pat: string): string {
    return `Basic ${Buffer.from(`:${pat}`).toString("base64")}`;
}

/** Most pages one list call walks (the providers' lists are short; this bounds a misbehaving server). */
export const MAX_PAGES = 200;

/** Fields every project-scoped resource takes: where it lives and which API root serves it. */
export interface AzureDevopsProjectArgs {
    /** Azure DevOps organization name. */
    organization: pulumi.Input<string>;
    /** Project name or id. */
    project: pulumi.Input<string>;
    /** API root, default https://dev.azure.com. */
    apiUrl?: pulumi.Input<string>;
}

/** The resolved AzureDevopsProjectArgs, as provider inputs and outputs carry them. */
export interface ProjectTarget {
    organization: string;
    project: string;
    apiUrl?: string;
}

/** What every call needs: the organisation, the API root, and what is being acted on. */
export interface Target {
    organization: string;
    apiUrl?: string;
}

/** One Azure DevOps API session for one provider call; build it inside the method. */
export class AzureDevops {
    readonly client: RestClient;
    private readonly cred: Credential;

    constructor(target: Target, what: string, extra: Partial<RestClientOptions> = {}) {
        this.cred = credential(what);
        const cred = this.cred;
        this.client = new RestClient({
            service: "Azure DevOps",
            baseUrl: `${(target.apiUrl || DEFAULT_API_URL).replace(/\/+$/, "")}/${encodeURIComponent(target.organization)}`,
            authorization: () => cred.header,
            authHint: this.authHint(),
            ...processState().rest,
            ...extra,
        });
    }

    /** Which variable to fix when the token is rejected. */
    authHint(): string {
        return `The token came from ${this.cred.source}; replace it with a valid one that has the needed scopes. ${AUTH_HELP}`;
    }

    /** Sends a request; a non-JSON success (Azure's 203 sign-in page for a bad token) is an auth failure. */
    async call<T = any>(req: RestRequest & { apiVersion: string }): Promise<RestResponse<T>> {
        const { apiVersion, ...rest } = req;
        const res = await this.client.request<T>({ ...rest, query: { ...rest.query, "api-version": apiVersion } });
        const type = res.headers.get("content-type") ?? "";
        if (res.status >= 200 && res.status < 300 && (typeof res.body === "string" || /text\/html/i.test(type))) {
            throw restError(
                `Azure DevOps ${req.method} ${req.path} (${req.resource}): got a sign-in page instead of JSON (HTTP ${res.status}); ` +
                    `Azure DevOps answers a missing, expired or revoked token this way. ${this.authHint()}`,
                res.status,
                req.resource,
            );
        }
        return res;
    }

    /**
     * Walks a list endpoint page by page (x-ms-continuationtoken header → continuationToken query)
     * and returns the first item `match` accepts, or every item when `match` is omitted.
     */
    async list<T>(req: RestRequest & { apiVersion: string }, match?: (item: T) => boolean, maxPages = MAX_PAGES): Promise<T[]> {
        const found: T[] = [];
        let token: string | undefined;
        const seen = new Set<string>();
        let pages = 0;
        do {
            // A server that keeps handing out new tokens would otherwise page forever.
            if (++pages > maxPages)
                throw new Error(`Azure DevOps ${req.path} (${req.resource}): more than ${maxPages} pages of results; stopping (narrow the query or raise the cap).`);
            const res = await this.call<{ value?: T[] } | T[]>({ ...req, query: { ...req.query, continuationToken: token } });
            const page: T[] = Array.isArray(res.body) ? res.body : (res.body?.value ?? []);
            for (const item of page) {
                if (!match) found.push(item);
                else if (match(item)) return [item];
            }
            token = res.headers.get("x-ms-continuationtoken") || undefined;
            // A token seen twice would loop forever; the API never does that on purpose.
            if (token !== undefined) {
                if (seen.has(token)) throw new Error(`Azure DevOps ${req.path} (${req.resource}): the continuation token repeated; stopping.`);
                seen.add(token);
            }
        } while (token !== undefined);
        return found;
    }

    /** Resolves a project name (or id) to its id. */
    async projectId(project: string, resource: string): Promise<string> {
        const res = await this.call<{ id: string }>({
            method: "GET",
            path: `_apis/projects/${encodeURIComponent(project)}`,
            apiVersion: API.core,
            resource: `project ${project} (for ${resource})`,
        });
        if (!res.body?.id) throw new Error(`Azure DevOps: project ${project} has no id in the API answer (for ${resource}).`);
        return res.body.id;
    }
}

/** The error of an update whose object was deleted outside Pulumi: the engine has to forget it before it can be recreated. */
export function deletedOutsidePulumi(what: string, kind: string, id: string | number): Error {
    return new Error(
        `Azure DevOps ${what}: ${kind} ${id} no longer exists (deleted outside Pulumi). ` +
            "Run `pulumi refresh` so Pulumi forgets it, then `pulumi up` recreates it.",
    );
}

/** The ownership marker a stack writes into what it creates (descriptions, secure file properties). */
export function ownershipMarker(stack: string): string {
    return `managed by dbt-platform stack ${stack}`;
}

const MARKER = /managed by dbt-platform stack [A-Za-z0-9._-]+/;

/**
 * Whether an object that already exists under our name may be taken over: only with an explicit
 * `adopt: true`, or when it carries the ownership marker our own text carries (we wrote it).
 */
export function provablyOurs(ours: string | undefined, theirs: string | undefined, adopt: boolean | undefined): boolean {
    if (adopt === true) return true;
    const m = MARKER.exec(ours ?? "")?.[0];
    return m !== undefined && (theirs ?? "").includes(m);
}

/** The refusal to take over an object someone else made; nothing was changed or deleted. */
export function foreignObject(what: string, ours: string | undefined): Error {
    const m = MARKER.exec(ours ?? "")?.[0];
    const mark = m ? `it does not carry the marker "${m}"` : "nothing marks it as made by this stack";
    return new Error(
        `Azure DevOps ${what} already exists and is not ours (${mark}); it was left unchanged. ` +
            "Rename ours, remove or rename the existing one, or set `adopt: true` to take it over (or `pulumi import` it).",
    );
}

/** A create answered 400/409 for a reason other than a duplicate name. */
export function createRejected(what: string, res: RestResponse): Error {
    const msg = res.body && typeof res.body === "object" ? (res.body as { message?: string }).message : undefined;
    return new Error(`Azure DevOps create of ${what}: HTTP ${res.status}: ${msg ?? "rejected"}`);
}

/** The API reported a duplicate that its own list does not show (usually a permission gap). */
export function duplicateNotListed(what: string): Error {
    return new Error(`Azure DevOps ${what}: the API says it already exists but does not list it; check the token's permissions on the project.`);
}

/** The `typeKey` of an Azure DevOps error body, e.g. VariableGroupExistsException. */
export function typeKeyOf(body: unknown): string | undefined {
    return body && typeof body === "object" && typeof (body as any).typeKey === "string" ? (body as any).typeKey : undefined;
}

/** Case-insensitive name equality (Azure DevOps names are unique regardless of case). */
export function sameName(a: string | undefined, b: string | undefined): boolean {
    return (a ?? "").toLowerCase() === (b ?? "").toLowerCase();
}

/**
 * Creates an object that the API does not deduplicate (so a blind retry of a POST could make two):
 * sends the POST once at a time and, after a dropped connection or a 5xx, looks for the object
 * before sending again. 429s are retried after Retry-After. Returns the created or found object.
 */
export async function createWithoutDuplicates<T>(
    target: Target,
    what: string,
    req: RestRequest & { apiVersion: string },
    find: () => Promise<T | undefined>,
): Promise<T> {
    const state = processState().rest ?? {};
    const sleep = state.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const attempts = state.maxAttempts ?? 6;
    const baseDelay = state.baseDelayMs ?? 500;
    const maxDelay = state.maxDelayMs ?? 30_000;
    const once = new AzureDevops(target, what, { maxAttempts: 1 });
    let last = "";
    for (let attempt = 1; attempt <= attempts; attempt++) {
        const delay = Math.min(maxDelay, baseDelay * 2 ** (attempt - 1));
        let res: RestResponse<T>;
        try {
            res = await once.call<T>({ ...req, accept: [...(req.accept ?? []), 429, 500, 502, 503, 504] });
        } catch (err) {
            if (!isRestError(err) || err.status !== undefined) throw err;
            // The connection dropped: the object may exist now.
            last = err.message;
            const found = await find();
            if (found) return found;
            if (attempt < attempts) await sleep(delay);
            continue;
        }
        if (res.status === 429) {
            last = "HTTP 429";
            if (attempt < attempts) await sleep(Math.min(retryAfterMs(res.headers.get("retry-after")) ?? delay, maxDelay));
            continue;
        }
        if (res.status >= 500) {
            last = `HTTP ${res.status}`;
            const found = await find();
            if (found) return found;
            if (attempt < attempts) await sleep(delay);
            continue;
        }
        return res.body;
    }
    throw restError(
        `Azure DevOps ${req.method} ${req.path} (${req.resource}): gave up after ${attempts} attempts (last: ${last})`,
        undefined,
        req.resource,
    );
}

/** Salted SHA-256 of a secret value, so diffs can tell a change without keeping the value. */
export function secretHash(salt: string, key: string, value: string): string {
    return crypto.createHash("sha256").update(salt).update("\0").update(key).update("\0").update(value).digest("hex");
}

/** A fresh random salt. */
export function newSalt(): string {
    return crypto.randomBytes(16).toString("hex");
}

/** Pulumi's placeholder for a value not known during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** True when a check cannot judge the value yet (unknown during preview). */
export function isUnknown(v: unknown): boolean {
    return v === UNKNOWN;
}

/** Collects check failures for one resource with messages naming the resource, field and expectation. */
export class Checker {
    readonly failures: { property: string; reason: string }[] = [];

    constructor(
        private readonly kind: string,
        private readonly inputs: Record<string, any>,
    ) {}

    private label(): string {
        const n = this.inputs.name;
        return typeof n === "string" && n ? `${this.kind} "${n}"` : this.kind;
    }

    fail(property: string, expected: string): void {
        this.failures.push({ property, reason: `${this.label()}: ${property} must be ${expected}.` });
    }

    /** A required non-empty string without surrounding whitespace, optionally matching `pattern`. */
    name(property: string, expected = "a non-empty string", pattern?: RegExp, value: unknown = this.inputs[property]): void {
        if (isUnknown(value)) return;
        if (typeof value !== "string" || value.trim() === "" || value !== value.trim() || (pattern && !pattern.test(value))) {
            this.fail(property, `${expected} (got ${describe(value)})`);
        }
    }

    /** An optional string. */
    optionalString(property: string, maxLength = 1024): void {
        const v = this.inputs[property];
        if (v === undefined || v === null || isUnknown(v)) return;
        if (typeof v !== "string" || v.length > maxLength) this.fail(property, `a string of at most ${maxLength} characters (got ${describe(v)})`);
    }

    /** An optional http(s) URL. */
    apiUrl(): void {
        const v = this.inputs.apiUrl;
        if (v === undefined || v === null || isUnknown(v)) return;
        if (typeof v !== "string" || !/^https?:\/\/[^\s/]+/.test(v))
            this.fail("apiUrl", `an http(s) URL such as ${DEFAULT_API_URL} (got ${describe(v)})`);
    }

    /** The organization and project every resource has. */
    organizationAndProject(): void {
        this.name("organization", "the Azure DevOps organization name (no slashes), e.g. acme", /^[^/\\?#]+$/);
        this.name("project", "the Azure DevOps project name or id (no slashes)", /^[^/\\?#]+$/);
        this.apiUrl();
    }

    /** An optional (or required) integer in [min, max]. */
    integer(property: string, min: number, max: number, required = false): void {
        const v = this.inputs[property];
        if ((v === undefined || v === null) && !required) return;
        if (isUnknown(v)) return;
        const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
        if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max)
            this.fail(property, `an integer from ${min} to ${max} (got ${describe(v)})`);
    }

    result<T>(inputs: T): { inputs: T; failures: { property: string; reason: string }[] } {
        return { inputs, failures: this.failures };
    }
}

/** A short description of a bad value for messages; never prints long strings whole. */
export function describe(v: unknown): string {
    if (v === undefined) return "nothing";
    if (v === null) return "null";
    if (typeof v === "string") return v.length > 60 ? `a ${v.length}-character string` : JSON.stringify(v);
    if (Array.isArray(v)) return `an array of ${v.length}`;
    return typeof v;
}

/**
 * JSON with object keys sorted at every level and undefined members dropped: the engine hands
 * recorded outputs back with sorted keys, so key order must not count as a change.
 */
export function stableJson(v: unknown): string {
    const norm = (x: any): any =>
        Array.isArray(x)
            ? x.map(norm)
            : x && typeof x === "object"
              ? Object.fromEntries(
                    Object.keys(x)
                        .filter((k) => x[k] !== undefined)
                        .sort()
                        .map((k) => [k, norm(x[k])]),
                )
              : x;
    return JSON.stringify(norm(v ?? null));
}

/** Keys whose values differ between two plain records (normalised JSON: key order is not a change). */
export function changedKeys(olds: Record<string, any>, news: Record<string, any>, keys: string[]): string[] {
    return keys.filter((k) => stableJson(olds[k]) !== stableJson(news[k]));
}

/** The API root a resource uses (for diffs: unset equals the default). */
export function apiUrlOf(v: { apiUrl?: string }): string {
    return (v.apiUrl || DEFAULT_API_URL).replace(/\/+$/, "");
}

/** Drops undefined values so outputs are stable across serialisation. */
export function compact<T extends Record<string, any>>(o: T): T {
    return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
