/**
 * dbt-redshift profiles. profiles.yml only ever holds env_var() references for connection values;
 * the values live in CI secrets/variables named by `redshiftEnvVarName` (the same DBT_<TARGET>_<FIELD>
 * scheme as Postgres, so the pipelines export one set of names per target).
 */
import { stringify } from "yaml";
import { credentialJson, type TargetEnvVar } from "../contract";

/** The adapter the pipelines install for Redshift stacks. */
export const REDSHIFT_ADAPTER = { type: "redshift", package: "dbt-redshift", version: "1.11.2" } as const;

/** How dbt authenticates: a database password, or IAM (temporary credentials) on a cluster or a Serverless workgroup. */
export type RedshiftAuth =
    | { method: "database" }
    | { method: "iam"; clusterId: string; region: string }
    | { method: "iam"; workgroup: string; region: string };

/** Connection fields of a dbt Redshift target that come from the environment. */
export const REDSHIFT_TARGET_FIELDS = ["host", "port", "user", "password", "dbname", "schema"] as const;
export type RedshiftTargetField = (typeof REDSHIFT_TARGET_FIELDS)[number];

/** Fields a target of `auth` reads from the environment (IAM has no password). */
export function redshiftTargetFields(auth: RedshiftAuth): RedshiftTargetField[] {
    return REDSHIFT_TARGET_FIELDS.filter((f) => auth.method === "database" || f !== "password");
}

/** Environment variable that carries `field` of `target`, e.g. DBT_CI_PASSWORD. */
export function redshiftEnvVarName(target: string, field: RedshiftTargetField): string {
    return `DBT_${target.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_${field.toUpperCase()}`;
}

/** A dbt `redshift` output as it appears in profiles.yml. */
export interface RedshiftProfileOutput {
    type: "redshift";
    method: "database" | "iam";
    host: string;
    port: string;
    user: string;
    password?: string;
    dbname: string;
    schema: string;
    threads: number;
    sslmode: string;
    cluster_id?: string;
    region?: string;
    /** Redshift closes idle connections behind NAT; dbt-redshift keeps them alive (seconds). */
    keepalives_idle: number;
    connect_timeout: number;
}

/** The profiles.yml document. */
export type RedshiftProfilesDocument = Record<string, { target: string; outputs: Record<string, RedshiftProfileOutput> }>;

function envRef(target: string, field: RedshiftTargetField): string {
    const ref = `env_var('${redshiftEnvVarName(target, field)}')`;
    return field === "port" ? `{{ ${ref} | int }}` : `{{ ${ref} }}`;
}

/** Builds the profiles document; every connection value is an env_var() reference. */
export function redshiftProfiles(args: {
    profile: string;
    defaultTarget: string;
    targets: readonly string[];
    threads: number;
    sslmode: string;
    auth: RedshiftAuth;
}): RedshiftProfilesDocument {
    if (!args.targets.includes(args.defaultTarget)) {
        throw new Error(`default target ${args.defaultTarget} is not one of ${args.targets.join(", ")}`);
    }
    const outputs: Record<string, RedshiftProfileOutput> = {};
    for (const t of args.targets) {
        const out: RedshiftProfileOutput = {
            type: "redshift",
            method: args.auth.method,
            host: envRef(t, "host"),
            port: envRef(t, "port"),
            user: envRef(t, "user"),
            dbname: envRef(t, "dbname"),
            schema: envRef(t, "schema"),
            threads: args.threads,
            sslmode: args.sslmode,
            keepalives_idle: 240,
            connect_timeout: 30,
        };
        if (args.auth.method === "database") out.password = envRef(t, "password");
        // A Serverless workgroup is addressed by its endpoint (host); a provisioned cluster also needs its id.
        if (args.auth.method === "iam") {
            if ("clusterId" in args.auth) out.cluster_id = args.auth.clusterId;
            out.region = args.auth.region;
        }
        outputs[t] = out;
    }
    return { [args.profile]: { target: args.defaultTarget, outputs } };
}

/** Serialises a profiles document to YAML. */
export function renderRedshiftProfilesYaml(doc: RedshiftProfilesDocument): string {
    return stringify(doc, { lineWidth: 0 });
}

/** One environment variable a target reads (the contract's TargetEnvVar; Redshift has no file fields). */
export type RedshiftTargetEnvVar = TargetEnvVar;

/** The variables of one target: the password is the only secret; the CI schema is computed per run (dbt_build_<PR>). */
export function redshiftTargetEnv(target: string, auth: RedshiftAuth, pullRequestSchema: boolean): RedshiftTargetEnvVar[] {
    return redshiftTargetFields(auth).map((field) => {
        const v: RedshiftTargetEnvVar = { field, name: redshiftEnvVarName(target, field), secret: field === "password" };
        if (pullRequestSchema && field === "schema") v.perRun = "pull-request-schema";
        return v;
    });
}

/** The credential secret of one target: the contract's credentialJson, under the name the library exported first. */
export const redshiftCredentialJson = credentialJson;

/** Name of the cleanup macro (the same name the Postgres and Snowflake pipelines call). */
export const REDSHIFT_DROP_MACRO_NAME = "dbt_platform_drop_pr_schema";

/**
 * The cleanup macro: drops pull request n's schema family, `<prefix><n>` and `<prefix><n>_<custom>`
 * (seed 003 left them behind; this does not). It refuses any name that is not `<prefix><digits>`, and
 * matches the family with LEFT(), not LIKE (`_` is a LIKE wildcard). pg_namespace exists on Redshift
 * and Postgres alike; the validated name is the only value put into the query.
 */
export function redshiftDropMacro(prefix: string): string {
    if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`drop schema macro: prefix ${JSON.stringify(prefix)} is not a lower-case schema name prefix`);
    return [
        "{# Rendered by dbt-platform; do not edit. Called by the CI cleanup step. #}",
        `{% macro ${REDSHIFT_DROP_MACRO_NAME}(schema_name) %}`,
        `  {%- set prefix = '${prefix}' -%}`,
        "  {%- set base = (schema_name | string | lower) -%}",
        "  {%- set suffix = base[prefix | length:] -%}",
        "  {%- if not (base.startswith(prefix) and suffix.isdigit()) -%}",
        "    {{ exceptions.raise_compiler_error('refusing to drop ' ~ schema_name ~ ': only ' ~ prefix ~ '<pull request number> schemas are dropped') }}",
        "  {%- endif -%}",
        "  {%- set family -%}",
        "    select nspname from pg_namespace",
        "    where nspname = '{{ base }}' or left(nspname, {{ (base | length) + 1 }}) = '{{ base }}_'",
        "  {%- endset -%}",
        "  {%- for row in run_query(family).rows -%}",
        "    {%- do adapter.drop_schema(api.Relation.create(database=target.database, schema=row[0])) -%}",
        "    {{ log('dropped schema ' ~ target.database ~ '.' ~ row[0], info=True) }}",
        "  {%- endfor -%}",
        "{% endmacro %}",
        "",
    ].join("\n");
}

/** The contract's PullRequestSchemas for Redshift: seed 003's dbt_build_<PR>, lower case, created by dbt as the CI user. */
export function redshiftPullRequestSchemas(prefix: string, database: string) {
    return { prefix, database, case: "lower" as const, createdBy: "dbt" as const, dropMacroName: REDSHIFT_DROP_MACRO_NAME, dropMacro: redshiftDropMacro(prefix) };
}
