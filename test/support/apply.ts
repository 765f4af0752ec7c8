/**
 * Applies recorded postgresql resources to a real server the way the Pulumi engine would:
 * each resource starts as soon as everything it depends on has finished, on its own
 * connection, so resources without a dependency path between them really run concurrently.
 */
import { Client } from "pg";
import { createSql, deleteSql, existingSchemaSql, isTranslated, POSTGRES_TYPES, SqlStep } from "../../components/warehouse/postgres/providerSql";
import { Recorded } from "../../scripts/offline";
import { TestServer } from "./postgres";

export interface ApplyResult {
    /** Steps in the order they finished. */
    finished: SqlStep[];
}

/**
 * Applies the program's resources. With resources a previous destroy retained in place, this is the
 * engine's `up` over them: an `import` resource is only read (no SQL), and a Schema whose name
 * exists takes the provider's existing-schema path (it sets the owner).
 */
export async function applyRecorded(server: TestServer, resources: Recorded[]): Promise<ApplyResult> {
    const custom = resources.filter((r) => isTranslated(r.type));
    const onConnection = providerDatabase(resources);
    const unknown = resources.filter((r) => r.type.startsWith("postgresql:") && !isTranslated(r.type));
    if (unknown.length) throw new Error(`no SQL translation for ${unknown.map((r) => r.type).join(", ")}`);
    const byUrn = new Map(custom.map((r) => [r.urn, r]));
    const allByUrn = new Map(resources.map((r) => [r.urn, r]));
    const done = new Map<string, Promise<void>>();
    const finished: SqlStep[] = [];

    const run = (r: Recorded): Promise<void> => {
        let p = done.get(r.urn);
        if (!p) {
            p = (async () => {
                // Dependencies outside the translated set (passwords, providers, components) are already resolved;
                // a provider configured from a resource's output (the warehouse database) waits for it too.
                const viaProvider = allByUrn.get(r.provider.slice(0, r.provider.lastIndexOf("::")))?.dependencies ?? [];
                await Promise.all([...r.dependencies, ...viaProvider].filter((d) => byUrn.has(d)).map((d) => run(byUrn.get(d)!)));
                if (r.importId) return;
                let step = onConnection(r, createSql(r.type, r.name, r.inputs));
                if (r.type === POSTGRES_TYPES.schema) {
                    const found = await server.admin(r.inputs.database ?? "postgres", "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", [r.inputs.name]);
                    if (found.length > 0) step = existingSchemaSql(r.name, r.inputs);
                }
                await execute(server, step);
                finished.push(step);
            })();
            done.set(r.urn, p);
        }
        return p;
    };
    const results = await Promise.allSettled(custom.map(run));
    const failures = results.filter((x): x is PromiseRejectedResult => x.status === "rejected");
    if (failures.length) throw failures[0].reason;
    return { finished };
}

/**
 * `pulumi destroy` of the recorded resources: each translated resource that is not retainOnDelete is
 * deleted once everything that depends on it has been, one at a time (a valid engine order), with
 * the SQL the provider issues. Returns the steps run; throws naming the first that failed.
 */
export async function destroyRecorded(server: TestServer, resources: Recorded[]): Promise<SqlStep[]> {
    const custom = resources.filter((r) => isTranslated(r.type));
    const onConnection = providerDatabase(resources);
    const inSet = new Set(custom.map((r) => r.urn));
    // Reverse topological order: repeatedly delete a resource nothing remaining depends on.
    const remaining = new Map(custom.map((r) => [r.urn, r]));
    const steps: SqlStep[] = [];
    while (remaining.size > 0) {
        const dependedOn = new Set([...remaining.values()].flatMap((r) => r.dependencies.filter((d) => inSet.has(d))));
        const next = [...remaining.values()].filter((r) => !dependedOn.has(r.urn)).sort((a, b) => a.name.localeCompare(b.name))[0];
        if (!next) throw new Error("dependency cycle among resources");
        remaining.delete(next.urn);
        if (next.retainOnDelete) continue;
        const step = onConnection(next, deleteSql(next.type, next.name, next.inputs, server.adminUser));
        await execute(server, step);
        steps.push(step);
    }
    return steps;
}

/** A step without its own database runs on its provider's default database, as the provider does. */
function providerDatabase(resources: Recorded[]): (r: Recorded, step: SqlStep) => SqlStep {
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    return (r, step) => {
        if (step.database !== undefined) return step;
        // A provider reference is `<urn>::<id>`, and URNs contain "::" themselves.
        const db = byUrn.get(r.provider.slice(0, r.provider.lastIndexOf("::")))?.inputs.database;
        return { ...step, database: db && db !== "postgres" ? db : undefined };
    };
}

async function execute(server: TestServer, step: SqlStep): Promise<void> {
    const client = new Client(server.config(step.database ?? "postgres"));
    await client.connect();
    try {
        if (step.transaction) await client.query("BEGIN");
        for (const s of step.statements) await client.query(s.text, s.params as any[]);
        if (step.transaction) await client.query("COMMIT");
    } catch (err) {
        const detail = (err as { detail?: string }).detail;
        throw new Error(`${step.resource}${step.database ? ` (on ${step.database})` : ""}: ${(err as Error).message}${detail ? ` (${detail})` : ""}`);
    } finally {
        await client.end();
    }
}
