/**
 * Redshift access objects as Pulumi dynamic resources on `pg` (`@pulumi/postgresql` cannot manage
 * Redshift: cyrilgdn/terraform-provider-postgresql#150). One type token each,
 * `pulumi-nodejs:dynamic/redshift:<Type>`.
 *
 * Every kind follows one life cycle (see `redshiftSqlProvider`):
 * - check validates identifiers and privilege lists and names the resource and property;
 * - read observes the catalog (pg_user, pg_group, pg_namespace, pg_class, pg_default_acl,
 *   pg_database) and reports what is there now: a missing object returns no id (deleted out of
 *   band), changed privileges or owner come back as they are, so the next diff shows the drift;
 * - diff compares the recorded state with the desired inputs: identity changes replace, the rest updates;
 * - create refuses an object that already exists unless it carries our marker (schemas: a
 *   COMMENT ON SCHEMA) or the resource says `adopt: true`; grants converge (a GRANT is idempotent);
 * - update re-observes and issues only the difference (GRANT what is missing, REVOKE what is extra);
 * - delete removes what create made and never cascades.
 *
 * Secrets: user passwords arrive as secret inputs and leave only as sha256(salt, password); the admin
 * connection (with its password) is a secret input and a secret output, read per call.
 */
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { redshiftConnectionProblems, RedshiftAdminConnection, RedshiftRetryTuning, RedshiftSession, withRedshiftSession } from "./client";
import { redshiftAclPrivileges, redshiftCanonicalPrivileges, RedshiftGrantee, REDSHIFT_PRIVILEGES, RedshiftObjectKind, redshiftIdentifierProblem, redshiftSql } from "./sql";

/** Module of every Redshift resource type: pulumi-nodejs:dynamic/redshift:<Type>. */
export const REDSHIFT_MODULE = "redshift";
/** Pulumi's marker for a value not known yet (preview). */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** COMMENT ON SCHEMA marker: a schema carrying it was created by this platform and may be adopted. */
export const REDSHIFT_OWNERSHIP_MARKER = "managed by dbt-platform";

type Props = Record<string, any>;

/** One kind of Redshift object: how to validate, observe, create, change and remove it. */
interface Kind {
    type: string;
    /** "Redshift schema \"analytics\"": used in every message. */
    describe(p: Props): string;
    /** The resource id: the object's natural key. */
    id(p: Props): string;
    /** Inputs whose change is a different object (replace). */
    identity: string[];
    /** Inputs whose change is applied in place; read reports their observed values under the same names. */
    fields: string[];
    /** Adds check failures to `fail`; returns normalised inputs. */
    check(p: Props, fail: (property: string, expected: string) => void): Props;
    /** The observed fields, or undefined when the object is gone. `ours` tells whether our marker is on it. */
    observe(s: RedshiftSession, p: Props): Promise<(Props & { ours?: boolean }) | undefined>;
    /** Whether an existing object may be taken over without `adopt: true` (idempotent grants). */
    convergesOnExisting: boolean;
    create(s: RedshiftSession, p: Props): Promise<void>;
    /** Brings an existing object to `p`, given what is observed now. */
    update(s: RedshiftSession, p: Props, observed: Props): Promise<void>;
    remove(s: RedshiftSession, p: Props): Promise<void>;
}

function isUnknown(v: unknown): boolean {
    return v === UNKNOWN;
}

function shown(v: unknown): string {
    return isUnknown(v) ? "(unknown)" : JSON.stringify(v);
}

/** sha256(salt, NUL, value): detects a changed password without keeping it. */
export function redshiftPasswordHash(salt: string, value: string): string {
    return crypto.createHash("sha256").update(salt).update("\0").update(value).digest("hex");
}

function identifier(p: Props, key: string, what: RedshiftObjectKind, fail: (property: string, expected: string) => void, optional = false) {
    const v = p[key];
    if (isUnknown(v) || (optional && v === undefined)) return;
    const problem = redshiftIdentifierProblem(v, what);
    if (problem) fail(key, `${problem} (got ${shown(v)})`);
}

function privilegesOf(p: Props, objectType: keyof typeof REDSHIFT_PRIVILEGES, fail: (property: string, expected: string) => void): string[] | undefined {
    const v = p.privileges;
    if (isUnknown(v)) return v;
    const allowed: readonly string[] = REDSHIFT_PRIVILEGES[objectType];
    if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== "string" || !allowed.includes(x.toUpperCase()))) {
        fail("privileges", `a non-empty list of ${allowed.join(", ")} (got ${shown(v)})`);
        return undefined;
    }
    return redshiftCanonicalPrivileges(v, objectType);
}

function grantee(p: Props, fail: (property: string, expected: string) => void, kinds: RedshiftGrantee["kind"][] = ["group", "user"]): void {
    const g = p.grantee;
    if (isUnknown(g)) return;
    if (typeof g !== "object" || g === null || !kinds.includes(g.kind)) {
        fail("grantee", `{ kind: ${kinds.join(" | ")}, name } (got ${shown(g)})`);
        return;
    }
    identifier(g, "name", g.kind, (_k, expected) => fail("grantee.name", expected));
}

const granteeText = (g: RedshiftGrantee | undefined) => (g ? `${g.kind} ${JSON.stringify(g.name)}` : "(unknown)");

async function exists(s: RedshiftSession, catalog: "pg_user" | "pg_group", name: string): Promise<boolean> {
    const column = catalog === "pg_user" ? "usename" : "groname";
    return (await s.read(`SELECT 1 FROM ${catalog} WHERE ${column} = $1`, [name])).length > 0;
}

async function granteeExists(s: RedshiftSession, g: RedshiftGrantee): Promise<boolean> {
    if (g.kind === "role") return (await s.read("SELECT 1 FROM svv_roles WHERE role_name = $1", [g.name])).length > 0;
    return exists(s, g.kind === "group" ? "pg_group" : "pg_user", g.name);
}

/** GRANTs what is desired and missing, REVOKEs what is granted and not desired. */
async function converge(s: RedshiftSession, desired: string[], observed: string[], stmt: (verb: "GRANT" | "REVOKE", privileges: string[]) => string) {
    const missing = desired.filter((p) => !observed.includes(p));
    const extra = observed.filter((p) => !desired.includes(p));
    if (extra.length > 0) await s.write(stmt("REVOKE", extra));
    if (missing.length > 0) await s.write(stmt("GRANT", missing));
}

const userKind: Kind = {
    type: "User",
    describe: (p) => `Redshift user ${shown(p.name)}`,
    id: (p) => p.name,
    identity: ["name"],
    fields: [],
    convergesOnExisting: false,
    check(p, fail) {
        identifier(p, "name", "user", fail);
        if (!isUnknown(p.password) && (typeof p.password !== "string" || !redshiftPasswordAcceptable(p.password))) {
            fail("password", "8 to 64 printable ASCII characters with an upper-case letter, a lower-case letter and a digit, without ' \" \\ / @ or spaces (Redshift's rule; the value is not shown)");
        }
        return p;
    },
    async observe(s, p) {
        return (await exists(s, "pg_user", p.name)) ? {} : undefined;
    },
    create: (s, p) => s.write(redshiftSql.createUser(p.name, p.password)),
    // Adopting an existing user sets the password we hold, so the platform's secret is the one that works.
    update: (s, p) => s.write(redshiftSql.alterUserPassword(p.name, p.password)),
    remove: (s, p) => s.write(redshiftSql.dropUser(p.name)),
};

/** Redshift's password rule (CREATE USER): 8–64 ASCII, upper, lower and digit, none of ' " \ / @ space. */
export function redshiftPasswordAcceptable(pw: string): boolean {
    return /^[\x21-\x7e]{8,64}$/.test(pw) && !/['"\\/@]/.test(pw) && /[A-Z]/.test(pw) && /[a-z]/.test(pw) && /[0-9]/.test(pw);
}

const groupKind: Kind = {
    type: "Group",
    describe: (p) => `Redshift group ${shown(p.name)}`,
    id: (p) => p.name,
    identity: ["name"],
    fields: [],
    convergesOnExisting: false,
    check(p, fail) {
        identifier(p, "name", "group", fail);
        return p;
    },
    async observe(s, p) {
        return (await exists(s, "pg_group", p.name)) ? {} : undefined;
    },
    create: (s, p) => s.write(redshiftSql.createGroup(p.name)),
    update: async () => {},
    remove: (s, p) => s.write(redshiftSql.dropGroup(p.name)),
};

const groupMemberKind: Kind = {
    type: "GroupMember",
    describe: (p) => `Redshift membership of user ${shown(p.user)} in group ${shown(p.group)}`,
    id: (p) => `${p.group}/${p.user}`,
    identity: ["group", "user"],
    fields: [],
    convergesOnExisting: true,
    check(p, fail) {
        identifier(p, "group", "group", fail);
        identifier(p, "user", "user", fail);
        return p;
    },
    async observe(s, p) {
        const rows = await s.read(
            "SELECT 1 FROM pg_group g, pg_user u WHERE g.groname = $1 AND u.usename = $2 AND u.usesysid = ANY (g.grolist)",
            [p.group, p.user],
        );
        return rows.length > 0 ? {} : undefined;
    },
    create: (s, p) => s.write(redshiftSql.addToGroup(p.group, p.user)),
    update: async () => {},
    async remove(s, p) {
        // The group or user may already be gone with the rest of the stack.
        if ((await exists(s, "pg_group", p.group)) && (await exists(s, "pg_user", p.user))) await s.write(redshiftSql.dropFromGroup(p.group, p.user));
    },
};

const schemaKind: Kind = {
    type: "Schema",
    describe: (p) => `Redshift schema ${shown(p.name)}`,
    id: (p) => p.name,
    identity: ["name"],
    fields: ["owner"],
    convergesOnExisting: false,
    check(p, fail) {
        identifier(p, "name", "schema", fail);
        identifier(p, "owner", "user", fail);
        return p;
    },
    async observe(s, p) {
        const rows = await s.read<{ owner: string; comment: string | null }>(
            "SELECT pg_get_userbyid(n.nspowner) AS owner, obj_description(n.oid, 'pg_namespace') AS comment FROM pg_namespace n WHERE n.nspname = $1",
            [p.name],
        );
        if (rows.length === 0) return undefined;
        return { owner: rows[0].owner, ours: rows[0].comment === REDSHIFT_OWNERSHIP_MARKER };
    },
    async create(s, p) {
        await s.write(redshiftSql.createSchema(p.name, p.owner));
        await s.write(redshiftSql.commentSchema(p.name, REDSHIFT_OWNERSHIP_MARKER));
    },
    async update(s, p, observed) {
        if (observed.owner !== p.owner) await s.write(redshiftSql.alterSchemaOwner(p.name, p.owner));
        if (!observed.ours) await s.write(redshiftSql.commentSchema(p.name, REDSHIFT_OWNERSHIP_MARKER));
    },
    remove: (s, p) => s.write(redshiftSql.dropSchema(p.name)),
};

const databaseGrantKind: Kind = {
    type: "DatabaseGrant",
    describe: (p) => `Redshift grant on database ${shown(p.connection?.database)} to ${granteeText(p.grantee)}`,
    id: (p) => `${p.connection.database}/${p.grantee.kind}:${p.grantee.name}`,
    identity: ["grantee"],
    fields: ["privileges"],
    convergesOnExisting: true,
    check(p, fail) {
        grantee(p, fail);
        return { ...p, privileges: privilegesOf(p, "database", fail) };
    },
    async observe(s, p) {
        if (!(await granteeExists(s, p.grantee))) return undefined;
        const rows = await s.read<{ acl: string | null }>("SELECT array_to_string(datacl, ',') AS acl FROM pg_database WHERE datname = $1", [p.connection.database]);
        return { privileges: redshiftAclPrivileges(rows[0]?.acl, p.grantee, "database") };
    },
    create: (s, p) => s.write(redshiftSql.grantOnDatabase("GRANT", p.privileges, p.connection.database, p.grantee)),
    update: (s, p, o) => converge(s, p.privileges, o.privileges, (verb, privs) => redshiftSql.grantOnDatabase(verb, privs, p.connection.database, p.grantee)),
    async remove(s, p) {
        if (await granteeExists(s, p.grantee)) await s.write(redshiftSql.grantOnDatabase("REVOKE", p.privileges, p.connection.database, p.grantee));
    },
};

const schemaGrantKind: Kind = {
    type: "SchemaGrant",
    describe: (p) => `Redshift grant on schema ${shown(p.schema)} to ${granteeText(p.grantee)}`,
    id: (p) => `${p.schema}/${p.grantee.kind}:${p.grantee.name}`,
    identity: ["schema", "grantee"],
    fields: ["privileges"],
    convergesOnExisting: true,
    check(p, fail) {
        identifier(p, "schema", "schema", fail);
        grantee(p, fail);
        return { ...p, privileges: privilegesOf(p, "schema", fail) };
    },
    async observe(s, p) {
        if (!(await granteeExists(s, p.grantee))) return undefined;
        const rows = await s.read<{ acl: string | null }>("SELECT array_to_string(nspacl, ',') AS acl FROM pg_namespace WHERE nspname = $1", [p.schema]);
        if (rows.length === 0) return undefined;
        return { privileges: redshiftAclPrivileges(rows[0].acl, p.grantee, "schema") };
    },
    create: (s, p) => s.write(redshiftSql.grantOnSchema("GRANT", p.privileges, p.schema, p.grantee)),
    update: (s, p, o) => converge(s, p.privileges, o.privileges, (verb, privs) => redshiftSql.grantOnSchema(verb, privs, p.schema, p.grantee)),
    async remove(s, p) {
        if (await schemaGrantKind.observe(s, p)) await s.write(redshiftSql.grantOnSchema("REVOKE", p.privileges, p.schema, p.grantee));
    },
};

/** Relations GRANT … ON ALL TABLES covers: tables, views, materialized views, partitioned tables. */
const RELATIONS_IN_SCHEMA =
    "SELECT c.relname AS name, array_to_string(c.relacl, ',') AS acl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
    "WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY c.relname";

const tableGrantKind: Kind = {
    type: "TableGrant",
    describe: (p) => `Redshift grant on all tables in schema ${shown(p.schema)} to ${granteeText(p.grantee)}`,
    id: (p) => `${p.schema}/*/${p.grantee.kind}:${p.grantee.name}`,
    identity: ["schema", "grantee"],
    fields: ["privileges"],
    convergesOnExisting: true,
    check(p, fail) {
        identifier(p, "schema", "schema", fail);
        grantee(p, fail);
        return { ...p, privileges: privilegesOf(p, "tables", fail) };
    },
    async observe(s, p) {
        if (!(await granteeExists(s, p.grantee))) return undefined;
        if ((await s.read("SELECT 1 FROM pg_namespace WHERE nspname = $1", [p.schema])).length === 0) return undefined;
        const rels = await s.read<{ name: string; acl: string | null }>(RELATIONS_IN_SCHEMA, [p.schema]);
        // "All tables": what every relation grants. An empty schema holds the grant vacuously.
        let held: string[] = rels.length === 0 && Array.isArray(p.privileges) ? p.privileges : [...REDSHIFT_PRIVILEGES.tables];
        const lacking: string[] = [];
        for (const r of rels) {
            const privs = redshiftAclPrivileges(r.acl, p.grantee, "tables");
            if (Array.isArray(p.privileges) && p.privileges.some((x: string) => !privs.includes(x))) lacking.push(r.name);
            held = held.filter((x) => privs.includes(x));
        }
        return { privileges: held, lackingRelations: lacking };
    },
    create: (s, p) => s.write(redshiftSql.grantOnAllTables("GRANT", p.privileges, p.schema, p.grantee)),
    async update(s, p, o) {
        // Relations that lost a privilege (an out-of-band REVOKE on one table) get it back from one GRANT … ON ALL TABLES.
        const extra = o.privileges.filter((x: string) => !p.privileges.includes(x));
        if (extra.length > 0) await s.write(redshiftSql.grantOnAllTables("REVOKE", extra, p.schema, p.grantee));
        const short = p.privileges.some((x: string) => !o.privileges.includes(x)) || (o.lackingRelations ?? []).length > 0;
        if (short) await s.write(redshiftSql.grantOnAllTables("GRANT", p.privileges, p.schema, p.grantee));
    },
    async remove(s, p) {
        if (await tableGrantKind.observe(s, p)) await s.write(redshiftSql.grantOnAllTables("REVOKE", p.privileges, p.schema, p.grantee));
    },
};

const defaultPrivilegesKind: Kind = {
    type: "DefaultPrivileges",
    describe: (p) => `Redshift default privileges for user ${shown(p.forUser)}${p.schema ? ` in schema ${shown(p.schema)}` : ""} to ${granteeText(p.grantee)}`,
    id: (p) => `${p.forUser}/${p.schema ?? "*"}/${p.grantee.kind}:${p.grantee.name}`,
    identity: ["forUser", "schema", "grantee"],
    fields: ["privileges"],
    convergesOnExisting: true,
    check(p, fail) {
        identifier(p, "forUser", "user", fail);
        identifier(p, "schema", "schema", fail, true);
        grantee(p, fail);
        return { ...p, privileges: privilegesOf(p, "tables", fail) };
    },
    async observe(s, p) {
        if (!(await granteeExists(s, p.grantee))) return undefined;
        const owner = await s.read<{ usesysid: number }>("SELECT usesysid FROM pg_user WHERE usename = $1", [p.forUser]);
        if (owner.length === 0) return undefined;
        if (p.schema !== undefined && (await s.read("SELECT 1 FROM pg_namespace WHERE nspname = $1", [p.schema])).length === 0) return undefined;
        // Postgres names the owner column defaclrole, Redshift defacluser: select both through d.*.
        const rows = await s.read<Props>(
            "SELECT d.*, array_to_string(d.defaclacl, ',') AS acl, COALESCE(n.nspname, '') AS nsp FROM pg_default_acl d " +
                "LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace WHERE d.defaclobjtype = 'r'",
        );
        const mine = rows.filter((r) => Number(r.defaclrole ?? r.defacluser) === Number(owner[0].usesysid) && r.nsp === (p.schema ?? ""));
        return { privileges: mine.flatMap((r) => redshiftAclPrivileges(r.acl, p.grantee, "tables")) };
    },
    create: (s, p) => s.write(redshiftSql.defaultPrivileges("GRANT", p.forUser, p.schema, p.privileges, p.grantee)),
    update: (s, p, o) => converge(s, p.privileges, o.privileges, (verb, privs) => redshiftSql.defaultPrivileges(verb, p.forUser, p.schema, privs, p.grantee)),
    async remove(s, p) {
        if (await defaultPrivilegesKind.observe(s, p)) await s.write(redshiftSql.defaultPrivileges("REVOKE", p.forUser, p.schema, p.privileges, p.grantee));
    },
};

/** REDSHIFT_ONLY: an RBAC role (svv_roles). */
const roleKind: Kind = {
    type: "Role",
    describe: (p) => `Redshift role ${shown(p.name)}`,
    id: (p) => p.name,
    identity: ["name"],
    fields: [],
    convergesOnExisting: false,
    check(p, fail) {
        identifier(p, "name", "role", fail);
        return p;
    },
    async observe(s, p) {
        return (await s.read("SELECT 1 FROM svv_roles WHERE role_name = $1", [p.name])).length > 0 ? {} : undefined;
    },
    create: (s, p) => s.write(redshiftSql.createRole(p.name)),
    update: async () => {},
    remove: (s, p) => s.write(redshiftSql.dropRole(p.name)),
};

/** REDSHIFT_ONLY: GRANT ROLE r TO user (svv_user_grants). */
const roleGrantKind: Kind = {
    type: "RoleGrant",
    describe: (p) => `Redshift grant of role ${shown(p.role)} to ${granteeText(p.grantee)}`,
    id: (p) => `${p.role}/${p.grantee.kind}:${p.grantee.name}`,
    identity: ["role", "grantee"],
    fields: [],
    convergesOnExisting: true,
    check(p, fail) {
        identifier(p, "role", "role", fail);
        grantee(p, fail, ["user", "role"]);
        return p;
    },
    async observe(s, p) {
        const q =
            p.grantee.kind === "user"
                ? "SELECT 1 FROM svv_user_grants WHERE role_name = $1 AND user_name = $2"
                : "SELECT 1 FROM svv_role_grants WHERE granted_role_name = $1 AND role_name = $2";
        return (await s.read(q, [p.role, p.grantee.name])).length > 0 ? {} : undefined;
    },
    create: (s, p) => s.write(redshiftSql.grantRole("GRANT", p.role, p.grantee)),
    update: async () => {},
    remove: (s, p) => s.write(redshiftSql.grantRole("REVOKE", p.role, p.grantee)),
};

/** Every kind by type name (tests, documentation). */
export const REDSHIFT_KINDS = {
    User: userKind,
    Group: groupKind,
    GroupMember: groupMemberKind,
    Schema: schemaKind,
    DatabaseGrant: databaseGrantKind,
    SchemaGrant: schemaGrantKind,
    TableGrant: tableGrantKind,
    DefaultPrivileges: defaultPrivilegesKind,
    Role: roleKind,
    RoleGrant: roleGrantKind,
};
export type RedshiftKindName = keyof typeof REDSHIFT_KINDS;

/** The diff result plus every changed key (the engine reads only the standard fields). */
export interface RedshiftDiff extends pulumi.dynamic.DiffResult {
    changedKeys: string[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The recorded state: inputs without the user password, the admin connection, observed fields, the password hash. */
function outputsOf(kind: Kind, p: Props, observed: Props, salt?: string): Props {
    const out: Props = { connection: p.connection };
    for (const k of kind.identity) if (p[k] !== undefined) out[k] = p[k];
    for (const k of kind.fields) out[k] = observed[k];
    if (p.adopt !== undefined) out.adopt = p.adopt;
    if (observed.lackingRelations !== undefined) out.lackingRelations = observed.lackingRelations;
    if (kind === userKind) {
        out.passwordSalt = salt ?? crypto.randomBytes(16).toString("hex");
        out.passwordHash = redshiftPasswordHash(out.passwordSalt, p.password);
    }
    return out;
}

/** The dynamic provider of one kind; `tuning` changes retry timing only (tests). */
export function redshiftSqlProvider(kindName: RedshiftKindName, tuning?: RedshiftRetryTuning): pulumi.dynamic.ResourceProvider {
    const kind: Kind = REDSHIFT_KINDS[kindName];
    const session = <T>(p: Props, fn: (s: RedshiftSession) => Promise<T>) => withRedshiftSession(p.connection as RedshiftAdminConnection, kind.describe(p), fn, tuning);
    const observeOrThrow = async (s: RedshiftSession, p: Props) => {
        const o = await kind.observe(s, p);
        if (!o) throw new Error(`${kind.describe(p)}: not found right after it was written; check the admin user's privileges.`);
        return o;
    };
    return {
        async check(_olds: Props, news: Props) {
            const failures: pulumi.dynamic.CheckFailure[] = [];
            const what = kind.describe(news);
            const fail = (property: string, expected: string) => failures.push({ property, reason: `${what}: ${property} must be ${expected}.` });
            if (!isUnknown(news.connection)) {
                for (const problem of redshiftConnectionProblems(news.connection)) failures.push({ property: "connection", reason: `${what}: ${problem}.` });
            }
            if (news.adopt !== undefined && typeof news.adopt !== "boolean" && !isUnknown(news.adopt)) fail("adopt", "true or false when set");
            const inputs = kind.check({ ...news }, fail);
            return { inputs, failures };
        },

        async diff(_id: string, olds: Props, news: Props): Promise<RedshiftDiff> {
            const replaces = kind.identity.filter((k) => isUnknown(news[k]) || !same(olds[k], news[k]));
            const changed = [...replaces];
            // Another cluster or database is another object; a new admin user or password is not.
            for (const k of ["host", "port", "database"]) {
                if (isUnknown(news.connection) || !same(olds.connection?.[k], news.connection?.[k])) {
                    replaces.push(`connection.${k}`);
                    changed.push(`connection.${k}`);
                }
            }
            if (!isUnknown(news.connection) && (olds.connection?.user !== news.connection?.user || olds.connection?.password !== news.connection?.password)) {
                changed.push("connection");
            }
            for (const k of kind.fields) if (isUnknown(news[k]) || !same(olds[k], news[k])) changed.push(k);
            if ((olds.lackingRelations ?? []).length > 0) changed.push("privileges");
            if (kind === userKind) {
                const stale = isUnknown(news.password) || typeof olds.passwordSalt !== "string" || redshiftPasswordHash(olds.passwordSalt, String(news.password)) !== olds.passwordHash;
                if (stale) changed.push("password");
            }
            const keys = [...new Set(changed)];
            return { changes: keys.length > 0, replaces: [...new Set(replaces)], deleteBeforeReplace: false, changedKeys: keys };
        },

        async create(inputs: Props) {
            const outs = await session(inputs, async (s) => {
                const existing = await kind.observe(s, inputs);
                if (existing && !kind.convergesOnExisting && !existing.ours && inputs.adopt !== true) {
                    throw new Error(
                        `${kind.describe(inputs)} already exists and was not created by dbt-platform; refusing to take it over. ` +
                            "Rename it in the stack config, drop it, or set adopt: true to manage the existing object.",
                    );
                }
                if (existing) await kind.update(s, inputs, existing);
                else await kind.create(s, inputs);
                return outputsOf(kind, inputs, await observeOrThrow(s, inputs));
            });
            return { id: kind.id(inputs), outs };
        },

        async read(id: string, props?: Props) {
            if (!props?.connection) {
                throw new Error(`Redshift ${kind.type} ${id}: cannot read without its recorded admin connection (import is not supported).`);
            }
            return session(props, async (s) => {
                const observed = await kind.observe(s, props);
                // Gone out of band: no id, so the engine drops it from state and the next `up` creates it.
                if (!observed) return {};
                const next: Props = { ...props };
                for (const k of kind.fields) next[k] = observed[k];
                if (observed.lackingRelations !== undefined) next.lackingRelations = observed.lackingRelations;
                else delete next.lackingRelations;
                return { id, props: next };
            });
        },

        async update(_id: string, olds: Props, news: Props) {
            const outs = await session(news, async (s) => {
                const observed = await kind.observe(s, news);
                // Deleted since the last refresh: make it again.
                if (!observed) await kind.create(s, news);
                else await kind.update(s, news, observed);
                const salt = typeof olds.passwordSalt === "string" ? olds.passwordSalt : undefined;
                return outputsOf(kind, news, await observeOrThrow(s, news), salt);
            });
            return { outs };
        },

        async delete(_id: string, props: Props) {
            await session(props, async (s) => {
                if (await kind.observe(s, props)) await kind.remove(s, props);
            });
        },
    };
}

const providers = {
    User: redshiftSqlProvider("User"),
    Group: redshiftSqlProvider("Group"),
    GroupMember: redshiftSqlProvider("GroupMember"),
    Schema: redshiftSqlProvider("Schema"),
    DatabaseGrant: redshiftSqlProvider("DatabaseGrant"),
    SchemaGrant: redshiftSqlProvider("SchemaGrant"),
    TableGrant: redshiftSqlProvider("TableGrant"),
    DefaultPrivileges: redshiftSqlProvider("DefaultPrivileges"),
    Role: redshiftSqlProvider("Role"),
    RoleGrant: redshiftSqlProvider("RoleGrant"),
};
/** The provider objects the resources serialise (secrecy proof, direct calls in tests). */
export const redshiftProviderObjects: Readonly<Record<RedshiftKindName, pulumi.dynamic.ResourceProvider>> = providers;

/** Fields every Redshift resource takes. */
export interface RedshiftResourceArgs {
    /** Admin connection; always registered as a secret and read per provider call. */
    connection: pulumi.Input<RedshiftAdminConnection>;
}

/** A grant's recipient as an input. */
export type RedshiftGranteeInput = pulumi.Input<{ kind: pulumi.Input<"group" | "user" | "role">; name: pulumi.Input<string> }>;

/** Registers one Redshift resource: connection wrapped secret, output keys declared, secrets listed. */
function register(kindName: RedshiftKindName, args: Props): Props {
    const kind = REDSHIFT_KINDS[kindName];
    const props: Props = { ...args, connection: pulumi.secret(args.connection) };
    for (const k of kind.fields) if (!(k in props)) props[k] = undefined;
    if (kindName === "User") Object.assign(props, { password: pulumi.secret(args.password), passwordHash: undefined, passwordSalt: undefined });
    return props;
}

const secretOutputs = (kindName: RedshiftKindName) => (kindName === "User" ? ["connection", "password", "passwordHash"] : ["connection"]);

function options(kindName: RedshiftKindName, opts?: pulumi.CustomResourceOptions): pulumi.CustomResourceOptions {
    return pulumi.mergeOptions(opts, { additionalSecretOutputs: secretOutputs(kindName) });
}

/** One Redshift dynamic resource: its kind's provider, type token and registered inputs. */
abstract class RedshiftResource extends pulumi.dynamic.Resource {
    constructor(kindName: RedshiftKindName, name: string, args: object, opts?: pulumi.CustomResourceOptions) {
        super(providers[kindName], name, register(kindName, args as Props), options(kindName, opts), REDSHIFT_MODULE, kindName);
    }
}

/** Arguments of a RedshiftUser. */
export interface RedshiftUserArgs extends RedshiftResourceArgs {
    /** User name (a lower-case identifier). */
    name: pulumi.Input<string>;
    /** Password (e.g. a random.RandomPassword result); registered as a secret, kept only as a salted hash. */
    password: pulumi.Input<string>;
    /** Take over a user that exists already (default false: refuse). */
    adopt?: pulumi.Input<boolean>;
}

/** A Redshift user with a password (CREATE USER … PASSWORD). */
export class RedshiftUser extends RedshiftResource {
    declare public readonly name: pulumi.Output<string>;
    /** sha256(passwordSalt, NUL, password), secret: how diff sees a new password without keeping it. */
    declare public readonly passwordHash: pulumi.Output<string>;
    declare public readonly passwordSalt: pulumi.Output<string>;
    constructor(name: string, args: RedshiftUserArgs, opts?: pulumi.CustomResourceOptions) {
        super("User", name, args, opts);
    }
}

/** Arguments of a named principal (a RedshiftGroup or a RedshiftRole). */
export interface RedshiftPrincipalArgs extends RedshiftResourceArgs {
    /** Group or role name. */
    name: pulumi.Input<string>;
    /** Take over one that exists already (default false: refuse). */
    adopt?: pulumi.Input<boolean>;
}

/** Arguments of a RedshiftGroup. */
export type RedshiftGroupArgs = RedshiftPrincipalArgs;

/** A Redshift user group (CREATE GROUP). */
export class RedshiftGroup extends RedshiftResource {
    declare public readonly name: pulumi.Output<string>;
    constructor(name: string, args: RedshiftGroupArgs, opts?: pulumi.CustomResourceOptions) {
        super("Group", name, args, opts);
    }
}

/** Arguments of a RedshiftGroupMember. */
export interface RedshiftGroupMemberArgs extends RedshiftResourceArgs {
    /** Group name. */
    group: pulumi.Input<string>;
    /** User name. */
    user: pulumi.Input<string>;
}

/** One user's membership of one group (ALTER GROUP … ADD USER). */
export class RedshiftGroupMember extends RedshiftResource {
    constructor(name: string, args: RedshiftGroupMemberArgs, opts?: pulumi.CustomResourceOptions) {
        super("GroupMember", name, args, opts);
    }
}

/** Arguments of a RedshiftSchema. */
export interface RedshiftSchemaArgs extends RedshiftResourceArgs {
    /** Schema name. */
    name: pulumi.Input<string>;
    /** Owning user (Redshift schemas are owned by users, never groups). */
    owner: pulumi.Input<string>;
    /** Take over a schema that exists without our COMMENT marker (default false: refuse). */
    adopt?: pulumi.Input<boolean>;
}

/** A schema with its owner and the dbt-platform COMMENT marker. */
export class RedshiftSchema extends RedshiftResource {
    declare public readonly name: pulumi.Output<string>;
    declare public readonly owner: pulumi.Output<string>;
    constructor(name: string, args: RedshiftSchemaArgs, opts?: pulumi.CustomResourceOptions) {
        super("Schema", name, args, opts);
    }
}

/** Arguments of the grant resources. */
export interface RedshiftGrantArgs extends RedshiftResourceArgs {
    /** Who receives the privileges: a group or a user (roles: RedshiftRoleGrant). */
    grantee: RedshiftGranteeInput;
    /** Privileges, e.g. ["USAGE"]; read reports the ones held now. */
    privileges: pulumi.Input<pulumi.Input<string>[]>;
}

/** GRANT CREATE/TEMP ON DATABASE (the connection's database). */
export class RedshiftDatabaseGrant extends RedshiftResource {
    declare public readonly privileges: pulumi.Output<string[]>;
    constructor(name: string, args: RedshiftGrantArgs, opts?: pulumi.CustomResourceOptions) {
        super("DatabaseGrant", name, args, opts);
    }
}

/** Arguments of grants inside one schema. */
export interface RedshiftSchemaGrantArgs extends RedshiftGrantArgs {
    /** Schema name. */
    schema: pulumi.Input<string>;
}

/** GRANT USAGE/CREATE ON SCHEMA. */
export class RedshiftSchemaGrant extends RedshiftResource {
    declare public readonly privileges: pulumi.Output<string[]>;
    constructor(name: string, args: RedshiftSchemaGrantArgs, opts?: pulumi.CustomResourceOptions) {
        super("SchemaGrant", name, args, opts);
    }
}

/** GRANT … ON ALL TABLES IN SCHEMA; read reports the privileges every relation holds. */
export class RedshiftTableGrant extends RedshiftResource {
    declare public readonly privileges: pulumi.Output<string[]>;
    constructor(name: string, args: RedshiftSchemaGrantArgs, opts?: pulumi.CustomResourceOptions) {
        super("TableGrant", name, args, opts);
    }
}

/** Arguments of RedshiftDefaultPrivileges. */
export interface RedshiftDefaultPrivilegesArgs extends RedshiftGrantArgs {
    /** The user whose future tables the rule covers (FOR USER). */
    forUser: pulumi.Input<string>;
    /** Schema (IN SCHEMA); all schemas when omitted. */
    schema?: pulumi.Input<string>;
}

/** ALTER DEFAULT PRIVILEGES FOR USER … [IN SCHEMA …] GRANT … ON TABLES TO …. */
export class RedshiftDefaultPrivileges extends RedshiftResource {
    declare public readonly privileges: pulumi.Output<string[]>;
    constructor(name: string, args: RedshiftDefaultPrivilegesArgs, opts?: pulumi.CustomResourceOptions) {
        super("DefaultPrivileges", name, args, opts);
    }
}

/** Arguments of a RedshiftRole (RBAC; Redshift only). */
export type RedshiftRoleArgs = RedshiftPrincipalArgs;

/** CREATE ROLE (Redshift RBAC). */
export class RedshiftRole extends RedshiftResource {
    declare public readonly name: pulumi.Output<string>;
    constructor(name: string, args: RedshiftRoleArgs, opts?: pulumi.CustomResourceOptions) {
        super("Role", name, args, opts);
    }
}

/** Arguments of a RedshiftRoleGrant. */
export interface RedshiftRoleGrantArgs extends RedshiftResourceArgs {
    /** Role granted. */
    role: pulumi.Input<string>;
    /** A user or a role receiving it. */
    grantee: RedshiftGranteeInput;
}

/** GRANT ROLE … TO … (Redshift RBAC). */
export class RedshiftRoleGrant extends RedshiftResource {
    constructor(name: string, args: RedshiftRoleGrantArgs, opts?: pulumi.CustomResourceOptions) {
        super("RoleGrant", name, args, opts);
    }
}
