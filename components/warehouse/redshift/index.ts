export * from "./client";
export * from "./plan";
export * from "./profiles";
export * from "./providers";
export * from "./sql";
export * from "./warehouse";
export * from "./render";
export * from "./serverless";
