/**
 * A YAML pipeline (build definition), REST 7.1 build/definitions with `process: { type: 2, yamlFilename }`.
 *
 * Names are unique per folder; a duplicate answers 400 with typeKey DefinitionExistsException, on
 * which create adopts the existing definition. Updates are a PUT of the whole definition with
 * the current `revision`; a stale revision (someone else saved meanwhile) is re-read and retried once.
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
    sameName,
    typeKeyOf,
    deletedOutsidePulumi,
    createRejected,
    duplicateNotListed,
    foreignObject,
    AzureDevopsProjectArgs,
    ProjectTarget,
} from "./common";

/** Where the pipeline's YAML lives. */
export interface BuildRepository {
    /** TfsGit (Azure Repos), GitHub or Bitbucket (Bitbucket Cloud). */
    type: "TfsGit" | "GitHub" | "Bitbucket";
    /** Repository id: the Azure Repos GUID (required for TfsGit), or "owner/repo" for GitHub and Bitbucket. */
    id?: pulumi.Input<string>;
    /** Repository name: the Azure Repos name, or "owner/repo". */
    name?: pulumi.Input<string>;
    /** Default branch, "main" or "refs/heads/main" (default refs/heads/main). */
    defaultBranch?: pulumi.Input<string>;
}

/** Arguments of a BuildDefinition. */
export interface BuildDefinitionArgs extends AzureDevopsProjectArgs {
    /** Pipeline name, unique in its folder. */
    name: pulumi.Input<string>;
    /** Folder, e.g. "\\dbt" (default "\\", the root). */
    path?: pulumi.Input<string>;
    /** YAML file in the repository (default azure-pipelines.yml). */
    yamlFilename?: pulumi.Input<string>;
    /** Repository holding the YAML. */
    repository: pulumi.Input<BuildRepository>;
    /** Agent queue id for jobs that name no pool. */
    queueId?: pulumi.Input<number>;
    /** Agent pool name for jobs that name no pool, e.g. "Azure Pipelines" (used when queueId is not set). */
    poolName?: pulumi.Input<string>;
    /** Variable groups linked to the pipeline. */
    variableGroupIds?: pulumi.Input<pulumi.Input<number>[]>;
    /** Service connection for GitHub or Bitbucket repositories. */
    serviceConnectionId?: pulumi.Input<string>;
    /** Take over (rewrite) a pipeline of the same name and folder that already exists (default false: fail). */
    adopt?: pulumi.Input<boolean>;
}

interface RepoInputs {
    type: "TfsGit" | "GitHub" | "Bitbucket";
    id?: string;
    name?: string;
    defaultBranch?: string;
}

interface DefinitionInputs extends ProjectTarget {
    name: string;
    path?: string;
    yamlFilename?: string;
    repository: RepoInputs;
    queueId?: number;
    poolName?: string;
    variableGroupIds?: number[];
    serviceConnectionId?: string;
    adopt?: boolean;
}

interface DefinitionOutputs extends ProjectTarget {
    name: string;
    path: string;
    yamlFilename: string;
    repository: Required<Pick<RepoInputs, "type" | "defaultBranch">> & { id: string; name: string };
    queueId?: number;
    poolName?: string;
    variableGroupIds: number[];
    serviceConnectionId?: string;
    definitionId: number;
    revision: number;
    url: string;
}

interface RemoteDefinition {
    id: number;
    name: string;
    path?: string;
    revision: number;
    url?: string;
    _links?: { web?: { href?: string } };
    process?: { type?: number; yamlFilename?: string };
    repository?: { id?: string; name?: string; type?: string; defaultBranch?: string; properties?: Record<string, string> };
    queue?: { id?: number; name?: string; pool?: { name?: string } };
    variableGroups?: { id: number }[];
    [key: string]: unknown;
}

const REPO_TYPES = ["TfsGit", "GitHub", "Bitbucket"];
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function what(i: { name?: string; organization?: string; project?: string }): string {
    return `pipeline ${i.name} in ${i.organization}/${i.project}`;
}

function folder(p: string | undefined): string {
    // The API spells folders with backslashes and a leading one.
    const parts = (p ?? "").split(/[\\/]+/).filter(Boolean);
    return `\\${parts.join("\\")}`;
}

function branch(b: string | undefined): string {
    const v = b || "main";
    return v.startsWith("refs/") ? v : `refs/heads/${v}`;
}

function repoOf(i: DefinitionInputs): DefinitionOutputs["repository"] {
    const r = i.repository;
    return { type: r.type, id: r.id ?? r.name ?? "", name: r.name ?? r.id ?? "", defaultBranch: branch(r.defaultBranch) };
}

function desired(i: DefinitionInputs): Omit<DefinitionOutputs, "definitionId" | "revision" | "url"> {
    return compact({
        organization: i.organization,
        project: i.project,
        name: i.name,
        path: folder(i.path),
        yamlFilename: i.yamlFilename || "azure-pipelines.yml",
        repository: repoOf(i),
        queueId: i.queueId,
        poolName: i.queueId === undefined ? i.poolName : undefined,
        variableGroupIds: [...(i.variableGroupIds ?? [])].map(Number).sort((a, b) => a - b),
        serviceConnectionId: i.serviceConnectionId,
        apiUrl: i.apiUrl,
    });
}

/** The definition body for POST/PUT; `base` carries fields of an adopted definition we leave alone. */
function body(i: DefinitionInputs, base: Partial<RemoteDefinition> = {}) {
    const d = desired(i);
    const repository: Record<string, unknown> = {
        id: d.repository.id,
        name: d.repository.name,
        type: d.repository.type,
        defaultBranch: d.repository.defaultBranch,
    };
    if (d.repository.type === "GitHub") repository.url = `https://github.com/${d.repository.name}.git`;
    if (d.repository.type === "Bitbucket") repository.url = `https://bitbucket.org/${d.repository.name}.git`;
    if (d.serviceConnectionId) repository.properties = { connectedServiceId: d.serviceConnectionId };
    return compact({
        ...base,
        name: d.name,
        path: d.path,
        type: "build",
        quality: "definition",
        process: { type: 2, yamlFilename: d.yamlFilename },
        repository,
        queue: d.queueId !== undefined ? { id: d.queueId } : d.poolName ? { name: d.poolName, pool: { name: d.poolName } } : undefined,
        variableGroups: d.variableGroupIds.map((id) => ({ id })),
        // CI and PR triggers come from the YAML file (settingsSourceType 2).
        triggers: base.triggers ?? [
            {
                triggerType: "continuousIntegration",
                settingsSourceType: 2,
                branchFilters: [],
                pathFilters: [],
                batchChanges: false,
                maxConcurrentBuildsPerBranch: 1,
            },
            {
                triggerType: "pullRequest",
                settingsSourceType: 2,
                branchFilters: [],
                pathFilters: [],
                forks: { enabled: false, allowSecrets: false },
                isCommentRequiredForPullRequest: false,
            },
        ],
    });
}

function outputs(i: DefinitionInputs, remote: RemoteDefinition): DefinitionOutputs {
    return {
        ...desired(i),
        definitionId: remote.id,
        revision: remote.revision,
        url: remote._links?.web?.href ?? remote.url ?? "",
    } as DefinitionOutputs;
}

function base(i: { project: string }): string {
    return `${encodeURIComponent(i.project)}/_apis/build/definitions`;
}

async function get(ado: AzureDevops, i: DefinitionInputs | DefinitionOutputs, id: number): Promise<RemoteDefinition | undefined> {
    const res = await ado.call<RemoteDefinition>({
        method: "GET",
        path: `${base(i)}/${id}`,
        apiVersion: API.build,
        resource: what(i),
        accept: [404],
    });
    return res.status === 404 || !res.body?.id ? undefined : res.body;
}

/** PUTs the desired definition over the current revision; re-reads and retries once on a stale revision. */
async function put(ado: AzureDevops, i: DefinitionInputs, id: number): Promise<RemoteDefinition> {
    for (let attempt = 1; ; attempt++) {
        const current = await get(ado, i, id);
        if (!current) {
            throw deletedOutsidePulumi(what(i), "definition", id);
        }
        const res = await ado.call<RemoteDefinition>({
            method: "PUT",
            path: `${base(i)}/${id}`,
            apiVersion: API.build,
            json: { ...body(i, current), id, revision: current.revision },
            resource: what(i),
            accept: [409],
        });
        if (res.status !== 409) return res.body;
        if (attempt >= 2) throw new Error(`Azure DevOps ${what(i)}: the definition keeps changing under us (revision conflict twice); try again.`);
    }
}

async function findByName(ado: AzureDevops, i: DefinitionInputs): Promise<RemoteDefinition | undefined> {
    const path = folder(i.path);
    const [hit] = await ado.list<RemoteDefinition>(
        { method: "GET", path: base(i), apiVersion: API.build, query: { name: i.name, path }, resource: what(i) },
        (d) => sameName(d.name, i.name) && sameName(d.path ?? "\\", path),
    );
    return hit;
}

/** The dynamic provider of BuildDefinition (exported for the serialisation test). */
export const buildDefinitionProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureFromStack,

    async check(_olds: any, news: any) {
        const c = new Checker("pipeline", news);
        c.organizationAndProject();
        c.name("name", 'a pipeline name without \\ / : * ? " < > | characters', /^[^\\/:*?"<>|]+$/);
        if (news.path !== undefined && !isUnknown(news.path) && (typeof news.path !== "string" || /[:*?"<>|]/.test(news.path)))
            c.fail("path", 'a folder such as "\\\\dbt"');
        if (news.yamlFilename !== undefined && !isUnknown(news.yamlFilename))
            c.name("yamlFilename", "a path in the repository such as azure-pipelines.yml", /^[^\\:*?"<>|]+\.ya?ml$/);
        const r = news.repository;
        if (!isUnknown(r)) {
            if (!r || typeof r !== "object") c.fail("repository", `{ type, id or name, defaultBranch? } (got ${describe(r)})`);
            else {
                if (!REPO_TYPES.includes(r.type)) c.fail("repository.type", `one of ${REPO_TYPES.join(", ")} (got ${describe(r.type)})`);
                if (!r.id && !r.name) c.fail("repository", "given an id or a name");
                // Azure Repos references need the repository GUID; a name alone is not resolved.
                if (r.type === "TfsGit" && !isUnknown(r.id) && !(typeof r.id === "string" && GUID.test(r.id))) {
                    c.fail("repository.id", `the Azure Repos repository GUID for TfsGit (got ${describe(r.id)})`);
                }
                if (
                    (r.type === "GitHub" || r.type === "Bitbucket") &&
                    !isUnknown(r.id ?? r.name) &&
                    !/^[^/\s]+\/[^/\s]+$/.test(String(r.id ?? r.name))
                ) {
                    c.fail("repository.id", `"owner/repo" for ${r.type} (got ${describe(r.id ?? r.name)})`);
                }
                if ((r.type === "GitHub" || r.type === "Bitbucket") && !news.serviceConnectionId) {
                    c.fail("serviceConnectionId", `the id of the ${r.type} service connection (required for ${r.type} repositories)`);
                }
            }
        }
        c.integer("queueId", 1, 2 ** 31 - 1);
        c.optionalString("poolName", 256);
        const ids = news.variableGroupIds;
        if (ids !== undefined && !isUnknown(ids)) {
            if (!Array.isArray(ids)) c.fail("variableGroupIds", "an array of variable group ids");
            else
                ids.forEach(
                    (v: unknown, n: number) =>
                        !isUnknown(v) &&
                        !(Number.isInteger(Number(v)) && Number(v) > 0) &&
                        c.fail(`variableGroupIds[${n}]`, `a positive integer (got ${describe(v)})`),
                );
        }
        return c.result(news);
    },

    async diff(_id: string, olds: DefinitionOutputs, news: DefinitionInputs) {
        const replaces = changedKeys({ ...olds, apiUrl: apiUrlOf(olds) }, { ...news, apiUrl: apiUrlOf(news) }, ["organization", "project", "apiUrl"]);
        const want = desired(news);
        const changes = changedKeys(olds, want, [
            "name",
            "path",
            "yamlFilename",
            "repository",
            "queueId",
            "poolName",
            "variableGroupIds",
            "serviceConnectionId",
        ]);
        // Names are unique per folder: a replacement in place must delete first.
        return { changes: replaces.length + changes.length > 0, replaces, deleteBeforeReplace: true, stables: ["definitionId"] };
    },

    async create(inputs: DefinitionInputs) {
        const ado = new AzureDevops(inputs, what(inputs));
        // A definition has no field to mark it ours: one already there is rewritten only with adopt: true.
        const before = await findByName(ado, inputs);
        if (before) {
            if (inputs.adopt !== true) throw foreignObject(what(inputs), undefined);
            const def = await put(ado, inputs, before.id);
            return { id: String(def.id), outs: outputs(inputs, def) };
        }
        const res = await ado.call<RemoteDefinition>({
            method: "POST",
            path: base(inputs),
            apiVersion: API.build,
            json: body(inputs),
            resource: what(inputs),
            accept: [400, 409],
        });
        let def = res.body;
        if (res.status === 400 || res.status === 409) {
            if (typeKeyOf(res.body) !== "DefinitionExistsException") {
                throw createRejected(what(inputs), res);
            }
            // None existed before the POST: this is the definition our own retried POST made.
            const existing = await findByName(ado, inputs);
            if (!existing) throw duplicateNotListed(what(inputs));
            def = await put(ado, inputs, existing.id);
        }
        return { id: String(def.id), outs: outputs(inputs, def) };
    },

    async read(id: string, props: DefinitionOutputs) {
        const ado = new AzureDevops(props, what(props));
        const remote = await get(ado, props, Number(id));
        if (!remote) return {};
        const groups = (remote.variableGroups ?? []).map((g) => Number(g.id)).sort((a, b) => a - b);
        const repo = remote.repository ?? {};
        const connected = repo.properties?.connectedServiceId;
        return {
            id,
            props: compact({
                ...props,
                name: remote.name,
                path: remote.path ?? "\\",
                yamlFilename: remote.process?.yamlFilename ?? "",
                repository: {
                    type: repo.type as RepoInputs["type"],
                    id: repo.id ?? "",
                    name: repo.name ?? "",
                    defaultBranch: repo.defaultBranch ?? "",
                },
                queueId: props.queueId !== undefined ? remote.queue?.id : undefined,
                poolName: props.poolName !== undefined ? (remote.queue?.pool?.name ?? remote.queue?.name) : undefined,
                variableGroupIds: groups,
                serviceConnectionId: props.serviceConnectionId !== undefined || connected ? connected : undefined,
                definitionId: remote.id,
                revision: remote.revision,
                url: remote._links?.web?.href ?? remote.url ?? props.url,
            }),
        };
    },

    async update(id: string, _olds: DefinitionOutputs, news: DefinitionInputs) {
        const ado = new AzureDevops(news, what(news));
        const def = await put(ado, news, Number(id));
        return { outs: outputs(news, def) };
    },

    async delete(id: string, props: DefinitionOutputs) {
        const ado = new AzureDevops(props, what(props));
        await ado.call({ method: "DELETE", path: `${base(props)}/${id}`, apiVersion: API.build, resource: what(props), accept: [404] });
    },
};

/** A YAML pipeline definition pointing at azure-pipelines.yml (or another file) in a repository. */
export class BuildDefinition extends pulumi.dynamic.Resource {
    /** The definition id (the resource id as a number), for pipeline permissions. */
    declare public readonly definitionId: pulumi.Output<number>;
    /** The definition's revision after the last change. */
    declare public readonly revision: pulumi.Output<number>;
    /** The pipeline's web URL. */
    declare public readonly url: pulumi.Output<string>;
    /** The pipeline name. */
    declare public readonly name: pulumi.Output<string>;

    constructor(name: string, args: BuildDefinitionArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            buildDefinitionProvider,
            name,
            { ...args, definitionId: undefined, revision: undefined, url: undefined },
            opts,
            MODULE,
            "BuildDefinition",
        );
    }
}
