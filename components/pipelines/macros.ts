/**
 * dbt macros the pipelines call, rendered into the dbt repository's macros/ folder.
 */
import { DROP_SCHEMA_MACRO } from "./model";

/**
 * The cleanup macro: drops exactly one pull request's schema in the target database. It refuses
 * any name that is not `<prefix><digits>`, so a mistyped variable can never drop production.
 */
export function dropSchemaMacro(prefix: string): string {
    if (!/^[a-z][a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`drop schema macro: prefix ${JSON.stringify(prefix)} is not a schema name prefix`);
    return [
        "{# Rendered by dbt-platform; do not edit. Called by the CI cleanup step. #}",
        `{% macro ${DROP_SCHEMA_MACRO}(schema_name) %}`,
        `  {%- set prefix = '${prefix}' -%}`,
        "  {%- set suffix = (schema_name | string)[prefix | length:] -%}",
        "  {%- if not ((schema_name | string).startswith(prefix) and suffix.isdigit()) -%}",
        "    {{ exceptions.raise_compiler_error('refusing to drop ' ~ schema_name ~ ': only ' ~ prefix ~ '<pull request number> schemas are dropped') }}",
        "  {%- endif -%}",
        "  {%- set relation = api.Relation.create(database=target.database, schema=schema_name) -%}",
        "  {%- do adapter.drop_schema(relation) -%}",
        "  {{ log('dropped schema ' ~ target.database ~ '.' ~ schema_name, info=True) }}",
        "{% endmacro %}",
        "",
    ].join("\n");
}
