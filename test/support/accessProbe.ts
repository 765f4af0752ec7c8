/**
 * Probing an access matrix on a real Postgres: each privilege is tried in a transaction that is
 * rolled back; a cell is "denied" only on SQLSTATE 42501, so a missing table or a syntax error
 * cannot pass by accident. Shared by the Postgres and the Redshift-on-Postgres matrix tests.
 */
import type { Client, DatabaseError } from "pg";
import type { AccessMatrix, MatrixRow } from "../../components/access/matrix";

export const INSUFFICIENT_PRIVILEGE = "42501";

/** Runs `sql` in a transaction that is rolled back; true when allowed, false on 42501, throws otherwise. */
export async function allowed(client: Client, sql: string, params?: unknown[]): Promise<boolean> {
    await client.query("BEGIN");
    try {
        await client.query(sql, params as any[]);
        return true;
    } catch (err) {
        if ((err as DatabaseError).code === INSUFFICIENT_PRIVILEGE) return false;
        throw new Error(`${sql}: ${(err as Error).message}`);
    } finally {
        await client.query("ROLLBACK");
    }
}

/** The schema-level columns of one row, probed with `per` (the schemas where `sql(schema)` is allowed). */
export async function probeColumns(client: Client, per: (sql: (s: string) => string) => Promise<string[]>): Promise<Pick<MatrixRow, "createSchema" | "create" | "replaceDrop" | "read" | "own">> {
    return {
        createSchema: await allowed(client, "CREATE SCHEMA access_probe_new"),
        create: await per((s) => `CREATE TABLE ${s}.access_probe_new (x int)`),
        replaceDrop: await per((s) => `DROP TABLE ${s}.access_probe`),
        read: await per((s) => `SELECT x FROM ${s}.access_probe`),
        // COMMENT ON SCHEMA is reserved to the schema's owner.
        own: await per((s) => `COMMENT ON SCHEMA ${s} IS 'probe'`),
    };
}

/** Every cell of a matrix as text, for a cell-by-cell comparison. */
export function matrixCells(m: AccessMatrix): string[] {
    return m.rows.flatMap((r) => [
        `${r.name} session=${r.sessionRole}`,
        `${r.name} connect=${r.connect}`,
        `${r.name} createSchema=${r.createSchema}`,
        ...m.schemas.flatMap((s) => (["create", "replaceDrop", "read", "own"] as const).map((k) => `${r.name} ${k} ${s}=${r[k].includes(s)}`)),
    ]);
}

/** How many of the derived matrix's cells the probed one has. */
export function matchingCells(derived: AccessMatrix, probed: AccessMatrix): { matching: number; total: number } {
    const want = matrixCells(derived);
    const got = new Set(matrixCells(probed));
    return { matching: want.filter((c) => got.has(c)).length, total: want.length };
}
