/**
 * An Azure Pipelines variable group (Library → Variable groups), REST 7.1 distributedtask/variablegroups.
 *
 * Create and update are organisation-level calls carrying a project reference; get and list are
 * project-level; delete is organisation-level with `projectIds`. Secret variables are never
 * returned by the API (value null), so their change is detected by a salted hash kept in state.
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
    describe,
    isUnknown,
    newSalt,
    sameName,
    secretHash,
    typeKeyOf,
    deletedOutsidePulumi,
    createRejected,
    duplicateNotListed,
    foreignObject,
    provablyOurs,
    AzureDevopsProjectArgs,
    ProjectTarget,
} from "./common";

/** One variable of a group. */
export interface VariableGroupVariable {
    /** The value; pass a Pulumi secret for secret variables. */
    value: pulumi.Input<string>;
    /** Store as a secret variable (write-only in Azure DevOps, masked in logs). */
    isSecret?: boolean;
}

/** Arguments of a VariableGroup. */
export interface VariableGroupArgs extends AzureDevopsProjectArgs {
    /** Project id, when known, to skip the name lookup. */
    projectId?: pulumi.Input<string>;
    /** Group name, unique in the project (case-insensitive). */
    name: pulumi.Input<string>;
    /** Group description. */
    description?: pulumi.Input<string>;
    /** Variables by name; at least one (Azure DevOps refuses empty groups). */
    variables: Record<string, VariableGroupVariable>;
    /** Take over a group of the same name that does not carry our ownership marker (default false: fail). */
    adopt?: pulumi.Input<boolean>;
}

interface VariableInputs extends ProjectTarget {
    projectId?: string;
    name: string;
    description?: string;
    variables: Record<string, { value: string; isSecret?: boolean }>;
    adopt?: boolean;
}

/** Plain variables as kept in state: secret values are null. */
type StateVariables = Record<string, { value: string | null; isSecret: boolean }>;

interface VariableOutputs extends ProjectTarget {
    projectId: string;
    name: string;
    description: string;
    groupId: number;
    variables: StateVariables;
    /** Salt of the secret hashes. */
    salt: string;
    /** sha256(salt, name, value) per secret variable. */
    secretHashes: Record<string, string>;
}

interface RemoteGroup {
    id: number;
    name: string;
    description?: string;
    type?: string;
    variables?: Record<string, { value?: string | null; isSecret?: boolean }>;
    variableGroupProjectReferences?: { projectReference?: { id?: string; name?: string } }[];
}

// Variable names: letters, digits, '.', '_' and '-' (Azure refuses spaces and some prefixes).
const VARIABLE_NAME = /^[A-Za-z0-9_.-]+$/;
const RESERVED_PREFIXES = ["endpoint.", "input.", "secret.", "path.", "securefile."];

function what(i: { name?: string; organization?: string; project?: string }): string {
    return `variable group ${i.name} in ${i.organization}/${i.project}`;
}

function stateVariables(vars: VariableInputs["variables"]): StateVariables {
    const out: StateVariables = {};
    for (const [k, v] of Object.entries(vars)) out[k] = v.isSecret ? { value: null, isSecret: true } : { value: v.value, isSecret: false };
    return out;
}

function hashes(salt: string, vars: VariableInputs["variables"]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(vars)) if (v.isSecret) out[k] = secretHash(salt, k, v.value);
    return out;
}

function body(i: VariableInputs, projectId: string) {
    return {
        name: i.name,
        description: i.description ?? "",
        type: "Vsts",
        variables: Object.fromEntries(Object.entries(i.variables).map(([k, v]) => [k, { value: v.value, isSecret: !!v.isSecret }])),
        variableGroupProjectReferences: [{ name: i.name, description: i.description ?? "", projectReference: { id: projectId, name: i.project } }],
    };
}

function outputs(i: VariableInputs, projectId: string, groupId: number, salt: string): VariableOutputs {
    return compact({
        organization: i.organization,
        project: i.project,
        projectId,
        name: i.name,
        description: i.description ?? "",
        apiUrl: i.apiUrl,
        groupId,
        variables: stateVariables(i.variables),
        salt,
        secretHashes: hashes(salt, i.variables),
    });
}

async function put(ado: AzureDevops, i: VariableInputs, projectId: string, groupId: number): Promise<RemoteGroup> {
    const res = await ado.call<RemoteGroup>({
        method: "PUT",
        path: `_apis/distributedtask/variablegroups/${groupId}`,
        apiVersion: API.variableGroups,
        json: body(i, projectId),
        resource: what(i),
        accept: [404],
    });
    if (res.status === 404) {
        throw deletedOutsidePulumi(what(i), "group", groupId);
    }
    return res.body;
}

async function findByName(ado: AzureDevops, i: VariableInputs): Promise<RemoteGroup | undefined> {
    const [hit] = await ado.list<RemoteGroup>(
        {
            method: "GET",
            path: `${encodeURIComponent(i.project)}/_apis/distributedtask/variablegroups`,
            apiVersion: API.variableGroups,
            query: { groupName: i.name },
            resource: what(i),
        },
        (g) => sameName(g.name, i.name),
    );
    return hit;
}

/** The dynamic provider of VariableGroup (exported for the serialisation test). */
export const variableGroupProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureFromStack,

    async check(_olds: any, news: any) {
        const c = new Checker("variable group", news);
        c.organizationAndProject();
        c.name("name", "a non-empty group name without surrounding spaces");
        c.optionalString("description", 1024);
        if (news.projectId !== undefined && !isUnknown(news.projectId)) c.name("projectId", "the project's GUID");
        const vars = news.variables;
        if (isUnknown(vars)) return c.result(news);
        if (!vars || typeof vars !== "object" || Array.isArray(vars) || Object.keys(vars).length === 0) {
            c.fail("variables", `an object with at least one variable, e.g. { DBT_TARGET: { value: "ci" } } (got ${describe(vars)})`);
            return c.result(news);
        }
        for (const [k, v] of Object.entries<any>(vars)) {
            if (!VARIABLE_NAME.test(k) || RESERVED_PREFIXES.some((p) => k.toLowerCase().startsWith(p))) {
                c.fail(`variables.${k}`, `named with letters, digits, '.', '_' or '-' and not start with ${RESERVED_PREFIXES.join(", ")}`);
            }
            if (isUnknown(v)) continue;
            if (!v || typeof v !== "object") c.fail(`variables.${k}`, `an object { value, isSecret? } (got ${describe(v)})`);
            else {
                if (!isUnknown(v.value) && typeof v.value !== "string")
                    c.fail(`variables.${k}.value`, `a string (got ${describe(v.value)})`);
                if (v.isSecret !== undefined && typeof v.isSecret !== "boolean" && !isUnknown(v.isSecret))
                    c.fail(`variables.${k}.isSecret`, "true or false");
            }
        }
        return c.result(news);
    },

    async diff(_id: string, olds: VariableOutputs, news: VariableInputs) {
        const replaces = changedKeys({ ...olds, apiUrl: apiUrlOf(olds) }, { ...news, apiUrl: apiUrlOf(news) }, ["organization", "project", "apiUrl"]);
        if (news.projectId && olds.projectId !== news.projectId) replaces.push("projectId");
        const changes = changedKeys({ ...olds, description: olds.description ?? "" }, { ...news, description: news.description ?? "" }, [
            "name",
            "description",
        ]);
        if (variablesChanged(olds, news.variables)) changes.push("variables");
        return { changes: replaces.length + changes.length > 0, replaces, deleteBeforeReplace: true, stables: ["groupId"] };
    },

    async create(inputs: VariableInputs) {
        const ado = new AzureDevops(inputs, what(inputs));
        const projectId = inputs.projectId ?? (await ado.projectId(inputs.project, what(inputs)));
        // A group already there is taken over only when provably ours; one that appears during our
        // POST (a dropped connection, then the retry's 409) is the one that POST made.
        const before = await findByName(ado, inputs);
        if (before) {
            if (!provablyOurs(inputs.description, before.description, inputs.adopt)) throw foreignObject(what(inputs), inputs.description);
            const group = await put(ado, inputs, projectId, before.id);
            return { id: String(group.id), outs: outputs(inputs, projectId, group.id, newSalt()) };
        }
        const res = await ado.call<RemoteGroup>({
            method: "POST",
            path: "_apis/distributedtask/variablegroups",
            apiVersion: API.variableGroups,
            json: body(inputs, projectId),
            resource: what(inputs),
            accept: [400, 409],
        });
        let group = res.body;
        if (res.status === 409 || res.status === 400) {
            // None existed before the POST: this is the group our own retried POST made.
            if (typeKeyOf(res.body) !== "VariableGroupExistsException") {
                throw createRejected(what(inputs), res);
            }
            const existing = await findByName(ado, inputs);
            if (!existing) throw duplicateNotListed(what(inputs));
            group = await put(ado, inputs, projectId, existing.id);
        }
        const salt = newSalt();
        return { id: String(group.id), outs: outputs(inputs, projectId, group.id, salt) };
    },

    async read(id: string, props: VariableOutputs) {
        const ado = new AzureDevops(props, what(props));
        const res = await ado.call<RemoteGroup>({
            method: "GET",
            path: `${encodeURIComponent(props.projectId ?? props.project)}/_apis/distributedtask/variablegroups/${id}`,
            apiVersion: API.variableGroups,
            resource: what(props),
            accept: [404],
        });
        // Deleted outside Pulumi: an empty id tells the engine it is gone.
        if (res.status === 404 || !res.body || !res.body.id) return {};
        const remote = res.body;
        const variables: StateVariables = {};
        const secretHashes: Record<string, string> = {};
        for (const [k, v] of Object.entries(remote.variables ?? {})) {
            if (v.isSecret) {
                variables[k] = { value: null, isSecret: true };
                // The value cannot be read back; keep the hash we know, if the variable was already secret.
                if (props.secretHashes?.[k]) secretHashes[k] = props.secretHashes[k];
            } else variables[k] = { value: v.value ?? "", isSecret: false };
        }
        return {
            id,
            props: compact({ ...props, groupId: remote.id, name: remote.name, description: remote.description ?? "", variables, secretHashes }),
        };
    },

    async update(id: string, olds: VariableOutputs, news: VariableInputs) {
        const ado = new AzureDevops(news, what(news));
        const projectId = news.projectId ?? olds.projectId;
        const group = await put(ado, news, projectId, Number(id));
        return { outs: outputs(news, projectId, group.id, olds.salt || newSalt()) };
    },

    async delete(id: string, props: VariableOutputs) {
        const ado = new AzureDevops(props, what(props));
        await ado.call({
            method: "DELETE",
            path: `_apis/distributedtask/variablegroups/${id}`,
            apiVersion: API.variableGroups,
            query: { projectIds: props.projectId },
            resource: what(props),
            accept: [404],
        });
    },
};

function variablesChanged(olds: VariableOutputs, news: VariableInputs["variables"]): boolean {
    if (isUnknown(news)) return true;
    const oldVars = olds.variables ?? {};
    const keys = new Set([...Object.keys(oldVars), ...Object.keys(news ?? {})]);
    for (const k of keys) {
        const o = oldVars[k];
        const n = news?.[k];
        if (!o || !n) return true;
        if (isUnknown(n) || isUnknown(n.value)) return true;
        if (o.isSecret !== !!n.isSecret) return true;
        if (n.isSecret) {
            const h = olds.secretHashes?.[k];
            if (!h || !olds.salt || h !== secretHash(olds.salt, k, n.value)) return true;
        } else if (o.value !== n.value) return true;
    }
    return false;
}

/**
 * An Azure Pipelines variable group. Secret variables reach the provider as Pulumi secrets and
 * are kept in state only as salted hashes (output `secretHashes`, itself secret).
 */
export class VariableGroup extends pulumi.dynamic.Resource {
    /** The variable group id (the resource id as a number). */
    declare public readonly groupId: pulumi.Output<number>;
    /** The project id the group belongs to. */
    declare public readonly projectId: pulumi.Output<string>;
    /** The group name. */
    declare public readonly name: pulumi.Output<string>;
    /** Variables as stored: secret values are null. */
    declare public readonly variables: pulumi.Output<StateVariables>;
    /** Salted hashes of the secret values (secret). */
    declare public readonly secretHashes: pulumi.Output<Record<string, string>>;

    constructor(name: string, args: VariableGroupArgs, opts?: pulumi.CustomResourceOptions) {
        // Secret variables are secrets on the wire even if the caller passed a plain string.
        const variables = Object.fromEntries(
            Object.entries(args.variables ?? {}).map(([k, v]) => [
                k,
                { value: v.isSecret ? pulumi.secret(v.value) : v.value, isSecret: !!v.isSecret },
            ]),
        );
        super(
            variableGroupProvider,
            name,
            { projectId: undefined, ...args, variables, groupId: undefined, salt: undefined, secretHashes: undefined },
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "secretHashes", "variables"] },
            MODULE,
            "VariableGroup",
        );
    }
}
