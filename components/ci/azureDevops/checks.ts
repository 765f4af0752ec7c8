/**
 * Checks on protected resources (variable groups, secure files, environments), REST 7.1-preview.1
 * pipelines/checks/configurations: Branch control (a "Task Check" running evaluatebranchProtection),
 * Exclusive Lock, and Approval on any resource type. A run that uses a checked resource waits until
 * every check on it passes, whichever pipeline or branch asked for it.
 *
 * Check configurations are not deduplicated by the API and a resource may carry checks someone else
 * added. Create never adopts or changes a check that was there before: it adds its own (checks
 * combine, so an extra one only narrows who may use the resource), and after a dropped POST it takes
 * only a matching check that was not there before the POST.
 */
import * as pulumi from "@pulumi/pulumi";
import {
    API,
    AzureDevops,
    Checker,
    MODULE,
    apiUrlOf,
    changedKeys,
    compact,
    configureFromStack,
    createWithoutDuplicates,
    deletedOutsidePulumi,
    describe,
    isUnknown,
    AzureDevopsProjectArgs,
    ProjectTarget,
} from "./common";

/** Check type ids (Azure's built-in check types). */
export const CHECK_TYPE_IDS = {
    approval: "8C6F20A7-A545-4486-9777-F762FAFE0D4D",
    /** "Task Check": branch control, business hours, REST calls… told apart by settings.definitionRef. */
    taskCheck: "FE1DE3EE-A436-41B4-BB20-F6EB4CB879A7",
    exclusiveLock: "2EF31AD6-BAA0-403A-8B45-2CBC9B4E5563",
} as const;

/** The task definition a Branch control check runs. */
export const BRANCH_CONTROL_DEFINITION = { id: "86b05a0c-73e6-4f7d-b3cf-e38f3b39a75b", name: "evaluatebranchProtection", version: "0.0.1" } as const;

/** Resource types that take checks. */
export type CheckedResourceType = "variablegroup" | "securefile" | "environment" | "endpoint" | "queue";
const RESOURCE_TYPES: CheckedResourceType[] = ["variablegroup", "securefile", "environment", "endpoint", "queue"];
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_TIMEOUT_MINUTES = 43200;

/** Where a check sits. */
export interface CheckTargetArgs extends AzureDevopsProjectArgs {
    /** Kind of the guarded resource. */
    resourceType: pulumi.Input<CheckedResourceType>;
    /** The guarded resource's id (variable group id, secure file GUID, environment id…); a service connection's may be left out: it is looked up by resourceName. */
    resourceId?: pulumi.Input<string | number>;
    /** The guarded resource's name (recorded with the check, shown in the UI). */
    resourceName: pulumi.Input<string>;
    /** Minutes before a pending check fails, 1 to 43200. */
    timeoutMinutes?: pulumi.Input<number>;
}

/** Arguments of a BranchControlCheck. */
export interface BranchControlCheckArgs extends CheckTargetArgs {
    /** Branches whose runs may use the resource, e.g. ["main"] or ["refs/heads/main"]. */
    allowedBranches: pulumi.Input<pulumi.Input<string>[]>;
    /** Also require the branch to be protected by branch policies (default false). */
    verifyBranchProtection?: pulumi.Input<boolean>;
    /** Name shown on the check (default "Branch control"). */
    displayName?: pulumi.Input<string>;
}

/** Arguments of a ResourceApprovalCheck. */
export interface ResourceApprovalCheckArgs extends CheckTargetArgs {
    /** Identity ids (GUIDs) of the approvers. */
    approverIds: pulumi.Input<pulumi.Input<string>[]>;
    /** Instructions shown to approvers. */
    instructions?: pulumi.Input<string>;
}

/** Arguments of an ExclusiveLockCheck. */
export type ExclusiveLockCheckArgs = CheckTargetArgs;

type Kind = "branchControl" | "exclusiveLock" | "approval";

interface CheckInputs extends ProjectTarget {
    resourceType: CheckedResourceType;
    resourceId?: string | number;
    resourceName: string;
    timeoutMinutes?: number;
    allowedBranches?: string[];
    verifyBranchProtection?: boolean;
    displayName?: string;
    approverIds?: string[];
    instructions?: string;
}

interface CheckOutputs extends ProjectTarget {
    resourceType: CheckedResourceType;
    resourceId: string;
    resourceName: string;
    timeoutMinutes: number;
    /** Kind-specific settings as we compare them. */
    settings: Record<string, unknown>;
    checkId: number;
}

interface RemoteCheck {
    id: number;
    type?: { id?: string; name?: string };
    resource?: { type?: string; id?: string; name?: string };
    timeout?: number;
    settings?: Record<string, any>;
}

const LABEL: Record<Kind, string> = { branchControl: "branch control check", exclusiveLock: "exclusive lock check", approval: "approval check" };

function ref(b: string): string {
    return b.startsWith("refs/") ? b : `refs/heads/${b}`;
}

/** The settings we compare, normalised (sorted, refs/heads/ prefixed, lower-case ids). */
function desiredSettings(kind: Kind, i: CheckInputs): Record<string, unknown> {
    switch (kind) {
        case "branchControl":
            return {
                allowedBranches: [...new Set((i.allowedBranches ?? []).map(ref))].sort(),
                verifyBranchProtection: i.verifyBranchProtection ?? false,
                displayName: i.displayName ?? "Branch control",
            };
        case "approval":
            return { approverIds: [...(i.approverIds ?? [])].map((a) => a.toLowerCase()).sort(), instructions: i.instructions ?? "" };
        case "exclusiveLock":
            return {};
    }
}

/** The wire `type` and `settings` of a check. */
function wire(kind: Kind, s: Record<string, any>): { type: { id: string; name: string }; settings: Record<string, unknown> } {
    switch (kind) {
        case "branchControl":
            return {
                type: { id: CHECK_TYPE_IDS.taskCheck, name: "Task Check" },
                settings: {
                    displayName: s.displayName,
                    definitionRef: BRANCH_CONTROL_DEFINITION,
                    // The task takes strings: a comma-separated ref list and "true"/"false".
                    inputs: { allowedBranches: s.allowedBranches.join(","), ensureProtectionOfBranch: String(s.verifyBranchProtection), allowUnknownStatusBranch: "false" },
                    retryInterval: 5,
                },
            };
        case "approval":
            return {
                type: { id: CHECK_TYPE_IDS.approval, name: "Approval" },
                settings: {
                    approvers: s.approverIds.map((id: string) => ({ id })),
                    minRequiredApprovers: 0,
                    instructions: s.instructions,
                    requesterCannotBeApprover: true,
                    executionOrder: 1,
                    blockedApprovers: [],
                },
            };
        case "exclusiveLock":
            return { type: { id: CHECK_TYPE_IDS.exclusiveLock, name: "ExclusiveLock" }, settings: {} };
    }
}

/** The compared settings of a remote check, or undefined when it is not a check of this kind. */
function remoteSettings(kind: Kind, c: RemoteCheck): Record<string, unknown> | undefined {
    const type = (c.type?.id ?? "").toUpperCase();
    const s = c.settings ?? {};
    switch (kind) {
        case "branchControl": {
            if (type !== CHECK_TYPE_IDS.taskCheck || String(s.definitionRef?.id ?? "").toLowerCase() !== BRANCH_CONTROL_DEFINITION.id) return undefined;
            const branches = String(s.inputs?.allowedBranches ?? "")
                .split(",")
                .map((b) => b.trim())
                .filter(Boolean);
            return {
                allowedBranches: [...new Set(branches)].sort(),
                verifyBranchProtection: String(s.inputs?.ensureProtectionOfBranch ?? "false") === "true",
                displayName: s.displayName ?? "",
            };
        }
        case "approval":
            if (type !== CHECK_TYPE_IDS.approval) return undefined;
            return { approverIds: (s.approvers ?? []).map((a: { id: string }) => String(a.id).toLowerCase()).sort(), instructions: s.instructions ?? "" };
        case "exclusiveLock":
            return type === CHECK_TYPE_IDS.exclusiveLock ? {} : undefined;
    }
}

function desired(kind: Kind, i: CheckInputs): Omit<CheckOutputs, "checkId"> {
    return compact({
        organization: i.organization,
        project: i.project,
        resourceType: i.resourceType,
        resourceId: String(i.resourceId ?? ""),
        resourceName: i.resourceName,
        timeoutMinutes: i.timeoutMinutes ?? (kind === "branchControl" ? 1440 : MAX_TIMEOUT_MINUTES),
        apiUrl: i.apiUrl,
        settings: desiredSettings(kind, i),
    });
}

function what(kind: Kind, i: { resourceType?: string; resourceName?: string; organization?: string; project?: string }): string {
    return `${LABEL[kind]} on ${i.resourceType} ${i.resourceName} in ${i.organization}/${i.project}`;
}

function base(i: { project: string }): string {
    return `${encodeURIComponent(i.project)}/_apis/pipelines/checks/configurations`;
}

function body(kind: Kind, d: Omit<CheckOutputs, "checkId">, id?: number) {
    const w = wire(kind, d.settings as Record<string, any>);
    return compact({ id, ...w, resource: { type: d.resourceType, id: d.resourceId, name: d.resourceName }, timeout: d.timeoutMinutes });
}

/** A service connection's id by its name (Endpoints - Get Service Endpoints By Names, REST 7.1). */
async function endpointId(ado: AzureDevops, kind: Kind, i: CheckInputs): Promise<string> {
    const res = await ado.call<{ value?: { id: string; name: string }[] }>({
        method: "GET",
        path: `${encodeURIComponent(i.project)}/_apis/serviceendpoint/endpoints`,
        apiVersion: API.serviceEndpoints,
        query: { endpointNames: i.resourceName },
        resource: what(kind, i),
    });
    const hits = (res.body?.value ?? []).filter((e) => e.name.toLowerCase() === i.resourceName.toLowerCase());
    if (hits.length !== 1)
        throw new Error(`Azure DevOps ${what(kind, i)}: ${hits.length === 0 ? "no" : "more than one"} service connection named ${i.resourceName} in the project (or the token cannot see it).`);
    return hits[0].id;
}

async function listOn(ado: AzureDevops, kind: Kind, i: CheckInputs): Promise<RemoteCheck[]> {
    return ado.list<RemoteCheck>({
        method: "GET",
        path: base(i),
        apiVersion: API.checks,
        query: { resourceType: i.resourceType, resourceId: String(i.resourceId), $expand: "settings" },
        resource: what(kind, i),
    });
}

function makeProvider(kind: Kind): pulumi.dynamic.ResourceProvider {
    return {
        configure: configureFromStack,

        async check(_olds: any, news: any) {
            const c = new Checker(LABEL[kind], { ...news, name: news.resourceName });
            c.organizationAndProject();
            if (!isUnknown(news.resourceType) && !RESOURCE_TYPES.includes(news.resourceType))
                c.fail("resourceType", `one of ${RESOURCE_TYPES.join(", ")} (got ${describe(news.resourceType)})`);
            const rid = news.resourceId;
            const byName = rid === undefined && news.resourceType === "endpoint";
            if (!byName && !isUnknown(rid) && !((typeof rid === "string" && /^[A-Za-z0-9._-]+$/.test(rid)) || (typeof rid === "number" && Number.isInteger(rid) && rid > 0)))
                c.fail("resourceId", `the resource's id, a positive integer or a GUID (got ${describe(rid)})`);
            c.name("resourceName", "the guarded resource's name");
            c.integer("timeoutMinutes", 1, MAX_TIMEOUT_MINUTES);
            if (kind === "branchControl") {
                const b = news.allowedBranches;
                if (!isUnknown(b)) {
                    if (!Array.isArray(b) || b.length === 0) c.fail("allowedBranches", `a non-empty list of branches such as ["main"] (got ${describe(b)})`);
                    else
                        b.forEach((x: unknown, n: number) => {
                            // A wildcard or a comma would widen or split the list the check evaluates.
                            if (!isUnknown(x) && !(typeof x === "string" && /^[A-Za-z0-9._/-]+$/.test(x) && !x.includes("..")))
                                c.fail(`allowedBranches[${n}]`, `a branch name without wildcards or commas (got ${describe(x)})`);
                        });
                }
                c.optionalString("displayName", 256);
            }
            if (kind === "approval") {
                const a = news.approverIds;
                if (!isUnknown(a)) {
                    if (!Array.isArray(a) || a.length === 0) c.fail("approverIds", `a non-empty array of identity ids (GUIDs) (got ${describe(a)})`);
                    else a.forEach((x: unknown, n: number) => !isUnknown(x) && !(typeof x === "string" && GUID.test(x)) && c.fail(`approverIds[${n}]`, `an identity id (GUID) (got ${describe(x)})`));
                }
                c.optionalString("instructions", 4000);
            }
            return c.result(news);
        },

        async diff(_id: string, olds: CheckOutputs, news: CheckInputs) {
            const replaces = changedKeys({ ...olds, apiUrl: apiUrlOf(olds) }, { ...news, apiUrl: apiUrlOf(news) }, ["organization", "project", "apiUrl", "resourceType"]);
            // A check belongs to one resource: another resource is another check. A service connection
            // looked up by name is the same one while the name is.
            const byName = news.resourceId === undefined && news.resourceType === "endpoint";
            if (byName ? news.resourceName !== olds.resourceName : isUnknown(news.resourceId) || String(news.resourceId) !== olds.resourceId)
                replaces.push(byName ? "resourceName" : "resourceId");
            if (byName) news = { ...news, resourceId: olds.resourceId };
            const unknownSettings = [news.allowedBranches, news.approverIds].some((v) => isUnknown(v) || (Array.isArray(v) && v.some(isUnknown)));
            const want = desired(kind, { ...news, allowedBranches: unknownSettings ? [] : news.allowedBranches, approverIds: unknownSettings ? [] : news.approverIds });
            const changes = changedKeys(olds, want, ["resourceName", "timeoutMinutes", "settings"]);
            if (unknownSettings) changes.push("settings");
            return { changes: replaces.length + changes.length > 0, replaces };
        },

        async create(given: CheckInputs) {
            const ado = new AzureDevops(given, what(kind, given));
            const inputs = given.resourceId === undefined && given.resourceType === "endpoint" ? { ...given, resourceId: await endpointId(ado, kind, given) } : given;
            const d = desired(kind, inputs);
            // Checks already there are someone else's (or a policy's): leave them, add ours.
            const before = new Set((await listOn(ado, kind, inputs)).map((c) => c.id));
            const mine = (c: RemoteCheck) => !before.has(c.id) && JSON.stringify(remoteSettings(kind, c)) === JSON.stringify(d.settings);
            const check = await createWithoutDuplicates<RemoteCheck>(
                inputs,
                what(kind, inputs),
                { method: "POST", path: base(inputs), apiVersion: API.checks, json: body(kind, d), resource: what(kind, inputs) },
                async () => (await listOn(ado, kind, inputs)).find(mine),
            );
            return { id: String(check.id), outs: { ...d, checkId: check.id } };
        },

        async read(id: string, props: CheckOutputs) {
            const ado = new AzureDevops(props, what(kind, props));
            const res = await ado.call<RemoteCheck>({
                method: "GET",
                path: `${base(props)}/${id}`,
                apiVersion: API.checks,
                query: { $expand: "settings" },
                resource: what(kind, props),
                accept: [404],
            });
            if (res.status === 404 || !res.body?.id) return {};
            const r = res.body;
            const settings = remoteSettings(kind, r);
            // Replaced by another kind of check under the same id cannot happen; treat it as gone.
            if (!settings) return {};
            return {
                id,
                props: compact({
                    ...props,
                    resourceType: (r.resource?.type ?? props.resourceType) as CheckedResourceType,
                    resourceId: String(r.resource?.id ?? props.resourceId),
                    resourceName: r.resource?.name ?? props.resourceName,
                    timeoutMinutes: r.timeout ?? props.timeoutMinutes,
                    settings,
                    checkId: r.id,
                }),
            };
        },

        async update(id: string, olds: CheckOutputs, given: CheckInputs) {
            const ado = new AzureDevops(given, what(kind, given));
            const news = given.resourceId === undefined ? { ...given, resourceId: olds.resourceId } : given;
            const d = desired(kind, news);
            const res = await ado.call<RemoteCheck>({
                method: "PATCH",
                path: `${base(news)}/${id}`,
                apiVersion: API.checks,
                json: body(kind, d, Number(id)),
                resource: what(kind, news),
                accept: [404],
            });
            if (res.status === 404) throw deletedOutsidePulumi(what(kind, news), "check", id);
            return { outs: { ...d, checkId: res.body.id } };
        },

        async delete(id: string, props: CheckOutputs) {
            const ado = new AzureDevops(props, what(kind, props));
            await ado.call({ method: "DELETE", path: `${base(props)}/${id}`, apiVersion: API.checks, resource: what(kind, props), accept: [404] });
        },
    };
}

/** The dynamic provider of BranchControlCheck (exported for the serialisation test). */
export const branchControlCheckProvider = makeProvider("branchControl");
/** The dynamic provider of ExclusiveLockCheck. */
export const exclusiveLockCheckProvider = makeProvider("exclusiveLock");
/** The dynamic provider of ResourceApprovalCheck. */
export const resourceApprovalCheckProvider = makeProvider("approval");

const OUTPUTS = { checkId: undefined, settings: undefined };

/** Only runs of the listed branches (e.g. main) may use the resource; pull-request runs fail the check. */
export class BranchControlCheck extends pulumi.dynamic.Resource {
    /** The check configuration id. */
    declare public readonly checkId: pulumi.Output<number>;

    constructor(name: string, args: BranchControlCheckArgs, opts?: pulumi.CustomResourceOptions) {
        super(branchControlCheckProvider, name, { ...args, ...OUTPUTS }, opts, MODULE, "BranchControlCheck");
    }
}

/** One run at a time may use the resource (what `lockBehavior: sequential` needs to take effect). */
export class ExclusiveLockCheck extends pulumi.dynamic.Resource {
    /** The check configuration id. */
    declare public readonly checkId: pulumi.Output<number>;

    constructor(name: string, args: ExclusiveLockCheckArgs, opts?: pulumi.CustomResourceOptions) {
        super(exclusiveLockCheckProvider, name, { ...args, ...OUTPUTS }, opts, MODULE, "ExclusiveLockCheck");
    }
}

/** A manual approval before a run may use the resource (a variable group, a secure file, an environment). */
export class ResourceApprovalCheck extends pulumi.dynamic.Resource {
    /** The check configuration id. */
    declare public readonly checkId: pulumi.Output<number>;

    constructor(name: string, args: ResourceApprovalCheckArgs, opts?: pulumi.CustomResourceOptions) {
        super(resourceApprovalCheckProvider, name, { ...args, ...OUTPUTS }, opts, MODULE, "ResourceApprovalCheck");
    }
}
