/**
 * Bitbucket Pipelines variables as dynamic resources: repository variables
 * (`/repositories/{workspace}/{repo_slug}/pipelines_config/variables/`) and deployment environment
 * variables (`/repositories/{workspace}/{repo_slug}/deployments_config/environments/{environment_uuid}/variables`).
 *
 * The two collections behave the same (POST → 201, 409 when the key exists, PUT/DELETE by
 * `{variable_uuid}`, secured values never returned) except that deployment variables have no GET
 * of a single variable, so reads list and match.
 *
 * Identity is the key: the resource id is `workspace/repoSlug[/environmentUuid]/key`, and the
 * current Bitbucket UUID is an output. That lets update re-create a variable deleted out of band
 * without changing the id. Values are never kept in outputs: only sha256(salt, value) and the salt.
 *
 * Adoption: Bitbucket variables carry no description or other marker, so a create that meets an
 * existing key (409) takes it over only when it is our own (an earlier attempt of this very create
 * may have landed: its answer was lost) or when `adopt: true` hands it over explicitly. Otherwise it
 * fails naming the variable and leaves it untouched: a foreign variable is never overwritten, and
 * delete only ever removes the UUID this resource created or adopted. A secured variable is never
 * replaced by a plain one to adopt it.
 */
import * as pulumi from "@pulumi/pulumi";
import type { RestClient } from "../rest";
import {
    BitbucketDiff,
    bitbucketClient,
    braced,
    changedOf,
    checker,
    checkRepository,
    ClientTuning,
    configureToken,
    DEFAULT_API_URL,
    hashValue,
    isUnknown,
    listAll,
    MODULE,
    newSalt,
    repoPath,
    seg,
    UUID_PATTERN,
    VARIABLE_KEY_PATTERN,
    BitbucketRepositoryArgs,
} from "./common";

/** Which collection a variable lives in. */
export type VariableScope = "repository" | "deployment";

/** Checked inputs of a variable resource (what create and update receive). */
export interface VariableInputs {
    apiUrl: string;
    workspace: string;
    repoSlug: string;
    /** Deployment variables only. */
    environmentUuid?: string;
    key: string;
    value: string;
    secured: boolean;
    /** Take over an existing variable with this key (its value is overwritten; it is deleted with the resource). */
    adopt?: boolean;
}

/** Outputs of a variable resource: no value, only its salted hash. */
export interface VariableOutputs {
    apiUrl: string;
    workspace: string;
    repoSlug: string;
    environmentUuid?: string;
    key: string;
    secured: boolean;
    uuid: string;
    valueSalt: string;
    valueHash?: string;
}

/** A variable as Bitbucket returns it (`value` absent when secured). */
interface RemoteVariable {
    uuid: string;
    key: string;
    value?: string;
    secured?: boolean;
}

function typeName(scope: VariableScope): string {
    return scope === "repository" ? "RepositoryVariable" : "DeploymentVariable";
}

function shown(v: unknown): string {
    return isUnknown(v) ? "(unknown)" : String(v);
}

function subject(scope: VariableScope, i: Partial<VariableInputs>): string {
    return scope === "repository"
        ? `repository variable ${shown(i.key)} in ${shown(i.workspace)}/${shown(i.repoSlug)}`
        : `deployment variable ${shown(i.key)} of environment ${shown(i.environmentUuid)} in ${shown(i.workspace)}/${shown(i.repoSlug)}`;
}

function collection(scope: VariableScope, i: Pick<VariableInputs, "workspace" | "repoSlug" | "environmentUuid">): string {
    const repo = repoPath(i.workspace, i.repoSlug);
    return scope === "repository"
        ? `${repo}/pipelines_config/variables/`
        : `${repo}/deployments_config/environments/${seg(i.environmentUuid ?? "")}/variables`;
}

function item(scope: VariableScope, i: Pick<VariableInputs, "workspace" | "repoSlug" | "environmentUuid">, uuid: string): string {
    const base = collection(scope, i);
    return scope === "repository" ? `${base}${seg(uuid)}` : `${base}/${seg(uuid)}`;
}

/** Properties naming the remote slot; a change to any of them is a different variable. */
function identityKeys(scope: VariableScope): string[] {
    return scope === "repository" ? ["apiUrl", "workspace", "repoSlug", "key"] : ["apiUrl", "workspace", "repoSlug", "environmentUuid", "key"];
}

/** The resource id: the variable's natural key. */
export function variableId(scope: VariableScope, i: Pick<VariableInputs, "workspace" | "repoSlug" | "environmentUuid" | "key">): string {
    return scope === "repository" ? `${i.workspace}/${i.repoSlug}/${i.key}` : `${i.workspace}/${i.repoSlug}/${i.environmentUuid}/${i.key}`;
}

/** Reads an id back (import without state). */
function parseId(scope: VariableScope, id: string): Partial<VariableOutputs> {
    const parts = id.split("/");
    if (scope === "repository" && parts.length === 3) return { apiUrl: DEFAULT_API_URL, workspace: parts[0], repoSlug: parts[1], key: parts[2] };
    if (scope === "deployment" && parts.length === 4) {
        return { apiUrl: DEFAULT_API_URL, workspace: parts[0], repoSlug: parts[1], environmentUuid: parts[2], key: parts[3] };
    }
    return {};
}

function asRemote(body: unknown, resource: string): RemoteVariable {
    const b = body as RemoteVariable | undefined;
    if (!b || typeof b !== "object" || typeof b.uuid !== "string" || typeof b.key !== "string") {
        throw new Error(`Bitbucket (${resource}): unexpected response; expected a variable with "uuid" and "key".`);
    }
    return b;
}

/** Drops undefined fields: the engine's property structs cannot hold them. */
function compact<T extends object>(o: T): T {
    return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function outputsOf(scope: VariableScope, i: VariableInputs, remote: RemoteVariable, salt: string): VariableOutputs {
    return compact({
        apiUrl: i.apiUrl,
        workspace: i.workspace,
        repoSlug: i.repoSlug,
        environmentUuid: scope === "deployment" ? i.environmentUuid : undefined,
        key: i.key,
        secured: typeof remote.secured === "boolean" ? remote.secured : i.secured,
        uuid: remote.uuid,
        valueSalt: salt,
        valueHash: hashValue(salt, i.value),
    });
}

/** PUTs the desired key/value/secured; undefined when the variable is gone (404). */
async function put(scope: VariableScope, client: RestClient, i: VariableInputs, uuid: string, resource: string): Promise<RemoteVariable | undefined> {
    const res = await client.request({
        method: "PUT",
        path: item(scope, i, uuid),
        json: { key: i.key, value: i.value, secured: i.secured },
        resource,
        accept: [404],
    });
    return res.status === 404 ? undefined : asRemote(res.body, resource);
}

/**
 * Creates the variable, or adopts the one that already has its key (409) when that is allowed (see
 * the file comment) and sets it to the desired value. A create whose answer was lost (dropped
 * connection, retried by the client) lands here too, so a retry never makes a second variable.
 */
async function createOrAdopt(scope: VariableScope, client: RestClient, i: VariableInputs, resource: string): Promise<RemoteVariable> {
    const body = { key: i.key, value: i.value, secured: i.secured };
    const res = await client.request({ method: "POST", path: collection(scope, i), json: body, resource, accept: [409] });
    if (res.status !== 409) return asRemote(res.body, resource);
    const all = (await listAll<RemoteVariable>(client, collection(scope, i), resource)) ?? [];
    const existing = all.find((v) => v.key === i.key);
    if (!existing) {
        throw new Error(`Bitbucket (${resource}): the create answered 409 Conflict (key exists) but no variable ${i.key} is listed; retry, or look for it in the repository settings.`);
    }
    if (!res.maybeApplied && i.adopt !== true) {
        throw new Error(
            `Bitbucket (${resource}): a variable ${i.key} (${existing.uuid}) already exists and was not created by this stack; it is left as it is. ` +
                "Set adopt: true to take it over (its value is then overwritten and it is deleted with the stack), or delete it in the Bitbucket settings.",
        );
    }
    if (existing.secured && !i.secured) {
        // Bitbucket cannot unsecure a variable, and deleting a secured value to make a plain one would lose it.
        throw new Error(
            `Bitbucket (${resource}): the existing variable ${i.key} is secured and this one is not; a secured variable cannot be made plain. ` +
                "Set secured: true, or delete the variable in the Bitbucket settings.",
        );
    }
    const updated = await put(scope, client, i, existing.uuid, resource);
    if (!updated) throw new Error(`Bitbucket (${resource}): the existing variable disappeared while it was being adopted; run the update again.`);
    return updated;
}

/**
 * The remote variable for saved state, by its UUID only: one re-made by hand under the same key is
 * someone else's. Undefined when gone. Without a UUID (`pulumi import` by id) it is found by key.
 */
async function fetchVariable(scope: VariableScope, client: RestClient, known: Partial<VariableOutputs>, resource: string): Promise<RemoteVariable | undefined> {
    const where = { workspace: known.workspace ?? "", repoSlug: known.repoSlug ?? "", environmentUuid: known.environmentUuid };
    if (scope === "repository" && typeof known.uuid === "string") {
        const res = await client.request({ method: "GET", path: item(scope, where, known.uuid), resource, accept: [404] });
        return res.status === 404 ? undefined : asRemote(res.body, resource);
    }
    // Deployment variables have no single GET; the list also finds one re-created under the same key.
    const all = await listAll<RemoteVariable>(client, collection(scope, where), resource, true);
    if (!all) return undefined; // the environment or repository itself is gone
    return typeof known.uuid === "string" ? all.find((v) => v.uuid === known.uuid) : all.find((v) => v.key === known.key);
}

/** Validates and normalises inputs; failure reasons never contain the value. */
export function checkVariable(scope: VariableScope, news: Record<string, unknown>): pulumi.dynamic.CheckResult {
    const c = checker(`${typeName(scope)} ${shown(news.key)} in ${shown(news.workspace)}/${shown(news.repoSlug)}`);
    const apiUrl = checkRepository(c, news);
    const inputs: Record<string, unknown> = { ...news, apiUrl };
    if (scope === "deployment") {
        c.text(news, "environmentUuid", "the environment's UUID, e.g. {8f7c…} (DeploymentEnvironment.uuid)", UUID_PATTERN);
        if (typeof news.environmentUuid === "string" && UUID_PATTERN.test(news.environmentUuid)) inputs.environmentUuid = braced(news.environmentUuid);
    }
    c.text(news, "key", "a variable name of ASCII letters, digits and underscores, not starting with a digit", VARIABLE_KEY_PATTERN);
    if (!isUnknown(news.value) && typeof news.value !== "string") c.fail("value", "a string (the value is not shown here)");
    c.bool(news, "secured");
    c.bool(news, "adopt", true);
    inputs.adopt = news.adopt ?? false;
    return { inputs, failures: c.failures };
}

/** Replace when the slot changes or a secured variable would become plain; update for value and securing. */
export function diffVariable(scope: VariableScope, olds: Record<string, unknown>, news: Record<string, unknown>): BitbucketDiff {
    const identity = identityKeys(scope);
    const replaces = changedOf(olds, news, identity);
    const changed = [...replaces];
    if (olds.secured !== news.secured) {
        changed.push("secured");
        // Bitbucket cannot unsecure a variable: a secured one going plain is a new variable.
        if (olds.secured === true || isUnknown(news.secured)) replaces.push("secured");
    }
    const valueChanged =
        isUnknown(news.value) || typeof olds.valueSalt !== "string" || hashValue(olds.valueSalt, String(news.value)) !== olds.valueHash;
    if (valueChanged) changed.push("value");
    return {
        changes: changed.length > 0,
        replaces,
        // Same key in the same place: the old one must go first, else the new create would adopt it and the delete remove it.
        deleteBeforeReplace: replaces.length > 0 && replaces.every((k) => !identity.includes(k)),
        changedKeys: changed,
    };
}

/** The dynamic provider of one variable scope; `tuning` only changes retry timing (tests). */
export function variableProvider(scope: VariableScope, tuning?: ClientTuning): pulumi.dynamic.ResourceProvider {
    return {
        configure: configureToken,

        async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
            return checkVariable(scope, news);
        },

        async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
            return diffVariable(scope, olds, news);
        },

        async create(inputs: VariableInputs) {
            const resource = subject(scope, inputs);
            const client = bitbucketClient(inputs.apiUrl, resource, tuning);
            const remote = await createOrAdopt(scope, client, inputs, resource);
            return { id: variableId(scope, inputs), outs: outputsOf(scope, inputs, remote, newSalt()) };
        },

        async read(id: string, props?: Partial<VariableOutputs>) {
            const known: Partial<VariableOutputs> = { ...parseId(scope, id), ...compact(props ?? {}) };
            const resource = subject(scope, known);
            const client = bitbucketClient(known.apiUrl ?? DEFAULT_API_URL, resource, tuning);
            const remote = await fetchVariable(scope, client, known, resource);
            // Gone: no id, so the engine drops it from state and the next `up` creates it again.
            if (!remote) return {};
            const salt = typeof known.valueSalt === "string" ? known.valueSalt : newSalt();
            // Secured values never come back: keep the hash of what was written. Plain ones are re-hashed, so drift shows.
            const valueHash = !remote.secured && typeof remote.value === "string" ? hashValue(salt, remote.value) : known.valueHash;
            const props2: VariableOutputs = compact({
                apiUrl: known.apiUrl ?? DEFAULT_API_URL,
                workspace: known.workspace ?? "",
                repoSlug: known.repoSlug ?? "",
                environmentUuid: scope === "deployment" ? known.environmentUuid : undefined,
                key: remote.key,
                secured: remote.secured === true,
                uuid: remote.uuid,
                valueSalt: salt,
                valueHash,
            });
            return { id, props: props2 };
        },

        async update(_id: string, olds: VariableOutputs, news: VariableInputs) {
            const resource = subject(scope, news);
            const client = bitbucketClient(news.apiUrl, resource, tuning);
            let remote = typeof olds.uuid === "string" ? await put(scope, client, news, olds.uuid, resource) : undefined;
            // 404: deleted out of band since the last refresh; create it again (or adopt one re-made by hand).
            if (!remote) remote = await createOrAdopt(scope, client, news, resource);
            const salt = typeof olds.valueSalt === "string" ? olds.valueSalt : newSalt();
            return { outs: outputsOf(scope, news, remote, salt) };
        },

        async delete(_id: string, props: VariableOutputs) {
            if (typeof props.uuid !== "string") return;
            const resource = subject(scope, props);
            const client = bitbucketClient(props.apiUrl ?? DEFAULT_API_URL, resource, tuning);
            await client.request({ method: "DELETE", path: item(scope, props, props.uuid), resource, accept: [404] });
        },
    };
}

const repositoryVariableProvider = variableProvider("repository");
const deploymentVariableProvider = variableProvider("deployment");

/** Secret outputs of a variable: the value (should the engine echo an input) and anything derived from it. */
const VARIABLE_SECRET_OUTPUTS = ["value", "valueHash"];

/** The registered inputs of a variable: the value always a secret, the derived outputs declared. */
function variableInputs(args: RepositoryVariableArgs & { environmentUuid?: pulumi.Input<string> }): pulumi.Inputs {
    return {
        workspace: args.workspace,
        repoSlug: args.repoSlug,
        ...(args.environmentUuid === undefined ? {} : { environmentUuid: args.environmentUuid }),
        key: args.key,
        value: pulumi.secret(args.value),
        secured: args.secured,
        apiUrl: args.apiUrl ?? DEFAULT_API_URL,
        adopt: args.adopt ?? false,
        uuid: undefined,
        valueHash: undefined,
        valueSalt: undefined,
    };
}

/** Arguments of a RepositoryVariable. */
export interface RepositoryVariableArgs extends BitbucketRepositoryArgs {
    /** Variable name as pipelines see it, e.g. DB_CI_HOST. */
    key: pulumi.Input<string>;
    /** The value; always registered as a Pulumi secret and kept only as a salted hash in outputs. */
    value: pulumi.Input<string>;
    /** Bitbucket's "Secured" flag (masked in logs, never readable back); turning it off replaces the variable. */
    secured: pulumi.Input<boolean>;
    /** Take over an existing variable with this key that the stack did not create (default false: fail naming it). */
    adopt?: pulumi.Input<boolean>;
}

/** A repository pipeline variable (Repository settings → Pipelines → Repository variables). */
export class RepositoryVariable extends pulumi.dynamic.Resource {
    declare public readonly workspace: pulumi.Output<string>;
    declare public readonly repoSlug: pulumi.Output<string>;
    declare public readonly key: pulumi.Output<string>;
    declare public readonly secured: pulumi.Output<boolean>;
    declare public readonly apiUrl: pulumi.Output<string>;
    /** Bitbucket's UUID of the variable, braces included. */
    declare public readonly uuid: pulumi.Output<string>;
    /** sha256(valueSalt, NUL, value), secret: how diff and read see a changed value without keeping it. */
    declare public readonly valueHash: pulumi.Output<string>;
    /** Salt of valueHash. */
    declare public readonly valueSalt: pulumi.Output<string>;

    constructor(name: string, args: RepositoryVariableArgs, opts?: pulumi.CustomResourceOptions) {
        super(repositoryVariableProvider, name, variableInputs(args), pulumi.mergeOptions(opts, { additionalSecretOutputs: [...VARIABLE_SECRET_OUTPUTS] }), MODULE, "RepositoryVariable");
    }
}

/** Arguments of a DeploymentVariable: a repository variable's, scoped to one deployment environment. */
export interface DeploymentVariableArgs extends RepositoryVariableArgs {
    /** The deployment environment's UUID (DeploymentEnvironment.uuid). */
    environmentUuid: pulumi.Input<string>;
}

/** A deployment environment variable (Repository settings → Deployments → <environment> → Variables). */
export class DeploymentVariable extends pulumi.dynamic.Resource {
    declare public readonly workspace: pulumi.Output<string>;
    declare public readonly repoSlug: pulumi.Output<string>;
    declare public readonly environmentUuid: pulumi.Output<string>;
    declare public readonly key: pulumi.Output<string>;
    declare public readonly secured: pulumi.Output<boolean>;
    declare public readonly apiUrl: pulumi.Output<string>;
    /** Bitbucket's UUID of the variable, braces included. */
    declare public readonly uuid: pulumi.Output<string>;
    /** sha256(valueSalt, NUL, value), secret. */
    declare public readonly valueHash: pulumi.Output<string>;
    /** Salt of valueHash. */
    declare public readonly valueSalt: pulumi.Output<string>;

    constructor(name: string, args: DeploymentVariableArgs, opts?: pulumi.CustomResourceOptions) {
        super(deploymentVariableProvider, name, variableInputs(args), pulumi.mergeOptions(opts, { additionalSecretOutputs: [...VARIABLE_SECRET_OUTPUTS] }), MODULE, "DeploymentVariable");
    }
}

/** The provider objects the resources serialise (for the secrecy proof and tests). */
export const variableProviders = { repository: repositoryVariableProvider, deployment: deploymentVariableProvider };
