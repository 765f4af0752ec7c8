/**
 * dbt-snowflake profiles, the environment they read, the credential secret's shape and the
 * PR-schema cleanup macro. profiles.yml only holds env_var() references; the private key reaches
 * dbt as a file (mode 600) whose path is in `DBT_<TARGET>_PRIVATE_KEY_PATH`, as seed 002 does.
 */
import { stringify } from "yaml";
import { envVarRef, envVarsFor, PullRequestSchemas, TargetEnvVar, targetEnvVar } from "../contract";

/** Fields of every Snowflake target: the keys of its credential JSON (seed 002's secret plus the schema). */
export const SNOWFLAKE_TARGET_FIELDS = ["account", "user", "role", "warehouse", "database", "schema", "private_key"] as const;
/** Extra fields when the stack sets an endpoint (fakesnow, PrivateLink). */
export const SNOWFLAKE_ENDPOINT_FIELDS = ["host", "port", "protocol"] as const;
export type SnowflakeTargetField = (typeof SNOWFLAKE_TARGET_FIELDS)[number] | (typeof SNOWFLAKE_ENDPOINT_FIELDS)[number];

/** The target field the job writes to a file, and the profile key that reads its path. */
export const PRIVATE_KEY_FIELD = "private_key";
export const PRIVATE_KEY_PATH_FIELD = "private_key_path";

/** Where a job writes a target's private key (RUNNER_TEMP on GitHub, /tmp elsewhere). */
export function privateKeyPath(target: string): string {
    return `\${RUNNER_TEMP:-/tmp}/dbt-platform/${target}-snowflake-key.p8`;
}

/** Connection values of one Snowflake target; `private_key` is a secret. */
export interface SnowflakeTargetConnection {
    account: string;
    user: string;
    role: string;
    warehouse: string;
    database: string;
    schema: string;
    /** PKCS#8 PEM private key of the user's active key pair. */
    private_key: string;
    host?: string;
    port?: number;
    protocol?: string;
}

/** The credential fields of a stack's targets. */
export function snowflakeTargetFields(endpoint: boolean): SnowflakeTargetField[] {
    return [...SNOWFLAKE_TARGET_FIELDS, ...(endpoint ? SNOWFLAKE_ENDPOINT_FIELDS : [])];
}

/** The environment variables one target reads. */
export function snowflakeTargetEnv(target: string, opts: { endpoint: boolean; pullRequestSchema: boolean }): TargetEnvVar[] {
    return envVarsFor(target, snowflakeTargetFields(opts.endpoint), {
        secret: [PRIVATE_KEY_FIELD],
        files: { [PRIVATE_KEY_FIELD]: { pathField: PRIVATE_KEY_PATH_FIELD, path: privateKeyPath(target) } },
        perRun: opts.pullRequestSchema ? { schema: "pull-request-schema" } : {},
    });
}

/** A dbt `snowflake` output as it appears in profiles.yml. */
export interface SnowflakeProfileOutput {
    type: "snowflake";
    account: string;
    user: string;
    role: string;
    warehouse: string;
    database: string;
    schema: string;
    private_key_path: string;
    threads: number;
    client_session_keep_alive: boolean;
    host?: string;
    port?: string;
    protocol?: string;
}

/** The profiles.yml document: one profile with named outputs. */
export type SnowflakeProfilesDocument = Record<string, { target: string; outputs: Record<string, SnowflakeProfileOutput> }>;

/** Builds the profiles document; every connection value is an env_var() reference. */
export function snowflakeProfiles(args: { profile: string; defaultTarget: string; targets: readonly string[]; threads: number; endpoint: boolean }): SnowflakeProfilesDocument {
    if (!args.targets.includes(args.defaultTarget)) {
        throw new Error(`default target ${args.defaultTarget} is not one of ${args.targets.join(", ")}`);
    }
    const outputs: Record<string, SnowflakeProfileOutput> = {};
    for (const t of args.targets) {
        const ref = (field: string, int = false) => envVarRef(targetEnvVar(t, field), { int });
        const out: SnowflakeProfileOutput = {
            type: "snowflake",
            account: ref("account"),
            user: ref("user"),
            role: ref("role"),
            warehouse: ref("warehouse"),
            database: ref("database"),
            schema: ref("schema"),
            // The job writes DBT_<T>_PRIVATE_KEY to this file (mode 600) before dbt starts.
            private_key_path: ref(PRIVATE_KEY_PATH_FIELD),
            threads: args.threads,
            client_session_keep_alive: false,
        };
        if (args.endpoint) {
            out.host = ref("host");
            out.port = ref("port", true);
            out.protocol = ref("protocol");
        }
        outputs[t] = out;
    }
    return { [args.profile]: { target: args.defaultTarget, outputs } };
}

/** Serialises a profiles document to YAML. */
export function renderSnowflakeProfilesYaml(doc: SnowflakeProfilesDocument): string {
    return stringify(doc, { lineWidth: 0 });
}

/** Name of the cleanup macro (the same name the Postgres pipelines call). */
export const SNOWFLAKE_DROP_MACRO_NAME = "dbt_platform_drop_pr_schema";

/**
 * The cleanup macro: drops pull request n's schema family in the target's (development) database,
 * `<prefix><n>` and `<prefix><n>_<custom>`. It refuses any name that is not `<prefix><digits>`,
 * so a mistyped variable can never drop production, and it matches the family with STARTSWITH,
 * not LIKE (`_` is a LIKE wildcard). The validated name is the only value put into the query.
 */
export function snowflakeDropMacro(prefix: string): string {
    if (!/^[A-Z][A-Z0-9_]{0,40}$/.test(prefix)) throw new Error(`drop schema macro: prefix ${JSON.stringify(prefix)} is not an upper-case schema name prefix`);
    return [
        "{# Rendered by dbt-platform; do not edit. Called by the CI cleanup step. #}",
        `{% macro ${SNOWFLAKE_DROP_MACRO_NAME}(schema_name) %}`,
        `  {%- set prefix = '${prefix}' -%}`,
        "  {%- set base = (schema_name | string | upper) -%}",
        "  {%- set suffix = base[prefix | length:] -%}",
        "  {%- if not (base.startswith(prefix) and suffix.isdigit()) -%}",
        "    {{ exceptions.raise_compiler_error('refusing to drop ' ~ schema_name ~ ': only ' ~ prefix ~ '<pull request number> schemas are dropped') }}",
        "  {%- endif -%}",
        "  {%- set family -%}",
        "    select schema_name from {{ target.database }}.information_schema.schemata",
        "    where schema_name = '{{ base }}' or startswith(schema_name, '{{ base }}_')",
        "  {%- endset -%}",
        "  {%- for row in run_query(family).rows -%}",
        "    {%- do adapter.drop_schema(api.Relation.create(database=target.database, schema=row[0])) -%}",
        "    {{ log('dropped schema ' ~ target.database ~ '.' ~ row[0], info=True) }}",
        "  {%- endfor -%}",
        "{% endmacro %}",
        "",
    ].join("\n");
}

/** The contract's PR-schema description for Snowflake. */
export function snowflakePullRequestSchemas(prefix: string, database: string): PullRequestSchemas {
    return { prefix, database, case: "upper", createdBy: "dbt", dropMacroName: SNOWFLAKE_DROP_MACRO_NAME, dropMacro: snowflakeDropMacro(prefix) };
}
