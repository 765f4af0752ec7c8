/**
 * Authorises a pipeline (or every pipeline in the project) to use a protected resource: a variable
 * group, secure file, environment, agent queue or service connection. REST 7.1-preview.1
 * pipelines/pipelinepermissions/{resourceType}/{resourceId}: PATCH to grant, GET to read, and
 * PATCH with authorized: false to revoke on delete.
 */
import * as pulumi from "@pulumi/pulumi";
import { API, AzureDevops, Checker, MODULE, apiUrlOf, changedKeys, compact, configureFromStack, describe, isUnknown, AzureDevopsProjectArgs, ProjectTarget } from "./common";

/** Protected resource types the permission API knows. */
export type PipelineResourceType = "variablegroup" | "securefile" | "environment" | "queue" | "endpoint";

const RESOURCE_TYPES: PipelineResourceType[] = ["variablegroup", "securefile", "environment", "queue", "endpoint"];

/** Arguments of a PipelinePermission. */
export interface PipelinePermissionArgs extends AzureDevopsProjectArgs {
    /** Kind of protected resource. */
    resourceType: pulumi.Input<PipelineResourceType>;
    /** The resource's id (variable group id, secure file GUID, environment id, queue id, service connection GUID). */
    resourceId: pulumi.Input<string | number>;
    /** The pipeline (definition id) to authorise; omit to authorise all pipelines of the project. */
    pipelineId?: pulumi.Input<number>;
}

interface PermissionInputs extends ProjectTarget {
    resourceType: PipelineResourceType;
    resourceId: string | number;
    pipelineId?: number;
}

interface PermissionOutputs extends ProjectTarget {
    resourceType: PipelineResourceType;
    resourceId: string;
    pipelineId?: number;
    authorized: boolean;
}

interface RemotePermissions {
    resource?: { type?: string; id?: string };
    allPipelines?: { authorized?: boolean } | null;
    pipelines?: { id: number; authorized?: boolean }[];
}

function what(i: { resourceType?: string; resourceId?: unknown; pipelineId?: number; organization?: string; project?: string }): string {
    const who = i.pipelineId !== undefined ? `pipeline ${i.pipelineId}` : "all pipelines";
    return `permission for ${who} on ${i.resourceType} ${i.resourceId} in ${i.organization}/${i.project}`;
}

function path(i: { project: string; resourceType: string; resourceId: string | number }): string {
    return `${encodeURIComponent(i.project)}/_apis/pipelines/pipelinepermissions/${i.resourceType}/${encodeURIComponent(String(i.resourceId))}`;
}

function grant(i: PermissionInputs, authorized: boolean) {
    return i.pipelineId !== undefined ? { pipelines: [{ id: Number(i.pipelineId), authorized }] } : { allPipelines: { authorized } };
}

function idOf(i: PermissionInputs): string {
    return `${i.resourceType}/${i.resourceId}/${i.pipelineId ?? "all"}`;
}

function isGranted(i: { pipelineId?: number }, p: RemotePermissions): boolean {
    return i.pipelineId !== undefined
        ? (p.pipelines ?? []).some((x) => Number(x.id) === Number(i.pipelineId) && x.authorized !== false)
        : !!p.allPipelines?.authorized;
}

async function apply(i: PermissionInputs): Promise<PermissionOutputs> {
    const ado = new AzureDevops(i, what(i));
    const res = await ado.call<RemotePermissions>({
        method: "PATCH",
        path: path(i),
        apiVersion: API.pipelinePermissions,
        json: grant(i, true),
        resource: what(i),
    });
    if (!isGranted(i, res.body ?? {}))
        throw new Error(
            `Azure DevOps ${what(i)}: the API accepted the grant but does not report it; check the token's Pipeline Resources (use and manage) scope.`,
        );
    return compact({
        organization: i.organization,
        project: i.project,
        resourceType: i.resourceType,
        resourceId: String(i.resourceId),
        pipelineId: i.pipelineId === undefined ? undefined : Number(i.pipelineId),
        apiUrl: i.apiUrl,
        authorized: true,
    });
}

/** The dynamic provider of PipelinePermission (exported for the serialisation test). */
export const pipelinePermissionProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureFromStack,

    async check(_olds: any, news: any) {
        const c = new Checker("pipeline permission", news);
        c.organizationAndProject();
        if (!isUnknown(news.resourceType) && !RESOURCE_TYPES.includes(news.resourceType))
            c.fail("resourceType", `one of ${RESOURCE_TYPES.join(", ")} (got ${describe(news.resourceType)})`);
        const rid = news.resourceId;
        if (
            !isUnknown(rid) &&
            !((typeof rid === "string" && /^[A-Za-z0-9._-]+$/.test(rid)) || (typeof rid === "number" && Number.isInteger(rid) && rid > 0))
        ) {
            c.fail("resourceId", `the resource's id, a positive integer or a GUID (got ${describe(rid)})`);
        }
        c.integer("pipelineId", 1, 2 ** 31 - 1);
        return c.result(news);
    },

    async diff(_id: string, olds: PermissionOutputs, news: PermissionInputs) {
        // The grant is identified by all of these: any change is a different grant.
        const want = { ...news, resourceId: isUnknown(news.resourceId) ? news.resourceId : String(news.resourceId), apiUrl: apiUrlOf(news) };
        const replaces = changedKeys({ ...olds, apiUrl: apiUrlOf(olds) }, want, [
            "organization",
            "project",
            "resourceType",
            "resourceId",
            "pipelineId",
            "apiUrl",
        ]);
        // Revoke the old grant first: a replacement naming the same grant must not be revoked afterwards.
        return { changes: replaces.length > 0 || olds.authorized !== true, replaces, deleteBeforeReplace: true };
    },

    async create(inputs: PermissionInputs) {
        // Granting is idempotent: an existing grant is simply confirmed.
        return { id: idOf(inputs), outs: await apply(inputs) };
    },

    async read(id: string, props: PermissionOutputs) {
        const ado = new AzureDevops(props, what(props));
        const res = await ado.call<RemotePermissions>({
            method: "GET",
            path: path(props),
            apiVersion: API.pipelinePermissions,
            resource: what(props),
            accept: [404],
        });
        // Resource gone, or the grant revoked outside Pulumi: report it gone so `up` grants it again.
        if (res.status === 404 || !res.body || !isGranted(props, res.body)) return {};
        return { id, props: { ...props, authorized: true } };
    },

    async update(_id: string, _olds: PermissionOutputs, news: PermissionInputs) {
        return { outs: await apply(news) };
    },

    async delete(_id: string, props: PermissionOutputs) {
        const ado = new AzureDevops(props, what(props));
        // A resource already deleted takes its permissions with it.
        await ado.call({
            method: "PATCH",
            path: path(props),
            apiVersion: API.pipelinePermissions,
            json: grant(props, false),
            resource: what(props),
            accept: [404],
        });
    },
};

/** Authorises one pipeline, or all pipelines, to use a protected resource without a manual "Permit". */
export class PipelinePermission extends pulumi.dynamic.Resource {
    /** True once the grant is in place. */
    declare public readonly authorized: pulumi.Output<boolean>;

    constructor(name: string, args: PipelinePermissionArgs, opts?: pulumi.CustomResourceOptions) {
        super(pipelinePermissionProvider, name, { pipelineId: undefined, ...args, authorized: undefined }, opts, MODULE, "PipelinePermission");
    }
}
