/**
 * CI-system settings fed by the stack: every variable a rendered pipeline job reads exists in the
 * CI system, in the scope that job sees, and nothing else is created. The set of resources comes
 * from plain job descriptions (the pipeline model), the values from Inputs (warehouse outputs).
 */
import * as pulumi from "@pulumi/pulumi";
import type { Job, SettingVariable } from "../pipelines/model";
import * as bb from "./bitbucket";
import { settingValue } from "./values";

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
                        { ...repo, environmentUuid: env.uuid, key: v.name, value: settingValue(component, args.values, v.name), secured: v.secret, adopt },
                        { parent: this },
                    );
                }
                this.variableNames[envName] = job.variables.map((v) => v.name);
            } else {
                for (const v of job.variables) {
                    new bb.RepositoryVariable(`${name}-${v.name}`, { ...repo, key: v.name, value: settingValue(component, args.values, v.name), secured: v.secret, adopt }, { parent: this });
                }
                this.variableNames.repository = [...(this.variableNames.repository ?? []), ...job.variables.map((v) => v.name)];
            }
        }
        this.registerOutputs({ variableNames: this.variableNames, environmentUuid: this.environment?.uuid });
    }
}

/** Azure DevOps settings live with their providers; re-exported here beside the Bitbucket ones. */
export { AzureDevopsCiSettings, AzureDevopsCiSettingsArgs } from "./azureDevops/settings";
