/**
 * The warehouse factory: the one place that maps a validated stack config (components/config) onto
 * the component of its `warehouse.kind`. DbtPlatform validates with `validateWarehouse` before it
 * registers anything, builds with `createWarehouse`, and plans the other children (credentials, CI
 * identity, settings) with `plannedWarehouseTargets`, all without knowing which warehouse it is.
 */
import * as pulumi from "@pulumi/pulumi";
import type { PostgresWarehouseConfig, RedshiftWarehouseConfig, SnowflakeWarehouseConfig, StackConfig } from "../config/stack";
import type { BotDuty, Warehouse } from "./contract";
import { dutyTargetName } from "./contract";
import { botTargetName, PostgresWarehouse, PostgresWarehouseArgs } from "./postgres/warehouse";
import { RedshiftServerless, RedshiftServerlessArgs } from "./redshift/serverless";
import { RedshiftAdminConnectionArgs, RedshiftWarehouse, RedshiftWarehouseArgs } from "./redshift/warehouse";
import { SnowflakeWarehouse } from "./snowflake/warehouse";
import type { SnowflakeWarehouseArgs } from "./snowflake/model";

/** The warehouse admin's credential, per kind; each is a Pulumi secret when set (see loadWarehouseSecrets). */
export interface WarehouseSecrets {
    /** Postgres admin password (`dbt-platform:warehouseAdminPassword`; else PGPASSWORD). */
    postgresAdminPassword?: pulumi.Input<string>;
    /** Snowflake admin's PKCS#8 private key (`dbt-platform:snowflakePrivateKey`; else SNOWFLAKE_PRIVATE_KEY). */
    snowflakePrivateKey?: pulumi.Input<string>;
    /** Redshift admin password (`dbt-platform:redshiftAdminPassword`; else REDSHIFT_ADMIN_PASSWORD; generated with serverless). */
    redshiftAdminPassword?: pulumi.Input<string>;
}

/** The dbt target the deploy bot uses: the stage's name on a release stage, else prod. */
export function deployTargetOf(config: StackConfig): string {
    return config.environment.kind === "release" ? config.stack : "prod";
}

/** Runs the chosen component's static validate (throws naming the key) without registering anything. */
export function validateWarehouse(name: string, config: StackConfig, secrets: WarehouseSecrets): void {
    const wh = config.warehouse;
    switch (wh.kind) {
        case "postgres":
            return PostgresWarehouse.validate(name, postgresWarehouseArgs(config, wh, secrets.postgresAdminPassword));
        case "snowflake":
            return SnowflakeWarehouse.validate(name, snowflakeWarehouseArgs(config, wh, secrets.snowflakePrivateKey));
        case "redshift": {
            const serverless = redshiftServerlessArgs(wh);
            if (serverless) RedshiftServerless.validate(`${name}-serverless`, serverless);
            // With serverless the workgroup's endpoint is the host: a stand-in until it exists.
            const connection = serverless ? serverlessConnection(wh, { host: pulumi.output(""), password: pulumi.output("") }) : undefined;
            return RedshiftWarehouse.validate(name, redshiftWarehouseArgs(config, wh, secrets.redshiftAdminPassword, connection));
        }
    }
}

/** Builds the warehouse component for config.warehouse.kind (and, on Redshift with `serverless`, its namespace and workgroup next to it). */
export function createWarehouse(name: string, config: StackConfig, secrets: WarehouseSecrets, opts: pulumi.ComponentResourceOptions): Warehouse {
    const wh = config.warehouse;
    switch (wh.kind) {
        case "postgres":
            return new PostgresWarehouse(name, postgresWarehouseArgs(config, wh, secrets.postgresAdminPassword), opts);
        case "snowflake":
            return new SnowflakeWarehouse(name, snowflakeWarehouseArgs(config, wh, secrets.snowflakePrivateKey), opts);
        case "redshift": {
            const serverlessArgs = redshiftServerlessArgs(wh);
            // A sibling of the warehouse (same parent and options): the warehouse's providers connect to its endpoint.
            const serverless = serverlessArgs ? new RedshiftServerless(`${name}-serverless`, serverlessArgs, opts) : undefined;
            const connection = serverless ? serverlessConnection(wh, { host: serverless.host, password: serverless.adminConnection.password! }) : undefined;
            return new RedshiftWarehouse(name, redshiftWarehouseArgs(config, wh, secrets.redshiftAdminPassword, connection), opts);
        }
    }
}

/** The dbt target per bot duty the warehouse will have, from plain config (no resources). */
export function plannedWarehouseTargets(config: StackConfig): Partial<Record<"ci" | "deploy" | "scheduler", string>> {
    const wh = config.warehouse;
    const deployTarget = deployTargetOf(config);
    switch (wh.kind) {
        case "postgres":
            return Object.fromEntries(postgresWarehouseArgs(config, wh, undefined).users.map((u) => [u.duty, botTargetName(u.duty, deployTarget)]));
        case "snowflake":
            return Object.fromEntries(wh.users.map((u) => [u.duty, dutyTargetName(u.duty, deployTarget)]));
        case "redshift": {
            // RedshiftWarehouse always serves scheduler, as the production identity deploy uses.
            const targets: Partial<Record<BotDuty, string>> = {};
            if (wh.users.some((u) => u.duty === "ci")) targets.ci = "ci";
            targets.deploy = deployTarget;
            targets.scheduler = "scheduler";
            return targets;
        }
    }
}

/** PostgresWarehouse's arguments from the config (as DbtPlatform mapped them before the factory). */
export function postgresWarehouseArgs(config: StackConfig, wh: PostgresWarehouseConfig, adminPassword: pulumi.Input<string> | undefined): PostgresWarehouseArgs {
    return {
        connection: {
            host: wh.connection.host,
            port: wh.connection.port,
            username: wh.connection.username,
            password: adminPassword,
            sslmode: wh.connection.sslmode,
            superuser: wh.connection.superuser,
        },
        database: wh.connection.database,
        createDatabase: wh.createDatabase,
        devRole: wh.roles.dev,
        prodRole: wh.roles.prod,
        users: (["ci", "deploy", "scheduler"] as const).flatMap((duty) => {
            const u = wh.users.find((x) => x.duty === duty);
            return u ? [{ name: u.name, duty }] : [];
        }),
        roleMasking: wh.roleMasking,
        ciSchema: wh.schemas.ci,
        productionSchemas: wh.schemas.production,
        pullRequestPrefix: wh.schemas.pullRequestPrefix,
        developers: wh.developers,
        revokePublicConnect: wh.revokePublicConnect,
        adoptRetained: wh.adoptRetained,
        dbtSslmode: wh.connection.sslmode,
        dbtSslrootcert: wh.connection.sslrootcert,
        profile: config.dbt.profile,
        threads: config.dbt.threads,
        deployTarget: deployTargetOf(config),
        adapterVersion: config.dbt.adapterVersion,
    };
}

/** SnowflakeWarehouse's arguments from the config; the admin logs in with its key pair. */
export function snowflakeWarehouseArgs(config: StackConfig, wh: SnowflakeWarehouseConfig, privateKey: pulumi.Input<string> | undefined): SnowflakeWarehouseArgs {
    return {
        account: wh.account,
        admin: { user: wh.admin.user, ...(privateKey !== undefined ? { privateKey } : {}) },
        productionDatabase: wh.databases.production,
        developmentDatabase: wh.databases.development,
        createDatabases: wh.createDatabases,
        productionSchema: wh.schemas.production,
        ciSchema: wh.schemas.ci,
        pullRequestPrefix: wh.schemas.pullRequestPrefix,
        warehouses: wh.warehouses,
        roles: wh.roles,
        users: wh.users.map((u) => ({ name: u.name, duty: u.duty, secondKey: u.secondKey, activeKey: u.activeKey })),
        rsaBits: wh.rsaBits,
        ...(wh.networkPolicy ? { networkPolicy: wh.networkPolicy } : {}),
        profile: config.dbt.profile,
        threads: config.dbt.threads,
        deployTarget: deployTargetOf(config),
        adapterVersion: config.dbt.adapterVersion,
        ...(wh.endpoint ? { endpoint: wh.endpoint } : {}),
    };
}

/** RedshiftServerless's arguments when the stack asks for a namespace and workgroup. */
export function redshiftServerlessArgs(wh: RedshiftWarehouseConfig): RedshiftServerlessArgs | undefined {
    const s = wh.serverless;
    if (!s) return undefined;
    return {
        namespaceName: s.namespaceName,
        workgroupName: s.workgroupName,
        dbName: wh.connection.database,
        adminUsername: wh.connection.username,
        baseCapacity: s.baseCapacity,
        ...(s.maxCapacity !== undefined ? { maxCapacity: s.maxCapacity } : {}),
        ...(s.subnetIds ? { subnetIds: s.subnetIds } : {}),
        ...(s.securityGroupIds ? { securityGroupIds: s.securityGroupIds } : {}),
        publiclyAccessible: s.publiclyAccessible,
        port: wh.connection.port,
    };
}

/** The admin connection through a Serverless workgroup (its endpoint and generated password). */
function serverlessConnection(wh: RedshiftWarehouseConfig, from: { host: pulumi.Input<string>; password: pulumi.Input<string> }): RedshiftAdminConnectionArgs {
    return { host: from.host, port: wh.connection.port, user: wh.connection.username, password: from.password, sslmode: wh.connection.sslmode };
}

/**
 * RedshiftWarehouse's arguments from the config. The deploy user is the production identity the
 * scheduler shares (the config refuses two); `connection` replaces the configured one (Serverless).
 */
export function redshiftWarehouseArgs(
    config: StackConfig,
    wh: RedshiftWarehouseConfig,
    adminPassword: pulumi.Input<string> | undefined,
    connection?: RedshiftAdminConnectionArgs,
): RedshiftWarehouseArgs {
    const byDuty = (duty: BotDuty) => wh.users.find((u) => u.duty === duty)?.name;
    return {
        connection: connection ?? {
            host: wh.connection.host!,
            port: wh.connection.port,
            user: wh.connection.username,
            ...(adminPassword !== undefined ? { password: adminPassword } : {}),
            sslmode: wh.connection.sslmode,
        },
        database: wh.connection.database,
        devGroup: wh.groups.dev,
        prodGroup: wh.groups.prod,
        productionUser: byDuty("deploy")!,
        ciUser: byDuty("ci") ?? null,
        productionSchemas: wh.schemas.production,
        customSchemas: wh.customSchemas,
        developers: wh.developers.map((d) => ({ name: d.name, schema: d.schema })),
        pullRequestSchemaPrefix: wh.schemas.pullRequestPrefix,
        rbac: wh.rbac,
        ...(wh.rbac ? { roles: wh.roles } : {}),
        adopt: wh.adopt,
        auth: wh.auth,
        dbtSslmode: wh.connection.sslmode,
        profile: config.dbt.profile,
        threads: config.dbt.threads,
        deployTarget: deployTargetOf(config),
    };
}
