/**
 * Applies recorded postgresql resources to a real server the way the Pulumi engine would:
 * each resource starts as soon as everything it depends on has finished, on its own
 * connection, so resources without a dependency path between them really run concurrently.
 */
import { Client } from "pg";
import { createSql, isTranslated, SqlStep } from "../../components/warehouse/postgres/providerSql";
import { Recorded } from "../../scripts/offline";
import { TestServer } from "./postgres";

export interface ApplyResult {
    /** Steps in the order they finished. */
    finished: SqlStep[];
}

export async function applyRecorded(server: TestServer, resources: Recorded[]): Promise<ApplyResult> {
    const custom = resources.filter((r) => isTranslated(r.type));
    const unknown = resources.filter((r) => r.type.startsWith("postgresql:") && !isTranslated(r.type));
    if (unknown.length) throw new Error(`no SQL translation for ${unknown.map((r) => r.type).join(", ")}`);
    const byUrn = new Map(custom.map((r) => [r.urn, r]));
    const done = new Map<string, Promise<void>>();
    const finished: SqlStep[] = [];

    const run = (r: Recorded): Promise<void> => {
        let p = done.get(r.urn);
        if (!p) {
            p = (async () => {
                // Dependencies outside the translated set (passwords, providers, components) are already resolved.
                await Promise.all(r.dependencies.filter((d) => byUrn.has(d)).map((d) => run(byUrn.get(d)!)));
                const step = createSql(r.type, r.name, r.inputs);
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

async function execute(server: TestServer, step: SqlStep): Promise<void> {
    const client = new Client(server.config(step.database ?? "postgres"));
    await client.connect();
    try {
        if (step.transaction) await client.query("BEGIN");
        for (const s of step.statements) await client.query(s.text, s.params as any[]);
        if (step.transaction) await client.query("COMMIT");
    } catch (err) {
        throw new Error(`${step.resource}: ${(err as Error).message}`);
    } finally {
        await client.end();
    }
}
