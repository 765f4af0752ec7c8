/**
 * An Azure Pipelines secure file (Library → Secure files), REST 7.1-preview.1 distributedtask/securefiles.
 *
 * The content is uploaded as application/octet-stream and can never be read back or changed in
 * place, so a content change replaces the file (new id) and state keeps only a salted hash.
 * A rename is an in-place PATCH.
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
    isUnknown,
    newSalt,
    sameName,
    secretHash,
    typeKeyOf,
    deletedOutsidePulumi,
    createRejected,
    foreignObject,
    provablyOurs,
    AzureDevopsProjectArgs,
    ProjectTarget,
} from "./common";

/** Arguments of a SecureFile. */
export interface SecureFileArgs extends AzureDevopsProjectArgs {
    /** File name, unique in the project, e.g. "profiles.yml". */
    name: pulumi.Input<string>;
    /** File content (made secret if it is not already). */
    content: pulumi.Input<string>;
    /** Ownership marker (see ownershipMarker) kept in the file's properties; a file of our name carrying it may be replaced. */
    marker?: pulumi.Input<string>;
    /** Replace a file of the same name that does not carry our marker (default false: fail). */
    adopt?: pulumi.Input<boolean>;
}

interface FileInputs extends ProjectTarget {
    name: string;
    content: string;
    marker?: string;
    adopt?: boolean;
}

interface FileOutputs extends ProjectTarget {
    name: string;
    secureFileId: string;
    salt: string;
    /** Salted sha256 of the content. */
    contentHash: string;
}

interface RemoteFile {
    id: string;
    name: string;
    properties?: Record<string, string>;
}

/** Secure file property holding the ownership marker. */
const MARKER_PROPERTY = "dbt-platform";

// Azure's limit per secure file.
const MAX_BYTES = 10 * 1024 * 1024;

function what(i: { name?: string; organization?: string; project?: string }): string {
    return `secure file ${i.name} in ${i.organization}/${i.project}`;
}

function hashOf(salt: string, content: string): string {
    return secretHash(salt, "content", content);
}

function base(i: { project: string }): string {
    return `${encodeURIComponent(i.project)}/_apis/distributedtask/securefiles`;
}

async function upload(ado: AzureDevops, i: FileInputs) {
    return ado.call<RemoteFile>({
        method: "POST",
        path: base(i),
        apiVersion: API.secureFiles,
        query: { name: i.name },
        raw: { body: Buffer.from(i.content, "utf8"), contentType: "application/octet-stream" },
        resource: what(i),
        accept: [400, 409],
    });
}

async function findByName(ado: AzureDevops, i: FileInputs): Promise<RemoteFile | undefined> {
    const [hit] = await ado.list<RemoteFile>(
        { method: "GET", path: base(i), apiVersion: API.secureFiles, query: { namePattern: i.name }, resource: what(i) },
        (f) => sameName(f.name, i.name),
    );
    return hit;
}

async function remove(ado: AzureDevops, i: { project: string; name: string; organization: string }, id: string): Promise<void> {
    await ado.call({ method: "DELETE", path: `${base(i)}/${encodeURIComponent(id)}`, apiVersion: API.secureFiles, resource: what(i), accept: [404] });
}

/** Sets the name and (with a marker) the ownership property. */
async function patchFile(ado: AzureDevops, i: FileInputs, id: string): Promise<void> {
    const res = await ado.call<RemoteFile>({
        method: "PATCH",
        path: `${base(i)}/${encodeURIComponent(id)}`,
        apiVersion: API.secureFiles,
        json: { id, name: i.name, ...(i.marker ? { properties: { [MARKER_PROPERTY]: i.marker } } : {}) },
        resource: what(i),
        accept: [404],
    });
    if (res.status === 404) throw deletedOutsidePulumi(what(i), "file", id);
}

/** The dynamic provider of SecureFile (exported for the serialisation test). */
export const secureFileProvider: pulumi.dynamic.ResourceProvider = {
    configure: configureFromStack,

    async check(_olds: any, news: any) {
        const c = new Checker("secure file", news);
        c.organizationAndProject();
        c.name("name", "a file name without slashes, e.g. profiles.yml", /^[^/\\:*?"<>|]+$/);
        const content = news.content;
        if (!isUnknown(content)) {
            if (typeof content !== "string" || content.length === 0) c.fail("content", "a non-empty string");
            else if (Buffer.byteLength(content, "utf8") > MAX_BYTES) c.fail("content", "at most 10 MB (the Azure DevOps limit per secure file)");
        }
        return c.result(news);
    },

    async diff(_id: string, olds: FileOutputs, news: FileInputs) {
        const replaces = changedKeys({ ...olds, apiUrl: apiUrlOf(olds) }, { ...news, apiUrl: apiUrlOf(news) }, ["organization", "project", "apiUrl"]);
        // Content is write-only in Azure DevOps: a new content means a new file.
        if (isUnknown(news.content) || !olds.salt || hashOf(olds.salt, news.content) !== olds.contentHash) replaces.push("content");
        const changes = olds.name !== news.name ? ["name"] : [];
        // Names are unique per project: the old file must go before the new one is uploaded.
        return { changes: replaces.length + changes.length > 0, replaces, deleteBeforeReplace: true };
    },

    async create(inputs: FileInputs) {
        const ado = new AzureDevops(inputs, what(inputs));
        // Content cannot be read or updated, so taking a file over means replacing it: only a file
        // provably ours (our marker, or adopt: true). One that appears during our upload is that upload's.
        const before = await findByName(ado, inputs);
        if (before) {
            if (!provablyOurs(inputs.marker, before.properties?.[MARKER_PROPERTY], inputs.adopt)) throw foreignObject(what(inputs), inputs.marker);
            await remove(ado, inputs, before.id);
        }
        let res = await upload(ado, inputs);
        if (res.status === 409 || res.status === 400) {
            if (typeKeyOf(res.body) !== "SecureFileExistsException") {
                throw createRejected(what(inputs), res);
            }
            const existing = await findByName(ado, inputs);
            if (existing) await remove(ado, inputs, existing.id);
            res = await upload(ado, inputs);
            if (res.status !== 200 && res.status !== 201)
                throw new Error(`Azure DevOps upload (${what(inputs)}): HTTP ${res.status} after replacing the file our interrupted upload left.`);
        }
        if (inputs.marker) await patchFile(ado, inputs, res.body.id);
        const salt = newSalt();
        const outs: FileOutputs = compact({
            organization: inputs.organization,
            project: inputs.project,
            name: inputs.name,
            apiUrl: inputs.apiUrl,
            secureFileId: res.body.id,
            salt,
            contentHash: hashOf(salt, inputs.content),
        });
        return { id: res.body.id, outs };
    },

    async read(id: string, props: FileOutputs) {
        const ado = new AzureDevops(props, what(props));
        const res = await ado.call<RemoteFile>({
            method: "GET",
            path: `${base(props)}/${encodeURIComponent(id)}`,
            apiVersion: API.secureFiles,
            resource: what(props),
            accept: [404],
        });
        if (res.status === 404 || !res.body?.id) return {};
        return { id, props: { ...props, secureFileId: res.body.id, name: res.body.name } };
    },

    async update(id: string, olds: FileOutputs, news: FileInputs) {
        // Only a rename reaches update; content changes replace.
        const ado = new AzureDevops(news, what(news));
        await patchFile(ado, news, id);
        return { outs: { ...olds, name: news.name } };
    },

    async delete(id: string, props: FileOutputs) {
        const ado = new AzureDevops(props, what(props));
        await remove(ado, props, id);
    },
};

/**
 * An Azure Pipelines secure file, e.g. the profiles.yml pipelines download with DownloadSecureFile@1.
 * The content never appears in state; a content change replaces the file (its id changes, so
 * pipeline permissions keyed on the id are re-created through their dependency on `id`).
 */
export class SecureFile extends pulumi.dynamic.Resource {
    /** The secure file id (GUID), the same as `id`. */
    declare public readonly secureFileId: pulumi.Output<string>;
    /** The file name. */
    declare public readonly name: pulumi.Output<string>;
    /** Salted hash of the content (secret). */
    declare public readonly contentHash: pulumi.Output<string>;

    constructor(name: string, args: SecureFileArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            secureFileProvider,
            name,
            { ...args, content: pulumi.secret(args.content), secureFileId: undefined, salt: undefined, contentHash: undefined },
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "contentHash"] },
            MODULE,
            "SecureFile",
        );
    }
}
