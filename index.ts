import * as pulumi from "@pulumi/pulumi";
import { DbtPlatform, loadStackConfig } from "./components";

// Validate everything first: a bad value stops the program before any resource is registered.
const config = loadStackConfig();
const secrets = new pulumi.Config("dbt-platform");

const platform = new DbtPlatform(`dbt-${config.stack}`, {
    config,
    warehouseAdminPassword: secrets.getSecret("warehouseAdminPassword"),
});

export const environment = config.environment;
export const ciSystem = config.ci.system;
export const warehouseRoles = platform.warehouse.roles;
export const dbtTargets = platform.warehouse.targets;
export const developerTargets = platform.warehouse.developerTargets;
export const profileEnvironment = platform.warehouse.profileEnvironment;
export const profilesYaml = platform.warehouse.profilesYaml;

// AWS side (aws.enabled): where CI finds state, docs, roles and credentials.
export const artifactsBucket = platform.artifacts?.bucketName;
export const latestManifestKey = platform.artifacts?.latestManifestKey;
export const docsUrl = platform.artifacts?.docsSite?.url;
export const docsDistributionId = platform.artifacts?.docsSite?.distributionId;
/** basic-auth docs access: the login to hand out (the password is a secret). */
export const docsBasicAuth = platform.artifacts?.docsSite?.basicAuthPassword
    ? pulumi.secret({ username: platform.artifacts.docsSite.basicAuthUsername, password: platform.artifacts.docsSite.basicAuthPassword })
    : undefined;
export const ciRoleArns = platform.ciIdentity?.roleArns;
export const credentialSecretNames = platform.credentials?.secretNames;

// Pipelines: the CI files for the dbt repository (`npm run render` writes them) and the settings they read.
export const pipelineFiles = platform.pipelineFiles;
export const pipelineVariables = platform.pipelineVariables;
