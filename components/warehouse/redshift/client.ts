/**
 * How the Redshift providers reach the cluster: one `pg` connection per provider call, opened with
 * the admin connection from the resource's own (secret) inputs, or REDSHIFT_ADMIN_PASSWORD when the
 * inputs carry no password. Nothing here holds a connection or credential at module level: the
 * providers are serialised into every resource's `__provider` with whatever they reach.
 *
 * Transient failures (connection refused/reset, too many connections, serialisation failures and
 * Postgres' "tuple concurrently updated" between concurrent GRANTs) are retried per statement with
 * capped exponential backoff under an overall deadline; anything else fails at once with the
 * resource's name, the SQLSTATE and the statement (passwords redacted).
 */
import { Client } from "pg";
import { redactRedshiftSql } from "./sql";

/** The admin connection every Redshift resource carries as a secret input. */
export interface RedshiftAdminConnection {
    /** Cluster or workgroup endpoint (or the Postgres host in tests). */
    host: string;
    /** Port (Redshift default 5439). */
    port: number;
    /** Database the objects live in. */
    database: string;
    /** Administrative user (a superuser, or a user with CREATEUSER and ownership of the schemas). */
    user: string;
    /** Its password; when absent REDSHIFT_ADMIN_PASSWORD is read at call time. */
    password?: string;
    /** TLS: "require" (default; Redshift always offers TLS), "verify-full" or "disable" (local Postgres only). */
    sslmode?: "disable" | "require" | "verify-full";
}

/** Environment variable consulted per call when a connection has no password. */
export const REDSHIFT_ADMIN_PASSWORD_ENV = "REDSHIFT_ADMIN_PASSWORD";

/** Retry timing (tests shorten it); never credentials. */
export interface RedshiftRetryTuning {
    /** Attempts per statement including the first (default 6). */
    maxAttempts?: number;
    /** First delay in ms, doubled per attempt (default 250). */
    baseDelayMs?: number;
    /** Cap of one delay in ms (default 5000). */
    maxDelayMs?: number;
    /** Overall deadline of one statement's attempts in ms (default 60000). */
    deadlineMs?: number;
}

/** One logged statement. Reads are catalog SELECTs; writes change the cluster. */
export interface RedshiftSqlLogEntry {
    kind: "read" | "write";
    resource: string;
    sql: string;
}

/** Global slot a test (or a debugging session) fills with an array to receive every statement, redacted. */
export const REDSHIFT_SQL_LOG_SLOT = "dbt-platform/redshift-sql-log";

function logStatement(entry: RedshiftSqlLogEntry): void {
    const log = (globalThis as Record<symbol, unknown>)[Symbol.for(REDSHIFT_SQL_LOG_SLOT)];
    if (Array.isArray(log)) log.push(entry);
}

/** What a provider method runs statements through. */
export interface RedshiftSession {
    /** A catalog query with bind parameters. */
    read<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
    /** A DDL/DCL statement (identifiers quoted, literals escaped by the caller). */
    write(text: string): Promise<void>;
}

/** Codes worth another attempt: the cluster is busy or restarting, or two GRANTs raced. */
function transient(err: unknown): boolean {
    const e = err as { code?: string; message?: string };
    const code = e?.code ?? "";
    if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EAI_AGAIN"].includes(code)) return true;
    if (["40001", "40P01", "53300", "57P01", "57P03", "08000", "08001", "08003", "08006"].includes(code)) return true;
    return code === "XX000" && /tuple concurrently updated|serializable isolation violation/i.test(e.message ?? "");
}

function describeError(err: unknown): string {
    const e = err as { code?: string; message?: string };
    return `${e?.message ?? String(err)}${e?.code ? ` (SQLSTATE ${e.code})` : ""}`;
}

/** Checks a connection's shape; returns problems naming the field (never the password). */
export function redshiftConnectionProblems(c: unknown): string[] {
    if (typeof c !== "object" || c === null) return ["connection: expected { host, port, database, user, password? }"];
    const v = c as Record<string, unknown>;
    const problems: string[] = [];
    if (typeof v.host !== "string" || v.host.trim() === "") problems.push("connection.host: expected a host name");
    if (typeof v.port !== "number" || !Number.isInteger(v.port) || v.port < 1 || v.port > 65535) problems.push("connection.port: expected a port number");
    if (typeof v.database !== "string" || !/^[a-z_][a-z0-9_$]*$/.test(v.database)) problems.push("connection.database: expected a lower-case database name");
    if (typeof v.user !== "string" || v.user.trim() === "") problems.push("connection.user: expected the admin user name");
    if (v.password !== undefined && typeof v.password !== "string") problems.push("connection.password: expected a string (not shown)");
    if (v.sslmode !== undefined && !["disable", "require", "verify-full"].includes(v.sslmode as string)) {
        problems.push(`connection.sslmode: expected disable, require or verify-full (got ${JSON.stringify(v.sslmode)})`);
    }
    return problems;
}

/**
 * Opens a connection for one provider call, runs `fn`, and closes it. `resource` names what is being
 * managed in every error, e.g. `Redshift schema "analytics"`.
 */
export async function withRedshiftSession<T>(conn: RedshiftAdminConnection, resource: string, fn: (s: RedshiftSession) => Promise<T>, tuning?: RedshiftRetryTuning): Promise<T> {
    const password = conn.password ?? process.env[REDSHIFT_ADMIN_PASSWORD_ENV];
    if (password === undefined) {
        throw new Error(`${resource}: no admin password; pass connection.password (a secret) or set ${REDSHIFT_ADMIN_PASSWORD_ENV}.`);
    }
    const maxAttempts = tuning?.maxAttempts ?? 6;
    const baseDelayMs = tuning?.baseDelayMs ?? 250;
    const maxDelayMs = tuning?.maxDelayMs ?? 5000;
    const deadlineMs = tuning?.deadlineMs ?? 60_000;
    const sslmode = conn.sslmode ?? "require";
    let client: Client | undefined;

    const connect = async () => {
        const c = new Client({
            host: conn.host,
            port: conn.port,
            database: conn.database,
            user: conn.user,
            password,
            ssl: sslmode === "disable" ? false : { rejectUnauthorized: sslmode === "verify-full" },
            connectionTimeoutMillis: 15_000,
            application_name: "dbt-platform",
        });
        // An idle connection dropped by the server must not crash the provider host.
        c.on("error", () => {});
        await c.connect();
        return c;
    };

    const run = async (text: string, params: unknown[] | undefined, kind: RedshiftSqlLogEntry["kind"]) => {
        const started = Date.now();
        for (let attempt = 1; ; attempt++) {
            try {
                if (!client) client = await connect();
                if (attempt === 1) logStatement({ kind, resource, sql: redactRedshiftSql(text) });
                return (await client.query(text, params as unknown[] | undefined)).rows;
            } catch (err) {
                const broken = client !== undefined && ["ECONNRESET", "EPIPE", "57P01"].includes((err as { code?: string }).code ?? "");
                if (broken || client === undefined) {
                    await client?.end().catch(() => {});
                    client = undefined;
                }
                const delay = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
                if (!transient(err) || attempt >= maxAttempts || Date.now() - started + delay > deadlineMs) {
                    const tried = attempt > 1 ? ` after ${attempt} attempts` : "";
                    throw new Error(`${resource}: ${describeError(err)}${tried}; statement: ${redactRedshiftSql(text)}`);
                }
                await new Promise((r) => setTimeout(r, delay));
            }
        }
    };

    try {
        return await fn({
            read: async (text, params) => (await run(text, params, "read")) as never[],
            write: async (text) => {
                await run(text, undefined, "write");
            },
        });
    } finally {
        await client?.end().catch(() => {});
    }
}
