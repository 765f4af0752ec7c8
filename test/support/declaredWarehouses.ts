/**
 * Redshift and Snowflake warehouse components constructed under mocks, as the access matrix and
 * the audit tests read their declared plans (seed 003's and seed 002's organisations).
 */
import { planFromContract } from "../../components/access/contract";
import { AccessPlan } from "../../components/access/plan";
import { RedshiftWarehouse, RedshiftWarehouseArgs } from "../../components/warehouse/redshift";
import { SnowflakeWarehouse, SnowflakeWarehouseArgs } from "../../components/warehouse/snowflake";
import { installMocks } from "../../scripts/offline";

/** Seed 003's organisation, as test/redshift-access.test.ts declares it. */
export const REDSHIFT_ARGS: RedshiftWarehouseArgs = {
    connection: { host: "unused", port: 5439, user: "unused" },
    database: "rs_matrix",
    productionSchemas: ["analytics", "analytics_staging"],
    customSchemas: ["staging"],
    developers: [{ name: "anton" }, { name: "maria" }],
    profile: "redshift_development",
};

/** The component under mocks, and the access plan read from its declared accessPlan. */
export async function declaredRedshift(args: RedshiftWarehouseArgs = REDSHIFT_ARGS): Promise<{ wh: RedshiftWarehouse; plan: AccessPlan }> {
    const { settle } = await installMocks("redshift");
    const wh = new RedshiftWarehouse("rs", args);
    await settle();
    return { wh, plan: planFromContract(wh) };
}

/** Seed 002's organisation, as test/snowflake.test.ts declares it. */
export function seed002(overrides: Partial<SnowflakeWarehouseArgs> = {}): SnowflakeWarehouseArgs {
    return {
        account: "ACME-ANALYTICS",
        admin: { user: "PULUMI_ADMIN", privateKey: "-----BEGIN PRIVATE KEY-----\nadmin\n-----END PRIVATE KEY-----\n" },
        users: [
            { name: "SVC_DBT_CI", duty: "ci" },
            { name: "SVC_DBT_DEPLOY", duty: "deploy" },
            { name: "SVC_DBT_SCHEDULER", duty: "scheduler" },
        ],
        profile: "dbt_transform",
        ...overrides,
    };
}

/** A SnowflakeWarehouse constructed under mocks. */
export async function declaredSnowflake(args: SnowflakeWarehouseArgs = seed002()): Promise<SnowflakeWarehouse> {
    const { settle } = await installMocks("snowflake");
    const wh = new SnowflakeWarehouse("analytics", args);
    await settle();
    return wh;
}

