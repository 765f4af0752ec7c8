export * from "./artifactStore";
export * from "./ciIdentity";
export * from "./docsSite";
export * from "./warehouseCredentials";
