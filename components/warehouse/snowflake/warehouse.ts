/**
 * SnowflakeWarehouse: seed 002's Snowflake side as a component. Databases, virtual warehouses per
 * duty, access (database) roles and functional (account) roles, database-level grants on current
 * and future objects, future ownership of production objects by TRANSFORMER, key-pair service
 * users, an optional network policy, and the contract's profiles, environment and credentials.
 * The access design is documented in ./plan.ts; every grant resource comes from its plan.
 *
 * Providers: objects (databases, warehouses, database roles) are created as SYSADMIN, so the
 * administrators own them; roles, users, the network policy and every grant as SECURITYADMIN
 * (MANAGE GRANTS is needed for database-level future grants).
 *
 * Key rotation without downtime, one `pulumi up` per step: (1) `secondKey: true` adds key 2 as
 * RSA_PUBLIC_KEY_2 while the target still uses key 1; (2) `activeKey: 2` switches the target,
 * its credential secret and profileEnvironment to key 2 (CI settings follow); (3) replace key 1
 * (`pulumi up --replace <urn of …-key-1>`), then switch back with `activeKey: 1` when key 2 is
 * next to be retired. Either key logs in at every step.
 */
import * as pulumi from "@pulumi/pulumi";
import * as snowflake from "@pulumi/snowflake";
import * as tls from "@pulumi/tls";
import type { AccessPlan, AdapterPackage, BotDuty, GrantTarget, PipelineWarehouse, PlannedGrant, PullRequestSchemas, RoleRef, TargetEnvVar, Warehouse } from "../contract";
import { credentialJson, dutyTargetName } from "../contract";
import { publicKeyBody, splitAccount } from "./identifiers";
import { dutyRole, dutyWarehouse, normaliseSnowflake, SnowflakeModel, SnowflakeWarehouseArgs, WAREHOUSE_DUTIES, WarehouseDuty } from "./model";
import { COPY_GRANTS_PROJECT_CONFIG, DatabaseKey, databases, renderSnowflakeSql, snowflakeAccessPlan, userKeyResourceName } from "./plan";
import {
    renderSnowflakeProfilesYaml,
    snowflakeProfiles,
    snowflakePullRequestSchemas,
    SnowflakeTargetConnection,
    snowflakeTargetEnv,
    snowflakeTargetFields,
} from "./profiles";

/** Keys of the functional roles, as their resources are named (`<name>-role-<key>`). */
const FUNCTIONAL_KEYS = ["transformer", "ci", "reporter"] as const;

/** Warehouse access for dbt on Snowflake (seed 002), implementing the warehouse contract. */
export class SnowflakeWarehouse extends pulumi.ComponentResource implements Warehouse<SnowflakeTargetConnection> {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: SnowflakeWarehouseArgs): void {
        normaliseSnowflake(name, args);
    }

    /** The access plan the constructor would declare (pure; for review and audit). */
    public static accessPlan(name: string, args: SnowflakeWarehouseArgs): AccessPlan {
        return snowflakeAccessPlan(normaliseSnowflake(name, args));
    }

    /** The plan as reviewable Snowflake SQL (pure), e.g. for sql/<stack>.sql. */
    public static renderSql(name: string, args: SnowflakeWarehouseArgs, header = ""): string {
        return renderSnowflakeSql(name, normaliseSnowflake(name, args), header);
    }

    /** What the pipelines read of the warehouse the constructor would declare (pure; plans CI settings before registration). */
    public static pipelineWarehouse(name: string, args: SnowflakeWarehouseArgs): PipelineWarehouse {
        const m = normaliseSnowflake(name, args);
        const targetNames: Partial<Record<BotDuty, string>> = {};
        const targetEnv: Record<string, TargetEnvVar[]> = {};
        for (const u of m.users) {
            const target = dutyTargetName(u.duty, m.deployTarget);
            targetNames[u.duty] = target;
            targetEnv[target] = snowflakeTargetEnv(target, { endpoint: m.endpoint, pullRequestSchema: u.duty === "ci" });
        }
        return {
            kind: "snowflake",
            adapter: { type: "snowflake", package: "dbt-snowflake", version: m.adapterVersion },
            targetNames,
            targetEnv,
            credentialFields: snowflakeTargetFields(m.endpoint),
            pullRequestSchemas: snowflakePullRequestSchemas(m.pullRequestPrefix, m.developmentDatabase),
        };
    }

    public readonly kind = "snowflake" as const;
    /** dbt-snowflake at the pinned version. */
    public readonly adapter: AdapterPackage;
    /** dbt target name per bot duty. */
    public readonly targetNames: Partial<Record<BotDuty, string>>;
    /** Connection values per target; the private keys make it a secret. */
    public readonly targets: pulumi.Output<Record<string, SnowflakeTargetConnection>>;
    /** Seed 002's Secrets Manager JSON per target (account, user, role, warehouse, database, schema, private_key); a secret. */
    public readonly credentialSecrets: pulumi.Output<Record<string, string>>;
    public readonly credentialFields: readonly string[];
    public readonly targetEnv: Record<string, TargetEnvVar[]>;
    /** Variable → value for every target (DBT_<T>_PRIVATE_KEY holds the PEM); a secret. */
    public readonly profileEnvironment: pulumi.Output<Record<string, string>>;
    /** profiles.yml with env_var() references only. */
    public readonly profilesYaml: pulumi.Output<string>;
    public readonly pullRequestSchemas: PullRequestSchemas;
    public readonly accessPlan: AccessPlan;
    /** dbt_project.yml settings the project must carry (`copy_grants` across `create or replace`). */
    public readonly dbtProjectConfig = COPY_GRANTS_PROJECT_CONFIG;
    /** Database names (production, development). */
    public readonly databases: Record<DatabaseKey, string>;
    /** Virtual warehouse names per duty. */
    public readonly warehouseNames: Record<WarehouseDuty, string>;

    constructor(name: string, args: SnowflakeWarehouseArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validate before super(): a bad argument registers nothing, not even this component.
        const m = normaliseSnowflake(name, args);
        super("dbt-platform:warehouse:SnowflakeWarehouse", name, {}, opts);
        const plan = snowflakeAccessPlan(m);
        this.accessPlan = plan;
        this.adapter = { type: "snowflake", package: "dbt-snowflake", version: m.adapterVersion };
        this.databases = databases(m);
        this.warehouseNames = Object.fromEntries(WAREHOUSE_DUTIES.map((d) => [d, m.warehouses[d].name])) as Record<WarehouseDuty, string>;
        this.pullRequestSchemas = snowflakePullRequestSchemas(m.pullRequestPrefix, m.developmentDatabase);

        const { sysadmin, securityadmin } = args.providers ?? this.adminProviders(name, m, args);
        const asSys: pulumi.CustomResourceOptions = { parent: this, provider: sysadmin };
        const asSec: pulumi.CustomResourceOptions = { parent: this, provider: securityadmin };

        // Databases: names flow from the resources so every grant waits for its database.
        const dbName: Record<DatabaseKey, pulumi.Output<string>> = {} as Record<DatabaseKey, pulumi.Output<string>>;
        for (const key of ["production", "development"] as const) {
            dbName[key] = m.createDatabases
                ? new snowflake.Database(`${name}-database-${key}`, { name: this.databases[key], comment: `dbt ${key} (managed by dbt-platform)` }, asSys).name
                : pulumi.output(this.databases[key]);
        }
        const dbKeyOf = (database: string): DatabaseKey => (database === this.databases.production ? "production" : "development");
        const dbOut = (database: string) => dbName[dbKeyOf(database)];

        const warehouse: Record<string, pulumi.Output<string>> = {};
        for (const duty of WAREHOUSE_DUTIES) {
            const w = m.warehouses[duty];
            warehouse[w.name] = new snowflake.Warehouse(
                `${name}-warehouse-${duty}`,
                {
                    name: w.name,
                    warehouseSize: w.size,
                    autoSuspend: w.autoSuspendSeconds,
                    // The provider takes "true"/"false" strings (its "default" means Snowflake's default).
                    autoResume: w.autoResume ? "true" : "false",
                    initiallySuspended: true,
                    statementTimeoutInSeconds: w.statementTimeoutSeconds,
                    comment: `dbt ${duty} (managed by dbt-platform)`,
                },
                asSys,
            ).name;
        }

        // Roles. `roleRef` turns a plan reference into the name (or "DB"."ROLE") the provider expects,
        // taken from the role resource so dependencies follow.
        const accountRole: Record<string, pulumi.Output<string>> = { SYSADMIN: pulumi.output("SYSADMIN") };
        FUNCTIONAL_KEYS.forEach((key) => {
            const r = plan.roles.find((x) => x.kind === "functional" && x.name === m.roles[key])!;
            accountRole[r.name] = new snowflake.AccountRole(`${name}-role-${key}`, { name: r.name, comment: r.comment }, asSec).name;
        });
        const databaseRole: Record<string, pulumi.Output<string>> = {};
        for (const r of plan.roles.filter((x) => x.kind === "access")) {
            const level = r.name.endsWith("_WRITE") ? "write" : "read";
            const role = new snowflake.DatabaseRole(`${name}-access-${dbKeyOf(r.database!)}-${level}`, { database: dbOut(r.database!), name: r.name, comment: r.comment }, asSys);
            databaseRole[`${r.database}.${r.name}`] = pulumi.interpolate`"${role.database}"."${role.name}"`;
        }
        const roleRef = (r: RoleRef): pulumi.Output<string> => {
            const v = r.database ? databaseRole[`${r.database}.${r.name}`] : accountRole[r.name];
            if (!v) throw new Error(`SnowflakeWarehouse ${name}: the plan references undeclared role ${r.database ? `${r.database}.` : ""}${r.name}`);
            return v;
        };

        for (const ms of plan.memberships) {
            if (ms.role.database) {
                new snowflake.GrantDatabaseRole(
                    `${name}-membership-${ms.key}`,
                    ms.member.database
                        ? { databaseRoleName: roleRef(ms.role), parentDatabaseRoleName: roleRef(ms.member) }
                        : { databaseRoleName: roleRef(ms.role), parentRoleName: roleRef(ms.member) },
                    asSec,
                );
            } else {
                new snowflake.GrantAccountRole(`${name}-membership-${ms.key}`, { roleName: roleRef(ms.role), parentRoleName: roleRef(ms.member) }, asSec);
            }
        }

        for (const g of plan.grants) this.grant(name, g, roleRef, dbOut, warehouse, asSec);
        for (const o of plan.ownerships) {
            if (o.on.level === "object" || o.to.database) throw new Error(`SnowflakeWarehouse ${name}: ownership ${o.key} must be database-level to an account role`);
            new snowflake.GrantOwnership(
                `${name}-ownership-${o.key}`,
                {
                    accountRoleName: roleRef(o.to),
                    on: { [o.on.scope]: { objectTypePlural: o.on.objectTypePlural, inDatabase: dbOut(o.on.database) } },
                },
                asSec,
            );
        }

        const policy = m.networkPolicy
            ? new snowflake.NetworkPolicy(
                  `${name}-network-policy`,
                  {
                      name: m.networkPolicy.name,
                      allowedIpLists: m.networkPolicy.allowedIpList,
                      blockedIpLists: m.networkPolicy.blockedIpList.length ? m.networkPolicy.blockedIpList : undefined,
                      comment: "dbt service users (managed by dbt-platform)",
                  },
                  asSec,
              )
            : undefined;

        // Service users: key pairs from @pulumi/tls; the public key (PEM body only) goes on the user,
        // the private key exists only in the secret outputs below.
        const fields = snowflakeTargetFields(m.endpoint);
        this.credentialFields = fields;
        this.targetNames = {};
        this.targetEnv = {};
        const targetEntries: [string, pulumi.Output<SnowflakeTargetConnection>][] = [];
        for (const u of m.users) {
            const login = plan.logins.find((l) => l.name === u.name)!;
            const key = (n: 1 | 2) => new tls.PrivateKey(userKeyResourceName(name, u.name, n), { algorithm: "RSA", rsaBits: m.rsaBits }, { parent: this });
            const keys = { 1: key(1), 2: u.secondKey ? key(2) : undefined };
            const user = new snowflake.ServiceUser(
                `${name}-user-${u.name}`,
                {
                    name: u.name,
                    defaultRole: roleRef(login.sessionRole!),
                    defaultWarehouse: warehouse[m.warehouses[dutyWarehouse(u.duty)].name],
                    // Secondary roles off: a session has exactly the functional role it logged in with.
                    defaultSecondaryRolesOption: "NONE",
                    rsaPublicKey: keys[1].publicKeyPem.apply(publicKeyBody),
                    rsaPublicKey2: keys[2]?.publicKeyPem.apply(publicKeyBody),
                    networkPolicy: policy?.name,
                    comment: `dbt ${u.duty} bot (managed by dbt-platform)`,
                },
                asSec,
            );
            for (const r of login.roles) new snowflake.GrantAccountRole(`${name}-user-${u.name}-role`, { roleName: roleRef(r), userName: user.name }, asSec);

            const target = dutyTargetName(u.duty, m.deployTarget);
            this.targetNames[u.duty] = target;
            this.targetEnv[target] = snowflakeTargetEnv(target, { endpoint: m.endpoint, pullRequestSchema: u.duty === "ci" });
            const ci = u.duty === "ci";
            const active = u.activeKey === 2 ? keys[2]! : keys[1];
            const ep = args.endpoint;
            targetEntries.push([
                target,
                pulumi
                    .all([user.name, active.privateKeyPemPkcs8, ep?.host, ep?.port])
                    .apply(([userName, privateKey, host, port]): SnowflakeTargetConnection => ({
                        account: m.account,
                        user: userName,
                        role: m.roles[dutyRole(u.duty)],
                        warehouse: m.warehouses[dutyWarehouse(u.duty)].name,
                        database: ci ? m.developmentDatabase : m.productionDatabase,
                        schema: ci ? m.ciSchema : m.productionSchema,
                        private_key: privateKey,
                        ...(ep ? { host: host as string, port: port as number, protocol: ep.protocol } : {}),
                    })),
            ]);
        }
        this.targets = pulumi.secret(collect(targetEntries));
        this.credentialSecrets = pulumi.secret(
            this.targets.apply((targets) => Object.fromEntries(Object.entries(targets).map(([t, c]) => [t, credentialJson({ ...c }, fields)]))),
        );
        this.profileEnvironment = pulumi.secret(
            this.targets.apply((targets) => {
                const env: Record<string, string> = {};
                for (const [t, c] of Object.entries(targets)) {
                    for (const v of this.targetEnv[t]) env[v.name] = String(c[v.field as keyof SnowflakeTargetConnection]);
                }
                return env;
            }),
        );
        const targetNames = targetEntries.map(([t]) => t);
        this.profilesYaml = pulumi.output(
            renderSnowflakeProfilesYaml(
                snowflakeProfiles({ profile: m.profile, defaultTarget: this.targetNames.ci ?? m.deployTarget, targets: targetNames, threads: m.threads, endpoint: m.endpoint }),
            ),
        );

        this.registerOutputs({
            targetNames: this.targetNames,
            targets: this.targets,
            credentialSecrets: this.credentialSecrets,
            profileEnvironment: this.profileEnvironment,
            profilesYaml: this.profilesYaml,
        });
    }

    /** The SYSADMIN and SECURITYADMIN providers, logging in with the admin's key pair. */
    private adminProviders(name: string, m: SnowflakeModel, args: SnowflakeWarehouseArgs) {
        const admin = args.admin!;
        const provider = (role: "SYSADMIN" | "SECURITYADMIN") =>
            new snowflake.Provider(
                `${name}-${role.toLowerCase()}`,
                {
                    ...splitAccount(m.account),
                    user: admin.user,
                    authenticator: "SNOWFLAKE_JWT",
                    privateKey: admin.privateKey ? pulumi.secret(admin.privateKey) : undefined,
                    privateKeyPassphrase: admin.privateKeyPassphrase ? pulumi.secret(admin.privateKeyPassphrase) : undefined,
                    role,
                },
                { parent: this },
            );
        return { sysadmin: provider("SYSADMIN"), securityadmin: provider("SECURITYADMIN") };
    }

    /** Declares one planned grant with the resource type its grantee needs. */
    private grant(
        name: string,
        g: PlannedGrant,
        roleRef: (r: RoleRef) => pulumi.Output<string>,
        dbOut: (database: string) => pulumi.Output<string>,
        warehouse: Record<string, pulumi.Output<string>>,
        opts: pulumi.CustomResourceOptions,
    ): void {
        const resource = `${name}-grant-${g.key}`;
        const on: GrantTarget = g.on;
        if (g.to.database) {
            const base = { databaseRoleName: roleRef(g.to), privileges: g.privileges };
            if (on.level === "object") {
                if (on.objectType !== "DATABASE") throw new Error(`SnowflakeWarehouse ${name}: grant ${g.key}: a database role takes object grants on its database only`);
                new snowflake.GrantPrivilegesToDatabaseRole(resource, { ...base, onDatabase: dbOut(on.name) }, opts);
            } else if (on.objectTypePlural === "SCHEMAS") {
                const key = on.scope === "all" ? "allSchemasInDatabase" : "futureSchemasInDatabase";
                new snowflake.GrantPrivilegesToDatabaseRole(resource, { ...base, onSchema: { [key]: dbOut(on.database) } }, opts);
            } else {
                new snowflake.GrantPrivilegesToDatabaseRole(
                    resource,
                    { ...base, onSchemaObject: { [on.scope]: { objectTypePlural: on.objectTypePlural, inDatabase: dbOut(on.database) } } },
                    opts,
                );
            }
            return;
        }
        if (on.level !== "object" || on.objectType !== "WAREHOUSE") throw new Error(`SnowflakeWarehouse ${name}: grant ${g.key}: functional roles receive warehouse grants only`);
        new snowflake.GrantPrivilegesToAccountRole(
            resource,
            { accountRoleName: roleRef(g.to), privileges: g.privileges, onAccountObject: { objectType: "WAREHOUSE", objectName: warehouse[on.name] } },
            opts,
        );
    }
}

function collect<T>(entries: readonly (readonly [string, pulumi.Output<T>])[]): pulumi.Output<Record<string, T>> {
    return pulumi.all(entries.map(([, v]) => v)).apply((values) => {
        const out: Record<string, T> = {};
        entries.forEach(([k], i) => (out[k] = values[i] as T));
        return out;
    });
}
