/**
 * Azure DevOps settings fed by the stack (seed 003 as code), with no path from pull-request code to
 * production: the production variable group may be used only by runs of the main branch (branch
 * control) and, with approvers, after an approval; only this pipeline is permitted to use each
 * resource; pull requests into main run the pipeline (a build-validation policy: Azure Repos ignores
 * YAML `pr:` triggers); and the deploy environment takes one run at a time (an exclusive lock, which
 * `lockBehavior: sequential` needs) after its approval.
 */
import * as pulumi from "@pulumi/pulumi";
import { azureNames } from "../../pipelines/azure";
import type { JobSettings } from "../settings";
import { ApprovalCheck } from "./approvalCheck";
import { BuildDefinition } from "./buildDefinition";
import { BuildValidationPolicy } from "./buildValidationPolicy";
import { BranchControlCheck, CheckedResourceType, ExclusiveLockCheck, ResourceApprovalCheck } from "./checks";
import { ownershipMarker } from "./common";
import { Environment } from "./environment";
import { PipelinePermission } from "./pipelinePermission";
import { SecureFile } from "./secureFile";
import { VariableGroup } from "./variableGroup";
import { settingValue } from "../values";

/** Arguments of AzureDevopsCiSettings. */
export interface AzureDevopsCiSettingsArgs {
    /** Organization name. */
    organization: string;
    /** Project name. */
    project: string;
    /** Stack name: objects are named dbt-<stack>-… as the rendered azure-pipelines.yml references them. */
    stack: string;
    /** The pipeline jobs (see jobSettings). */
    jobs: JobSettings[];
    /** Variable values by name; a secret. */
    values: pulumi.Input<Record<string, string>>;
    /** profiles.yml for the secure file the pipeline downloads. */
    profilesYaml: pulumi.Input<string>;
    /** Azure Repos repository GUID holding azure-pipelines.yml. */
    repositoryId: pulumi.Input<string>;
    /** Repository name. */
    repositoryName: pulumi.Input<string>;
    /** Default branch (the main branch): the only branch whose runs may use production settings. */
    defaultBranch: string;
    /** Approver identity GUIDs of the deploy environment and the production variable group (none: no approval check). */
    approverIds?: string[];
    /** Service connection only the deploy job uses (e.g. the AWS deploy role's): made main-only like the production group. */
    deployServiceConnection?: string;
    /** REST API base URL (default https://dev.azure.com). */
    apiUrl?: pulumi.Input<string>;
}

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const BRANCH = /^(?!\/|.*\/\/|.*\.\.|.*\/$)[A-Za-z0-9._/-]{1,200}$/;

function validate(component: string, args: AzureDevopsCiSettingsArgs): void {
    const problems: string[] = [];
    if (!Array.isArray(args.jobs) || args.jobs.length === 0) problems.push("jobs: expected at least one pipeline job");
    for (const j of args.jobs ?? []) {
        const seen = new Set<string>();
        for (const v of j.variables ?? []) {
            if (!/^[A-Z_][A-Z0-9_]*$/.test(v.name)) problems.push(`jobs[${j.id}].variables: ${JSON.stringify(v.name)} is not an environment variable name`);
            if (seen.has(v.name)) problems.push(`jobs[${j.id}].variables: ${v.name} is declared twice`);
            seen.add(v.name);
        }
    }
    const bad = (args.approverIds ?? []).filter((a) => !GUID.test(a));
    if (bad.length) problems.push(`approverIds: ${bad.join(", ")}: expected identity GUIDs`);
    if (typeof args.defaultBranch !== "string" || !BRANCH.test(args.defaultBranch))
        problems.push(`defaultBranch = ${JSON.stringify(args.defaultBranch)}: expected a git branch name`);
    if (problems.length) throw new Error(`${component}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
}

/**
 * Variable groups per job (secrets marked), profiles.yml as a secure file, the YAML pipeline, the
 * deploy environment, each permitted to this pipeline only, plus the checks and the PR policy that
 * keep pull-request runs away from production settings.
 */
export class AzureDevopsCiSettings extends pulumi.ComponentResource {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: AzureDevopsCiSettingsArgs): void {
        validate(`AzureDevopsCiSettings ${name}`, args);
    }

    /** The YAML pipeline definition. */
    public readonly pipeline: BuildDefinition;
    /** Variable group names per job. */
    public readonly variableGroupNames: Record<string, string>;
    /** Resources only the deploy job reads, as `<type>:<name>` (each carries branch control and, with approvers, an approval). */
    public readonly protectedResources: string[];

    constructor(name: string, args: AzureDevopsCiSettingsArgs, opts?: pulumi.ComponentResourceOptions) {
        const component = `AzureDevopsCiSettings ${name}`;
        validate(component, args);
        super("dbt-platform:ci:AzureDevopsCiSettings", name, {}, opts);
        const where = { organization: args.organization, project: args.project, apiUrl: args.apiUrl };
        const child = { parent: this };
        const names = azureNames(args.stack);
        // Written into every description: adoption after a 409 takes only objects carrying it.
        const marker = ownershipMarker(args.stack);
        const approvers = args.approverIds ?? [];
        const mainBranch = `refs/heads/${args.defaultBranch}`;

        this.pipeline = new BuildDefinition(
            `${name}-pipeline`,
            {
                ...where,
                name: names.pipeline,
                yamlFilename: "azure-pipelines.yml",
                repository: { type: "TfsGit", id: args.repositoryId, name: args.repositoryName, defaultBranch: mainBranch },
            },
            child,
        );
        // Permissions name this pipeline only, never "all pipelines" of the project.
        const permit = (kind: CheckedResourceType, key: string, id: pulumi.Input<string | number>) =>
            new PipelinePermission(
                `${name}-permit-${key}`,
                { ...where, resourceType: kind, resourceId: pulumi.output(id).apply(String), pipelineId: this.pipeline.definitionId },
                child,
            );
        // Main only, and an approval where approvers are configured: what production settings need.
        this.protectedResources = [];
        const protect = (kind: CheckedResourceType, key: string, id: pulumi.Input<string | number>, resourceName: string) => {
            this.protectedResources.push(`${kind}:${resourceName}`);
            const target = { ...where, resourceType: kind, resourceId: pulumi.output(id).apply(String), resourceName };
            new BranchControlCheck(`${name}-branch-control-${key}`, { ...target, allowedBranches: [mainBranch], displayName: `Only ${args.defaultBranch} (${marker})` }, child);
            if (approvers.length) {
                new ResourceApprovalCheck(
                    `${name}-approval-${key}`,
                    { ...target, approverIds: approvers, instructions: `Approve the use of ${resourceName} by a dbt release of ${args.stack} (${marker})` },
                    child,
                );
            }
        };

        this.variableGroupNames = {};
        for (const job of args.jobs) {
            const groupName = names.variableGroup(job.id);
            const variables = Object.fromEntries(job.variables.map((v) => [v.name, { value: settingValue(component, args.values, v.name), isSecret: v.secret }]));
            const group = new VariableGroup(`${name}-${job.id}`, { ...where, name: groupName, description: `dbt ${job.id} settings of stack ${args.stack} (${marker})`, variables }, child);
            this.variableGroupNames[job.id] = groupName;
            permit("variablegroup", job.id, group.groupId);
            if (job.deploymentEnvironment) protect("variablegroup", job.id, group.groupId, groupName);
        }

        // profiles.yml holds env_var() references only, but the deploy job gets its own copy so a branch's
        // YAML cannot use the production one: it is main-only on every stage; a PR job's copy stays open to PR runs.
        for (const job of args.jobs) {
            const fileName = names.profilesSecureFile(job.id);
            const key = job.id === "deploy" ? "profiles-deploy" : "profiles";
            const file = new SecureFile(`${name}-${key}`, { ...where, name: fileName, content: pulumi.secret(args.profilesYaml), marker }, child);
            permit("securefile", key, file.secureFileId);
            if (job.deploymentEnvironment) protect("securefile", key, file.secureFileId, fileName);
        }

        if (args.jobs.some((j) => !j.deploymentEnvironment)) {
            new BuildValidationPolicy(
                `${name}-pr-build`,
                {
                    ...where,
                    repositoryId: args.repositoryId,
                    branch: mainBranch,
                    buildDefinitionId: this.pipeline.definitionId,
                    displayName: `dbt slim CI (${marker})`,
                },
                child,
            );
        }

        const deployEnv = args.jobs.find((j) => j.deploymentEnvironment)?.deploymentEnvironment;
        if (deployEnv) {
            const env = new Environment(`${name}-env-${deployEnv}`, { ...where, name: deployEnv, description: `dbt deployments of stack ${args.stack} (${marker})` }, child);
            permit("environment", deployEnv, env.environmentId);
            if (approvers.length) {
                new ApprovalCheck(
                    `${name}-approval-${deployEnv}`,
                    { ...where, environmentId: env.environmentId, environmentName: deployEnv, approverIds: approvers, instructions: `Approve the dbt release to ${args.stack}` },
                    child,
                );
            }
            // A branch's own YAML could target the environment in a deployment job of its own: main only.
            new BranchControlCheck(
                `${name}-branch-control-env-${deployEnv}`,
                { ...where, resourceType: "environment", resourceId: env.environmentId.apply(String), resourceName: deployEnv, allowedBranches: [mainBranch], displayName: `Only ${args.defaultBranch} (${marker})` },
                child,
            );
            // The deploy role trusts this service connection's OIDC subject: a PR run must not get its tokens.
            if (args.deployServiceConnection) {
                new BranchControlCheck(
                    `${name}-branch-control-deploy-connection`,
                    { ...where, resourceType: "endpoint", resourceName: args.deployServiceConnection, allowedBranches: [mainBranch], displayName: `Only ${args.defaultBranch} (${marker})` },
                    child,
                );
            }
            // Without it `lockBehavior: sequential` does nothing and releases can overlap.
            new ExclusiveLockCheck(
                `${name}-lock-${deployEnv}`,
                { ...where, resourceType: "environment", resourceId: env.environmentId.apply(String), resourceName: deployEnv },
                child,
            );
        }
        this.registerOutputs({ pipelineId: this.pipeline.definitionId, variableGroupNames: this.variableGroupNames, protectedResources: this.protectedResources });
    }
}
