/**
 * The janitor: lists the PR schema families, decides, and drops. A family is orphaned when its pull
 * request is closed, or when its recorded creation time is older than the TTL (whatever the PR's
 * state: CI recreates the schema on the next push). Dry run by default; every decision is printed.
 */
import type { PullRequestState, PullRequestStatus } from "./pullRequests";
import { families, JANITOR_SQL, likePrefix, ListedSchema, PrSchemaFamily, WarehouseKind } from "./schemas";

/** Runs SQL on the warehouse: rows of a query with parameters. */
export interface SqlExecutor {
    query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

/** Options of one janitor run. */
export interface JanitorOptions {
    /** Warehouse kind (decides the SQL). */
    kind: WarehouseKind;
    /** Runs the SQL. */
    sql: SqlExecutor;
    /** `warehouse.schemas.pullRequestPrefix`. */
    prefix: string;
    /** Pull request states from the CI system. */
    pullRequests: PullRequestState;
    /** Hours after the recorded creation time at which a family is dropped anyway (undefined: no TTL). */
    ttlHours?: number;
    /** Drop for real (default false: only report). */
    execute?: boolean;
    /** Clock, for tests. */
    now?: Date;
    /** Where the report lines go (default console.log). */
    log?: (line: string) => void;
}

/** One family's decision. */
export interface JanitorDecision {
    family: PrSchemaFamily;
    /** The pull request's state on the CI system. */
    prState: PullRequestStatus;
    action: "drop" | "keep";
    reason: string;
}

/** What a run found and did. */
export interface JanitorReport {
    decisions: JanitorDecision[];
    /** Families decided for dropping (O). */
    orphaned: number;
    /** Families actually dropped (D; 0 in a dry run). */
    dropped: number;
    /** Families kept because their PR is open and within the TTL (K). */
    keptOpen: number;
    /** The summary line. */
    summary: string;
}

export async function runJanitor(o: JanitorOptions): Promise<JanitorReport> {
    const log = o.log ?? ((l: string) => console.log(l));
    const now = o.now ?? new Date();
    if (o.ttlHours !== undefined && !(Number.isFinite(o.ttlHours) && o.ttlHours > 0)) throw new Error(`janitor: ttlHours = ${o.ttlHours}: expected a positive number of hours`);
    const sql = JANITOR_SQL[o.kind];
    const rows = await o.sql.query<{ schema: string; mark: string | null }>(sql.list, [likePrefix(o.prefix)]);
    // Snowflake reports unquoted names upper-cased; dbt creates them unquoted.
    const listed: ListedSchema[] = rows.map((r) => ({ schema: o.kind === "snowflake" ? r.schema.toLowerCase() : r.schema, mark: r.mark }));
    const found = families(o.prefix, listed);
    const mode = o.execute ? "" : " (dry run)";

    const decisions: JanitorDecision[] = [];
    for (const family of found) {
        const state = await o.pullRequests.state(family.pr);
        const ageHours = family.createdAt ? (now.getTime() - family.createdAt.getTime()) / 3_600_000 : undefined;
        const expired = o.ttlHours !== undefined && ageHours !== undefined && ageHours > o.ttlHours;
        if (state === "closed") decisions.push({ family, prState: state, action: "drop", reason: `PR ${family.pr} closed` });
        else if (expired) decisions.push({ family, prState: state, action: "drop", reason: `PR ${family.pr} ${state}, created ${ageHours!.toFixed(0)} h ago, past the TTL of ${o.ttlHours} h` });
        else decisions.push({ family, prState: state, action: "keep", reason: state === "open" ? `PR ${family.pr} open` : `PR ${family.pr} not found on ${o.pullRequests.describe}, no TTL reached` });
    }

    let dropped = 0;
    for (const d of decisions) {
        const names = d.family.schemas.join(", ");
        if (d.action === "keep") {
            log(`janitor${mode}: keep ${names} (${d.reason})`);
            continue;
        }
        if (!o.execute) {
            log(`janitor${mode}: would drop ${names} (${d.reason})`);
            continue;
        }
        // Custom-schema variants first, the base schema last: an interrupted run leaves the family findable.
        for (const schema of [...d.family.schemas].reverse()) {
            for (const statement of sql.drop(schema)) await o.sql.query(statement);
        }
        dropped++;
        log(`janitor: dropped ${names} (${d.reason})`);
    }
    const orphaned = decisions.filter((d) => d.action === "drop").length;
    const keptOpen = decisions.filter((d) => d.action === "keep" && d.prState === "open").length;
    const summary = `janitor${mode}: dropped ${dropped} of ${orphaned} orphaned, kept ${keptOpen} open`;
    log(summary);
    return { decisions, orphaned, dropped, keptOpen, summary };
}
