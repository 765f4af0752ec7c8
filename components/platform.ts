import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ArtifactStore, ArtifactStoreArgs, CiIdentity, CiIdentityArgs, ScheduledRuns, ScheduledRunsArgs, WarehouseCredentials, WarehouseCredentialsArgs } from "./aws";
import { DOCS_PREVIEW_PREFIX } from "./aws/artifactStore";
import { RunnerImageSpec, runnerImageTag } from "./aws/scheduled/runner";
import { AWSCLI_VERSION } from "./pipelines/versions";
import { AdapterPackage, TargetEnvVar } from "./warehouse";
import { StackConfig } from "./config";
import { BitbucketCiSettings, jobSettings } from "./ci/settings";
import { AzureDevopsCiSettings } from "./ci/azureDevops/settings";
import { githubCiJobs, GithubCiSettings, GithubCiSettingsArgs } from "./ci/github";
import { fileVariablesBase64, Job, localLoopContext, localLoopProblems, PipelineContext, renderPipelineFiles, SettingVariable, settingVariables } from "./pipelines";
import { createWarehouse, deployTargetOf, PipelineWarehouse, pipelineWarehouse, validateWarehouse, Warehouse, WarehouseSecrets } from "./warehouse";
import { plannedPipelineWarehouse } from "./warehouse/planned";

/** Arguments of DbtPlatform: a validated stack config. */
export interface DbtPlatformArgs {
    /** The stack's validated configuration (see loadStackConfig). */
    config: StackConfig;
    /** The warehouse admin's credential for the stack's warehouse kind (secrets; see loadWarehouseSecrets). */
    warehouseSecrets?: WarehouseSecrets;
    /** Admin password for a Postgres warehouse (a secret); shorthand for `warehouseSecrets.postgresAdminPassword`. */
    warehouseAdminPassword?: pulumi.Input<string>;
}

/** Values that flow from one child into the next; placeholders while validating. */
interface Wiring {
    /** The warehouse's credential JSON per target (contract `credentialSecrets`). */
    secrets: pulumi.Input<Record<string, string>>;
    credentialFields: readonly string[];
    targetNames: Partial<Record<"ci" | "deploy" | "scheduler", string>>;
    bucketArn: pulumi.Input<string>;
    distributionArn?: pulumi.Input<string>;
    secretArns: Record<string, pulumi.Input<string>>;
    /** ScheduledRuns' project prefix and image repository (features.scheduledRuns): the deploy role publishes and pushes there. */
    scheduled?: { projectPrefix: string; repositoryArn: pulumi.Input<string> };
}

/** The whole platform for one stack: composes every capability the config turns on. */
export class DbtPlatform extends pulumi.ComponentResource {
    /** Warehouse access (roles, logins, schemas, grants), as the warehouse contract describes it. */
    public readonly warehouse: Warehouse;
    /** dbt state bucket and, with features.docsSite, the docs site (aws.enabled only). */
    public readonly artifacts?: ArtifactStore;
    /** Warehouse credentials in Secrets Manager, one secret per dbt target (aws.enabled only). */
    public readonly credentials?: WarehouseCredentials;
    /** OIDC trust and least-privilege roles for the CI system (aws.enabled only). */
    public readonly ciIdentity?: CiIdentity;
    /** Scheduled production runs with alerting (features.scheduledRuns). */
    public readonly scheduledRuns?: ScheduledRuns;
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
        const secrets: WarehouseSecrets = { ...args.warehouseSecrets };
        if (args.warehouseAdminPassword !== undefined) secrets.postgresAdminPassword ??= args.warehouseAdminPassword;
        validateWarehouse(`${name}-warehouse`, config, secrets);
        // What the pipelines and CI settings read of the warehouse, from plain config (nothing registered yet).
        const planned = plannedPipelineWarehouse(`${name}-warehouse`, config);
        if (config.aws.enabled) {
            const placeholder = pulumi.output("");
            const wiring: Wiring = {
                secrets: pulumi.output({}),
                credentialFields: planned.credentialFields,
                targetNames: planned.targetNames,
                bucketArn: placeholder,
                distributionArn: config.features.docsSite ? placeholder : undefined,
                secretArns: Object.fromEntries(Object.values(planned.targetNames).map((t) => [t, placeholder])),
            };
            ArtifactStore.validate(`${name}-artifacts`, artifactArgs(config));
            WarehouseCredentials.validate(`${name}-credentials`, credentialArgs(config, wiring));
            if (config.scheduledRuns) {
                const target = planned.targetNames.scheduler!;
                const credentialEnv = schedulerCredentialEnv(`${name}-scheduled`, planned.targetEnv[target]);
                ScheduledRuns.validate(`${name}-scheduled`, scheduledArgs(config, { ...wiring, target, credentialEnv, adapter: planned.adapter, bucketName: placeholder }));
                wiring.scheduled = { projectPrefix: SCHEDULED_PROJECT_PREFIX, repositoryArn: placeholder };
            }
            CiIdentity.validate(`${name}-ci`, ciArgs(config, wiring));
            // The developers' Makefile embeds the bucket name: the configured one, or the shape Pulumi auto-names it
            // (`<name>-artifacts-bucket-<7 hex>`), is checked now rather than when the real name resolves.
            const loop = localLoopContext(pipelineContext(config, planned, { bucket: config.aws.artifacts.bucketName ?? `${name}-artifacts-bucket-0000000` }));
            const loopProblems = loop ? localLoopProblems(loop) : [];
            if (loopProblems.length) throw new Error(`${name}: the developers' local loop (Makefile) cannot be rendered:\n  - ${loopProblems.join("\n  - ")}`);
        }

        const settingsArgs = config.ci.manageSettings ? plannedSettings(config, planned) : undefined;
        if (settingsArgs && config.ci.system === "github") GithubCiSettings.validate(`${name}-ci-settings`, githubSettingsArgs(config, settingsArgs, pulumi.output({}), pulumi.output({})));

        super("dbt-platform:index:DbtPlatform", name, {}, opts);
        const warehouse = createWarehouse(`${name}-warehouse`, config, secrets, { parent: this });
        this.warehouse = warehouse;

        if (config.aws.enabled) {
            // One explicit provider: the region comes from our validated config, not aws:region.
            const provider = new aws.Provider(`${name}-aws`, { region: config.aws.region }, { parent: this });
            const awsOpts: pulumi.ComponentResourceOptions = { parent: this, providers: { aws: provider } };
            this.artifacts = new ArtifactStore(`${name}-artifacts`, artifactArgs(config), awsOpts);
            const partial: Omit<Wiring, "secretArns"> = {
                secrets: warehouse.credentialSecrets,
                credentialFields: warehouse.credentialFields,
                targetNames: warehouse.targetNames,
                bucketArn: this.artifacts.bucketArn,
                distributionArn: this.artifacts.docsSite?.distributionArn,
            };
            this.credentials = new WarehouseCredentials(`${name}-credentials`, credentialArgs(config, { ...partial, secretArns: {} }), awsOpts);
            // Scheduled runs before CiIdentity: the deploy role pushes to the runner's repository.
            if (config.scheduledRuns) {
                const target = this.warehouse.targetNames.scheduler!;
                this.scheduledRuns = new ScheduledRuns(
                    `${name}-scheduled`,
                    scheduledArgs(config, {
                        ...partial,
                        secretArns: this.credentials.secretArns,
                        target,
                        credentialEnv: schedulerCredentialEnv(`${name}-scheduled`, this.warehouse.targetEnv[target]),
                        adapter: this.warehouse.adapter,
                        bucketName: this.artifacts.bucketName,
                    }),
                    awsOpts,
                );
            }
            const scheduled = this.scheduledRuns ? { projectPrefix: this.scheduledRuns.projectPrefix, repositoryArn: this.scheduledRuns.repository.arn } : undefined;
            this.ciIdentity = new CiIdentity(`${name}-ci`, ciArgs(config, { ...partial, secretArns: this.credentials.secretArns, scheduled }), awsOpts);
        }
        const rendered = pulumi
            .all([
                this.warehouse.profilesYaml,
                this.artifacts?.bucketName,
                this.artifacts?.docsSite?.distributionId,
                this.ciIdentity?.roleArns.pullRequest,
                this.ciIdentity?.roleArns.deploy,
                this.scheduledRuns?.repositoryUrl,
                this.scheduledRuns?.imageTag,
                this.artifacts?.docsSite?.url,
            ])
            .apply(([profilesYaml, bucket, distributionId, pullRequestRoleArn, deployRoleArn, runnerRepositoryUrl, runnerImageTag, docsUrl]) =>
                renderPipelineFiles(
                    pipelineContext(config, pipelineWarehouse(warehouse), { bucket, distributionId, pullRequestRoleArn, deployRoleArn, runnerRepositoryUrl, runnerImageTag, docsUrl }),
                    profilesYaml,
                ),
            );
        this.pipelineFiles = rendered.files;
        this.pipelineVariables = rendered.apply((r) => settingVariables(r.model));
        if (settingsArgs) this.ciSettings = this.settings(name, config, settingsArgs, rendered.files);
        this.registerOutputs({
            warehouse: this.warehouse,
            artifacts: this.artifacts,
            credentials: this.credentials,
            ciIdentity: this.ciIdentity,
            scheduledRuns: this.scheduledRuns,
            pipelineFiles: this.pipelineFiles,
            pipelineVariables: this.pipelineVariables,
            ciSettings: this.ciSettings,
        });
    }

    /** The CI system's settings. Which resources exist follows from plain config (the planned model); values flow in. */
    private settings(name: string, config: StackConfig, planned: ReturnType<typeof renderPipelineFiles>, files: pulumi.Output<Record<string, string>>) {
        const values = settingValues(this.warehouse, config);
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

/**
 * The values CiSettings stores: the warehouse's profileEnvironment, with file-valued variables (key
 * files) base64-encoded where the rendered jobs decode them (secured variables cannot carry newlines).
 */
function settingValues(warehouse: Warehouse, config: StackConfig): pulumi.Output<Record<string, string>> {
    const fileVars = new Set(Object.values(warehouse.targetEnv).flatMap((vars) => vars.filter((v) => v.file).map((v) => v.name)));
    if (fileVars.size === 0 || !fileVariablesBase64(config.ci.system)) return warehouse.profileEnvironment;
    return warehouse.profileEnvironment.apply((env) =>
        Object.fromEntries(Object.entries(env).map(([k, v]) => [k, fileVars.has(k) ? Buffer.from(v, "utf8").toString("base64") : v])),
    );
}

/** Secrets Manager name of `target`'s credential secret (WarehouseCredentials' naming). */
function credentialSecretName(config: StackConfig, target: string): string {
    return `${credentialPrefix(config)}/${target}`;
}

function credentialPrefix(config: StackConfig): string {
    return `dbt/${config.stack}`;
}

function artifactArgs(config: StackConfig): ArtifactStoreArgs {
    const a = config.aws;
    return {
        bucketName: a.artifacts.bucketName,
        retentionDays: a.artifacts.retentionDays,
        kmsKeyArn: a.artifacts.kmsKeyArn,
        ...(config.features.docsSite ? { docsPreviewRetentionDays: a.docs.previewRetentionDays } : {}),
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
        namePrefix: credentialPrefix(config),
        secrets: w.secrets,
        fields: w.credentialFields,
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
        // The PR job publishes its docs preview under docs/pr/ (features.docsSite); on GitHub it also removes it when the PR closes.
        ...(config.features.docsSite ? { docsPreviewPrefix: DOCS_PREVIEW_PREFIX, ...(config.ci.system === "github" ? { docsPreviewCleanup: true } : {}) } : {}),
        // No scheduler role here: ScheduledRuns' own execution and task roles read the scheduler's secret.
        credentialSecretArns: { ci: secret("ci"), deploy: secret("deploy") },
        kmsKeyArn: a.artifacts.kmsKeyArn,
        scheduledRuns: w.scheduled,
    };
}

/** Where the release publishes projects for the scheduled runs (ScheduledRuns' default). */
const SCHEDULED_PROJECT_PREFIX = "projects/";

/** What the runner image pins: the stack's dbt and Python, the warehouse's adapter, the pipelines' awscli. */
function runnerImage(config: StackConfig, adapter: Pick<AdapterPackage, "package" | "version">): RunnerImageSpec {
    return { pythonVersion: config.dbt.pythonVersion, dbtVersion: config.dbt.version, adapterPackage: adapter.package, adapterVersion: adapter.version, awscliVersion: AWSCLI_VERSION };
}

/**
 * The scheduler target's variables the task gets from its credential secret (`<arn>:<field>::`): every
 * variable profiles.yml reads, keyed by the secret's JSON key (the warehouse contract's field).
 */
function schedulerCredentialEnv(name: string, vars: TargetEnvVar[] | undefined): Record<string, string> {
    if (!vars || vars.length === 0) throw new Error(`ScheduledRuns ${name}: the warehouse has no scheduler target (warehouse.users needs a user with duty scheduler)`);
    const files = vars.filter((v) => v.file);
    // ECS injects secrets as variables only; a key file would need the entrypoint to write it.
    if (files.length > 0) throw new Error(`ScheduledRuns ${name}: the scheduler target reads ${files.map((v) => v.name).join(", ")} from a file, which the runner does not write yet`);
    return Object.fromEntries(vars.filter((v) => !v.perRun).map((v) => [v.name, v.field]));
}

/** ScheduledRuns from the stack's `scheduledRuns` section and the resources that own each value. */
function scheduledArgs(
    config: StackConfig,
    w: Wiring & { target: string; credentialEnv: Record<string, string>; adapter: Pick<AdapterPackage, "package" | "version">; bucketName: pulumi.Input<string> },
): ScheduledRunsArgs {
    const s = config.scheduledRuns!;
    return {
        region: config.aws.region,
        artifactsBucketName: w.bucketName,
        artifactsBucketArn: w.bucketArn,
        artifactsKmsKeyArn: config.aws.artifacts.kmsKeyArn,
        projectPrefix: SCHEDULED_PROJECT_PREFIX,
        // No pinned commit: each run follows projects/current, which the deploy job's release steps move.
        image: runnerImage(config, w.adapter),
        imageRetentionCount: s.imageRetentionCount,
        credentialSecretArn: w.secretArns[w.target],
        credentialEnv: w.credentialEnv,
        secretsKmsKeyArn: config.aws.artifacts.kmsKeyArn,
        dbtTarget: w.target,
        cpu: s.cpu,
        memory: s.memory,
        logRetentionDays: s.logRetentionDays,
        schedules: s.schedules.map((x) => ({ name: x.name, expression: x.cron, timezone: x.timezone, maximumRetryAttempts: x.maximumRetryAttempts, maximumEventAgeSeconds: x.maximumEventAgeSeconds })),
        network: { subnetIds: s.network.subnetIds, securityGroupIds: s.network.securityGroupIds, assignPublicIp: s.network.assignPublicIp },
        runIntervalMinutes: s.runIntervalMinutes,
        heartbeatGraceMinutes: s.heartbeatGraceMinutes,
        subscriptions: s.alerts,
        freshOnly: s.freshOnly ? { fullBuildEvery: s.fullBuildEvery } : undefined,
        tags: { Project: "dbt-platform", Stack: config.stack, ManagedBy: "pulumi" },
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

/** The dbt target the developers' Makefile builds with (their own login and schema in their profiles.yml). */
export const LOCAL_LOOP_TARGET = "dev";

/**
 * Plain pipeline inputs from the config, the warehouse (contract; undefined: the warehouse the
 * config plans) and the resolved AWS outputs.
 */
export function pipelineContext(
    config: StackConfig,
    warehouse: PipelineWarehouse | undefined,
    aws: { bucket?: string; distributionId?: string; pullRequestRoleArn?: string; deployRoleArn?: string; runnerRepositoryUrl?: string; runnerImageTag?: string; docsUrl?: string },
): PipelineContext {
    const a = config.aws;
    const wh = warehouse ?? plannedPipelineWarehouse("planned", config);
    const targetNames = wh.targetNames;
    const deployTarget = targetNames.deploy ?? deployTargetOf(config);
    // Key-pair credentials reach GitHub jobs as seed 002 does: from Secrets Manager with the job's role.
    const fromSecretsManager = a.enabled && config.ci.system === "github" && Object.values(wh.targetEnv).some((vars) => vars.some((v) => v.file));
    // Scheduled runs: the deploy job pushes the image ScheduledRuns' task definition names and publishes the project.
    const image = runnerImage(config, wh.adapter);
    const scheduled =
        a.enabled && config.scheduledRuns
            ? { repositoryUrl: aws.runnerRepositoryUrl ?? "", imageTag: aws.runnerImageTag ?? runnerImageTag(image), image, projectPrefix: SCHEDULED_PROJECT_PREFIX }
            : undefined;
    return {
        stack: config.stack,
        system: config.ci.system,
        repository: config.ci.repository,
        mainBranch: config.ci.mainBranch,
        dbt: { profile: config.dbt.profile, version: config.dbt.version, pythonVersion: config.dbt.pythonVersion, projectDir: config.dbt.projectDir, manifestMaxAgeHours: config.dbt.manifestMaxAgeHours, fullBuildSchedule: config.dbt.fullBuildSchedule },
        targets: { ci: targetNames.ci, deploy: deployTarget },
        warehouse: wh,
        ...(fromSecretsManager
            ? { credentialSecretNames: Object.fromEntries(Object.keys(wh.targetEnv).map((t) => [t, credentialSecretName(config, t)])) }
            : {}),
        environment: config.environment,
        pins: config.ci.pins,
        aws: a.enabled
            ? {
                  region: a.region,
                  bucket: aws.bucket ?? "",
                  distributionId: aws.distributionId,
                  ...(aws.docsUrl ? { docsUrl: aws.docsUrl } : {}),
                  pullRequestRoleArn: aws.pullRequestRoleArn,
                  deployRoleArn: aws.deployRoleArn ?? "",
                  azureServiceConnection: a.azureDevops?.serviceConnection,
                  azureDeployServiceConnection: a.azureDevops?.deployServiceConnection,
              }
            : undefined,
        projectEvaluator: config.features.projectEvaluator,
        // Developers fetch the production manifest from the bucket with their own AWS profile (localLoop.ts).
        ...(a.enabled && "developers" in config.warehouse && config.warehouse.developers.length > 0 ? { localLoop: { target: LOCAL_LOOP_TARGET } } : {}),
        deploymentEnvironment: deploymentEnvironment(config),
        ...(scheduled ? { scheduled } : {}),
    };
}

/** Jobs, variable names and file paths do not depend on AWS outputs: plan them with stand-ins. */
function plannedSettings(config: StackConfig, warehouse: PipelineWarehouse) {
    const standIn = "planned";
    return renderPipelineFiles(
        pipelineContext(config, warehouse, { bucket: standIn, distributionId: standIn, pullRequestRoleArn: standIn, deployRoleArn: standIn, runnerRepositoryUrl: `${standIn}.invalid/${standIn}` }),
        "",
    );
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
