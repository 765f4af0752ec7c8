/**
 * The warehouse contract: everything the platform (DbtPlatform, the pipeline model,
 * WarehouseCredentials, the CI settings) may know about a warehouse. A warehouse component
 * (`warehouse/<kind>/`) implements `Warehouse`; nothing outside `warehouse/<kind>/` reads
 * warehouse-specific fields.
 *
 * What the contract carries:
 * - dbt targets per bot duty (`targetNames`) and their connection values (`targets`, a secret);
 * - `profilesYaml`, with env_var() references only, and `targetEnv`: per target the environment
 *   variables it reads, which are secret, which carry file contents (written by the job to a file
 *   with mode 600, its path in another variable) and which the job computes per run (the PR schema);
 * - the adapter package and version the pipelines install;
 * - the credential secret's shape: one flat JSON object per target whose keys are the target's
 *   fields, so `aws-secretsmanager-get-secrets` with `parse-json-secrets` and the alias
 *   `envAlias(target)` exports exactly the variables profiles.yml reads (`<ALIAS>_<KEY>`);
 * - the PR-schema naming (prefix, database, the family `<prefix><n>` and `<prefix><n>_<custom>`
 *   that dbt's generate_schema_name yields), how it is created and the cleanup macro that drops it;
 * - the declared access plan as data (roles, memberships, grants, ownerships, future grants,
 *   logins) for review and audit.
 *
 * How PostgresWarehouse maps onto it (phase 2 makes it `implements Warehouse`):
 * - kind "postgres"; adapter dbt-postgres at `dbt.adapterVersion`;
 * - targetNames/targets: as today (`botTargetName`); fields host, port, user, password (secret),
 *   dbname, schema; env vars `envVarName(target, field)` (unchanged: DBT_<TARGET>_<FIELD>);
 *   `password` is the only secret, no file fields; the CI target's schema is computed per run;
 * - credentialFields: the same six fields (WarehouseCredentials' JSON today);
 * - pullRequestSchemas: prefix `warehouse.schemas.pullRequestPrefix` (default dbt_pr_), database =
 *   the one database, case "lower", created through dbt_platform.create_schema (`createMacro`), the
 *   family dropped by warehouse/postgres/macros.ts's macro with a run claim (`dropMacroCall: "claim"`);
 *   `deployCheck`: the deploy job refuses schemas the prod role does not own;
 * - accessPlan: roles role_dev/role_prod (kind "group") and logins; memberships login → group;
 *   grants CONNECT, CREATE on the database, USAGE on each production schema, SELECT on all tables
 *   in it (scope "all") and ALTER DEFAULT PRIVILEGES (scope "future", `forCreator` = role_prod);
 *   ownerships: schemas owned by their group role; role masking (`ALTER ROLE bot SET ROLE group`)
 *   is a login's `sessionRole`, the Postgres way of making the group role the owner of what any
 *   production bot builds.
 *
 * SnowflakeWarehouse (warehouse/snowflake) implements it with key-pair logins, access roles and
 * database-level future grants/ownership (see its module comment).
 */
import type * as pulumi from "@pulumi/pulumi";
// The stack config owns the lists of warehouse kinds (one folder `warehouse/<kind>/` each) and bot
// duties (what a login does: its role, database/schema and dbt target); the contract uses them.
import type { BotDuty, WarehouseKind } from "../config/stack";

export type { BotDuty, WarehouseKind };

/** The dbt target a bot of `duty` uses: ci, scheduler, or the deploy target (default prod). */
export function dutyTargetName(duty: BotDuty, deployTarget = "prod"): string {
    return duty === "deploy" ? deployTarget : duty;
}

/** Environment variable that carries `field` of `target`, e.g. DBT_CI_PRIVATE_KEY. */
export function targetEnvVar(target: string, field: string): string {
    const norm = (s: string) => s.toUpperCase().replace(/[^A-Z0-9]/g, "_");
    return `DBT_${norm(target)}_${norm(field)}`;
}

/** The credential secret of one target: flat JSON whose keys are the target fields (values as text); an empty field is an error. */
export function credentialJson(connection: Readonly<Record<string, unknown>>, fields: readonly string[]): string {
    const doc: Record<string, string> = {};
    for (const f of fields) {
        const v = connection[f];
        if (v === undefined || v === null || v === "") throw new Error(`credential field ${f} is empty`);
        doc[f] = String(v);
    }
    return JSON.stringify(doc);
}

/** One environment variable a rendered target reads (directly or through a file). */
export interface TargetEnvVar {
    /** The target field it carries (a key of the credential secret), e.g. user, private_key. */
    field: string;
    /** Variable name, `targetEnvVar(target, field)`. */
    name: string;
    /** Stored as a secured variable / secret / secure file. */
    secret: boolean;
    /**
     * Set when the variable holds file contents: the job writes them to `path` with mode 600
     * and exports the path in `pathVariable`, which profiles.yml reads (e.g. `private_key_path`).
     */
    file?: { pathVariable: string; path: string };
    /** Set when the job computes the value per run instead of reading it from the CI settings. */
    perRun?: "pull-request-schema";
}

/** The dbt adapter the pipelines install next to dbt-core. */
export interface AdapterPackage {
    /** profiles.yml `type`. */
    type: string;
    /** PyPI package. */
    package: string;
    /** Exact version. */
    version: string;
}

/** How per-pull-request schemas are named, created and dropped. */
export interface PullRequestSchemas {
    /** Schema name prefix; PR n builds in `<prefix><n>`, custom schemas in `<prefix><n>_<custom>`. */
    prefix: string;
    /** Database the PR schemas live in. */
    database: string;
    /** How unquoted names fold: the cleanup compares names in this case. */
    case: "lower" | "upper";
    /** Who creates the schema: dbt, on the CI target's first build (the CI role may create schemas there). */
    createdBy: "dbt";
    /** Name of the dbt macro the reset and cleanup steps run (see `dropMacroCall`). */
    dropMacroName: string;
    /** The macro's source, rendered into the dbt repository's macros/ folder. */
    dropMacro: string;
    /**
     * How the CI job calls the drop macro (default "schema"):
     * - "schema": `{schema_name: <prefix><n>}`; the reset (start of a run) and the cleanup both drop the family;
     * - "claim": `{schema_name, run_id, claim}`; the reset (`claim: true`) drops the family, recreates the PR
     *   schema and marks it with the run, the cleanup (`claim: false`) drops only while the mark is this run's,
     *   so a cancelled older run cannot drop what a newer run of the same PR builds (Postgres).
     */
    dropMacroCall?: "schema" | "claim";
    /** A further macro the CI job needs to create its schemas (rendered beside the drop macro), if any. */
    createMacro?: { name: string; source: string };
}

/** A macro the deploy job runs before it builds: fails naming every target schema production must not write to. */
export interface DeployCheck {
    /** dbt macro name, run as `dbt run-operation <name> --target <deploy target>`. */
    macroName: string;
    /** Its source, rendered into macros/. */
    macro: string;
}

/** A role in the access plan; `database` is set for roles scoped to one database. */
export interface RoleRef {
    name: string;
    database?: string;
}

/** Why a role exists. */
export type RoleKind = "group" | "functional" | "access" | "system";

/** What a grant or ownership applies to. */
export type GrantTarget =
    /** One named object: a database, a warehouse, a schema (`database` set). */
    | { level: "object"; objectType: string; name: string; database?: string }
    /** Objects of a type inside a container: all existing ones or future ones. */
    | { level: "database" | "schema"; database: string; schema?: string; objectTypePlural: string; scope: "all" | "future" };

/** One declared grant of privileges. */
export interface PlannedGrant {
    /** Stable key; implementations name the resource after it. */
    key: string;
    privileges: string[];
    on: GrantTarget;
    to: RoleRef;
    /** Future grants that apply only to objects this role creates (Postgres ALTER DEFAULT PRIVILEGES FOR ROLE). */
    forCreator?: RoleRef;
}

/** One declared ownership (current or future objects). */
export interface PlannedOwnership {
    key: string;
    on: GrantTarget;
    to: RoleRef;
}

/** A login in the plan: a bot (with a duty) or a developer. */
export interface PlannedLogin {
    name: string;
    duty?: BotDuty;
    /** Roles granted to the login. */
    roles: RoleRef[];
    /** Role every session starts as (Snowflake DEFAULT_ROLE, Postgres role masking). */
    sessionRole?: RoleRef;
    /** How it authenticates. */
    auth: "password" | "key-pair";
}

/** The declared access plan, as data, for review and audit. */
export interface AccessPlan {
    roles: (RoleRef & { kind: RoleKind; comment: string })[];
    /** `member` receives `role` (role hierarchy). */
    memberships: { key: string; role: RoleRef; member: RoleRef }[];
    grants: PlannedGrant[];
    ownerships: PlannedOwnership[];
    logins: PlannedLogin[];
}

/** What every warehouse component gives the platform; `C` is its connection type per target. */
export interface Warehouse<C extends object = object> {
    readonly kind: WarehouseKind;
    /** The adapter the pipelines install. */
    readonly adapter: AdapterPackage;
    /** dbt target name per bot duty that exists in this stack. */
    readonly targetNames: Partial<Record<BotDuty, string>>;
    /** Connection values per dbt target (keys as in `credentialFields`); a secret as a whole. */
    readonly targets: pulumi.Output<Record<string, C>>;
    /** The credential secret per target: flat JSON of `credentialFields` (a secret). */
    readonly credentialSecrets: pulumi.Output<Record<string, string>>;
    /** Keys of every target's credential JSON, in order. */
    readonly credentialFields: readonly string[];
    /** Environment variables per target that profiles.yml reads. */
    readonly targetEnv: Record<string, TargetEnvVar[]>;
    /** Variable name → value for every target (file variables hold the file contents); a secret. */
    readonly profileEnvironment: pulumi.Output<Record<string, string>>;
    /** profiles.yml with env_var() references only. */
    readonly profilesYaml: pulumi.Output<string>;
    /** Per-PR schema naming, creation and cleanup. */
    readonly pullRequestSchemas: PullRequestSchemas;
    /** The declared access plan. */
    readonly accessPlan: AccessPlan;
    /** The check the deploy job runs before building, if the warehouse has one (Postgres: squatted schemas). */
    readonly deployCheck?: DeployCheck;
}

/**
 * What the pipelines need of a warehouse: the contract's plain fields, known before anything is
 * registered (each warehouse's static `pipelineWarehouse(name, args)` gives them from its arguments).
 */
export type PipelineWarehouse = Pick<Warehouse, "kind" | "adapter" | "targetNames" | "targetEnv" | "credentialFields" | "pullRequestSchemas" | "deployCheck">;

/** The plain pipeline view of a warehouse (component or planned). */
export function pipelineWarehouse(w: PipelineWarehouse): PipelineWarehouse {
    return {
        kind: w.kind,
        adapter: w.adapter,
        targetNames: w.targetNames,
        targetEnv: w.targetEnv,
        credentialFields: w.credentialFields,
        pullRequestSchemas: w.pullRequestSchemas,
        ...(w.deployCheck ? { deployCheck: w.deployCheck } : {}),
    };
}

/**
 * Alias of `target`'s credential secret in aws-secretsmanager-get-secrets, e.g. `DBT_PROD`: with
 * `parse-json-secrets` the action exports `<alias>_<KEY>` per JSON key, which is `targetEnvVar(target, key)`.
 */
export function envAlias(target: string): string {
    const probe = targetEnvVar(target, "x");
    return probe.slice(0, probe.length - "_X".length);
}

/** Environment variables of `target` built from its fields; helper for implementations. */
export function envVarsFor(
    target: string,
    fields: readonly string[],
    opts: { secret?: readonly string[]; files?: Record<string, { pathField: string; path: string }>; perRun?: Record<string, "pull-request-schema"> } = {},
): TargetEnvVar[] {
    return fields.map((field) => {
        const v: TargetEnvVar = { field, name: targetEnvVar(target, field), secret: opts.secret?.includes(field) ?? false };
        const file = opts.files?.[field];
        if (file) v.file = { pathVariable: targetEnvVar(target, file.pathField), path: file.path };
        const perRun = opts.perRun?.[field];
        if (perRun) v.perRun = perRun;
        return v;
    });
}

/** The env_var() reference profiles.yml uses for a variable (`| int` for numeric fields). */
export function envVarRef(name: string, opts: { int?: boolean } = {}): string {
    const ref = `env_var('${name}')`;
    return opts.int ? `{{ ${ref} | int }}` : `{{ ${ref} }}`;
}

/**
 * Shell lines a job runs before dbt for every file variable of a target: the contents go to the
 * file with mode 600 (created under umask 077, so it is never readable by others, even briefly)
 * and the path is exported in the variable profiles.yml reads. With `base64`, the variable holds
 * the contents base64-encoded (for CI systems whose secured variables cannot carry newlines,
 * such as Bitbucket's).
 */
export function writeFileLines(vars: readonly TargetEnvVar[], opts: { base64?: boolean } = {}): string[] {
    const lines: string[] = [];
    for (const v of vars) {
        if (!v.file) continue;
        const write = opts.base64 ? `printf '%s' "$${v.name}" | base64 -d` : `printf '%s\\n' "$${v.name}"`;
        lines.push(
            `export ${v.file.pathVariable}="${v.file.path}"`,
            `mkdir -p "$(dirname "$${v.file.pathVariable}")"`,
            `(umask 077 && ${write} > "$${v.file.pathVariable}")`,
            `chmod 600 "$${v.file.pathVariable}"`,
        );
    }
    return lines;
}

/** The PR schema of pull request `n`, in the warehouse's case. */
export function pullRequestSchemaName(spec: Pick<PullRequestSchemas, "prefix" | "case">, n: number): string {
    if (!Number.isInteger(n) || n < 0) throw new Error(`pull request number ${n}: expected a whole number`);
    const name = `${spec.prefix}${n}`;
    return spec.case === "upper" ? name.toUpperCase() : name.toLowerCase();
}

/** Whether `schema` belongs to pull request `n`'s family: `<prefix><n>` or `<prefix><n>_<custom>`. */
export function inPullRequestFamily(spec: Pick<PullRequestSchemas, "prefix" | "case">, n: number, schema: string): boolean {
    const base = pullRequestSchemaName(spec, n);
    const s = spec.case === "upper" ? schema.toUpperCase() : schema.toLowerCase();
    return s === base || s.startsWith(`${base}_`);
}
