/**
 * A build-validation branch policy, REST 7.1 policy/configurations with the Build policy type
 * 0609b952-1397-4640-95ec-e00a01b2c241: pull requests into the branch queue the pipeline and (when
 * blocking) cannot complete until it succeeds. Azure Repos ignores a YAML `pr:` trigger; this policy
 * is what makes PR builds (slim CI) run at all.
 *
 * Policies already on the branch are left alone (someone else's); create adds ours and, after a
 * dropped POST, takes only a matching policy that was not there before.
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
    stableJson,
    AzureDevopsProjectArgs,
    ProjectTarget,
} from "./common";

/** The Build (build validation) policy type id. */
export const BUILD_POLICY_TYPE_ID = "0609b952-1397-4640-95ec-e00a01b2c241";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Arguments of a BuildValidationPolicy. */
export interface BuildValidationPolicyArgs extends AzureDevopsProjectArgs {
    /** Azure Repos repository GUID. */
    repositoryId: pulumi.Input<string>;
    /** Target branch of the pull requests, e.g. "main" or "refs/heads/main". */
    branch: pulumi.Input<string>;
    /** The pipeline (build definition id) to run. */
    buildDefinitionId: pulumi.Input<number>;
    /** Name shown on the pull request. */
    displayName: pulumi.Input<string>;
    /** A failed or missing build blocks completion (default true). */
    blocking?: pulumi.Input<boolean>;
    /** Minutes a successful build stays valid after the target branch moves; 0 = never expires (default 720). */
    validDurationMinutes?: pulumi.Input<number>;
}

interface PolicyInputs extends ProjectTarget {
    repositoryId: string;
    branch: string;
    buildDefinitionId: number;
    displayName: string;
    blocking?: boolean;
    validDurationMinutes?: number;
}

interface PolicyOutputs extends ProjectTarget {
    repositoryId: string;
    branch: string;
    buildDefinitionId: number;
    displayName: string;
    blocking: boolean;
    validDurationMinutes: number;
    policyId: number;
}

interface RemotePolicy {
    id: number;
    isEnabled?: boolean;
    isBlocking?: boolean;
    isDeleted?: boolean;
    type?: { id?: string };
    settings?: {
        buildDefinitionId?: number;
        displayName?: string;
        validDuration?: number;
        queueOnSourceUpdateOnly?: boolean;
        manualQueueOnly?: boolean;
        scope?: { repositoryId?: string; refName?: string; matchKind?: string }[];
    };
}

function ref(b: string): string {
    return b.startsWith("refs/") ? b : `refs/heads/${b}`;
}

function what(i: { branch?: string; organization?: string; project?: string; repositoryId?: string }): string {
    return `build validation policy on ${i.branch} of repository ${i.repositoryId} in ${i.organization}/${i.project}`;
}

function base(i: { project: string }): string {
    return `${encodeURIComponent(i.project)}/_apis/policy/configurations`;
}

function desired(i: PolicyInputs): Omit<PolicyOutputs, "policyId"> {
    return compact({
        organization: i.organization,
        project: i.project,
        repositoryId: String(i.repositoryId).toLowerCase(),
        branch: ref(i.branch),
        buildDefinitionId: Number(i.buildDefinitionId),
        displayName: i.displayName,
        blocking: i.blocking ?? true,
        validDurationMinutes: i.validDurationMinutes ?? 720,
        apiUrl: i.apiUrl,
    });
}

function body(d: Omit<PolicyOutputs, "policyId">, id?: number) {
    return compact({
        id,
        isEnabled: true,
        isBlocking: d.blocking,
        type: { id: BUILD_POLICY_TYPE_ID },
        settings: {
            buildDefinitionId: d.buildDefinitionId,
            displayName: d.displayName,
            manualQueueOnly: false,
            queueOnSourceUpdateOnly: true,
            validDuration: d.validDurationMinutes,
            scope: [{ repositoryId: d.repositoryId, refName: d.branch, matchKind: "Exact" }],
        },
    });
}

/** The compared fields of a remote Build policy, or undefined for another kind of policy. */
function fromRemote(p: RemotePolicy): Omit<PolicyOutputs, "organization" | "project" | "apiUrl" | "policyId"> | undefined {
    if ((p.type?.id ?? "").toLowerCase() !== BUILD_POLICY_TYPE_ID || p.isDeleted) return undefined;
    const s = p.settings ?? {};
    const scope = s.scope?.[0] ?? {};
    return {
        repositoryId: String(scope.repositoryId ?? "").toLowerCase(),
        branch: scope.refName ?? "",
        buildDefinitionId: Number(s.buildDefinitionId),
        displayName: s.displayName ?? "",
        // A disabled policy runs nothing: it does not count as blocking.
        blocking: p.isEnabled !== false && !!p.isBlocking,
        validDurationMinutes: Number(s.validDuration ?? 0),
    };
}

/** Build policies on the branch (Configurations - List filters by type only; the scope is matched here). */
async function listOnBranch(ado: AzureDevops, i: PolicyInputs): Promise<RemotePolicy[]> {
    const d = desired(i);
    const all = await ado.list<RemotePolicy>({
        method: "GET",
        path: base(i),
        apiVersion: API.policies,
        query: { policyType: BUILD_POLICY_TYPE_ID },
        resource: what(i),
    });
    return all.filter((p) => (p.settings?.scope ?? []).some((s) => String(s.repositoryId ?? "").toLowerCase() === d.repositoryId && s.refName === d.branch));
}

const COMPARED = ["repositoryId", "branch", "buildDefinitionId", "displayName", "blocking", "validDurationMinutes"] as const;

/** The dynamic provider of BuildValidationPolicy (exported for the serialisation test). */
export const buildValidationPolicyProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureFromStack,

    async check(_olds: any, news: any) {
        const c = new Checker("build validation policy", { ...news, name: news.displayName });
        c.organizationAndProject();
        if (!isUnknown(news.repositoryId) && !(typeof news.repositoryId === "string" && GUID.test(news.repositoryId)))
            c.fail("repositoryId", `the Azure Repos repository GUID (got ${describe(news.repositoryId)})`);
        c.name("branch", "a branch name without wildcards, e.g. main", /^[A-Za-z0-9._/-]+$/);
        c.integer("buildDefinitionId", 1, 2 ** 31 - 1, true);
        c.name("displayName", "a non-empty display name");
        c.integer("validDurationMinutes", 0, 525600);
        if (news.blocking !== undefined && !isUnknown(news.blocking) && typeof news.blocking !== "boolean") c.fail("blocking", "true or false");
        return c.result(news);
    },

    async diff(_id: string, olds: PolicyOutputs, news: PolicyInputs) {
        const replaces = changedKeys({ ...olds, apiUrl: apiUrlOf(olds) }, { ...news, apiUrl: apiUrlOf(news) }, ["organization", "project", "apiUrl"]);
        const unknown = [news.repositoryId, news.branch, news.buildDefinitionId].some(isUnknown);
        const changes = unknown ? ["settings"] : changedKeys(olds, desired(news), [...COMPARED]);
        return { changes: replaces.length + changes.length > 0, replaces };
    },

    async create(inputs: PolicyInputs) {
        const ado = new AzureDevops(inputs, what(inputs));
        const d = desired(inputs);
        const before = new Set((await listOnBranch(ado, inputs)).map((p) => p.id));
        const mine = (p: RemotePolicy) => {
            const r = fromRemote(p);
            return !before.has(p.id) && !!r && COMPARED.every((k) => stableJson(r[k]) === stableJson(d[k]));
        };
        const policy = await createWithoutDuplicates<RemotePolicy>(
            inputs,
            what(inputs),
            { method: "POST", path: base(inputs), apiVersion: API.policies, json: body(d), resource: what(inputs) },
            async () => (await listOnBranch(ado, inputs)).find(mine),
        );
        return { id: String(policy.id), outs: { ...d, policyId: policy.id } };
    },

    async read(id: string, props: PolicyOutputs) {
        const ado = new AzureDevops(props, what(props));
        const res = await ado.call<RemotePolicy>({
            method: "GET",
            path: `${base(props)}/${id}`,
            apiVersion: API.policies,
            resource: what(props),
            accept: [404],
        });
        const r = res.status === 404 || !res.body?.id ? undefined : fromRemote(res.body);
        if (!r) return {};
        return { id, props: { ...props, ...r, policyId: res.body.id } };
    },

    async update(id: string, _olds: PolicyOutputs, news: PolicyInputs) {
        const ado = new AzureDevops(news, what(news));
        const d = desired(news);
        const res = await ado.call<RemotePolicy>({
            method: "PUT",
            path: `${base(news)}/${id}`,
            apiVersion: API.policies,
            json: body(d, Number(id)),
            resource: what(news),
            accept: [404],
        });
        if (res.status === 404) throw deletedOutsidePulumi(what(news), "policy", id);
        return { outs: { ...d, policyId: res.body.id } };
    },

    async delete(id: string, props: PolicyOutputs) {
        const ado = new AzureDevops(props, what(props));
        await ado.call({ method: "DELETE", path: `${base(props)}/${id}`, apiVersion: API.policies, resource: what(props), accept: [404] });
    },
};

/** Pull requests into the branch run the pipeline (slim CI), and cannot complete until it passes. */
export class BuildValidationPolicy extends pulumi.dynamic.Resource {
    /** The policy configuration id. */
    declare public readonly policyId: pulumi.Output<number>;

    constructor(name: string, args: BuildValidationPolicyArgs, opts?: pulumi.CustomResourceOptions) {
        super(buildValidationPolicyProvider, name, { ...args, policyId: undefined }, opts, MODULE, "BuildValidationPolicy");
    }
}
