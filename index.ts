/**
 * The program `pulumi up` runs on every stack (Pulumi.yaml `main`). The library other projects install is
 * components/, built to dist/ (package.json `exports`); the two entries are kept apart on purpose.
 */
import * as pulumi from "@pulumi/pulumi";
import { DbtPlatform, loadStackConfig, loadWarehouseSecrets, PostgresWarehouse, RedshiftWarehouse } from "./components";

// Validate everything first: a bad value stops the program before any resource is registered.
const config = loadStackConfig();

// The admin credential of the stack's warehouse kind (warehouseAdminPassword, snowflakePrivateKey or redshiftAdminPassword).
const platform = new DbtPlatform(`dbt-${config.stack}`, { config, warehouseSecrets: loadWarehouseSecrets(config) });

const docsSite = platform.artifacts?.docsSite;
// Group roles are Postgres's, developer logins Postgres's and Redshift's; every warehouse publishes its plan through the contract.
const postgres = platform.warehouse instanceof PostgresWarehouse ? platform.warehouse : undefined;
const redshift = platform.warehouse instanceof RedshiftWarehouse ? platform.warehouse : undefined;

/** Drops the keys this stack has no value for: an undefined export is no output, only a warning on every preview. */
function defined<T extends Record<string, unknown>>(outputs: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
    return Object.fromEntries(Object.entries(outputs).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

// The module's exports are the stack outputs.
export = defined({
    environment: config.environment,
    ciSystem: config.ci.system,
    warehouseRoles: postgres?.roles,
    dbtTargets: platform.warehouse.targets,
    developerTargets: postgres?.developerTargets ?? redshift?.developerTargets,
    profileEnvironment: platform.warehouse.profileEnvironment,
    profilesYaml: platform.warehouse.profilesYaml,

    // AWS side (aws.enabled): where CI finds state, docs, roles and credentials.
    artifactsBucket: platform.artifacts?.bucketName,
    latestManifestKey: platform.artifacts?.latestManifestKey,
    docsUrl: docsSite?.url,
    docsDistributionId: docsSite?.distributionId,
    /** basic-auth docs access: the login to hand out (the password is a secret). */
    docsBasicAuth: docsSite?.basicAuthPassword
        ? pulumi.secret({ username: docsSite.basicAuthUsername, password: docsSite.basicAuthPassword })
        : undefined,
    ciRoleArns: platform.ciIdentity?.roleArns,
    credentialSecretNames: platform.credentials?.secretNames,

    // Pipelines: the CI files for the dbt repository (`npm run render` writes them) and the settings they read.
    pipelineFiles: platform.pipelineFiles,
    pipelineVariables: platform.pipelineVariables,
});
