/**
 * Redshift SQL, built as text by pure functions: the dynamic providers execute these statements,
 * and test/redshift-redshiftSql.test.ts pins them as golden SQL (sql/redshift-*.sql). Every identifier is
 * validated when the component or provider checks its inputs, and quoted here.
 *
 * Statements marked REDSHIFT_ONLY have no Postgres 15 equivalent with the same syntax; the tests
 * render them but never execute them (the Postgres proof runs the group-based plan only).
 */
import { quoteIdent, quoteLiteral } from "../postgres/identifiers";

/** Lower-case, unquoted-safe identifiers: what dbt and psql users type without quotes. */
export const REDSHIFT_IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]*$/;
/** Redshift identifiers are at most 127 bytes (Postgres, where the proof runs, keeps 63). */
export const REDSHIFT_MAX_IDENTIFIER_BYTES = 127;
/** Names Redshift reserves for principals, or treats specially in GRANT. */
const RESERVED_NAMES = ["public", "group", "role", "user", "all", "none", "current_user", "session_user", "rdsdb", "information_schema"];

/** What kind of object a name is for (schemas and principals have different reserved names). */
export type RedshiftObjectKind = "user" | "group" | "role" | "schema" | "database";

/** Returns why `name` is not a safe identifier for `what`, or undefined when it is. */
export function redshiftIdentifierProblem(name: unknown, what: RedshiftObjectKind): string | undefined {
    if (typeof name !== "string" || !REDSHIFT_IDENTIFIER_PATTERN.test(name)) {
        return "a lower-case identifier: a letter or underscore, then letters, digits or underscores";
    }
    if (Buffer.byteLength(name, "utf8") > REDSHIFT_MAX_IDENTIFIER_BYTES) return `at most ${REDSHIFT_MAX_IDENTIFIER_BYTES} characters`;
    if (name.startsWith("pg_") || name.startsWith("stl_") || name.startsWith("svv_")) return "a name not starting with pg_, stl_ or svv_ (system objects)";
    if (RESERVED_NAMES.includes(name)) return `a ${what} name other than the reserved "${name}"`;
    return undefined;
}

/** Who a privilege goes to. Groups and users run on Postgres too; roles are Redshift RBAC only. */
export interface RedshiftGrantee {
    kind: "group" | "user" | "role";
    name: string;
}

/** `GROUP "g"`, `"u"` or `ROLE "r"` as GRANT/REVOKE and ALTER DEFAULT PRIVILEGES spell them. */
export function redshiftGranteeSql(g: RedshiftGrantee): string {
    return g.kind === "group" ? `GROUP ${quoteIdent(g.name)}` : g.kind === "role" ? `ROLE ${quoteIdent(g.name)}` : quoteIdent(g.name);
}

/** Privileges per object type, in canonical order (the order GRANT statements are rendered in). */
export const REDSHIFT_PRIVILEGES = {
    database: ["CREATE", "TEMP"],
    schema: ["USAGE", "CREATE"],
    tables: ["SELECT", "INSERT", "UPDATE", "DELETE", "REFERENCES"],
} as const;
/** Privileges that exist only on Redshift (tables): GRANT DROP / GRANT ALTER ON TABLE. */
export const REDSHIFT_ONLY_TABLE_PRIVILEGES = ["ALTER", "DROP", "TRUNCATE"] as const;

/** ACL letters (aclitem text) of each privilege, shared by Postgres and Redshift. */
export const REDSHIFT_ACL_LETTERS: Record<string, string> = {
    SELECT: "r", INSERT: "a", UPDATE: "w", DELETE: "d", REFERENCES: "x", USAGE: "U", CREATE: "C", TEMP: "T",
};

/** Sorts privileges into canonical order and removes duplicates. */
export function redshiftCanonicalPrivileges(privileges: readonly string[], objectType: keyof typeof REDSHIFT_PRIVILEGES): string[] {
    const order: readonly string[] = REDSHIFT_PRIVILEGES[objectType];
    const up = privileges.map((p) => p.toUpperCase());
    return order.filter((p) => up.includes(p));
}

/**
 * The privileges `grantee` holds directly in an ACL as text (`{"group role_dev=U/admin",dbt=UC/admin}`
 * on Redshift, `{role_dev=U/admin}` on Postgres, where groups are roles). Inherited and PUBLIC
 * privileges do not count: drift is judged against what was granted to this grantee.
 */
export function redshiftAclPrivileges(acl: string | null | undefined, grantee: RedshiftGrantee, objectType: keyof typeof REDSHIFT_PRIVILEGES): string[] {
    if (!acl) return [];
    const letters = new Set<string>();
    // Names are validated identifiers ([a-z0-9_]): no quoting inside an aclitem to worry about.
    const re = new RegExp(`(?:^|[{,"\\s])(?:group |role )?${grantee.name}=([A-Za-z*]*)/`, "g");
    for (const m of acl.matchAll(re)) for (const ch of m[1].replace(/\*/g, "")) letters.add(ch);
    return REDSHIFT_PRIVILEGES[objectType].filter((p) => letters.has(REDSHIFT_ACL_LETTERS[p]));
}

const list = (privileges: readonly string[]) => privileges.join(", ");

/** The statements of each object kind. Passwords are literals: use `redactRedshiftSql` before logging. */
export const redshiftSql = {
    createUser: (name: string, password: string, connectionLimit?: number) =>
        `CREATE USER ${quoteIdent(name)} PASSWORD ${quoteLiteral(password)}` + (connectionLimit === undefined ? "" : ` CONNECTION LIMIT ${connectionLimit}`),
    alterUserPassword: (name: string, password: string) => `ALTER USER ${quoteIdent(name)} PASSWORD ${quoteLiteral(password)}`,
    alterUserConnectionLimit: (name: string, limit: number | undefined) =>
        `ALTER USER ${quoteIdent(name)} CONNECTION LIMIT ${limit === undefined ? "UNLIMITED" : limit}`,
    dropUser: (name: string) => `DROP USER ${quoteIdent(name)}`,
    createGroup: (name: string) => `CREATE GROUP ${quoteIdent(name)}`,
    dropGroup: (name: string) => `DROP GROUP ${quoteIdent(name)}`,
    addToGroup: (group: string, user: string) => `ALTER GROUP ${quoteIdent(group)} ADD USER ${quoteIdent(user)}`,
    dropFromGroup: (group: string, user: string) => `ALTER GROUP ${quoteIdent(group)} DROP USER ${quoteIdent(user)}`,
    createSchema: (name: string, owner: string) => `CREATE SCHEMA ${quoteIdent(name)} AUTHORIZATION ${quoteIdent(owner)}`,
    alterSchemaOwner: (name: string, owner: string) => `ALTER SCHEMA ${quoteIdent(name)} OWNER TO ${quoteIdent(owner)}`,
    commentSchema: (name: string, comment: string) => `COMMENT ON SCHEMA ${quoteIdent(name)} IS ${quoteLiteral(comment)}`,
    // RESTRICT, never CASCADE: destroying the stack must never drop built data silently.
    dropSchema: (name: string) => `DROP SCHEMA ${quoteIdent(name)} RESTRICT`,
    grantOnDatabase: (verb: "GRANT" | "REVOKE", privileges: readonly string[], database: string, g: RedshiftGrantee) =>
        `${verb} ${list(privileges)} ON DATABASE ${quoteIdent(database)} ${verb === "GRANT" ? "TO" : "FROM"} ${redshiftGranteeSql(g)}`,
    grantOnSchema: (verb: "GRANT" | "REVOKE", privileges: readonly string[], schema: string, g: RedshiftGrantee) =>
        `${verb} ${list(privileges)} ON SCHEMA ${quoteIdent(schema)} ${verb === "GRANT" ? "TO" : "FROM"} ${redshiftGranteeSql(g)}`,
    grantOnAllTables: (verb: "GRANT" | "REVOKE", privileges: readonly string[], schema: string, g: RedshiftGrantee) =>
        `${verb} ${list(privileges)} ON ALL TABLES IN SCHEMA ${quoteIdent(schema)} ${verb === "GRANT" ? "TO" : "FROM"} ${redshiftGranteeSql(g)}`,
    /** Applies to tables (and views) `forUser` creates later in `schema` (or anywhere when undefined). */
    defaultPrivileges: (verb: "GRANT" | "REVOKE", forUser: string, schema: string | undefined, privileges: readonly string[], g: RedshiftGrantee) =>
        `ALTER DEFAULT PRIVILEGES FOR USER ${quoteIdent(forUser)}` +
        (schema === undefined ? "" : ` IN SCHEMA ${quoteIdent(schema)}`) +
        ` ${verb} ${list(privileges)} ON TABLES ${verb === "GRANT" ? "TO" : "FROM"} ${redshiftGranteeSql(g)}`,

    // REDSHIFT_ONLY below: never executed on Postgres.
    /** A login that authenticates through IAM (GetClusterCredentials) only. */
    disablePassword: (name: string) => `ALTER USER ${quoteIdent(name)} PASSWORD DISABLE`,
    createRole: (name: string) => `CREATE ROLE ${quoteIdent(name)}`,
    dropRole: (name: string) => `DROP ROLE ${quoteIdent(name)}`,
    grantRole: (verb: "GRANT" | "REVOKE", role: string, to: RedshiftGrantee) =>
        `${verb} ROLE ${quoteIdent(role)} ${verb === "GRANT" ? "TO" : "FROM"} ${redshiftGranteeSql(to)}`,
    /** GRANT ALTER / DROP ON TABLE: lets a non-owner replace a relation (Redshift-only privileges). */
    grantTablePrivilege: (verb: "GRANT" | "REVOKE", privileges: readonly string[], schema: string, table: string, g: RedshiftGrantee) =>
        `${verb} ${list(privileges)} ON TABLE ${quoteIdent(schema)}.${quoteIdent(table)} ${verb === "GRANT" ? "TO" : "FROM"} ${redshiftGranteeSql(g)}`,
    /** Scoped permissions: current and future tables of a schema; roles and users only, never groups. */
    scopedTables: (verb: "GRANT" | "REVOKE", privileges: readonly string[], schema: string, database: string, g: RedshiftGrantee) => {
        if (g.kind === "group") throw new Error(`scoped permissions cannot be granted to groups (GROUP ${g.name}); use a role or a user`);
        return `${verb} ${list(privileges)} FOR TABLES IN SCHEMA ${quoteIdent(schema)} DATABASE ${quoteIdent(database)} ${verb === "GRANT" ? "TO" : "FROM"} ${redshiftGranteeSql(g)}`;
    },
};

/** The Redshift-only statement forms, for the README and the golden test's "not executed" list. */
export const REDSHIFT_ONLY_STATEMENTS = [
    "ALTER USER … PASSWORD DISABLE",
    "CREATE ROLE / DROP ROLE",
    "GRANT ROLE … TO …",
    "GRANT … TO ROLE …",
    "GRANT DROP / ALTER / TRUNCATE ON TABLE …",
    "GRANT … FOR TABLES IN SCHEMA … DATABASE … (scoped permissions)",
] as const;

/** A statement with every string literal after PASSWORD replaced, for logs and errors. */
export function redactRedshiftSql(statement: string): string {
    return statement.replace(/PASSWORD '(?:[^']|'')*'/g, "PASSWORD '***'");
}
