/**
 * Bitbucket Cloud settings that a rendered bitbucket-pipelines.yml relies on, as Pulumi dynamic
 * resources over REST 2.0 (type tokens pulumi-nodejs:dynamic/bitbucket:<Type>):
 *
 * - PipelinesConfig: "Enable Pipelines" for the repository.
 * - RepositoryVariable: repository variables (Secured or not).
 * - DeploymentEnvironment: Test / Staging / Production environments; outputs `uuid`.
 * - DeploymentVariable: variables of one environment (`environmentUuid` from DeploymentEnvironment).
 *
 * Credentials: a bearer token (repository or workspace access token, or an API token) from
 * BITBUCKET_TOKEN, else the secret stack config key dbt-platform:bitbucketToken. It is read inside
 * every provider call and never appears in inputs, outputs or the serialised providers.
 */
import type * as pulumi from "@pulumi/pulumi";
import { ClientTuning } from "./common";
import { environmentProvider, environmentProviderObject } from "./environment";
import { pipelinesConfigProvider, pipelinesConfigProviderObject } from "./pipelinesConfig";
import { variableProvider, variableProviders } from "./variables";

export * from "./common";
export * from "./environment";
export * from "./pipelinesConfig";
export * from "./variables";

/** The four Bitbucket providers. */
export interface BitbucketProviders {
    repositoryVariable: pulumi.dynamic.ResourceProvider;
    deploymentVariable: pulumi.dynamic.ResourceProvider;
    deploymentEnvironment: pulumi.dynamic.ResourceProvider;
    pipelinesConfig: pulumi.dynamic.ResourceProvider;
}

/** Fresh provider objects with retry tuning (tests call their methods directly). */
export function bitbucketProviders(tuning?: ClientTuning): BitbucketProviders {
    return {
        repositoryVariable: variableProvider("repository", tuning),
        deploymentVariable: variableProvider("deployment", tuning),
        deploymentEnvironment: environmentProvider(tuning),
        pipelinesConfig: pipelinesConfigProvider(tuning),
    };
}

/** The provider objects the resource classes register (what Pulumi serialises as `__provider`). */
export const bitbucketProviderObjects: BitbucketProviders = {
    repositoryVariable: variableProviders.repository,
    deploymentVariable: variableProviders.deployment,
    deploymentEnvironment: environmentProviderObject,
    pipelinesConfig: pipelinesConfigProviderObject,
};
