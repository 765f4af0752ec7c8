/**
 * Bitbucket deployment environments as a dynamic resource
 * (`/repositories/{workspace}/{repo_slug}/environments/`: paged GET, POST → 201 or 409 when the
 * name exists, `/{environment_uuid}` GET and DELETE → 204).
 *
 * Changes replace. The only documented update is `POST …/environments/{environment_uuid}/changes/`,
 * which declares no request body and answers 202 with no content: what it changes cannot be stated
 * or confirmed, and the environment type is not among the documented fields. A replacement is
 * deterministic; it is delete-before-create when the name stays (names are unique per repository),
 * and the environment's DeploymentVariables follow because they depend on its uuid.
 *
 * Adoption: a create that meets an existing environment of the same name (409) takes it over only
 * when it is provably ours or explicitly handed over: one of Bitbucket's built-in Test, Staging and
 * Production (created by Bitbucket in every repository, same type; they stay when the resource is
 * deleted, variables of others included), one our own create made on an attempt whose answer was
 * lost, or any environment with `adopt: true` (then managed and deleted like one we created).
 * Anything else fails naming the environment and is left as it is. `origin` records which.
 */
import * as pulumi from "@pulumi/pulumi";
import type { RestClient } from "../rest";
import {
    BitbucketDiff,
    bitbucketClient,
    changedOf,
    checker,
    checkRepository,
    ClientTuning,
    configureToken,
    DEFAULT_API_URL,
    isUnknown,
    listAll,
    MODULE,
    repoPath,
    seg,
    BitbucketRepositoryArgs,
} from "./common";

/** The environment types Bitbucket has, lowest rank first. */
export type EnvironmentType = "Test" | "Staging" | "Production";
/** An array, not a Set: module values are serialised with the provider and a Set would arrive empty. */
export const ENVIRONMENT_TYPES: readonly EnvironmentType[] = ["Test", "Staging", "Production"];

/** Checked inputs of a DeploymentEnvironment. */
export interface EnvironmentInputs {
    apiUrl: string;
    workspace: string;
    repoSlug: string;
    name: string;
    environmentType: EnvironmentType;
    /** Take over an existing environment of this name (it is then deleted with the resource). */
    adopt?: boolean;
}

/** How the environment came under management: made by us, Bitbucket's built-in, or handed over with `adopt`. */
export type EnvironmentOrigin = "created" | "built-in" | "adopted";

/** Outputs of a DeploymentEnvironment. */
export interface EnvironmentOutputs extends Omit<EnvironmentInputs, "adopt"> {
    uuid: string;
    slug?: string;
    origin: EnvironmentOrigin;
}

/** An environment as Bitbucket returns it. */
interface RemoteEnvironment {
    uuid: string;
    name: string;
    slug?: string;
    environment_type?: { name?: string };
}

function shown(v: unknown): string {
    return isUnknown(v) ? "(unknown)" : String(v);
}

function subject(i: Partial<EnvironmentInputs>): string {
    return `deployment environment ${shown(i.name)} in ${shown(i.workspace)}/${shown(i.repoSlug)}`;
}

function collection(i: Pick<EnvironmentInputs, "workspace" | "repoSlug">): string {
    return `${repoPath(i.workspace, i.repoSlug)}/environments/`;
}

function item(i: Pick<EnvironmentInputs, "workspace" | "repoSlug">, uuid: string): string {
    return `${collection(i)}${seg(uuid)}`;
}

/** Bitbucket treats environment names case-insensitively when it checks for duplicates. */
function sameName(a: unknown, b: unknown): boolean {
    return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

/** The resource id: the environment's natural key. */
export function environmentId(i: Pick<EnvironmentInputs, "workspace" | "repoSlug" | "name">): string {
    return `${i.workspace}/${i.repoSlug}/${i.name}`;
}

function parseId(id: string): Partial<EnvironmentOutputs> {
    const [workspace, repoSlug, ...name] = id.split("/");
    return name.length > 0 ? { apiUrl: DEFAULT_API_URL, workspace, repoSlug, name: name.join("/") } : {};
}

function asRemote(body: unknown, resource: string): RemoteEnvironment {
    const b = body as RemoteEnvironment | undefined;
    if (!b || typeof b !== "object" || typeof b.uuid !== "string" || typeof b.name !== "string") {
        throw new Error(`Bitbucket (${resource}): unexpected response; expected an environment with "uuid" and "name".`);
    }
    return b;
}

/** Bitbucket's own Test, Staging or Production: the name is its type (any case) and the type matches. */
function isBuiltIn(remote: RemoteEnvironment): boolean {
    const type = remote.environment_type?.name;
    return typeof type === "string" && ENVIRONMENT_TYPES.includes(type as EnvironmentType) && sameName(remote.name, type);
}

function outputsOf(i: Partial<EnvironmentInputs>, remote: RemoteEnvironment, origin: EnvironmentOrigin): EnvironmentOutputs {
    const out: EnvironmentOutputs = {
        origin,
        apiUrl: i.apiUrl ?? DEFAULT_API_URL,
        workspace: i.workspace ?? "",
        repoSlug: i.repoSlug ?? "",
        name: remote.name,
        environmentType: (remote.environment_type?.name ?? i.environmentType) as EnvironmentType,
        uuid: remote.uuid,
    };
    if (typeof remote.slug === "string") out.slug = remote.slug;
    return out;
}

/** Creates the environment, or adopts the one with its name (409) when that is allowed (file comment) and the type matches. */
async function createOrAdopt(client: RestClient, i: EnvironmentInputs, resource: string): Promise<{ remote: RemoteEnvironment; origin: EnvironmentOrigin }> {
    const body = {
        type: "deployment_environment",
        name: i.name,
        environment_type: { type: "deployment_environment_type", name: i.environmentType },
    };
    const res = await client.request({ method: "POST", path: collection(i), json: body, resource, accept: [409] });
    if (res.status !== 409) return { remote: asRemote(res.body, resource), origin: "created" };
    const all = (await listAll<RemoteEnvironment>(client, collection(i), resource)) ?? [];
    const existing = all.find((e) => sameName(e.name, i.name));
    if (!existing) {
        throw new Error(`Bitbucket (${resource}): the create answered 409 Conflict (name exists) but no environment ${i.name} is listed; retry.`);
    }
    const type = existing.environment_type?.name;
    if (type !== i.environmentType) {
        throw new Error(
            `Bitbucket (${resource}): an environment named ${existing.name} already exists with type ${type ?? "(none)"}, not ${i.environmentType}, ` +
                `and Bitbucket cannot change the type in place. Set environmentType to "${type}", or delete the environment in ` +
                "Repository settings → Deployments (its variables go with it) and run again.",
        );
    }
    if (isBuiltIn(existing)) return { remote: existing, origin: "built-in" };
    if (res.maybeApplied) return { remote: existing, origin: "created" };
    if (i.adopt === true) return { remote: existing, origin: "adopted" };
    throw new Error(
        `Bitbucket (${resource}): an environment named ${existing.name} (${existing.uuid}) already exists and was not created by this stack; ` +
            "it is left as it is. Set adopt: true on the DeploymentEnvironment to take it over (it is then deleted with the stack), " +
            "or give this environment another name.",
    );
}

/**
 * The remote environment for saved state, by its UUID only: one re-made by hand under the same name
 * is someone else's. Undefined when gone. Without a UUID (`pulumi import` by id) it is found by name.
 */
async function fetchEnvironment(client: RestClient, known: Partial<EnvironmentOutputs>, resource: string): Promise<RemoteEnvironment | undefined> {
    const where = { workspace: known.workspace ?? "", repoSlug: known.repoSlug ?? "" };
    if (typeof known.uuid === "string") {
        const res = await client.request({ method: "GET", path: item(where, known.uuid), resource, accept: [404] });
        return res.status === 404 ? undefined : asRemote(res.body, resource);
    }
    const all = await listAll<RemoteEnvironment>(client, collection(where), resource, true);
    return all?.find((e) => sameName(e.name, known.name));
}

/** Validates and normalises inputs. */
export function checkEnvironment(news: Record<string, unknown>): pulumi.dynamic.CheckResult {
    const label = typeof news.name === "string" && !isUnknown(news.name) ? JSON.stringify(news.name) : shown(news.name);
    const c = checker(`DeploymentEnvironment ${label} in ${shown(news.workspace)}/${shown(news.repoSlug)}`);
    const apiUrl = checkRepository(c, news);
    c.text(news, "name", "a non-empty environment name without leading or trailing spaces", /^\S(?:.*\S)?$/);
    if (!isUnknown(news.environmentType) && !ENVIRONMENT_TYPES.includes(news.environmentType as EnvironmentType)) {
        c.fail("environmentType", `one of ${ENVIRONMENT_TYPES.join(", ")}`, news.environmentType);
    }
    c.bool(news, "adopt", true);
    return { inputs: { ...news, apiUrl, adopt: news.adopt ?? false }, failures: c.failures };
}

/** Every change replaces; delete first when the name (unique per repository) stays. */
export function diffEnvironment(olds: Record<string, unknown>, news: Record<string, unknown>): BitbucketDiff {
    // The name by Bitbucket's own rule (case-insensitive), the rule adoption matches by: an adopted
    // "Production" satisfies "production" and a second `up` is a no-op.
    const renamed = isUnknown(news.name) || !sameName(olds.name, news.name) ? ["name"] : [];
    const replaces = [...changedOf(olds, news, ["apiUrl", "workspace", "repoSlug"]), ...renamed, ...changedOf(olds, news, ["environmentType"])];
    const sameSlot = changedOf(olds, news, ["apiUrl", "workspace", "repoSlug"]).length === 0 && sameName(olds.name, news.name);
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 && sameSlot, changedKeys: replaces };
}

/** The dynamic provider of DeploymentEnvironment; `tuning` only changes retry timing (tests). */
export function environmentProvider(tuning?: ClientTuning): pulumi.dynamic.ResourceProvider {
    return {
        configure: configureToken,

        async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
            return checkEnvironment(news);
        },

        async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
            return diffEnvironment(olds, news);
        },

        async create(inputs: EnvironmentInputs) {
            const resource = subject(inputs);
            const client = bitbucketClient(inputs.apiUrl, resource, tuning);
            const { remote, origin } = await createOrAdopt(client, inputs, resource);
            return { id: environmentId(inputs), outs: outputsOf(inputs, remote, origin) };
        },

        async read(id: string, props?: Partial<EnvironmentOutputs>) {
            const known: Partial<EnvironmentOutputs> = { ...parseId(id), ...(props ?? {}) };
            const resource = subject(known);
            const client = bitbucketClient(known.apiUrl ?? DEFAULT_API_URL, resource, tuning);
            const remote = await fetchEnvironment(client, known, resource);
            // Gone: no id, so the engine drops it from state and the next `up` creates it again.
            if (!remote) return {};
            // Imported by id (no recorded origin): treated as handed over, like adopt: true; built-ins stay built-ins.
            const origin = known.origin ?? (isBuiltIn(remote) ? "built-in" : "adopted");
            return { id, props: outputsOf(known, remote, origin) };
        },

        // Nothing is updated in place (see the file comment); an update makes sure the environment still exists.
        async update(_id: string, olds: EnvironmentOutputs, news: EnvironmentInputs) {
            const resource = subject(news);
            const client = bitbucketClient(news.apiUrl, resource, tuning);
            const found = await fetchEnvironment(client, { ...news, uuid: olds.uuid }, resource);
            const { remote, origin } = found ? { remote: found, origin: olds.origin ?? "created" } : await createOrAdopt(client, news, resource);
            return { outs: outputsOf(news, remote, origin) };
        },

        async delete(_id: string, props: EnvironmentOutputs) {
            // Bitbucket's built-in environments (and whatever variables others keep in them) stay; state
            // from before `origin` existed counts a built-in's name and type as built-in.
            const builtIn = props.origin === "built-in" || (props.origin === undefined && sameName(props.name, props.environmentType));
            if (typeof props.uuid !== "string" || builtIn) return;
            const resource = subject(props);
            const client = bitbucketClient(props.apiUrl ?? DEFAULT_API_URL, resource, tuning);
            await client.request({ method: "DELETE", path: item(props, props.uuid), resource, accept: [404] });
        },
    };
}

const deploymentEnvironmentProvider = environmentProvider();

/** Arguments of a DeploymentEnvironment. */
export interface DeploymentEnvironmentArgs extends BitbucketRepositoryArgs {
    /** Environment name as `deployment:` in bitbucket-pipelines.yml names it, e.g. "Production". */
    name: pulumi.Input<string>;
    /** Bitbucket's environment type: "Test", "Staging" or "Production"; a change replaces the environment. */
    environmentType: pulumi.Input<EnvironmentType>;
    /** Take over an existing environment of this name that the stack did not create (default false: fail naming it). */
    adopt?: pulumi.Input<boolean>;
}

/** A deployment environment (Repository settings → Deployments). */
export class DeploymentEnvironment extends pulumi.dynamic.Resource {
    declare public readonly workspace: pulumi.Output<string>;
    declare public readonly repoSlug: pulumi.Output<string>;
    declare public readonly name: pulumi.Output<string>;
    declare public readonly environmentType: pulumi.Output<EnvironmentType>;
    declare public readonly apiUrl: pulumi.Output<string>;
    /** Bitbucket's UUID of the environment, braces included: the input of DeploymentVariable.environmentUuid. */
    declare public readonly uuid: pulumi.Output<string>;
    /** Bitbucket's slug of the environment. */
    declare public readonly slug: pulumi.Output<string | undefined>;
    /** "created", "built-in" (Bitbucket's own; kept on delete) or "adopted" (taken over with `adopt`). */
    declare public readonly origin: pulumi.Output<EnvironmentOrigin>;

    constructor(name: string, args: DeploymentEnvironmentArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            deploymentEnvironmentProvider,
            name,
            {
                workspace: args.workspace,
                repoSlug: args.repoSlug,
                name: args.name,
                environmentType: args.environmentType,
                apiUrl: args.apiUrl ?? DEFAULT_API_URL,
                adopt: args.adopt ?? false,
                uuid: undefined,
                slug: undefined,
                origin: undefined,
            },
            opts,
            MODULE,
            "DeploymentEnvironment",
        );
    }
}

/** The provider object DeploymentEnvironment serialises (for the secrecy proof and tests). */
export const environmentProviderObject = deploymentEnvironmentProvider;
