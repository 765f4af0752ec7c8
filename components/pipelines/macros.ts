/**
 * The macros the Postgres pipelines call live with the Postgres warehouse (warehouse/postgres/macros.ts),
 * which hands them to the pipelines through the warehouse contract; re-exported here for existing imports.
 */
export { DROP_SCHEMA_MACRO, dropSchemaMacro, RUN_MARKER, SCHEMA_OWNERSHIP_MACRO, schemaOwnershipMacro } from "../warehouse/postgres/macros";
