export * from "./model";
export { renderPlatformGithub, PLATFORM_ACTIONS } from "./github";
export { renderPlatformBitbucket } from "./bitbucket";
export { renderPlatformAzure, PLATFORM_VARIABLE_GROUP } from "./azure";
export * from "./janitor";
