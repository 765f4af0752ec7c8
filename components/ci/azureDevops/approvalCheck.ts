/**
 * A manual-approval check on an environment, REST 7.1-preview.1 pipelines/checks/configurations
 * with the Approval check type 8C6F20A7-A545-4486-9777-F762FAFE0D4D.
 *
 * The API does not deduplicate check configurations. An Approval check already on the environment
 * is someone else's and is left as it is (checks combine: ours only adds a gate); after a dropped
 * connection create takes only a matching check that was not there before its POST.
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
    describe,
    isUnknown,
    deletedOutsidePulumi,
    AzureDevopsProjectArgs,
    ProjectTarget,
} from "./common";

/** The Approval check type id. */
export const APPROVAL_CHECK_TYPE_ID = "8C6F20A7-A545-4486-9777-F762FAFE0D4D";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Azure's maximum (30 days) and its default.
const MAX_TIMEOUT_MINUTES = 43200;

/** Arguments of an ApprovalCheck. */
export interface ApprovalCheckArgs extends AzureDevopsProjectArgs {
    /** Id of the environment to guard. */
    environmentId: pulumi.Input<number>;
    /** Name of the environment (the API records it with the resource). */
    environmentName: pulumi.Input<string>;
    /** Identity ids (GUIDs) of the approvers: users or groups. */
    approverIds: pulumi.Input<pulumi.Input<string>[]>;
    /** How many approvers must approve; 0 (default) means all of them. */
    minRequiredApprovers?: pulumi.Input<number>;
    /** Instructions shown to approvers. */
    instructions?: pulumi.Input<string>;
    /** Minutes before a pending approval fails, 1 to 43200 (default 43200, 30 days). */
    timeoutMinutes?: pulumi.Input<number>;
    /** Let the person who queued the run approve it (default false). */
    requesterCanApprove?: pulumi.Input<boolean>;
}

interface CheckInputs extends ProjectTarget {
    environmentId: number | string;
    environmentName: string;
    approverIds: string[];
    minRequiredApprovers?: number;
    instructions?: string;
    timeoutMinutes?: number;
    requesterCanApprove?: boolean;
}

interface CheckOutputs extends ProjectTarget {
    environmentId: number;
    environmentName: string;
    approverIds: string[];
    minRequiredApprovers: number;
    instructions: string;
    timeoutMinutes: number;
    requesterCanApprove: boolean;
    checkId: number;
}

interface RemoteCheck {
    id: number;
    type?: { id?: string; name?: string };
    resource?: { type?: string; id?: string; name?: string };
    timeout?: number;
    settings?: {
        approvers?: { id: string }[];
        minRequiredApprovers?: number;
        instructions?: string;
        requesterCannotBeApprover?: boolean;
    };
}

function what(i: { environmentName?: string; organization?: string; project?: string }): string {
    return `approval check on environment ${i.environmentName} in ${i.organization}/${i.project}`;
}

function base(i: { project: string }): string {
    return `${encodeURIComponent(i.project)}/_apis/pipelines/checks/configurations`;
}

function desired(i: CheckInputs): Omit<CheckOutputs, "checkId"> {
    return compact({
        organization: i.organization,
        project: i.project,
        environmentId: Number(i.environmentId),
        environmentName: i.environmentName,
        // Order of approvers has no meaning; sorting keeps diffs quiet.
        approverIds: [...i.approverIds].map((a) => a.toLowerCase()).sort(),
        minRequiredApprovers: i.minRequiredApprovers ?? 0,
        instructions: i.instructions ?? "",
        timeoutMinutes: i.timeoutMinutes ?? MAX_TIMEOUT_MINUTES,
        requesterCanApprove: i.requesterCanApprove ?? false,
        apiUrl: i.apiUrl,
    });
}

function body(i: CheckInputs, id?: number) {
    const d = desired(i);
    return compact({
        id,
        type: { id: APPROVAL_CHECK_TYPE_ID, name: "Approval" },
        settings: {
            approvers: d.approverIds.map((a) => ({ id: a })),
            minRequiredApprovers: d.minRequiredApprovers,
            instructions: d.instructions,
            requesterCannotBeApprover: !d.requesterCanApprove,
            executionOrder: 1,
            blockedApprovers: [],
        },
        resource: { type: "environment", id: String(d.environmentId), name: d.environmentName },
        timeout: d.timeoutMinutes,
    });
}

function isApproval(c: RemoteCheck): boolean {
    return (c.type?.id ?? "").toUpperCase() === APPROVAL_CHECK_TYPE_ID;
}

async function approvalsOnEnvironment(ado: AzureDevops, i: CheckInputs): Promise<RemoteCheck[]> {
    const all = await ado.list<RemoteCheck>({
        method: "GET",
        path: base(i),
        apiVersion: API.checks,
        query: { resourceType: "environment", resourceId: String(i.environmentId), $expand: "settings" },
        resource: what(i),
    });
    return all.filter(isApproval);
}

function approverKey(ids: string[]): string {
    return [...ids].map((a) => a.toLowerCase()).sort().join(",");
}

async function patch(ado: AzureDevops, i: CheckInputs, id: number): Promise<RemoteCheck> {
    const res = await ado.call<RemoteCheck>({
        method: "PATCH",
        path: `${base(i)}/${id}`,
        apiVersion: API.checks,
        json: body(i, id),
        resource: what(i),
        accept: [404],
    });
    if (res.status === 404) {
        throw deletedOutsidePulumi(what(i), "check", id);
    }
    return res.body;
}

/** The dynamic provider of ApprovalCheck (exported for the serialisation test). */
export const approvalCheckProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureFromStack,

    async check(_olds: any, news: any) {
        const c = new Checker("approval check", { ...news, name: news.environmentName });
        c.organizationAndProject();
        c.integer("environmentId", 1, 2 ** 31 - 1, true);
        c.name("environmentName", "the environment's name");
        const approvers = news.approverIds;
        if (!isUnknown(approvers)) {
            if (!Array.isArray(approvers) || approvers.length === 0)
                c.fail("approverIds", `a non-empty array of identity ids (GUIDs) (got ${describe(approvers)})`);
            else
                approvers.forEach(
                    (a: unknown, n: number) =>
                        !isUnknown(a) &&
                        !(typeof a === "string" && GUID.test(a)) &&
                        c.fail(`approverIds[${n}]`, `an identity id (GUID) (got ${describe(a)})`),
                );
        }
        const count = Array.isArray(approvers) ? approvers.length : 2 ** 31 - 1;
        c.integer("minRequiredApprovers", 0, count);
        c.integer("timeoutMinutes", 1, MAX_TIMEOUT_MINUTES);
        c.optionalString("instructions", 4000);
        if (news.requesterCanApprove !== undefined && !isUnknown(news.requesterCanApprove) && typeof news.requesterCanApprove !== "boolean")
            c.fail("requesterCanApprove", "true or false");
        return c.result(news);
    },

    async diff(_id: string, olds: CheckOutputs, news: CheckInputs) {
        const replaces = changedKeys({ ...olds, apiUrl: apiUrlOf(olds) }, { ...news, apiUrl: apiUrlOf(news) }, ["organization", "project", "apiUrl"]);
        if (isUnknown(news.environmentId) || Number(news.environmentId) !== olds.environmentId) replaces.push("environmentId");
        const want = isUnknown(news.approverIds) ? { ...desired({ ...news, approverIds: [] }), approverIds: null } : desired(news);
        const changes = changedKeys(olds, want, [
            "environmentName",
            "approverIds",
            "minRequiredApprovers",
            "instructions",
            "timeoutMinutes",
            "requesterCanApprove",
        ]);
        return { changes: replaces.length + changes.length > 0, replaces, stables: ["checkId"] };
    },

    async create(inputs: CheckInputs) {
        const ado = new AzureDevops(inputs, what(inputs));
        const before = new Set((await approvalsOnEnvironment(ado, inputs)).map((c) => c.id));
        const want = approverKey(desired(inputs).approverIds);
        // A matching check that appeared after our POST is the one it made (a dropped connection).
        const mine = (c: RemoteCheck) => !before.has(c.id) && approverKey((c.settings?.approvers ?? []).map((a) => a.id)) === want;
        const check = await createWithoutDuplicates<RemoteCheck>(
            inputs,
            what(inputs),
            { method: "POST", path: base(inputs), apiVersion: API.checks, json: body(inputs), resource: what(inputs) },
            async () => (await approvalsOnEnvironment(ado, inputs)).find(mine),
        );
        return { id: String(check.id), outs: { ...desired(inputs), checkId: check.id } };
    },

    async read(id: string, props: CheckOutputs) {
        const ado = new AzureDevops(props, what(props));
        const res = await ado.call<RemoteCheck>({
            method: "GET",
            path: `${base(props)}/${id}`,
            apiVersion: API.checks,
            query: { $expand: "settings" },
            resource: what(props),
            accept: [404],
        });
        if (res.status === 404 || !res.body?.id) return {};
        const r = res.body;
        const s = r.settings ?? {};
        return {
            id,
            props: compact({
                ...props,
                environmentId: Number(r.resource?.id ?? props.environmentId),
                environmentName: r.resource?.name ?? props.environmentName,
                approverIds: (s.approvers ?? []).map((a) => a.id.toLowerCase()).sort(),
                minRequiredApprovers: s.minRequiredApprovers ?? 0,
                instructions: s.instructions ?? "",
                timeoutMinutes: r.timeout ?? props.timeoutMinutes,
                requesterCanApprove: s.requesterCannotBeApprover === undefined ? true : !s.requesterCannotBeApprover,
                checkId: r.id,
            }),
        };
    },

    async update(id: string, _olds: CheckOutputs, news: CheckInputs) {
        const ado = new AzureDevops(news, what(news));
        const check = await patch(ado, news, Number(id));
        return { outs: { ...desired(news), checkId: check.id } };
    },

    async delete(id: string, props: CheckOutputs) {
        const ado = new AzureDevops(props, what(props));
        await ado.call({ method: "DELETE", path: `${base(props)}/${id}`, apiVersion: API.checks, resource: what(props), accept: [404] });
    },
};

/** A manual approval required before any stage deploys to an environment (e.g. prod). */
export class ApprovalCheck extends pulumi.dynamic.Resource {
    /** The check configuration id (the resource id as a number). */
    declare public readonly checkId: pulumi.Output<number>;
    /** Approver identity ids, lower-case and sorted. */
    declare public readonly approverIds: pulumi.Output<string[]>;

    constructor(name: string, args: ApprovalCheckArgs, opts?: pulumi.CustomResourceOptions) {
        super(approvalCheckProvider, name, { ...args, checkId: undefined }, opts, MODULE, "ApprovalCheck");
    }
}
