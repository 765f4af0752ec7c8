import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { AccessPlan, AdapterPackage, PipelineWarehouse, PullRequestSchemas, TargetEnvVar, Warehouse } from "../contract";
import { credentialJson } from "../contract";
import { RedshiftAdminConnection } from "./client";
import { redshiftContractAccessPlan, RedshiftPlanModel, RedshiftPlanStep, redshiftAccessPlan } from "./plan";
import {
    REDSHIFT_ADAPTER,
    RedshiftAuth,
    redshiftProfiles,
    redshiftPullRequestSchemas,
    redshiftTargetEnv,
    renderRedshiftProfilesYaml,
    redshiftTargetFields,
} from "./profiles";
import {
    RedshiftDatabaseGrant,
    RedshiftDefaultPrivileges,
    RedshiftGroup,
    RedshiftGroupMember,
    RedshiftKindName,
    RedshiftRole,
    RedshiftRoleGrant,
    RedshiftSchema,
    RedshiftSchemaGrant,
    RedshiftTableGrant,
    RedshiftUser,
} from "./providers";
import { redshiftIdentifierProblem, REDSHIFT_MAX_IDENTIFIER_BYTES } from "./sql";

/** What a bot duty is; deploy and scheduler share the production identity (see plan.ts). */
export type RedshiftBotDuty = "ci" | "deploy" | "scheduler";

/** A person's login with a private schema family. */
export interface RedshiftDeveloperArgs {
    /** Login name. */
    name: string;
    /** The developer's dbt target schema (default: the name, as in seed 003: `anton` → `anton_staging`). */
    schema?: string;
}

/** How the providers reach the cluster as an administrator. */
export interface RedshiftAdminConnectionArgs {
    /** Cluster or workgroup endpoint. */
    host: pulumi.Input<string>;
    /** Port (Redshift default 5439). */
    port: pulumi.Input<number>;
    /** Administrative user. */
    user: pulumi.Input<string>;
    /** Its password (a secret); when omitted the providers read REDSHIFT_ADMIN_PASSWORD per call. */
    password?: pulumi.Input<string>;
    /** TLS mode of the admin connection (default require). */
    sslmode?: pulumi.Input<"disable" | "require" | "verify-full">;
}

/** Arguments of RedshiftWarehouse. Names are plain strings: they decide which resources exist. */
export interface RedshiftWarehouseArgs {
    /** Admin connection the providers use. */
    connection: RedshiftAdminConnectionArgs;
    /** Database dbt builds into (it exists already, e.g. the cluster's `dev`). */
    database: string;
    /** Group of developers and CI (default grp_dev). */
    devGroup?: string;
    /** Group of the production identity (default grp_prod). */
    prodGroup?: string;
    /** The production user that owns production and that deploy and scheduler share (default dbt_prod). */
    productionUser?: string;
    /** The CI user (default dbt_ci); null for no CI login. */
    ciUser?: string | null;
    /** Production schemas, owned by the production user and readable by the dev group. */
    productionSchemas: string[];
    /** dbt custom schemas of the project (`+schema:`); each developer gets `<schema>_<custom>` too. */
    customSchemas?: string[];
    /** Per-developer logins with private schema families. */
    developers?: RedshiftDeveloperArgs[];
    /** Prefix of per-pull-request build schemas (default dbt_build_, as in seed 003). */
    pullRequestSchemaPrefix?: string;
    /** Also create RBAC roles mirroring the groups (Redshift only; default false). */
    rbac?: boolean;
    /** RBAC role names (defaults role_dev, role_prod). */
    roles?: { dev?: string; prod?: string };
    /** Take over existing users, groups and schemas instead of refusing them (default false). */
    adopt?: boolean;
    /** How dbt authenticates (default database passwords). */
    auth?: RedshiftAuth;
    /** Host dbt connects to (default the admin connection's host). */
    dbtHost?: pulumi.Input<string>;
    /** Port dbt connects to (default the admin connection's port). */
    dbtPort?: pulumi.Input<number>;
    /** sslmode in profiles.yml (default require). */
    dbtSslmode?: string;
    /** Profile name in profiles.yml. */
    profile: string;
    /** dbt threads per target (default 4). */
    threads?: number;
    /** Name of the deploy target (default prod; release stages use their stage). */
    deployTarget?: string;
}

/** Connection settings of one dbt target; `password` is a secret (absent with IAM). */
export interface RedshiftTargetConnection {
    host: string;
    port: number;
    user: string;
    password?: string;
    dbname: string;
    schema: string;
}

/**
 * Users, groups, schemas and grants for dbt on Redshift, applied by the `redshift:*` dynamic
 * providers; implements the warehouse contract (components/warehouse/contract.ts). Production is
 * owned by one identity that the deploy and scheduler duties share (the
 * counterpart of Postgres role masking: see plan.ts for why), CI builds in `dbt_build_<PR>` and reads
 * production, developers own their `<name>`, `<name>_<custom>` schema family and nothing else.
 */
export class RedshiftWarehouse extends pulumi.ComponentResource implements Warehouse<RedshiftTargetConnection> {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: RedshiftWarehouseArgs): void {
        normalise(name, args);
    }

    /** The plan the constructor registers; passwords are placeholders unless `password` supplies them (tests). */
    public static plan(name: string, args: RedshiftWarehouseArgs, password: (user: string) => string = (u) => `<password of ${u}>`): RedshiftPlanStep<string>[] {
        return redshiftAccessPlan(normalise(name, args).plan, password);
    }

    /** The warehouse kind (contract). */
    public readonly kind = "redshift" as const;
    /** The contract's access plan, without registering anything (review, audit). */
    public static accessPlan(name: string, args: RedshiftWarehouseArgs): AccessPlan {
        const model = normalise(name, args);
        return redshiftContractAccessPlan(model.plan, redshiftAccessPlan(model.plan, () => undefined));
    }

    /** What the pipelines read of the warehouse the constructor would declare (pure; plans CI settings before registration). */
    public static pipelineWarehouse(name: string, args: RedshiftWarehouseArgs): PipelineWarehouse {
        const model = normalise(name, args);
        const targetNames: Partial<Record<RedshiftBotDuty, string>> = {};
        if (model.plan.ciUser) targetNames.ci = "ci";
        targetNames.deploy = model.deployTarget;
        targetNames.scheduler = "scheduler";
        const targets = [...(model.plan.ciUser ? ["ci"] : []), model.deployTarget, "scheduler"];
        return {
            kind: "redshift",
            adapter: REDSHIFT_ADAPTER,
            targetNames,
            targetEnv: Object.fromEntries(targets.map((t) => [t, redshiftTargetEnv(t, model.auth, t === targetNames.ci)])),
            credentialFields: redshiftTargetFields(model.auth),
            pullRequestSchemas: redshiftPullRequestSchemas(model.pullRequestSchemaPrefix, model.plan.database),
        };
    }

    /** Group names. */
    public readonly groups: { dev: string; prod: string };
    /** The production identity deploy and scheduler share. */
    public readonly productionUser: string;
    /** Per-PR build schema prefix (dbt_build_ → dbt_build_42). */
    public readonly pullRequestSchemaPrefix: string;
    /** Per-PR schema naming, creation and cleanup (contract). */
    public readonly pullRequestSchemas: PullRequestSchemas;
    /** The adapter package the pipelines install. */
    public readonly adapter: AdapterPackage = REDSHIFT_ADAPTER;
    /** dbt target name per duty. */
    public readonly targetNames: Partial<Record<RedshiftBotDuty, string>>;
    /** Connection settings per dbt target; passwords are secrets. */
    public readonly targets: pulumi.Output<Record<string, RedshiftTargetConnection>>;
    /** Connection settings per developer; passwords are secrets. */
    public readonly developerTargets: pulumi.Output<Record<string, RedshiftTargetConnection>>;
    /** Environment variables profiles.yml reads, with values (a secret as a whole). */
    public readonly profileEnvironment: pulumi.Output<Record<string, string>>;
    /** profiles.yml with env_var() references only. */
    public readonly profilesYaml: pulumi.Output<string>;
    /**
     * The credential secret per target: flat JSON of `credentialFields` (a secret). The deploy and
     * scheduler targets carry the same production identity, so phase 2 may keep one Secrets Manager
     * secret for both (seed 003's ECS task reads it).
     */
    public readonly credentialSecrets: pulumi.Output<Record<string, string>>;
    /** Keys of every target's credential JSON, in order. */
    public readonly credentialFields: readonly string[];
    /** Environment variables per target that profiles.yml reads. */
    public readonly targetEnv: Record<string, TargetEnvVar[]>;
    /** The declared access plan in the contract's shape (roles, memberships, grants, ownerships, logins). */
    public readonly accessPlan: AccessPlan;
    /** The resources registered, in order, as plan steps (passwords replaced), for review and the SQL rendering. */
    public readonly resourcePlan: RedshiftPlanStep<string>[];

    constructor(name: string, args: RedshiftWarehouseArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validate before super(): a bad argument registers nothing, not even this component.
        const model = normalise(name, args);
        super("dbt-platform:warehouse:RedshiftWarehouse", name, {}, opts);
        this.groups = { dev: model.plan.devGroup, prod: model.plan.prodGroup };
        this.productionUser = model.plan.productionUser;
        this.pullRequestSchemaPrefix = model.pullRequestSchemaPrefix;
        this.pullRequestSchemas = redshiftPullRequestSchemas(model.pullRequestSchemaPrefix, model.plan.database);

        const connection: pulumi.Output<RedshiftAdminConnection> = pulumi.secret(
            pulumi.all([args.connection.host, args.connection.port, args.connection.user, args.connection.password, args.connection.sslmode]).apply(
                ([host, port, user, password, sslmode]) => {
                    const c: RedshiftAdminConnection = { host, port, database: model.plan.database, user };
                    if (password !== undefined) c.password = password;
                    if (sslmode !== undefined) c.sslmode = sslmode;
                    return c;
                },
            ),
        );

        const passwords: Record<string, pulumi.Output<string>> = {};
        const password = (user: string) => {
            const p = new random.RandomPassword(
                `${name}-user-${user}-password`,
                // Redshift requires upper, lower and a digit; alphanumeric so it travels through env vars and YAML unescaped.
                { length: 40, special: false, minUpper: 2, minLower: 2, minNumeric: 2 },
                { parent: this },
            ).result;
            passwords[user] = p;
            return p;
        };
        const steps = redshiftAccessPlan(model.plan, password);
        this.resourcePlan = redshiftAccessPlan(model.plan, (u) => `<password of ${u}>`);
        this.accessPlan = redshiftContractAccessPlan(model.plan, this.resourcePlan);

        const created: Record<string, pulumi.CustomResource> = {};
        // GRANT/REVOKE run one at a time: concurrent ACL updates of one object fail ("tuple concurrently updated").
        let lastGrant: pulumi.CustomResource | undefined;
        for (const step of steps) {
            const deps = step.after.map((k) => created[k]);
            const isGrant = ["DatabaseGrant", "SchemaGrant", "TableGrant", "DefaultPrivileges", "GroupMember", "RoleGrant"].includes(step.kind);
            if (isGrant && lastGrant) deps.push(lastGrant);
            const r = construct(step.kind, `${name}-${step.key}`, { ...step.props, connection }, { parent: this, dependsOn: deps });
            created[step.key] = r;
            if (isGrant) lastGrant = r;
        }

        const dbtHost = args.dbtHost ?? args.connection.host;
        const dbtPort = args.dbtPort ?? args.connection.port;
        const target = (user: string, schema: string) =>
            pulumi.all([dbtHost, dbtPort, passwords[user]]).apply(([host, port, pw]) => {
                const t: RedshiftTargetConnection = { host, port, user, dbname: model.plan.database, schema };
                if (model.auth.method === "database") t.password = pw;
                return t;
            });

        this.targetNames = {};
        const entries: [string, pulumi.Output<RedshiftTargetConnection>][] = [];
        if (model.plan.ciUser) {
            this.targetNames.ci = "ci";
            // The pipelines export DBT_CI_SCHEMA=<prefix><PR number>; this is the value outside a PR.
            entries.push(["ci", target(model.plan.ciUser, `${model.pullRequestSchemaPrefix}0`)]);
        }
        this.targetNames.deploy = model.deployTarget;
        this.targetNames.scheduler = "scheduler";
        entries.push([model.deployTarget, target(model.plan.productionUser, model.plan.productionSchemas[0])]);
        entries.push(["scheduler", target(model.plan.productionUser, model.plan.productionSchemas[0])]);
        this.targets = pulumi.secret(collect(entries));
        this.developerTargets = pulumi.secret(collect(model.plan.developers.map((d) => [d.name, target(d.name, d.schemas[0])] as const)));

        const fields = redshiftTargetFields(model.auth);
        this.credentialFields = fields;
        this.targetEnv = Object.fromEntries(entries.map(([t]) => [t, redshiftTargetEnv(t, model.auth, t === this.targetNames.ci)]));
        this.profileEnvironment = pulumi.secret(
            this.targets.apply((targets) => {
                const env: Record<string, string> = {};
                for (const [t, c] of Object.entries(targets)) for (const v of this.targetEnv[t]) env[v.name] = String(c[v.field as keyof RedshiftTargetConnection]);
                return env;
            }),
        );
        this.credentialSecrets = pulumi.secret(
            this.targets.apply((targets) => Object.fromEntries(Object.entries(targets).map(([t, c]) => [t, credentialJson({ ...c }, fields)]))),
        );
        this.profilesYaml = pulumi.output(
            renderRedshiftProfilesYaml(
                redshiftProfiles({
                    profile: model.profile,
                    defaultTarget: this.targetNames.ci ?? model.deployTarget,
                    targets: entries.map(([t]) => t),
                    threads: model.threads,
                    sslmode: model.dbtSslmode,
                    auth: model.auth,
                }),
            ),
        );
        this.registerOutputs({
            groups: this.groups,
            productionUser: this.productionUser,
            targetNames: this.targetNames,
            targets: this.targets,
            developerTargets: this.developerTargets,
            profileEnvironment: this.profileEnvironment,
            profilesYaml: this.profilesYaml,
            credentialSecrets: this.credentialSecrets,
        });
    }
}

/** The resource class of each plan step kind. */
const RESOURCE_CLASSES: Record<RedshiftKindName, new (name: string, props: any, opts: pulumi.CustomResourceOptions) => pulumi.CustomResource> = {
    User: RedshiftUser,
    Group: RedshiftGroup,
    GroupMember: RedshiftGroupMember,
    Schema: RedshiftSchema,
    DatabaseGrant: RedshiftDatabaseGrant,
    SchemaGrant: RedshiftSchemaGrant,
    TableGrant: RedshiftTableGrant,
    DefaultPrivileges: RedshiftDefaultPrivileges,
    Role: RedshiftRole,
    RoleGrant: RedshiftRoleGrant,
};

/** Registers one plan step as its resource class. */
function construct(kind: RedshiftKindName, name: string, props: Record<string, any>, opts: pulumi.CustomResourceOptions): pulumi.CustomResource {
    return new RESOURCE_CLASSES[kind](name, props, opts);
}

function collect<T>(entries: readonly (readonly [string, pulumi.Output<T>])[]): pulumi.Output<Record<string, T>> {
    return pulumi.all(entries.map(([, v]) => v)).apply((values) => {
        const out: Record<string, T> = {};
        entries.forEach(([k], i) => (out[k] = values[i] as T));
        return out;
    });
}

interface Model {
    plan: RedshiftPlanModel;
    pullRequestSchemaPrefix: string;
    auth: RedshiftAuth;
    dbtSslmode: string;
    profile: string;
    threads: number;
    deployTarget: string;
}

/** Longest PR number the prefix must leave room for (Azure DevOps ids reach 10 digits). */
const PR_DIGITS = 10;

/** Applies defaults and rejects unsafe or inconsistent names before any child is registered. */
function normalise(name: string, args: RedshiftWarehouseArgs): Model {
    const problems: string[] = [];
    const check = (value: unknown, what: "user" | "group" | "role" | "schema" | "database", where: string) => {
        const p = redshiftIdentifierProblem(value, what);
        if (p) problems.push(`${where} = ${JSON.stringify(value)}: expected ${p}`);
    };
    const customSchemas = args.customSchemas ?? [];
    const developers = (args.developers ?? []).map((d) => {
        const base = d.schema ?? d.name;
        return { name: d.name, schemas: [base, ...customSchemas.map((c) => `${base}_${c}`)] };
    });
    const plan: RedshiftPlanModel = {
        database: args.database,
        devGroup: args.devGroup ?? "grp_dev",
        prodGroup: args.prodGroup ?? "grp_prod",
        productionUser: args.productionUser ?? "dbt_prod",
        ciUser: args.ciUser === null ? undefined : (args.ciUser ?? "dbt_ci"),
        productionSchemas: args.productionSchemas ?? [],
        developers,
        rbac: args.rbac ?? false,
        devRole: args.roles?.dev ?? "role_dev",
        prodRole: args.roles?.prod ?? "role_prod",
        adopt: args.adopt ?? false,
    };
    const m: Model = {
        plan,
        pullRequestSchemaPrefix: args.pullRequestSchemaPrefix ?? "dbt_build_",
        auth: args.auth ?? { method: "database" },
        dbtSslmode: args.dbtSslmode ?? "require",
        profile: args.profile,
        threads: args.threads ?? 4,
        deployTarget: args.deployTarget ?? "prod",
    };
    check(plan.database, "database", "database");
    check(plan.devGroup, "group", "devGroup");
    check(plan.prodGroup, "group", "prodGroup");
    check(plan.productionUser, "user", "productionUser");
    if (plan.ciUser !== undefined) check(plan.ciUser, "user", "ciUser");
    plan.productionSchemas.forEach((s, i) => check(s, "schema", `productionSchemas[${i}]`));
    if (plan.productionSchemas.length === 0) problems.push("productionSchemas: expected at least one schema");
    customSchemas.forEach((s, i) => check(s, "schema", `customSchemas[${i}]`));
    (args.developers ?? []).forEach((d, i) => {
        check(d.name, "user", `developers[${i}].name`);
        if (d.schema !== undefined) check(d.schema, "schema", `developers[${i}].schema`);
    });
    developers.forEach((d, i) =>
        d.schemas.slice(1).forEach((s) => {
            if (Buffer.byteLength(s) > REDSHIFT_MAX_IDENTIFIER_BYTES) problems.push(`developers[${i}]: custom schema ${s} is longer than ${REDSHIFT_MAX_IDENTIFIER_BYTES} bytes`);
        }),
    );
    if (plan.rbac) {
        check(plan.devRole, "role", "roles.dev");
        check(plan.prodRole, "role", "roles.prod");
    }
    const prefix = m.pullRequestSchemaPrefix;
    const longestCustom = Math.max(0, ...customSchemas.map((c) => c.length + 1));
    if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) {
        problems.push(`pullRequestSchemaPrefix = ${JSON.stringify(prefix)}: expected a lower-case identifier prefix such as dbt_build_`);
    } else if (prefix.length + PR_DIGITS + longestCustom > REDSHIFT_MAX_IDENTIFIER_BYTES) {
        problems.push(`pullRequestSchemaPrefix = ${JSON.stringify(prefix)}: too long for ${PR_DIGITS}-digit PR numbers and custom schemas`);
    }
    const principals = [plan.devGroup, plan.prodGroup, plan.productionUser, ...(plan.ciUser ? [plan.ciUser] : []), ...developers.map((d) => d.name)];
    dupes(principals).forEach((d) => problems.push(`user or group ${d} is declared more than once`));
    const schemas = [...plan.productionSchemas, ...developers.flatMap((d) => d.schemas)];
    dupes(schemas).forEach((d) => problems.push(`schema ${d} is declared more than once (production schemas and developer schema families must not overlap)`));
    for (const s of schemas) {
        if (s.startsWith(prefix)) problems.push(`schema ${s} starts with pullRequestSchemaPrefix ${prefix}: CI cleanup would drop it`);
    }
    const auth = m.auth as Record<string, unknown>;
    if (auth.method !== "database" && auth.method !== "iam") problems.push(`auth.method = ${JSON.stringify(auth.method)}: expected database or iam`);
    if (auth.method === "iam") {
        const hasCluster = typeof auth.clusterId === "string";
        const hasWorkgroup = typeof auth.workgroup === "string";
        if (hasCluster === hasWorkgroup) problems.push("auth: expected exactly one of clusterId (provisioned cluster) or workgroup (Serverless) with method iam");
        if (hasCluster && !/^[a-z][a-z0-9-]{0,62}$/.test(auth.clusterId as string)) problems.push(`auth.clusterId = ${JSON.stringify(auth.clusterId)}: expected a cluster identifier (lower-case letters, digits, hyphens)`);
        if (hasWorkgroup && !/^[a-z0-9-]{3,64}$/.test(auth.workgroup as string)) problems.push(`auth.workgroup = ${JSON.stringify(auth.workgroup)}: expected a workgroup name (3-64 lower-case letters, digits, hyphens)`);
        if (typeof auth.region !== "string" || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(auth.region)) problems.push(`auth.region = ${JSON.stringify(auth.region)}: expected an AWS region such as eu-west-1`);
    }
    if (!/^[a-z][a-z0-9_-]*$/.test(m.deployTarget) || ["ci", "scheduler"].includes(m.deployTarget)) {
        problems.push(`deployTarget = ${JSON.stringify(m.deployTarget)}: expected a target name other than ci, scheduler`);
    }
    if (!Number.isInteger(m.threads) || m.threads < 1) problems.push(`threads = ${JSON.stringify(m.threads)}: expected a positive integer`);
    if (typeof m.profile !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(m.profile)) problems.push(`profile = ${JSON.stringify(m.profile)}: expected a dbt profile name`);
    if (!args.connection) problems.push("connection: expected the admin connection { host, port, user, password }");
    if (problems.length > 0) {
        throw new Error(`RedshiftWarehouse ${name}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
    }
    return m;
}

function dupes(values: string[]): string[] {
    return [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
}
