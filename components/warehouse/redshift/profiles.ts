/**
 * dbt-redshift profiles. profiles.yml only ever holds env_var() references for connection values;
 * the values live in CI secrets/variables named by `redshiftEnvVarName` (the same DBT_<TARGET>_<FIELD>
 * scheme as Postgres, so the pipelines export one set of names per target).
 */
import { stringify } from "yaml";

/** The adapter the pipelines install for Redshift stacks. */
export const REDSHIFT_ADAPTER = { package: "dbt-redshift", version: "1.9.5" } as const;

/** How dbt authenticates: a database password, or IAM (temporary credentials) on a cluster or a Serverless workgroup. */
export type RedshiftAuth =
    | { method: "database" }
    | { method: "iam"; clusterId: string; region: string }
    | { method: "iam"; workgroup: string; region: string };

/** Connection fields of a dbt Redshift target that come from the environment. */
export const REDSHIFT_TARGET_FIELDS = ["host", "port", "user", "password", "dbname", "schema"] as const;
export type RedshiftTargetField = (typeof REDSHIFT_TARGET_FIELDS)[number];

/** Fields a target of `auth` reads from the environment (IAM has no password). */
export function targetFields(auth: RedshiftAuth): RedshiftTargetField[] {
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
