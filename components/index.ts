/** dbt-platform: Pulumi components for running dbt Core in production. */
export * from "./aws";
export * from "./config";
export * from "./platform";
export * from "./warehouse";
export * from "./pipelines";
export * from "./ci/settings";
export * as bitbucket from "./ci/bitbucket";
export * as azureDevops from "./ci/azureDevops";
export * as github from "./ci/github";
