export * from "./contract";
export * from "./postgres";
export * from "./redshift";
export * from "./snowflake";
export * from "./factory";
