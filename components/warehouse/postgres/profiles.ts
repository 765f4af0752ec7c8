/**
 * dbt profiles for Postgres targets. profiles.yml only ever holds env_var() references:
 * the values live in CI secrets/variables named by `envVarName`.
 */
import { stringify } from "yaml";

/** The connection fields of a dbt Postgres target that come from the environment. */
export const TARGET_FIELDS = ["host", "port", "user", "password", "dbname", "schema"] as const;
export type TargetField = (typeof TARGET_FIELDS)[number];

/** Environment variable that carries `field` of `target`, e.g. DBT_CI_PASSWORD. */
export function envVarName(target: string, field: TargetField): string {
    return `DBT_${target.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_${field.toUpperCase()}`;
}

/** A dbt `postgres` output as it appears in profiles.yml. */
export interface PostgresProfileOutput {
    type: "postgres";
    host: string;
    port: string;
    user: string;
    password: string;
    dbname: string;
    schema: string;
    threads: number;
    sslmode: string;
    /** CA bundle libpq verifies the server with (a path on the runner, or `system` for the OS store, libpq 16+). */
    sslrootcert?: string;
    keepalives_idle: number;
}

/** The profiles.yml document: one profile with named outputs. */
export type ProfilesDocument = Record<string, { target: string; outputs: Record<string, PostgresProfileOutput> }>;

function envRef(target: string, field: TargetField): string {
    const ref = `env_var('${envVarName(target, field)}')`;
    return field === "port" ? `{{ ${ref} | int }}` : `{{ ${ref} }}`;
}

/** Builds the profiles document; every connection value is an env_var() reference. */
export function postgresProfiles(args: {
    profile: string;
    defaultTarget: string;
    targets: readonly string[];
    threads: number;
    sslmode: string;
    /** Written as a plain value when set: the same CA for every target, and not a secret. */
    sslrootcert?: string;
}): ProfilesDocument {
    if (!args.targets.includes(args.defaultTarget)) {
        throw new Error(`default target ${args.defaultTarget} is not one of ${args.targets.join(", ")}`);
    }
    const outputs: Record<string, PostgresProfileOutput> = {};
    for (const t of args.targets) {
        outputs[t] = {
            type: "postgres",
            host: envRef(t, "host"),
            port: envRef(t, "port"),
            user: envRef(t, "user"),
            password: envRef(t, "password"),
            dbname: envRef(t, "dbname"),
            schema: envRef(t, "schema"),
            threads: args.threads,
            sslmode: args.sslmode,
            ...(args.sslrootcert ? { sslrootcert: args.sslrootcert } : {}),
            // CI runners sit behind NAT gateways that drop idle connections; the seed sets this too.
            keepalives_idle: 0,
        };
    }
    return { [args.profile]: { target: args.defaultTarget, outputs } };
}

/** Serialises a profiles document to YAML. */
export function renderProfilesYaml(doc: ProfilesDocument): string {
    return stringify(doc, { lineWidth: 0 });
}
