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
import { AuditOptions, auditPostgres, Drift, PostgresCatalog } from "./audit";
import { AccessPlan } from "./plan";

/** The neutral catalog every warehouse's rows are turned into. */
export type WarehouseCatalog = PostgresCatalog;

export const REDSHIFT_AUDIT_QUERIES = {
    users: "SELECT user_name FROM svv_user_info",
    roles: "SELECT role_name FROM svv_roles WHERE role_name NOT LIKE 'sys:%'",
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
        roles: [...rows.users.map((u) => ({ rolname: u.user_name, rolcanlogin: true })), ...rows.roles.map((r) => ({ rolname: r.role_name, rolcanlogin: false }))],
        members: [...rows.userGrants.map((g) => ({ role: g.role_name, member: g.user_name })), ...rows.roleGrants.map((g) => ({ role: g.granted_role_name, member: g.role_name }))],
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

/** Snowflake's catalog is read with SHOW commands; some run once per role, user or schema. */
export const SNOWFLAKE_AUDIT_QUERIES = {
    users: { sql: "SHOW USERS" },
    roles: { sql: "SHOW ROLES" },
    schemas: { sql: "SHOW SCHEMAS IN DATABASE {database}" },
    grantsToRole: { sql: "SHOW GRANTS TO ROLE {role}", each: "role" },
    grantsToUser: { sql: "SHOW GRANTS TO USER {user}", each: "user" },
    futureGrantsInDatabase: { sql: "SHOW FUTURE GRANTS IN DATABASE {database}" },
    futureGrantsInSchema: { sql: "SHOW FUTURE GRANTS IN SCHEMA {database}.{schema}", each: "schema" },
} as const;

export type SnowflakeRows = { [K in keyof typeof SNOWFLAKE_AUDIT_QUERIES]: Record<string, any>[] };

/** Roles every Snowflake account has; not part of any plan. */
export const SNOWFLAKE_SYSTEM_ROLES = ["ACCOUNTADMIN", "ORGADMIN", "PUBLIC", "SECURITYADMIN", "SYSADMIN", "USERADMIN"];

/** Snowflake identifiers are case-insensitive (stored upper-case): compare folded. */
const fold = (s: unknown) => String(s ?? "").toUpperCase();

/** Splits `DB.SCHEMA.<TABLE>` / `DB.SCHEMA` / `DB.<SCHEMA>` names from SHOW output. */
function parts(name: string): string[] {
    return String(name).split(".").map((p) => p.replace(/^"(.*)"$/, "$1"));
}

export function snowflakeCatalog(database: string, rows: SnowflakeRows): WarehouseCatalog {
    const db = fold(database);
    const system = new Set(SNOWFLAKE_SYSTEM_ROLES);
    const catalog: WarehouseCatalog = { roles: [], members: [], settings: [], databaseAcl: [], schemas: [], schemaAcl: [], relationAcl: [], defaultAcl: [] };
    for (const u of rows.users) {
        catalog.roles.push({ rolname: fold(u.name), rolcanlogin: true });
        // A user's default role is Snowflake's equivalent of the session starting as the group role.
        if (u.default_role) catalog.settings.push({ role: fold(u.name), setting: `default_role=${fold(u.default_role)}` });
    }
    for (const r of rows.roles) if (!system.has(fold(r.name))) catalog.roles.push({ rolname: fold(r.name), rolcanlogin: false });
    const schemaOwner = new Map<string, string>();
    for (const s of rows.schemas) {
        if (fold(s.name) === "INFORMATION_SCHEMA") continue;
        schemaOwner.set(fold(s.name), fold(s.owner));
        catalog.schemas.push({ schema: fold(s.name), owner: fold(s.owner) });
    }
    const dbOwner = fold(rows.grantsToRole.find((g) => fold(g.granted_on) === "DATABASE" && fold(g.privilege) === "OWNERSHIP" && fold(parts(g.name)[0]) === db)?.grantee_name);
    for (const g of rows.grantsToRole) {
        const on = fold(g.granted_on);
        const privilege = fold(g.privilege);
        const who = fold(g.grantee_name);
        const [first, second, third] = parts(g.name).map(fold);
        if (on === "ROLE" && privilege === "USAGE") catalog.members.push({ role: first, member: who });
        else if (on === "DATABASE" && first === db && privilege !== "OWNERSHIP") catalog.databaseAcl.push({ owner: dbOwner, grantee: who, privilege_type: privilege });
        else if (on === "SCHEMA" && first === db && privilege !== "OWNERSHIP") catalog.schemaAcl.push({ schema: second, owner: schemaOwner.get(second) ?? "", grantee: who, privilege_type: privilege });
        else if ((on === "TABLE" || on === "VIEW") && first === db && privilege !== "OWNERSHIP") {
            catalog.relationAcl.push({ schema: second, name: third, owner: "", grantee: who, privilege_type: privilege });
        }
    }
    for (const g of rows.grantsToUser) if (fold(g.granted_to) === "USER") catalog.members.push({ role: fold(g.role), member: fold(g.grantee_name) });
    // Future grants do not depend on who creates the object: their owner is "".
    for (const g of [...rows.futureGrantsInDatabase, ...rows.futureGrantsInSchema]) {
        const p = parts(g.name).map(fold);
        const on = fold(g.grant_on);
        const schema = on === "SCHEMA" || p.length < 3 ? null : p[1];
        catalog.defaultAcl.push({ owner: "", schema, objtype: on === "SCHEMA" ? "n" : "r", grantee: fold(g.grantee_name), privilege_type: fold(g.privilege) });
    }
    return catalog;
}

/** The plan with Snowflake's identifier folding applied, so names compare as Snowflake does. */
export function foldSnowflakePlan(plan: AccessPlan): AccessPlan {
    return {
        ...plan,
        database: fold(plan.database),
        roles: plan.roles.map((r) => ({ ...r, name: fold(r.name), memberOf: r.memberOf.map(fold), settings: Object.fromEntries(Object.entries(r.settings).map(([k, v]) => [k, fold(v)])) })),
        schemas: plan.schemas.map((s) => ({ name: fold(s.name), owner: fold(s.owner) })),
        grants: plan.grants.map((g) => ({ ...g, grantee: g.grantee === "public" ? "public" : fold(g.grantee), schema: g.schema && fold(g.schema) })),
        defaults: plan.defaults.map((d) => ({ ...d, owner: d.owner && fold(d.owner), grantee: fold(d.grantee), schema: d.schema && fold(d.schema) })),
    };
}

/** Audits recorded Redshift rows against the plan. */
export function auditRedshift(plan: AccessPlan, rows: RedshiftRows, options?: AuditOptions): Drift[] {
    return auditPostgres(plan, redshiftCatalog(rows), options);
}

/** Audits recorded Snowflake SHOW results against the plan. */
export function auditSnowflake(plan: AccessPlan, rows: SnowflakeRows, options?: AuditOptions): Drift[] {
    const folded = foldSnowflakePlan(plan);
    return auditPostgres(folded, snowflakeCatalog(folded.database, rows), { ignoreRoles: (options?.ignoreRoles ?? []).map(fold) });
}
