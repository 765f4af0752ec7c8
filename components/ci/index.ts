/** CI systems: the settings model every renderer and provider shares, and one namespace per CI system. */
export * from "./settings";
export * as azureDevops from "./azureDevops";
export * as bitbucket from "./bitbucket";
export * as github from "./github";
