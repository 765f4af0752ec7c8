import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { redshiftIdentifierProblem } from "./sql";
import type { RedshiftAdminConnectionArgs } from "./warehouse";

/** Arguments of RedshiftServerless (optional: stacks that bring their own cluster skip it). */
export interface RedshiftServerlessArgs {
    /** Namespace name (3-64 lower-case letters, digits, hyphens). */
    namespaceName: string;
    /** Workgroup name (same rule). */
    workgroupName: string;
    /** Database created in the namespace (default dev, as in seed 003). */
    dbName?: string;
    /** Admin user of the namespace, used by the providers (default dbt_admin). */
    adminUsername?: string;
    /** Base capacity in RPUs: 4, or a multiple of 8 from 8 to 1024 (default 8). */
    baseCapacity?: number;
    /** Upper bound of RPUs (default: none). */
    maxCapacity?: number;
    /** Subnets of the workgroup's VPC endpoint. */
    subnetIds?: pulumi.Input<pulumi.Input<string>[]>;
    /** Security groups of the workgroup. */
    securityGroupIds?: pulumi.Input<pulumi.Input<string>[]>;
    /** Reachable from the internet (default false). */
    publiclyAccessible?: boolean;
    /** Port (default 5439). */
    port?: number;
    /** Tags on both resources. */
    tags?: Record<string, string>;
}

/**
 * A Redshift Serverless namespace and workgroup, with a generated admin password kept as a Pulumi
 * secret. `adminConnection` feeds RedshiftWarehouse's `connection`; `iamAuth(region)` its `auth`.
 */
export class RedshiftServerless extends pulumi.ComponentResource {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: RedshiftServerlessArgs): void {
        problems(name, args);
    }

    public readonly namespace: aws.redshiftserverless.Namespace;
    public readonly workgroup: aws.redshiftserverless.Workgroup;
    /** The workgroup endpoint's host name. */
    public readonly host: pulumi.Output<string>;
    /** The admin connection for RedshiftWarehouse (password secret). */
    public readonly adminConnection: RedshiftAdminConnectionArgs;
    /** Database created in the namespace. */
    public readonly dbName: string;
    /** The workgroup's name (plain: RedshiftWarehouse validates it). */
    public readonly workgroupName: string;

    constructor(name: string, args: RedshiftServerlessArgs, opts?: pulumi.ComponentResourceOptions) {
        problems(name, args);
        super("dbt-platform:warehouse:RedshiftServerless", name, {}, opts);
        this.dbName = args.dbName ?? "dev";
        this.workgroupName = args.workgroupName;
        const adminUsername = args.adminUsername ?? "dbt_admin";
        const password = new random.RandomPassword(
            `${name}-admin-password`,
            { length: 40, special: false, minUpper: 2, minLower: 2, minNumeric: 2 },
            { parent: this },
        ).result;
        this.namespace = new aws.redshiftserverless.Namespace(
            `${name}-namespace`,
            { namespaceName: args.namespaceName, dbName: this.dbName, adminUsername, adminUserPassword: pulumi.secret(password), tags: args.tags },
            { parent: this },
        );
        const port = args.port ?? 5439;
        this.workgroup = new aws.redshiftserverless.Workgroup(
            `${name}-workgroup`,
            {
                namespaceName: this.namespace.namespaceName,
                workgroupName: args.workgroupName,
                baseCapacity: args.baseCapacity ?? 8,
                maxCapacity: args.maxCapacity,
                subnetIds: args.subnetIds,
                securityGroupIds: args.securityGroupIds,
                publiclyAccessible: args.publiclyAccessible ?? false,
                port,
                tags: args.tags,
            },
            { parent: this },
        );
        this.host = this.workgroup.endpoints.apply((e) => e?.[0]?.address ?? "");
        this.adminConnection = { host: this.host, port, user: adminUsername, password: pulumi.secret(password), sslmode: "require" };
        this.registerOutputs({ host: this.host, dbName: this.dbName });
    }

    /** RedshiftWarehouse `auth` for IAM logins through this workgroup. */
    public iamAuth(region: string) {
        return { method: "iam" as const, workgroup: this.workgroupName, region };
    }
}

function problems(name: string, args: RedshiftServerlessArgs): void {
    const found: string[] = [];
    for (const key of ["namespaceName", "workgroupName"] as const) {
        if (!/^[a-z0-9-]{3,64}$/.test(args[key] ?? "")) found.push(`${key} = ${JSON.stringify(args[key])}: expected 3-64 lower-case letters, digits or hyphens`);
    }
    const dbProblem = redshiftIdentifierProblem(args.dbName ?? "dev", "database");
    if (dbProblem) found.push(`dbName = ${JSON.stringify(args.dbName)}: expected ${dbProblem}`);
    const userProblem = redshiftIdentifierProblem(args.adminUsername ?? "dbt_admin", "user");
    if (userProblem) found.push(`adminUsername = ${JSON.stringify(args.adminUsername)}: expected ${userProblem}`);
    const base = args.baseCapacity ?? 8;
    if (!(base === 4 || (Number.isInteger(base) && base % 8 === 0 && base >= 8 && base <= 1024))) {
        found.push(`baseCapacity = ${JSON.stringify(args.baseCapacity)}: expected 4, or a multiple of 8 from 8 to 1024 RPUs`);
    }
    if (args.maxCapacity !== undefined && (!Number.isInteger(args.maxCapacity) || args.maxCapacity < base)) {
        found.push(`maxCapacity = ${JSON.stringify(args.maxCapacity)}: expected a whole number of RPUs at least baseCapacity`);
    }
    if (found.length > 0) throw new Error(`RedshiftServerless ${name}: invalid arguments:\n  - ${found.join("\n  - ")}`);
}
