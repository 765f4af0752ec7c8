/**
 * GitHub CI settings as code: everything the rendered GitHub Actions workflows read (secrets,
 * variables, the deploy environment, the protected main branch) and the workflow files themselves.
 */
export * from "./settings";
export * from "./workflows";
