export * from "./artifactStore";
export * from "./ciIdentity";
export * from "./docsSite";
export * from "./warehouseCredentials";
export * from "./scheduledRuns";
export * from "./scheduled/filterPattern";
export * from "./scheduled/runner";
