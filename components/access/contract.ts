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
 * - Snowflake: see snowflakePlanFromContract.
 */
import type { AccessPlan as ContractPlan, GrantTarget, PullRequestSchemas, WarehouseKind } from "../warehouse/contract";
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
        if (l.sessionRole) p.settings.default_role = l.sessionRole.name;
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
    const roles = principals(plan, "redshift");
    // Redshift has no SET ROLE and no default role: a session is its user.
    for (const r of roles.values()) delete r.settings.default_role;
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
