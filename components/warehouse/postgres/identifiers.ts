/**
 * Postgres identifier rules. Every name that reaches SQL passes through here twice:
 * validated when the stack config is parsed, quoted when SQL is built.
 */

/** Lower-case, unquoted-safe identifiers: what dbt and psql users type without quotes. */
export const IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]*$/;
/** NAMEDATALEN - 1: Postgres silently truncates longer names, which would alias two roles. */
export const MAX_IDENTIFIER_BYTES = 63;

/** Role names Postgres reserves or treats specially in GRANT / ALTER ROLE. */
const RESERVED_ROLE_NAMES = new Set(["public", "none", "current_user", "session_user", "current_role", "all"]);

/** Returns why `name` is not a safe identifier for `what`, or undefined when it is. */
export function identifierProblem(name: string, what: "role" | "schema" | "database"): string | undefined {
    if (!IDENTIFIER_PATTERN.test(name)) {
        return "a lower-case identifier: a letter or underscore, then letters, digits or underscores";
    }
    if (Buffer.byteLength(name, "utf8") > MAX_IDENTIFIER_BYTES) {
        return `at most ${MAX_IDENTIFIER_BYTES} characters (Postgres truncates longer names)`;
    }
    if (name.startsWith("pg_")) {
        return "a name not starting with pg_ (reserved for system objects)";
    }
    if (what === "role" && RESERVED_ROLE_NAMES.has(name)) {
        return `a role name other than the reserved "${name}"`;
    }
    if (what === "schema" && name === "information_schema") {
        return "a schema name other than information_schema";
    }
    return undefined;
}

/** Quotes an identifier the way libpq's PQescapeIdentifier / lib/pq's QuoteIdentifier do. */
export function quoteIdent(name: string): string {
    if (name.includes("\u0000")) {
        throw new Error(`identifier contains a NUL byte: ${JSON.stringify(name)}`);
    }
    return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes a string literal (standard_conforming_strings = on, the default since 9.1). */
export function quoteLiteral(value: string): string {
    if (value.includes("\u0000")) {
        throw new Error("literal contains a NUL byte");
    }
    return `'${value.replace(/'/g, "''")}'`;
}
