/**
 * The Snowflake access plan as data (the contract's AccessPlan) and its rendering as reviewable
 * Snowflake SQL. Both are pure functions of the arguments; SnowflakeWarehouse declares one
 * resource per plan entry, so the SQL a reviewer reads and the resources `pulumi up` applies
 * come from the same list.
 *
 * Design (seed 002's ANALYTICS / ANALYTICS_DEV, Snowflake's access-role / functional-role pattern):
 * - Access roles are DATABASE roles, `<DB>_READ` and `<DB>_WRITE` in each database (WRITE
 *   includes READ). Database roles live and are cloned/replicated with their database, cannot be
 *   a session's primary role (so nobody bypasses the functional roles), and keep the account's
 *   role list to the roles people actually use.
 * - Functional roles are ACCOUNT roles: TRANSFORMER (production builds: deploy and scheduler
 *   bots), TRANSFORMER_CI (PR builds in the development database, reads production for
 *   deferral) and REPORTER (reads production). All three are granted to SYSADMIN, so the
 *   administrators own everything the platform creates, as Snowflake recommends.
 * - Grants on current AND future objects are made at ONE level per object type: the database.
 *   Database-level future grants cover schemas created later, including dbt's custom schemas and
 *   the per-PR schemas `CI_PR_<n>[_<custom>]`. Snowflake gives SCHEMA-level future grants
 *   precedence over database-level ones for the same object type (a schema with any schema-level
 *   future grant on TABLES ignores the database-level ones on TABLES), so this plan declares none,
 *   and nobody should add them by hand.
 * - The counterpart of Postgres role masking: every production bot's session role is
 *   TRANSFORMER, and future OWNERSHIP of schemas, tables and views in the production database
 *   goes to TRANSFORMER, so whatever any production bot (or an administrator's hotfix) builds is
 *   owned by TRANSFORMER and every production bot can replace it. dbt's `create or replace`
 *   makes a new object: database-level future grants apply to it again, and `copy_grants: true`
 *   (see `COPY_GRANTS_PROJECT_CONFIG`) keeps grants made directly on the old object.
 * - PR schemas: TRANSFORMER_CI has CREATE SCHEMA on the development database, so dbt creates
 *   `CI_PR_<n>` there on the first build and owns it; as owner the cleanup may drop it.
 */
import type { AccessPlan, GrantTarget, PlannedGrant, PlannedOwnership, RoleRef } from "../contract";
import { databaseRoleFqn, quoteSnowflakeIdent as q, quoteSnowflakeLiteral } from "./identifiers";
import { dutyRole, dutyWarehouse, FunctionalRole, SnowflakeModel, WAREHOUSE_DUTIES, WarehouseDuty } from "./model";

/** The two databases, keyed as the resources are named. */
export type DatabaseKey = "production" | "development";
export type AccessLevel = "read" | "write";

/** Name of the access (database) role for `level` in `database`. */
export function accessRoleName(database: string, level: AccessLevel): string {
    return `${database}_${level.toUpperCase()}`;
}

/** Privileges of each access role, per object type, at database level. */
export const ACCESS_PRIVILEGES: Record<AccessLevel, { database: string[]; schemas: string[]; tables: string[]; views: string[] }> = {
    read: { database: ["USAGE"], schemas: ["USAGE"], tables: ["SELECT"], views: ["SELECT"] },
    // USAGE comes from READ, which WRITE is granted; owners (TRANSFORMER / the CI role) need no more.
    write: { database: ["CREATE SCHEMA"], schemas: ["CREATE TABLE", "CREATE VIEW"], tables: ["INSERT", "UPDATE", "DELETE", "TRUNCATE"], views: [] },
};

/** Object types whose future objects in the production database TRANSFORMER owns. */
export const OWNED_OBJECT_TYPES = ["SCHEMAS", "TABLES", "VIEWS"] as const;

/** dbt_project.yml configuration every Snowflake project should carry (copy grants across `create or replace`). */
export const COPY_GRANTS_PROJECT_CONFIG = { models: { "+copy_grants": true } } as const;

/** Names derived from the model that the plan, the SQL and the component share. */
export function databases(m: SnowflakeModel): Record<DatabaseKey, string> {
    return { production: m.productionDatabase, development: m.developmentDatabase };
}

/** Functional role reference. */
export function functionalRole(m: SnowflakeModel, role: FunctionalRole): RoleRef {
    return { name: m.roles[role] };
}

/** The access plan of a model. */
export function snowflakeAccessPlan(m: SnowflakeModel): AccessPlan {
    const dbs = databases(m);
    const access = (db: DatabaseKey, level: AccessLevel): RoleRef => ({ name: accessRoleName(dbs[db], level), database: dbs[db] });
    const fn = (r: FunctionalRole) => functionalRole(m, r);
    const plan: AccessPlan = { roles: [], memberships: [], grants: [], ownerships: [], logins: [] };

    plan.roles.push(
        { ...fn("transformer"), kind: "functional", comment: "dbt production builds (deploy and scheduler bots); owns production objects" },
        { ...fn("ci"), kind: "functional", comment: "dbt pull-request builds in the development database; reads production for deferral" },
        { ...fn("reporter"), kind: "functional", comment: "reads production" },
    );
    for (const db of ["production", "development"] as const) {
        for (const level of ["read", "write"] as const) {
            plan.roles.push({ ...access(db, level), kind: "access", comment: `${level} on every schema, table and view of ${dbs[db]}` });
        }
    }
    plan.roles.push({ name: "SYSADMIN", kind: "system", comment: "system role: receives the functional roles" });

    const member = (key: string, role: RoleRef, to: RoleRef) => plan.memberships.push({ key, role, member: to });
    for (const db of ["production", "development"] as const) member(`${db}-read-to-${db}-write`, access(db, "read"), access(db, "write"));
    member("production-write-to-transformer", access("production", "write"), fn("transformer"));
    member("production-read-to-ci", access("production", "read"), fn("ci"));
    member("development-write-to-ci", access("development", "write"), fn("ci"));
    member("production-read-to-reporter", access("production", "read"), fn("reporter"));
    for (const r of ["transformer", "ci", "reporter"] as const) member(`${r}-to-sysadmin`, fn(r), { name: "SYSADMIN" });

    const grant = (key: string, privileges: string[], on: GrantTarget, to: RoleRef) => {
        if (privileges.length > 0) plan.grants.push({ key, privileges, on, to });
    };
    for (const db of ["production", "development"] as const) {
        const database = dbs[db];
        for (const level of ["read", "write"] as const) {
            const p = ACCESS_PRIVILEGES[level];
            const to = access(db, level);
            const k = `${db}-${level}`;
            grant(`${k}-database`, p.database, { level: "object", objectType: "DATABASE", name: database }, to);
            for (const scope of ["all", "future"] as const) {
                grant(`${k}-schemas-${scope}`, p.schemas, { level: "database", database, objectTypePlural: "SCHEMAS", scope }, to);
                grant(`${k}-tables-${scope}`, p.tables, { level: "database", database, objectTypePlural: "TABLES", scope }, to);
                grant(`${k}-views-${scope}`, p.views, { level: "database", database, objectTypePlural: "VIEWS", scope }, to);
            }
        }
    }
    const warehouseRole: Record<WarehouseDuty, FunctionalRole> = { transform: "transformer", ci: "ci", reporting: "reporter" };
    for (const duty of WAREHOUSE_DUTIES) {
        grant(`warehouse-${duty}`, ["USAGE"], { level: "object", objectType: "WAREHOUSE", name: m.warehouses[duty].name }, fn(warehouseRole[duty]));
    }

    for (const t of OWNED_OBJECT_TYPES) {
        plan.ownerships.push({
            key: `production-${t.toLowerCase()}-future`,
            on: { level: "database", database: dbs.production, objectTypePlural: t, scope: "future" },
            to: fn("transformer"),
        });
    }

    for (const u of m.users) {
        const role = fn(dutyRole(u.duty));
        plan.logins.push({ name: u.name, duty: u.duty, roles: [role], sessionRole: role, auth: "key-pair" });
    }
    return plan;
}

/** The grantee clause of a role reference. */
export function granteeSql(r: RoleRef): string {
    return r.database ? `DATABASE ROLE ${databaseRoleFqn(r.database, r.name)}` : `ROLE ${q(r.name)}`;
}

/** The ON clause of a grant target. */
export function onSql(t: GrantTarget): string {
    if (t.level === "object") return `${t.objectType} ${t.database && t.objectType !== "DATABASE" ? `${q(t.database)}.` : ""}${q(t.name)}`;
    const container = t.level === "database" ? `DATABASE ${q(t.database)}` : `SCHEMA ${q(t.database)}.${q(t.schema ?? "")}`;
    return `${t.scope.toUpperCase()} ${t.objectTypePlural} IN ${container}`;
}

/** GRANT statement of one planned grant. */
export function grantSql(g: PlannedGrant): string {
    return `GRANT ${g.privileges.join(", ")} ON ${onSql(g.on)} TO ${granteeSql(g.to)};`;
}

/** GRANT OWNERSHIP statement of one planned ownership (existing objects keep their grants: COPY CURRENT GRANTS). */
export function ownershipSql(o: PlannedOwnership): string {
    const copy = o.on.level !== "object" && o.on.scope === "future" ? "" : " COPY CURRENT GRANTS";
    return `GRANT OWNERSHIP ON ${onSql(o.on)} TO ${granteeSql(o.to)}${copy};`;
}

/** Resource names of a user's keys, as SnowflakeWarehouse declares them. */
export function userKeyResourceName(component: string, user: string, key: 1 | 2): string {
    return `${component}-user-${user}-key-${key}`;
}

/**
 * The reviewable SQL of the whole plan: what `pulumi up` makes true on a fresh account, in a
 * valid order, with the role each part runs as. Public keys are named, not inlined: they are
 * generated at apply time (the private halves exist only as Pulumi secrets).
 */
export function renderSnowflakeSql(component: string, m: SnowflakeModel, header = ""): string {
    const plan = snowflakeAccessPlan(m);
    const dbs = databases(m);
    const out: string[] = [];
    if (header) out.push(header);
    const section = (title: string) => out.push("", `-- ${title}`);

    out.push("USE ROLE SYSADMIN;");
    section(m.createDatabases ? "Databases" : "Databases (existing: not created by the platform)");
    for (const key of ["production", "development"] as const) {
        out.push(`${m.createDatabases ? "" : "-- "}CREATE DATABASE IF NOT EXISTS ${q(dbs[key])} COMMENT = ${quoteSnowflakeLiteral(`dbt ${key} (managed by dbt-platform)`)};`);
    }
    section("Virtual warehouses per duty");
    for (const duty of WAREHOUSE_DUTIES) {
        const w = m.warehouses[duty];
        out.push(
            `CREATE WAREHOUSE IF NOT EXISTS ${q(w.name)} WAREHOUSE_SIZE = ${w.size} AUTO_SUSPEND = ${w.autoSuspendSeconds} AUTO_RESUME = ${w.autoResume ? "TRUE" : "FALSE"} ` +
                `INITIALLY_SUSPENDED = TRUE STATEMENT_TIMEOUT_IN_SECONDS = ${w.statementTimeoutSeconds} COMMENT = ${quoteSnowflakeLiteral(`dbt ${duty} (managed by dbt-platform)`)};`,
        );
    }
    section("Access roles: database roles in each database (created by the database owner)");
    for (const r of plan.roles.filter((x) => x.kind === "access")) out.push(`CREATE DATABASE ROLE IF NOT EXISTS ${databaseRoleFqn(r.database!, r.name)};`);

    out.push("", "USE ROLE SECURITYADMIN;");
    section("Functional roles");
    for (const r of plan.roles.filter((x) => x.kind === "functional")) out.push(`CREATE ROLE IF NOT EXISTS ${q(r.name)} COMMENT = ${quoteSnowflakeLiteral(r.comment)};`);
    section("Role hierarchy: access roles to functional roles, functional roles to SYSADMIN");
    for (const ms of plan.memberships) {
        out.push(ms.role.database ? `GRANT DATABASE ROLE ${databaseRoleFqn(ms.role.database, ms.role.name)} TO ${granteeSql(ms.member)};` : `GRANT ROLE ${q(ms.role.name)} TO ${granteeSql(ms.member)};`);
    }
    section("Privileges on current and future objects, at database level only (schema-level future grants would override these)");
    for (const g of plan.grants) out.push(grantSql(g));
    section("Ownership of future production objects: any production bot can replace what another built");
    for (const o of plan.ownerships) out.push(ownershipSql(o));
    if (m.networkPolicy) {
        section("Network policy of the service users");
        const list = (xs: string[]) => `(${xs.map(quoteSnowflakeLiteral).join(", ")})`;
        const blocked = m.networkPolicy.blockedIpList.length ? ` BLOCKED_IP_LIST = ${list(m.networkPolicy.blockedIpList)}` : "";
        out.push(`CREATE NETWORK POLICY IF NOT EXISTS ${q(m.networkPolicy.name)} ALLOWED_IP_LIST = ${list(m.networkPolicy.allowedIpList)}${blocked};`);
    }
    section("Service users: key-pair authentication only (TYPE = SERVICE has no password)");
    for (const u of m.users) {
        const login = plan.logins.find((l) => l.name === u.name)!;
        const wh = m.warehouses[dutyWarehouse(u.duty)].name;
        const keys = [`RSA_PUBLIC_KEY = '<public key of ${userKeyResourceName(component, u.name, 1)}>'`];
        if (u.secondKey) keys.push(`RSA_PUBLIC_KEY_2 = '<public key of ${userKeyResourceName(component, u.name, 2)}>'`);
        const policy = m.networkPolicy ? ` NETWORK_POLICY = ${q(m.networkPolicy.name)}` : "";
        out.push(`CREATE USER IF NOT EXISTS ${q(u.name)} TYPE = SERVICE DEFAULT_ROLE = ${q(login.sessionRole!.name)} DEFAULT_WAREHOUSE = ${q(wh)} ${keys.join(" ")}${policy} COMMENT = ${quoteSnowflakeLiteral(`dbt ${u.duty} bot (managed by dbt-platform)`)};`);
        for (const r of login.roles) out.push(`GRANT ROLE ${q(r.name)} TO USER ${q(u.name)};`);
    }
    return out.join("\n") + "\n";
}

/**
 * Staleness check for a committed rendering (e.g. sql/<stack>.sql): undefined when `committed`
 * is what `renderSnowflakeSql` produces now, else a message naming the first differing line.
 */
export function staleSnowflakeSql(committed: string, expected: string): string | undefined {
    if (committed === expected) return undefined;
    const a = committed.split("\n");
    const b = expected.split("\n");
    const i = a.findIndex((line, k) => line !== b[k]);
    const at = i === -1 ? Math.min(a.length, b.length) : i;
    return `line ${at + 1}: committed ${JSON.stringify(a[at] ?? "<end of file>")}, expected ${JSON.stringify(b[at] ?? "<end of file>")}`;
}
