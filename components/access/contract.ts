/**
 * Access plans read from a warehouse component's declared plan (the contract's `accessPlan`, see
 * components/warehouse/contract.ts) instead of from its resources: the matrix and the audit of
 * Redshift and Snowflake stacks are computed from exactly what the component registers.
 *
 * - Redshift: groups (and the RBAC roles mirroring them) are roles, users are logins; the one
 *   production identity serves the deploy and scheduler duties and is one login; default
 *   privileges FOR USER become defaults owned by that user; schemas are owned by users; the
 *   per-pull-request family `<prefix><n>` is created by the CI user at run time (a runtime schema);
 *   Redshift has no CONNECT privilege: every user may connect to every database.
 * - Snowflake: see snowflakeMatrix.
 */
import type { AccessPlan as ContractPlan, GrantTarget, PullRequestSchemas, WarehouseKind } from "../warehouse/contract";
import { AccessMatrix, accessMatrix, MatrixRow } from "./matrix";
import { AccessPlan, normalisePrivileges, PlanDefault, PlanGrant, PlanRole, PlanSchema } from "./plan";

/** What the readers need of a warehouse component (a `Warehouse` of the contract). */
export interface DeclaredWarehouse {
    kind: WarehouseKind;
    accessPlan: ContractPlan;
    pullRequestSchemas: PullRequestSchemas;
}

/** The placeholder a runtime schema family carries for the pull-request number. */
export const PULL_REQUEST_NUMBER = "<n>";

const sortBy = <T>(xs: T[], key: (x: T) => string) => xs.sort((a, b) => key(a).localeCompare(key(b)));

function where(kind: string, key: string, what: string): Error {
    return new Error(`${kind} access plan, ${key}: ${what} is not part of the access model`);
}

/** Roles and logins of a contract plan, with memberships and duties (a login serving several duties is one login). */
function principals(plan: ContractPlan, kind: string): Map<string, PlanRole> {
    const out = new Map<string, PlanRole>();
    for (const r of plan.roles) out.set(r.name, { name: r.name, login: false, inherit: true, memberOf: [], settings: {} });
    for (const l of plan.logins) {
        const p = out.get(l.name) ?? { name: l.name, login: true, inherit: true, memberOf: [], settings: {} };
        if (!p.login) throw where(kind, `login ${l.name}`, "a login named like a role");
        p.memberOf = [...new Set([...p.memberOf, ...l.roles.map((r) => r.name)])].sort();
        if (l.duty) p.duties = [...new Set([...(p.duties ?? []), l.duty])];
        out.set(l.name, p);
    }
    for (const m of plan.memberships) {
        const p = out.get(m.member.name);
        if (!p) throw where(kind, `membership ${m.key}`, `member ${m.member.name}, which the plan does not declare,`);
        if (!p.memberOf.includes(m.role.name)) p.memberOf = [...p.memberOf, m.role.name].sort();
    }
    return out;
}

/** The Redshift plan: one database, user-owned schemas, group grants, default privileges FOR USER. */
export function redshiftPlanFromContract(w: DeclaredWarehouse): AccessPlan {
    const plan = w.accessPlan;
    const database = w.pullRequestSchemas.database;
    // Redshift has no SET ROLE and no default role: a session is its user (no settings).
    const roles = principals(plan, "redshift");
    const schemas: PlanSchema[] = [];
    for (const o of plan.ownerships) {
        if (o.on.level !== "object" || o.on.objectType.toLowerCase() !== "schema") throw where("redshift", o.key, "an ownership of anything but a schema");
        schemas.push({ name: o.on.name, owner: o.to.name });
    }
    const grants: PlanGrant[] = [];
    const defaults: PlanDefault[] = [];
    for (const g of plan.grants) {
        const on: GrantTarget = g.on;
        const grantee = g.to.name;
        if (on.level === "object" && on.objectType.toLowerCase() === "database") {
            if (on.name !== database) throw where("redshift", g.key, `a grant on database ${on.name} (the warehouse database is ${database})`);
            grants.push({ grantee, on: "database", privileges: normalisePrivileges("database", g.privileges) });
        } else if (on.level === "object" && on.objectType.toLowerCase() === "schema") {
            grants.push({ grantee, on: "schema", schema: on.name, privileges: normalisePrivileges("schema", g.privileges) });
        } else if (on.level !== "object" && on.objectTypePlural.toLowerCase() === "tables" && on.scope === "all" && on.schema) {
            grants.push({ grantee, on: "table", schema: on.schema, privileges: normalisePrivileges("table", g.privileges) });
        } else if (on.level !== "object" && on.objectTypePlural.toLowerCase() === "tables" && on.scope === "future" && g.forCreator) {
            defaults.push({ owner: g.forCreator.name, grantee, schema: on.schema, on: "table", privileges: normalisePrivileges("table", g.privileges) });
        } else {
            throw where("redshift", g.key, `a grant on ${JSON.stringify(on)}`);
        }
    }
    const ci = plan.logins.find((l) => l.duty === "ci");
    const runtimeSchemas: AccessPlan["runtimeSchemas"] = ci
        ? [{ name: `${w.pullRequestSchemas.prefix}${PULL_REQUEST_NUMBER}`, owner: ci.name, note: "created by the CI user on a pull request's first build" }]
        : [];
    return {
        kind: "redshift",
        database,
        roles: sortBy([...roles.values()], (r) => r.name),
        schemas: sortBy(schemas, (s) => s.name),
        grants,
        defaults,
        externalMemberships: [],
        publicConnect: true,
        runtimeSchemas,
    };
}

/** The access plan of a warehouse component of any kind the contract readers know. */
export function planFromContract(w: DeclaredWarehouse): AccessPlan {
    if (w.kind === "redshift") return redshiftPlanFromContract(w);
    throw new Error(`no access-plan reader for ${w.kind} components' declared plans`);
}

/** A Snowflake principal's name: database roles are `DB.ROLE`, account roles and users their name. */
export function snowflakePrincipal(r: { name: string; database?: string }): string {
    return r.database ? `${r.database}.${r.name}` : r.name;
}

/** The matrix scope of every schema of a database, existing and future (grants are made at database level). */
export const everySchema = (database: string) => `${database}.*`;

/**
 * The Snowflake matrix, from the declared plan with Snowflake's semantics: a role uses the roles
 * granted to it (hierarchy, transitively); a user's session runs as its default role; grants
 * and ownership are database-level on current (ALL) and future objects, so the schema axis is
 * `<DB>.*` per database, plus the pull-request family `<DEV_DB>.<PREFIX><n>`, which the CI role
 * creates at run time and owns (future ownership of the database's schemas would override that).
 * Cells:
 * - connect: USAGE on a warehouse and on a database (a session that can run a query);
 * - create schema: CREATE SCHEMA on a database;
 * - create in: USAGE on the database and CREATE TABLE and CREATE VIEW on its (future) schemas, or owning them;
 * - replace/drop in: owning what is built there (CREATE OR REPLACE and DROP need OWNERSHIP);
 * - read: USAGE on the database and its schemas and SELECT on tables and views, or owning them;
 * - own: OWNERSHIP of the schemas.
 */
export function snowflakeMatrix(w: DeclaredWarehouse): AccessMatrix {
    const plan = w.accessPlan;
    const key = snowflakePrincipal;
    const granted = new Map<string, string[]>();
    for (const m of plan.memberships) granted.set(key(m.member), [...(granted.get(key(m.member)) ?? []), key(m.role)]);
    const closure = (start: string[]) => {
        const out = new Set(start);
        const queue = [...start];
        while (queue.length) for (const r of granted.get(queue.shift()!) ?? []) if (!out.has(r)) (out.add(r), queue.push(r));
        return out;
    };
    const databases = new Set<string>();
    for (const g of plan.grants) {
        if (g.on.level !== "object") databases.add(g.on.database);
        else if (g.on.objectType === "DATABASE") databases.add(g.on.name);
    }
    const pr = w.pullRequestSchemas;
    const prFamily = `${pr.database}.${pr.case === "upper" ? pr.prefix.toUpperCase() : pr.prefix}${PULL_REQUEST_NUMBER}`;
    const ciLogin = plan.logins.find((l) => l.duty === "ci");
    const ciRole = ciLogin ? key(ciLogin.sessionRole ?? ciLogin.roles[0]) : undefined;
    const scopes = [...[...databases].map(everySchema), ...(ciRole ? [prFamily] : [])].sort();

    const cells = (name: string, kind: MatrixRow["kind"], uses: Set<string>, sessionRole: string, duties?: string[]): MatrixRow => {
        const holds = (privilege: string, match: (on: GrantTarget) => boolean) =>
            plan.grants.some((g) => uses.has(key(g.to)) && g.privileges.includes(privilege) && match(g.on));
        const onDatabase = (d: string, p: string) => holds(p, (on) => on.level === "object" && on.objectType === "DATABASE" && on.name === d);
        const onWarehouse = () => holds("USAGE", (on) => on.level === "object" && on.objectType === "WAREHOUSE");
        // Every object of a type in the database: both the existing (ALL) and the future ones.
        const inDatabase = (d: string, plural: string, p: string) =>
            (["all", "future"] as const).every((scope) => holds(p, (on) => on.level === "database" && on.database === d && on.objectTypePlural === plural && on.scope === scope));
        const ownsFuture = (d: string, plural: string) =>
            plan.ownerships.some((o) => uses.has(key(o.to)) && o.on.level === "database" && o.on.database === d && o.on.objectTypePlural === plural && o.on.scope === "future");
        const scope = (s: string) => {
            const d = s.slice(0, s.indexOf("."));
            const usage = onDatabase(d, "USAGE");
            // A schema the CI role creates is its own, with what it builds there, unless another role owns the database's future schemas.
            const ownsCreated = s === prFamily && ciRole !== undefined && uses.has(ciRole) && !plan.ownerships.some((o) => o.on.level === "database" && o.on.database === d && o.on.objectTypePlural === "SCHEMAS");
            const ownSchemas = ownsCreated || ownsFuture(d, "SCHEMAS");
            const ownRelations = ownsCreated || (ownsFuture(d, "TABLES") && ownsFuture(d, "VIEWS"));
            return {
                create: usage && (ownSchemas || (inDatabase(d, "SCHEMAS", "CREATE TABLE") && inDatabase(d, "SCHEMAS", "CREATE VIEW"))),
                replaceDrop: usage && ownRelations,
                read: usage && (ownRelations || (inDatabase(d, "SCHEMAS", "USAGE") && inDatabase(d, "TABLES", "SELECT") && inDatabase(d, "VIEWS", "SELECT"))),
                own: usage && ownSchemas,
            };
        };
        const per = Object.fromEntries(scopes.map((s) => [s, scope(s)]));
        const pick = (k: "create" | "replaceDrop" | "read" | "own") => scopes.filter((s) => per[s][k]);
        return {
            name,
            kind,
            ...(duties ? { duties } : {}),
            sessionRole,
            connect: onWarehouse() && [...databases].some((d) => onDatabase(d, "USAGE")),
            createSchema: [...databases].some((d) => onDatabase(d, "CREATE SCHEMA")),
            create: pick("create"),
            replaceDrop: pick("replaceDrop"),
            read: pick("read"),
            own: pick("own"),
        };
    };
    const rows: MatrixRow[] = [];
    for (const l of plan.logins) {
        const session = l.sessionRole ?? l.roles[0];
        // The session's primary role is its default role: what the user does is what that role (and its hierarchy) may.
        rows.push(cells(l.name, "login", closure(session ? [key(session)] : []), session ? key(session) : l.name, l.duty ? [l.duty] : undefined));
    }
    for (const r of plan.roles) rows.push(cells(key(r), "role", closure([key(r)]), ""));
    const production = plan.ownerships.find((o) => o.on.level === "database")?.on as { database: string } | undefined;
    return {
        kind: "snowflake",
        database: [...databases].sort((a, b) => (a === production?.database ? -1 : b === production?.database ? 1 : a.localeCompare(b))).join(", "),
        schemas: scopes,
        rows: rows.sort((a, b) => a.name.localeCompare(b.name)),
    };
}

/** The access matrix of a warehouse component, from its declared plan. */
export function matrixFromContract(w: DeclaredWarehouse): AccessMatrix {
    return w.kind === "snowflake" ? snowflakeMatrix(w) : accessMatrix(planFromContract(w));
}
