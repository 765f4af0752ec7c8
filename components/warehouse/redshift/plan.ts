/**
 * The Redshift access plan as data: an ordered list of steps, each one resource of one kind with its
 * inputs. RedshiftWarehouse registers exactly these steps; test/redshift-access.test.ts applies the
 * same steps through the providers against a real Postgres, and sql/redshift-*.sql renders them.
 *
 * ## Redshift's counterpart of role masking: one owning production identity
 * Postgres platforms mask every production bot to `role_prod` (ALTER ROLE … SET ROLE), so whatever
 * one bot builds another may replace. Redshift has no SET ROLE, and its objects are owned by users,
 * never by groups. dbt rebuilds a relation by renaming it away and dropping it, which needs
 * ownership. The choice here: **one production user owns every production schema and relation, and
 * the deploy and scheduler duties both log in as it**, with one credential kept in Secrets Manager
 * (`credentialSecrets.production`). Why this and not the alternatives:
 * - an ownership-transfer step (`ALTER TABLE … OWNER TO` after each run) comes too late: the next
 *   run of the *other* bot fails on the rename before any transfer step could run, and a failed run
 *   leaves relations owned by whoever built them;
 * - scoped permissions / `GRANT ALTER, DROP ON TABLE` exist only on recent Redshift (RA3 and
 *   Serverless), cannot be granted to groups, and still leave objects owned by different users, so
 *   default privileges (FOR USER) would be needed per bot;
 * - a shared identity works on every cluster, keeps one `ALTER DEFAULT PRIVILEGES FOR USER` rule per
 *   schema, and is proven on Postgres by the access matrix (a second prod-group user is denied the
 *   same rebuild, which is why the identity must be shared).
 * The cost: deploy and scheduler are not told apart in the cluster's logs (`application_name` and the
 * dbt invocation id tell them apart), and rotating the password touches both, through one secret.
 */
import { REDSHIFT_ONLY_STATEMENTS } from "./sql";
import type { RedshiftKindName } from "./providers";
import type { AccessPlan, GrantTarget, RoleRef } from "../contract";

/** One resource of the plan. `after` lists keys it depends on; grants also run one at a time. */
export interface RedshiftPlanStep<P = string> {
    /** Unique key, also the resource name suffix. */
    key: string;
    kind: RedshiftKindName;
    /** The kind's inputs, without the connection; passwords are `P` (an Output in the component, a string in tests). */
    props: Record<string, unknown>;
    /** Keys of the steps this one needs. */
    after: string[];
    /** Redshift-only (RBAC): registered on Redshift, rendered as golden SQL, never executed on Postgres. */
    redshiftOnly?: boolean;
    /** The password placeholder the step carries (users only). */
    password?: P;
}

/** What the plan is built from (already validated). */
export interface RedshiftPlanModel {
    database: string;
    devGroup: string;
    prodGroup: string;
    productionUser: string;
    ciUser?: string;
    productionSchemas: string[];
    developers: { name: string; schemas: string[] }[];
    rbac: boolean;
    devRole: string;
    prodRole: string;
    adopt: boolean;
}

/** The steps, in dependency order. `password(user)` supplies each user's password. */
export function redshiftAccessPlan<P>(m: RedshiftPlanModel, password: (user: string) => P): RedshiftPlanStep<P>[] {
    const steps: RedshiftPlanStep<P>[] = [];
    const add = (s: RedshiftPlanStep<P>) => steps.push(s);
    const adopt = m.adopt ? { adopt: true } : {};
    const group = (name: string) => ({ kind: "group", name });
    const user = (name: string) => ({ kind: "user", name });

    add({ key: "group-dev", kind: "Group", props: { name: m.devGroup, ...adopt }, after: [] });
    add({ key: "group-prod", kind: "Group", props: { name: m.prodGroup, ...adopt }, after: [] });
    const logins: [string, string][] = [[m.productionUser, "group-prod"]];
    if (m.ciUser) logins.push([m.ciUser, "group-dev"]);
    for (const d of m.developers) logins.push([d.name, "group-dev"]);
    for (const [name, groupKey] of logins) {
        const pw = password(name);
        add({ key: `user-${name}`, kind: "User", props: { name, password: pw, ...adopt }, password: pw, after: [] });
        const groupName = groupKey === "group-prod" ? m.prodGroup : m.devGroup;
        add({ key: `member-${groupName}-${name}`, kind: "GroupMember", props: { group: groupName, user: name }, after: [groupKey, `user-${name}`] });
    }
    // CREATE on the database: production builds custom schemas at run time; CI creates dbt_build_<n>(_<custom>).
    add({ key: "database-prod", kind: "DatabaseGrant", props: { grantee: group(m.prodGroup), privileges: ["CREATE"] }, after: ["group-prod"] });
    if (m.ciUser) add({ key: `database-${m.ciUser}`, kind: "DatabaseGrant", props: { grantee: user(m.ciUser), privileges: ["CREATE"] }, after: [`user-${m.ciUser}`] });

    for (const s of m.productionSchemas) {
        const schemaKey = `schema-${s}`;
        add({ key: schemaKey, kind: "Schema", props: { name: s, owner: m.productionUser, ...adopt }, after: [`user-${m.productionUser}`] });
        // Deferral: CI and developers read production, and nothing more.
        add({ key: `usage-${s}`, kind: "SchemaGrant", props: { schema: s, grantee: group(m.devGroup), privileges: ["USAGE"] }, after: [schemaKey, "group-dev"] });
        add({ key: `select-${s}`, kind: "TableGrant", props: { schema: s, grantee: group(m.devGroup), privileges: ["SELECT"] }, after: [schemaKey, "group-dev"] });
        add({
            key: `defaults-${s}`,
            kind: "DefaultPrivileges",
            // One rule per schema suffices: the shared production identity creates every relation.
            props: { forUser: m.productionUser, schema: s, grantee: group(m.devGroup), privileges: ["SELECT"] },
            after: [schemaKey, "group-dev"],
        });
    }
    // Relations in custom schemas the production identity creates at run time stay readable too.
    add({
        key: "defaults-database",
        kind: "DefaultPrivileges",
        props: { forUser: m.productionUser, grantee: group(m.devGroup), privileges: ["SELECT"] },
        after: [`user-${m.productionUser}`, "group-dev"],
    });
    // Developer schemas: the developer's family (name, name_<custom>…), owned by them, granted to nobody.
    for (const d of m.developers) {
        for (const s of d.schemas) add({ key: `schema-${s}`, kind: "Schema", props: { name: s, owner: d.name, ...adopt }, after: [`user-${d.name}`] });
    }
    if (m.rbac) {
        // Redshift RBAC mirrors the groups, for stacks that grant system permissions to roles.
        for (const [key, role, members] of [
            ["dev", m.devRole, logins.filter(([, g]) => g === "group-dev").map(([n]) => n)],
            ["prod", m.prodRole, [m.productionUser]],
        ] as const) {
            add({ key: `role-${key}`, kind: "Role", props: { name: role, ...adopt }, after: [], redshiftOnly: true });
            for (const n of members) {
                add({ key: `role-${key}-${n}`, kind: "RoleGrant", props: { role, grantee: user(n) }, after: [`role-${key}`, `user-${n}`], redshiftOnly: true });
            }
        }
    }
    return steps;
}

/** Statement forms the plan may use that Postgres cannot run (the proof renders, never executes them). */
export const NOT_EXECUTED_ON_POSTGRES = REDSHIFT_ONLY_STATEMENTS;

/** The contract's access-plan types, under the names this module has used. */
export type RedshiftRoleRef = RoleRef;
export type RedshiftGrantTarget = GrantTarget;
export type RedshiftContractPlan = AccessPlan;

/** The plan's steps as the contract's AccessPlan. The production identity is listed once per duty it serves. */
export function redshiftContractAccessPlan(m: RedshiftPlanModel, steps: RedshiftPlanStep<unknown>[]): RedshiftContractPlan {
    const db = m.database;
    const plan: RedshiftContractPlan = { roles: [], memberships: [], grants: [], ownerships: [], logins: [] };
    const to = (g: { name: string }) => ({ name: g.name });
    for (const s of steps) {
        const p = s.props as Record<string, any>;
        switch (s.kind) {
            case "Group":
                plan.roles.push({ name: p.name, kind: "group", comment: p.name === m.devGroup ? "developers and CI: read production, build in their own schemas" : "the production identity: owns production" });
                break;
            case "Role":
                plan.roles.push({ name: p.name, kind: "functional", comment: "Redshift RBAC role mirroring its group" });
                break;
            case "GroupMember":
                plan.memberships.push({ key: s.key, role: { name: p.group }, member: { name: p.user } });
                break;
            case "RoleGrant":
                plan.memberships.push({ key: s.key, role: { name: p.role }, member: to(p.grantee) });
                break;
            case "DatabaseGrant":
                plan.grants.push({ key: s.key, privileges: p.privileges, on: { level: "object", objectType: "database", name: db }, to: to(p.grantee) });
                break;
            case "SchemaGrant":
                plan.grants.push({ key: s.key, privileges: p.privileges, on: { level: "object", objectType: "schema", name: p.schema, database: db }, to: to(p.grantee) });
                break;
            case "TableGrant":
                plan.grants.push({ key: s.key, privileges: p.privileges, on: { level: "schema", database: db, schema: p.schema, objectTypePlural: "tables", scope: "all" }, to: to(p.grantee) });
                break;
            case "DefaultPrivileges":
                plan.grants.push({
                    key: s.key,
                    privileges: p.privileges,
                    on: p.schema === undefined
                        ? { level: "database", database: db, objectTypePlural: "tables", scope: "future" }
                        : { level: "schema", database: db, schema: p.schema, objectTypePlural: "tables", scope: "future" },
                    to: to(p.grantee),
                    forCreator: { name: p.forUser },
                });
                break;
            case "Schema":
                plan.ownerships.push({ key: s.key, on: { level: "object", objectType: "schema", name: p.name, database: db }, to: { name: p.owner } });
                break;
            case "User": {
                const roles = [{ name: p.name === m.productionUser ? m.prodGroup : m.devGroup }];
                if (p.name === m.productionUser) {
                    plan.logins.push({ name: p.name, duty: "deploy", roles, auth: "password" }, { name: p.name, duty: "scheduler", roles, auth: "password" });
                } else {
                    plan.logins.push({ name: p.name, duty: p.name === m.ciUser ? "ci" : undefined, roles, auth: "password" });
                }
                break;
            }
        }
    }
    return plan;
}
