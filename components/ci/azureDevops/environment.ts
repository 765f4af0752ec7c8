/**
 * A pipeline environment (sandbox, staging, prod), REST 7.1-preview.1 distributedtask/environments.
 * Deployment jobs target it; approvals and checks hang off it (see ApprovalCheck).
 * Names are unique per project: a duplicate answers 409 EnvironmentExistsException, on which
 * create adopts the existing environment.
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
    sameName,
    typeKeyOf,
    deletedOutsidePulumi,
    createRejected,
    duplicateNotListed,
    foreignObject,
    provablyOurs,
    AzureDevopsProjectArgs,
    ProjectTarget,
} from "./common";

/** Arguments of an Environment. */
export interface EnvironmentArgs extends AzureDevopsProjectArgs {
    /** Environment name, unique in the project, e.g. "prod". */
    name: pulumi.Input<string>;
    /** Description. */
    description?: pulumi.Input<string>;
    /** Take over an environment of the same name that does not carry our ownership marker (default false: fail). */
    adopt?: pulumi.Input<boolean>;
}

interface EnvInputs extends ProjectTarget {
    name: string;
    description?: string;
    adopt?: boolean;
}

interface EnvOutputs extends EnvInputs {
    description: string;
    environmentId: number;
}

interface RemoteEnvironment {
    id: number;
    name: string;
    description?: string;
}

function what(i: { name?: string; organization?: string; project?: string }): string {
    return `environment ${i.name} in ${i.organization}/${i.project}`;
}

function base(i: { project: string }): string {
    return `${encodeURIComponent(i.project)}/_apis/distributedtask/environments`;
}

function outputs(i: EnvInputs, id: number): EnvOutputs {
    return compact({
        organization: i.organization,
        project: i.project,
        name: i.name,
        description: i.description ?? "",
        apiUrl: i.apiUrl,
        environmentId: id,
    });
}

async function patch(ado: AzureDevops, i: EnvInputs, id: number): Promise<RemoteEnvironment> {
    const res = await ado.call<RemoteEnvironment>({
        method: "PATCH",
        path: `${base(i)}/${id}`,
        apiVersion: API.environments,
        json: { name: i.name, description: i.description ?? "" },
        resource: what(i),
        accept: [404],
    });
    if (res.status === 404) {
        throw deletedOutsidePulumi(what(i), "environment", id);
    }
    return res.body;
}

async function findByName(ado: AzureDevops, i: EnvInputs): Promise<RemoteEnvironment | undefined> {
    const [hit] = await ado.list<RemoteEnvironment>(
        { method: "GET", path: base(i), apiVersion: API.environments, query: { name: i.name }, resource: what(i) },
        (e) => sameName(e.name, i.name),
    );
    return hit;
}

/** The dynamic provider of Environment (exported for the serialisation test). */
export const environmentProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureFromStack,

    async check(_olds: any, news: any) {
        const c = new Checker("environment", news);
        c.organizationAndProject();
        // Azure allows letters, digits, spaces, '-', '_' and '.' in environment names.
        c.name("name", "letters, digits, spaces, '-', '_' or '.', at most 128 characters", /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$/);
        c.optionalString("description", 1024);
        return c.result(news);
    },

    async diff(_id: string, olds: EnvOutputs, news: EnvInputs) {
        const replaces = changedKeys({ ...olds, apiUrl: apiUrlOf(olds) }, { ...news, apiUrl: apiUrlOf(news) }, ["organization", "project", "apiUrl"]);
        const changes = changedKeys(olds, { ...news, description: news.description ?? "" }, ["name", "description"]);
        return { changes: replaces.length + changes.length > 0, replaces, deleteBeforeReplace: true, stables: ["environmentId"] };
    },

    async create(inputs: EnvInputs) {
        const ado = new AzureDevops(inputs, what(inputs));
        // Taken over only when provably ours; one that appears during our POST is the one it made.
        const before = await findByName(ado, inputs);
        if (before) {
            if (!provablyOurs(inputs.description, before.description, inputs.adopt)) throw foreignObject(what(inputs), inputs.description);
            const env = await patch(ado, inputs, before.id);
            return { id: String(env.id), outs: outputs(inputs, env.id) };
        }
        const res = await ado.call<RemoteEnvironment>({
            method: "POST",
            path: base(inputs),
            apiVersion: API.environments,
            json: { name: inputs.name, description: inputs.description ?? "" },
            resource: what(inputs),
            accept: [400, 409],
        });
        let env = res.body;
        if (res.status === 409 || res.status === 400) {
            if (typeKeyOf(res.body) !== "EnvironmentExistsException") {
                throw createRejected(what(inputs), res);
            }
            // None existed before the POST: this is the environment our own retried POST made.
            const existing = await findByName(ado, inputs);
            if (!existing) throw duplicateNotListed(what(inputs));
            env = await patch(ado, inputs, existing.id);
        }
        return { id: String(env.id), outs: outputs(inputs, env.id) };
    },

    async read(id: string, props: EnvOutputs) {
        const ado = new AzureDevops(props, what(props));
        const res = await ado.call<RemoteEnvironment>({
            method: "GET",
            path: `${base(props)}/${id}`,
            apiVersion: API.environments,
            resource: what(props),
            accept: [404],
        });
        if (res.status === 404 || !res.body?.id) return {};
        return { id, props: { ...props, name: res.body.name, description: res.body.description ?? "", environmentId: res.body.id } };
    },

    async update(id: string, _olds: EnvOutputs, news: EnvInputs) {
        const ado = new AzureDevops(news, what(news));
        const env = await patch(ado, news, Number(id));
        return { outs: outputs(news, env.id) };
    },

    async delete(id: string, props: EnvOutputs) {
        const ado = new AzureDevops(props, what(props));
        await ado.call({ method: "DELETE", path: `${base(props)}/${id}`, apiVersion: API.environments, resource: what(props), accept: [404] });
    },
};

/** A pipeline environment that deployment jobs target (one per stage: sandbox, staging, prod). */
export class Environment extends pulumi.dynamic.Resource {
    /** The environment id (the resource id as a number), for checks and permissions. */
    declare public readonly environmentId: pulumi.Output<number>;
    /** The environment name. */
    declare public readonly name: pulumi.Output<string>;

    constructor(name: string, args: EnvironmentArgs, opts?: pulumi.CustomResourceOptions) {
        super(environmentProvider, name, { ...args, environmentId: undefined }, opts, MODULE, "Environment");
    }
}
