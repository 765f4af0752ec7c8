/**
 * The SQL that the postgresql provider (pulumi-postgresql 3.18.1, bridging
 * cyrilgdn/terraform-provider-postgresql) issues to create each resource this library
 * declares. It serves two purposes: `npm run sql -- --stack <stack>` shows a reviewer the
 * exact statements `pulumi up` will run, and the access tests apply it to a real Postgres.
 * The mapping, statement by statement, is documented in sql/README.md.
 */
import { quoteIdent, quoteLiteral } from "./identifiers";

/** One provider operation: statements run on one connection, in one transaction or not. */
export interface SqlStep {
    /** Resource type token and logical name, for error messages. */
    resource: string;
    /** Database to connect to (the provider's default database when undefined). */
    database?: string;
    /** Whether the provider wraps the statements in one transaction. */
    transaction: boolean;
    statements: SqlStatement[];
}

export interface SqlStatement {
    text: string;
    params?: unknown[];
}

export const POSTGRES_TYPES = {
    database: "postgresql:index/database:Database",
    role: "postgresql:index/role:Role",
    schema: "postgresql:index/schema:Schema",
    grant: "postgresql:index/grant:Grant",
    grantRole: "postgresql:index/grantRole:GrantRole",
    defaultPrivileges: "postgresql:index/defaultPrivileges:DefaultPrivileges",
    function: "postgresql:index/function:Function",
} as const;

/** Whether `type` is a postgresql resource this module translates. */
export function isTranslated(type: string): boolean {
    return (Object.values(POSTGRES_TYPES) as string[]).includes(type);
}

/** `PUBLIC` is a keyword, not a role: the provider never quotes it. */
function grantee(role: string): string {
    return role.toLowerCase() === "public" ? "PUBLIC" : quoteIdent(role);
}

/** The provider takes an advisory lock on the role before changing its privileges. */
function lockRole(role: string): SqlStatement {
    return { text: "SELECT pg_advisory_xact_lock(oid::bigint) FROM pg_catalog.pg_roles WHERE rolname = $1", params: [role] };
}

const PLURAL: Record<string, string> = { table: "TABLES", sequence: "SEQUENCES", function: "FUNCTIONS", type: "TYPES", schema: "SCHEMAS", routine: "ROUTINES", procedure: "PROCEDURES" };

/** Translates the create of one resource into the provider's SQL. */
export function createSql(type: string, name: string, inputs: Record<string, any>): SqlStep {
    const resource = `${type} ${name}`;
    switch (type) {
        case POSTGRES_TYPES.database: {
            const opts: string[] = [];
            if (inputs.owner) opts.push(`OWNER ${quoteIdent(inputs.owner)}`);
            if (inputs.template) opts.push(`TEMPLATE ${quoteIdent(inputs.template)}`);
            if (inputs.encoding) opts.push(`ENCODING ${quoteLiteral(inputs.encoding)}`);
            if (inputs.connectionLimit !== undefined) opts.push(`CONNECTION LIMIT ${Number(inputs.connectionLimit)}`);
            // CREATE DATABASE cannot run inside a transaction block.
            return { resource, transaction: false, statements: [{ text: `CREATE DATABASE ${quoteIdent(inputs.name)}${opts.length ? " WITH " + opts.join(" ") : ""}` }] };
        }
        case POSTGRES_TYPES.role: {
            const opts: string[] = [];
            if (inputs.password) opts.push(`${inputs.encryptedPassword === false ? "UNENCRYPTED" : "ENCRYPTED"} PASSWORD ${quoteLiteral(inputs.password)}`);
            opts.push(`VALID UNTIL ${quoteLiteral(inputs.validUntil ?? "infinity")}`);
            opts.push(`CONNECTION LIMIT ${Number(inputs.connectionLimit ?? -1)}`);
            const flag = (on: boolean, yes: string, no: string) => opts.push(on ? yes : no);
            flag(inputs.superuser === true, "SUPERUSER", "NOSUPERUSER");
            flag(inputs.createDatabase === true, "CREATEDB", "NOCREATEDB");
            flag(inputs.createRole === true, "CREATEROLE", "NOCREATEROLE");
            flag(inputs.inherit !== false, "INHERIT", "NOINHERIT");
            flag(inputs.login === true, "LOGIN", "NOLOGIN");
            const role = quoteIdent(inputs.name);
            const statements: SqlStatement[] = [{ text: `CREATE ROLE ${role} WITH ${opts.join(" ")}` }];
            for (const member of inputs.roles ?? []) statements.push({ text: `GRANT ${quoteIdent(member)} TO ${role}` });
            if (inputs.searchPaths?.length) {
                statements.push({ text: `ALTER ROLE ${role} SET search_path TO ${inputs.searchPaths.map(quoteIdent).join(", ")}` });
            }
            if (inputs.statementTimeout) statements.push({ text: `ALTER ROLE ${role} SET statement_timeout TO ${Number(inputs.statementTimeout)}` });
            // Role masking: every session of this login starts as the group role.
            if (inputs.assumeRole) statements.push({ text: `ALTER ROLE ${role} SET ROLE ${quoteIdent(inputs.assumeRole)}` });
            return { resource, transaction: true, statements };
        }
        case POSTGRES_TYPES.schema: {
            const owner = inputs.owner ? ` AUTHORIZATION ${quoteIdent(inputs.owner)}` : "";
            const ifNotExists = inputs.ifNotExists === false ? "" : "IF NOT EXISTS ";
            return { resource, database: inputs.database, transaction: true, statements: [{ text: `CREATE SCHEMA ${ifNotExists}${quoteIdent(inputs.name)}${owner}` }] };
        }
        case POSTGRES_TYPES.grantRole: {
            const admin = inputs.withAdminOption ? " WITH ADMIN OPTION" : "";
            return { resource, transaction: true, statements: [{ text: `GRANT ${quoteIdent(inputs.grantRole)} TO ${quoteIdent(inputs.role)}${admin}` }] };
        }
        case POSTGRES_TYPES.grant:
            return grantSql(resource, inputs);
        case POSTGRES_TYPES.defaultPrivileges: {
            const objects = PLURAL[String(inputs.objectType).toLowerCase()];
            if (!objects) throw new Error(`${resource}: unsupported objectType ${inputs.objectType}`);
            const scope = `FOR ROLE ${quoteIdent(inputs.owner)}${inputs.schema ? ` IN SCHEMA ${quoteIdent(inputs.schema)}` : ""}`;
            const statements: SqlStatement[] = [
                lockRole(inputs.role),
                { text: `ALTER DEFAULT PRIVILEGES ${scope} REVOKE ALL ON ${objects} FROM ${grantee(inputs.role)}` },
            ];
            if (inputs.privileges?.length) {
                const withGrant = inputs.withGrantOption ? " WITH GRANT OPTION" : "";
                statements.push({ text: `ALTER DEFAULT PRIVILEGES ${scope} GRANT ${inputs.privileges.join(",")} ON ${objects} TO ${grantee(inputs.role)}${withGrant}` });
            }
            return { resource, database: inputs.database, transaction: true, statements };
        }
        case POSTGRES_TYPES.function:
            return { resource, database: inputs.database, transaction: true, statements: [{ text: functionSql(inputs) }] };
        default:
            throw new Error(`no SQL translation for ${resource}`);
    }
}

/**
 * postgresql.Function's createFunction (resource_postgresql_function.go): `CREATE FUNCTION`, the
 * arguments one per line, RETURNS and LANGUAGE always, VOLATILITY / PARALLEL only when not the
 * defaults (VOLATILE / UNSAFE), SECURITY DEFINER and STRICT when set, the body in $function$ quotes.
 */
function functionSql(inputs: Record<string, any>): string {
    const args: any[] = inputs.args ?? [];
    const argText = args
        .map((a) => `\n    ${a.mode ? `${a.mode} ` : ""}${a.name ? `${a.name} ` : ""}${a.type}${a.default ? ` DEFAULT ${a.default}` : ""}`)
        .join(",");
    const lines = [
        `CREATE FUNCTION ${quoteIdent(inputs.schema ?? "public")}.${quoteIdent(inputs.name)} (${argText}${args.length ? "\n" : ""})`,
        `RETURNS ${inputs.returns ?? "void"}`,
        `LANGUAGE ${inputs.language ?? "plpgsql"}`,
    ];
    if (inputs.volatility && inputs.volatility !== "VOLATILE") lines.push(inputs.volatility);
    if (inputs.securityDefiner) lines.push("SECURITY DEFINER");
    if (inputs.parallel && inputs.parallel !== "UNSAFE") lines.push(`PARALLEL ${inputs.parallel}`);
    if (inputs.strict) lines.push("STRICT");
    lines.push(`AS $function$${inputs.body}$function$`);
    return lines.join("\n");
}

/**
 * What the provider runs for a Schema whose name exists already (createSchema in
 * resource_postgresql_schema.go: it looks the name up in pg_namespace first and, when found, only sets
 * the owner). This is the path a re-created stack takes over a retained production schema.
 */
export function existingSchemaSql(name: string, inputs: Record<string, any>): SqlStep {
    const statements: SqlStatement[] = inputs.owner ? [{ text: `ALTER SCHEMA ${quoteIdent(inputs.name)} OWNER TO ${quoteIdent(inputs.owner)}` }] : [];
    return { resource: `${POSTGRES_TYPES.schema} ${name}`, database: inputs.database, transaction: true, statements };
}

/**
 * Translates the delete of one resource (`pulumi destroy`) into the provider's SQL, transcribed from
 * cyrilgdn/terraform-provider-postgresql (the code pulumi-postgresql 3.18.1 bridges):
 * - Role (resourcePostgreSQLRoleDelete): on the provider's default connection, one transaction:
 *   pgLockRole; `REASSIGN OWNED BY "r" TO "<admin>"`; `DROP OWNED BY "r"` (both act on that
 *   connection's database only, plus shared objects); `DROP ROLE "r"`.
 * - Schema: in its database, `DROP SCHEMA "s" RESTRICT|CASCADE` (dropCascade) when it still exists.
 * - Grant: pgLockRole (not for PUBLIC), then the same `REVOKE ALL PRIVILEGES ON …` create starts with.
 * - DefaultPrivileges: pgLockRole, `ALTER DEFAULT PRIVILEGES FOR ROLE … REVOKE ALL ON … FROM …`.
 * - GrantRole: `REVOKE "grantRole" FROM "role"`.
 * - Function: in its database, `DROP FUNCTION IF EXISTS "s"."f"(<non-OUT arg types>) RESTRICT|CASCADE`.
 * - Database: `DROP DATABASE "d"`, outside a transaction.
 * `adminUser` is the provider's login (the REASSIGN target).
 */
export function deleteSql(type: string, name: string, inputs: Record<string, any>, adminUser: string): SqlStep {
    const resource = `${type} ${name}`;
    switch (type) {
        case POSTGRES_TYPES.database:
            return { resource, transaction: false, statements: [{ text: `DROP DATABASE ${quoteIdent(inputs.name)}` }] };
        case POSTGRES_TYPES.role: {
            const role = quoteIdent(inputs.name);
            return {
                resource,
                transaction: true,
                statements: [
                    lockRole(inputs.name),
                    { text: `REASSIGN OWNED BY ${role} TO ${quoteIdent(adminUser)}` },
                    { text: `DROP OWNED BY ${role}` },
                    { text: `DROP ROLE ${role}` },
                ],
            };
        }
        case POSTGRES_TYPES.schema: {
            const mode = inputs.dropCascade ? "CASCADE" : "RESTRICT";
            // The provider skips the DROP when the schema is already gone; IF EXISTS says the same.
            return { resource, database: inputs.database, transaction: true, statements: [{ text: `DROP SCHEMA IF EXISTS ${quoteIdent(inputs.name)} ${mode}` }] };
        }
        case POSTGRES_TYPES.grantRole:
            return { resource, transaction: true, statements: [{ text: `REVOKE ${quoteIdent(inputs.grantRole)} FROM ${quoteIdent(inputs.role)}` }] };
        case POSTGRES_TYPES.grant: {
            const created = grantSql(resource, inputs);
            return { ...created, statements: created.statements.filter((st) => !st.text.startsWith("GRANT ")) };
        }
        case POSTGRES_TYPES.defaultPrivileges: {
            const created = createSql(type, name, inputs);
            return { ...created, statements: created.statements.filter((st) => !st.text.includes(" GRANT ")) };
        }
        case POSTGRES_TYPES.function: {
            const types = (inputs.args ?? []).filter((a: any) => a.mode !== "OUT").map((a: any) => a.type).join(",");
            const mode = inputs.dropCascade ? "CASCADE" : "RESTRICT";
            return {
                resource,
                database: inputs.database,
                transaction: true,
                statements: [{ text: `DROP FUNCTION IF EXISTS ${quoteIdent(inputs.schema ?? "public")}.${quoteIdent(inputs.name)}(${types}) ${mode}` }],
            };
        }
        default:
            throw new Error(`no SQL translation for deleting ${resource}`);
    }
}

/** postgresql.Grant: revoke everything the role has on the target, then grant the declared set. */
function grantSql(resource: string, inputs: Record<string, any>): SqlStep {
    const objectType = String(inputs.objectType).toLowerCase();
    const role = grantee(inputs.role);
    const privileges: string[] = inputs.privileges ?? [];
    const objects: string[] = inputs.objects ?? [];
    let target: string;
    switch (objectType) {
        case "database":
            target = `DATABASE ${quoteIdent(inputs.database)}`;
            break;
        case "schema":
            target = `SCHEMA ${quoteIdent(inputs.schema)}`;
            break;
        case "table":
        case "sequence":
        case "function":
            target = objects.length
                ? `${objectType.toUpperCase()} ${objects.map((o) => `${quoteIdent(inputs.schema)}.${quoteIdent(o)}`).join(", ")}`
                : `ALL ${objectType.toUpperCase()}S IN SCHEMA ${quoteIdent(inputs.schema)}`;
            break;
        default:
            throw new Error(`${resource}: unsupported objectType ${inputs.objectType}`);
    }
    const statements: SqlStatement[] = [];
    if (role !== "PUBLIC") statements.push(lockRole(inputs.role));
    statements.push({ text: `REVOKE ALL PRIVILEGES ON ${target} FROM ${role}` });
    if (privileges.length) {
        statements.push({ text: `GRANT ${privileges.join(",")} ON ${target} TO ${role}${inputs.withGrantOption ? " WITH GRANT OPTION" : ""}` });
    }
    // Database-level grants run on the provider's default connection; the rest inside the database.
    return { resource, database: objectType === "database" ? undefined : inputs.database, transaction: true, statements };
}

/** Renders steps as a reviewable SQL script (secrets redacted). */
export function renderScript(steps: SqlStep[], redact: (s: string) => string = redactPasswords): string {
    const lines: string[] = [];
    let db: string | undefined = "";
    for (const step of steps) {
        if (step.database !== db) {
            lines.push(step.database ? `\\connect ${step.database}` : "\\connect postgres");
            db = step.database;
        }
        lines.push(`-- ${step.resource}`);
        if (step.transaction) lines.push("BEGIN;");
        for (const s of step.statements) {
            const text = s.params ? s.text.replace(/\$(\d+)/g, (_, i) => quoteLiteral(String(s.params![Number(i) - 1]))) : s.text;
            lines.push(`${redact(text)};`);
        }
        if (step.transaction) lines.push("COMMIT;");
    }
    return lines.join("\n") + "\n";
}

/** Replaces password literals so a rendered script can be shared. */
export function redactPasswords(sql: string): string {
    return sql.replace(/PASSWORD '(?:[^']|'')*'/g, "PASSWORD '[secret]'");
}
