/** dbt-platform: Pulumi components for running dbt Core in production. */
export * from "./aws";
export * from "./config";
export * from "./platform";
export * from "./warehouse";
export * from "./pipelines";
