export * from "./contract";
export * from "./postgres";
export * from "./snowflake";
