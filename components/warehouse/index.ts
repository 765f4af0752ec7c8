export * from "./postgres";
export * from "./redshift";
