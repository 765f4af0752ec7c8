/**
 * Shared pieces of the Bitbucket Cloud dynamic providers: credentials, the REST client, pagination,
 * secret hashing and input checks.
 *
 * Everything here is reached from provider methods and so is serialised with them into each
 * resource's `__provider`: no credential, client or Set/Map may live at module level (Pulumi's
 * closure serialiser keeps neither a Set's nor a Map's contents). test/ci-bitbucket.test.ts proves
 * the serialised text holds no token and no secret value.
 */
import * as crypto from "crypto";
import type * as pulumi from "@pulumi/pulumi";
import { apiUrlProblem, RestClient, RestClientOptions, RestResponse } from "../rest";

/** Bitbucket Cloud's public REST API. */
export const DEFAULT_API_URL = "https://api.bitbucket.org/2.0";

/** Fields every repository-scoped resource takes. */
export interface BitbucketRepositoryArgs {
    /** Workspace slug (or `{workspace-uuid}`). */
    workspace: pulumi.Input<string>;
    /** Repository slug. */
    repoSlug: pulumi.Input<string>;
    /** API base URL; defaults to https://api.bitbucket.org/2.0. */
    apiUrl?: pulumi.Input<string>;
}
/** Environment variable holding the access token (checked first, per call). */
export const TOKEN_ENV = "BITBUCKET_TOKEN";
/** Stack config key holding the access token (read by the providers' `configure`). */
export const TOKEN_CONFIG = "dbt-platform:bitbucketToken";
/** Process-wide slot for a token from stack config: a global symbol, so nothing captures the value. */
const TOKEN_SLOT = "dbt-platform/bitbucket-token";
/** Pulumi's marker for a value not known yet (preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** Module token of every Bitbucket resource type: pulumi-nodejs:dynamic/bitbucket:<Type>. */
export const MODULE = "bitbucket";

/** Retry tuning a test can pass to the provider factories (never credentials). */
export type ClientTuning = Pick<RestClientOptions, "sleep" | "maxAttempts" | "baseDelayMs" | "maxDelayMs" | "timeoutMs" | "deadlineMs" | "maxPages">;

const AUTH_HINT =
    `Set the ${TOKEN_ENV} environment variable, or the stack config key ${TOKEN_CONFIG} ` +
    "(pulumi config set --secret bitbucketToken <token>), to a repository or workspace access token " +
    "with the pipeline:variable, pipeline:write and repository:admin scopes (app passwords are retired).";

/** The token: BITBUCKET_TOKEN, else what `configure` found in stack config; undefined when neither is set. */
export function bitbucketToken(): string | undefined {
    const env = process.env[TOKEN_ENV]?.trim();
    if (env) return env;
    const configured = (globalThis as Record<symbol, unknown>)[Symbol.for(TOKEN_SLOT)];
    return typeof configured === "string" && configured.trim() ? configured.trim() : undefined;
}

/**
 * The providers' `configure`: keeps the stack config token in process state of the provider host.
 * Kept out of the provider object itself, so serialising a configured provider cannot carry it.
 */
export async function configureToken(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
    const token = req.config.get(TOKEN_CONFIG);
    if (token && token.trim()) (globalThis as Record<symbol, unknown>)[Symbol.for(TOKEN_SLOT)] = token.trim();
}

/** Drops a token that `configure` stored (tests). */
export function forgetConfiguredToken(): void {
    delete (globalThis as Record<symbol, unknown>)[Symbol.for(TOKEN_SLOT)];
}

/** A client for one provider call; fails before any request when no token is set. */
export function bitbucketClient(apiUrl: string, resource: string, tuning?: ClientTuning): RestClient {
    const token = bitbucketToken();
    if (!token) throw new Error(`Bitbucket: no credentials to manage ${resource}. ${AUTH_HINT}`);
    return new RestClient({
        service: "Bitbucket",
        baseUrl: apiUrl,
        authorization: () => `Bearer ${token}`,
        authHint: AUTH_HINT,
        // Only the tuning that is set: an undefined key would override the client's default.
        ...Object.fromEntries(Object.entries(tuning ?? {}).filter(([, v]) => v !== undefined)),
    });
}

/** One path segment; braces of Bitbucket UUIDs become %7B…%7D. */
export function seg(value: string): string {
    return encodeURIComponent(value);
}

/** `repositories/{workspace}/{repo_slug}` with both segments encoded. */
export function repoPath(workspace: string, repoSlug: string): string {
    return `repositories/${seg(workspace)}/${seg(repoSlug)}`;
}

/** A Bitbucket paged response. */
export interface Paged<T> {
    size?: number;
    page?: number;
    pagelen?: number;
    next?: string;
    values: T[];
}

/**
 * Every item of a paged collection, following `next` (an absolute URL) until it is absent.
 * `next` must stay on the API's origin: the bearer token is never sent anywhere else.
 * Returns undefined when `missingOk` and the collection itself is 404 (its parent is gone).
 */
export async function listAll<T>(client: RestClient, path: string, resource: string, missingOk = false): Promise<T[] | undefined> {
    const origin = new URL(client.url(path)).origin;
    const items: T[] = [];
    const seen: string[] = [];
    let next: string | undefined = path;
    for (let page = 1; next; page++) {
        client.checkPage(page, `GET ${path}`, resource, seen, next);
        const res: RestResponse<Paged<T>> = await client.request<Paged<T>>({ method: "GET", path: next, resource, accept: missingOk ? [404] : undefined });
        if (res.status === 404) return undefined;
        const body: Paged<T> | undefined = res.body;
        if (!body || typeof body !== "object" || !Array.isArray(body.values)) {
            throw new Error(`Bitbucket GET ${path} (${resource}): expected a paged response with "values".`);
        }
        items.push(...body.values);
        if (body.next !== undefined && new URL(body.next).origin !== origin) {
            throw new Error(`Bitbucket GET ${path} (${resource}): the next page points to another host (${new URL(body.next).origin}); refusing to send the token there.`);
        }
        next = body.next;
    }
    return items;
}

/** A fresh salt for a value hash. */
export function newSalt(): string {
    return crypto.randomBytes(16).toString("hex");
}

/** sha256(salt, NUL, value): detects a changed secret without keeping it. */
export function hashValue(salt: string, value: string): string {
    return crypto.createHash("sha256").update(salt).update("\0").update(value).digest("hex");
}

/** Whether a property was not known at check/diff time (preview). */
export function isUnknown(value: unknown): boolean {
    return value === UNKNOWN;
}

/** The API base URL with no trailing slash, or a problem. */
export function normaliseApiUrl(value: unknown): { url?: string; problem?: string } {
    if (value === undefined || value === null || value === "") return { url: DEFAULT_API_URL };
    const problem = apiUrlProblem(value);
    // The value is not echoed: it may carry credentials.
    if (problem) return { problem: `${problem}, such as ${DEFAULT_API_URL}` };
    return { url: (value as string).replace(/\/+$/, "") };
}

/** Collects check failures; every reason names the resource and says what is expected. */
export interface Checker {
    readonly failures: pulumi.dynamic.CheckFailure[];
    fail(property: string, expected: string, got?: unknown): void;
    /** A non-empty string matching `pattern`; unknown values pass (checked again at apply). */
    text(inputs: Record<string, unknown>, property: string, expected: string, pattern?: RegExp, showValue?: boolean): void;
    /** A boolean (or undefined when `optional`). */
    bool(inputs: Record<string, unknown>, property: string, optional?: boolean): void;
}

/** A Checker for `what`, e.g. "RepositoryVariable DB_CI_HOST in acme/dbt". Plain closures, no class: serialisable. */
export function checker(what: string): Checker {
    const failures: pulumi.dynamic.CheckFailure[] = [];
    const fail = (property: string, expected: string, got?: unknown) => {
        const shown = got === undefined ? "" : ` (got ${JSON.stringify(got)})`;
        failures.push({ property, reason: `${what}: ${property} must be ${expected}${shown}.` });
    };
    return {
        failures,
        fail,
        text(inputs, property, expected, pattern, showValue = true) {
            const v = inputs[property];
            if (isUnknown(v)) return;
            if (typeof v !== "string" || v.trim() === "" || (pattern && !pattern.test(v))) {
                fail(property, expected, showValue && v !== undefined ? v : undefined);
            }
        },
        bool(inputs, property, optional = false) {
            const v = inputs[property];
            if (isUnknown(v) || typeof v === "boolean" || (optional && v === undefined)) return;
            fail(property, optional ? "true or false when set" : "true or false", v);
        },
    };
}

/** Workspace slug or `{uuid}`. */
export const WORKSPACE_PATTERN = /^(?:[A-Za-z0-9][A-Za-z0-9_.-]*|\{[0-9a-fA-F-]{36}\})$/;
/** Repository slug. */
export const REPO_SLUG_PATTERN = /^[A-Za-z0-9_.-]+$/;
/** Bitbucket variable names: ASCII letters, digits and underscores, not starting with a digit. */
export const VARIABLE_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A Bitbucket UUID, with or without its braces. */
export const UUID_PATTERN = /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/;

/** A UUID as Bitbucket writes it: in braces. */
export function braced(uuid: string): string {
    return uuid.startsWith("{") ? uuid : `{${uuid.replace(/[{}]/g, "")}}`;
}

/** Checks the fields every Bitbucket resource has and returns the normalised apiUrl. */
export function checkRepository(check: Checker, news: Record<string, unknown>): string | undefined {
    check.text(news, "workspace", "a workspace slug or {workspace-uuid}", WORKSPACE_PATTERN);
    check.text(news, "repoSlug", "a repository slug (letters, digits, '-', '_', '.')", REPO_SLUG_PATTERN);
    if (isUnknown(news.apiUrl)) return news.apiUrl as string;
    const api = normaliseApiUrl(news.apiUrl);
    if (api.problem) check.fail("apiUrl", api.problem);
    return api.url;
}

/** The identity properties that differ between olds and news (any change forces a replacement). */
export function changedOf(olds: Record<string, unknown>, news: Record<string, unknown>, keys: string[]): string[] {
    return keys.filter((k) => olds[k] !== news[k] || isUnknown(news[k]));
}

/** The diff result plus the changed keys (the engine reads only the standard fields). */
export interface BitbucketDiff extends pulumi.dynamic.DiffResult {
    /** Every changed property, replacing or not. */
    changedKeys: string[];
}
