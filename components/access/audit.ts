/**
 * The drift audit: the live catalog against the declared access plan. The catalog is read with
 * queries any login may run (pg_roles, not pg_authid, which only superusers can read: pgbedrock
 * #49), turned into the same facts the plan declares, and compared. Drift is what is missing,
 * what is in excess, and what is there but unknown to the plan (logins, roles, schemas).
 */
import { AccessPlan } from "./plan";
import { planSchemas } from "./matrix";

export type DriftKind = "login" | "role" | "membership" | "privilege" | "ownership" | "default privilege" | "role setting" | "schema";

export interface Drift {
    kind: DriftKind;
    /** missing: declared, not live; excess: live, not declared; unknown: a live object the plan does not know; changed: live differs. */
    change: "missing" | "excess" | "unknown" | "changed";
    /** What it is about, readable and stable (the unit tests and the report name). */
    subject: string;
    /** Declared and live values of a changed fact. */
    declared?: string;
    live?: string;
}

/** The catalog, as rows of the audit queries. */
export interface PostgresCatalog {
    roles: { rolname: string; rolcanlogin: boolean }[];
    members: { role: string; member: string }[];
    settings: { role: string; setting: string }[];
    databaseAcl: { owner: string; grantee: string; privilege_type: string }[];
    schemas: { schema: string; owner: string }[];
    schemaAcl: { schema: string; owner: string; grantee: string; privilege_type: string }[];
    relationAcl: { schema: string; name: string; owner: string; grantee: string | null; privilege_type: string | null }[];
    defaultAcl: { owner: string; schema: string | null; objtype: string; grantee: string; privilege_type: string }[];
}

const GRANTEE = "CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(a.grantee) END AS grantee";

/** The audit's catalog queries, as data: every one readable by an unprivileged login. */
export const POSTGRES_AUDIT_QUERIES: Record<keyof PostgresCatalog, string> = {
    roles: "SELECT rolname, rolcanlogin FROM pg_catalog.pg_roles WHERE rolname !~ '^pg_' ORDER BY 1",
    members:
        "SELECT r.rolname AS role, m.rolname AS member FROM pg_catalog.pg_auth_members a " +
        "JOIN pg_catalog.pg_roles r ON r.oid = a.roleid JOIN pg_catalog.pg_roles m ON m.oid = a.member ORDER BY 1, 2",
    settings:
        "SELECT r.rolname AS role, unnest(s.setconfig) AS setting FROM pg_catalog.pg_db_role_setting s " +
        "JOIN pg_catalog.pg_roles r ON r.oid = s.setrole " +
        "WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())) ORDER BY 1, 2",
    databaseAcl:
        `SELECT pg_catalog.pg_get_userbyid(d.datdba) AS owner, ${GRANTEE}, a.privilege_type ` +
        "FROM pg_catalog.pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a WHERE d.datname = current_database()",
    schemas:
        "SELECT nspname AS schema, pg_catalog.pg_get_userbyid(nspowner) AS owner FROM pg_catalog.pg_namespace " +
        "WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname !~ '^pg_(toast|temp_)' ORDER BY 1",
    schemaAcl:
        `SELECT n.nspname AS schema, pg_catalog.pg_get_userbyid(n.nspowner) AS owner, ${GRANTEE}, a.privilege_type ` +
        "FROM pg_catalog.pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a",
    relationAcl:
        `SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_get_userbyid(c.relowner) AS owner, ${GRANTEE}, a.privilege_type ` +
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " +
        "LEFT JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a ON true WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')",
    defaultAcl:
        `SELECT pg_catalog.pg_get_userbyid(d.defaclrole) AS owner, n.nspname AS schema, d.defaclobjtype AS objtype, ${GRANTEE}, a.privilege_type ` +
        "FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a",
};

/** Anything that runs a query and returns rows (a pg Client or Pool). */
export interface Queryable {
    query(sql: string): Promise<{ rows: any[] }>;
}

export async function readPostgresCatalog(db: Queryable): Promise<PostgresCatalog> {
    const out: Partial<PostgresCatalog> = {};
    for (const [key, sql] of Object.entries(POSTGRES_AUDIT_QUERIES)) (out as any)[key] = (await db.query(sql)).rows;
    return out as PostgresCatalog;
}

export interface AuditOptions {
    /** Roles outside the plan's concern: the admin the provider connects as, the audit login itself. */
    ignoreRoles?: string[];
}

const DEFAULT_OBJTYPE: Record<string, string> = { r: "table", S: "sequence", f: "function", T: "type", n: "schema" };

/** A setting value as the server stores it, without identifier quotes or spacing differences. */
function normaliseSetting(key: string, value: string): string {
    return key === "search_path" || key === "role" ? value.split(",").map((v) => v.trim().replace(/^"(.*)"$/, "$1")).join(", ") : value;
}

/** Compares the live catalog with the declared plan; empty when they agree. */
export function auditPostgres(plan: AccessPlan, catalog: PostgresCatalog, options: AuditOptions = {}): Drift[] {
    const ignored = new Set(options.ignoreRoles ?? []);
    const declared = new Map(plan.roles.map((r) => [r.name, r]));
    const drifts: Drift[] = [];
    const setDiff = (kind: DriftKind, want: Set<string>, have: Set<string>) => {
        for (const s of want) if (!have.has(s)) drifts.push({ kind, change: "missing", subject: s });
        for (const s of have) if (!want.has(s)) drifts.push({ kind, change: "excess", subject: s });
    };

    // Roles and logins.
    const live = new Map(catalog.roles.filter((r) => !ignored.has(r.rolname)).map((r) => [r.rolname, r]));
    for (const r of plan.roles) {
        const l = live.get(r.name);
        if (!l) drifts.push({ kind: r.login ? "login" : "role", change: "missing", subject: r.name });
        else if (l.rolcanlogin !== r.login) drifts.push({ kind: "role", change: "changed", subject: `${r.name} login`, declared: String(r.login), live: String(l.rolcanlogin) });
    }
    for (const l of live.values()) if (!declared.has(l.rolname)) drifts.push({ kind: l.rolcanlogin ? "login" : "role", change: "unknown", subject: l.rolname });

    // Memberships touching a declared role.
    const membership = (member: string, role: string) => `${member} in ${role}`;
    setDiff(
        "membership",
        new Set([
            ...plan.roles.flatMap((r) => r.memberOf.map((m) => membership(r.name, m))),
            ...(plan.externalMemberships ?? []).filter((m) => !ignored.has(m.member)).map((m) => membership(m.member, m.role)),
        ]),
        new Set(catalog.members.filter((m) => (declared.has(m.member) || declared.has(m.role)) && !ignored.has(m.member) && !ignored.has(m.role)).map((m) => membership(m.member, m.role))),
    );

    // Role settings (role masking, search_path, timeouts) of declared roles.
    const setting = (role: string, key: string, value: string) => `${role} ${key}=${normaliseSetting(key, value)}`;
    setDiff(
        "role setting",
        new Set(plan.roles.flatMap((r) => Object.entries(r.settings).map(([k, v]) => setting(r.name, k, v)))),
        new Set(
            catalog.settings
                .filter((s) => declared.has(s.role))
                .map((s) => {
                    const i = s.setting.indexOf("=");
                    return setting(s.role, s.setting.slice(0, i), s.setting.slice(i + 1));
                }),
        ),
    );

    // Privileges on the database and on the plan's schemas; an owner's own rights are implicit.
    const privilege = (p: string, on: string, grantee: string) => `${p} on ${on} to ${grantee}`;
    const schemas = new Set(planSchemas(plan));
    const wantPrivileges = new Set<string>();
    for (const g of plan.grants) {
        if (g.on === "database") g.privileges.forEach((p) => wantPrivileges.add(privilege(p, `database ${plan.database}`, g.grantee)));
        if (g.on === "schema") g.privileges.forEach((p) => wantPrivileges.add(privilege(p, `schema ${g.schema}`, g.grantee)));
    }
    const havePrivileges = new Set<string>();
    for (const a of catalog.databaseAcl) if (a.grantee !== a.owner && !ignored.has(a.grantee)) havePrivileges.add(privilege(a.privilege_type, `database ${plan.database}`, a.grantee));
    for (const a of catalog.schemaAcl) {
        if (schemas.has(a.schema) && a.grantee !== a.owner && !ignored.has(a.grantee)) havePrivileges.add(privilege(a.privilege_type, `schema ${a.schema}`, a.grantee));
    }
    // Relations in the plan's schemas: what ALL … IN SCHEMA grants and the owner's default privileges give.
    const relations = new Map<string, { schema: string; owner: string; grants: Set<string> }>();
    for (const a of catalog.relationAcl) {
        if (!schemas.has(a.schema)) continue;
        const key = `${a.schema}.${a.name}`;
        const rel = relations.get(key) ?? { schema: a.schema, owner: a.owner, grants: new Set<string>() };
        relations.set(key, rel);
        if (a.grantee && a.privilege_type && a.grantee !== a.owner && !ignored.has(a.grantee)) rel.grants.add(privilege(a.privilege_type, `table ${key}`, a.grantee));
    }
    for (const [key, rel] of relations) {
        for (const g of plan.grants) {
            if (g.on === "table" && g.schema === rel.schema && (!g.objects || g.objects.includes(key.slice(rel.schema.length + 1)))) {
                g.privileges.forEach((p) => wantPrivileges.add(privilege(p, `table ${key}`, g.grantee)));
            }
        }
        for (const d of plan.defaults) {
            if (d.on === "table" && d.owner === rel.owner && (d.schema === undefined || d.schema === rel.schema)) d.privileges.forEach((p) => wantPrivileges.add(privilege(p, `table ${key}`, d.grantee)));
        }
        rel.grants.forEach((g) => havePrivileges.add(g));
    }
    setDiff("privilege", wantPrivileges, havePrivileges);

    // Schema ownership, and schemas the plan does not know.
    const liveSchemas = new Map(catalog.schemas.map((s) => [s.schema, s.owner]));
    for (const s of plan.schemas) {
        const owner = liveSchemas.get(s.name);
        if (owner === undefined) drifts.push({ kind: "schema", change: "missing", subject: s.name });
        // A schema declared without an owner belongs to whoever the provider connects as.
        else if (s.owner && owner !== s.owner) drifts.push({ kind: "ownership", change: "changed", subject: `schema ${s.name}`, declared: s.owner, live: owner });
    }
    // dbt creates custom, per-pull-request and developer schemas at run time (directly, or through the
    // platform's schema function), always owned by a declared role: those are expected, others unknown.
    for (const [schema, owner] of liveSchemas) {
        if (!schemas.has(schema) && !declared.has(owner)) drifts.push({ kind: "schema", change: "unknown", subject: schema, live: `owned by ${owner}` });
    }

    // Default privileges for objects a declared role creates later.
    const defaultPrivilege = (owner: string, schema: string | undefined | null, on: string, p: string, grantee: string) =>
        `${owner || "any owner"}${schema ? ` in schema ${schema}` : ""}: ${p} on new ${on}s to ${grantee}`;
    setDiff(
        "default privilege",
        new Set(plan.defaults.flatMap((d) => d.privileges.map((p) => defaultPrivilege(d.owner, d.schema, d.on, p, d.grantee)))),
        new Set(
            catalog.defaultAcl
                .filter((d) => d.grantee !== d.owner && !ignored.has(d.grantee) && !ignored.has(d.owner) && (declared.has(d.owner) || declared.has(d.grantee)))
                .map((d) => defaultPrivilege(d.owner, d.schema, DEFAULT_OBJTYPE[d.objtype] ?? d.objtype, d.privilege_type, d.grantee)),
        ),
    );
    return drifts.sort((a, b) => `${a.kind} ${a.subject}`.localeCompare(`${b.kind} ${b.subject}`));
}

/** One readable line per drift. */
export function describeDrift(d: Drift): string {
    switch (d.change) {
        case "missing":
            return `missing ${d.kind}: ${d.subject} (declared, not live)`;
        case "excess":
            return `excess ${d.kind}: ${d.subject} (live, not declared)`;
        case "unknown":
            return `unknown ${d.kind}: ${d.subject}${d.live ? ` (${d.live})` : ""}`;
        case "changed":
            return `changed ${d.kind}: ${d.subject} (declared ${d.declared}, live ${d.live})`;
    }
}

export function renderAuditReport(stack: string, drifts: Drift[]): string {
    if (!drifts.length) return `audit ${stack}: no drift — the live grants are the declared plan\n`;
    return [`audit ${stack}: ${drifts.length} drift${drifts.length === 1 ? "" : "s"} from the declared plan`, ...drifts.map((d) => `  - ${describeDrift(d)}`)].join("\n") + "\n";
}
