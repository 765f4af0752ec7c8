export * from "./identifiers";
export * from "./profiles";
export * from "./warehouse";
