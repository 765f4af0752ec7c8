export * from "./identifiers";
export * from "./model";
export * from "./plan";
export * from "./profiles";
export * from "./warehouse";
