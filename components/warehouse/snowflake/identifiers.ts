/**
 * Snowflake identifier rules. Names are validated when args are normalised and quoted whenever
 * SQL is rendered. Only upper-case unquoted-safe names are accepted: dbt-snowflake does not quote
 * by default, so Snowflake folds what dbt writes to upper case, and a lower-case or mixed-case
 * quoted name would name a different object than the one dbt reaches.
 */

/** Unquoted identifier, already in the case Snowflake folds to. */
export const SNOWFLAKE_IDENTIFIER_PATTERN = /^[A-Z_][A-Z0-9_$]*$/;
export const SNOWFLAKE_MAX_IDENTIFIER_LENGTH = 255;

/** Account identifier `<organization>-<account>` (organization letters/digits, account also `_`). */
export const ACCOUNT_IDENTIFIER_PATTERN = /^([A-Za-z][A-Za-z0-9]*)-([A-Za-z][A-Za-z0-9_]*)$/;

/** Snowflake's reserved keywords: unusable as unquoted identifiers. */
const RESERVED = new Set(
    (
        "ACCOUNT ALL ALTER AND ANY AS BETWEEN BY CASE CAST CHECK COLUMN CONNECT CONNECTION CONSTRAINT CREATE CROSS CURRENT " +
        "CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DATABASE DELETE DISTINCT DROP ELSE EXISTS FALSE FOLLOWING FOR " +
        "FROM FULL GRANT GROUP GSCLUSTER HAVING ILIKE IN INCREMENT INNER INSERT INTERSECT INTO IS ISSUE JOIN LATERAL LEFT LIKE " +
        "LOCALTIME LOCALTIMESTAMP MINUS NATURAL NOT NULL OF ON OR ORDER ORGANIZATION QUALIFY REGEXP REVOKE RIGHT RLIKE ROW ROWS " +
        "SAMPLE SCHEMA SELECT SET SOME START TABLE TABLESAMPLE THEN TO TRIGGER TRUE TRY_CAST UNION UNIQUE UPDATE USING VALUES " +
        "VIEW WHEN WHENEVER WHERE WITH"
    ).split(" "),
);

/** System-defined roles: the platform grants its roles to SYSADMIN but never declares these. */
export const SYSTEM_ROLES = new Set(["ACCOUNTADMIN", "SECURITYADMIN", "SYSADMIN", "USERADMIN", "ORGADMIN", "GLOBALORGADMIN", "PUBLIC"]);
const SYSTEM_DATABASES = new Set(["SNOWFLAKE", "SNOWFLAKE_SAMPLE_DATA"]);

export type SnowflakeObjectKind = "role" | "user" | "database" | "schema" | "warehouse" | "network policy";

/** Returns why `name` is not a safe identifier for `what`, or undefined when it is. */
export function snowflakeIdentifierProblem(name: unknown, what: SnowflakeObjectKind): string | undefined {
    if (typeof name !== "string" || !SNOWFLAKE_IDENTIFIER_PATTERN.test(name)) {
        return "an upper-case identifier: a letter or underscore, then letters, digits, _ or $ (dbt-snowflake writes names unquoted, Snowflake folds them to upper case)";
    }
    if (name.length > SNOWFLAKE_MAX_IDENTIFIER_LENGTH) return `at most ${SNOWFLAKE_MAX_IDENTIFIER_LENGTH} characters`;
    if (RESERVED.has(name)) return `a name other than the reserved keyword ${name}`;
    if (what === "role" && SYSTEM_ROLES.has(name)) return `a role other than the system role ${name}`;
    if (what === "database" && SYSTEM_DATABASES.has(name)) return `a database other than the system database ${name}`;
    if (what === "schema" && (name === "INFORMATION_SCHEMA" || name === "PUBLIC")) return `a schema other than ${name}`;
    return undefined;
}

/** Quotes an identifier: `"…"` with `"` doubled. */
export function quoteSnowflakeIdent(name: string): string {
    if (name.includes("\u0000")) throw new Error(`identifier contains a NUL byte: ${JSON.stringify(name)}`);
    return `"${name.replace(/"/g, '""')}"`;
}

/** A database role's fully qualified name, as the snowflake provider expects it: `"DB"."ROLE"`. */
export function databaseRoleFqn(database: string, role: string): string {
    return `${quoteSnowflakeIdent(database)}.${quoteSnowflakeIdent(role)}`;
}

/** Quotes a string literal: `'…'` with `'` doubled and backslashes escaped. */
export function quoteSnowflakeLiteral(value: string): string {
    return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** Splits an account identifier into the provider's organization and account names. */
export function splitAccount(account: string): { organizationName: string; accountName: string } {
    const m = ACCOUNT_IDENTIFIER_PATTERN.exec(account);
    if (!m) throw new Error(`account ${JSON.stringify(account)}: expected <organization>-<account>`);
    return { organizationName: m[1], accountName: m[2] };
}

/** The public key as Snowflake's RSA_PUBLIC_KEY wants it: the base64 body on one line, no PEM header or footer. */
export function publicKeyBody(pem: string): string {
    const body = pem
        .replace(/-----BEGIN PUBLIC KEY-----/, "")
        .replace(/-----END PUBLIC KEY-----/, "")
        .replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]+=*$/.test(body) || /-----/.test(pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, ""))) {
        throw new Error("expected a PEM public key (-----BEGIN PUBLIC KEY-----)");
    }
    return body;
}
