import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "./config";
import { PostgresWarehouse } from "./warehouse";

/** Arguments of DbtPlatform: a validated stack config. */
export interface DbtPlatformArgs {
    /** The stack's validated configuration (see loadStackConfig). */
    config: StackConfig;
    /** Admin password for the warehouse, when the stack sets one (a secret). */
    warehouseAdminPassword?: pulumi.Input<string>;
}

/** The whole platform for one stack: composes every capability the config turns on. */
export class DbtPlatform extends pulumi.ComponentResource {
    /** Warehouse access (roles, logins, schemas, grants). */
    public readonly warehouse: PostgresWarehouse;

    constructor(name: string, args: DbtPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dbt-platform:index:DbtPlatform", name, {}, opts);
        const { config } = args;
        const wh = config.warehouse;
        const byDuty = (duty: string) => wh.users.find((u) => u.duty === duty);
        this.warehouse = new PostgresWarehouse(
            `${name}-warehouse`,
            {
                connection: {
                    host: wh.connection.host,
                    port: wh.connection.port,
                    username: wh.connection.username,
                    password: args.warehouseAdminPassword,
                    sslmode: wh.connection.sslmode,
                    superuser: wh.connection.superuser,
                },
                database: wh.connection.database,
                createDatabase: wh.createDatabase,
                devRole: wh.roles.dev,
                prodRole: wh.roles.prod,
                users: (["ci", "deploy", "scheduler"] as const).flatMap((duty) => {
                    const u = byDuty(duty);
                    return u ? [{ name: u.name, duty }] : [];
                }),
                roleMasking: wh.roleMasking,
                ciSchema: wh.schemas.ci,
                productionSchemas: wh.schemas.production,
                developers: wh.developers,
                revokePublicConnect: wh.revokePublicConnect,
                dbtSslmode: wh.connection.sslmode,
                profile: config.dbt.profile,
                threads: config.dbt.threads,
                deployTarget: config.environment.kind === "release" ? config.stack : "prod",
            },
            { parent: this },
        );
        this.registerOutputs({ warehouse: this.warehouse });
    }
}
