import * as pulumi from "@pulumi/pulumi";
import * as postgresql from "@pulumi/postgresql";
import * as random from "@pulumi/random";
import { identifierProblem } from "./identifiers";
import { envVarName, postgresProfiles, renderProfilesYaml, TARGET_FIELDS } from "./profiles";

/** What a bot login does; decides its group role, its schema and its dbt target. */
export type PostgresBotDuty = "ci" | "deploy" | "scheduler";

/** The dbt target a bot of `duty` uses: ci, scheduler, or the deploy target (default prod). */
export function botTargetName(duty: PostgresBotDuty, deployTarget = "prod"): string {
    return duty === "deploy" ? deployTarget : duty;
}

/** A login role used by automation. */
export interface PostgresBotUserArgs {
    /** Login name (a lower-case Postgres identifier). */
    name: string;
    /** ci builds as the dev role in the CI schema; deploy and scheduler build production as the prod role. */
    duty: PostgresBotDuty;
}

/** A person's login role with a private schema. */
export interface PostgresDeveloperArgs {
    /** Login name. */
    name: string;
    /** Private schema owned by this developer (default `dbt_<name>`). */
    schema?: string;
}

/** How the provider reaches Postgres as an administrator. */
export interface PostgresAdminConnectionArgs {
    /** Server host name or address. */
    host: pulumi.Input<string>;
    /** Server port. */
    port: pulumi.Input<number>;
    /** Administrative login. */
    username: pulumi.Input<string>;
    /** Its password (a secret); when omitted the provider reads PGPASSWORD. */
    password?: pulumi.Input<string>;
    /** libpq sslmode (default require). */
    sslmode?: pulumi.Input<string>;
    /** False when the admin is not a superuser (RDS, Cloud SQL). */
    superuser?: pulumi.Input<boolean>;
}

/**
 * Arguments of PostgresWarehouse. Names are plain strings because they decide which
 * resources exist; connection values may be outputs of other resources.
 */
export interface PostgresWarehouseArgs {
    /** Admin connection used to build a provider; ignored when `provider` is given. */
    connection?: PostgresAdminConnectionArgs;
    /** An existing postgresql provider to manage access with. */
    provider?: postgresql.Provider;
    /** Database that dbt builds into. */
    database: string;
    /** Create the database as well (default false: it already exists). */
    createDatabase?: boolean;
    /** Group role for developers and CI (default role_dev). */
    devRole?: string;
    /** Group role that owns production (default role_prod). */
    prodRole?: string;
    /** Bot logins: at most one per duty, exactly one deploy bot. */
    users: PostgresBotUserArgs[];
    /** Mask each bot's session role to its group role (default true). */
    roleMasking?: boolean;
    /** Schema CI builds into (default dbt_ci), owned by the dev role. */
    ciSchema?: string;
    /** Production schemas, owned by the prod role and readable by the dev role. */
    productionSchemas: string[];
    /** Per-developer logins with private schemas. */
    developers?: PostgresDeveloperArgs[];
    /** Revoke PUBLIC's default CONNECT/TEMP on the database (default true). */
    revokePublicConnect?: boolean;
    /** Host that dbt (not the provider) connects to; defaults to the admin connection's host. */
    dbtHost?: pulumi.Input<string>;
    /** Port that dbt connects to; defaults to the admin connection's port. */
    dbtPort?: pulumi.Input<number>;
    /** sslmode written into profiles.yml (default require). */
    dbtSslmode?: string;
    /** Profile name in profiles.yml. */
    profile: string;
    /** dbt threads per target (default 4). */
    threads?: number;
    /** Name of the dbt target the deploy bot uses (default prod; release stages use their stage). */
    deployTarget?: string;
}

/** Connection settings of one dbt target; `password` is a secret. */
export interface PostgresTargetConnection {
    host: string;
    port: number;
    user: string;
    password: string;
    dbname: string;
    schema: string;
}

/** Role masking, group roles, bot and developer logins, schemas and grants for dbt on Postgres. */
export class PostgresWarehouse extends pulumi.ComponentResource {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: PostgresWarehouseArgs): void {
        normalise(name, args);
    }

    /** Group role names. */
    public readonly roles: { dev: string; prod: string };
    /** Connection settings per dbt target (ci, deploy target, scheduler); passwords are secrets. */
    public readonly targets: pulumi.Output<Record<string, PostgresTargetConnection>>;
    /** Connection settings per developer; passwords are secrets. */
    public readonly developerTargets: pulumi.Output<Record<string, PostgresTargetConnection>>;
    /** Environment variables the rendered profiles.yml reads, with values (a secret as a whole). */
    public readonly profileEnvironment: pulumi.Output<Record<string, string>>;
    /** profiles.yml with env_var() references only. */
    public readonly profilesYaml: pulumi.Output<string>;
    /** dbt target name per bot duty. */
    public readonly targetNames: Partial<Record<PostgresBotDuty, string>>;

    constructor(name: string, args: PostgresWarehouseArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validate before super(): a bad argument registers nothing, not even this component.
        const model = normalise(name, args);
        super("dbt-platform:warehouse:PostgresWarehouse", name, {}, opts);
        this.roles = { dev: model.devRole, prod: model.prodRole };

        const provider =
            args.provider ??
            new postgresql.Provider(
                `${name}-provider`,
                {
                    host: args.connection!.host,
                    port: args.connection!.port,
                    username: args.connection!.username,
                    password: args.connection!.password ? pulumi.secret(args.connection!.password) : undefined,
                    sslmode: args.connection!.sslmode ?? "require",
                    superuser: args.connection!.superuser ?? true,
                    database: "postgres",
                },
                { parent: this },
            );
        const child: pulumi.CustomResourceOptions = { parent: this, provider };

        const database: pulumi.Output<string> = model.createDatabase
            ? new postgresql.Database(`${name}-database`, { name: model.database }, child).name
            : pulumi.output(model.database);

        const groupRole = (key: "dev" | "prod", roleName: string) =>
            new postgresql.Role(`${name}-role-${key}`, { name: roleName, login: false, inherit: true }, child);
        const groups = { dev: groupRole("dev", model.devRole), prod: groupRole("prod", model.prodRole) };

        const login = (kind: "user" | "developer", userName: string, group: postgresql.Role, mask: boolean) => {
            const password = new random.RandomPassword(
                `${name}-${kind}-${userName}-password`,
                // Alphanumeric only: the value travels through env vars, YAML and URLs unescaped.
                { length: 40, special: false },
                { parent: this },
            );
            const role = new postgresql.Role(
                `${name}-${kind}-${userName}`,
                {
                    name: userName,
                    login: true,
                    password: password.result,
                    roles: [group.name],
                    assumeRole: mask ? group.name : undefined,
                    inherit: true,
                },
                child,
            );
            return { role, password: password.result };
        };
        const bots = model.users.map((u) => ({
            ...u,
            group: u.duty === "ci" ? groups.dev : groups.prod,
            ...login("user", u.name, u.duty === "ci" ? groups.dev : groups.prod, model.roleMasking),
        }));
        // Developers are never masked: their private schema is theirs alone.
        const devs = model.developers.map((d) => ({ ...d, ...login("developer", d.name, groups.dev, false) }));

        const schema = (key: string, schemaName: string, owner: pulumi.Input<string>) =>
            new postgresql.Schema(
                `${name}-schema-${key}`,
                // dropCascade stays false: destroying the stack must never drop built data silently.
                { name: schemaName, database, owner, ifNotExists: true, dropCascade: false },
                child,
            );
        if (model.users.some((u) => u.duty === "ci")) schema(model.ciSchema, model.ciSchema, groups.dev.name);
        const prodSchemas = model.productionSchemas.map((s) => schema(s, s, groups.prod.name));
        devs.forEach((d) => schema(d.schema, d.schema, d.role.name));

        // Every GRANT/REVOKE and ALTER DEFAULT PRIVILEGES runs alone: the provider revokes then grants
        // in one transaction, and two such transactions on the same role or object fail with
        // "tuple concurrently updated" (terraform-provider-postgresql#178). One chain rules it out.
        const chain: pulumi.CustomResource[] = [];
        const after = (deps: pulumi.Resource[]): pulumi.CustomResourceOptions => ({
            ...child,
            dependsOn: chain.length > 0 ? [...deps, chain[chain.length - 1]] : deps,
        });
        const grant = (key: string, grantArgs: postgresql.GrantArgs, deps: pulumi.Resource[]) => {
            chain.push(new postgresql.Grant(`${name}-grant-${key}`, grantArgs, after(deps)));
        };
        if (model.revokePublicConnect) {
            grant("public-database", { database, role: "public", objectType: "database", privileges: [] }, []);
            // Postgres before 15 lets PUBLIC create in schema public; keep only USAGE, as 15 does.
            grant("public-schema", { database, role: "public", schema: "public", objectType: "schema", privileges: ["USAGE"] }, []);
        }
        for (const key of ["dev", "prod"] as const) {
            // CONNECT to log in; CREATE so dbt can create custom and per-pull-request schemas (seed step 1).
            grant(`${key}-database`, { database, role: groups[key].name, objectType: "database", privileges: ["CONNECT", "CREATE", "TEMPORARY"] }, [groups[key]]);
        }
        // Deferral: CI and developers read production relations, and nothing more.
        model.productionSchemas.forEach((s, i) => {
            const deps = [groups.dev, prodSchemas[i]];
            grant(`dev-usage-${s}`, { database, role: groups.dev.name, schema: s, objectType: "schema", privileges: ["USAGE"] }, deps);
            grant(`dev-select-${s}`, { database, role: groups.dev.name, schema: s, objectType: "table", privileges: ["SELECT"] }, deps);
            chain.push(
                new postgresql.DefaultPrivileges(
                    `${name}-defaults-dev-select-${s}`,
                    // With role masking every production object is created by the prod role, so one
                    // default rule covers whatever the deploy and scheduler bots build later.
                    { database, owner: groups.prod.name, role: groups.dev.name, schema: s, objectType: "table", privileges: ["SELECT"] },
                    after(deps),
                ),
            );
        });
        // dbt custom schemas (`+schema:`) are created at run time by the prod bots; with masking their
        // owner is the prod role, so these database-wide defaults keep them readable for deferral too.
        for (const [key, objectType, privileges] of [["schemas", "schema", ["USAGE"]], ["tables", "table", ["SELECT"]]] as const) {
            chain.push(
                new postgresql.DefaultPrivileges(
                    `${name}-defaults-dev-${key}`,
                    { database, owner: groups.prod.name, role: groups.dev.name, objectType, privileges: [...privileges] },
                    after([groups.dev, groups.prod]),
                ),
            );
        }

        const dbtHost = (args.dbtHost ?? args.connection?.host)!;
        const dbtPort = (args.dbtPort ?? args.connection?.port)!;
        const connection = (user: string, password: pulumi.Output<string>, schemaName: string) =>
            pulumi.all([dbtHost, dbtPort, database, password]).apply(([host, port, dbname, pw]) => ({
                host, port, user, password: pw, dbname, schema: schemaName,
            }));

        this.targetNames = {};
        const targetEntries: [string, pulumi.Output<PostgresTargetConnection>][] = [];
        for (const bot of bots) {
            const targetName = botTargetName(bot.duty, model.deployTarget);
            this.targetNames[bot.duty] = targetName;
            const schemaName = bot.duty === "ci" ? model.ciSchema : model.productionSchemas[0];
            targetEntries.push([targetName, connection(bot.name, bot.password, schemaName)]);
        }
        this.targets = pulumi.secret(collect(targetEntries));
        this.developerTargets = pulumi.secret(collect(devs.map((d) => [d.name, connection(d.name, d.password, d.schema)] as const)));
        this.profileEnvironment = pulumi.secret(
            this.targets.apply((targets) => {
                const env: Record<string, string> = {};
                for (const [t, c] of Object.entries(targets)) {
                    for (const f of TARGET_FIELDS) env[envVarName(t, f)] = String(c[f]);
                }
                return env;
            }),
        );
        const targetNames = targetEntries.map(([t]) => t);
        this.profilesYaml = pulumi.output(
            renderProfilesYaml(
                postgresProfiles({
                    profile: model.profile,
                    defaultTarget: this.targetNames.ci ?? model.deployTarget,
                    targets: targetNames,
                    threads: model.threads,
                    sslmode: model.dbtSslmode,
                }),
            ),
        );

        this.registerOutputs({
            roles: this.roles,
            targets: this.targets,
            developerTargets: this.developerTargets,
            profileEnvironment: this.profileEnvironment,
            profilesYaml: this.profilesYaml,
        });
    }
}

function collect<T>(entries: readonly (readonly [string, pulumi.Output<T>])[]): pulumi.Output<Record<string, T>> {
    return pulumi.all(entries.map(([, v]) => v)).apply((values) => {
        const out: Record<string, T> = {};
        entries.forEach(([k], i) => (out[k] = values[i] as T));
        return out;
    });
}

interface Model {
    database: string;
    createDatabase: boolean;
    devRole: string;
    prodRole: string;
    users: PostgresBotUserArgs[];
    roleMasking: boolean;
    ciSchema: string;
    productionSchemas: string[];
    developers: Required<PostgresDeveloperArgs>[];
    revokePublicConnect: boolean;
    dbtSslmode: string;
    profile: string;
    threads: number;
    deployTarget: string;
}

/** Applies defaults and rejects unsafe or inconsistent names before any child is registered. */
function normalise(name: string, args: PostgresWarehouseArgs): Model {
    const problems: string[] = [];
    const check = (value: string, what: "role" | "schema" | "database", where: string) => {
        const p = identifierProblem(value, what);
        if (p) problems.push(`${where} = ${JSON.stringify(value)}: expected ${p}`);
    };
    const m: Model = {
        database: args.database,
        createDatabase: args.createDatabase ?? false,
        devRole: args.devRole ?? "role_dev",
        prodRole: args.prodRole ?? "role_prod",
        users: args.users,
        roleMasking: args.roleMasking ?? true,
        ciSchema: args.ciSchema ?? "dbt_ci",
        productionSchemas: args.productionSchemas,
        developers: (args.developers ?? []).map((d) => ({ name: d.name, schema: d.schema ?? `dbt_${d.name}` })),
        revokePublicConnect: args.revokePublicConnect ?? true,
        dbtSslmode: args.dbtSslmode ?? "require",
        profile: args.profile,
        threads: args.threads ?? 4,
        deployTarget: botTargetName("deploy", args.deployTarget),
    };
    check(m.database, "database", "database");
    check(m.devRole, "role", "devRole");
    check(m.prodRole, "role", "prodRole");
    m.users.forEach((u, i) => check(u.name, "role", `users[${i}].name`));
    m.developers.forEach((d, i) => {
        check(d.name, "role", `developers[${i}].name`);
        check(d.schema, "schema", `developers[${i}].schema`);
    });
    check(m.ciSchema, "schema", "ciSchema");
    m.productionSchemas.forEach((s, i) => check(s, "schema", `productionSchemas[${i}]`));
    if (m.productionSchemas.length === 0) problems.push("productionSchemas: expected at least one schema");
    const logins = [m.devRole, m.prodRole, ...m.users.map((u) => u.name), ...m.developers.map((d) => d.name)];
    dupes(logins).forEach((d) => problems.push(`role ${d} is declared more than once`));
    dupes([m.ciSchema, ...m.productionSchemas, ...m.developers.map((d) => d.schema)]).forEach((d) =>
        problems.push(`schema ${d} is declared more than once`),
    );
    for (const duty of ["ci", "deploy", "scheduler"] as const) {
        const n = m.users.filter((u) => u.duty === duty).length;
        if (n > 1) problems.push(`users: expected at most one ${duty} user, found ${n}`);
        if (duty === "deploy" && n === 0) problems.push("users: expected a deploy user");
    }
    const targets = [m.deployTarget, "ci", "scheduler"];
    if (m.deployTarget === "ci" || m.deployTarget === "scheduler" || !/^[a-z][a-z0-9_-]*$/.test(m.deployTarget)) {
        problems.push(`deployTarget = ${JSON.stringify(m.deployTarget)}: expected a target name other than ${targets.slice(1).join(", ")}`);
    }
    if (!args.provider && !args.connection) problems.push("connection: expected an admin connection or a provider");
    if ((args.dbtHost ?? args.connection?.host) === undefined || (args.dbtPort ?? args.connection?.port) === undefined) {
        problems.push("dbtHost, dbtPort: expected both when a provider is passed instead of a connection");
    }
    if (problems.length > 0) {
        throw new Error(`PostgresWarehouse ${name}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
    }
    return m;
}

function dupes(values: string[]): string[] {
    return [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
}
