/**
 * SnowflakeWarehouse arguments, their defaults and validation. `normaliseSnowflake` is pure: it
 * throws naming every bad field before anything is registered, and returns the plain model the
 * access plan, the SQL rendering and the component are built from.
 */
import type * as pulumi from "@pulumi/pulumi";
import type * as snowflake from "@pulumi/snowflake";
import { BotDuty, dutyTargetName } from "../contract";
import { ACCOUNT_IDENTIFIER_PATTERN, snowflakeIdentifierProblem, SnowflakeObjectKind } from "./identifiers";

/** dbt-snowflake release the pipelines install with dbt-core 1.11 (the version the end-to-end test runs). */
export const DBT_SNOWFLAKE_VERSION = "1.11.6";

/** Warehouse sizes as the provider stores them (its hyphenated spellings are accepted and mapped). */
export const WAREHOUSE_SIZES = ["XSMALL", "SMALL", "MEDIUM", "LARGE", "XLARGE", "XXLARGE", "XXXLARGE", "X4LARGE", "X5LARGE", "X6LARGE"] as const;
const SIZE_ALIASES: Record<string, string> = {
    "X-SMALL": "XSMALL", "X-LARGE": "XLARGE", "2X-LARGE": "XXLARGE", X2LARGE: "XXLARGE", "3X-LARGE": "XXXLARGE", X3LARGE: "XXXLARGE",
    "4X-LARGE": "X4LARGE", "5X-LARGE": "X5LARGE", "6X-LARGE": "X6LARGE",
};

/** The three duties a virtual warehouse serves. */
export type WarehouseDuty = "transform" | "ci" | "reporting";
export const WAREHOUSE_DUTIES: readonly WarehouseDuty[] = ["transform", "ci", "reporting"];

/** The functional roles: what people and bots act as. */
export type FunctionalRole = "transformer" | "ci" | "reporter";

/** A virtual warehouse. */
export interface SnowflakeWarehouseSizingArgs {
    /** Warehouse name (default TRANSFORMING, CI, REPORTING). */
    name?: string;
    /** Size, e.g. XSMALL (default XSMALL). */
    size?: string;
    /** Seconds idle before it suspends (default 60). */
    autoSuspendSeconds?: number;
    /** Resume when a query arrives (default true). */
    autoResume?: boolean;
    /** Seconds after which a running statement is cancelled (default 3600). */
    statementTimeoutSeconds?: number;
}

/** A service user for a bot duty, authenticated by an RSA key pair only. */
export interface SnowflakeBotUserArgs {
    /** User name (upper-case identifier), e.g. SVC_DBT_DEPLOY. */
    name: string;
    /** ci builds PR schemas in the development database; deploy and scheduler build production. */
    duty: BotDuty;
    /** Also generate a second key and set it as RSA_PUBLIC_KEY_2 (key rotation, step 1). */
    secondKey?: boolean;
    /** Which key the dbt target uses: 1 (default) or 2 (rotation, step 2; needs secondKey). */
    activeKey?: 1 | 2;
}

/** How the snowflake providers log in: key-pair authentication as an administrator. */
export interface SnowflakeAdminArgs {
    /** Administrative user. */
    user: pulumi.Input<string>;
    /** Its PKCS#8 private key (a secret); when omitted the provider reads SNOWFLAKE_PRIVATE_KEY. */
    privateKey?: pulumi.Input<string>;
    /** Passphrase of an encrypted private key (a secret). */
    privateKeyPassphrase?: pulumi.Input<string>;
}

/** Where dbt connects when it is not the account's own host (fakesnow, PrivateLink). */
export interface SnowflakeEndpointArgs {
    /** Host dbt connects to. */
    host: pulumi.Input<string>;
    /** Its port. */
    port: pulumi.Input<number>;
    /** http or https. */
    protocol: "http" | "https";
}

/** Arguments of SnowflakeWarehouse. Names are plain strings: they decide which resources exist. */
export interface SnowflakeWarehouseArgs {
    /** Account identifier `<organization>-<account>`, e.g. ACME-ANALYTICS. */
    account: string;
    /** Admin login used to build the providers; ignored when `providers` is given. */
    admin?: SnowflakeAdminArgs;
    /** Existing providers: SYSADMIN (databases, warehouses, database roles) and SECURITYADMIN (roles, users, grants). */
    providers?: { sysadmin: snowflake.Provider; securityadmin: snowflake.Provider };
    /** Production database (default ANALYTICS). */
    productionDatabase?: string;
    /** Development/CI database holding the per-PR schemas (default ANALYTICS_DEV). */
    developmentDatabase?: string;
    /** Create both databases (default true); false when they exist already (their grants are still managed). */
    createDatabases?: boolean;
    /** Schema the production targets build into (default ANALYTICS). */
    productionSchema?: string;
    /** Schema of the ci target outside a pull request (default DBT_CI), in the development database. */
    ciSchema?: string;
    /** Per-PR schema prefix (default CI_PR_): PR n builds in CI_PR_<n>. */
    pullRequestPrefix?: string;
    /** Virtual warehouses per duty. */
    warehouses?: Partial<Record<WarehouseDuty, SnowflakeWarehouseSizingArgs>>;
    /** Functional role names (default TRANSFORMER, TRANSFORMER_CI, REPORTER). */
    roles?: Partial<Record<FunctionalRole, string>>;
    /** Bot service users: at most one per duty, exactly one deploy bot. */
    users: SnowflakeBotUserArgs[];
    /** RSA key size of the service users' keys (2048 or 4096; default 2048). */
    rsaBits?: 2048 | 4096;
    /** Network policy on the service users: IPv4 CIDRs allowed (and optionally blocked). */
    networkPolicy?: { name?: string; allowedIpList: string[]; blockedIpList?: string[] };
    /** Profile name in profiles.yml. */
    profile: string;
    /** dbt threads per target (default 4). */
    threads?: number;
    /** Name of the dbt target the deploy bot uses (default prod; release stages use their stage). */
    deployTarget?: string;
    /** dbt-snowflake version the pipelines install (default DBT_SNOWFLAKE_VERSION). */
    adapterVersion?: string;
    /** Host, port and protocol written into the targets (fakesnow, PrivateLink); default the account's host. */
    endpoint?: SnowflakeEndpointArgs;
}

/** The normalised, validated arguments. */
export interface SnowflakeModel {
    account: string;
    productionDatabase: string;
    developmentDatabase: string;
    createDatabases: boolean;
    productionSchema: string;
    ciSchema: string;
    pullRequestPrefix: string;
    warehouses: Record<WarehouseDuty, Required<SnowflakeWarehouseSizingArgs>>;
    roles: Record<FunctionalRole, string>;
    users: Required<SnowflakeBotUserArgs>[];
    rsaBits: 2048 | 4096;
    networkPolicy?: { name: string; allowedIpList: string[]; blockedIpList: string[] };
    profile: string;
    threads: number;
    deployTarget: string;
    adapterVersion: string;
    endpoint: boolean;
}

const DEFAULT_WAREHOUSE_NAMES: Record<WarehouseDuty, string> = { transform: "TRANSFORMING", ci: "CI", reporting: "REPORTING" };
const DEFAULT_ROLES: Record<FunctionalRole, string> = { transformer: "TRANSFORMER", ci: "TRANSFORMER_CI", reporter: "REPORTER" };

/** Which functional role and warehouse a bot of each duty uses. */
export function dutyRole(duty: BotDuty): FunctionalRole {
    return duty === "ci" ? "ci" : "transformer";
}
export function dutyWarehouse(duty: BotDuty): WarehouseDuty {
    return duty === "ci" ? "ci" : "transform";
}

function isIpv4Cidr(s: unknown): boolean {
    if (typeof s !== "string") return false;
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(s);
    return !!m && m.slice(1, 5).every((o) => Number(o) <= 255) && (m[5] === undefined || Number(m[5]) <= 32);
}

/** Applies defaults and rejects unsafe or inconsistent values; throws naming every bad field. */
export function normaliseSnowflake(name: string, args: SnowflakeWarehouseArgs): SnowflakeModel {
    const problems: string[] = [];
    const check = (value: unknown, what: SnowflakeObjectKind, where: string) => {
        const p = snowflakeIdentifierProblem(value, what);
        if (p) problems.push(`${where} = ${JSON.stringify(value)}: expected ${p}`);
    };
    const whole = (value: unknown, min: number, max: number, where: string, unit: string) => {
        if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
            problems.push(`${where} = ${JSON.stringify(value)}: expected a whole number of ${unit} from ${min} to ${max}`);
        }
    };

    if (typeof args.account !== "string" || !ACCOUNT_IDENTIFIER_PATTERN.test(args.account)) {
        problems.push(`account = ${JSON.stringify(args.account)}: expected an account identifier <organization>-<account>, e.g. ACME-ANALYTICS`);
    }
    const warehouses = {} as SnowflakeModel["warehouses"];
    for (const duty of WAREHOUSE_DUTIES) {
        const w = args.warehouses?.[duty] ?? {};
        const rawSize = (w.size ?? "XSMALL").toString().toUpperCase();
        const size = SIZE_ALIASES[rawSize] ?? rawSize;
        if (!(WAREHOUSE_SIZES as readonly string[]).includes(size)) {
            problems.push(`warehouses.${duty}.size = ${JSON.stringify(w.size)}: expected one of ${WAREHOUSE_SIZES.join(", ")}`);
        }
        warehouses[duty] = {
            name: w.name ?? DEFAULT_WAREHOUSE_NAMES[duty],
            size,
            autoSuspendSeconds: w.autoSuspendSeconds ?? 60,
            autoResume: w.autoResume ?? true,
            statementTimeoutSeconds: w.statementTimeoutSeconds ?? 3600,
        };
        check(warehouses[duty].name, "warehouse", `warehouses.${duty}.name`);
        // 60 s is the shortest suspension Snowflake honours (it bills a minute on each resume anyway).
        whole(warehouses[duty].autoSuspendSeconds, 60, 86_400, `warehouses.${duty}.autoSuspendSeconds`, "seconds");
        whole(warehouses[duty].statementTimeoutSeconds, 1, 604_800, `warehouses.${duty}.statementTimeoutSeconds`, "seconds");
        if (typeof warehouses[duty].autoResume !== "boolean") problems.push(`warehouses.${duty}.autoResume: expected true or false`);
    }
    const roles = { ...DEFAULT_ROLES, ...(args.roles ?? {}) };
    for (const [k, v] of Object.entries(roles)) check(v, "role", `roles.${k}`);

    const m: SnowflakeModel = {
        account: args.account,
        productionDatabase: args.productionDatabase ?? "ANALYTICS",
        developmentDatabase: args.developmentDatabase ?? "ANALYTICS_DEV",
        createDatabases: args.createDatabases ?? true,
        productionSchema: args.productionSchema ?? "ANALYTICS",
        ciSchema: args.ciSchema ?? "DBT_CI",
        pullRequestPrefix: args.pullRequestPrefix ?? "CI_PR_",
        warehouses,
        roles,
        users: (args.users ?? []).map((u) => ({ name: u.name, duty: u.duty, secondKey: u.secondKey ?? false, activeKey: u.activeKey ?? 1 })),
        rsaBits: args.rsaBits ?? 2048,
        networkPolicy: args.networkPolicy
            ? { name: args.networkPolicy.name ?? "DBT_SERVICE_USERS", allowedIpList: args.networkPolicy.allowedIpList ?? [], blockedIpList: args.networkPolicy.blockedIpList ?? [] }
            : undefined,
        profile: args.profile,
        threads: args.threads ?? 4,
        deployTarget: dutyTargetName("deploy", args.deployTarget),
        adapterVersion: args.adapterVersion ?? DBT_SNOWFLAKE_VERSION,
        endpoint: args.endpoint !== undefined,
    };
    check(m.productionDatabase, "database", "productionDatabase");
    check(m.developmentDatabase, "database", "developmentDatabase");
    for (const key of ["productionDatabase", "developmentDatabase"] as const) {
        // The access roles are named <DB>_READ / <DB>_WRITE and must stay valid identifiers.
        if (typeof m[key] === "string" && m[key].length > 249) problems.push(`${key}: at most 249 characters (its access role <name>_WRITE must fit 255)`);
    }
    if (m.productionDatabase === m.developmentDatabase) problems.push(`developmentDatabase: must differ from productionDatabase (${m.productionDatabase})`);
    check(m.productionSchema, "schema", "productionSchema");
    check(m.ciSchema, "schema", "ciSchema");
    if (typeof m.pullRequestPrefix !== "string" || !/^[A-Z][A-Z0-9_]{0,40}$/.test(m.pullRequestPrefix)) {
        problems.push(`pullRequestPrefix = ${JSON.stringify(m.pullRequestPrefix)}: expected an upper-case schema name prefix (a letter, then up to 40 letters, digits or _)`);
    } else if (m.ciSchema.startsWith(m.pullRequestPrefix) && /^\d+(_|$)/.test(m.ciSchema.slice(m.pullRequestPrefix.length))) {
        // The cleanup drops the family <prefix><n>[_*]: no declared schema may fall inside it.
        problems.push(`ciSchema = ${JSON.stringify(m.ciSchema)}: must not look like a pull-request schema ${m.pullRequestPrefix}<n>`);
    }
    dupes(Object.values(roles)).forEach((d) => problems.push(`roles: ${d} is declared for more than one functional role`));
    dupes(WAREHOUSE_DUTIES.map((d) => warehouses[d].name)).forEach((d) => problems.push(`warehouses: ${d} is declared for more than one duty`));

    if (!Array.isArray(args.users)) problems.push("users: expected a list of service users");
    m.users.forEach((u, i) => {
        check(u.name, "user", `users[${i}].name`);
        if (!["ci", "deploy", "scheduler"].includes(u.duty)) problems.push(`users[${i}].duty = ${JSON.stringify(u.duty)}: expected ci, deploy or scheduler`);
        if (u.activeKey !== 1 && u.activeKey !== 2) problems.push(`users[${i}].activeKey = ${JSON.stringify(u.activeKey)}: expected 1 or 2`);
        if (u.activeKey === 2 && !u.secondKey) problems.push(`users[${i}].activeKey = 2: needs secondKey: true (the second key must exist on the user first)`);
    });
    dupes(m.users.map((u) => u.name)).forEach((d) => problems.push(`users: ${d} is declared more than once`));
    for (const duty of ["ci", "deploy", "scheduler"] as const) {
        const n = m.users.filter((u) => u.duty === duty).length;
        if (n > 1) problems.push(`users: expected at most one ${duty} user, found ${n}`);
        if (duty === "deploy" && n === 0) problems.push("users: expected a deploy user");
    }
    if (m.rsaBits !== 2048 && m.rsaBits !== 4096) problems.push(`rsaBits = ${JSON.stringify(m.rsaBits)}: expected 2048 or 4096`);
    if (m.networkPolicy) {
        check(m.networkPolicy.name, "network policy", "networkPolicy.name");
        if (m.networkPolicy.allowedIpList.length === 0) problems.push("networkPolicy.allowedIpList: expected at least one IPv4 network");
        for (const key of ["allowedIpList", "blockedIpList"] as const) {
            m.networkPolicy[key].forEach((c, i) => {
                if (!isIpv4Cidr(c)) problems.push(`networkPolicy.${key}[${i}] = ${JSON.stringify(c)}: expected an IPv4 address or CIDR`);
            });
        }
        if (m.networkPolicy.blockedIpList.includes("0.0.0.0/0")) problems.push("networkPolicy.blockedIpList: must not contain 0.0.0.0/0 (everything not allowed is blocked already)");
    }
    if (typeof m.profile !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(m.profile)) problems.push(`profile = ${JSON.stringify(m.profile)}: expected a dbt profile name`);
    whole(m.threads, 1, 64, "threads", "threads");
    if (m.deployTarget === "ci" || m.deployTarget === "scheduler" || !/^[a-z][a-z0-9_-]*$/.test(m.deployTarget)) {
        problems.push(`deployTarget = ${JSON.stringify(m.deployTarget)}: expected a target name other than ci, scheduler`);
    }
    if (!/^\d+\.\d+\.\d+$/.test(m.adapterVersion)) problems.push(`adapterVersion = ${JSON.stringify(m.adapterVersion)}: expected an exact version such as ${DBT_SNOWFLAKE_VERSION}`);
    if (args.endpoint && !["http", "https"].includes(args.endpoint.protocol)) {
        problems.push(`endpoint.protocol = ${JSON.stringify(args.endpoint.protocol)}: expected http or https`);
    }
    if (!args.providers && !args.admin) problems.push("admin: expected an admin login (user and private key) or providers");
    if (problems.length > 0) {
        throw new Error(`SnowflakeWarehouse ${name}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
    }
    return m;
}

function dupes(values: string[]): string[] {
    return [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
}
