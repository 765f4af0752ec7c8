/**
 * The drift audit's catalog queries for Redshift and Snowflake, as data, and the adapters that
 * turn their documented result columns into the warehouse-neutral catalog auditPostgres compares
 * with the plan (the comparison is the same; only reading the catalog differs).
 *   Redshift: SVV_* views (svv_user_info, svv_roles, svv_user_grants, svv_role_grants,
 *     svv_database_privileges, svv_schema_privileges, svv_relation_privileges, svv_default_privileges)
 *     and pg_user / pg_namespace: no superuser needed; a regular user sees the rows of objects it can
 *     see, so the audit user is given the read-only `sys:monitor` role to see every row.
 *   Snowflake: SHOW USERS / ROLES / SCHEMAS, SHOW GRANTS TO ROLE|USER, SHOW FUTURE GRANTS IN DATABASE|SCHEMA,
 *     run by a role granted MANAGE GRANTS or the owner roles' USAGE (read-only).
 */
import { AuditOptions, auditPostgres, Drift, DriftKind, PostgresCatalog } from "./audit";
import { DeclaredWarehouse, redshiftPlanFromContract, snowflakePrincipal } from "./contract";
import { planSchemas } from "./matrix";
import { AccessPlan } from "./plan";

/** The neutral catalog every warehouse's rows are turned into. */
export type WarehouseCatalog = PostgresCatalog;

export const REDSHIFT_AUDIT_QUERIES = {
    users: "SELECT user_name FROM svv_user_info",
    roles: "SELECT role_name FROM svv_roles WHERE role_name NOT LIKE 'sys:%'",
    // The platform's groups (RedshiftWarehouse declares groups; RBAC roles only mirror them) and their users.
    groups: "SELECT g.groname, u.usename FROM pg_group g LEFT JOIN pg_user u ON u.usesysid = ANY(g.grolist)",
    userGrants: "SELECT user_name, role_name FROM svv_user_grants",
    roleGrants: "SELECT role_name, granted_role_name FROM svv_role_grants",
    settings: "SELECT usename, array_to_string(useconfig, '\\x1f') AS useconfig FROM pg_user WHERE useconfig IS NOT NULL",
    databasePrivileges:
        "SELECT p.database_name, p.privilege_type, p.identity_name, p.identity_type, u.usename AS owner " +
        "FROM svv_database_privileges p JOIN pg_database d ON d.datname = p.database_name JOIN pg_user u ON u.usesysid = d.datdba WHERE p.database_name = current_database()",
    schemas: "SELECT n.nspname AS schema_name, u.usename AS owner FROM pg_namespace n JOIN pg_user u ON u.usesysid = n.nspowner WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'",
    schemaPrivileges: "SELECT namespace_name, privilege_type, identity_name, identity_type FROM svv_schema_privileges",
    relationPrivileges:
        "SELECT p.namespace_name, p.relation_name, p.privilege_type, p.identity_name, t.tableowner AS owner " +
        "FROM svv_relation_privileges p LEFT JOIN pg_tables t ON t.schemaname = p.namespace_name AND t.tablename = p.relation_name",
    defaultPrivileges: "SELECT schema_name, object_type, owner_name, privilege_type, grantee_name, grantee_type FROM svv_default_privileges",
} as const;

export type RedshiftRows = { [K in keyof typeof REDSHIFT_AUDIT_QUERIES]: Record<string, any>[] };

const REDSHIFT_OBJECT: Record<string, string> = { RELATION: "r", FUNCTION: "f", PROCEDURE: "f" };

export function redshiftCatalog(rows: RedshiftRows): WarehouseCatalog {
    const grantee = (name: string, type: string) => (String(type).toLowerCase() === "public" ? "public" : name);
    const schemaOwner = new Map(rows.schemas.map((s) => [s.schema_name, s.owner]));
    return {
        roles: [
            ...rows.users.map((u) => ({ rolname: u.user_name, rolcanlogin: true })),
            ...rows.roles.map((r) => ({ rolname: r.role_name, rolcanlogin: false })),
            ...[...new Set(rows.groups.map((g) => g.groname as string))].map((rolname) => ({ rolname, rolcanlogin: false })),
        ],
        members: [
            ...rows.userGrants.map((g) => ({ role: g.role_name, member: g.user_name })),
            ...rows.roleGrants.map((g) => ({ role: g.granted_role_name, member: g.role_name })),
            ...rows.groups.filter((g) => g.usename).map((g) => ({ role: g.groname, member: g.usename })),
        ],
        settings: rows.settings.flatMap((s) => String(s.useconfig).split("\x1f").map((setting) => ({ role: s.usename, setting }))),
        databaseAcl: rows.databasePrivileges.map((p) => ({ owner: p.owner, grantee: grantee(p.identity_name, p.identity_type), privilege_type: p.privilege_type })),
        schemas: rows.schemas.map((s) => ({ schema: s.schema_name, owner: s.owner })),
        schemaAcl: rows.schemaPrivileges.map((p) => ({ schema: p.namespace_name, owner: schemaOwner.get(p.namespace_name) ?? "", grantee: grantee(p.identity_name, p.identity_type), privilege_type: p.privilege_type })),
        relationAcl: rows.relationPrivileges.map((p) => ({ schema: p.namespace_name, name: p.relation_name, owner: p.owner ?? "", grantee: p.identity_name, privilege_type: p.privilege_type })),
        defaultAcl: rows.defaultPrivileges.map((d) => ({
            owner: d.owner_name,
            schema: d.schema_name || null,
            objtype: REDSHIFT_OBJECT[String(d.object_type).toUpperCase()] ?? d.object_type,
            grantee: grantee(d.grantee_name, d.grantee_type),
            privilege_type: d.privilege_type,
        })),
    };
}

/** Audits recorded Redshift rows against the plan. */
export function auditRedshift(plan: AccessPlan, rows: RedshiftRows, options?: AuditOptions): Drift[] {
    const catalog = redshiftCatalog(rows);
    // Every Redshift database has a `public` schema owned by the cluster's admin: not the plan's unless it says so.
    const declared = new Set(planSchemas(plan));
    catalog.schemas = catalog.schemas.filter((s) => s.schema !== "public" || declared.has("public"));
    return auditPostgres(plan, catalog, options);
}

/** Audits recorded Redshift rows against the warehouse component's declared plan (the contract's accessPlan). */
export function auditRedshiftDeclared(w: DeclaredWarehouse, rows: RedshiftRows, options?: AuditOptions): Drift[] {
    return auditRedshift(redshiftPlanFromContract(w), rows, options);
}

/**
 * Snowflake's catalog is read with SHOW commands; some run once per database, role, database role
 * or schema of the plan (`each`). Rows of a per-database command whose output has no database
 * column (SHOW DATABASE ROLES, SHOW GRANTS TO DATABASE ROLE) carry the database they ran in as
 * `database_name`, as the runner records them.
 */
export const SNOWFLAKE_AUDIT_QUERIES = {
    users: { sql: "SHOW USERS" },
    roles: { sql: "SHOW ROLES" },
    databaseRoles: { sql: "SHOW DATABASE ROLES IN DATABASE {database}", each: "database" },
    schemas: { sql: "SHOW SCHEMAS IN DATABASE {database}", each: "database" },
    tables: { sql: "SHOW TABLES IN DATABASE {database}", each: "database" },
    views: { sql: "SHOW VIEWS IN DATABASE {database}", each: "database" },
    grantsOfRole: { sql: "SHOW GRANTS OF ROLE {role}", each: "role" },
    grantsToRole: { sql: "SHOW GRANTS TO ROLE {role}", each: "role" },
    grantsToDatabaseRole: { sql: "SHOW GRANTS TO DATABASE ROLE {database}.{databaseRole}", each: "databaseRole" },
    futureGrantsInDatabase: { sql: "SHOW FUTURE GRANTS IN DATABASE {database}", each: "database" },
    futureGrantsInSchema: { sql: "SHOW FUTURE GRANTS IN SCHEMA {database}.{schema}", each: "schema" },
} as const;

export type SnowflakeRows = { [K in keyof typeof SNOWFLAKE_AUDIT_QUERIES]: Record<string, any>[] };

/** Roles every Snowflake account has; not part of any plan (the plan may name SYSADMIN as a receiver). */
export const SNOWFLAKE_SYSTEM_ROLES = ["ACCOUNTADMIN", "ORGADMIN", "PUBLIC", "SECURITYADMIN", "SYSADMIN", "USERADMIN"];

/** Snowflake identifiers are case-insensitive (stored upper-case): compare folded. */
const fold = (s: unknown) => String(s ?? "").toUpperCase();

/** Splits `DB.SCHEMA.<TABLE>` / `DB.SCHEMA` / `DB.<SCHEMA>` names from SHOW output. */
function parts(name: string): string[] {
    return String(name).split(".").map((p) => p.replace(/^"(.*)"$/, "$1"));
}

/** Schemas every database has, outside any plan: INFORMATION_SCHEMA (Snowflake's) and PUBLIC (the database owner's). */
const BUILT_IN_SCHEMAS = new Set(["INFORMATION_SCHEMA", "PUBLIC"]);
const SINGULAR: Record<string, string> = { SCHEMAS: "schema", TABLES: "table", VIEWS: "view" };

/**
 * Audits recorded Snowflake SHOW results against the warehouse component's declared plan (the
 * contract's accessPlan). Grants on ALL objects of a database are expected on every existing
 * object of that type; FUTURE grants and future ownership are compared as SHOW FUTURE GRANTS shows
 * them; where the plan gives future ownership of a type to a role, every existing object of that
 * type (outside the built-in schemas) must be owned by it. Schema-level future grants are all
 * excess: the plan declares none, and Snowflake would let them override the database-level ones.
 */
export function auditSnowflakeDeclared(w: DeclaredWarehouse, rows: SnowflakeRows, options: AuditOptions = {}): Drift[] {
    const plan = w.accessPlan;
    const ignored = new Set((options.ignoreRoles ?? []).map(fold));
    const key = (r: { name: string; database?: string }) => fold(snowflakePrincipal(r));
    const system = new Set(SNOWFLAKE_SYSTEM_ROLES);
    const drifts: Drift[] = [];
    const setDiff = (kind: DriftKind, want: Set<string>, have: Set<string>) => {
        for (const x of want) if (!have.has(x)) drifts.push({ kind, change: "missing", subject: x });
        for (const x of have) if (!want.has(x)) drifts.push({ kind, change: "excess", subject: x });
    };

    // Principals.
    const users = new Set(plan.logins.map((l) => fold(l.name)));
    const roles = new Set(plan.roles.filter((r) => !r.database).map(key));
    const databaseRoles = new Set(plan.roles.filter((r) => r.database).map(key));
    const declared = new Set([...users, ...roles, ...databaseRoles]);
    const databases = new Set(snowflakePlanDatabases(w));
    const liveUsers = rows.users.map((u) => fold(u.name)).filter((n) => !ignored.has(n));
    const liveRoles = rows.roles.map((r) => fold(r.name)).filter((n) => !ignored.has(n) && !system.has(n));
    const liveDatabaseRoles = rows.databaseRoles.map((r) => `${fold(r.database_name)}.${fold(r.name)}`).filter((n) => !ignored.has(n));
    for (const [kind, want, have] of [
        ["login", users, liveUsers],
        ["role", new Set([...roles].filter((r) => !system.has(r))), liveRoles],
        ["role", databaseRoles, liveDatabaseRoles],
    ] as const) {
        const live = new Set(have);
        for (const n of want) if (!live.has(n)) drifts.push({ kind, change: "missing", subject: n });
        for (const n of live) if (!want.has(n)) drifts.push({ kind, change: "unknown", subject: n });
    }

    // Memberships (role hierarchy and users' roles) touching a declared principal.
    const membership = (member: string, role: string) => `${member} in ${role}`;
    const wantMembers = new Set([
        ...plan.memberships.map((m) => membership(key(m.member), key(m.role))),
        ...plan.logins.flatMap((l) => l.roles.map((r) => membership(fold(l.name), key(r)))),
    ]);
    const haveMembers = new Set<string>();
    for (const g of rows.grantsOfRole) haveMembers.add(membership(fold(g.grantee_name), fold(g.role)));
    const granteeOf = (g: Record<string, any>) =>
        fold(g.granted_to) === "DATABASE_ROLE" && !String(g.grantee_name).includes(".") ? `${fold(g.database_name)}.${fold(g.grantee_name)}` : fold(g.grantee_name);
    for (const g of [...rows.grantsToRole, ...rows.grantsToDatabaseRole]) {
        const on = fold(g.granted_on);
        if ((on === "ROLE" || on === "DATABASE_ROLE") && fold(g.privilege) === "USAGE") haveMembers.add(membership(granteeOf(g), parts(g.name).map(fold).join(".")));
    }
    const touches = (m: string) => {
        const [member, role] = m.split(" in ");
        return (declared.has(member) || declared.has(role)) && !ignored.has(member) && !ignored.has(role);
    };
    setDiff("membership", wantMembers, new Set([...haveMembers].filter(touches)));

    // A user's default role: Snowflake's counterpart of role masking (every session starts as the functional role).
    setDiff(
        "role setting",
        new Set(plan.logins.filter((l) => l.sessionRole).map((l) => `${fold(l.name)} default_role=${key(l.sessionRole!)}`)),
        new Set(rows.users.filter((u) => users.has(fold(u.name)) && u.default_role).map((u) => `${fold(u.name)} default_role=${fold(u.default_role)}`)),
    );

    // Privileges on databases, warehouses, and every existing schema, table and view of a plan database.
    const privilege = (p: string, on: string, to: string) => `${p} on ${on} to ${to}`;
    const objects: Record<string, { database: string; schema: string; name: string; owner: string }[]> = { SCHEMAS: [], TABLES: [], VIEWS: [] };
    // ALL SCHEMAS covers PUBLIC too; INFORMATION_SCHEMA is Snowflake's, outside every grant.
    for (const x of rows.schemas) {
        if (fold(x.name) !== "INFORMATION_SCHEMA") objects.SCHEMAS.push({ database: fold(x.database_name), schema: fold(x.name), name: `${fold(x.database_name)}.${fold(x.name)}`, owner: fold(x.owner) });
    }
    for (const [plural, list] of [["TABLES", rows.tables], ["VIEWS", rows.views]] as const) {
        for (const x of list) {
            if (fold(x.schema_name) === "INFORMATION_SCHEMA") continue;
            objects[plural].push({ database: fold(x.database_name), schema: fold(x.schema_name), name: `${fold(x.database_name)}.${fold(x.schema_name)}.${fold(x.name)}`, owner: fold(x.owner) });
        }
    }
    const wantPrivileges = new Set<string>();
    const wantFuture = new Set<string>();
    const future = (p: string, plural: string, container: string, to: string) => `${to}: ${p} on new ${SINGULAR[plural] ?? plural.toLowerCase()}s in ${container}`;
    for (const g of plan.grants) {
        const to = key(g.to);
        const on = g.on;
        for (const p of g.privileges.map(fold)) {
            if (on.level === "object") wantPrivileges.add(privilege(p, `${on.objectType.toLowerCase()} ${fold(on.name)}`, to));
            else if (on.scope === "all") {
                for (const o of objects[fold(on.objectTypePlural)] ?? []) {
                    if (o.database === fold(on.database) && (on.level === "database" || o.schema === fold(on.schema))) wantPrivileges.add(privilege(p, `${SINGULAR[fold(on.objectTypePlural)]} ${o.name}`, to));
                }
            } else wantFuture.add(future(p, fold(on.objectTypePlural), on.level === "database" ? `database ${fold(on.database)}` : `schema ${fold(on.database)}.${fold(on.schema)}`, to));
        }
    }
    for (const o of plan.ownerships) {
        if (o.on.level !== "object" && o.on.scope === "future") wantFuture.add(future("OWNERSHIP", fold(o.on.objectTypePlural), o.on.level === "database" ? `database ${fold(o.on.database)}` : `schema ${fold(o.on.database)}.${fold(o.on.schema)}`, key(o.to)));
    }
    const havePrivileges = new Set<string>();
    const inPlan = (name: string) => databases.has(parts(name).map(fold)[0]);
    for (const g of [...rows.grantsToRole, ...rows.grantsToDatabaseRole]) {
        const on = fold(g.granted_on);
        const p = fold(g.privilege);
        const to = granteeOf(g);
        if (on === "ROLE" || on === "DATABASE_ROLE" || p === "OWNERSHIP" || ignored.has(to)) continue;
        const name = parts(g.name).map(fold).join(".");
        // Grants to a declared role anywhere, and anyone's grants on the plan's databases.
        if (declared.has(to) || inPlan(name)) havePrivileges.add(privilege(p, `${on.toLowerCase()} ${name}`, to));
    }
    setDiff("privilege", wantPrivileges, havePrivileges);

    // Future grants and future ownership, at database level and (none declared) at schema level.
    const haveFuture = new Set<string>();
    for (const [level, list] of [["database", rows.futureGrantsInDatabase], ["schema", rows.futureGrantsInSchema]] as const) {
        for (const g of list) {
            const p = parts(g.name).map(fold);
            const container = level === "database" ? `database ${p[0]}` : `schema ${p[0]}.${p[1]}`;
            const to = fold(g.grant_to) === "DATABASE_ROLE" && !String(g.grantee_name).includes(".") ? `${p[0]}.${fold(g.grantee_name)}` : fold(g.grantee_name);
            if (!ignored.has(to)) haveFuture.add(future(fold(g.privilege), `${fold(g.grant_on)}S`, container, to));
        }
    }
    setDiff("default privilege", wantFuture, haveFuture);

    // Ownership: where the plan gives a role the future objects of a type, it owns the existing ones too.
    for (const o of plan.ownerships) {
        if (o.on.level !== "database") continue;
        const plural = fold(o.on.objectTypePlural);
        for (const x of objects[plural] ?? []) {
            if (x.database !== fold(o.on.database) || BUILT_IN_SCHEMAS.has(x.schema)) continue;
            if (x.owner !== key(o.to)) drifts.push({ kind: "ownership", change: "changed", subject: `${SINGULAR[plural]} ${x.name}`, declared: key(o.to), live: x.owner });
        }
    }
    // Schemas of the plan's databases owned by a role the plan does not know (dbt's schemas are owned by declared roles).
    for (const x of objects.SCHEMAS) {
        if (databases.has(x.database) && !BUILT_IN_SCHEMAS.has(x.schema) && !declared.has(x.owner)) drifts.push({ kind: "schema", change: "unknown", subject: x.name, live: `owned by ${x.owner}` });
    }
    return drifts.sort((a, b) => `${a.kind} ${a.subject}`.localeCompare(`${b.kind} ${b.subject}`));
}

/** The databases a Snowflake plan grants on: the ones the audit's per-database SHOW commands run in. */
export function snowflakePlanDatabases(w: DeclaredWarehouse): string[] {
    const databases = new Set<string>();
    for (const g of w.accessPlan.grants) {
        if (g.on.level !== "object") databases.add(fold(g.on.database));
        else if (g.on.objectType === "DATABASE") databases.add(fold(g.on.name));
    }
    return [...databases].sort();
}

/** One SHOW command's result as the connector returns it: column names (in whatever case) and row tuples. */
export interface ShowResult {
    columns: string[];
    rows: unknown[][];
}

/** Runs one SHOW statement; rejects with the warehouse's message when it fails. */
export type RunShow = (sql: string) => Promise<ShowResult>;

/** A statement the collector could not run (only kept when `partial` is set). */
export interface UncollectedQuery {
    key: keyof SnowflakeRows;
    sql: string;
    error: string;
}

/** A Snowflake identifier as SHOW returned it, quoted so mixed case and odd characters reach the statement unchanged. */
const quoteIdent = (name: string) => `"${String(name).replace(/"/g, '""')}"`;

/** One of SNOWFLAKE_AUDIT_QUERIES with its `{placeholders}` filled by quoted identifiers. */
export function snowflakeAuditSql(key: keyof SnowflakeRows, values: Record<string, string>): string {
    return SNOWFLAKE_AUDIT_QUERIES[key].sql.replace(/\{(\w+)\}/g, (_, v: string) => {
        if (values[v] === undefined) throw new Error(`${key}: no value for {${v}} in ${SNOWFLAKE_AUDIT_QUERIES[key].sql}`);
        return quoteIdent(values[v]);
    });
}

/**
 * One SHOW result as the recorded catalog has it: rows keyed by lower-case column name (the
 * connector already returns SHOW columns lower-case; folded anyway), and, given the database a
 * command ran in, that database as `database_name` where the output has no such column (SHOW
 * DATABASE ROLES, SHOW GRANTS TO DATABASE ROLE; SHOW FUTURE GRANTS names it in `name`).
 */
export function showRows(result: ShowResult, database?: string): Record<string, any>[] {
    const columns = result.columns.map((c) => c.toLowerCase());
    return result.rows.map((row) => {
        const out: Record<string, any> = {};
        columns.forEach((c, i) => (out[c] = row[i] ?? null));
        if (database !== undefined && !("database_name" in out)) out.database_name = database;
        return out;
    });
}

/**
 * Runs exactly SNOWFLAKE_AUDIT_QUERIES, `each` expanded: `{database}` over the plan's databases;
 * `{role}` over the live roles SHOW ROLES returned (system roles aside), `{databaseRole}` over the
 * live database roles and `{schema}` over the live schemas of those databases (INFORMATION_SCHEMA
 * aside), so a role or schema made out of band is read too and a dropped one fails no statement
 * (it is reported missing from SHOW ROLES / SHOW SCHEMAS). With `partial`, a statement the
 * warehouse rejects is recorded in `uncollected` instead of failing the collection (fakesnow
 * rejects the grant commands); the audit treats such a catalog as incomplete.
 */
export async function collectSnowflakeRows(w: DeclaredWarehouse, run: RunShow, options: { partial?: boolean } = {}): Promise<{ rows: SnowflakeRows; uncollected: UncollectedQuery[] }> {
    const rows = Object.fromEntries(Object.keys(SNOWFLAKE_AUDIT_QUERIES).map((k) => [k, []])) as unknown as SnowflakeRows;
    const uncollected: UncollectedQuery[] = [];
    const exec = async (key: keyof SnowflakeRows, values: Record<string, string>, database?: string) => {
        const sql = snowflakeAuditSql(key, values);
        try {
            rows[key].push(...showRows(await run(sql), database));
        } catch (e) {
            const error = e instanceof Error ? e.message : String(e);
            if (!options.partial) throw new Error(`Snowflake audit query ${key} (${sql}) failed: ${error}`);
            uncollected.push({ key, sql, error });
        }
    };
    const keys = Object.keys(SNOWFLAKE_AUDIT_QUERIES) as (keyof SnowflakeRows)[];
    const databases = snowflakePlanDatabases(w);
    const system = new Set(SNOWFLAKE_SYSTEM_ROLES);
    // Order matters: the principal and schema lists come first, the per-role / per-schema commands expand over them.
    for (const key of keys) {
        const each = (SNOWFLAKE_AUDIT_QUERIES[key] as { each?: string }).each;
        if (each === undefined) await exec(key, {});
        else if (each === "database") for (const database of databases) await exec(key, { database }, key === "databaseRoles" ? database : undefined);
    }
    for (const key of keys) {
        const each = (SNOWFLAKE_AUDIT_QUERIES[key] as { each?: string }).each;
        if (each === "role") for (const r of rows.roles) if (!system.has(fold(r.name))) await exec(key, { role: r.name });
        if (each === "databaseRole") for (const r of rows.databaseRoles) await exec(key, { database: r.database_name, databaseRole: r.name }, r.database_name);
        if (each === "schema") for (const s of rows.schemas) if (fold(s.name) !== "INFORMATION_SCHEMA") await exec(key, { database: s.database_name, schema: s.name });
    }
    return { rows, uncollected };
}
