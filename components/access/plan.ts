/**
 * The declared access plan as data: roles, logins, memberships, role settings, schemas and
 * privileges, read from the resources the program registers (as scripts/offline.ts records them).
 * The matrix and the drift audit are computed from this one shape, so a warehouse kind plugs in
 * by providing a reader from its declared resources to an AccessPlan.
 */
import { POSTGRES_TYPES } from "../warehouse/postgres/providerSql";

/** The part of a recorded resource a plan reader needs. */
export interface DeclaredResource {
    type: string;
    name: string;
    inputs: Record<string, any>;
}

export type WarehouseKind = "postgres" | "redshift" | "snowflake";

/** A role or login as declared. */
export interface PlanRole {
    name: string;
    login: boolean;
    /** Whether members use this role's privileges without SET ROLE (Postgres INHERIT). */
    inherit: boolean;
    /** Roles this one is a member of. */
    memberOf: string[];
    /** Per-role settings (ALTER ROLE … SET), e.g. role (masking), search_path, statement_timeout; Snowflake's default_role. */
    settings: Record<string, string>;
    /** Bot duties a login serves (one login may serve several: Redshift's production identity). */
    duties?: string[];
}

export type ObjectKind = "database" | "schema" | "table" | "sequence" | "function";

/** A privilege grant on one object, or on all objects of a kind in a schema. */
export interface PlanGrant {
    /** Role name, or "public". */
    grantee: string;
    on: ObjectKind;
    /** Schema of a schema grant or of an ALL … IN SCHEMA grant. */
    schema?: string;
    /** Named objects in the schema; undefined for ALL … IN SCHEMA. */
    objects?: string[];
    privileges: string[];
}

/** Privileges on objects `owner` creates later (ALTER DEFAULT PRIVILEGES). */
export interface PlanDefault {
    owner: string;
    grantee: string;
    /** Undefined: database-wide. */
    schema?: string;
    on: "table" | "sequence" | "function" | "type" | "schema";
    privileges: string[];
}

export interface PlanSchema {
    name: string;
    owner: string;
}

export interface AccessPlan {
    kind: WarehouseKind;
    database: string;
    roles: PlanRole[];
    schemas: PlanSchema[];
    grants: PlanGrant[];
    defaults: PlanDefault[];
    /** Memberships granted to roles the plan does not create (the provider's admin login). */
    externalMemberships: { member: string; role: string }[];
    /** Every principal may connect without a grant (Redshift has no CONNECT privilege). */
    publicConnect?: boolean;
    /**
     * Schema families created at run time, not declared (e.g. `dbt_build_<n>`), with their owner: in
     * the matrix, not in the audit's declared schemas (the audit accepts schemas owned by declared roles).
     */
    runtimeSchemas?: (PlanSchema & { note: string })[];
}

/** What ALL expands to, per object kind (Postgres). */
export const ALL_PRIVILEGES: Record<string, string[]> = {
    database: ["CONNECT", "CREATE", "TEMPORARY"],
    schema: ["CREATE", "USAGE"],
    table: ["DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE"],
    sequence: ["SELECT", "UPDATE", "USAGE"],
    function: ["EXECUTE"],
    type: ["USAGE"],
};

/** Upper-cases, expands ALL and TEMP, sorts. */
export function normalisePrivileges(on: string, privileges: string[]): string[] {
    const out = new Set<string>();
    for (const p of privileges) {
        const u = String(p).toUpperCase().replace(/ PRIVILEGES$/, "");
        if (u === "ALL") ALL_PRIVILEGES[on]?.forEach((x) => out.add(x));
        else out.add(u === "TEMP" ? "TEMPORARY" : u);
    }
    return [...out].sort();
}

const lower = (s: unknown) => String(s);

/** Reads the Postgres access plan from declared postgresql resources. */
export function postgresPlan(resources: DeclaredResource[]): AccessPlan {
    const of = (type: string) => resources.filter((r) => r.type === type);
    const databases = new Set<string>();
    const roles = new Map<string, PlanRole>();
    for (const r of of(POSTGRES_TYPES.role)) {
        const i = r.inputs;
        const settings: Record<string, string> = {};
        if (i.assumeRole) settings.role = lower(i.assumeRole);
        if (i.searchPaths?.length) settings.search_path = (i.searchPaths as string[]).join(", ");
        if (i.statementTimeout) settings.statement_timeout = String(i.statementTimeout);
        roles.set(i.name, { name: i.name, login: i.login === true, inherit: i.inherit !== false, memberOf: [...(i.roles ?? [])].sort(), settings });
    }
    const externalMemberships: AccessPlan["externalMemberships"] = [];
    for (const r of of(POSTGRES_TYPES.grantRole)) {
        const role = roles.get(r.inputs.role);
        // E.g. the admin the provider connects as, made a member so it can manage what a group owns.
        if (!role) externalMemberships.push({ member: r.inputs.role, role: r.inputs.grantRole });
        else if (!role.memberOf.includes(r.inputs.grantRole)) role.memberOf = [...role.memberOf, r.inputs.grantRole].sort();
    }
    for (const r of of(POSTGRES_TYPES.database)) databases.add(r.inputs.name);
    const schemas: PlanSchema[] = of(POSTGRES_TYPES.schema).map((r) => {
        databases.add(r.inputs.database);
        return { name: r.inputs.name, owner: r.inputs.owner ?? "" };
    });
    const grants: PlanGrant[] = of(POSTGRES_TYPES.grant).map((r) => {
        const on = String(r.inputs.objectType).toLowerCase() as ObjectKind;
        if (!["database", "schema", "table", "sequence", "function"].includes(on)) throw new Error(`${r.type} ${r.name}: objectType ${r.inputs.objectType} is not part of the access model`);
        databases.add(r.inputs.database);
        const objects: string[] | undefined = r.inputs.objects?.length ? [...r.inputs.objects].sort() : undefined;
        return { grantee: lower(r.inputs.role), on, schema: on === "database" ? undefined : r.inputs.schema, ...(objects ? { objects } : {}), privileges: normalisePrivileges(on, r.inputs.privileges ?? []) };
    });
    const defaults: PlanDefault[] = of(POSTGRES_TYPES.defaultPrivileges).map((r) => {
        const on = String(r.inputs.objectType).toLowerCase() as PlanDefault["on"];
        databases.add(r.inputs.database);
        return { owner: r.inputs.owner, grantee: lower(r.inputs.role), schema: r.inputs.schema || undefined, on, privileges: normalisePrivileges(on, r.inputs.privileges ?? []) };
    });
    databases.delete(undefined as unknown as string);
    if (databases.size !== 1) throw new Error(`the access plan expects one warehouse database, the program declares ${databases.size}: ${[...databases].join(", ")}`);
    const sortBy = <T>(xs: T[], key: (x: T) => string) => xs.sort((a, b) => key(a).localeCompare(key(b)));
    return {
        kind: "postgres",
        database: [...databases][0],
        roles: sortBy([...roles.values()], (r) => r.name),
        schemas: sortBy(schemas, (s) => s.name),
        grants,
        defaults,
        externalMemberships,
    };
}

/** Plan readers per warehouse kind; Redshift and Snowflake register theirs beside Postgres. */
export const PLAN_READERS: Partial<Record<WarehouseKind, (resources: DeclaredResource[]) => AccessPlan>> = {
    postgres: postgresPlan,
};

/** The plan of whichever warehouse kind the resources declare. */
export function accessPlan(resources: DeclaredResource[]): AccessPlan {
    if (resources.some((r) => r.type.startsWith("postgresql:"))) return postgresPlan(resources);
    const kinds = [...new Set(resources.map((r) => r.type.split(":")[0]))].join(", ");
    throw new Error(`no access-plan reader for the declared warehouse resources (providers: ${kinds})`);
}
