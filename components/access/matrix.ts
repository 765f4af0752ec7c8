/**
 * The access matrix: for every login and role, what it may do in the warehouse database,
 * computed from the declared plan with Postgres privilege semantics (membership with INHERIT,
 * ownership, default privileges for what an owner builds later, role masking via the `role`
 * setting). test/access.test.ts proves each cell against a real Postgres.
 */
import { AccessPlan, PlanRole } from "./plan";

/** One row: what a principal may do. Schema lists are sorted. */
export interface MatrixRow {
    name: string;
    kind: "login" | "role";
    /** Bot duties the login serves, when the plan names them (Redshift: deploy and scheduler share one identity). */
    duties?: string[];
    /** The role a session starts as (role masking), the login itself otherwise; "" for a role. */
    sessionRole: string;
    /** May open a session on the database (logins), or holds CONNECT (roles). */
    connect: boolean;
    /** May CREATE SCHEMA in the database. */
    createSchema: boolean;
    /** Schemas it may create tables and views in. */
    create: string[];
    /** Schemas where it may replace or drop what the schema's owner built (dbt's rebuild). */
    replaceDrop: string[];
    /** Schemas whose relations, as built by the schema's owner, it may read. */
    read: string[];
    /** Schemas it owns (directly or through a role it uses). */
    own: string[];
}

export interface AccessMatrix {
    kind: AccessPlan["kind"];
    database: string;
    schemas: string[];
    rows: MatrixRow[];
}

/** The roles whose privileges `role` uses: itself and, through INHERIT, every role it belongs to. */
export function effectiveRoles(plan: AccessPlan, role: string): Set<string> {
    const byName = new Map(plan.roles.map((r) => [r.name, r]));
    const out = new Set<string>([role]);
    const queue = [role];
    while (queue.length) {
        const r = byName.get(queue.shift()!);
        if (!r || !r.inherit) continue;
        for (const m of r.memberOf) if (!out.has(m)) (out.add(m), queue.push(m));
    }
    return out;
}

/** Every schema the matrix shows: the plan's and the runtime families (`dbt_build_<n>`). */
export function matrixSchemas(plan: AccessPlan): string[] {
    return [...new Set([...planSchemas(plan), ...(plan.runtimeSchemas ?? []).map((s) => s.name)])].sort();
}

/** Every schema the plan mentions: declared ones and those that only carry grants (public). */
export function planSchemas(plan: AccessPlan): string[] {
    const names = new Set(plan.schemas.map((s) => s.name));
    for (const g of plan.grants) if (g.schema) names.add(g.schema);
    for (const d of plan.defaults) if (d.schema) names.add(d.schema);
    return [...names].sort();
}

function row(plan: AccessPlan, role: PlanRole, schemas: string[]): MatrixRow {
    const session = role.login ? (role.settings.role ?? role.name) : role.name;
    const uses = effectiveRoles(plan, session);
    const holders = new Set([...uses, "public"]);
    const has = (on: string, privilege: string, schema?: string, who = holders) =>
        plan.grants.some((g) => g.on === on && g.schema === schema && !g.objects && who.has(g.grantee) && g.privileges.includes(privilege));
    const ownerOf = new Map([...plan.schemas, ...(plan.runtimeSchemas ?? [])].map((s) => [s.name, s.owner]));
    const owns = (s: string) => uses.has(ownerOf.get(s) ?? "");
    const readsWhatOwnerBuilds = (s: string) => {
        const owner = ownerOf.get(s);
        if (!owner) return false;
        return plan.defaults.some(
            (d) => d.on === "table" && d.owner === owner && (d.schema === undefined || d.schema === s) && holders.has(d.grantee) && d.privileges.includes("SELECT"),
        );
    };
    // CONNECT is checked for the login itself, before the masking SET ROLE applies.
    const loginHolders = new Set([...effectiveRoles(plan, role.name), "public"]);
    return {
        name: role.name,
        kind: role.login ? "login" : "role",
        ...(role.duties ? { duties: role.duties } : {}),
        sessionRole: role.login ? session : "",
        connect: plan.publicConnect === true || has("database", "CONNECT", undefined, loginHolders),
        // Postgres and Redshift call it CREATE on the database; Snowflake CREATE SCHEMA.
        createSchema: has("database", "CREATE") || has("database", "CREATE SCHEMA"),
        create: schemas.filter((s) => owns(s) || has("schema", "CREATE", s)),
        replaceDrop: schemas.filter(owns),
        read: schemas.filter((s) => owns(s) || (has("schema", "USAGE", s) && readsWhatOwnerBuilds(s))),
        own: schemas.filter(owns),
    };
}

export function accessMatrix(plan: AccessPlan): AccessMatrix {
    const schemas = matrixSchemas(plan);
    return { kind: plan.kind, database: plan.database, schemas, rows: plan.roles.map((r) => row(plan, r, schemas)) };
}

/** What the cells mean, per warehouse kind. */
const MATRIX_NOTES: Record<AccessMatrix["kind"], string> = {
    postgres: "_read_ and _replace/drop_ refer to relations the schema's owner builds (with role masking: what any bot of that group builds).",
    redshift:
        "_read_ and _replace/drop_ refer to relations the schema's owner builds. Production is owned by one identity that the deploy and scheduler duties share; " +
        "`dbt_build_<n>` is pull request n's build schema family, created by the CI user.",
    snowflake:
        "`<DB>.*` is every schema of the database, existing and future (grants and ownership are database-level); `<DB>.<PREFIX><n>` is pull request n's schema family, " +
        "created by the CI role. _replace/drop_ needs ownership of what is built there (future ownership: whatever any production bot builds).",
};

/** "database X", or "databases X, Y" for kinds with several. */
export function databasesLabel(m: Pick<AccessMatrix, "database">): string {
    return m.database.includes(", ") ? `databases ${m.database}` : `database ${m.database}`;
}

const list = (xs: string[]) => (xs.length ? xs.join(", ") : "—");
const yes = (b: boolean) => (b ? "yes" : "no");

/** The matrix as a Markdown table for people. */
export function renderMatrixMarkdown(m: AccessMatrix, title = `Access matrix (${m.kind}, ${databasesLabel(m)})`): string {
    const lines = [
        `### ${title}`,
        "",
        "| login / role | kind | session runs as | connect | create schema | create in | replace/drop in | read | own |",
        "|---|---|---|---|---|---|---|---|---|",
        ...m.rows.map((r) =>
            `| ${r.name}${r.duties ? ` (${r.duties.join(", ")})` : ""} | ${r.kind} | ${r.sessionRole || "—"} | ${yes(r.connect)} | ${yes(r.createSchema)} | ${list(r.create)} | ${list(r.replaceDrop)} | ${list(r.read)} | ${list(r.own)} |`,
        ),
        "",
        MATRIX_NOTES[m.kind],
    ];
    return lines.join("\n") + "\n";
}

/** The matrix as flat cells `principal: capability`, the unit of a diff. */
export function matrixCells(m: AccessMatrix): string[] {
    const cells: string[] = [];
    for (const r of m.rows) {
        cells.push(`${r.name}: exists as ${r.kind}`);
        for (const d of r.duties ?? []) cells.push(`${r.name}: serves ${d}`);
        if (r.sessionRole && r.sessionRole !== r.name) cells.push(`${r.name}: session runs as ${r.sessionRole}`);
        if (r.connect) cells.push(`${r.name}: connect`);
        if (r.createSchema) cells.push(`${r.name}: create schema`);
        for (const [what, schemas] of [["create in", r.create], ["replace/drop in", r.replaceDrop], ["read", r.read], ["own", r.own]] as const) {
            for (const s of schemas) cells.push(`${r.name}: ${what} ${s}`);
        }
    }
    return cells;
}

export interface MatrixDiff {
    added: string[];
    removed: string[];
}

/** What the head commit grants that the base did not, and what it takes away. */
export function diffMatrices(base: AccessMatrix, head: AccessMatrix): MatrixDiff {
    const b = new Set(matrixCells(base));
    const h = new Set(matrixCells(head));
    return { added: [...h].filter((c) => !b.has(c)), removed: [...b].filter((c) => !h.has(c)) };
}

/** A diff as a fenced `diff` block for the PR comment. */
export function renderMatrixDiff(d: MatrixDiff): string {
    if (!d.added.length && !d.removed.length) return "No access changes.\n";
    return ["```diff", ...d.removed.map((c) => `- ${c}`), ...d.added.map((c) => `+ ${c}`), "```"].join("\n") + "\n";
}
