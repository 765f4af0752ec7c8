/**
 * "Enable Pipelines" as a dynamic resource: GET/PUT `/repositories/{workspace}/{repo_slug}/pipelines_config`
 * with `{ "enabled": true }`.
 *
 * Delete leaves the repository as it is unless `disableOnDelete` is set: removing the setting from
 * the program (or moving it to another stack) should not stop a team's CI, and nothing else is
 * created by enabling. Set `disableOnDelete: true` when the stack owns the repository's CI outright.
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
    MODULE,
    repoPath,
    BitbucketRepositoryArgs,
} from "./common";

/** Checked inputs of a PipelinesConfig. */
export interface PipelinesConfigInputs {
    apiUrl: string;
    workspace: string;
    repoSlug: string;
    enabled: boolean;
    disableOnDelete: boolean;
}

/** Outputs of a PipelinesConfig (`enabled` as Bitbucket reports it). */
export type PipelinesConfigOutputs = PipelinesConfigInputs;

function shown(v: unknown): string {
    return isUnknown(v) ? "(unknown)" : String(v);
}

function subject(i: Partial<PipelinesConfigInputs>): string {
    return `Pipelines settings of ${shown(i.workspace)}/${shown(i.repoSlug)}`;
}

function configPath(i: Pick<PipelinesConfigInputs, "workspace" | "repoSlug">): string {
    return `${repoPath(i.workspace, i.repoSlug)}/pipelines_config`;
}

/** The resource id: the repository. */
export function pipelinesConfigId(i: Pick<PipelinesConfigInputs, "workspace" | "repoSlug">): string {
    return `${i.workspace}/${i.repoSlug}`;
}

function enabledOf(body: unknown, resource: string): boolean {
    const enabled = (body as { enabled?: unknown } | undefined)?.enabled;
    if (typeof enabled !== "boolean") throw new Error(`Bitbucket (${resource}): unexpected response; expected a configuration with "enabled".`);
    return enabled;
}

async function putEnabled(client: RestClient, i: PipelinesConfigInputs, resource: string): Promise<boolean> {
    const res = await client.request({ method: "PUT", path: configPath(i), json: { enabled: i.enabled }, resource });
    return enabledOf(res.body, resource);
}

/** Validates inputs; disableOnDelete defaults to false. */
export function checkPipelinesConfig(news: Record<string, unknown>): pulumi.dynamic.CheckResult {
    const c = checker(`PipelinesConfig of ${shown(news.workspace)}/${shown(news.repoSlug)}`);
    const apiUrl = checkRepository(c, news);
    c.bool(news, "enabled");
    c.bool(news, "disableOnDelete", true);
    return { inputs: { ...news, apiUrl, disableOnDelete: news.disableOnDelete ?? false }, failures: c.failures };
}

/** Another repository (or API) replaces; enabled and disableOnDelete update in place. */
export function diffPipelinesConfig(olds: Record<string, unknown>, news: Record<string, unknown>): BitbucketDiff {
    const replaces = changedOf(olds, news, ["apiUrl", "workspace", "repoSlug"]);
    const changed = [...replaces, ...changedOf(olds, news, ["enabled", "disableOnDelete"])];
    return { changes: changed.length > 0, replaces, deleteBeforeReplace: false, changedKeys: changed };
}

/** The dynamic provider of PipelinesConfig; `tuning` only changes retry timing (tests). */
export function pipelinesConfigProvider(tuning?: ClientTuning): pulumi.dynamic.ResourceProvider {
    return {
        configure: configureToken,

        async check(_olds: Record<string, unknown>, news: Record<string, unknown>) {
            return checkPipelinesConfig(news);
        },

        async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>) {
            return diffPipelinesConfig(olds, news);
        },

        async create(inputs: PipelinesConfigInputs) {
            const resource = subject(inputs);
            const client = bitbucketClient(inputs.apiUrl, resource, tuning);
            const enabled = await putEnabled(client, inputs, resource);
            return { id: pipelinesConfigId(inputs), outs: { ...inputs, enabled } };
        },

        async read(id: string, props?: Partial<PipelinesConfigOutputs>) {
            const [workspace, repoSlug] = id.split("/");
            const known = { apiUrl: DEFAULT_API_URL, workspace, repoSlug, disableOnDelete: false, ...(props ?? {}) };
            const resource = subject(known);
            const client = bitbucketClient(known.apiUrl, resource, tuning);
            const res = await client.request({ method: "GET", path: configPath(known), resource, accept: [404] });
            // The repository is gone (or no longer visible to the token): so is its setting.
            if (res.status === 404) return {};
            return { id, props: { ...known, enabled: enabledOf(res.body, resource) } };
        },

        async update(_id: string, _olds: PipelinesConfigOutputs, news: PipelinesConfigInputs) {
            const resource = subject(news);
            const client = bitbucketClient(news.apiUrl, resource, tuning);
            const enabled = await putEnabled(client, news, resource);
            return { outs: { ...news, enabled } };
        },

        async delete(_id: string, props: PipelinesConfigOutputs) {
            if (!props.disableOnDelete) return;
            const resource = subject(props);
            const client = bitbucketClient(props.apiUrl ?? DEFAULT_API_URL, resource, tuning);
            await client.request({ method: "PUT", path: configPath(props), json: { enabled: false }, resource, accept: [404] });
        },
    };
}

const defaultPipelinesConfigProvider = pipelinesConfigProvider();

/** Arguments of a PipelinesConfig. */
export interface PipelinesConfigArgs extends BitbucketRepositoryArgs {
    /** Whether Pipelines runs for the repository ("Enable Pipelines"). */
    enabled: pulumi.Input<boolean>;
    /** Disable Pipelines when this resource is deleted (default false: leave the repository as it is). */
    disableOnDelete?: pulumi.Input<boolean>;
}

/** The repository's Pipelines switch (Repository settings → Pipelines → Settings → Enable Pipelines). */
export class PipelinesConfig extends pulumi.dynamic.Resource {
    declare public readonly workspace: pulumi.Output<string>;
    declare public readonly repoSlug: pulumi.Output<string>;
    /** Whether Pipelines is enabled, as Bitbucket reports it. */
    declare public readonly enabled: pulumi.Output<boolean>;
    declare public readonly disableOnDelete: pulumi.Output<boolean>;
    declare public readonly apiUrl: pulumi.Output<string>;

    constructor(name: string, args: PipelinesConfigArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            defaultPipelinesConfigProvider,
            name,
            {
                workspace: args.workspace,
                repoSlug: args.repoSlug,
                enabled: args.enabled,
                disableOnDelete: args.disableOnDelete ?? false,
                apiUrl: args.apiUrl ?? DEFAULT_API_URL,
            },
            opts,
            MODULE,
            "PipelinesConfig",
        );
    }
}

/** The provider object PipelinesConfig serialises (for the secrecy proof and tests). */
export const pipelinesConfigProviderObject = defaultPipelinesConfigProvider;
