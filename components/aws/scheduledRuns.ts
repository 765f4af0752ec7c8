/**
 * Scheduled production dbt runs (seed 003): EventBridge Scheduler starts a Fargate task that pulls
 * the project for one commit from the artifacts bucket (a pinned commit, or `projects/current`, the
 * commit the release published last: pipelines/release.ts) and runs dbt with JSON logs; CloudWatch turns
 * the logs into an error alarm and a heartbeat alarm, and an EventBridge rule reports tasks that
 * stopped with a non-zero exit code. Everything alerts through one SNS topic.
 *
 * Why not seed 003's `{ $.levelname = "ERROR" }`: that is the pre-1.0 log format. dbt 1.11 writes
 * `{"info": {"level": "error", "name": ...}, "data": {...}}`, so that filter never matches.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { compileFilterPattern } from "./scheduled/filterPattern";
import {
    ENTRYPOINT_PATH,
    projectManifestKey,
    projectPointerKey,
    projectTarballKey,
    renderDockerfile,
    renderEntrypoint,
    RUNNER_ENV,
    RunnerImageSpec,
    runnerImageTag,
} from "./scheduled/runner";

/** Counts dbt 1.11 error events (every event at level error, e.g. a failed model or test). */
export const ERROR_FILTER_PATTERN = `{ $.info.level = "error" }`;
/**
 * The heartbeat: one event per completed build. dbt 1.11 ends a build with StatsLine ("Done. PASS=..
 * ERROR=.."), but a build that selects nothing (a fresher+ run with no new data) logs NothingToDo
 * instead and no StatsLine; both mean the run happened.
 */
export const HEARTBEAT_FILTER_PATTERN = `{ $.info.name = "StatsLine" || $.info.name = "NothingToDo" }`;
/** Name of the runner container in the task definition. */
export const CONTAINER_NAME = "dbt";
/** awslogs stream prefix: streams are `dbt/dbt/<task id>`. */
export const LOG_STREAM_PREFIX = "dbt";

/** One EventBridge Scheduler schedule that starts a run. */
export interface ScheduledRunSchedule {
    /** Short name (lower-case letters, digits, dashes); the schedule is `<component>-<name>`. */
    name: string;
    /** `cron(<6 fields>)` or `rate(<n> <unit>)`, EventBridge Scheduler syntax. */
    expression: string;
    /** IANA time zone of a cron expression (default UTC). */
    timezone?: string;
    /** Retries when the RunTask call fails (0-185, default 2). */
    maximumRetryAttempts?: number;
    /** Seconds an invocation may be retried for (60-86400, default 3600). */
    maximumEventAgeSeconds?: number;
}

/** An SNS subscription for the alerts topic. */
export interface ScheduledRunSubscription {
    /** SNS protocol: email, email-json, https, sqs or lambda. */
    protocol: "email" | "email-json" | "https" | "sqs" | "lambda";
    /** Address, URL or ARN for the protocol. */
    endpoint: pulumi.Input<string>;
}

/** Networking of the awsvpc task. */
export interface ScheduledRunNetwork {
    /** Subnets of the task (1-16). */
    subnetIds: pulumi.Input<pulumi.Input<string>[]>;
    /** Security groups of the task (1-5). */
    securityGroupIds: pulumi.Input<pulumi.Input<string>[]>;
    /** Give the task a public IP (needed in a public subnet without a NAT gateway; default false). */
    assignPublicIp?: boolean;
}

/** Arguments of ScheduledRuns. */
export interface ScheduledRunsArgs {
    /** AWS region of the resources (the awslogs driver needs it). */
    region: pulumi.Input<string>;
    /** Artifacts bucket name (ArtifactStore.bucketName). */
    artifactsBucketName: pulumi.Input<string>;
    /** Artifacts bucket ARN (ArtifactStore.bucketArn). */
    artifactsBucketArn: pulumi.Input<string>;
    /** KMS key of the bucket, when it uses SSE-KMS: the task role may use it through S3 only. */
    artifactsKmsKeyArn?: pulumi.Input<string>;
    /** Prefix of the published projects, `<prefix><commit>.tar.gz` and `<prefix><commit>/manifest.json` (default `projects/`). */
    projectPrefix?: string;
    /** Commit whose project the runs build; without it each run follows `<projectPrefix>current`, the commit the release published last. */
    projectCommit?: pulumi.Input<string>;
    /** Prefix of the runs' kept state and history (default `artifacts/scheduled/`). */
    statePrefix?: string;
    /** What the image pins (dbt, the adapter, awscli, Python). */
    image: RunnerImageSpec;
    /** Image tag the task runs (the release pushes `<repository>:<tag>`; default runnerImageTag(image), a digest of what the image holds). */
    imageTag?: pulumi.Input<string>;
    /** Images to keep in the repository (default 20); untagged ones expire after a day. */
    imageRetentionCount?: number;
    /** The Secrets Manager secret with the scheduler target's credentials (JSON). */
    credentialSecretArn: pulumi.Input<string>;
    /** Environment variable → JSON key of the secret, e.g. `{ DBT_SCHEDULER_PASSWORD: "password" }`. */
    credentialEnv: Record<string, string>;
    /** KMS key encrypting the secret, when not the account's aws/secretsmanager key. */
    secretsKmsKeyArn?: pulumi.Input<string>;
    /** dbt target the runs build (`--target`). */
    dbtTarget: string;
    /** profiles.yml directory inside the project (default `.ci`, where the pipelines render it). */
    profilesDir?: string;
    /** Fargate CPU units (256-16384, default 1024). */
    cpu?: number;
    /** Fargate memory in MiB, valid for the CPU (default 2048). */
    memory?: number;
    /** Days to keep the run logs (a CloudWatch retention value, default 90). */
    logRetentionDays?: number;
    /** When runs start. */
    schedules: ScheduledRunSchedule[];
    /** Subnets, security groups and public IP of the task. */
    network: ScheduledRunNetwork;
    /** Longest gap in minutes between two scheduled runs (the heartbeat window). */
    runIntervalMinutes: number;
    /** Minutes a run may take beyond the interval before the heartbeat alarm fires (default 60). */
    heartbeatGraceMinutes?: number;
    /** Alert subscriptions of the SNS topic. */
    subscriptions?: ScheduledRunSubscription[];
    /** Build only what has new data: freshness, then `source_status:fresher+` against the last good run. */
    freshOnly?: { fullBuildEvery?: number };
    /** Tags for every taggable resource. */
    tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

const FARGATE_MEMORY: Record<number, number[]> = {
    256: [512, 1024, 2048],
    512: [1024, 2048, 3072, 4096],
    1024: range(2048, 8192, 1024),
    2048: range(4096, 16384, 1024),
    4096: range(8192, 30720, 1024),
    8192: range(16384, 61440, 4096),
    16384: range(32768, 122880, 8192),
};
const LOG_RETENTION = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
const PROTOCOLS = ["email", "email-json", "https", "sqs", "lambda"];

function range(from: number, to: number, step: number): number[] {
    const out: number[] = [];
    for (let x = from; x <= to; x += step) out.push(x);
    return out;
}

/** The normalised arguments the constructor builds from. */
interface Model {
    projectPrefix: string;
    statePrefix: string;
    profilesDir: string;
    cpu: number;
    memory: number;
    logRetentionDays: number;
    imageRetentionCount: number;
    graceMinutes: number;
    /** Heartbeat alarm: period seconds and evaluation periods covering interval + grace. */
    heartbeat: { period: number; evaluationPeriods: number };
    fullBuildEvery?: number;
}

/** The heartbeat window (interval + grace) as CloudWatch periods: one period up to a day, else hours (at most 7 days). */
export function heartbeatPeriods(intervalMinutes: number, graceMinutes: number): { period: number; evaluationPeriods: number } {
    const seconds = (intervalMinutes + graceMinutes) * 60;
    if (seconds <= 86_400) return { period: seconds, evaluationPeriods: 1 };
    return { period: 3600, evaluationPeriods: Math.ceil(seconds / 3600) };
}

function normalise(name: string, args: ScheduledRunsArgs): Model {
    const problems: string[] = [];
    const bad = (field: string, value: unknown, expected: string) => problems.push(`${field} = ${JSON.stringify(value)}: expected ${expected}`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,200}$/.test(name)) bad("name", name, "letters, digits, _ and - (the task definition family)");

    const prefix = (field: string, v: string) => {
        if (!/^[A-Za-z0-9][A-Za-z0-9_.\/-]*\/$/.test(v) || v.includes("//") || v.includes("..")) bad(field, v, "an S3 key prefix ending in / (letters, digits, _ . - /)");
    };
    const projectPrefix = args.projectPrefix ?? "projects/";
    const statePrefix = args.statePrefix ?? "artifacts/scheduled/";
    prefix("projectPrefix", projectPrefix);
    prefix("statePrefix", statePrefix);
    if (projectPrefix.startsWith(statePrefix) || statePrefix.startsWith(projectPrefix)) {
        problems.push(`projectPrefix ${projectPrefix} and statePrefix ${statePrefix} overlap: the task may write run state but never the projects`);
    }
    if (typeof args.projectCommit === "string" && !/^[0-9a-f]{7,64}$/.test(args.projectCommit)) bad("projectCommit", args.projectCommit, "a commit hash (7-64 lower-case hex digits)");
    if (typeof args.imageTag === "string" && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(args.imageTag)) bad("imageTag", args.imageTag, "a Docker tag");

    const img = args.image ?? ({} as RunnerImageSpec);
    if (!/^3\.\d{1,2}$/.test(String(img.pythonVersion))) bad("image.pythonVersion", img.pythonVersion, "3.<minor>");
    for (const f of ["dbtVersion", "adapterVersion", "awscliVersion"] as const) {
        if (!/^\d+\.\d+\.\d+$/.test(String(img[f]))) bad(`image.${f}`, img[f], "an exact version such as 1.11.16");
    }
    if (!/^dbt-[a-z0-9-]+$/.test(String(img.adapterPackage))) bad("image.adapterPackage", img.adapterPackage, "a dbt adapter package such as dbt-postgres");

    const imageRetentionCount = args.imageRetentionCount ?? 20;
    if (!Number.isInteger(imageRetentionCount) || imageRetentionCount < 1 || imageRetentionCount > 1000) bad("imageRetentionCount", imageRetentionCount, "an integer from 1 to 1000");

    const env = args.credentialEnv ?? {};
    const reserved = new Set<string>([...Object.values(RUNNER_ENV), "DBT_LOG_FORMAT", "DBT_USE_COLORS"]);
    if (Object.keys(env).length === 0) problems.push("credentialEnv: expected at least one environment variable → secret JSON key");
    for (const [k, v] of Object.entries(env)) {
        if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) bad(`credentialEnv.${k}`, k, "an environment variable name (upper case, digits, _)");
        else if (reserved.has(k)) problems.push(`credentialEnv.${k}: reserved for the runner's own settings`);
        if (typeof v !== "string" || !/^[A-Za-z0-9_.-]+$/.test(v)) bad(`credentialEnv.${k}`, v, "a JSON key of the secret (letters, digits, _ . -)");
    }
    if (!/^[a-z][a-z0-9_-]*$/.test(String(args.dbtTarget))) bad("dbtTarget", args.dbtTarget, "a dbt target name");
    const profilesDir = args.profilesDir ?? ".ci";
    if (!/^[A-Za-z0-9_.][A-Za-z0-9_.\/-]*$/.test(profilesDir) || profilesDir.split("/").includes("..")) bad("profilesDir", profilesDir, "a relative directory inside the project");

    const cpu = args.cpu ?? 1024;
    const memory = args.memory ?? 2048;
    if (!(cpu in FARGATE_MEMORY)) bad("cpu", cpu, `one of ${Object.keys(FARGATE_MEMORY).join(", ")}`);
    else if (!FARGATE_MEMORY[cpu].includes(memory)) bad("memory", memory, `a Fargate memory size for cpu ${cpu} (${FARGATE_MEMORY[cpu][0]}-${FARGATE_MEMORY[cpu].at(-1)} MiB)`);
    const logRetentionDays = args.logRetentionDays ?? 90;
    if (!LOG_RETENTION.includes(logRetentionDays)) bad("logRetentionDays", logRetentionDays, `one of ${LOG_RETENTION.join(", ")}`);

    if (!Array.isArray(args.schedules) || args.schedules.length === 0) problems.push("schedules: expected at least one schedule");
    const seen = new Set<string>();
    (args.schedules ?? []).forEach((s, i) => {
        const at = `schedules[${i}]`;
        if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(String(s.name))) bad(`${at}.name`, s.name, "lower-case letters, digits and dashes (at most 41)");
        else if (seen.has(s.name)) problems.push(`${at}.name: ${s.name} is declared more than once`);
        else seen.add(s.name);
        const cron = /^cron\((.+)\)$/.exec(String(s.expression));
        const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(String(s.expression));
        if (cron ? cron[1].trim().split(/\s+/).length !== 6 : !rate) bad(`${at}.expression`, s.expression, "cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>) or rate(<n> <unit>)");
        if (s.timezone !== undefined && !validTimeZone(s.timezone)) bad(`${at}.timezone`, s.timezone, "an IANA time zone such as Europe/Amsterdam");
        const r = s.maximumRetryAttempts;
        if (r !== undefined && (!Number.isInteger(r) || r < 0 || r > 185)) bad(`${at}.maximumRetryAttempts`, r, "an integer from 0 to 185");
        const age = s.maximumEventAgeSeconds;
        if (age !== undefined && (!Number.isInteger(age) || age < 60 || age > 86_400)) bad(`${at}.maximumEventAgeSeconds`, age, "an integer from 60 to 86400");
    });

    const net = args.network ?? ({} as ScheduledRunNetwork);
    if (Array.isArray(net.subnetIds) && (net.subnetIds.length < 1 || net.subnetIds.length > 16)) bad("network.subnetIds", net.subnetIds, "1 to 16 subnets");
    if (Array.isArray(net.securityGroupIds) && (net.securityGroupIds.length < 1 || net.securityGroupIds.length > 5)) bad("network.securityGroupIds", net.securityGroupIds, "1 to 5 security groups");
    if (net.subnetIds === undefined) problems.push("network.subnetIds: required");
    if (net.securityGroupIds === undefined) problems.push("network.securityGroupIds: required");

    const interval = args.runIntervalMinutes;
    const graceMinutes = args.heartbeatGraceMinutes ?? 60;
    if (!Number.isInteger(interval) || interval < 1) bad("runIntervalMinutes", interval, "a whole number of minutes ≥ 1");
    if (!Number.isInteger(graceMinutes) || graceMinutes < 0) bad("heartbeatGraceMinutes", graceMinutes, "a whole number of minutes ≥ 0");
    else if (Number.isInteger(interval) && (interval + graceMinutes) * 60 > 604_800) {
        problems.push(`runIntervalMinutes + heartbeatGraceMinutes = ${interval + graceMinutes}: a CloudWatch alarm looks back at most 7 days (10080 minutes)`);
    }
    (args.subscriptions ?? []).forEach((s, i) => {
        if (!PROTOCOLS.includes(s.protocol)) bad(`subscriptions[${i}].protocol`, s.protocol, PROTOCOLS.join(", "));
        if (typeof s.endpoint === "string" && s.protocol.startsWith("email") && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(s.endpoint)) bad(`subscriptions[${i}].endpoint`, s.endpoint, "an e-mail address");
        if (typeof s.endpoint === "string" && s.protocol === "https" && !/^https:\/\/[^\s]+$/.test(s.endpoint)) bad(`subscriptions[${i}].endpoint`, s.endpoint, "an https:// URL");
    });
    const every = args.freshOnly?.fullBuildEvery ?? (args.freshOnly ? 24 : undefined);
    if (every !== undefined && (!Number.isInteger(every) || every < 1)) bad("freshOnly.fullBuildEvery", every, "a whole number of runs ≥ 1");

    if (problems.length > 0) throw new Error(`ScheduledRuns ${name}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
    return {
        projectPrefix,
        statePrefix,
        profilesDir,
        cpu,
        memory,
        logRetentionDays,
        imageRetentionCount,
        graceMinutes,
        heartbeat: heartbeatPeriods(interval, graceMinutes),
        fullBuildEvery: every,
    };
}

function validTimeZone(tz: string): boolean {
    try {
        new Intl.DateTimeFormat("en-US", { timeZone: tz });
        return /^[A-Za-z_]+(\/[A-Za-z0-9_+-]+)*$/.test(tz);
    } catch {
        return false;
    }
}

type Statement = Record<string, unknown>;
const doc = (statements: Statement[]) => pulumi.jsonStringify({ Version: "2012-10-17", Statement: statements });
const trust = (service: string) => doc([{ Sid: "Service", Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }]);

/**
 * Scheduled dbt runs on ECS Fargate with alerting. Three roles, each scoped to this component's
 * resources: the execution role (pull this repository, read this secret, write this log group),
 * the task role (read the projects and the run state, write the run state) and the scheduler role
 * (run this task definition in this cluster, pass exactly those two roles).
 */
export class ScheduledRuns extends pulumi.ComponentResource {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: ScheduledRunsArgs): void {
        normalise(name, args);
    }

    /** The image repository. */
    public readonly repository: aws.ecr.Repository;
    /** Its URL (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`): the release pushes `<url>:<tag>` here. */
    public readonly repositoryUrl: pulumi.Output<string>;
    /** The runner's Dockerfile (pins dbt, the adapter and awscli); its build context adds `dbt-scheduled-run`. */
    public readonly dockerfile: string;
    /** The entrypoint script `dbt-scheduled-run`. */
    public readonly entrypoint: string;
    /** The ECS cluster. */
    public readonly cluster: aws.ecs.Cluster;
    /** The Fargate task definition. */
    public readonly taskDefinition: aws.ecs.TaskDefinition;
    /** The run logs. */
    public readonly logGroup: aws.cloudwatch.LogGroup;
    /** The alerts topic. */
    public readonly topic: aws.sns.Topic;
    /** Dead-letter queue of the schedules. */
    public readonly deadLetterQueue: aws.sqs.Queue;
    /** Execution, task and scheduler roles. */
    public readonly roles: { execution: aws.iam.Role; task: aws.iam.Role; scheduler: aws.iam.Role };
    /** The schedules by name. */
    public readonly schedules: Record<string, aws.scheduler.Schedule>;
    /** Error alarm, heartbeat alarm, dead-letter alarm. */
    public readonly alarms: { errors: aws.cloudwatch.MetricAlarm; heartbeat: aws.cloudwatch.MetricAlarm; deadLetters: aws.cloudwatch.MetricAlarm };
    /** Keys the release must publish for a pinned projectCommit: the project tarball and its manifest. */
    public readonly projectKeys?: pulumi.Output<{ tarball: string; manifest: string }>;
    /** Without a pinned commit: the pointer the release writes last (`<projectPrefix>current`), which each run follows. */
    public readonly projectPointerKey?: string;
    /** Prefix the release publishes the projects under. */
    public readonly projectPrefix: string;
    /** The image tag the task definition runs (the release builds and pushes exactly this tag). */
    public readonly imageTag: pulumi.Output<string>;
    /** CloudWatch metric namespace of the error and heartbeat metrics. */
    public readonly metricNamespace: string;

    constructor(name: string, args: ScheduledRunsArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validate before super(): a bad argument registers nothing, not even this component.
        const m = normalise(name, args);
        // The declared patterns must parse under the documented syntax (test/log-filter.test.ts runs them on real logs).
        compileFilterPattern(ERROR_FILTER_PATTERN);
        compileFilterPattern(HEARTBEAT_FILTER_PATTERN);
        super("dbt-platform:aws:ScheduledRuns", name, {}, opts);
        const child = { parent: this };
        const tags = args.tags;
        this.metricNamespace = `dbt-platform/${name}`;
        this.dockerfile = renderDockerfile(args.image);
        this.entrypoint = renderEntrypoint();

        this.repository = new aws.ecr.Repository(
            `${name}-repository`,
            {
                // Tags are immutable: a task definition's image reference always means the same image.
                imageTagMutability: "IMMUTABLE",
                imageScanningConfiguration: { scanOnPush: true },
                encryptionConfigurations: [{ encryptionType: "AES256" }],
                tags,
            },
            child,
        );
        this.repositoryUrl = this.repository.repositoryUrl;
        new aws.ecr.LifecyclePolicy(
            `${name}-repository-lifecycle`,
            {
                repository: this.repository.name,
                policy: JSON.stringify({
                    rules: [
                        {
                            rulePriority: 1,
                            description: "expire untagged images after a day",
                            selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 },
                            action: { type: "expire" },
                        },
                        {
                            rulePriority: 2,
                            description: `keep the last ${m.imageRetentionCount} images`,
                            selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: m.imageRetentionCount },
                            action: { type: "expire" },
                        },
                    ],
                }),
            },
            child,
        );

        this.logGroup = new aws.cloudwatch.LogGroup(`${name}-logs`, { retentionInDays: m.logRetentionDays, tags }, child);
        this.cluster = new aws.ecs.Cluster(`${name}-cluster`, { settings: [{ name: "containerInsights", value: "enabled" }], tags }, child);

        const bucketArn = pulumi.output(args.artifactsBucketArn);
        const secretArn = pulumi.output(args.credentialSecretArn);
        const logGroupArn = this.logGroup.arn;

        const execution = new aws.iam.Role(`${name}-execution`, { description: `dbt scheduled runs ${name}: ECS pulls the image, reads the credentials, writes logs`, assumeRolePolicy: trust("ecs-tasks.amazonaws.com"), tags }, child);
        new aws.iam.RolePolicy(
            `${name}-execution-policy`,
            {
                role: execution.id,
                policy: doc([
                    // GetAuthorizationToken has no resource-level permissions: AWS requires "*" for it.
                    { Sid: "EcrToken", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: "*" },
                    { Sid: "PullImage", Effect: "Allow", Action: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], Resource: [this.repository.arn] },
                    { Sid: "ReadCredentials", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [secretArn] },
                    ...(args.secretsKmsKeyArn !== undefined
                        ? [{ Sid: "DecryptCredentials", Effect: "Allow", Action: ["kms:Decrypt"], Resource: [args.secretsKmsKeyArn], Condition: { StringLike: { "kms:ViaService": "secretsmanager.*.amazonaws.com" } } }]
                        : []),
                    // awslogs names streams <prefix>/<container>/<task id>: only this container's streams.
                    { Sid: "WriteLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: [pulumi.interpolate`${logGroupArn}:log-stream:${LOG_STREAM_PREFIX}/${CONTAINER_NAME}/*`] },
                ]),
            },
            child,
        );

        const task = new aws.iam.Role(`${name}-task`, { description: `dbt scheduled runs ${name}: the running task reads the project and writes run artifacts`, assumeRolePolicy: trust("ecs-tasks.amazonaws.com"), tags }, child);
        new aws.iam.RolePolicy(
            `${name}-task-policy`,
            {
                role: task.id,
                policy: doc([
                    {
                        Sid: "ListProjectsAndState",
                        Effect: "Allow",
                        Action: ["s3:ListBucket"],
                        Resource: [bucketArn],
                        Condition: { StringLike: { "s3:prefix": [`${m.projectPrefix}*`, `${m.statePrefix}*`] } },
                    },
                    { Sid: "ReadProjects", Effect: "Allow", Action: ["s3:GetObject"], Resource: [pulumi.interpolate`${bucketArn}/${m.projectPrefix}*`] },
                    { Sid: "ReadWriteRunState", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: [pulumi.interpolate`${bucketArn}/${m.statePrefix}*`] },
                    ...(args.artifactsKmsKeyArn !== undefined
                        ? [{ Sid: "UseBucketKey", Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: [args.artifactsKmsKeyArn], Condition: { StringLike: { "kms:ViaService": "s3.*.amazonaws.com" } } }]
                        : []),
                ]),
            },
            child,
        );

        this.projectPrefix = m.projectPrefix;
        this.imageTag = pulumi.output(args.imageTag ?? runnerImageTag(args.image));
        let project: Record<string, pulumi.Input<string>>;
        if (args.projectCommit !== undefined) {
            const projectKeys = pulumi.output(args.projectCommit).apply((commit) => ({
                tarball: projectTarballKey(m.projectPrefix, commit),
                manifest: projectManifestKey(m.projectPrefix, commit),
            }));
            this.projectKeys = projectKeys;
            project = { [RUNNER_ENV.projectKey]: projectKeys.tarball, [RUNNER_ENV.manifestKey]: projectKeys.manifest };
        } else {
            // Releases move the pointer; the task definition (and so `pulumi up`) does not change per dbt release.
            this.projectPointerKey = projectPointerKey(m.projectPrefix);
            project = { [RUNNER_ENV.projectPrefix]: m.projectPrefix };
        }

        const environment: Record<string, pulumi.Input<string>> = {
            [RUNNER_ENV.bucket]: args.artifactsBucketName,
            ...project,
            [RUNNER_ENV.statePrefix]: m.statePrefix,
            [RUNNER_ENV.target]: args.dbtTarget,
            [RUNNER_ENV.profilesDir]: m.profilesDir,
            [RUNNER_ENV.mode]: m.fullBuildEvery !== undefined ? "fresher" : "full",
            ...(m.fullBuildEvery !== undefined ? { [RUNNER_ENV.fullBuildEvery]: String(m.fullBuildEvery) } : {}),
            // Also every dbt call the project's own hooks might make: JSON logs, no colour codes.
            DBT_LOG_FORMAT: "json",
            DBT_USE_COLORS: "false",
            DBT_SEND_ANONYMOUS_USAGE_STATS: "false",
        };
        const containerDefinitions = pulumi
            .all([
                this.repository.repositoryUrl,
                this.imageTag,
                this.logGroup.name,
                pulumi.output(args.region),
                secretArn,
                pulumi.all(environment),
            ])
            .apply(([url, tag, logGroup, region, arn, env]) =>
                JSON.stringify([
                    {
                        name: CONTAINER_NAME,
                        image: `${url}:${tag}`,
                        essential: true,
                        // Container-level cpu/memory as well as the task's: RunTask validates them (moto requires memory here).
                        cpu: m.cpu,
                        memory: m.memory,
                        entryPoint: [ENTRYPOINT_PATH],
                        environment: Object.keys(env)
                            .sort()
                            .map((k) => ({ name: k, value: env[k] })),
                        // `<arn>:<json-key>::` = that key of the current version; ECS injects it at start, never in the definition.
                        secrets: Object.keys(args.credentialEnv)
                            .sort()
                            .map((k) => ({ name: k, valueFrom: `${arn}:${args.credentialEnv[k]}::` })),
                        logConfiguration: {
                            logDriver: "awslogs",
                            options: { "awslogs-group": logGroup, "awslogs-region": region, "awslogs-stream-prefix": LOG_STREAM_PREFIX },
                        },
                    },
                ]),
            );
        this.taskDefinition = new aws.ecs.TaskDefinition(
            `${name}-task-definition`,
            {
                family: name,
                requiresCompatibilities: ["FARGATE"],
                networkMode: "awsvpc",
                cpu: String(m.cpu),
                memory: String(m.memory),
                runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" },
                executionRoleArn: execution.arn,
                taskRoleArn: task.arn,
                containerDefinitions,
                tags,
            },
            child,
        );

        this.deadLetterQueue = new aws.sqs.Queue(`${name}-dlq`, { messageRetentionSeconds: 1_209_600, sqsManagedSseEnabled: true, tags }, child);

        const scheduler = new aws.iam.Role(`${name}-scheduler`, { description: `dbt scheduled runs ${name}: EventBridge Scheduler starts the task`, assumeRolePolicy: trust("scheduler.amazonaws.com"), tags }, child);
        new aws.iam.RolePolicy(
            `${name}-scheduler-policy`,
            {
                role: scheduler.id,
                policy: doc([
                    {
                        Sid: "RunTask",
                        Effect: "Allow",
                        Action: ["ecs:RunTask"],
                        Resource: [this.taskDefinition.arn],
                        Condition: { ArnEquals: { "ecs:cluster": this.cluster.arn } },
                    },
                    { Sid: "PassTaskRoles", Effect: "Allow", Action: ["iam:PassRole"], Resource: [execution.arn, task.arn], Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } } },
                    { Sid: "DeadLetters", Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [this.deadLetterQueue.arn] },
                ]),
            },
            child,
        );
        this.roles = { execution, task, scheduler };

        this.schedules = {};
        for (const s of args.schedules) {
            this.schedules[s.name] = new aws.scheduler.Schedule(
                `${name}-${s.name}`,
                {
                    description: `dbt scheduled run ${name}/${s.name}`,
                    scheduleExpression: s.expression,
                    scheduleExpressionTimezone: s.timezone ?? "UTC",
                    flexibleTimeWindow: { mode: "OFF" },
                    target: {
                        arn: this.cluster.arn,
                        roleArn: scheduler.arn,
                        ecsParameters: {
                            taskDefinitionArn: this.taskDefinition.arn,
                            launchType: "FARGATE",
                            taskCount: 1,
                            networkConfiguration: {
                                subnets: args.network.subnetIds,
                                securityGroups: args.network.securityGroupIds,
                                assignPublicIp: args.network.assignPublicIp ?? false,
                            },
                        },
                        retryPolicy: { maximumRetryAttempts: s.maximumRetryAttempts ?? 2, maximumEventAgeInSeconds: s.maximumEventAgeSeconds ?? 3600 },
                        deadLetterConfig: { arn: this.deadLetterQueue.arn },
                    },
                },
                // The role's policy must exist before the first invocation can run the task.
                { parent: this, dependsOn: [scheduler] },
            );
        }

        // Alerting.
        this.topic = new aws.sns.Topic(`${name}-alerts`, { tags }, child);
        (args.subscriptions ?? []).forEach((s, i) => {
            new aws.sns.TopicSubscription(`${name}-alerts-${i}`, { topic: this.topic.arn, protocol: s.protocol, endpoint: s.endpoint }, child);
        });

        new aws.cloudwatch.LogMetricFilter(
            `${name}-errors`,
            {
                logGroupName: this.logGroup.name,
                pattern: ERROR_FILTER_PATTERN,
                metricTransformation: { name: "DbtErrors", namespace: this.metricNamespace, value: "1", unit: "Count" },
            },
            child,
        );
        new aws.cloudwatch.LogMetricFilter(
            `${name}-heartbeat`,
            {
                logGroupName: this.logGroup.name,
                pattern: HEARTBEAT_FILTER_PATTERN,
                metricTransformation: { name: "DbtRunsCompleted", namespace: this.metricNamespace, value: "1", unit: "Count" },
            },
            child,
        );
        const actions = [this.topic.arn];
        const errors = new aws.cloudwatch.MetricAlarm(
            `${name}-errors-alarm`,
            {
                alarmDescription: `dbt scheduled run ${name} logged an error event ({ $.info.level = "error" })`,
                namespace: this.metricNamespace,
                metricName: "DbtErrors",
                statistic: "Sum",
                period: 300,
                evaluationPeriods: 1,
                threshold: 1,
                comparisonOperator: "GreaterThanOrEqualToThreshold",
                // No error events is good news: the metric only has data when errors were logged.
                treatMissingData: "notBreaching",
                alarmActions: actions,
                tags,
            },
            child,
        );
        const heartbeat = new aws.cloudwatch.MetricAlarm(
            `${name}-heartbeat-alarm`,
            {
                alarmDescription: `no dbt scheduled run ${name} completed within ${args.runIntervalMinutes} + ${m.graceMinutes} minutes`,
                namespace: this.metricNamespace,
                metricName: "DbtRunsCompleted",
                statistic: "Sum",
                period: m.heartbeat.period,
                evaluationPeriods: m.heartbeat.evaluationPeriods,
                datapointsToAlarm: m.heartbeat.evaluationPeriods,
                threshold: 1,
                comparisonOperator: "LessThanThreshold",
                // No data is exactly the failure this alarm exists for.
                treatMissingData: "breaching",
                alarmActions: actions,
                okActions: actions,
                tags,
            },
            child,
        );
        const deadLetters = new aws.cloudwatch.MetricAlarm(
            `${name}-dead-letters-alarm`,
            {
                alarmDescription: `EventBridge Scheduler could not start dbt scheduled run ${name} (dead-letter queue)`,
                namespace: "AWS/SQS",
                metricName: "ApproximateNumberOfMessagesVisible",
                dimensions: { QueueName: this.deadLetterQueue.name },
                statistic: "Maximum",
                period: 300,
                evaluationPeriods: 1,
                threshold: 1,
                comparisonOperator: "GreaterThanOrEqualToThreshold",
                treatMissingData: "notBreaching",
                alarmActions: actions,
                tags,
            },
            child,
        );
        this.alarms = { errors, heartbeat, deadLetters };

        const stopped = new aws.cloudwatch.EventRule(
            `${name}-task-failed`,
            {
                description: `dbt scheduled run ${name}: task stopped with a non-zero exit code`,
                eventPattern: pulumi.jsonStringify({
                    source: ["aws.ecs"],
                    "detail-type": ["ECS Task State Change"],
                    detail: {
                        clusterArn: [this.cluster.arn],
                        lastStatus: ["STOPPED"],
                        containers: { name: [CONTAINER_NAME], exitCode: [{ "anything-but": 0 }] },
                    },
                }),
                tags,
            },
            child,
        );
        new aws.cloudwatch.EventTarget(`${name}-task-failed-target`, { rule: stopped.name, arn: this.topic.arn }, child);
        new aws.sns.TopicPolicy(
            `${name}-alerts-policy`,
            {
                arn: this.topic.arn,
                // Only this rule and these alarms may publish.
                policy: doc([
                    { Sid: "TaskFailedRule", Effect: "Allow", Principal: { Service: "events.amazonaws.com" }, Action: "sns:Publish", Resource: this.topic.arn, Condition: { ArnEquals: { "aws:SourceArn": stopped.arn } } },
                    {
                        Sid: "Alarms",
                        Effect: "Allow",
                        Principal: { Service: "cloudwatch.amazonaws.com" },
                        Action: "sns:Publish",
                        Resource: this.topic.arn,
                        Condition: { ArnEquals: { "aws:SourceArn": [errors.arn, heartbeat.arn, deadLetters.arn] } },
                    },
                ]),
            },
            child,
        );

        this.registerOutputs({
            repositoryUrl: this.repositoryUrl,
            clusterArn: this.cluster.arn,
            taskDefinitionArn: this.taskDefinition.arn,
            logGroupName: this.logGroup.name,
            topicArn: this.topic.arn,
            imageTag: this.imageTag,
            projectKeys: this.projectKeys,
            projectPointerKey: this.projectPointerKey,
        });
    }
}
