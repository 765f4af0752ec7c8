import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ArtifactStore, ArtifactStoreArgs, CiIdentity, CiIdentityArgs, WarehouseCredentials, WarehouseCredentialsArgs } from "./aws";
import { StackConfig } from "./config";
import { BitbucketCiSettings, jobSettings } from "./ci/settings";
import { AzureDevopsCiSettings } from "./ci/azureDevops/settings";
import { githubCiJobs, GithubCiSettings, GithubCiSettingsArgs } from "./ci/github";
import { Job, PipelineContext, renderPipelineFiles, SettingVariable, settingVariables } from "./pipelines";
import { botTargetName, PostgresTargetConnection, PostgresWarehouse, PostgresWarehouseArgs } from "./warehouse";

/** Arguments of DbtPlatform: a validated stack config. */
export interface DbtPlatformArgs {
    /** The stack's validated configuration (see loadStackConfig). */
    config: StackConfig;
    /** Admin password for the warehouse, when the stack sets one (a secret). */
    warehouseAdminPassword?: pulumi.Input<string>;
}

/** Values that flow from one child into the next; placeholders while validating. */
interface Wiring {
    targets: pulumi.Input<Record<string, PostgresTargetConnection>>;
    targetNames: Partial<Record<"ci" | "deploy" | "scheduler", string>>;
    bucketArn: pulumi.Input<string>;
    distributionArn?: pulumi.Input<string>;
    secretArns: Record<string, pulumi.Input<string>>;
}

/** The whole platform for one stack: composes every capability the config turns on. */
export class DbtPlatform extends pulumi.ComponentResource {
    /** Warehouse access (roles, logins, schemas, grants). */
    public readonly warehouse: PostgresWarehouse;
    /** dbt state bucket and, with features.docsSite, the docs site (aws.enabled only). */
    public readonly artifacts?: ArtifactStore;
    /** Warehouse credentials in Secrets Manager, one secret per dbt target (aws.enabled only). */
    public readonly credentials?: WarehouseCredentials;
    /** OIDC trust and least-privilege roles for the CI system (aws.enabled only). */
    public readonly ciIdentity?: CiIdentity;
    /** Rendered pipeline files for the stack's CI system, keyed by path in the dbt repository. */
    public readonly pipelineFiles: pulumi.Output<Record<string, string>>;
    /** Settings variables each pipeline job reads (what CiSettings must create). */
    public readonly pipelineVariables: pulumi.Output<Partial<Record<Job["id"], SettingVariable[]>>>;
    /** The CI system's settings (ci.manageSettings): variables, environments, pipeline, files. */
    public readonly ciSettings?: BitbucketCiSettings | GithubCiSettings | AzureDevopsCiSettings;

    constructor(name: string, args: DbtPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
        const { config } = args;
        // Every child checks its own arguments; run all those checks before registering anything,
        // so a value that only a later child rejects cannot leave the earlier ones half-applied.
        const whArgs = warehouseArgs(config, args.warehouseAdminPassword);
        PostgresWarehouse.validate(`${name}-warehouse`, whArgs);
        if (config.aws.enabled) {
            const placeholder = pulumi.output("");
            const wiring: Wiring = {
                targets: pulumi.output({}),
                targetNames: plannedTargets(whArgs),
                bucketArn: placeholder,
                distributionArn: config.features.docsSite ? placeholder : undefined,
                secretArns: Object.fromEntries(Object.values(plannedTargets(whArgs)).map((t) => [t, placeholder])),
            };
            ArtifactStore.validate(`${name}-artifacts`, artifactArgs(config));
            WarehouseCredentials.validate(`${name}-credentials`, credentialArgs(config, wiring));
            CiIdentity.validate(`${name}-ci`, ciArgs(config, wiring));
        }

        const settingsArgs = config.ci.manageSettings ? plannedSettings(config, plannedTargets(whArgs)) : undefined;
        if (settingsArgs && config.ci.system === "github") GithubCiSettings.validate(`${name}-ci-settings`, githubSettingsArgs(config, settingsArgs, pulumi.output({}), pulumi.output({})));

        super("dbt-platform:index:DbtPlatform", name, {}, opts);
        this.warehouse = new PostgresWarehouse(`${name}-warehouse`, whArgs, { parent: this });

        if (config.aws.enabled) {
            // One explicit provider: the region comes from our validated config, not aws:region.
            const provider = new aws.Provider(`${name}-aws`, { region: config.aws.region }, { parent: this });
            const awsOpts: pulumi.ComponentResourceOptions = { parent: this, providers: { aws: provider } };
            this.artifacts = new ArtifactStore(`${name}-artifacts`, artifactArgs(config), awsOpts);
            const partial: Omit<Wiring, "secretArns"> = {
                targets: this.warehouse.targets,
                targetNames: this.warehouse.targetNames,
                bucketArn: this.artifacts.bucketArn,
                distributionArn: this.artifacts.docsSite?.distributionArn,
            };
            this.credentials = new WarehouseCredentials(`${name}-credentials`, credentialArgs(config, { ...partial, secretArns: {} }), awsOpts);
            this.ciIdentity = new CiIdentity(`${name}-ci`, ciArgs(config, { ...partial, secretArns: this.credentials.secretArns }), awsOpts);
        }
        const rendered = pulumi
            .all([
                this.warehouse.profilesYaml,
                this.artifacts?.bucketName,
                this.artifacts?.docsSite?.distributionId,
                this.ciIdentity?.roleArns.pullRequest,
                this.ciIdentity?.roleArns.deploy,
            ])
            .apply(([profilesYaml, bucket, distributionId, pullRequestRoleArn, deployRoleArn]) =>
                renderPipelineFiles(pipelineContext(config, this.warehouse.targetNames, { bucket, distributionId, pullRequestRoleArn, deployRoleArn }), profilesYaml),
            );
        this.pipelineFiles = rendered.files;
        this.pipelineVariables = rendered.apply((r) => settingVariables(r.model));
        if (settingsArgs) this.ciSettings = this.settings(name, config, settingsArgs, rendered.files);
        this.registerOutputs({
            warehouse: this.warehouse,
            artifacts: this.artifacts,
            credentials: this.credentials,
            ciIdentity: this.ciIdentity,
            pipelineFiles: this.pipelineFiles,
            pipelineVariables: this.pipelineVariables,
            ciSettings: this.ciSettings,
        });
    }

    /** The CI system's settings. Which resources exist follows from plain config (the planned model); values flow in. */
    private settings(name: string, config: StackConfig, planned: ReturnType<typeof renderPipelineFiles>, files: pulumi.Output<Record<string, string>>) {
        const values = this.warehouse.profileEnvironment;
        const opts = { parent: this };
        const [owner, ...rest] = config.ci.repository.split("/");
        switch (config.ci.system) {
            case "bitbucket":
                return new BitbucketCiSettings(
                    `${name}-ci-settings`,
                    { workspace: owner, repoSlug: rest[0], jobs: jobSettings(planned.model.jobs), values, apiUrl: config.ci.apiUrl, adoptExisting: config.ci.adoptExisting },
                    opts,
                );
            case "github":
                return new GithubCiSettings(`${name}-ci-settings`, githubSettingsArgs(config, planned, files, values), opts);
            case "azure-devops": {
                const a = config.aws.enabled ? config.aws.azureDevops : undefined;
                // Only a connection CI does not share can be main-only (else CiIdentity warns).
                const deployOnly = a?.deployServiceConnection && a.deployServiceConnection !== a.serviceConnection ? a.deployServiceConnection : undefined;
                return new AzureDevopsCiSettings(
                    `${name}-ci-settings`,
                    {
                        organization: owner,
                        project: rest[0],
                        stack: config.stack,
                        jobs: jobSettings(planned.model.jobs),
                        values,
                        profilesYaml: this.warehouse.profilesYaml,
                        repositoryId: config.ci.azureRepositoryId!,
                        repositoryName: rest[1],
                        defaultBranch: config.ci.mainBranch,
                        approverIds: config.ci.approvers,
                        apiUrl: config.ci.apiUrl,
                        deployServiceConnection: deployOnly,
                    },
                    opts,
                );
            }
        }
    }
}

function warehouseArgs(config: StackConfig, adminPassword: pulumi.Input<string> | undefined): PostgresWarehouseArgs {
    const wh = config.warehouse;
    return {
        connection: {
            host: wh.connection.host,
            port: wh.connection.port,
            username: wh.connection.username,
            password: adminPassword,
            sslmode: wh.connection.sslmode,
            superuser: wh.connection.superuser,
        },
        database: wh.connection.database,
        createDatabase: wh.createDatabase,
        devRole: wh.roles.dev,
        prodRole: wh.roles.prod,
        users: (["ci", "deploy", "scheduler"] as const).flatMap((duty) => {
            const u = wh.users.find((x) => x.duty === duty);
            return u ? [{ name: u.name, duty }] : [];
        }),
        roleMasking: wh.roleMasking,
        ciSchema: wh.schemas.ci,
        productionSchemas: wh.schemas.production,
        pullRequestPrefix: wh.schemas.pullRequestPrefix,
        developers: wh.developers,
        revokePublicConnect: wh.revokePublicConnect,
        adoptRetained: wh.adoptRetained,
        dbtSslmode: wh.connection.sslmode,
        dbtSslrootcert: wh.connection.sslrootcert,
        profile: config.dbt.profile,
        threads: config.dbt.threads,
        deployTarget: config.environment.kind === "release" ? config.stack : "prod",
    };
}

/** The dbt target per bot duty, as PostgresWarehouse will name them. */
function plannedTargets(args: PostgresWarehouseArgs): Partial<Record<"ci" | "deploy" | "scheduler", string>> {
    return Object.fromEntries(args.users.map((u) => [u.duty, botTargetName(u.duty, args.deployTarget)]));
}

function artifactArgs(config: StackConfig): ArtifactStoreArgs {
    const a = config.aws;
    return {
        bucketName: a.artifacts.bucketName,
        retentionDays: a.artifacts.retentionDays,
        kmsKeyArn: a.artifacts.kmsKeyArn,
        docs: config.features.docsSite
            ? {
                  domain: a.docs.domain,
                  hostedZoneId: a.docs.hostedZoneId,
                  // CIDRs belong to the allow-list mode only; the site rejects them elsewhere.
                  access: a.docs.access === "ip-allowlist" ? { mode: a.docs.access, allowedCidrs: a.docs.allowedCidrs } : { mode: a.docs.access },
              }
            : undefined,
        tags: { Project: "dbt-platform", Stack: config.stack, ManagedBy: "pulumi" },
    };
}

function credentialArgs(config: StackConfig, w: Wiring): WarehouseCredentialsArgs {
    return {
        namePrefix: `dbt/${config.stack}`,
        targets: w.targets,
        targetNames: Object.values(w.targetNames).filter((t): t is string => t !== undefined),
        kmsKeyId: config.aws.artifacts.kmsKeyArn,
    };
}

function ciArgs(config: StackConfig, w: Wiring): CiIdentityArgs {
    const a = config.aws;
    const [owner, project] = config.ci.repository.split("/");
    const secret = (duty: "ci" | "deploy" | "scheduler") => {
        const t = w.targetNames[duty];
        return t ? w.secretArns[t] : undefined;
    };
    return {
        system: config.ci.system,
        github:
            config.ci.system === "github"
                ? { repository: config.ci.repository, mainBranch: config.ci.mainBranch, deployEnvironment: deploymentEnvironment(config) }
                : undefined,
        bitbucket: config.ci.system === "bitbucket" && a.bitbucket ? { workspace: owner, ...a.bitbucket } : undefined,
        azureDevops: config.ci.system === "azure-devops" && a.azureDevops ? { organization: owner, project, ...a.azureDevops } : undefined,
        oidcProviderArn: a.oidcProviderArn,
        artifactsBucketArn: w.bucketArn,
        distributionArn: w.distributionArn,
        credentialSecretArns: {
            ci: secret("ci"),
            deploy: secret("deploy"),
            // Scheduled runs (ECS tasks) get a role only when the stack schedules runs.
            scheduler: config.features.scheduledRuns ? secret("scheduler") : undefined,
        },
        kmsKeyArn: a.artifacts.kmsKeyArn,
    };
}

/** The deploy job's environment: it must be the one the deploy role's OIDC trust names. */
function deploymentEnvironment(config: StackConfig): string | undefined {
    const stage = config.environment.kind === "release" ? config.stack : "production";
    switch (config.ci.system) {
        case "github":
            // Always an environment the program creates: its secrets are the only place production credentials
            // live, it admits main only, and the deploy role trusts its OIDC subject (see ciArgs).
            return config.aws.github?.deployEnvironment ?? stage;
        default:
            return stage;
    }
}

/** Plain pipeline inputs from the config and the resolved AWS outputs. */
export function pipelineContext(
    config: StackConfig,
    targetNames: Partial<Record<"ci" | "deploy" | "scheduler", string>>,
    aws: { bucket?: string; distributionId?: string; pullRequestRoleArn?: string; deployRoleArn?: string },
): PipelineContext {
    const a = config.aws;
    return {
        stack: config.stack,
        system: config.ci.system,
        repository: config.ci.repository,
        mainBranch: config.ci.mainBranch,
        dbt: { profile: config.dbt.profile, version: config.dbt.version, adapterVersion: config.dbt.adapterVersion, pythonVersion: config.dbt.pythonVersion, projectDir: config.dbt.projectDir, manifestMaxAgeHours: config.dbt.manifestMaxAgeHours, fullBuildSchedule: config.dbt.fullBuildSchedule },
        targets: { ci: targetNames.ci, deploy: targetNames.deploy ?? botTargetName("deploy", config.environment.kind === "release" ? config.stack : "prod") },
        pullRequestSchemaPrefix: config.warehouse.schemas.pullRequestPrefix,
        environment: config.environment,
        pins: config.ci.pins,
        aws: a.enabled
            ? {
                  region: a.region,
                  bucket: aws.bucket ?? "",
                  distributionId: aws.distributionId,
                  pullRequestRoleArn: aws.pullRequestRoleArn,
                  deployRoleArn: aws.deployRoleArn ?? "",
                  azureServiceConnection: a.azureDevops?.serviceConnection,
                  azureDeployServiceConnection: a.azureDevops?.deployServiceConnection,
              }
            : undefined,
        projectEvaluator: config.features.projectEvaluator,
        deploymentEnvironment: deploymentEnvironment(config),
    };
}

/** Jobs, variable names and file paths do not depend on AWS outputs: plan them with stand-ins. */
function plannedSettings(config: StackConfig, targetNames: Partial<Record<"ci" | "deploy" | "scheduler", string>>) {
    const standIn = "planned";
    return renderPipelineFiles(pipelineContext(config, targetNames, { bucket: standIn, distributionId: standIn, pullRequestRoleArn: standIn, deployRoleArn: standIn }), "");
}

function githubSettingsArgs(
    config: StackConfig,
    planned: ReturnType<typeof renderPipelineFiles>,
    files: pulumi.Input<Record<string, string>>,
    values: pulumi.Input<Record<string, string>>,
): GithubCiSettingsArgs {
    return {
        repository: config.ci.repository,
        mainBranch: config.ci.mainBranch,
        filePaths: Object.keys(planned.files),
        files,
        jobs: githubCiJobs(planned.model),
        values,
        reviewers: config.ci.approvers.length ? { users: config.ci.approvers.map(Number) } : undefined,
        apiUrl: config.ci.apiUrl,
    };
}
