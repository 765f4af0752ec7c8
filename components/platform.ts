import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ArtifactStore, CiIdentity, WarehouseCredentials } from "./aws";
import { StackConfig } from "./config";
import { PostgresWarehouse } from "./warehouse";

/** Arguments of DbtPlatform: a validated stack config. */
export interface DbtPlatformArgs {
    /** The stack's validated configuration (see loadStackConfig). */
    config: StackConfig;
    /** Admin password for the warehouse, when the stack sets one (a secret). */
    warehouseAdminPassword?: pulumi.Input<string>;
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

    constructor(name: string, args: DbtPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dbt-platform:index:DbtPlatform", name, {}, opts);
        const { config } = args;
        const wh = config.warehouse;
        const byDuty = (duty: string) => wh.users.find((u) => u.duty === duty);
        this.warehouse = new PostgresWarehouse(
            `${name}-warehouse`,
            {
                connection: {
                    host: wh.connection.host,
                    port: wh.connection.port,
                    username: wh.connection.username,
                    password: args.warehouseAdminPassword,
                    sslmode: wh.connection.sslmode,
                    superuser: wh.connection.superuser,
                },
                database: wh.connection.database,
                createDatabase: wh.createDatabase,
                devRole: wh.roles.dev,
                prodRole: wh.roles.prod,
                users: (["ci", "deploy", "scheduler"] as const).flatMap((duty) => {
                    const u = byDuty(duty);
                    return u ? [{ name: u.name, duty }] : [];
                }),
                roleMasking: wh.roleMasking,
                ciSchema: wh.schemas.ci,
                productionSchemas: wh.schemas.production,
                developers: wh.developers,
                revokePublicConnect: wh.revokePublicConnect,
                dbtSslmode: wh.connection.sslmode,
                profile: config.dbt.profile,
                threads: config.dbt.threads,
                deployTarget: config.environment.kind === "release" ? config.stack : "prod",
            },
            { parent: this },
        );

        if (config.aws.enabled) {
            const a = config.aws;
            // One explicit provider: the stack's region comes from our validated config, not aws:region.
            const provider = new aws.Provider(`${name}-aws`, { region: a.region }, { parent: this });
            const awsOpts: pulumi.ComponentResourceOptions = { parent: this, providers: { aws: provider } };
            const tags = { Project: "dbt-platform", Stack: config.stack, ManagedBy: "pulumi" };
            this.artifacts = new ArtifactStore(
                `${name}-artifacts`,
                {
                    bucketName: a.artifacts.bucketName,
                    retentionDays: a.artifacts.retentionDays,
                    kmsKeyArn: a.artifacts.kmsKeyArn,
                    docs: config.features.docsSite
                        ? {
                              domain: a.docs.domain,
                              hostedZoneId: a.docs.hostedZoneId,
                              access: { mode: a.docs.access, allowedCidrs: a.docs.allowedCidrs },
                          }
                        : undefined,
                    tags,
                },
                awsOpts,
            );
            const targets = this.warehouse.targetNames;
            this.credentials = new WarehouseCredentials(
                `${name}-credentials`,
                {
                    namePrefix: `dbt/${config.stack}`,
                    targets: this.warehouse.targets,
                    targetNames: Object.values(targets).filter((t): t is string => t !== undefined),
                    kmsKeyId: a.artifacts.kmsKeyArn,
                },
                awsOpts,
            );
            const secret = (duty: "ci" | "deploy" | "scheduler") => {
                const t = targets[duty];
                return t ? this.credentials!.secretArns[t] : undefined;
            };
            const [owner, second] = config.ci.repository.split("/");
            this.ciIdentity = new CiIdentity(
                `${name}-ci`,
                {
                    system: config.ci.system,
                    github:
                        config.ci.system === "github"
                            ? { repository: config.ci.repository, mainBranch: config.ci.mainBranch, deployEnvironment: a.github?.deployEnvironment }
                            : undefined,
                    bitbucket: config.ci.system === "bitbucket" && a.bitbucket ? { workspace: owner, ...a.bitbucket } : undefined,
                    azureDevops:
                        config.ci.system === "azure-devops" && a.azureDevops
                            ? { organization: owner, project: second, ...a.azureDevops }
                            : undefined,
                    oidcProviderArn: a.oidcProviderArn,
                    artifactsBucketArn: this.artifacts.bucketArn,
                    artifactsPrefix: this.artifacts.artifactsPrefix,
                    docsPrefix: this.artifacts.docsPrefix,
                    distributionArn: this.artifacts.docsSite?.distributionArn,
                    credentialSecretArns: {
                        ci: secret("ci"),
                        deploy: secret("deploy"),
                        // Scheduled runs (ECS tasks) get a role only when the stack schedules runs.
                        scheduler: config.features.scheduledRuns ? secret("scheduler") : undefined,
                    },
                    kmsKeyArn: a.artifacts.kmsKeyArn,
                },
                awsOpts,
            );
        }
        this.registerOutputs({ warehouse: this.warehouse, artifacts: this.artifacts, credentials: this.credentials, ciIdentity: this.ciIdentity });
    }
}
