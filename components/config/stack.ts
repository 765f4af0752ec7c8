/**
 * The one schema for every stack's config (`Pulumi.<stack>.yaml`, namespace `dbt-platform`).
 * `parseStackConfig` is pure: it takes the raw key/value map Pulumi hands the program and
 * returns a fully defaulted, typed config or throws a ConfigError listing every problem,
 * before any resource is registered.
 */
import { cidrProblem } from "../aws/cidr";
import { identifierProblem } from "../warehouse/postgres/identifiers";
import { ConfigError, ConfigProblem, Node, ObjectNode } from "./reader";
import { DBT_CORE_VERSION, DBT_POSTGRES_VERSION, PYTHON_VERSION } from "../pipelines/versions";
import { projectDirProblem } from "../pipelines/model";

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
}

export type WarehouseConfig = PostgresWarehouseConfig;

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

/** A stack's complete, validated configuration. */
export interface StackConfig {
    stack: string;
    environment: EnvironmentConfig;
    dbt: DbtConfig;
    warehouse: WarehouseConfig;
    ci: CiConfig;
    aws: AwsConfig;
    features: FeatureToggles;
    /** Name of the secret config key holding the admin password, when set. */
    adminPasswordKey?: string;
}

const TOP_LEVEL_KEYS = ["environment", "dbt", "warehouse", "ci", "aws", "features", "warehouseAdminPassword"] as const;
const STAGE_NAME = /^[a-z][a-z0-9-]{0,39}$/;
/** dbt target names the platform uses for bots; a release stage's target is its stack name. */
const RESERVED_TARGETS = ["ci", "scheduler"];
const DBT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const HOST = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$|^\[[0-9A-Fa-f:.]+\]$/;
const AWS_REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;
const BRANCH = /^(?!\/|.*\/\/|.*\.\.|.*\/$)[A-Za-z0-9._/-]{1,200}$/;
const REPO_SEGMENT = "[A-Za-z0-9._-]{1,100}";
// Owners as each system allows them (and as the OIDC issuers and subjects spell them).
const REPOSITORY: Record<CiSystem, { pattern: RegExp; shape: string }> = {
    bitbucket: { pattern: new RegExp(`^[a-z0-9][a-z0-9_-]{0,61}/${REPO_SEGMENT}$`), shape: "workspace/repository (workspace ID in lower case)" },
    github: { pattern: new RegExp(`^[A-Za-z0-9][A-Za-z0-9-]{0,38}/${REPO_SEGMENT}$`), shape: "owner/repository" },
    "azure-devops": {
        pattern: new RegExp(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?/[A-Za-z0-9._ -]{1,64}/${REPO_SEGMENT}$`),
        shape: "organization/project/repository",
    },
};
/** Room left for the pull-request number in a 63-byte schema name. */
const MAX_PR_PREFIX = 50;

function ident(what: "role" | "schema" | "database") {
    return (n: Node): string | undefined => {
        if (typeof n.value !== "string") return n.fail(`a ${what} name (string)`);
        const problem = identifierProblem(n.value, what);
        return problem ? n.fail(problem) : n.value;
    };
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
        top[key] = key === "warehouseAdminPassword" ? decodeObjectOnly(value) : decode(value);
    }
    // Secrets Manager treats a name ending in "-" plus six characters as an ARN suffix; the stack name ends secret names.
    if (!STAGE_NAME.test(stack) || RESERVED_TARGETS.includes(stack) || /-[a-z0-9]{6}$/.test(stack)) {
        problems.push({ path: "stack name", value: stack, expected: `at most 40 lower-case letters, digits and dashes, not ${RESERVED_TARGETS.join(" or ")} and not ending in a dash and six characters (the stack name names the release target and its secret)` });
    }
    const root = new ObjectNode(NAMESPACE, top, problems);
    const at = (key: string) => new Node(`${NAMESPACE}:${key}`, top[key], problems);

    const environment = readEnvironment(at("environment"), stack);
    const dbt = readDbt(at("dbt"));
    const warehouse = readWarehouse(at("warehouse"));
    const ci = readCi(at("ci"));
    const aws = readAws(at("aws"), environment?.kind, ci?.system);
    const features = readFeatures(at("features"), aws);
    if (root.child("warehouseAdminPassword").present && typeof top.warehouseAdminPassword !== "string") {
        problems.push({ path: `${NAMESPACE}:warehouseAdminPassword`, value: "[secret]", expected: "a secret string (pulumi config set --secret)" });
    }

    if (problems.length > 0 || !environment || !dbt || !warehouse || !ci || !aws || !features) {
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
        adminPasswordKey: top.warehouseAdminPassword !== undefined ? `${NAMESPACE}:warehouseAdminPassword` : undefined,
    };
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

function readDbt(n: Node): DbtConfig | undefined {
    const o = n.present ? n.object(["profile", "threads", "version", "adapterVersion", "pythonVersion", "projectDir"]) : n.fail("an object with profile and threads");
    if (!o) return undefined;
    const profile = o.required("profile").string(DBT_NAME, "a dbt profile name: letters, digits and underscores");
    const threads = o.optional("threads", 4, (t) => t.integer(1, 64));
    // Exact versions only: CI must install what was tested, and the value lands in a shell line.
    const pin = (key: string, fallback: string) => o.optional(key, fallback, (v) => v.string(/^\d+\.\d+\.\d+$/, "an exact version such as 1.10.2"));
    const version = pin("version", DBT_CORE_VERSION);
    const adapterVersion = pin("adapterVersion", DBT_POSTGRES_VERSION);
    const pythonVersion = o.optional("pythonVersion", PYTHON_VERSION, (v) => v.string(/^3\.\d{1,2}$/, "a Python minor version such as 3.11"));
    const projectDir = o.optional("projectDir", ".", (v) => {
        const dir = v.string(/^[^\s]+$/, "a relative folder such as transform/dbt");
        if (dir === undefined) return undefined;
        const problem = projectDirProblem(dir);
        return problem ? v.fail(problem.replace(/^expected /, "")) : dir;
    });
    return profile !== undefined && threads !== undefined && version && adapterVersion && pythonVersion && projectDir
        ? { profile, threads, version, adapterVersion, pythonVersion, projectDir }
        : undefined;
}

function readWarehouse(n: Node): WarehouseConfig | undefined {
    if (!n.present) return n.fail("an object with kind: postgres and its connection");
    const probe = n.object([
        "kind", "connection", "createDatabase", "roles", "users", "roleMasking", "schemas", "developers", "revokePublicConnect",
    ]);
    if (!probe) return undefined;
    const kindNode = probe.required("kind");
    const kind = kindNode.oneOf(WAREHOUSE_KINDS);
    if (kind === undefined) return undefined;
    if (kind !== "postgres") {
        return kindNode.fail(`postgres (${kind} support is planned, not yet available in this version)`);
    }
    return readPostgres(probe);
}

function readPostgres(o: ObjectNode): PostgresWarehouseConfig | undefined {
    const conn = o.required("connection").object(["host", "port", "database", "username", "sslmode", "superuser"]);
    const connection: Partial<PostgresConnection> = {};
    if (conn) {
        connection.host = conn.required("host").string(HOST, "a host name or IP address");
        connection.port = conn.optional("port", 5432, (p) => p.integer(1, 65535));
        connection.database = ident("database")(conn.required("database"));
        connection.username = conn.optional("username", "postgres", (u) => u.string(/^[A-Za-z0-9_.@-]{1,63}$/, "a login name"));
        connection.sslmode = conn.optional("sslmode", "require", (s) => s.oneOf(SSL_MODES));
        connection.superuser = conn.optional("superuser", true, (s) => s.boolean());
    }
    const createDatabase = o.optional("createDatabase", false, (b) => b.boolean());
    const roleMasking = o.optional("roleMasking", true, (b) => b.boolean());
    const revokePublicConnect = o.optional("revokePublicConnect", true, (b) => b.boolean());

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
        pullRequestPrefix = schemasNode.optional("pullRequestPrefix", "dbt_pr_", (p) => {
            const v = p.string(/^[a-z_][a-z0-9_]*$/, "a schema-name prefix: lower-case letters, digits, underscores");
            if (v !== undefined && (v.length > MAX_PR_PREFIX || v.startsWith("pg_"))) {
                return p.fail(`at most ${MAX_PR_PREFIX} characters, not starting with pg_`);
            }
            return v;
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
        if (pullRequestPrefix) {
            for (const [name, path] of owners) {
                if (new RegExp(`^${pullRequestPrefix}\\d+$`).test(name)) {
                    o.child("schemas.pullRequestPrefix").fail(`a prefix that no declared schema matches (${name} at ${path} would be dropped by PR cleanup)`, pullRequestPrefix);
                }
            }
        }
    }

    const c = connection;
    if (
        c.host === undefined || c.port === undefined || c.database === undefined || c.username === undefined ||
        c.sslmode === undefined || c.superuser === undefined || createDatabase === undefined || roleMasking === undefined ||
        revokePublicConnect === undefined || !roles.dev || !roles.prod || !users || !developers ||
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
    };
}

function readCi(n: Node): CiConfig | undefined {
    const o = n.present
        ? n.object(["system", "repository", "mainBranch", "manageSettings", "approvers", "azureRepositoryId"])
        : n.fail("an object with system and repository");
    if (!o) return undefined;
    const system = o.required("system").oneOf(CI_SYSTEMS);
    const repoNode = o.required("repository");
    const repository = system
        ? repoNode.string(REPOSITORY[system].pattern, `${/^[aeiou]/.test(system) ? "an" : "a"} ${system} repository as ${REPOSITORY[system].shape}`)
        : undefined;
    const mainBranch = o.optional("mainBranch", "main", (b) => b.string(BRANCH, "a git branch name"));
    const manageSettings = o.optional("manageSettings", false, (b) => b.boolean());
    const approverShape = system === "azure-devops" ? { re: GUID, what: "an Azure DevOps identity GUID" } : { re: /^\d{1,12}$/, what: "a GitHub user id (digits)" };
    const approvers = o.optional("approvers", [] as (string | undefined)[], (a) =>
        a.array((x) => (system === "bitbucket" ? x.fail("no approvers on Bitbucket (deployment permissions are set in Bitbucket)") : x.string(approverShape.re, approverShape.what))),
    );
    let azureRepositoryId: string | undefined;
    const repoId = o.child("azureRepositoryId");
    if (repoId.present) {
        azureRepositoryId = system === "azure-devops" ? repoId.string(GUID, "an Azure Repos repository GUID") : repoId.fail("only for ci.system azure-devops");
    } else if (system === "azure-devops" && manageSettings) {
        repoId.fail("the Azure Repos repository GUID (required with manageSettings on Azure DevOps)");
    }
    return system && repository && mainBranch && manageSettings !== undefined && approvers
        ? { system, repository, mainBranch, manageSettings, approvers: approvers.filter((x): x is string => x !== undefined), azureRepositoryId }
        : undefined;
}

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const UUID = /^(\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;
const BUCKET_NAME = /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const KMS_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;
const OIDC_ARN = /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/.+$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const HOSTED_ZONE = /^Z[A-Z0-9]{1,31}$/;
const CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/;
const SERVICE_CONNECTION = /^[A-Za-z0-9._ -]{1,128}$/;

function readAws(n: Node, kind: EnvironmentKind | undefined, ci: CiSystem | undefined): AwsConfig | undefined {
    // Cloud parts are off by default on development stacks, so `pulumi up --stack dev` needs no account.
    const enabledDefault = kind === "release";
    const o = n.objectOrEmpty(["enabled", "region", "artifacts", "docs", "oidcProviderArn", "github", "bitbucket", "azureDevops"]);
    if (!o) return undefined;
    const enabled = o.optional("enabled", enabledDefault, (b) => b.boolean());
    const region = o.optional("region", "eu-west-1", (r) => r.string(AWS_REGION, "an AWS region such as eu-west-1"));

    const art = o.optional("artifacts", undefined as ObjectNode | undefined, (a) => a.object(["bucketName", "retentionDays", "kmsKeyArn"]));
    const artifacts = {
        bucketName: art?.optional("bucketName", undefined, (b) => b.string(BUCKET_NAME, "an S3 bucket name (3-63 lower-case letters, digits, dots, dashes)")),
        retentionDays: art ? art.optional("retentionDays", 90, (d) => d.integer(1, 3650)) : 90,
        kmsKeyArn: art?.optional("kmsKeyArn", undefined, (k) => k.string(KMS_ARN, "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>; IAM policies cannot name a key by alias)")),
    };

    const docsNode = o.optional("docs", undefined as ObjectNode | undefined, (d) => d.object(["domain", "hostedZoneId", "access", "allowedCidrs"]));
    const domain = docsNode?.optional("domain", undefined, (d) => d.string(DOMAIN, "a lower-case DNS name such as docs.example.com"));
    const hostedZoneId = docsNode?.optional("hostedZoneId", undefined, (z) => z.string(HOSTED_ZONE, "a Route 53 hosted zone id (Z…)"));
    if (domain && !hostedZoneId && docsNode) docsNode.child("hostedZoneId").fail("the Route 53 zone of docs.domain (its certificate is DNS-validated there)");
    const access = docsNode ? docsNode.optional("access", "public" as DocsAccessMode, (a) => a.oneOf(DOCS_ACCESS_MODES)) : "public";
    const allowedCidrs = docsNode ? docsNode.optional("allowedCidrs", [] as (string | undefined)[], (c) => c.array((x) => {
        const v = x.string(CIDR, "an IPv4 CIDR such as 203.0.113.0/24");
        return v !== undefined && cidrProblem(v) !== undefined ? x.fail("a network address without host bits (e.g. 203.0.113.0/24, not 203.0.113.5/24)") : v;
    })) : [];
    if (access !== "ip-allowlist" && allowedCidrs && allowedCidrs.length > 0 && docsNode) {
        docsNode.child("allowedCidrs").fail(`no CIDRs unless docs.access is ip-allowlist (access is ${access})`);
    }
    if (access === "ip-allowlist" && allowedCidrs && allowedCidrs.length === 0 && docsNode) {
        docsNode.child("allowedCidrs").fail("at least one CIDR when docs.access is ip-allowlist");
    }

    const oidcProviderArn = o.optional("oidcProviderArn", undefined, (a) => a.string(OIDC_ARN, "an IAM OIDC provider ARN"));
    const gh = o.optional("github", undefined as ObjectNode | undefined, (g) => g.object(["deployEnvironment"]));
    const github = gh ? { deployEnvironment: gh.optional("deployEnvironment", undefined, (e) => e.string(/^[A-Za-z0-9._-]{1,255}$/, "a GitHub environment name")) } : undefined;
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
              serviceConnection: az.required("serviceConnection").string(SERVICE_CONNECTION, "a service connection name"),
              deployServiceConnection: az.optional("deployServiceConnection", undefined, (x) => x.string(SERVICE_CONNECTION, "a service connection name")),
          }
        : undefined;
    // The CI system's OIDC identity must be described when AWS roles are built for it.
    if (enabled && ci === "bitbucket" && !bb) o.child("bitbucket").fail("workspaceUuid and repositoryUuid (aws.enabled with ci.system bitbucket needs them for OIDC trust)");
    if (enabled && ci === "azure-devops" && !az) o.child("azureDevops").fail("organizationId and serviceConnection (aws.enabled with ci.system azure-devops needs them for OIDC trust)");

    if (
        enabled === undefined || region === undefined || artifacts.retentionDays === undefined || access === undefined || !allowedCidrs ||
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
        docs: strip({ domain, hostedZoneId, access, allowedCidrs: allowedCidrs as string[] }),
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
