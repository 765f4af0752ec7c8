import * as pulumi from "@pulumi/pulumi";
import * as postgresql from "@pulumi/postgresql";
import * as random from "@pulumi/random";
import { pullRequestPrefixProblem } from "../../config/rules";
import { DROP_SCHEMA_MACRO, dropSchemaMacro, SCHEMA_OWNERSHIP_MACRO, schemaOwnershipMacro } from "./macros";
import { DBT_POSTGRES_VERSION } from "../../pipelines/versions";
import { AccessPlan, AdapterPackage, DeployCheck, envVarsFor, PipelineWarehouse, PlannedGrant, PullRequestSchemas, TargetEnvVar, Warehouse } from "../contract";
import { identifierProblem } from "./identifiers";
import { envVarName, postgresProfiles, renderProfilesYaml, TARGET_FIELDS } from "./profiles";

/** What a bot login does; decides its group role, its schema and its dbt target. */
export type PostgresBotDuty = "ci" | "deploy" | "scheduler";

/** The dbt target a bot of `duty` uses: ci, scheduler, or the deploy target (default prod). */
export function botTargetName(duty: PostgresBotDuty, deployTarget = "prod"): string {
    return duty === "deploy" ? deployTarget : duty;
}

/**
 * Schema of the platform's own functions, owned by the provider's admin: no bot can create in it.
 * Reserved: no declared schema may use the name.
 */
export const PLATFORM_SCHEMA = "dbt_platform";

/**
 * Body of `dbt_platform.pg_terminate_backend(pid integer, timeout bigint DEFAULT 0)`, the function
 * that lets a masked bot cancel its OWN other sessions (issue 10 #2).
 *
 * dbt cancels (`--fail-fast`, Ctrl-C, a CI cancel) with an unqualified `select pg_terminate_backend(<pid>)`
 * on another connection of the same login. With role masking that connection's current_user is the
 * group role, and Postgres only lets a role signal backends whose login it has the privileges of
 * (`has_privs_of_role(GetUserId(), proc->roleId)`) or members of pg_signal_backend. The group role
 * cannot be given the login's privileges (group ∈ bot ∈ group is circular), and pg_signal_backend
 * would let a bot kill every non-superuser session, the admin's tools included. So the bots'
 * pinned search_path lists this schema before an explicit pg_catalog, and this SECURITY DEFINER
 * function, with the signature of pg_catalog's, shadows it: it terminates a backend only when that
 * backend's login is the caller's session_user (SECURITY DEFINER changes current_user, never
 * session_user), and raises 42501 otherwise. A pid that is no backend (the session ended while dbt
 * cancelled it, as --fail-fast does with every other open connection) gives false and a warning, as
 * pg_catalog's does: raising there aborted a fail-fast run before it wrote its run results. Masking is untouched: objects stay owned by the group.
 * It runs as the admin (superuser, or rds_superuser, a member of pg_signal_backend on RDS), so every
 * operator and function it uses is schema-qualified: a caller may set its own search_path first.
 */
export const TERMINATE_OWN_BACKEND_BODY = `
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity AS a WHERE a.pid OPERATOR(pg_catalog.=) $1) THEN
        RAISE WARNING 'PID % is not a PostgreSQL backend process', $1;
        RETURN false;
    END IF;
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_stat_activity AS a
        WHERE a.pid OPERATOR(pg_catalog.=) $1 AND a.usename OPERATOR(pg_catalog.=) SESSION_USER
    ) THEN
        RAISE EXCEPTION 'dbt-platform: % may only terminate its own sessions (backend % is not one)', SESSION_USER, $1
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN pg_catalog.pg_terminate_backend($1, $2);
END;
`;

/** Who may create which schemas through `dbt_platform.create_schema`, with the owner each gets. */
export interface SchemaFamilies {
    devRole: string;
    prodRole: string;
    /** `<prefix><n>` and `<prefix><n>_<custom>` (pull requests), `<ci>_<custom>` (the CI schema's custom schemas). */
    pullRequestPrefix: string;
    ciSchema: string;
    /** Each developer's `<schema>_<custom>` family, creatable by that developer only. */
    developers: { name: string; schema: string }[];
    /** Names nobody may create (Postgres's own, the platform's, every declared role and login). */
    reserved: string[];
}

/** The regular expression of the dev role's schema families (pull requests and the CI schema's custom schemas). */
export function devFamilyPattern(f: Pick<SchemaFamilies, "pullRequestPrefix" | "ciSchema">): string {
    return `^(${f.pullRequestPrefix}[0-9]+|${f.ciSchema})(_[a-z0-9_]+)?$`;
}

/**
 * Body of `dbt_platform.create_schema(schema_name text)`, the only way the dev role's members
 * (the CI bot, developers) create schemas: the dev role has no CREATE on the database, so pull-request
 * code cannot squat a production name (`analytics_finance`) or a role's name (`role_prod`, the
 * search_path hijack). It creates, owned by the dev role, `<prefix><n>[_<custom>]` and
 * `<ci>_<custom>` for members of the dev role and `<own schema>_<custom>` for that developer; for
 * members of the prod role any other name that is not reserved, owned by the prod role (the prod
 * role keeps CREATE on the database too, so dbt's plain `create schema` still works in production).
 * An existing schema is accepted only when its owner is the one the name's family gets, so a
 * squatted schema fails the build instead of being built into. Runs as the admin: every operator,
 * function and type it uses is schema-qualified. Identifiers come validated (lower-case, no quotes).
 */
export function createSchemaBody(f: SchemaFamilies): string {
    const lit = (v: string) => `'${v}'`;
    const devBranches = f.developers
        .map(
            (d) => `    ELSIF SESSION_USER OPERATOR(pg_catalog.=) ${lit(d.name)} AND schema_name OPERATOR(pg_catalog.~) ${lit(`^${d.schema}_[a-z0-9_]+$`)} THEN
        owner_role := ${lit(f.devRole)};`,
        )
        .join("\n");
    const reserved = `ARRAY[${f.reserved.map(lit).join(", ")}]::pg_catalog.text[]`;
    return `
DECLARE
    owner_role pg_catalog.text;
    existing pg_catalog.text;
BEGIN
    IF schema_name IS NULL OR NOT (schema_name OPERATOR(pg_catalog.~) '^[a-z_][a-z0-9_]*$')
        OR pg_catalog.octet_length(schema_name) OPERATOR(pg_catalog.>) 63 THEN
        RAISE EXCEPTION 'dbt-platform: % is not a lower-case schema name of at most 63 bytes', schema_name
            USING ERRCODE = 'invalid_schema_name';
    END IF;
    IF schema_name OPERATOR(pg_catalog.~) '^pg_' OR schema_name OPERATOR(pg_catalog.=) ANY (${reserved}) THEN
        RAISE EXCEPTION 'dbt-platform: schema name % is reserved', schema_name USING ERRCODE = 'insufficient_privilege';
    ELSIF schema_name OPERATOR(pg_catalog.~) ${lit(devFamilyPattern(f))}
        AND pg_catalog.pg_has_role(SESSION_USER, ${lit(f.devRole)}, 'MEMBER') THEN
        owner_role := ${lit(f.devRole)};
${devBranches}
    ELSIF NOT (schema_name OPERATOR(pg_catalog.~) ${lit(devFamilyPattern(f))})${f.developers.map((d) => `
        AND NOT (schema_name OPERATOR(pg_catalog.~) ${lit(`^${d.schema}(_[a-z0-9_]+)?$`)})`).join("")}
        AND pg_catalog.pg_has_role(SESSION_USER, ${lit(f.prodRole)}, 'MEMBER') THEN
        owner_role := ${lit(f.prodRole)};
    ELSE
        RAISE EXCEPTION 'dbt-platform: % may not create schema %', SESSION_USER, schema_name USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT pg_catalog.pg_get_userbyid(n.nspowner) INTO existing FROM pg_catalog.pg_namespace AS n
    WHERE n.nspname OPERATOR(pg_catalog.=) schema_name;
    IF FOUND THEN
        IF existing OPERATOR(pg_catalog.=) owner_role THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'dbt-platform: schema % exists and is owned by %, not %', schema_name, existing, owner_role
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE pg_catalog.format('CREATE SCHEMA %I AUTHORIZATION %I', schema_name, owner_role);
END;
`;
}

/**
 * The dbt macro a project needs so that CI and developers create schemas through the platform's
 * function (the dev role has no CREATE on the database). Root-project macros win dbt's dispatch over
 * dbt-postgres's own `postgres__create_schema`; production bots go through the same function.
 */
export const CREATE_SCHEMA_MACRO = `{% macro postgres__create_schema(relation) -%}
  {#- dbt-platform: the dev role has no CREATE on the database; ${PLATFORM_SCHEMA}.create_schema creates only the caller's schema families. -#}
  {%- call statement('create_schema') -%}
    select "${PLATFORM_SCHEMA}".create_schema('{{ relation.without_identifier().schema | replace("'", "''") }}')
  {%- endcall -%}
{% endmacro %}
`;

/**
 * A query a production build runs before it writes (issue 11): one row per target schema that
 * exists and is not owned by `prodRole` (a squatted schema). Zero rows: safe to build. Schemas that
 * don't exist yet are fine (the build creates them, owned by the prod role).
 */
export function schemaOwnershipCheckSql(prodRole: string, schemas: readonly string[]): string {
    const lit = (v: string) => `'${v.replace(/'/g, "''")}'`;
    return (
        "select n.nspname as schema_name, pg_catalog.pg_get_userbyid(n.nspowner) as owner " +
        "from pg_catalog.pg_namespace as n " +
        `where n.nspname = any (array[${schemas.map(lit).join(", ")}]::text[]) ` +
        `and n.nspowner <> (select r.oid from pg_catalog.pg_roles as r where r.rolname = ${lit(prodRole)})`
    );
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
    /** Prefix of the per-pull-request schemas CI creates, `<prefix><n>` (default dbt_pr_). */
    pullRequestPrefix?: string;
    /** Per-developer logins with private schemas. */
    developers?: PostgresDeveloperArgs[];
    /** Revoke PUBLIC's default CONNECT/TEMP on the database (default true). */
    revokePublicConnect?: boolean;
    /** Adopt (import) the database and group roles a previous `pulumi destroy` retained (default false). */
    adoptRetained?: boolean;
    /** Host that dbt (not the provider) connects to; defaults to the admin connection's host. */
    dbtHost?: pulumi.Input<string>;
    /** Port that dbt connects to; defaults to the admin connection's port. */
    dbtPort?: pulumi.Input<number>;
    /** sslmode written into profiles.yml (default require). */
    dbtSslmode?: string;
    /** sslrootcert written into profiles.yml: an absolute CA bundle path on the runner, or `system` (libpq 16+ uses the OS store). */
    dbtSslrootcert?: string;
    /** Profile name in profiles.yml. */
    profile: string;
    /** dbt threads per target (default 4). */
    threads?: number;
    /** Name of the dbt target the deploy bot uses (default prod; release stages use their stage). */
    deployTarget?: string;
    /** dbt-postgres version the pipelines install (default the platform's pin). */
    adapterVersion?: string;
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
export class PostgresWarehouse extends pulumi.ComponentResource implements Warehouse<PostgresTargetConnection> {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: PostgresWarehouseArgs): void {
        normalise(name, args);
    }

    /** The access plan the constructor would declare (pure; for review and audit). */
    public static accessPlan(name: string, args: PostgresWarehouseArgs): AccessPlan {
        return postgresAccessPlan(normalise(name, args));
    }

    /** What the pipelines read of the warehouse the constructor would declare (pure; plans CI settings before registration). */
    public static pipelineWarehouse(name: string, args: PostgresWarehouseArgs): PipelineWarehouse {
        return postgresPipelineWarehouse(normalise(name, args));
    }

    /** The warehouse kind (contract). */
    public readonly kind = "postgres" as const;
    /** The adapter the pipelines install. */
    public readonly adapter: AdapterPackage;
    /** The credential secret per target: flat JSON of `credentialFields` (a secret). */
    public readonly credentialSecrets: pulumi.Output<Record<string, string>>;
    /** Keys of every target's credential JSON, in order. */
    public readonly credentialFields: readonly string[] = TARGET_FIELDS;
    /** Environment variables per target that profiles.yml reads. */
    public readonly targetEnv: Record<string, TargetEnvVar[]>;
    /** Per-PR schema naming, creation and cleanup. */
    public readonly pullRequestSchemas: PullRequestSchemas;
    /** The declared access plan. */
    public readonly accessPlan: AccessPlan;
    /** The deploy job refuses schemas the prod role does not own (issue 11). */
    public readonly deployCheck: DeployCheck;

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
        const pipeline = postgresPipelineWarehouse(model);
        this.adapter = pipeline.adapter;
        this.accessPlan = postgresAccessPlan(model);
        this.pullRequestSchemas = pipeline.pullRequestSchemas;
        this.deployCheck = pipeline.deployCheck!;

        const adminProvider = (key: string, databaseName: pulumi.Input<string>) =>
            new postgresql.Provider(
                `${name}-${key}`,
                {
                    host: args.connection!.host,
                    port: args.connection!.port,
                    username: args.connection!.username,
                    password: args.connection!.password ? pulumi.secret(args.connection!.password) : undefined,
                    sslmode: args.connection!.sslmode ?? "require",
                    superuser: args.connection!.superuser ?? true,
                    database: databaseName,
                },
                { parent: this },
            );
        const provider = args.provider ?? adminProvider("provider", "postgres");
        const child: pulumi.CustomResourceOptions = { parent: this, provider };

        // `pulumi destroy` keeps production data (issue 9 §3). Retained: the database (DROP DATABASE
        // would take everything), the production schemas (DROP SCHEMA … RESTRICT fails with 2BP01 once
        // dbt has built there, and CASCADE would drop production), and both group roles: the provider
        // deletes a role with REASSIGN OWNED BY … TO <admin>; DROP OWNED BY …; DROP ROLE … on its own
        // connection (database postgres), so a role owning or holding privileges on objects in the
        // warehouse database fails DROP ROLE with 2BP01, and where it succeeded the admin would own
        // production and masking could not rebuild it. What the stack alone owns is dropped: logins,
        // the CI and developer schemas (dropCascade), the platform schema and functions, every grant.
        // A following `up` adopts what was retained: `adoptRetained` imports the database and the
        // roles (CREATE would fail on them), and the schemas' ifNotExists path keeps their owner.
        const retained = (id: string): pulumi.CustomResourceOptions => ({
            ...child,
            retainOnDelete: true,
            ...(model.adoptRetained ? { import: id } : {}),
        });
        const database: pulumi.Output<string> = model.createDatabase
            ? new postgresql.Database(`${name}-database`, { name: model.database }, retained(model.database)).name
            : pulumi.output(model.database);

        // Logins are deleted through a provider connected to the warehouse database: the provider's
        // role delete runs REASSIGN OWNED / DROP OWNED on its own connection's database only, so from
        // `postgres` a login that owns anything in the warehouse (a developer's table in a dev-role
        // schema, a bot's object made after RESET ROLE) fails DROP ROLE with 2BP01. Connected here,
        // such leftovers pass to the admin and the login goes. CREATE ROLE is cluster-wide either way.
        const loginProvider = args.provider ?? adminProvider("provider-database", database);
        const loginChild: pulumi.CustomResourceOptions = { parent: this, provider: loginProvider };

        const groupRole = (key: "dev" | "prod", roleName: string) =>
            new postgresql.Role(`${name}-role-${key}`, { name: roleName, login: false, inherit: true }, retained(roleName));
        const groups = { dev: groupRole("dev", model.devRole), prod: groupRole("prod", model.prodRole) };

        const login = (kind: "user" | "developer", userName: string, group: postgresql.Role, mask: boolean, searchPaths?: string[]) => {
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
                    searchPaths,
                },
                loginChild,
            );
            return { role, password: password.result };
        };
        // Bots' search_path is pinned (no "$user": a schema named after the group role would come first):
        // the platform schema (admin-owned) and an explicit pg_catalog, then the schema their group owns,
        // then public only when revokePublicConnect made it read-only for PUBLIC (shared UDFs keep
        // resolving). Only the admin can put a function ahead of pg_catalog's, which is how dbt's
        // unqualified pg_terminate_backend reaches ours.
        const botSearchPath = (u: PostgresBotUserArgs) => [
            PLATFORM_SCHEMA,
            "pg_catalog",
            u.duty === "ci" ? model.ciSchema : model.productionSchemas[0],
            ...(model.revokePublicConnect ? ["public"] : []),
        ];
        const bots = model.users.map((u) => ({
            ...u,
            group: u.duty === "ci" ? groups.dev : groups.prod,
            ...login("user", u.name, u.duty === "ci" ? groups.dev : groups.prod, model.roleMasking, botSearchPath(u)),
        }));
        // Developers are never masked: their private schema is theirs alone.
        const devs = model.developers.map((d) => ({ ...d, ...login("developer", d.name, groups.dev, false) }));

        // The platform schema has no explicit owner: the provider's admin creates and owns it, so no
        // bot or developer can add objects to it. Ours alone, so destroy drops it with its functions.
        const platformSchema = new postgresql.Schema(
            `${name}-schema-platform`,
            { name: PLATFORM_SCHEMA, database, ifNotExists: true, dropCascade: true },
            child,
        );
        const platformFunctions = [
            new postgresql.Function(
                `${name}-function-terminate-backend`,
                {
                    database,
                    schema: PLATFORM_SCHEMA,
                    name: "pg_terminate_backend",
                    // pg_catalog's own signature, so the earlier schema on the search path wins.
                    args: [{ name: "pid", type: "integer" }, { name: "timeout", type: "bigint", default: "0" }],
                    returns: "boolean",
                    language: "plpgsql",
                    securityDefiner: true,
                    body: TERMINATE_OWN_BACKEND_BODY,
                },
                { ...child, dependsOn: [platformSchema] },
            ),
            new postgresql.Function(
                `${name}-function-create-schema`,
                {
                    database,
                    schema: PLATFORM_SCHEMA,
                    name: "create_schema",
                    args: [{ name: "schema_name", type: "text" }],
                    returns: "void",
                    language: "plpgsql",
                    securityDefiner: true,
                    body: createSchemaBody({
                        devRole: model.devRole,
                        prodRole: model.prodRole,
                        pullRequestPrefix: model.pullRequestPrefix,
                        ciSchema: model.ciSchema,
                        developers: model.developers,
                        reserved: reservedSchemaNames(model),
                    }),
                },
                { ...child, dependsOn: [platformSchema] },
            ),
        ];
        if (args.connection && args.connection.superuser === false) {
            // Without superuser (RDS, Cloud SQL) the admin may only create a schema AUTHORIZATION a
            // group role it is a member of (Postgres 15 check_is_member_of_role), and create_schema runs as it.
            for (const key of ["dev", "prod"] as const) {
                new postgresql.GrantRole(`${name}-admin-in-${key}`, { role: args.connection.username, grantRole: groups[key].name }, child);
            }
        }

        // Production schemas are retained on destroy and never cascade; the CI and developer schemas
        // hold only rebuildable output and are the stack's to drop, with what dbt built in them.
        const schema = (key: string, schemaName: string, owner: pulumi.Input<string>, production: boolean) =>
            new postgresql.Schema(
                `${name}-schema-${key}`,
                { name: schemaName, database, owner, ifNotExists: true, dropCascade: !production },
                production ? { ...child, retainOnDelete: true } : child,
            );
        if (model.users.some((u) => u.duty === "ci")) schema(model.ciSchema, model.ciSchema, groups.dev.name, false);
        const prodSchemas = model.productionSchemas.map((s) => schema(s, s, groups.prod.name, true));
        devs.forEach((d) => schema(d.schema, d.schema, d.role.name, false));

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
            // CONNECT to log in; TEMPORARY because incremental models and snapshots stage rows in
            // `create temporary table` from their second run on (revokePublicConnect took PUBLIC's TEMP
            // away). CREATE only for the prod role (custom production schemas): the dev role creates its
            // pull-request, CI and developer families through dbt_platform.create_schema, never any name.
            const privileges = key === "prod" ? ["CONNECT", "CREATE", "TEMPORARY"] : ["CONNECT", "TEMPORARY"];
            grant(`${key}-database`, { database, role: groups[key].name, objectType: "database", privileges }, [groups[key]]);
        }
        for (const key of ["dev", "prod"] as const) {
            // USAGE is the gate to the platform functions (EXECUTE stays PUBLIC's default; PUBLIC has no USAGE).
            grant(`${key}-usage-platform`, { database, role: groups[key].name, schema: PLATFORM_SCHEMA, objectType: "schema", privileges: ["USAGE"] }, [groups[key], platformSchema, ...platformFunctions]);
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
        this.targetEnv = pipeline.targetEnv;
        // The same JSON WarehouseCredentials stores: every field, as text.
        this.credentialSecrets = pulumi.secret(
            this.targets.apply((targets) =>
                Object.fromEntries(Object.entries(targets).map(([t, c]) => [t, JSON.stringify(Object.fromEntries(TARGET_FIELDS.map((f) => [f, String(c[f])])))])),
            ),
        );
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
                    sslrootcert: model.dbtSslrootcert,
                }),
            ),
        );

        this.registerOutputs({
            roles: this.roles,
            targets: this.targets,
            developerTargets: this.developerTargets,
            profileEnvironment: this.profileEnvironment,
            profilesYaml: this.profilesYaml,
            credentialSecrets: this.credentialSecrets,
        });
    }
}

/** The contract's pipeline fields of a normalised model: adapter, targets and their variables, PR schemas, deploy check. */
function postgresPipelineWarehouse(m: Model): PipelineWarehouse {
    const targetNames: Partial<Record<PostgresBotDuty, string>> = {};
    for (const u of m.users) targetNames[u.duty] = botTargetName(u.duty, m.deployTarget);
    // The CI target's schema is the pull request's, which the job computes per run.
    const targetEnv = Object.fromEntries(
        m.users.map((u) => {
            const t = botTargetName(u.duty, m.deployTarget);
            return [t, envVarsFor(t, TARGET_FIELDS, { secret: ["password"], perRun: u.duty === "ci" ? { schema: "pull-request-schema" } : {} })];
        }),
    );
    const pullRequestSchemas: PullRequestSchemas = {
        prefix: m.pullRequestPrefix,
        database: m.database,
        case: "lower",
        createdBy: "dbt",
        dropMacroName: DROP_SCHEMA_MACRO,
        dropMacro: dropSchemaMacro(m.pullRequestPrefix),
        // The reset claims the PR schema for its run (created through dbt_platform.create_schema); the cleanup honours the claim.
        dropMacroCall: "claim",
        // The dev role has no CREATE on the database: CI and developers create their schemas through dbt_platform.create_schema.
        createMacro: { name: "dbt_platform_create_schema", source: CREATE_SCHEMA_MACRO },
    };
    return {
        kind: "postgres",
        adapter: { type: "postgres", package: "dbt-postgres", version: m.adapterVersion },
        targetNames,
        targetEnv,
        credentialFields: TARGET_FIELDS,
        pullRequestSchemas,
        deployCheck: { macroName: SCHEMA_OWNERSHIP_MACRO, macro: schemaOwnershipMacro() },
    };
}

/** The declared access plan (contract) of a normalised model: what the constructor registers, as data. */
function postgresAccessPlan(m: Model): AccessPlan {
    const db = m.database;
    const dev = { name: m.devRole };
    const prod = { name: m.prodRole };
    const plan: AccessPlan = {
        roles: [
            { ...dev, kind: "group", comment: "developers and CI: read production, build in their own schema families" },
            { ...prod, kind: "group", comment: "owns production; every production bot acts as it (role masking)" },
        ],
        memberships: [],
        grants: [],
        ownerships: [],
        logins: [],
    };
    for (const u of m.users) {
        const group = u.duty === "ci" ? dev : prod;
        plan.memberships.push({ key: `user-${u.name}`, role: group, member: { name: u.name } });
        plan.logins.push({ name: u.name, duty: u.duty, roles: [group], ...(m.roleMasking ? { sessionRole: group } : {}), auth: "password" });
    }
    for (const d of m.developers) {
        plan.memberships.push({ key: `developer-${d.name}`, role: dev, member: { name: d.name } });
        plan.logins.push({ name: d.name, roles: [dev], auth: "password" });
    }
    const grant = (g: PlannedGrant) => plan.grants.push(g);
    grant({ key: "dev-database", privileges: ["CONNECT", "TEMPORARY"], on: { level: "object", objectType: "database", name: db }, to: dev });
    grant({ key: "prod-database", privileges: ["CONNECT", "CREATE", "TEMPORARY"], on: { level: "object", objectType: "database", name: db }, to: prod });
    for (const r of [dev, prod]) {
        grant({ key: `${r === dev ? "dev" : "prod"}-usage-platform`, privileges: ["USAGE"], on: { level: "object", objectType: "schema", name: PLATFORM_SCHEMA, database: db }, to: r });
    }
    for (const s of m.productionSchemas) {
        grant({ key: `dev-usage-${s}`, privileges: ["USAGE"], on: { level: "object", objectType: "schema", name: s, database: db }, to: dev });
        grant({ key: `dev-select-${s}`, privileges: ["SELECT"], on: { level: "schema", database: db, schema: s, objectTypePlural: "tables", scope: "all" }, to: dev });
        grant({ key: `defaults-dev-select-${s}`, privileges: ["SELECT"], on: { level: "schema", database: db, schema: s, objectTypePlural: "tables", scope: "future" }, to: dev, forCreator: prod });
        plan.ownerships.push({ key: `schema-${s}`, on: { level: "object", objectType: "schema", name: s, database: db }, to: prod });
    }
    grant({ key: "defaults-dev-schemas", privileges: ["USAGE"], on: { level: "database", database: db, objectTypePlural: "schemas", scope: "future" }, to: dev, forCreator: prod });
    grant({ key: "defaults-dev-tables", privileges: ["SELECT"], on: { level: "database", database: db, objectTypePlural: "tables", scope: "future" }, to: dev, forCreator: prod });
    if (m.users.some((u) => u.duty === "ci")) plan.ownerships.push({ key: `schema-${m.ciSchema}`, on: { level: "object", objectType: "schema", name: m.ciSchema, database: db }, to: dev });
    for (const d of m.developers) plan.ownerships.push({ key: `schema-${d.schema}`, on: { level: "object", objectType: "schema", name: d.schema, database: db }, to: { name: d.name } });
    return plan;
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
    pullRequestPrefix: string;
    revokePublicConnect: boolean;
    adoptRetained: boolean;
    dbtSslmode: string;
    dbtSslrootcert?: string;
    profile: string;
    threads: number;
    deployTarget: string;
    adapterVersion: string;
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
        pullRequestPrefix: args.pullRequestPrefix ?? "dbt_pr_",
        revokePublicConnect: args.revokePublicConnect ?? true,
        adoptRetained: args.adoptRetained ?? false,
        dbtSslmode: args.dbtSslmode ?? "require",
        dbtSslrootcert: args.dbtSslrootcert,
        profile: args.profile,
        threads: args.threads ?? 4,
        deployTarget: botTargetName("deploy", args.deployTarget),
        adapterVersion: args.adapterVersion ?? DBT_POSTGRES_VERSION,
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
    // The one pull-request prefix rule the config and the pipelines apply too.
    const prefixProblem = pullRequestPrefixProblem(m.pullRequestPrefix);
    if (prefixProblem) problems.push(`pullRequestPrefix = ${JSON.stringify(m.pullRequestPrefix)}: expected ${prefixProblem}`);
    // Reserved schema names: a schema named after a role is what "$user" resolves to (the search_path
    // hijack), and the provider would ALTER the owner of an existing public or system schema.
    const reserved = new Set(reservedSchemaNames(m));
    const declaredSchemas: [string, string][] = [
        ["ciSchema", m.ciSchema],
        ...m.productionSchemas.map((s, i): [string, string] => [`productionSchemas[${i}]`, s]),
        ...m.developers.map((d, i): [string, string] => [`developers[${i}].schema`, d.schema]),
    ];
    for (const [where, s] of declaredSchemas) {
        if (reserved.has(s)) problems.push(`${where} = ${JSON.stringify(s)}: expected a schema name that is not reserved (public, information_schema, ${PLATFORM_SCHEMA}, or a declared role or login)`);
    }
    // Production names must stay out of the families the dev role may create.
    const devFamily = new RegExp(devFamilyPattern(m));
    m.productionSchemas.forEach((s, i) => {
        if (devFamily.test(s) || m.developers.some((d) => s === d.schema || s.startsWith(`${d.schema}_`))) {
            problems.push(`productionSchemas[${i}] = ${JSON.stringify(s)}: expected a name outside the pull-request, CI and developer schema families`);
        }
    });
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
    if (m.dbtSslrootcert !== undefined && !/^(system|\/[A-Za-z0-9._\/-]{1,255})$/.test(m.dbtSslrootcert)) {
        problems.push(`dbtSslrootcert = ${JSON.stringify(m.dbtSslrootcert)}: expected system or an absolute path to a CA bundle (letters, digits, . _ - /)`);
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

/** Schema names nobody may declare or create: Postgres's own, the platform's, every role and login. */
function reservedSchemaNames(m: Pick<Model, "devRole" | "prodRole" | "users" | "developers">): string[] {
    return ["public", "information_schema", PLATFORM_SCHEMA, m.devRole, m.prodRole, ...m.users.map((u) => u.name), ...m.developers.map((d) => d.name)];
}

function dupes(values: string[]): string[] {
    return [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
}
