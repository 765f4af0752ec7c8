/**
 * PR schema families and the SQL to list, mark and drop them, per warehouse kind. CI builds a pull
 * request into `<prefix><n>`; dbt custom schemas add `<prefix><n>_<custom>`; all of them belong to
 * PR n and are dropped together. The creation time CI records is the TTL's clock: a schema comment
 * on Postgres and Snowflake, a one-row marker table on Redshift (no COMMENT ON SCHEMA there).
 */

/** Warehouse kinds the janitor knows the SQL of (Postgres is the one run by the tests). */
export type WarehouseKind = "postgres" | "redshift" | "snowflake";

/** One schema as listed: its name and the creation time recorded by CI, if any. */
export interface ListedSchema {
    schema: string;
    /** The marker text CI recorded when it created the schema (schema comment); null/undefined when none. */
    mark?: string | null;
}

/** All schemas of one pull request. */
export interface PrSchemaFamily {
    pr: number;
    /** `<prefix><n>` first (when present), then the custom variants, sorted. */
    schemas: string[];
    /** Earliest recorded creation time of the family's schemas, if any. */
    createdAt?: Date;
}

/** Text of the marker CI writes; the janitor reads `created_at=` back. */
export const MARK_PREFIX = "dbt-platform pr-schema";
const CREATED_AT = /(?:^|\s)created_at=(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)(?:\s|$)/;

/** The recorded creation time in a marker (schema comment), or undefined. */
export function parseMark(text: string | null | undefined): Date | undefined {
    const m = CREATED_AT.exec(text ?? "");
    if (!m) return undefined;
    const d = new Date(m[1]);
    return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The marker text for a schema created at `at`. */
export function markText(pr: number, at: Date): string {
    return `${MARK_PREFIX} pr=${pr} created_at=${at.toISOString().replace(/\.\d{3}Z$/, "Z")}`;
}

/** A PR prefix as the config allows it: a lower-case identifier prefix of at most 50 characters. */
export function checkPrefix(prefix: string): void {
    if (!/^[a-z_][a-z0-9_]{0,49}$/.test(prefix)) {
        throw new Error(`janitor: pull-request prefix ${JSON.stringify(prefix)}: expected a lower-case identifier prefix of at most 50 characters`);
    }
}

/** Groups listed schemas into PR families; anything else (e.g. `<prefix>abc`) is not ours and ignored. */
export function families(prefix: string, listed: ListedSchema[]): PrSchemaFamily[] {
    checkPrefix(prefix);
    const re = new RegExp(`^${prefix}(0|[1-9][0-9]{0,9})(?:_([a-z0-9_]+))?$`);
    const byPr = new Map<number, PrSchemaFamily>();
    for (const s of listed) {
        const m = re.exec(s.schema);
        if (!m) continue;
        const pr = Number(m[1]);
        const f = byPr.get(pr) ?? { pr, schemas: [] };
        f.schemas.push(s.schema);
        const at = parseMark(s.mark);
        if (at && (!f.createdAt || at < f.createdAt)) f.createdAt = at;
        byPr.set(pr, f);
    }
    for (const f of byPr.values()) {
        const base = `${prefix}${f.pr}`;
        f.schemas.sort((a, b) => (a === base ? -1 : b === base ? 1 : a < b ? -1 : a > b ? 1 : 0));
    }
    return [...byPr.values()].sort((a, b) => a.pr - b.pr);
}

/** A LIKE pattern matching names that start with `prefix` (with `\` escaping `_` and `%`). */
export function likePrefix(prefix: string): string {
    return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Double-quoted identifier (every kind here quotes with "", doubling embedded quotes). */
export function quoteIdent(name: string): string {
    return `"${name.replace(/"/g, '""')}"`;
}

/** The SQL of one warehouse kind: list (one parameter, the LIKE pattern), mark and drop. */
export interface JanitorSql {
    /** Rows `schema`, `mark` (the recorded marker text or null); parameter $1 / ? = LIKE pattern. */
    list: string;
    /** Statements CI runs right after creating `schema` (records the creation time once). */
    mark(schema: string, pr: number, at: Date): string[];
    /** Drops one schema and everything in it (and its mark where that lives elsewhere). */
    drop(schema: string): string[];
}

/** Redshift: the table of marks, in the warehouse's own schema `dbt_platform`. */
export const MARK_TABLE = "dbt_platform.pr_schema_marks";

export const JANITOR_SQL: Record<WarehouseKind, JanitorSql> = {
    postgres: {
        list: "select n.nspname as schema, obj_description(n.oid, 'pg_namespace') as mark from pg_catalog.pg_namespace n where n.nspname like $1 escape '\\' order by 1",
        // Set once: a later CI run on the same PR keeps the original creation time.
        mark: (schema, pr, at) => [
            `do $$ begin if obj_description(to_regnamespace(${literal(schema)}), 'pg_namespace') is null then ` +
                `comment on schema ${quoteIdent(schema)} is ${literal(markText(pr, at))}; end if; end $$`,
        ],
        drop: (schema) => [`drop schema if exists ${quoteIdent(schema)} cascade`],
    },
    redshift: {
        // Redshift has no COMMENT ON SCHEMA: marks live in the platform's own schema (reserved by the config).
        list:
            `select s.schema_name as schema, m.mark from svv_all_schemas s left join ${MARK_TABLE} m on m.schema_name = s.schema_name ` +
            `where s.database_name = current_database() and s.schema_name like $1 escape '\\' order by 1`,
        mark: (schema, pr, at) => [
            `create table if not exists ${MARK_TABLE} (schema_name varchar(127) primary key, mark varchar(200) not null)`,
            `insert into ${MARK_TABLE} select ${literal(schema)}, ${literal(markText(pr, at))} where not exists (select 1 from ${MARK_TABLE} where schema_name = ${literal(schema)})`,
        ],
        drop: (schema) => [`drop schema if exists ${quoteIdent(schema)} cascade`, `delete from ${MARK_TABLE} where schema_name = ${literal(schema)}`],
    },
    snowflake: {
        list: "select schema_name as \"schema\", comment as \"mark\" from information_schema.schemata where lower(schema_name) like ? escape '\\\\' order by 1",
        // Snowflake upper-cases unquoted names; dbt-snowflake creates them unquoted, so the list compares lower().
        mark: (schema, pr, at) => [`alter schema if exists ${schema} set comment = ${literal(markText(pr, at))}`],
        drop: (schema) => [`drop schema if exists ${schema} cascade`],
    },
};

function literal(s: string): string {
    return `'${s.replace(/'/g, "''")}'`;
}

/** A dbt macro for the CI side (on-run-end): records the PR schema's creation time once, on Postgres. */
export function markMacro(prefix: string): string {
    checkPrefix(prefix);
    return `{# dbt-platform: record when CI created this pull request's schema (the janitor's TTL clock). #}
{% macro dbt_platform_mark_pr_schema() %}
  {%- set schema = target.schema -%}
  {%- set m = modules.re.match('^${prefix}([0-9]+)$', schema) -%}
  {%- if m and execute -%}
    {%- set text = '${MARK_PREFIX} pr=' ~ m.group(1) ~ ' created_at=' ~ run_started_at.strftime('%Y-%m-%dT%H:%M:%SZ') -%}
    {% do run_query("do $$ begin if obj_description(to_regnamespace('" ~ schema ~ "'), 'pg_namespace') is null then comment on schema " ~ adapter.quote(schema) ~ " is '" ~ text ~ "'; end if; end $$") %}
  {%- endif -%}
{% endmacro %}
`;
}
