/**
 * The one schema for every stack's config (`Pulumi.<stack>.yaml`, namespace `dbt-platform`).
 * `parseStackConfig` is pure: it takes the raw key/value map Pulumi hands the program and
 * returns a fully defaulted, typed config or throws a ConfigError listing every problem,
 * before any resource is registered.
 */
import { cidrProblem } from "../aws/cidr";
import { apiUrlProblem } from "../ci/rest";
import { PinOverrides, pinProblems } from "../pipelines/versions";
import { identifierProblem } from "../warehouse/postgres/identifiers";
import { REDSHIFT_ADAPTER } from "../warehouse/redshift/profiles";
import { redshiftIdentifierProblem } from "../warehouse/redshift/sql";
import { ACCOUNT_IDENTIFIER_PATTERN, snowflakeIdentifierProblem, SnowflakeObjectKind } from "../warehouse/snowflake/identifiers";
import { DBT_SNOWFLAKE_VERSION, WAREHOUSE_SIZES } from "../warehouse/snowflake/model";
import { ConfigError, ConfigProblem, Node, ObjectNode } from "./reader";
import { branchProblem, isRepository, MAX_PR_PREFIX, pullRequestPrefixProblem, repositoryShape } from "./rules";
import { DBT_CORE_VERSION, DBT_POSTGRES_VERSION, PYTHON_VERSION } from "../pipelines/versions";
import { FULL_BUILD_SCHEDULE, MANIFEST_MAX_AGE_HOURS, projectDirProblem } from "../pipelines/model";

export const NAMESPACE = "dbt-platform";

export const ENVIRONMENT_KINDS = ["development", "release"] as const;
export const WAREHOUSE_KINDS = ["postgres", "redshift", "snowflake"] as const;
export const CI_SYSTEMS = ["bitbucket", "github", "azure-devops"] as const;
export const BOT_DUTIES = ["ci", "deploy", "scheduler"] as const;
export const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;

export type EnvironmentKind = (typeof ENVIRONMENT_KINDS)[number];
export type WarehouseKind = (typeof WAREHOUSE_KINDS)[number];
export type CiSystem = (typeof CI_SYSTEMS)[number];
export type BotDuty = (typeof BOT_DUTIES)[number];
export type SslMode = (typeof SSL_MODES)[number];

/** Where this stack sits: development (dev work and PR CI) or a release stage. */
export interface EnvironmentConfig {
    /** development or release. */
    kind: EnvironmentKind;
    /** For a release stage: the stage whose artifacts it promotes (sandbox → staging → prod). */
    promotesFrom?: string;
}

/** The dbt project the platform serves. */
export interface DbtConfig {
    /** Profile name in profiles.yml (the `profile:` of dbt_project.yml). */
    profile: string;
    /** dbt threads for every rendered target. */
    threads: number;
    /** dbt-core version the pipelines install (pinned). */
    version: string;
    /** Adapter (dbt-postgres) version the pipelines install (pinned). */
    adapterVersion: string;
    /** Python version of the CI image or runner. */
    pythonVersion: string;
    /** The dbt project's folder relative to the repository root (`.`: the root); every rendered step runs there. */
    projectDir: string;
    /** Hours after which CI and the slim deploy refuse to defer to the production manifest (they build everything). */
    manifestMaxAgeHours: number;
    /** Cron (UTC) of the scheduled full build of a stage that deploys on every merge. */
    fullBuildSchedule: string;
}

/** How the program connects to Postgres as an administrator. */
export interface PostgresConnection {
    host: string;
    port: number;
    /** The database dbt builds into (created when `createDatabase` is true). */
    database: string;
    /** Administrative login used by the provider (password: secret `warehouseAdminPassword` or PGPASSWORD). */
    username: string;
    sslmode: SslMode;
    /** False on managed services (RDS, Cloud SQL) whose admin is not a superuser. */
    superuser: boolean;
    /** CA bundle dbt verifies the server with: an absolute path on the runner, or `system` (libpq 16+). */
    sslrootcert?: string;
}

/** A login role used by automation; its session role is masked to its group role. */
export interface BotUser {
    name: string;
    /** Name of the group role it belongs to. */
    role: string;
    duty: BotDuty;
}

/** A person's login role with a private schema. */
export interface Developer {
    name: string;
    schema: string;
}

/** Postgres warehouse access, after defaults. */
export interface PostgresWarehouseConfig {
    kind: "postgres";
    connection: PostgresConnection;
    createDatabase: boolean;
    /** Group roles: `dev` (developers and CI) and `prod` (deploy and scheduler bots). */
    roles: { dev: string; prod: string };
    users: BotUser[];
    /** ALTER ROLE bot SET ROLE group: objects made by any bot are owned by its group role. */
    roleMasking: boolean;
    schemas: {
        /** Schema CI builds into when no pull-request schema is used. */
        ci: string;
        /** Production schemas, owned by the prod role and readable by the dev role. */
        production: string[];
        /** Prefix of per-pull-request schemas (`<prefix><number>`), created and dropped by CI. */
        pullRequestPrefix: string;
    };
    developers: Developer[];
    /** Revoke the default CONNECT/TEMP that PUBLIC has on the database. */
    revokePublicConnect: boolean;
    /** Import the database and group roles a previous `pulumi destroy` retained. */
    adoptRetained: boolean;
}

/** A Snowflake virtual warehouse, after defaults. */
export interface SnowflakeWarehouseSizing {
    name: string;
    /** One of WAREHOUSE_SIZES (XSMALL … X6LARGE). */
    size: string;
    autoSuspendSeconds: number;
    autoResume: boolean;
    statementTimeoutSeconds: number;
}

/** A Snowflake service user for a bot duty (key-pair login only). */
export interface SnowflakeBotUser {
    name: string;
    duty: BotDuty;
    /** Generate a second key and set it as RSA_PUBLIC_KEY_2 (rotation, step 1). */
    secondKey: boolean;
    /** The key the dbt target uses (rotation, step 2 switches to 2). */
    activeKey: 1 | 2;
}

/** Snowflake warehouse access (seed 002), after defaults. */
export interface SnowflakeWarehouseConfig {
    kind: "snowflake";
    /** Account identifier `<organization>-<account>`. */
    account: string;
    /** Admin user of the providers (key pair; its private key only as secret `snowflakePrivateKey` or SNOWFLAKE_PRIVATE_KEY). */
    admin: { user: string };
    databases: { production: string; development: string };
    createDatabases: boolean;
    schemas: {
        /** Schema the production targets build into, in the production database. */
        production: string;
        /** Schema of the ci target outside a pull request, in the development database. */
        ci: string;
        /** Per-PR schema prefix (`<prefix><n>`, upper case) in the development database. */
        pullRequestPrefix: string;
    };
    warehouses: Record<"transform" | "ci" | "reporting", SnowflakeWarehouseSizing>;
    roles: { transformer: string; ci: string; reporter: string };
    users: SnowflakeBotUser[];
    rsaBits: 2048 | 4096;
    networkPolicy?: { name: string; allowedIpList: string[]; blockedIpList: string[] };
    /** Where dbt connects instead of the account's host (fakesnow, PrivateLink). */
    endpoint?: { host: string; port: number; protocol: "http" | "https" };
}

/** A Redshift bot login; deploy and scheduler are one user (the production identity). */
export interface RedshiftBotUser {
    name: string;
    duty: BotDuty;
}

/** Redshift Serverless namespace and workgroup the program creates (optional). */
export interface RedshiftServerlessConfig {
    namespaceName: string;
    workgroupName: string;
    /** RPUs: 4, or a multiple of 8 from 8 to 1024. */
    baseCapacity: number;
    maxCapacity?: number;
    subnetIds?: string[];
    securityGroupIds?: string[];
    publiclyAccessible: boolean;
}

/** How dbt authenticates on Redshift. */
export type RedshiftAuthConfig =
    | { method: "database" }
    | { method: "iam"; clusterId: string; region: string }
    | { method: "iam"; workgroup: string; region: string };

/** Redshift warehouse access (seed 003), after defaults. */
export interface RedshiftWarehouseConfig {
    kind: "redshift";
    /** Admin connection; with `serverless` the host is the workgroup's endpoint (undefined here). */
    connection: { host?: string; port: number; database: string; username: string; sslmode: "disable" | "require" | "verify-full" };
    groups: { dev: string; prod: string };
    users: RedshiftBotUser[];
    schemas: {
        /** Production schemas, owned by the production identity and readable by the dev group. */
        production: string[];
        /** Prefix of per-pull-request build schemas (`dbt_build_<n>`). */
        pullRequestPrefix: string;
    };
    /** dbt custom schemas of the project: each developer also gets `<schema>_<custom>`. */
    customSchemas: string[];
    developers: Developer[];
    /** Also create RBAC roles mirroring the groups (Redshift only). */
    rbac: boolean;
    roles: { dev: string; prod: string };
    /** Take over existing users, groups and schemas of the same names. */
    adopt: boolean;
    auth: RedshiftAuthConfig;
    serverless?: RedshiftServerlessConfig;
}

export type WarehouseConfig = PostgresWarehouseConfig | SnowflakeWarehouseConfig | RedshiftWarehouseConfig;

export interface CiConfig {
    system: CiSystem;
    /** Repository of the dbt project: `workspace/repo`, `owner/repo` or `organization/project/repo`. */
    repository: string;
    mainBranch: string;
    /** Create the CI system's settings (variables, environments, pipeline) from the stack. */
    manageSettings: boolean;
    /** Deploy approvers: GitHub user ids (digits) or Azure DevOps identity GUIDs. */
    approvers: string[];
    /** Azure Repos repository GUID (Azure DevOps with manageSettings). */
    azureRepositoryId?: string;
    /** API base URL of the CI system (self-hosted or proxied), without a trailing slash; undefined: the public API. */
    apiUrl?: string;
    /** Bitbucket: take over existing variables and environments of the same names instead of failing. */
    adoptExisting: boolean;
    /** Overrides of the pinned GitHub actions (commit SHA + tag) and Bitbucket image (digest); defaults in pipelines/versions.ts. */
    pins?: PinOverrides;
}

export const DOCS_ACCESS_MODES = ["public", "basic-auth", "ip-allowlist"] as const;
export type DocsAccessMode = (typeof DOCS_ACCESS_MODES)[number];

/** AWS side: dbt state bucket, docs site, CI roles and credential secrets. */
export interface AwsConfig {
    enabled: boolean;
    region: string;
    artifacts: {
        /** Explicit bucket name; auto-named when absent. */
        bucketName?: string;
        /** Days to keep manifest history and noncurrent versions. */
        retentionDays: number;
        /** SSE-KMS key; AES256 when absent. */
        kmsKeyArn?: string;
    };
    docs: {
        /** Custom domain (ACM certificate in us-east-1, DNS-validated in hostedZoneId). */
        domain?: string;
        hostedZoneId?: string;
        /** Who may read the docs: everyone, a basic-auth login, or an IP allow-list. */
        access: DocsAccessMode;
        allowedCidrs: string[];
        /** Lets the allow-list hold prefixes shorter than /8, 0.0.0.0/0 included (default false). */
        allowPublic: boolean;
        /** Days a pull request's docs preview (docs/pr/<n>/) lives before the bucket expires it (default 14). */
        previewRetentionDays: number;
    };
    /** Reuse an account's existing OIDC identity provider instead of creating one. */
    oidcProviderArn?: string;
    /** GitHub Actions: the environment deploy jobs run in. */
    github?: { deployEnvironment?: string };
    /** Bitbucket Pipelines OIDC: workspace and repository UUIDs (Repository settings > OpenID Connect). */
    bitbucket?: { workspaceUuid: string; repositoryUuid: string; deploymentEnvironmentUuid?: string };
    /** Azure DevOps workload identity federation. */
    azureDevops?: { organizationId: string; serviceConnection: string; deployServiceConnection?: string };
}

export interface FeatureToggles {
    /** dbt docs on S3 + CloudFront (needs aws.enabled). */
    docsSite: boolean;
    /** Scheduled production runs with alerting. */
    scheduledRuns: boolean;
    /** dbt_project_evaluator gate in CI. */
    projectEvaluator: boolean;
}

/** One EventBridge Scheduler schedule of the scheduled runs. */
export interface ScheduleConfig {
    /** Short name (lower-case letters, digits, dashes). */
    name: string;
    /** `cron(<6 fields>)` or `rate(<n> <unit>)`. */
    cron: string;
    /** IANA time zone of the cron expression (default UTC). */
    timezone?: string;
    /** Retries of a failed RunTask call (0-185). */
    maximumRetryAttempts?: number;
    /** Seconds an invocation may be retried for (60-86400). */
    maximumEventAgeSeconds?: number;
}

/** The `scheduledRuns` section: required when features.scheduledRuns is true. */
export interface ScheduledRunsConfig {
    schedules: ScheduleConfig[];
    runIntervalMinutes: number;
    heartbeatGraceMinutes: number;
    network: { subnetIds: string[]; securityGroupIds: string[]; assignPublicIp: boolean };
    cpu: number;
    memory: number;
    logRetentionDays: number;
    alerts: { protocol: "email" | "email-json" | "https" | "sqs" | "lambda"; endpoint: string }[];
    freshOnly: boolean;
    fullBuildEvery: number;
    imageRetentionCount: number;
    janitor: { ttlHours: number; schedule: string };
}

/** A stack's complete, validated configuration. */
export interface StackConfig {
    stack: string;
    environment: EnvironmentConfig;
    dbt: DbtConfig;
    warehouse: WarehouseConfig;
    ci: CiConfig;
    aws: AwsConfig;
    features: FeatureToggles;
    /** Scheduled runs (present exactly when features.scheduledRuns). */
    scheduledRuns?: ScheduledRunsConfig;
    /** Name of the secret config key holding the admin password, when set. */
    adminPasswordKey?: string;
}

/** Secret config keys holding a CI system's token, read by its providers' `configure` (GitHub's is the provider's own `github:token`). */
export const CI_TOKEN_KEYS: Partial<Record<CiSystem, string>> = { bitbucket: "bitbucketToken", "azure-devops": "azureDevopsToken" };
/** Secret config keys holding the warehouse admin credential, per warehouse kind. */
export const WAREHOUSE_SECRET_KEYS: Record<WarehouseKind, string> = { postgres: "warehouseAdminPassword", snowflake: "snowflakePrivateKey", redshift: "redshiftAdminPassword" };
const TOP_LEVEL_KEYS = [
    "environment", "dbt", "warehouse", "ci", "aws", "features", "scheduledRuns", "warehouseAdminPassword", "snowflakePrivateKey", "redshiftAdminPassword", "bitbucketToken", "azureDevopsToken",
] as const;
const STAGE_NAME = /^[a-z][a-z0-9-]{0,39}$/;
/** dbt target names the platform uses for bots; a release stage's target is its stack name. */
const RESERVED_TARGETS = ["ci", "scheduler"];
const DBT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const HOST = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$|^\[[0-9A-Fa-f:.]+\]$/;
// Region names of the known partitions and directions: a typo or an invented region fails here, not at the AWS API.
const AWS_REGION = /^(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov|-iso[a-z]?)?-(north|south|east|west|central|northeast|northwest|southeast|southwest)-\d{1,2}$/;

/** The warehouse's own schema (admin-owned platform functions): no declared schema may take the name. */
const PLATFORM_SCHEMA = "dbt_platform";
/** Roles that RDS, Cloud SQL and Azure create for themselves: a bot of that name would adopt the service's role. */
const MANAGED_ROLE = /^(rds_|rdsadmin$|rdsrepladmin$|rdstopmgr$|cloudsql|azure_|azuresu$)/;

function ident(what: "role" | "schema" | "database") {
    return (n: Node): string | undefined => {
        if (typeof n.value !== "string") return n.fail(`a ${what} name (string)`);
        const problem = identifierProblem(n.value, what) ?? reservedNameProblem(n.value, what);
        return problem ? n.fail(problem) : n.value;
    };
}

/** Names that are valid identifiers but belong to Postgres or the service hosting it. */
function reservedNameProblem(name: string, what: "role" | "schema" | "database"): string | undefined {
    // Every role could create in public before Postgres 15, and it ends every default search_path.
    if (what === "schema" && name === "public") return "a schema name other than public (shared with every role; on every search_path)";
    if (what === "role" && MANAGED_ROLE.test(name)) return "a role name not reserved by a managed Postgres service (rds_*, rdsadmin, cloudsql*, azure_*, azuresu)";
    if (what === "database" && /^template[01]$/.test(name)) return "a database other than template0 and template1 (every new database is copied from them)";
    return undefined;
}

/**
 * Parses the raw config of one stack. `raw` maps full keys (`dbt-platform:warehouse`) to
 * values; object values may be JSON strings, as Pulumi stores them.
 */
export function parseStackConfig(stack: string, raw: Record<string, unknown>, secretKeys: readonly string[] = []): StackConfig {
    const problems: ConfigProblem[] = [];
    const top: Record<string, unknown> = {};
    for (const [fullKey, value] of Object.entries(raw)) {
        const sep = fullKey.indexOf(":");
        if (fullKey.slice(0, sep) !== NAMESPACE) continue; // other namespaces belong to providers
        const key = fullKey.slice(sep + 1);
        if (!(TOP_LEVEL_KEYS as readonly string[]).includes(key)) {
            problems.push({ path: fullKey, value, expected: `no such key; known keys are ${TOP_LEVEL_KEYS.map((k) => `${NAMESPACE}:${k}`).join(", ")}` });
            continue;
        }
        // Pulumi passes structured values as JSON text, so a password that is a JSON object was
        // almost surely set as an object; any other text (even "[1,2]") is kept as typed.
        top[key] = (Object.values(WAREHOUSE_SECRET_KEYS) as string[]).includes(key) ? decodeObjectOnly(value) : decode(value);
    }
    // Secrets Manager treats a name ending in "-" plus six characters as an ARN suffix; the stack name ends secret names.
    if (!STAGE_NAME.test(stack) || RESERVED_TARGETS.includes(stack) || /-[a-z0-9]{6}$/.test(stack)) {
        problems.push({ path: "stack name", value: stack, expected: `at most 40 lower-case letters, digits and dashes, not ${RESERVED_TARGETS.join(" or ")} and not ending in a dash and six characters (the stack name names the release target and its secret)` });
    }
    const root = new ObjectNode(NAMESPACE, top, problems);
    const at = (key: string) => new Node(`${NAMESPACE}:${key}`, top[key], problems);

    const environment = readEnvironment(at("environment"), stack);
    // The adapter's default version follows the warehouse kind (read properly, with its problems, below).
    const rawKind = (top.warehouse as { kind?: unknown } | undefined)?.kind;
    const kindHint = (WAREHOUSE_KINDS as readonly unknown[]).includes(rawKind) ? (rawKind as WarehouseKind) : "postgres";
    const dbt = readDbt(at("dbt"), kindHint);
    const warehouse = readWarehouse(at("warehouse"));
    const ci = readCi(at("ci"));
    const aws = readAws(at("aws"), environment?.kind, ci?.system);
    const features = readFeatures(at("features"), aws);
    const scheduledRuns = readScheduledRuns(at("scheduledRuns"), new Node(`${NAMESPACE}:features.scheduledRuns`, true, problems), features, aws, warehouse);
    for (const [kind, key] of Object.entries(WAREHOUSE_SECRET_KEYS) as [WarehouseKind, string][]) {
        if (root.child(key).present) adminSecretCheck(problems, stack, kind, key, top[key], secretKeys, warehouse);
    }
    if (aws?.oidcProviderArn && ci) oidcIssuerCheck(new Node(`${NAMESPACE}:aws.oidcProviderArn`, aws.oidcProviderArn, problems), aws, ci);
    if (environment?.kind === "release" && warehouse) {
        // A release stage sends the admin and bot credentials over the network: unencrypted only to this machine.
        const local = (host: string) => /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(host);
        if (warehouse.kind === "snowflake") {
            const ep = warehouse.endpoint;
            if (ep && ep.protocol !== "https" && !local(ep.host)) {
                new Node(`${NAMESPACE}:warehouse.endpoint.protocol`, ep.protocol, problems).fail(`https on a release stage (${ep.host} is not this machine)`);
            }
        } else {
            // Without a host (Redshift Serverless) the endpoint is the workgroup's: never this machine.
            const { host, sslmode } = warehouse.connection;
            if (!["require", "verify-ca", "verify-full"].includes(sslmode) && !(host !== undefined && local(host))) {
                new Node(`${NAMESPACE}:warehouse.connection.sslmode`, sslmode, problems).fail(`require, verify-ca or verify-full on a release stage (${host ?? "the Serverless workgroup"} is not this machine)`);
            }
        }
    }
    if (warehouse?.kind === "redshift" && warehouse.serverless && aws && !aws.enabled) {
        new Node(`${NAMESPACE}:warehouse.serverless`, warehouse.serverless, problems).fail("no serverless section while aws.enabled is false (the namespace and workgroup are AWS resources)");
    }
    for (const [system, key] of Object.entries(CI_TOKEN_KEYS) as [CiSystem, string][]) {
        const fullKey = `${NAMESPACE}:${key}`;
        if (!root.child(key).present) continue;
        // Never the value in the message: it is (or should have been) a secret.
        if (!secretKeys.includes(fullKey)) {
            problems.push({ path: fullKey, value: "[redacted]", expected: `a secret (pulumi config set --secret ${key} <token>); a plaintext token is stored readable in Pulumi.${stack}.yaml` });
        } else if (typeof raw[fullKey] !== "string" || (raw[fullKey] as string).trim() === "") {
            problems.push({ path: fullKey, value: "[secret]", expected: "a non-empty token string" });
        } else if (ci && ci.system !== system) {
            problems.push({ path: fullKey, value: "[secret]", expected: `no ${key} unless ci.system is ${system} (ci.system is ${ci.system})` });
        }
    }

    if (problems.length > 0 || !environment || !dbt || !warehouse || !ci || !aws || !features || (features.scheduledRuns && !scheduledRuns)) {
        // A secret's value never reaches an error message, whatever key it was set under.
        const masked = problems.map((p) =>
            secretKeys.some((k) => p.path === k || p.path.startsWith(`${k}.`) || p.path.startsWith(`${k}[`)) ? { ...p, value: "[secret]" } : p,
        );
        throw new ConfigError(stack, masked);
    }
    return {
        stack,
        environment,
        dbt,
        warehouse,
        ci,
        aws,
        features,
        ...(scheduledRuns ? { scheduledRuns } : {}),
        adminPasswordKey: top.warehouseAdminPassword !== undefined ? `${NAMESPACE}:warehouseAdminPassword` : undefined,
    };
}

/** What each kind's admin secret is and where its provider reads it when the secret is unset. */
const ADMIN_SECRET: Record<WarehouseKind, { what: string; fallback: string }> = {
    postgres: { what: "password", fallback: "PGPASSWORD" },
    snowflake: { what: "private key", fallback: "SNOWFLAKE_PRIVATE_KEY" },
    redshift: { what: "password", fallback: "REDSHIFT_ADMIN_PASSWORD" },
};

/** The warehouse admin's credential: a non-empty Pulumi secret, for the stack's own warehouse kind only. Never echoed. */
function adminSecretCheck(problems: ConfigProblem[], stack: string, kind: WarehouseKind, key: string, value: unknown, secretKeys: readonly string[], warehouse: WarehouseConfig | undefined): void {
    const fullKey = `${NAMESPACE}:${key}`;
    const { fallback } = ADMIN_SECRET[kind];
    if (typeof value !== "string") {
        problems.push({ path: fullKey, value: "[secret]", expected: "a secret string (pulumi config set --secret)" });
    } else if (!secretKeys.includes(fullKey)) {
        problems.push({ path: fullKey, value: "[not shown]", expected: `a secret (pulumi config set --secret ${fullKey}); a plain value sits readable in Pulumi.${stack}.yaml and the state` });
    } else if (value.length === 0) {
        problems.push({ path: fullKey, value: "[secret]", expected: `a non-empty secret string (or leave it unset and use ${fallback})` });
    } else if (warehouse && warehouse.kind !== kind) {
        problems.push({ path: fullKey, value: "[secret]", expected: `no ${key} unless warehouse.kind is ${kind} (warehouse.kind is ${warehouse.kind}; its admin ${ADMIN_SECRET[warehouse.kind].what} is ${WAREHOUSE_SECRET_KEYS[warehouse.kind]})` });
    } else if (kind === "snowflake" && !/^-----BEGIN PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PRIVATE KEY-----\s*$/.test(value)) {
        // The provider's SNOWFLAKE_JWT login takes an unencrypted PKCS#8 PEM (tls.PrivateKey's privateKeyPemPkcs8).
        problems.push({ path: fullKey, value: "[secret]", expected: "an unencrypted PKCS#8 private key in PEM form (-----BEGIN PRIVATE KEY-----), e.g. openssl pkcs8 -topk8 -nocrypt" });
    } else if (kind === "redshift" && warehouse?.kind === "redshift" && warehouse.serverless) {
        problems.push({ path: fullKey, value: "[secret]", expected: "no redshiftAdminPassword with warehouse.serverless (the namespace's admin password is generated)" });
    }
}

/** A reused OIDC provider must be the CI system's issuer (as CiIdentity derives it) and in the region's partition. */
function oidcIssuerCheck(n: Node, aws: AwsConfig, ci: CiConfig): void {
    const m = OIDC_ARN.exec(aws.oidcProviderArn!);
    if (!m) return;
    const owner = ci.repository.split("/")[0];
    const orgId = aws.azureDevops?.organizationId.replace(/[{}]/g, "").toLowerCase();
    const issuer =
        ci.system === "github" ? "token.actions.githubusercontent.com"
        : ci.system === "bitbucket" ? `api.bitbucket.org/2.0/workspaces/${owner}/pipelines-config/identity/oidc`
        : orgId ? `vstoken.dev.azure.com/${orgId}` : undefined;
    if (issuer !== undefined && m[2] !== issuer) n.fail(`the ${ci.system} OIDC provider (an ARN ending in oidc-provider/${issuer})`);
    else if (m[1] !== partitionOf(aws.region)) n.fail(`an OIDC provider in partition ${partitionOf(aws.region)} (aws.region ${aws.region})`);
}

function decodeObjectOnly(value: unknown): unknown {
    const decoded = decode(value);
    return decoded !== null && typeof decoded === "object" && !Array.isArray(decoded) ? decoded : value;
}

/** Pulumi hands structured values over as JSON text. */
function decode(value: unknown): unknown {
    if (typeof value === "string" && /^\s*[[{]/.test(value)) {
        try {
            return JSON.parse(value);
        } catch {
            return value; // reported as a type problem by the reader
        }
    }
    return value;
}

function readEnvironment(n: Node, stack: string): EnvironmentConfig | undefined {
    const o = n.present ? n.object(["kind", "promotesFrom"]) : n.fail("an object with kind (development or release)");
    if (!o) return undefined;
    const kind = o.required("kind").oneOf(ENVIRONMENT_KINDS);
    const promotes = o.child("promotesFrom");
    let promotesFrom: string | undefined;
    if (promotes.present) {
        if (kind === "development") promotes.fail("no promotesFrom on a development stack (only release stages promote)");
        else {
            promotesFrom = promotes.string(STAGE_NAME, "a stack name: lower-case letters, digits and dashes");
            if (promotesFrom === stack) promotesFrom = promotes.fail(`another stage than this stack (${stack})`);
        }
    }
    return kind ? { kind, promotesFrom } : undefined;
}

/** The adapter version each warehouse kind installs by default (what the end-to-end tests run). */
export const DEFAULT_ADAPTER_VERSIONS: Record<WarehouseKind, string> = { postgres: DBT_POSTGRES_VERSION, snowflake: DBT_SNOWFLAKE_VERSION, redshift: REDSHIFT_ADAPTER.version };

function readDbt(n: Node, kind: WarehouseKind): DbtConfig | undefined {
    const o = n.present ? n.object(["profile", "threads", "version", "adapterVersion", "pythonVersion", "projectDir", "manifestMaxAgeHours", "fullBuildSchedule"]) : n.fail("an object with profile and threads");
    if (!o) return undefined;
    const profile = o.required("profile").string(DBT_NAME, "a dbt profile name: letters, digits and underscores");
    const threads = o.optional("threads", 4, (t) => t.integer(1, 64));
    // Exact versions only: CI must install what was tested, and the value lands in a shell line.
    const pin = (key: string, fallback: string) => o.optional(key, fallback, (v) => v.string(/^\d+\.\d+\.\d+$/, "an exact version such as 1.10.2"));
    const version = pin("version", DBT_CORE_VERSION);
    let adapterVersion = pin("adapterVersion", DEFAULT_ADAPTER_VERSIONS[kind]);
    // RedshiftWarehouse pins its adapter (REDSHIFT_ADAPTER): another version would be installed but never tested.
    if (kind === "redshift" && adapterVersion && adapterVersion !== REDSHIFT_ADAPTER.version) {
        adapterVersion = o.child("adapterVersion").fail(`${REDSHIFT_ADAPTER.version} on a redshift warehouse (the dbt-redshift version RedshiftWarehouse is built and tested for)`);
    }
    const pythonVersion = o.optional("pythonVersion", PYTHON_VERSION, (v) => v.string(/^3\.\d{1,2}$/, "a Python minor version such as 3.11"));
    const projectDir = o.optional("projectDir", ".", (v) => {
        const dir = v.string(/^[^\s]+$/, "a relative folder such as transform/dbt");
        if (dir === undefined) return undefined;
        const problem = projectDirProblem(dir);
        return problem ? v.fail(problem.replace(/^expected /, "")) : dir;
    });
    const manifestMaxAgeHours = o.optional("manifestMaxAgeHours", MANIFEST_MAX_AGE_HOURS, (v) => v.integer(1, 8760));
    // Five cron fields of digits and * , - /: the value lands in CI files (GitHub, Azure) verbatim.
    const fullBuildSchedule = o.optional("fullBuildSchedule", FULL_BUILD_SCHEDULE, (v) => v.string(/^[0-9*,\/-]+( [0-9*,\/-]+){4}$/, "a five-field cron expression (UTC) such as 0 4 * * 0"));
    return profile !== undefined && threads !== undefined && version && adapterVersion && pythonVersion && projectDir && manifestMaxAgeHours !== undefined && fullBuildSchedule
        ? { profile, threads, version, adapterVersion, pythonVersion, projectDir, manifestMaxAgeHours, fullBuildSchedule }
        : undefined;
}

const POSTGRES_KEYS = ["kind", "connection", "createDatabase", "roles", "users", "roleMasking", "schemas", "developers", "revokePublicConnect", "adoptRetained"];
const SNOWFLAKE_KEYS = ["kind", "account", "admin", "databases", "createDatabases", "schemas", "warehouses", "roles", "users", "rsaBits", "networkPolicy", "endpoint"];
const REDSHIFT_KEYS = ["kind", "connection", "groups", "users", "schemas", "customSchemas", "developers", "rbac", "roles", "adopt", "auth", "serverless"];

function readWarehouse(n: Node): WarehouseConfig | undefined {
    if (!n.present) return n.fail("an object with kind (postgres, snowflake or redshift) and that kind's settings");
    // Each kind has its own section; an unknown or missing kind is reported against the Postgres keys, as before kinds existed.
    const raw = n.value as { kind?: unknown };
    const kindValue = typeof raw === "object" && !Array.isArray(raw) ? raw.kind : undefined;
    const keys = kindValue === "snowflake" ? SNOWFLAKE_KEYS : kindValue === "redshift" ? REDSHIFT_KEYS : POSTGRES_KEYS;
    const probe = n.object(keys);
    if (!probe) return undefined;
    const kind = probe.required("kind").oneOf(WAREHOUSE_KINDS);
    if (kind === undefined) return undefined;
    return kind === "snowflake" ? readSnowflake(probe) : kind === "redshift" ? readRedshift(probe) : readPostgres(probe);
}

function readPostgres(o: ObjectNode): PostgresWarehouseConfig | undefined {
    const conn = o.required("connection").object(["host", "port", "database", "username", "sslmode", "superuser", "sslrootcert"]);
    const connection: Partial<PostgresConnection> = {};
    if (conn) {
        connection.host = conn.required("host").string(HOST, "a host name or IP address");
        connection.port = conn.optional("port", 5432, (p) => p.integer(1, 65535));
        connection.database = ident("database")(conn.required("database"));
        // Creating "postgres" would claim the maintenance database every client falls back to.
        if (connection.database === "postgres" && o.child("createDatabase").value === true) {
            connection.database = conn.child("database").fail("a database other than postgres when createDatabase is true (postgres is the maintenance database)");
        }
        connection.username = conn.optional("username", "postgres", (u) => u.string(/^[A-Za-z0-9_.@-]{1,63}$/, "a login name"));
        connection.sslmode = conn.optional("sslmode", "require", (s) => s.oneOf(SSL_MODES));
        connection.superuser = conn.optional("superuser", true, (s) => s.boolean());
        // Goes into profiles.yml as a plain value: no quotes, braces (Jinja), spaces or control characters.
        const rootcert = conn.child("sslrootcert");
        if (rootcert.present) connection.sslrootcert = rootcert.string(/^(system|\/[A-Za-z0-9._\/-]{1,255})$/, "system or an absolute path to a CA bundle (letters, digits, . _ - /)");
    }
    const createDatabase = o.optional("createDatabase", false, (b) => b.boolean());
    const roleMasking = o.optional("roleMasking", true, (b) => b.boolean());
    const revokePublicConnect = o.optional("revokePublicConnect", true, (b) => b.boolean());
    const adoptRetained = o.optional("adoptRetained", false, (b) => b.boolean());

    const rolesNode = o.child("roles");
    let roles: { dev?: string; prod?: string } = { dev: "role_dev", prod: "role_prod" };
    if (rolesNode.present) {
        const r = rolesNode.object(["dev", "prod"]);
        roles = r
            ? { dev: r.optional("dev", "role_dev", ident("role")), prod: r.optional("prod", "role_prod", ident("role")) }
            : {};
        if (roles.dev && roles.dev === roles.prod) r?.child("prod").fail("a different role from roles.dev");
    }
    const declaredRoles = [roles.dev, roles.prod].filter((x): x is string => !!x);

    const usersNode = o.required("users");
    const users = usersNode.array((u) => {
        const uo = u.object(["name", "role", "duty"]);
        if (!uo) return undefined;
        const name = ident("role")(uo.required("name"));
        const roleNode = uo.required("role");
        let role = ident("role")(roleNode);
        if (role !== undefined && declaredRoles.length === 2 && !declaredRoles.includes(role)) {
            role = roleNode.fail(`one of the declared group roles (${declaredRoles.join(", ")})`);
        }
        const duty = uo.required("duty").oneOf(BOT_DUTIES);
        return name && role && duty ? { name, role, duty } : undefined;
    }, "a list of {name, role, duty}");

    const schemasNode = o.required("schemas").object(["ci", "production", "pullRequestPrefix"]);
    let ci: string | undefined;
    let production: (string | undefined)[] | undefined;
    let pullRequestPrefix: string | undefined;
    if (schemasNode) {
        ci = schemasNode.optional("ci", "dbt_ci", ident("schema"));
        const prodNode = schemasNode.required("production");
        production = prodNode.array(ident("schema"), "a non-empty list of schema names");
        if (production && production.length === 0) prodNode.fail("a non-empty list of schema names");
        // The pipelines check the prefix with the same rule, so nothing the config accepts fails after registering.
        pullRequestPrefix = schemasNode.optional("pullRequestPrefix", "dbt_pr_", (p) => {
            const v = p.string(undefined, `a schema-name prefix of at most ${MAX_PR_PREFIX} characters`);
            const problem = v === undefined ? undefined : pullRequestPrefixProblem(v);
            return problem ? p.fail(problem) : v;
        });
    }

    const developers = o.optional("developers", [] as (Developer | undefined)[], (d) =>
        d.array((dev) => {
            const dobj = dev.object(["name", "schema"]);
            if (!dobj) return undefined;
            const name = ident("role")(dobj.required("name"));
            const schemaNode = dobj.child("schema");
            // The default dbt_<name> is checked like a declared name (it may exceed 63 bytes).
            const schema = schemaNode.present
                ? ident("schema")(schemaNode)
                : name
                  ? ident("schema")(schemaNode.derived(`dbt_${name}`))
                  : undefined;
            return name && schema ? { name, schema } : undefined;
        }, "a list of {name, schema}"),
    );

    // Cross-field rules see only items that parsed, at their own index; the second occurrence
    // of a name is reported so the first stays the reference.
    const parsed = <T>(items: (T | undefined)[] | undefined) =>
        (items ?? []).flatMap((v, index) => (v === undefined ? [] : [{ v, index }]));
    if (roles.dev && roles.prod) {
        const logins = new Map<string, string>();
        const claim = (name: string, path: string) => {
            const first = logins.get(name);
            if (first) o.child(path).fail(`a login name not already used (${name} is declared at ${first})`, name);
            else logins.set(name, `${o.path}.${path}`);
        };
        declaredRoles.forEach((r) => logins.set(r, `${o.path}.roles`));
        // The admin login is a role too: a bot or developer of that name would be the admin, masked.
        if (connection.username) logins.set(connection.username, `${o.path}.connection.username`);
        parsed(users).forEach(({ v, index }) => claim(v.name, `users[${index}].name`));
        parsed(developers).forEach(({ v, index }) => claim(v.name, `developers[${index}].name`));
        for (const duty of BOT_DUTIES) {
            const holders = parsed(users).filter(({ v }) => v.duty === duty);
            if (holders.length > 1) {
                usersNode.fail(`at most one user with duty ${duty} (found ${holders.map(({ v }) => v.name).join(", ")})`, holders.map(({ v }) => v.name));
            }
        }
        // Only when every user parsed: a rejected entry may well be the deploy bot.
        if (users && users.every((u) => u !== undefined) && !users.some((u) => u!.duty === "deploy")) {
            usersNode.fail("a user with duty deploy (the bot that builds production)");
        }
        for (const { v: u, index } of parsed(users)) {
            const want = u.duty === "ci" ? roles.dev : roles.prod;
            if (u.role !== want) {
                o.child(`users[${index}].role`).fail(`${want} for a ${u.duty} user (CI builds as the dev role; deploy and scheduler as the prod role)`, u.role);
            }
        }
    }
    {
        const owners = new Map<string, string>();
        const claim = (name: string, path: string) => {
            const first = owners.get(name);
            if (first) o.child(path).fail(`a schema not already declared (${name} is declared at ${first})`, name);
            else owners.set(name, `${o.path}.${path}`);
        };
        if (ci) claim(ci, "schemas.ci");
        parsed(production).forEach(({ v, index }) => claim(v, `schemas.production[${index}]`));
        parsed(developers).forEach(({ v, index }) => claim(v.schema, `developers[${index}].schema`));
        // A schema named like a role is that role's "$user" schema on the default search_path: whoever owns
        // it can shadow functions and tables for sessions of that role (masked bots included).
        const roleNames = new Map<string, string>();
        declaredRoles.forEach((r) => roleNames.set(r, `${o.path}.roles`));
        if (connection.username) roleNames.set(connection.username, `${o.path}.connection.username`);
        parsed(users).forEach(({ v, index }) => roleNames.set(v.name, `${o.path}.users[${index}].name`));
        parsed(developers).forEach(({ v, index }) => roleNames.set(v.name, `${o.path}.developers[${index}].name`));
        const at = (path: string) => o.child(path.slice(o.path.length + 1));
        for (const [name, path] of owners) {
            const role = roleNames.get(name);
            if (role) at(path).fail(`a schema name that is no declared role or login (${name} is declared at ${role}; it would be that role's "$user" schema)`, name);
            if (name === PLATFORM_SCHEMA) at(path).fail(`a schema name other than ${PLATFORM_SCHEMA} (the platform's own functions live there)`, name);
        }
        // dbt names custom schemas <schema>_<custom>; the dev role's members may create the CI schema's and
        // their own schema's family. Another declared schema inside such a family could be squatted.
        const families: [string, string][] = [];
        if (ci) families.push([ci, `${o.path}.schemas.ci`]);
        parsed(developers).forEach(({ v, index }) => families.push([v.schema, `${o.path}.developers[${index}].schema`]));
        for (const [name, path] of owners) {
            const family = families.find(([f]) => name.startsWith(`${f}_`));
            if (family) at(path).fail(`a name outside the custom-schema family ${family[0]}_<custom> of ${family[1]} (members of the dev role may create those)`, name);
        }
        if (pullRequestPrefix) {
            // A pull request's schemas: <prefix><n> and dbt's custom-schema variants <prefix><n>_<custom>.
            const pr = new RegExp(`^${pullRequestPrefix}\\d+(_[a-z0-9_]*)?$`);
            for (const [name, path] of owners) {
                if (pr.test(name)) {
                    o.child("schemas.pullRequestPrefix").fail(`a prefix that no declared schema matches (${name} at ${path} would be dropped by PR cleanup)`, pullRequestPrefix);
                }
            }
            for (const [name, path] of roleNames) {
                if (pr.test(name)) {
                    o.child("schemas.pullRequestPrefix").fail(`a prefix that no declared role or login matches (${name} at ${path} would have a pull-request schema as its "$user" schema)`, pullRequestPrefix);
                }
            }
        }
    }

    const c = connection;
    if (
        c.host === undefined || c.port === undefined || c.database === undefined || c.username === undefined ||
        c.sslmode === undefined || c.superuser === undefined || createDatabase === undefined || roleMasking === undefined ||
        revokePublicConnect === undefined || adoptRetained === undefined || !roles.dev || !roles.prod || !users || !developers ||
        !ci || !production || !pullRequestPrefix || [users, developers, production].some((a) => a.includes(undefined))
    ) {
        return undefined;
    }
    return {
        kind: "postgres",
        connection: c as PostgresConnection,
        createDatabase,
        roles: { dev: roles.dev, prod: roles.prod },
        users: users as BotUser[],
        roleMasking,
        schemas: { ci, production: production as string[], pullRequestPrefix },
        developers: developers as Developer[],
        revokePublicConnect,
        adoptRetained,
    };
}

function readCi(n: Node): CiConfig | undefined {
    const o = n.present
        ? n.object(["system", "repository", "mainBranch", "manageSettings", "approvers", "azureRepositoryId", "apiUrl", "adoptExisting", "pins"])
        : n.fail("an object with system and repository");
    if (!o) return undefined;
    const system = o.required("system").oneOf(CI_SYSTEMS);
    const repoNode = o.required("repository");
    const repository = system
        ? (() => {
              // Every segment a valid slug for that system: the segments go into API paths (no . or ..).
              const expected = `${/^[aeiou]/.test(system) ? "an" : "a"} ${system} repository as ${repositoryShape(system)}`;
              const v = repoNode.string(undefined, expected);
              return v !== undefined && !isRepository(system, v) ? repoNode.fail(expected) : v;
          })()
        : undefined;
    const mainBranch = o.optional("mainBranch", "main", (b) => {
        const v = b.string(undefined, "a git branch name");
        const problem = v === undefined ? undefined : branchProblem(v);
        return problem ? b.fail(problem) : v;
    });
    const manageSettings = o.optional("manageSettings", false, (b) => b.boolean());
    const approverShape = system === "azure-devops" ? { re: GUID, what: "an Azure DevOps identity GUID" } : { re: /^\d{1,12}$/, what: "a GitHub user id (digits)" };
    const approvers = o.optional("approvers", [] as (string | undefined)[], (a) => {
        const seen = new Map<string, string>();
        const list = a.array((x) => {
            if (system === "bitbucket") return x.fail("no approvers on Bitbucket (deployment permissions are set in Bitbucket)");
            const v = x.string(approverShape.re, approverShape.what);
            if (v === undefined) return undefined;
            const first = seen.get(v.toLowerCase());
            if (first) return x.fail(`each approver listed once (${v} is already at ${first})`);
            seen.set(v.toLowerCase(), x.path);
            return v;
        });
        // A GitHub environment takes at most six required reviewers; the API refuses more after other settings exist.
        if (list && system === "github" && list.length > 6) return a.fail("at most 6 approvers (a GitHub environment takes up to six reviewers)");
        return list;
    });
    let azureRepositoryId: string | undefined;
    const repoId = o.child("azureRepositoryId");
    if (repoId.present) {
        azureRepositoryId = system === "azure-devops" ? repoId.string(GUID, "an Azure Repos repository GUID") : repoId.fail("only for ci.system azure-devops");
    } else if (system === "azure-devops" && manageSettings) {
        repoId.fail("the Azure Repos repository GUID (required with manageSettings on Azure DevOps)");
    }
    const apiNode = o.child("apiUrl");
    let apiUrl: string | undefined;
    if (apiNode.present) {
        const problem = apiUrlProblem(apiNode.value);
        // Not echoed: a URL with credentials in it is one of the things rejected here.
        if (problem) apiNode.fail(`${problem}: the ${system ?? "CI system"} API base, e.g. ${API_URL_EXAMPLE[system ?? "bitbucket"]}`, "[redacted]");
        else apiUrl = (apiNode.value as string).replace(/\/+$/, "");
    }
    const pinsNode = o.child("pins");
    let pins: PinOverrides | undefined;
    if (pinsNode.present) {
        const v = pinsNode.value as Record<string, unknown>;
        const shapeOk = typeof v === "object" && !Array.isArray(v) && Object.keys(v).every((k) => k === "actions" || k === "bitbucketImage") && (v.actions === undefined || (typeof v.actions === "object" && v.actions !== null && !Array.isArray(v.actions)));
        const problems = shapeOk ? pinProblems(v as PinOverrides, "") : ["an object with actions (name → {sha, tag}) and/or bitbucketImage"];
        for (const p of problems) pinsNode.fail(p.replace(/^\./, ""));
        if (problems.length === 0) pins = v as PinOverrides;
    }
    const adoptNode = o.child("adoptExisting");
    const adoptExisting = !adoptNode.present ? false : system !== "bitbucket" ? adoptNode.fail("only for ci.system bitbucket") : adoptNode.boolean();
    return system && repository && mainBranch && manageSettings !== undefined && approvers && (!apiNode.present || apiUrl) && adoptExisting !== undefined && (!pinsNode.present || pins)
        ? { system, repository, mainBranch, manageSettings, approvers: approvers.filter((x): x is string => x !== undefined), azureRepositoryId, apiUrl, adoptExisting, ...(pins ? { pins } : {}) }
        : undefined;
}

/** What `ci.apiUrl` looks like per system. */
const API_URL_EXAMPLE: Record<CiSystem, string> = {
    bitbucket: "https://api.bitbucket.org/2.0",
    github: "https://github.example.com/api/v3",
    "azure-devops": "https://devops.example.com/DefaultCollection",
};
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const UUID = /^(\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;
// No dots: virtual-hosted S3 over HTTPS (CloudFront's origin, the CLI) cannot use them. AWS reserves the
// prefixes and suffixes below for access points, aliases and other bucket types, and rejects IP-shaped names.
const BUCKET_NAME = /^(?!xn--|sthree-|amzn-s3-demo-)(?!.*(-s3alias|--ol-s3|--x-s3|--table-s3)$)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const KMS_ARN = /^arn:(aws[a-z-]*):kms:([a-z0-9-]+):\d{12}:key\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const OIDC_ARN = /^arn:(aws[a-z-]*):iam::\d{12}:oidc-provider\/(.+)$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const HOSTED_ZONE = /^Z[A-Z0-9]{1,31}$/;
const CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/;
const SERVICE_CONNECTION = /^(?! )(?!\.+$)[A-Za-z0-9._ -]{1,128}(?<! )$/;
/** A GitHub environment name; . and .. would turn /environments/<name> into another API path. */
const GITHUB_ENVIRONMENT = /^(?!\.+$)[A-Za-z0-9._-]{1,255}$/;
/** Docs allow-list prefixes shorter than this cover a large share of the Internet: they need docs.allowPublic. */
const MIN_PRIVATE_PREFIX = 8;

/** The ARN partition of a region (aws, aws-cn, aws-us-gov, aws-iso…). */
export function partitionOf(region: string): string {
    if (region.startsWith("cn-")) return "aws-cn";
    if (region.startsWith("us-gov-")) return "aws-us-gov";
    const iso = /^[a-z]{2}-iso([a-z]?)-/.exec(region);
    return iso ? `aws-iso${iso[1] ? `-${iso[1]}` : ""}` : "aws";
}

function readAws(n: Node, kind: EnvironmentKind | undefined, ci: CiSystem | undefined): AwsConfig | undefined {
    // Cloud parts are off by default on development stacks, so `pulumi up --stack dev` needs no account.
    const enabledDefault = kind === "release";
    const o = n.objectOrEmpty(["enabled", "region", "artifacts", "docs", "oidcProviderArn", "github", "bitbucket", "azureDevops"]);
    if (!o) return undefined;
    const enabled = o.optional("enabled", enabledDefault, (b) => b.boolean());
    const region = o.optional("region", "eu-west-1", (r) => r.string(AWS_REGION, "an AWS region such as eu-west-1"));

    const art = o.optional("artifacts", undefined as ObjectNode | undefined, (a) => a.object(["bucketName", "retentionDays", "kmsKeyArn"]));
    const artifacts = {
        bucketName: art?.optional("bucketName", undefined, (b) => b.string(BUCKET_NAME, "an S3 bucket name (3-63 lower-case letters, digits and dashes; no dots, not IP-shaped, no AWS-reserved prefix or suffix)")),
        retentionDays: art ? art.optional("retentionDays", 90, (d) => d.integer(1, 3650)) : 90,
        kmsKeyArn: art?.optional("kmsKeyArn", undefined, (k) => {
            const v = k.string(KMS_ARN, "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; IAM policies cannot name a key by alias)");
            const m = v === undefined || region === undefined ? null : KMS_ARN.exec(v);
            // S3 and Secrets Manager only use keys of their own region.
            if (m && (m[2] !== region || m[1] !== partitionOf(region))) return k.fail(`a KMS key in ${region} (aws.region), partition ${partitionOf(region!)}`);
            return v;
        }),
    };

    const docsNode = o.optional("docs", undefined as ObjectNode | undefined, (d) => d.object(["domain", "hostedZoneId", "access", "allowedCidrs", "allowPublic", "previewRetentionDays"]));
    const previewRetentionDays = docsNode ? docsNode.optional("previewRetentionDays", 14, (d) => d.integer(1, 3650)) : 14;
    const domain = docsNode?.optional("domain", undefined, (d) => d.string(DOMAIN, "a lower-case DNS name such as docs.example.com"));
    const hostedZoneId = docsNode?.optional("hostedZoneId", undefined, (z) => z.string(HOSTED_ZONE, "a Route 53 hosted zone id (Z…)"));
    if (domain && !hostedZoneId && docsNode) docsNode.child("hostedZoneId").fail("the Route 53 zone of docs.domain (its certificate is DNS-validated there)");
    const access = docsNode ? docsNode.optional("access", "public" as DocsAccessMode, (a) => a.oneOf(DOCS_ACCESS_MODES)) : "public";
    const allowPublic = docsNode ? docsNode.optional("allowPublic", false, (b) => b.boolean()) : false;
    if (allowPublic && access !== "ip-allowlist" && docsNode) docsNode.child("allowPublic").fail(`only with docs.access ip-allowlist (access is ${access})`);
    const allowedCidrs = docsNode ? docsNode.optional("allowedCidrs", [] as (string | undefined)[], (c) => c.array((x) => {
        const v = x.string(CIDR, "an IPv4 CIDR such as 203.0.113.0/24");
        if (v !== undefined && cidrProblem(v) !== undefined) return x.fail("a network address without host bits (e.g. 203.0.113.0/24, not 203.0.113.5/24)");
        // 0.0.0.0/0 (or a /1../7) makes the allow-list a public site: say so explicitly.
        if (v !== undefined && Number(v.split("/")[1]) < MIN_PRIVATE_PREFIX && allowPublic !== true) {
            return x.fail(`a prefix of /${MIN_PRIVATE_PREFIX} or longer (${v} opens the docs to a large part of the Internet; set docs.allowPublic: true to mean it)`);
        }
        return v;
    })) : [];
    if (access !== "ip-allowlist" && allowedCidrs && allowedCidrs.length > 0 && docsNode) {
        docsNode.child("allowedCidrs").fail(`no CIDRs unless docs.access is ip-allowlist (access is ${access})`);
    }
    if (access === "ip-allowlist" && allowedCidrs && allowedCidrs.length === 0 && docsNode) {
        docsNode.child("allowedCidrs").fail("at least one CIDR when docs.access is ip-allowlist");
    }

    const oidcProviderArn = o.optional("oidcProviderArn", undefined, (a) => a.string(OIDC_ARN, "an IAM OIDC provider ARN"));
    const gh = o.optional("github", undefined as ObjectNode | undefined, (g) => g.object(["deployEnvironment"]));
    const github = gh ? { deployEnvironment: gh.optional("deployEnvironment", undefined, (e) => e.string(GITHUB_ENVIRONMENT, "a GitHub environment name (letters, digits, . _ -; not . or ..)")) } : undefined;
    const bb = o.optional("bitbucket", undefined as ObjectNode | undefined, (b) => b.object(["workspaceUuid", "repositoryUuid", "deploymentEnvironmentUuid"]));
    const uuid = (x: Node) => x.string(UUID, "a UUID, with or without braces");
    const bitbucket = bb
        ? {
              workspaceUuid: uuid(bb.required("workspaceUuid")),
              repositoryUuid: uuid(bb.required("repositoryUuid")),
              deploymentEnvironmentUuid: bb.optional("deploymentEnvironmentUuid", undefined, uuid),
          }
        : undefined;
    const az = o.optional("azureDevops", undefined as ObjectNode | undefined, (a) => a.object(["organizationId", "serviceConnection", "deployServiceConnection"]));
    const azureDevops = az
        ? {
              organizationId: uuid(az.required("organizationId")),
              serviceConnection: az.required("serviceConnection").string(SERVICE_CONNECTION, "a service connection name (no leading or trailing space)"),
              deployServiceConnection: az.optional("deployServiceConnection", undefined, (x) => x.string(SERVICE_CONNECTION, "a service connection name (no leading or trailing space)")),
          }
        : undefined;
    // The CI system's OIDC identity must be described when AWS roles are built for it.
    if (enabled && ci === "bitbucket" && !bb) o.child("bitbucket").fail("workspaceUuid and repositoryUuid (aws.enabled with ci.system bitbucket needs them for OIDC trust)");
    if (enabled && ci === "azure-devops" && !az) o.child("azureDevops").fail("organizationId and serviceConnection (aws.enabled with ci.system azure-devops needs them for OIDC trust)");

    if (
        enabled === undefined || region === undefined || artifacts.retentionDays === undefined || previewRetentionDays === undefined || access === undefined || allowPublic === undefined || !allowedCidrs ||
        allowedCidrs.includes(undefined) || (bitbucket && (!bitbucket.workspaceUuid || !bitbucket.repositoryUuid)) ||
        (azureDevops && (!azureDevops.organizationId || !azureDevops.serviceConnection))
    ) {
        return undefined;
    }
    const strip = <T extends object>(x: T): T => Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined)) as T;
    return strip({
        enabled,
        region,
        artifacts: strip(artifacts) as AwsConfig["artifacts"],
        docs: strip({ domain, hostedZoneId, access, allowedCidrs: allowedCidrs as string[], allowPublic, previewRetentionDays }),
        oidcProviderArn,
        github: github && strip(github),
        bitbucket: bitbucket && (strip(bitbucket) as AwsConfig["bitbucket"]),
        azureDevops: azureDevops && (strip(azureDevops) as AwsConfig["azureDevops"]),
    });
}

function readFeatures(n: Node, aws: AwsConfig | undefined): FeatureToggles | undefined {
    const defaults: FeatureToggles = { docsSite: false, scheduledRuns: false, projectEvaluator: false };
    if (!n.present) return defaults;
    const o = n.object(["docsSite", "scheduledRuns", "projectEvaluator"]);
    if (!o) return undefined;
    const docsSite = o.optional("docsSite", false, (b) => b.boolean());
    const scheduledRuns = o.optional("scheduledRuns", false, (b) => b.boolean());
    const projectEvaluator = o.optional("projectEvaluator", false, (b) => b.boolean());
    if (docsSite && aws && !aws.enabled) o.child("docsSite").fail("false while aws.enabled is false (the docs site is S3 + CloudFront)");
    return docsSite !== undefined && scheduledRuns !== undefined && projectEvaluator !== undefined
        ? { docsSite, scheduledRuns, projectEvaluator }
        : undefined;
}

const SCHEDULE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const SCHEDULE_EXPRESSION = /^(cron\((\S+ ){5}\S+\)|rate\([1-9]\d{0,5} (minute|minutes|hour|hours|day|days)\))$/;
const TIME_ZONE = /^(UTC|[A-Z][A-Za-z_]+(\/[A-Z][A-Za-z0-9_+-]+){1,2})$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8}([0-9a-f]{9})?$/;
const SECURITY_GROUP_ID = /^sg-[0-9a-f]{8}([0-9a-f]{9})?$/;
const FARGATE_CPU = [256, 512, 1024, 2048, 4096, 8192, 16384];
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
const ALERT_PROTOCOLS = ["email", "email-json", "https", "sqs", "lambda"] as const;
const ALERT_ENDPOINT: Record<(typeof ALERT_PROTOCOLS)[number], [RegExp, string]> = {
    email: [/^[^\s@]+@[^\s@]+\.[^\s@]+$/, "an e-mail address"],
    "email-json": [/^[^\s@]+@[^\s@]+\.[^\s@]+$/, "an e-mail address"],
    https: [/^https:\/\/[^\s/]+(\/\S*)?$/, "an https:// URL"],
    sqs: [/^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$/, "an SQS queue ARN"],
    lambda: [/^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?$/, "a Lambda function ARN"],
};

/**
 * The `scheduledRuns` section (ScheduledRuns and the janitor): required, and only allowed, when
 * features.scheduledRuns is true, which needs aws.enabled and a warehouse user with duty scheduler.
 */
function readScheduledRuns(n: Node, flag: Node, features: FeatureToggles | undefined, aws: AwsConfig | undefined, warehouse: WarehouseConfig | undefined): ScheduledRunsConfig | undefined {
    if (!features) return undefined;
    if (!features.scheduledRuns) {
        if (n.present) n.fail("no scheduledRuns section unless features.scheduledRuns is true");
        return undefined;
    }
    if (aws && !aws.enabled) flag.fail("false while aws.enabled is false (scheduled runs are ECS Fargate tasks)");
    if (warehouse && !warehouse.users.some((u) => u.duty === "scheduler")) {
        flag.fail("false unless warehouse.users has a user with duty scheduler (the runs build as that bot)");
    }
    if (!n.present) return n.fail("a scheduledRuns section (features.scheduledRuns is true): schedules, runIntervalMinutes, network"), undefined;
    const o = n.object(["schedules", "runIntervalMinutes", "heartbeatGraceMinutes", "network", "cpu", "memory", "logRetentionDays", "alerts", "freshOnly", "fullBuildEvery", "imageRetentionCount", "janitor"]);
    if (!o) return undefined;
    const schedules = o.required("schedules").array((sn) => {
        const so = sn.object(["name", "cron", "timezone", "maximumRetryAttempts", "maximumEventAgeSeconds"]);
        if (!so) return undefined;
        const name = so.required("name").string(SCHEDULE_NAME, "a schedule name (lower-case letters, digits and dashes, at most 32)");
        const cron = so.required("cron").string(SCHEDULE_EXPRESSION, "cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>) or rate(<n> minutes|hours|days)");
        const timezone = so.optional("timezone", undefined, (t) => t.string(TIME_ZONE, "an IANA time zone such as Europe/Berlin"));
        const maximumRetryAttempts = so.optional("maximumRetryAttempts", undefined, (x) => x.integer(0, 185));
        const maximumEventAgeSeconds = so.optional("maximumEventAgeSeconds", undefined, (x) => x.integer(60, 86400));
        return name && cron ? { name, cron, ...(timezone ? { timezone } : {}), ...(maximumRetryAttempts !== undefined ? { maximumRetryAttempts } : {}), ...(maximumEventAgeSeconds !== undefined ? { maximumEventAgeSeconds } : {}) } : undefined;
    }, "a list of {name, cron, timezone?, maximumRetryAttempts?, maximumEventAgeSeconds?}");
    if (schedules && schedules.length === 0) o.child("schedules").fail("at least one schedule");
    const names = (schedules ?? []).filter((x): x is ScheduleConfig => !!x).map((x) => x.name);
    const dup = names.find((x, i) => names.indexOf(x) !== i);
    if (dup) o.child("schedules").fail(`unique schedule names (${dup} appears twice)`, names);
    const runIntervalMinutes = o.required("runIntervalMinutes").integer(1, 44640);
    const heartbeatGraceMinutes = o.optional("heartbeatGraceMinutes", 60, (x) => x.integer(0, 1440));
    const nn = o.required("network").object(["subnetIds", "securityGroupIds", "assignPublicIp"]);
    const ids = (key: string, re: RegExp, what: string, max: number) => {
        const list = nn?.required(key).array((x) => x.string(re, what), `a list of 1 to ${max} ${what}s`);
        if (list && (list.length === 0 || list.length > max)) nn!.child(key).fail(`1 to ${max} ${what}s`);
        return list;
    };
    const subnetIds = ids("subnetIds", SUBNET_ID, "subnet id (subnet-…)", 16);
    const securityGroupIds = ids("securityGroupIds", SECURITY_GROUP_ID, "security group id (sg-…)", 5);
    const assignPublicIp = nn?.optional("assignPublicIp", false, (b) => b.boolean());
    const cpu = o.optional("cpu", 1024, (c) => (FARGATE_CPU.includes(c.value as number) ? (c.value as number) : c.fail(`a Fargate CPU value: ${FARGATE_CPU.join(", ")}`)));
    const memory = o.optional("memory", 2048, (m) => m.integer(512, 122880));
    if (cpu !== undefined && memory !== undefined && !fargateMemoryFits(cpu, memory)) o.child("memory").fail(`a memory size Fargate allows with cpu ${cpu}`, memory);
    const logRetentionDays = o.optional("logRetentionDays", 90, (d) => (LOG_RETENTION_DAYS.includes(d.value as number) ? (d.value as number) : d.fail(`a CloudWatch retention: ${LOG_RETENTION_DAYS.join(", ")}`)));
    const alerts = o.optional("alerts", [] as (ScheduledRunsConfig["alerts"][number] | undefined)[], (a) =>
        a.array((x) => {
            const ao = x.object(["protocol", "endpoint"]);
            const protocol = ao?.required("protocol").oneOf(ALERT_PROTOCOLS);
            const endpoint = protocol ? ao!.required("endpoint").string(...ALERT_ENDPOINT[protocol]) : undefined;
            return protocol && endpoint ? { protocol, endpoint } : undefined;
        }, "a list of {protocol, endpoint}"),
    );
    const freshOnly = o.optional("freshOnly", false, (b) => b.boolean());
    const fullBuildEvery = o.optional("fullBuildEvery", 24, (x) => x.integer(1, 1000));
    if (o.child("fullBuildEvery").present && freshOnly === false) o.child("fullBuildEvery").fail("no fullBuildEvery unless freshOnly is true");
    const imageRetentionCount = o.optional("imageRetentionCount", 20, (x) => x.integer(1, 1000));
    const jn = o.optional("janitor", undefined as ObjectNode | undefined, (j) => j.object(["ttlHours", "schedule"]));
    const ttlHours = jn ? jn.optional("ttlHours", 168, (x) => x.integer(1, 8760)) : 168;
    // The CI systems' schedulers take five-field cron (GitHub, Azure DevOps; Bitbucket's note quotes it).
    const schedule = jn ? jn.optional("schedule", "0 3 * * *", (x) => x.string(/^(\S+ ){4}\S+$/, "a five-field cron expression (minute hour day month weekday, UTC)")) : "0 3 * * *";
    if (
        !schedules || schedules.includes(undefined) || runIntervalMinutes === undefined || heartbeatGraceMinutes === undefined || !subnetIds || subnetIds.includes(undefined) ||
        !securityGroupIds || securityGroupIds.includes(undefined) || assignPublicIp === undefined || cpu === undefined || memory === undefined || logRetentionDays === undefined ||
        !alerts || alerts.includes(undefined) || freshOnly === undefined || fullBuildEvery === undefined || imageRetentionCount === undefined || ttlHours === undefined || schedule === undefined
    ) {
        return undefined;
    }
    return {
        schedules: schedules as ScheduleConfig[],
        runIntervalMinutes,
        heartbeatGraceMinutes,
        network: { subnetIds: subnetIds as string[], securityGroupIds: securityGroupIds as string[], assignPublicIp },
        cpu,
        memory,
        logRetentionDays,
        alerts: alerts as ScheduledRunsConfig["alerts"],
        freshOnly,
        fullBuildEvery,
        imageRetentionCount,
        janitor: { ttlHours, schedule },
    };
}

/** Fargate's CPU/memory pairs (as ScheduledRuns validates them). */
function fargateMemoryFits(cpu: number, memory: number): boolean {
    const [min, max, step] = ({ 256: [512, 2048, 512], 512: [1024, 4096, 1024], 1024: [2048, 8192, 1024], 2048: [4096, 16384, 1024], 4096: [8192, 30720, 1024], 8192: [16384, 61440, 4096], 16384: [32768, 122880, 8192] } as Record<number, number[]>)[cpu]!;
    if (cpu === 256) return [512, 1024, 2048].includes(memory);
    return memory >= min! && memory <= max! && (memory - min!) % step! === 0;
}

/** Snowflake names: upper-case identifiers Snowflake folds dbt's unquoted names to (SnowflakeWarehouse's rule). */
function sfIdent(what: SnowflakeObjectKind) {
    return (n: Node): string | undefined => {
        if (typeof n.value !== "string") return n.fail(`a Snowflake ${what} name (string)`);
        const problem = snowflakeIdentifierProblem(n.value, what);
        return problem ? n.fail(problem) : n.value;
    };
}

const SNOWFLAKE_WAREHOUSE_DEFAULTS: Record<"transform" | "ci" | "reporting", string> = { transform: "TRANSFORMING", ci: "CI", reporting: "REPORTING" };
const IPV4_OR_CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}(\/(3[0-2]|[12]?\d))?$/;
/** SnowflakeWarehouse names access roles <DATABASE>_WRITE: the database name must leave room for the suffix. */
const SNOWFLAKE_MAX_DATABASE = 249;

/** Unique values among parsed items; the second occurrence is reported at its own path. */
function uniqueNames(o: ObjectNode, entries: [string | undefined, string][], what: string): void {
    const first = new Map<string, string>();
    for (const [name, path] of entries) {
        if (name === undefined) continue;
        const at = first.get(name);
        if (at) o.child(path).fail(`a ${what} not already declared (${name} is declared at ${o.path}.${at})`, name);
        else first.set(name, path);
    }
}

/** At most one bot per duty and exactly one deploy bot (checked only when every user parsed). */
function dutyChecks(o: ObjectNode, users: ({ name: string; duty: BotDuty } | undefined)[] | undefined, sameDeployAndScheduler: boolean): void {
    if (!users || users.includes(undefined)) return;
    const usersNode = o.child("users");
    const all = users as { name: string; duty: BotDuty }[];
    for (const duty of BOT_DUTIES) {
        const holders = all.filter((u) => u.duty === duty);
        if (holders.length > 1) usersNode.fail(`at most one user with duty ${duty} (found ${holders.map((u) => u.name).join(", ")})`, holders.map((u) => u.name));
    }
    const deploy = all.find((u) => u.duty === "deploy");
    if (!deploy) usersNode.fail("a user with duty deploy (the bot that builds production)");
    if (!sameDeployAndScheduler || !deploy) return;
    all.forEach((u, i) => {
        if (u.duty === "scheduler" && u.name !== deploy.name) {
            o.child(`users[${i}].name`).fail(
                `${deploy.name}, the deploy user: Redshift has no SET ROLE (no role masking), so production stays replaceable by both duties only when they are one owning identity (components/warehouse/redshift/plan.ts)`,
                u.name,
            );
        }
        if (u.duty === "ci" && u.name === deploy.name) o.child(`users[${i}].name`).fail(`a CI user other than the production user ${deploy.name} (pull-request code must not own production)`, u.name);
    });
}

function readSnowflake(o: ObjectNode): SnowflakeWarehouseConfig | undefined {
    const account = o.required("account").string(ACCOUNT_IDENTIFIER_PATTERN, "a Snowflake account identifier <organization>-<account>, e.g. ACME-ANALYTICS");
    const adminNode = o.required("admin").object(["user"]);
    const adminUser = adminNode ? sfIdent("user")(adminNode.required("user")) : undefined;

    const dbNode = o.optional("databases", undefined as ObjectNode | undefined, (d) => d.object(["production", "development"]));
    const dbName = (key: "production" | "development", fallback: string) =>
        dbNode
            ? dbNode.optional(key, fallback, (x) => {
                  const v = sfIdent("database")(x);
                  return v !== undefined && v.length > SNOWFLAKE_MAX_DATABASE ? x.fail(`at most ${SNOWFLAKE_MAX_DATABASE} characters (its access role <name>_WRITE must fit 255)`) : v;
              })
            : fallback;
    const production = dbName("production", "ANALYTICS");
    const development = dbName("development", "ANALYTICS_DEV");
    if (production && production === development) dbNode?.child("development").fail(`a database other than databases.production (${production}): PR schemas and production must not share one`);
    const createDatabases = o.optional("createDatabases", true, (b) => b.boolean());

    const schemasNode = o.optional("schemas", undefined as ObjectNode | undefined, (x) => x.object(["production", "ci", "pullRequestPrefix"]));
    const productionSchema = schemasNode ? schemasNode.optional("production", "ANALYTICS", sfIdent("schema")) : "ANALYTICS";
    const ciSchema = schemasNode ? schemasNode.optional("ci", "DBT_CI", sfIdent("schema")) : "DBT_CI";
    const pullRequestPrefix = schemasNode
        ? schemasNode.optional("pullRequestPrefix", "CI_PR_", (p) =>
              p.string(/^[A-Z][A-Z0-9_]{0,40}$/, "an upper-case schema-name prefix: a letter, then at most 40 letters, digits or underscores (Snowflake folds dbt's names to upper case)"),
          )
        : "CI_PR_";
    if (ciSchema && pullRequestPrefix && new RegExp(`^${pullRequestPrefix}\\d+(_|$)`).test(ciSchema)) {
        schemasNode!.child("ci").fail(`a schema outside the pull-request family ${pullRequestPrefix}<n>[_<custom>] (PR cleanup drops that family in the development database)`);
    }

    const whNode = o.optional("warehouses", undefined as ObjectNode | undefined, (x) => x.object(["transform", "ci", "reporting"]));
    const warehouses = {} as Partial<Record<"transform" | "ci" | "reporting", SnowflakeWarehouseSizing>>;
    let warehousesOk = true;
    for (const duty of ["transform", "ci", "reporting"] as const) {
        const w = whNode?.optional(duty, undefined as ObjectNode | undefined, (x) => x.object(["name", "size", "autoSuspendSeconds", "autoResume", "statementTimeoutSeconds"]));
        if (whNode?.child(duty).present && !w) {
            warehousesOk = false;
            continue;
        }
        const read = <T>(key: string, fallback: T, f: (n: Node) => T | undefined) => (w ? w.optional(key, fallback, f) : fallback);
        const sizing = {
            name: read("name", SNOWFLAKE_WAREHOUSE_DEFAULTS[duty], sfIdent("warehouse")),
            size: read("size", "XSMALL", (x) => x.oneOf(WAREHOUSE_SIZES)),
            // 60 s is the shortest suspension Snowflake honours.
            autoSuspendSeconds: read("autoSuspendSeconds", 60, (x) => x.integer(60, 86_400)),
            autoResume: read("autoResume", true, (x) => x.boolean()),
            statementTimeoutSeconds: read("statementTimeoutSeconds", 3600, (x) => x.integer(1, 604_800)),
        };
        if (Object.values(sizing).some((v) => v === undefined)) warehousesOk = false;
        else warehouses[duty] = sizing as SnowflakeWarehouseSizing;
    }
    if (whNode) uniqueNames(whNode, (["transform", "ci", "reporting"] as const).map((d): [string | undefined, string] => [warehouses[d]?.name, `${d}.name`]), "warehouse name");

    const rolesNode = o.optional("roles", undefined as ObjectNode | undefined, (x) => x.object(["transformer", "ci", "reporter"]));
    const role = (key: "transformer" | "ci" | "reporter", fallback: string) => (rolesNode ? rolesNode.optional(key, fallback, sfIdent("role")) : fallback);
    const roles = { transformer: role("transformer", "TRANSFORMER"), ci: role("ci", "TRANSFORMER_CI"), reporter: role("reporter", "REPORTER") };
    if (rolesNode) uniqueNames(rolesNode, (["transformer", "ci", "reporter"] as const).map((k): [string | undefined, string] => [roles[k], k]), "role");

    const usersNode = o.required("users");
    const users = usersNode.array((u) => {
        const uo = u.object(["name", "duty", "secondKey", "activeKey"]);
        if (!uo) return undefined;
        const name = sfIdent("user")(uo.required("name"));
        const duty = uo.required("duty").oneOf(BOT_DUTIES);
        const secondKey = uo.optional("secondKey", false, (b) => b.boolean());
        const activeKey = uo.optional("activeKey", 1 as 1 | 2, (k) => (k.value === 1 || k.value === 2 ? k.value : k.fail("1 or 2 (the key the dbt target uses)")));
        if (activeKey === 2 && secondKey === false) uo.child("activeKey").fail("1 unless secondKey is true (key 2 must exist on the user before the target switches to it)");
        return name && duty && secondKey !== undefined && (activeKey === 1 || (activeKey === 2 && secondKey)) ? { name, duty, secondKey, activeKey } : undefined;
    }, "a list of {name, duty, secondKey?, activeKey?}");
    if (users) {
        uniqueNames(o, users.map((u, i): [string | undefined, string] => [u?.name, `users[${i}].name`]), "user name");
        if (adminUser) users.forEach((u, i) => u?.name === adminUser && o.child(`users[${i}].name`).fail(`a service user other than the admin ${adminUser} (admin.user)`, u.name));
    }
    dutyChecks(o, users, false);

    const rsaBits = o.optional("rsaBits", 2048 as 2048 | 4096, (b) => (b.value === 2048 || b.value === 4096 ? b.value : b.fail("2048 or 4096")));

    const npNode = o.optional("networkPolicy", undefined as ObjectNode | undefined, (x) => x.object(["name", "allowedIpList", "blockedIpList"]));
    let networkPolicy: SnowflakeWarehouseConfig["networkPolicy"] | undefined;
    let networkPolicyOk = true;
    if (o.child("networkPolicy").present) {
        networkPolicyOk = false;
        if (npNode) {
            const name = npNode.optional("name", "DBT_SERVICE_USERS", sfIdent("network policy"));
            const list = (key: string, min: number) => {
                const node = key === "allowedIpList" ? npNode.required(key) : npNode.child(key);
                if (!node.present) return [] as string[];
                const v = node.array((x) => {
                    const ip = x.string(IPV4_OR_CIDR, "an IPv4 address or CIDR such as 203.0.113.0/24");
                    return ip === "0.0.0.0/0" && key === "blockedIpList" ? x.fail("not 0.0.0.0/0 (everything not allowed is blocked already)") : ip;
                }, "a list of IPv4 addresses or CIDRs");
                if (v && v.length < min) node.fail("at least one IPv4 address or CIDR");
                return v && !v.includes(undefined) && v.length >= min ? (v as string[]) : undefined;
            };
            const allowedIpList = list("allowedIpList", 1);
            const blockedIpList = list("blockedIpList", 0);
            if (name && allowedIpList && blockedIpList) {
                networkPolicy = { name, allowedIpList, blockedIpList };
                networkPolicyOk = true;
            }
        }
    }

    const epNode = o.optional("endpoint", undefined as ObjectNode | undefined, (x) => x.object(["host", "port", "protocol"]));
    let endpoint: SnowflakeWarehouseConfig["endpoint"] | undefined;
    if (epNode) {
        const host = epNode.required("host").string(HOST, "a host name or IP address");
        const port = epNode.required("port").integer(1, 65535);
        const protocol = epNode.optional("protocol", "https" as "http" | "https", (p) => p.oneOf(["http", "https"] as const));
        if (host && port !== undefined && protocol) endpoint = { host, port, protocol };
    }

    const r = roles;
    if (
        !account || !adminUser || !production || !development || createDatabases === undefined || !productionSchema || !ciSchema || !pullRequestPrefix ||
        !warehousesOk || !r.transformer || !r.ci || !r.reporter || !users || users.includes(undefined) || rsaBits === undefined || !networkPolicyOk ||
        (o.child("endpoint").present && !endpoint)
    ) {
        return undefined;
    }
    return {
        kind: "snowflake",
        account,
        admin: { user: adminUser },
        databases: { production, development },
        createDatabases,
        schemas: { production: productionSchema, ci: ciSchema, pullRequestPrefix },
        warehouses: warehouses as SnowflakeWarehouseConfig["warehouses"],
        roles: { transformer: r.transformer, ci: r.ci, reporter: r.reporter },
        users: users as SnowflakeBotUser[],
        rsaBits,
        ...(networkPolicy ? { networkPolicy } : {}),
        ...(endpoint ? { endpoint } : {}),
    };
}

/** Redshift names: lower-case identifiers (RedshiftWarehouse's rule). */
function rsIdent(what: "user" | "group" | "role" | "schema" | "database") {
    return (n: Node): string | undefined => {
        if (typeof n.value !== "string") return n.fail(`a Redshift ${what} name (string)`);
        const problem = redshiftIdentifierProblem(n.value, what);
        return problem ? n.fail(problem) : n.value;
    };
}

const REDSHIFT_SSL_MODES = ["disable", "require", "verify-full"] as const;
const REDSHIFT_NAME = /^[a-z0-9-]{3,64}$/;
const REDSHIFT_CLUSTER_ID = /^[a-z][a-z0-9-]{0,62}$/;
/** Longest PR number a build schema name must leave room for (Azure DevOps ids reach 10 digits), as RedshiftWarehouse checks. */
const REDSHIFT_PR_DIGITS = 10;
const REDSHIFT_REGION = new RegExp(`(?=.*-\\d$)${AWS_REGION.source}`);
const REDSHIFT_MAX_IDENTIFIER = 127;

function readRedshift(o: ObjectNode): RedshiftWarehouseConfig | undefined {
    // Serverless first: with it, the workgroup is the host and the namespace's admin is generated.
    const slNode = o.optional("serverless", undefined as ObjectNode | undefined, (x) =>
        x.object(["namespaceName", "workgroupName", "baseCapacity", "maxCapacity", "subnetIds", "securityGroupIds", "publiclyAccessible"]),
    );
    const serverlessPresent = o.child("serverless").present;
    let serverless: RedshiftServerlessConfig | undefined;
    if (slNode) {
        const name = (key: string) => slNode.required(key).string(REDSHIFT_NAME, "3-64 lower-case letters, digits or hyphens");
        const namespaceName = name("namespaceName");
        const workgroupName = name("workgroupName");
        const baseCapacity = slNode.optional("baseCapacity", 8, (x) =>
            x.value === 4 || (Number.isInteger(x.value) && (x.value as number) % 8 === 0 && (x.value as number) >= 8 && (x.value as number) <= 1024) ? (x.value as number) : x.fail("4, or a multiple of 8 from 8 to 1024 RPUs"),
        );
        const maxCapacity = slNode.optional("maxCapacity", undefined, (x) => x.integer(baseCapacity ?? 4, 5632));
        const ids = (key: string, re: RegExp, what: string) =>
            slNode.optional(key, undefined as string[] | undefined, (x) => {
                const v = x.array((i) => i.string(re, what), `a list of ${what}s`);
                return v && !v.includes(undefined) ? (v as string[]) : undefined;
            });
        const subnetIds = ids("subnetIds", SUBNET_ID, "subnet id (subnet-…)");
        const securityGroupIds = ids("securityGroupIds", SECURITY_GROUP_ID, "security group id (sg-…)");
        const publiclyAccessible = slNode.optional("publiclyAccessible", false, (b) => b.boolean());
        const okIds = (key: string, v: unknown) => !slNode.child(key).present || v !== undefined;
        if (namespaceName && workgroupName && baseCapacity !== undefined && publiclyAccessible !== undefined && okIds("maxCapacity", maxCapacity) && okIds("subnetIds", subnetIds) && okIds("securityGroupIds", securityGroupIds)) {
            serverless = {
                namespaceName,
                workgroupName,
                baseCapacity,
                publiclyAccessible,
                ...(maxCapacity !== undefined ? { maxCapacity } : {}),
                ...(subnetIds ? { subnetIds } : {}),
                ...(securityGroupIds ? { securityGroupIds } : {}),
            };
        }
    }

    const conn = serverlessPresent ? o.child("connection").objectOrEmpty(["port", "database", "username", "sslmode"]) : o.required("connection").object(["host", "port", "database", "username", "sslmode"]);
    let host: string | undefined;
    let port: number | undefined;
    let database: string | undefined;
    let username: string | undefined;
    let sslmode: RedshiftWarehouseConfig["connection"]["sslmode"] | undefined;
    if (conn) {
        if (!serverlessPresent) host = conn.required("host").string(HOST, "a cluster endpoint host name");
        port = conn.optional("port", 5439, (p) => p.integer(1150, 65535));
        database = serverlessPresent ? conn.optional("database", "dev", rsIdent("database")) : rsIdent("database")(conn.required("database"));
        username = serverlessPresent ? conn.optional("username", "dbt_admin", rsIdent("user")) : rsIdent("user")(conn.required("username"));
        sslmode = conn.optional("sslmode", "require" as const, (s) => s.oneOf(REDSHIFT_SSL_MODES));
    }

    const groupsNode = o.optional("groups", undefined as ObjectNode | undefined, (x) => x.object(["dev", "prod"]));
    const groups = {
        dev: groupsNode ? groupsNode.optional("dev", "grp_dev", rsIdent("group")) : "grp_dev",
        prod: groupsNode ? groupsNode.optional("prod", "grp_prod", rsIdent("group")) : "grp_prod",
    };
    if (groups.dev && groups.dev === groups.prod) groupsNode?.child("prod").fail("a different group from groups.dev");

    const usersNode = o.required("users");
    const users = usersNode.array((u) => {
        const uo = u.object(["name", "duty"]);
        if (!uo) return undefined;
        const name = rsIdent("user")(uo.required("name"));
        const duty = uo.required("duty").oneOf(BOT_DUTIES);
        return name && duty ? { name, duty } : undefined;
    }, "a list of {name, duty}");
    dutyChecks(o, users, true);

    const schemasNode = o.required("schemas").object(["production", "pullRequestPrefix"]);
    let production: (string | undefined)[] | undefined;
    let pullRequestPrefix: string | undefined;
    if (schemasNode) {
        const prodNode = schemasNode.required("production");
        production = prodNode.array(rsIdent("schema"), "a non-empty list of schema names");
        if (production && production.length === 0) prodNode.fail("a non-empty list of schema names");
        pullRequestPrefix = schemasNode.optional("pullRequestPrefix", "dbt_build_", (p) => p.string(/^[a-z_][a-z0-9_]*$/, "a lower-case schema-name prefix such as dbt_build_"));
    }
    const customSchemas = o.optional("customSchemas", [] as (string | undefined)[], (c) => c.array(rsIdent("schema"), "a list of dbt custom schema names"));
    const developers = o.optional("developers", [] as (Developer | undefined)[], (d) =>
        d.array((dev) => {
            const dobj = dev.object(["name", "schema"]);
            if (!dobj) return undefined;
            const name = rsIdent("user")(dobj.required("name"));
            // Seed 003: the developer's schema is their name (anton → anton, anton_staging).
            const schema = dobj.child("schema").present ? rsIdent("schema")(dobj.child("schema")) : name;
            return name && schema ? { name, schema } : undefined;
        }, "a list of {name, schema?}"),
    );

    const rbac = o.optional("rbac", false, (b) => b.boolean());
    const rolesNode = o.child("roles");
    let roles: { dev?: string; prod?: string } = { dev: "role_dev", prod: "role_prod" };
    if (rolesNode.present) {
        if (rbac !== true) rolesNode.fail("no roles unless rbac is true (the RBAC roles mirror the groups)");
        const r = rolesNode.object(["dev", "prod"]);
        roles = r ? { dev: r.optional("dev", "role_dev", rsIdent("role")), prod: r.optional("prod", "role_prod", rsIdent("role")) } : {};
        if (roles.dev && roles.dev === roles.prod) r?.child("prod").fail("a different role from roles.dev");
    }
    const adopt = o.optional("adopt", false, (b) => b.boolean());

    const authNode = o.optional("auth", undefined as ObjectNode | undefined, (x) => x.object(["method", "clusterId", "workgroup", "region"]));
    let auth: RedshiftAuthConfig | undefined = o.child("auth").present ? undefined : { method: "database" };
    if (authNode) {
        const method = authNode.optional("method", "database" as const, (m) => m.oneOf(["database", "iam"] as const));
        if (method === "database") {
            for (const key of ["clusterId", "workgroup", "region"]) if (authNode.child(key).present) authNode.child(key).fail("only with auth.method iam");
            auth = { method: "database" };
        } else if (method === "iam") {
            // AWS_REGION narrowed to one-digit region numbers, as RedshiftWarehouse accepts them.
            const region = authNode.required("region").string(REDSHIFT_REGION, "an AWS region such as eu-west-1");
            const cluster = authNode.child("clusterId");
            // With serverless, IAM logins go through its workgroup (the default).
            const workgroupNode = authNode.child("workgroup");
            const wgDefault = serverless?.workgroupName;
            if (cluster.present && (workgroupNode.present || serverlessPresent)) {
                cluster.fail(serverlessPresent ? "no clusterId with warehouse.serverless (IAM logins use its workgroup)" : "either clusterId (a provisioned cluster) or workgroup (Serverless), not both");
            } else if (cluster.present) {
                const clusterId = cluster.string(REDSHIFT_CLUSTER_ID, "a cluster identifier (lower-case letters, digits, hyphens, starting with a letter)");
                if (clusterId && region) auth = { method: "iam", clusterId, region };
            } else if (workgroupNode.present || wgDefault) {
                const workgroup = workgroupNode.present ? workgroupNode.string(REDSHIFT_NAME, "a workgroup name (3-64 lower-case letters, digits, hyphens)") : wgDefault;
                if (workgroup && wgDefault && workgroup !== wgDefault) workgroupNode.fail(`${wgDefault}, the workgroup of warehouse.serverless`);
                else if (workgroup && region) auth = { method: "iam", workgroup, region };
            } else if (!serverlessPresent) {
                authNode.child("clusterId").fail("a cluster identifier or auth.workgroup (IAM logins need one of them)");
            }
        }
    }

    // Cross-field rules, as RedshiftWarehouse applies them, reported at the key that is wrong.
    const parsed = <T>(items: (T | undefined)[] | undefined) => (items ?? []).flatMap((v, index) => (v === undefined ? [] : [{ v, index }]));
    {
        const principals = new Map<string, string>();
        const claim = (name: string, path: string) => {
            const first = principals.get(name);
            if (first) o.child(path).fail(`a user or group name not already used (${name} is declared at ${first})`, name);
            else principals.set(name, `${o.path}.${path}`);
        };
        if (groups.dev) principals.set(groups.dev, `${o.path}.groups.dev`);
        if (groups.prod && groups.prod !== groups.dev) principals.set(groups.prod, `${o.path}.groups.prod`);
        // The admin is a user too: a bot or developer of that name would be the admin.
        if (username) principals.set(username, `${o.path}.connection.username`);
        const seenBots = new Set<string>();
        parsed(users).forEach(({ v, index }) => {
            // deploy and scheduler share one user by design: the second listing is the same identity.
            if (seenBots.has(v.name)) return;
            seenBots.add(v.name);
            claim(v.name, `users[${index}].name`);
        });
        parsed(developers).forEach(({ v, index }) => claim(v.name, `developers[${index}].name`));
    }
    const customs = parsed(customSchemas).map(({ v }) => v);
    {
        const schemas = new Map<string, string>();
        const claim = (name: string, path: string) => {
            const first = schemas.get(name);
            if (first) o.child(path).fail(`a schema not already declared (${name} is declared at ${first}; production schemas and developer families must not overlap)`, name);
            else schemas.set(name, `${o.path}.${path}`);
        };
        parsed(production).forEach(({ v, index }) => claim(v, `schemas.production[${index}]`));
        parsed(developers).forEach(({ v, index }) => {
            claim(v.schema, `developers[${index}].schema`);
            for (const c of customs) {
                const s = `${v.schema}_${c}`;
                if (Buffer.byteLength(s) > REDSHIFT_MAX_IDENTIFIER) o.child(`developers[${index}].schema`).fail(`a schema short enough for its custom schema ${s} (at most ${REDSHIFT_MAX_IDENTIFIER} bytes)`, v.schema);
                else claim(s, `developers[${index}].schema`);
            }
        });
        if (pullRequestPrefix) {
            const longestCustom = Math.max(0, ...customs.map((c) => c.length + 1));
            if (pullRequestPrefix.length + REDSHIFT_PR_DIGITS + longestCustom > REDSHIFT_MAX_IDENTIFIER) {
                o.child("schemas.pullRequestPrefix").fail(`a prefix short enough for ${REDSHIFT_PR_DIGITS}-digit PR numbers and the longest custom schema (at most ${REDSHIFT_MAX_IDENTIFIER} bytes)`, pullRequestPrefix);
            }
            for (const [name, path] of schemas) {
                if (name.startsWith(pullRequestPrefix)) o.child("schemas.pullRequestPrefix").fail(`a prefix no declared schema starts with (${name} at ${path} would be dropped by PR cleanup)`, pullRequestPrefix);
            }
        }
    }

    if (
        !conn || (!serverlessPresent && !host) || port === undefined || !database || !username || !sslmode || !groups.dev || !groups.prod || !users || users.includes(undefined) ||
        !production || production.includes(undefined) || !pullRequestPrefix || !customSchemas || customSchemas.includes(undefined) || !developers || developers.includes(undefined) ||
        rbac === undefined || !roles.dev || !roles.prod || adopt === undefined || !auth || (serverlessPresent && !serverless)
    ) {
        return undefined;
    }
    return {
        kind: "redshift",
        connection: { ...(host ? { host } : {}), port, database, username, sslmode },
        groups: { dev: groups.dev, prod: groups.prod },
        users: users as RedshiftBotUser[],
        schemas: { production: production as string[], pullRequestPrefix },
        customSchemas: customSchemas as string[],
        developers: developers as Developer[],
        rbac,
        roles: { dev: roles.dev, prod: roles.prod },
        adopt,
        auth,
        ...(serverless ? { serverless } : {}),
    };
}
