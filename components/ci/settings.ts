/**
 * CI-system settings fed by the stack: every variable a rendered pipeline job reads exists in the
 * CI system, in the scope that job sees, and nothing else is created. The set of resources comes
 * from plain job descriptions (the pipeline model), the values from Inputs (warehouse outputs).
 */
import * as pulumi from "@pulumi/pulumi";
import type { Job, SettingVariable } from "../pipelines/model";
import { azureNames } from "../pipelines/azure";
import * as azdo from "./azureDevops";
import * as bb from "./bitbucket";

/** What a settings component needs to know of one pipeline job (plain: it decides which resources exist). */
export interface JobSettings {
    /** Job id in the pipeline model. */
    id: Job["id"];
    /** Settings variables the job reads. */
    variables: SettingVariable[];
    /** Deployment environment the job runs in, if any. */
    deploymentEnvironment?: string;
}

/** The jobs' settings view of a pipeline model's jobs. */
export function jobSettings(jobs: Job[]): JobSettings[] {
    return jobs.map((j) => ({ id: j.id, variables: j.variables, deploymentEnvironment: j.deploymentEnvironment }));
}

/** One variable's value from the values map; a missing one fails naming it (at apply time). */
function valueOf(component: string, values: pulumi.Input<Record<string, string>>, name: string): pulumi.Output<string> {
    return pulumi.secret(
        pulumi.output(values).apply((v) => {
            const value = v?.[name];
            if (value === undefined || value === null || value === "") throw new Error(`${component}: no value for ${name} (the pipelines read it)`);
            return String(value);
        }),
    );
}

function checkJobs(component: string, jobs: JobSettings[]): void {
    const problems: string[] = [];
    if (!Array.isArray(jobs) || jobs.length === 0) problems.push("jobs: expected at least one pipeline job");
    for (const j of jobs ?? []) {
        const seen = new Set<string>();
        for (const v of j.variables ?? []) {
            if (!/^[A-Z_][A-Z0-9_]*$/.test(v.name)) problems.push(`jobs[${j.id}].variables: ${JSON.stringify(v.name)} is not an environment variable name`);
            if (seen.has(v.name)) problems.push(`jobs[${j.id}].variables: ${v.name} is declared twice`);
            seen.add(v.name);
        }
    }
    if (problems.length) throw new Error(`${component}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
}

/** Arguments of BitbucketCiSettings. */
export interface BitbucketCiSettingsArgs {
    /** Workspace ID (the first part of `workspace/repo`). */
    workspace: string;
    /** Repository slug. */
    repoSlug: string;
    /** The pipeline jobs (see jobSettings). */
    jobs: JobSettings[];
    /** Variable values by name (e.g. PostgresWarehouse.profileEnvironment); a secret. */
    values: pulumi.Input<Record<string, string>>;
    /** Bitbucket type of the deploy environment (default by name: production → Production, staging → Staging, else Test). */
    environmentType?: "Test" | "Staging" | "Production";
    /** REST API base URL (default https://api.bitbucket.org/2.0). */
    apiUrl?: pulumi.Input<string>;
    /** Take over variables and a deploy environment that already exist under the same names (default false: fail naming them). */
    adoptExisting?: pulumi.Input<boolean>;
}

/**
 * Seed 000 step 3 as code: Pipelines enabled, the CI job's variables as repository variables and
 * the deploy job's as variables of its deployment environment (passwords Secured).
 */
export class BitbucketCiSettings extends pulumi.ComponentResource {
    /** Deployment environment of the deploy job (its uuid can feed the deploy role's OIDC trust). */
    public readonly environment?: bb.DeploymentEnvironment;
    /** Variable names per scope (`repository` or the environment name). */
    public readonly variableNames: Record<string, string[]>;

    constructor(name: string, args: BitbucketCiSettingsArgs, opts?: pulumi.ComponentResourceOptions) {
        checkJobs(`BitbucketCiSettings ${name}`, args.jobs);
        super("dbt-platform:ci:BitbucketCiSettings", name, {}, opts);
        const repo = { workspace: args.workspace, repoSlug: args.repoSlug, apiUrl: args.apiUrl };
        const component = `BitbucketCiSettings ${name}`;
        const adopt = args.adoptExisting ?? false;
        new bb.PipelinesConfig(`${name}-pipelines`, { ...repo, enabled: true }, { parent: this });
        this.variableNames = {};
        for (const job of args.jobs) {
            if (job.deploymentEnvironment) {
                const envName = job.deploymentEnvironment;
                const type = args.environmentType ?? (/^prod/i.test(envName) ? "Production" : /^stag/i.test(envName) ? "Staging" : "Test");
                const env = new bb.DeploymentEnvironment(`${name}-env-${envName}`, { ...repo, name: envName, environmentType: type, adopt }, { parent: this });
                (this as { environment?: bb.DeploymentEnvironment }).environment = env;
                for (const v of job.variables) {
                    new bb.DeploymentVariable(
                        `${name}-${envName}-${v.name}`,
                        { ...repo, environmentUuid: env.uuid, key: v.name, value: valueOf(component, args.values, v.name), secured: v.secret, adopt },
                        { parent: this },
                    );
                }
                this.variableNames[envName] = job.variables.map((v) => v.name);
            } else {
                for (const v of job.variables) {
                    new bb.RepositoryVariable(`${name}-${v.name}`, { ...repo, key: v.name, value: valueOf(component, args.values, v.name), secured: v.secret, adopt }, { parent: this });
                }
                this.variableNames.repository = [...(this.variableNames.repository ?? []), ...job.variables.map((v) => v.name)];
            }
        }
        this.registerOutputs({ variableNames: this.variableNames, environmentUuid: this.environment?.uuid });
    }
}

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
    /** Default branch (the main branch). */
    defaultBranch: string;
    /** Approver identity GUIDs of the deploy environment (none: no approval check). */
    approverIds?: string[];
    /** REST API base URL (default https://dev.azure.com). */
    apiUrl?: pulumi.Input<string>;
}

/**
 * Seed 003 as code: variable groups per job (secrets marked), profiles.yml as a secure file, the
 * YAML pipeline, the deploy environment with an approval check, and the pipeline's permission to
 * use each of them.
 */
export class AzureDevopsCiSettings extends pulumi.ComponentResource {
    /** The YAML pipeline definition. */
    public readonly pipeline: azdo.BuildDefinition;
    /** Variable group names per job. */
    public readonly variableGroupNames: Record<string, string>;

    constructor(name: string, args: AzureDevopsCiSettingsArgs, opts?: pulumi.ComponentResourceOptions) {
        const component = `AzureDevopsCiSettings ${name}`;
        checkJobs(component, args.jobs);
        const guid = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
        const bad = (args.approverIds ?? []).filter((a) => !guid.test(a));
        if (bad.length) throw new Error(`${component}: approverIds: ${bad.join(", ")}: expected identity GUIDs`);
        super("dbt-platform:ci:AzureDevopsCiSettings", name, {}, opts);
        const where = { organization: args.organization, project: args.project, apiUrl: args.apiUrl };
        const names = azureNames(args.stack);
        const groups: azdo.VariableGroup[] = [];
        this.variableGroupNames = {};
        for (const job of args.jobs) {
            const groupName = names.variableGroup(job.id);
            const variables = Object.fromEntries(job.variables.map((v) => [v.name, { value: valueOf(component, args.values, v.name), isSecret: v.secret }]));
            groups.push(new azdo.VariableGroup(`${name}-${job.id}`, { ...where, name: groupName, description: `dbt ${job.id} settings of stack ${args.stack}`, variables }, { parent: this }));
            this.variableGroupNames[job.id] = groupName;
        }
        const profiles = new azdo.SecureFile(`${name}-profiles`, { ...where, name: names.profilesSecureFile, content: pulumi.secret(args.profilesYaml) }, { parent: this });
        this.pipeline = new azdo.BuildDefinition(
            `${name}-pipeline`,
            {
                ...where,
                name: names.pipeline,
                yamlFilename: "azure-pipelines.yml",
                repository: { type: "TfsGit", id: args.repositoryId, name: args.repositoryName, defaultBranch: `refs/heads/${args.defaultBranch}` },
            },
            { parent: this },
        );
        const permit = (kind: "variablegroup" | "securefile" | "environment", key: string, id: pulumi.Input<string | number>) =>
            new azdo.PipelinePermission(
                `${name}-permit-${key}`,
                { ...where, resourceType: kind, resourceId: pulumi.output(id).apply(String), pipelineId: this.pipeline.definitionId },
                { parent: this },
            );
        groups.forEach((g, i) => permit("variablegroup", args.jobs[i].id, g.groupId));
        permit("securefile", "profiles", profiles.secureFileId);
        const deployEnv = args.jobs.find((j) => j.deploymentEnvironment)?.deploymentEnvironment;
        if (deployEnv) {
            const env = new azdo.Environment(`${name}-env-${deployEnv}`, { ...where, name: deployEnv, description: `dbt deployments of stack ${args.stack}` }, { parent: this });
            permit("environment", deployEnv, env.environmentId);
            if (args.approverIds?.length) {
                new azdo.ApprovalCheck(
                    `${name}-approval-${deployEnv}`,
                    { ...where, environmentId: env.environmentId, environmentName: deployEnv, approverIds: args.approverIds, instructions: `Approve the dbt release to ${args.stack}` },
                    { parent: this },
                );
            }
        }
        this.registerOutputs({ pipelineId: this.pipeline.definitionId, variableGroupNames: this.variableGroupNames });
    }
}
