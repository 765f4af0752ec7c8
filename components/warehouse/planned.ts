/**
 * The warehouse's pipeline fields (contract `PipelineWarehouse`) as a stack's config plans them,
 * without registering anything: DbtPlatform plans its CI settings (jobs, variable names, files)
 * from these before any resource exists, and `pipelineContext` renders offline from them.
 */
import type { StackConfig } from "../config/stack";
import type { PipelineWarehouse } from "./contract";
import { postgresWarehouseArgs, redshiftServerlessArgs, redshiftWarehouseArgs, snowflakeWarehouseArgs } from "./factory";
import { PostgresWarehouse } from "./postgres/warehouse";
import { RedshiftWarehouse } from "./redshift/warehouse";
import { SnowflakeWarehouse } from "./snowflake/warehouse";

/** The pipeline view of the warehouse `createWarehouse(name, config, …)` would build (pure). */
export function plannedPipelineWarehouse(name: string, config: StackConfig): PipelineWarehouse {
    const wh = config.warehouse;
    switch (wh.kind) {
        case "postgres":
            return PostgresWarehouse.pipelineWarehouse(name, postgresWarehouseArgs(config, wh, undefined));
        case "snowflake":
            return SnowflakeWarehouse.pipelineWarehouse(name, snowflakeWarehouseArgs(config, wh, undefined));
        case "redshift": {
            // With Serverless the workgroup's endpoint is the host: a stand-in (targets and variables do not depend on it).
            const standIn = redshiftServerlessArgs(wh) ? { host: "planned", port: wh.connection.port, user: wh.connection.username, sslmode: wh.connection.sslmode } : undefined;
            return RedshiftWarehouse.pipelineWarehouse(name, redshiftWarehouseArgs(config, wh, undefined, standIn));
        }
    }
}
