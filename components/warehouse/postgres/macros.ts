/**
 * Postgres's dbt macros the pipelines call (the contract's `pullRequestSchemas.dropMacro` and
 * `deployCheck`), rendered into the dbt project's macros/ folder.
 */
import { PLATFORM_SCHEMA } from "./warehouse";

/** The macro the deploy job's ownership check runs (the contract's deployCheck). */
export const SCHEMA_OWNERSHIP_MACRO = "dbt_platform_check_schema_ownership";
/** The macro the reset and cleanup steps run (the contract's pullRequestSchemas.dropMacroName). */
export const DROP_SCHEMA_MACRO = "dbt_platform_drop_pr_schemas";

/** The comment a run puts on its pull request's schema: `<marker><run id>`. */
export const RUN_MARKER = "dbt-platform run ";

/**
 * The reset/cleanup macro for one pull request's schema family: `<prefix><n>` and every
 * `<prefix><n>_<custom>` that dbt's default generate_schema_name derives from it (`+schema:`).
 *
 * - It refuses any schema_name that is not `<prefix><digits>`, and drops only names equal to it or
 *   starting with it followed by `_` (so pull request 1 never touches dbt_pr_12).
 * - `claim: true` (start of a run) drops the family, recreates the PR schema and marks it with the
 *   run id; `claim: false` (cleanup) drops the family only while the mark is still this run's, so a
 *   cancelled older run cannot drop what a newer run of the same PR is building.
 * - Both take a transaction-level advisory lock per PR schema, so claim and cleanup never interleave.
 */
export function dropSchemaMacro(prefix: string): string {
    if (!/^[a-z][a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`drop schema macro: prefix ${JSON.stringify(prefix)} is not a schema name prefix`);
    return [
        "{# Rendered by dbt-platform; do not edit. Called by the CI reset and cleanup steps. #}",
        `{% macro ${DROP_SCHEMA_MACRO}(schema_name, run_id, claim=false) %}`,
        `  {%- set prefix = '${prefix}' -%}`,
        "  {%- set schema_name = schema_name | string -%}",
        "  {%- set run_id = run_id | string -%}",
        "  {%- if not modules.re.fullmatch(prefix ~ '[0-9]+', schema_name) -%}",
        "    {{ exceptions.raise_compiler_error('refusing to drop ' ~ schema_name ~ ': only ' ~ prefix ~ '<pull request number> schemas and their _<custom> variants are dropped') }}",
        "  {%- endif -%}",
        "  {%- if not modules.re.fullmatch('[A-Za-z0-9_.-]+', run_id) -%}",
        "    {{ exceptions.raise_compiler_error('run_id ' ~ run_id ~ ' is not a CI run id') }}",
        "  {%- endif -%}",
        `  {%- set marker = '${RUN_MARKER}' ~ run_id -%}`,
        "  {%- set family_sql -%}",
        "    select nspname from pg_namespace",
        "    where nspname = '{{ schema_name }}' or left(nspname, {{ schema_name | length + 1 }}) = '{{ schema_name }}_'",
        "    order by 1",
        "  {%- endset -%}",
        "  {%- set family = run_query(family_sql).columns[0].values() | list -%}",
        "  {%- for s in family -%}",
        "    {#- The guard, again on every name that would be dropped. -#}",
        "    {%- if not (s == schema_name or (s.startswith(schema_name ~ '_') and s | length > schema_name | length + 1)) -%}",
        "      {{ exceptions.raise_compiler_error('refusing to drop ' ~ s ~ ': not in the family of ' ~ schema_name) }}",
        "    {%- endif -%}",
        "  {%- endfor -%}",
        "  {%- set sql -%}",
        "    do $dbt_platform$",
        "    declare",
        "      s text;",
        "      owner_mark text;",
        "    begin",
        "      perform pg_advisory_xact_lock(hashtext('dbt-platform:{{ schema_name }}'));",
        "      select obj_description(oid, 'pg_namespace') into owner_mark from pg_namespace where nspname = '{{ schema_name }}';",
        "      {%- if not claim %}",
        "      if owner_mark is not null and owner_mark like '" + RUN_MARKER + "%' and owner_mark <> '{{ marker }}' then",
        "        raise notice 'dbt-platform: % is held by %, not dropped', '{{ schema_name }}', owner_mark;",
        "        return;",
        "      end if;",
        "      {%- endif %}",
        "      for s in select nspname from pg_namespace",
        "               where nspname = '{{ schema_name }}' or left(nspname, {{ schema_name | length + 1 }}) = '{{ schema_name }}_' loop",
        "        execute format('drop schema %I cascade', s);",
        "      end loop;",
        "      {%- if claim %}",
        // The dev role has no CREATE on the database: the platform's function creates the PR schema, owned by the dev role.
        `      perform "${PLATFORM_SCHEMA}".create_schema('{{ schema_name }}');`,
        "      execute format('comment on schema %I is %L', '{{ schema_name }}', '{{ marker }}');",
        "      {%- endif %}",
        "    end",
        "    $dbt_platform$",
        "  {%- endset -%}",
        "  {%- do run_query(sql) -%}",
        "  {%- set held_sql -%}",
        "    select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = '{{ schema_name }}'",
        "  {%- endset -%}",
        "  {%- set held = run_query(held_sql).columns[0].values() | list -%}",
        "  {%- if claim -%}",
        "    {{ log('claimed ' ~ target.database ~ '.' ~ schema_name ~ ' for run ' ~ run_id ~ ' (dropped before: ' ~ (family | join(', ') or 'none') ~ ')', info=True) }}",
        "  {%- elif held and held[0] != marker -%}",
        "    {{ log('left ' ~ target.database ~ '.' ~ schema_name ~ ': a newer run holds it (' ~ held[0] ~ ')', info=True) }}",
        "  {%- else -%}",
        "    {{ log('dropped schemas ' ~ target.database ~ '.' ~ (family | join(', ' ~ target.database ~ '.') or '(none)'), info=True) }}",
        "  {%- endif -%}",
        "{% endmacro %}",
        "",
    ].join("\n");
}


/**
 * Issue 11: production never writes into a schema someone else created (a squatted schema's owner
 * could drop or rewrite what production builds there). Walks the schemas of every model, seed and
 * snapshot of the target (ephemeral models write nothing) and runs the query of
 * warehouse.schemaOwnershipCheckSql with the session's role, which masking makes the prod role.
 * Absent schemas are fine: the build creates them as the prod role.
 */
export function schemaOwnershipMacro(): string {
    return `{% macro ${SCHEMA_OWNERSHIP_MACRO}() -%}
  {%- set schemas = [] -%}
  {%- for node in graph.nodes.values() -%}
    {%- if node.resource_type in ['model', 'seed', 'snapshot'] and node.config.materialized != 'ephemeral' and node.schema not in schemas -%}
      {%- do schemas.append(node.schema) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if schemas | length == 0 -%}
    {{ log("dbt-platform: no schemas to check", info=true) }}
    {{ return(none) }}
  {%- endif -%}
  {%- set sql -%}
    select n.nspname as schema_name, pg_catalog.pg_get_userbyid(n.nspowner) as owner
    from pg_catalog.pg_namespace as n
    where n.nspname = any (array[{%- for s in schemas -%}'{{ s | replace("'", "''") }}'{{ ", " if not loop.last }}{%- endfor -%}]::text[])
    and n.nspowner <> (select r.oid from pg_catalog.pg_roles as r where r.rolname = current_user)
  {%- endset -%}
  {%- set rows = run_query(sql) -%}
  {%- if rows | length > 0 -%}
    {%- set found = [] -%}
    {%- for r in rows -%}{%- do found.append(r[0] ~ " (owned by " ~ r[1] ~ ")") -%}{%- endfor -%}
    {{ exceptions.raise_compiler_error("dbt-platform: refusing to build: target schema(s) not owned by the production role: " ~ found | join(", ") ~ ". Drop the schema or transfer it to the production role first.") }}
  {%- endif -%}
  {{ log("dbt-platform: " ~ schemas | length ~ " target schema(s) absent or owned by the production role: " ~ schemas | join(", "), info=true) }}
{%- endmacro %}
`;
}
