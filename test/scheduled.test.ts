/** Unit tests under Pulumi mocks: ScheduledRuns' image, task definition, every policy document, the schedules, filters and alarms. */
import assert from "assert";
import { ScheduledRuns, ScheduledRunsArgs, heartbeatPeriods } from "../components/aws/scheduledRuns";
import { spawnSync } from "child_process";
import { buildImageLines, publishProjectLines, renderEntrypoint, runnerImageTag } from "../components/aws/scheduled/runner";
import { find, Recorded } from "../scripts/offline";
import { wildcardFindings } from "../policy/policies";
import { ACCOUNT, installAwsMocks, REGION } from "./support/awsMocks";

const T = {
    repo: "aws:ecr/repository:Repository",
    lifecycle: "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    logGroup: "aws:cloudwatch/logGroup:LogGroup",
    cluster: "aws:ecs/cluster:Cluster",
    taskDef: "aws:ecs/taskDefinition:TaskDefinition",
    role: "aws:iam/role:Role",
    rolePolicy: "aws:iam/rolePolicy:RolePolicy",
    schedule: "aws:scheduler/schedule:Schedule",
    queue: "aws:sqs/queue:Queue",
    topic: "aws:sns/topic:Topic",
    subscription: "aws:sns/topicSubscription:TopicSubscription",
    topicPolicy: "aws:sns/topicPolicy:TopicPolicy",
    metricFilter: "aws:cloudwatch/logMetricFilter:LogMetricFilter",
    alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
    rule: "aws:cloudwatch/eventRule:EventRule",
    target: "aws:cloudwatch/eventTarget:EventTarget",
};
const BUCKET_ARN = "arn:aws:s3:::acme-dbt-artifacts";
const SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:dbt/prod/scheduler-AbCdEf`;
const KMS = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const arn = (service: string, rest: string) => `arn:aws:${service}:${REGION}:${ACCOUNT}:${rest}`;
const roleArn = (n: string) => `arn:aws:iam::${ACCOUNT}:role/${n}`;

const args: ScheduledRunsArgs = {
    region: REGION,
    artifactsBucketName: "acme-dbt-artifacts",
    artifactsBucketArn: BUCKET_ARN,
    projectCommit: COMMIT,
    image: { pythonVersion: "3.11", dbtVersion: "1.11.16", adapterPackage: "dbt-postgres", adapterVersion: "1.11.0", awscliVersion: "1.46.2" },
    imageTag: "1.11.16-0123456",
    credentialSecretArn: SECRET,
    credentialEnv: {
        DBT_SCHEDULER_HOST: "host",
        DBT_SCHEDULER_PORT: "port",
        DBT_SCHEDULER_USER: "user",
        DBT_SCHEDULER_PASSWORD: "password",
        DBT_SCHEDULER_DBNAME: "dbname",
        DBT_SCHEDULER_SCHEMA: "schema",
    },
    dbtTarget: "scheduler",
    schedules: [
        { name: "hourly", expression: "cron(15 * * * ? *)", timezone: "Europe/Amsterdam" },
        { name: "nightly", expression: "cron(0 3 * * ? *)", maximumRetryAttempts: 5, maximumEventAgeSeconds: 7200 },
    ],
    network: { subnetIds: ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], securityGroupIds: ["sg-0123abcd"], assignPublicIp: false },
    runIntervalMinutes: 60,
    heartbeatGraceMinutes: 30,
    subscriptions: [{ protocol: "email", endpoint: "data-alerts@acme.example" }],
};

async function build(a: ScheduledRunsArgs = args, name = "prod-runs") {
    const { resources: regs, settle } = await installAwsMocks("prod");
    const runs = new ScheduledRuns(name, a);
    await settle();
    return { regs, runs };
}
const policyOf = (regs: Recorded[], n: string) => JSON.parse(find(regs, T.rolePolicy, `${n}-policy`).inputs.policy);
const trustOf = (regs: Recorded[], n: string) => JSON.parse(find(regs, T.role, n).inputs.assumeRolePolicy);

describe("ScheduledRuns under mocks", () => {
    it("registers the whole chain, every child parented to the component", async () => {
        const { regs } = await build();
        const component = regs.find((r) => r.type === "dbt-platform:aws:ScheduledRuns")!;
        const children = regs.filter((r) => r.parent === component.urn).map((r) => `${r.type} ${r.name}`).sort();
        assert.deepStrictEqual(children, [
            `${T.alarm} prod-runs-dead-letters-alarm`,
            `${T.alarm} prod-runs-errors-alarm`,
            `${T.alarm} prod-runs-heartbeat-alarm`,
            `${T.rule} prod-runs-task-failed`,
            `${T.target} prod-runs-task-failed-target`,
            `${T.lifecycle} prod-runs-repository-lifecycle`,
            `${T.metricFilter} prod-runs-errors`,
            `${T.metricFilter} prod-runs-heartbeat`,
            `${T.logGroup} prod-runs-logs`,
            `${T.cluster} prod-runs-cluster`,
            `${T.taskDef} prod-runs-task-definition`,
            `${T.repo} prod-runs-repository`,
            `${T.role} prod-runs-execution`,
            `${T.role} prod-runs-scheduler`,
            `${T.role} prod-runs-task`,
            `${T.rolePolicy} prod-runs-execution-policy`,
            `${T.rolePolicy} prod-runs-scheduler-policy`,
            `${T.rolePolicy} prod-runs-task-policy`,
            `${T.schedule} prod-runs-hourly`,
            `${T.schedule} prod-runs-nightly`,
            `${T.subscription} prod-runs-alerts-0`,
            `${T.topic} prod-runs-alerts`,
            `${T.topicPolicy} prod-runs-alerts-policy`,
            `${T.queue} prod-runs-dlq`,
        ].sort());
    });

    it("ECR: immutable tags, scan on push, lifecycle keeps the last 20 and expires untagged images", async () => {
        const { regs, runs } = await build();
        const repo = find(regs, T.repo, "prod-runs-repository").inputs;
        assert.strictEqual(repo.imageTagMutability, "IMMUTABLE");
        assert.deepStrictEqual(repo.imageScanningConfiguration, { scanOnPush: true });
        assert.deepStrictEqual(JSON.parse(find(regs, T.lifecycle, "prod-runs-repository-lifecycle").inputs.policy), {
            rules: [
                { rulePriority: 1, description: "expire untagged images after a day", selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 }, action: { type: "expire" } },
                { rulePriority: 2, description: "keep the last 20 images", selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 20 }, action: { type: "expire" } },
            ],
        });
        assert.strictEqual(
            runs.dockerfile,
            [
                "# Scheduled dbt runs (dbt-platform ScheduledRuns). Build context: this file and dbt-scheduled-run.",
                "FROM python:3.11-slim",
                "RUN pip install --no-cache-dir dbt-core==1.11.16 dbt-postgres==1.11.0 awscli==1.46.2 \\",
                "    && useradd --create-home --uid 10001 dbt",
                "COPY --chmod=0755 dbt-scheduled-run /usr/local/bin/dbt-scheduled-run",
                "# No credentials or project in the image: secrets come from the task definition, the project from S3.",
                "USER dbt",
                "WORKDIR /home/dbt",
                "ENV DBT_SEND_ANONYMOUS_USAGE_STATS=false",
                'ENTRYPOINT ["/usr/local/bin/dbt-scheduled-run"]',
                "",
            ].join("\n"),
        );
        assert.strictEqual(runs.entrypoint, renderEntrypoint());
        assert.match(runs.entrypoint, /dbt --log-format json --no-use-colors "\$@"/);
    });

    it("task definition: Fargate, awsvpc, secrets as <arn>:<key>::, awslogs with retention, container-level memory", async () => {
        const { regs } = await build();
        const td = find(regs, T.taskDef, "prod-runs-task-definition").inputs;
        assert.deepStrictEqual(
            { family: td.family, requiresCompatibilities: td.requiresCompatibilities, networkMode: td.networkMode, cpu: td.cpu, memory: td.memory, runtimePlatform: td.runtimePlatform, executionRoleArn: td.executionRoleArn, taskRoleArn: td.taskRoleArn },
            { family: "prod-runs", requiresCompatibilities: ["FARGATE"], networkMode: "awsvpc", cpu: "1024", memory: "2048", runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" }, executionRoleArn: roleArn("prod-runs-execution"), taskRoleArn: roleArn("prod-runs-task") },
        );
        const logGroup = "/prod-runs-logs";
        assert.deepStrictEqual(JSON.parse(td.containerDefinitions), [
            {
                name: "dbt",
                image: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/prod-runs-repository:1.11.16-0123456`,
                essential: true,
                cpu: 1024,
                memory: 2048,
                entryPoint: ["/usr/local/bin/dbt-scheduled-run"],
                environment: [
                    { name: "DBT_ARTIFACTS_BUCKET", value: "acme-dbt-artifacts" },
                    { name: "DBT_LOG_FORMAT", value: "json" },
                    { name: "DBT_PROFILES_DIR", value: ".ci" },
                    { name: "DBT_PROJECT_KEY", value: `projects/${COMMIT}.tar.gz` },
                    { name: "DBT_PROJECT_MANIFEST_KEY", value: `projects/${COMMIT}/manifest.json` },
                    { name: "DBT_RUNNER_MODE", value: "full" },
                    { name: "DBT_RUN_STATE_PREFIX", value: "artifacts/scheduled/" },
                    { name: "DBT_SEND_ANONYMOUS_USAGE_STATS", value: "false" },
                    { name: "DBT_TARGET", value: "scheduler" },
                    { name: "DBT_USE_COLORS", value: "false" },
                ],
                secrets: [
                    { name: "DBT_SCHEDULER_DBNAME", valueFrom: `${SECRET}:dbname::` },
                    { name: "DBT_SCHEDULER_HOST", valueFrom: `${SECRET}:host::` },
                    { name: "DBT_SCHEDULER_PASSWORD", valueFrom: `${SECRET}:password::` },
                    { name: "DBT_SCHEDULER_PORT", valueFrom: `${SECRET}:port::` },
                    { name: "DBT_SCHEDULER_SCHEMA", valueFrom: `${SECRET}:schema::` },
                    { name: "DBT_SCHEDULER_USER", valueFrom: `${SECRET}:user::` },
                ],
                logConfiguration: { logDriver: "awslogs", options: { "awslogs-group": logGroup, "awslogs-region": REGION, "awslogs-stream-prefix": "dbt" } },
            },
        ]);
        assert.strictEqual(find(regs, T.logGroup, "prod-runs-logs").inputs.retentionInDays, 90);
        // No credential value anywhere in the definition: only references.
        assert.doesNotMatch(td.containerDefinitions, /password"\s*,\s*"value"/);
    });

    it("freshOnly: the task runs in fresher mode with the full-build period", async () => {
        const { regs } = await build({ ...args, freshOnly: { fullBuildEvery: 12 } });
        const env = JSON.parse(find(regs, T.taskDef, "prod-runs-task-definition").inputs.containerDefinitions)[0].environment;
        assert.deepStrictEqual(env.filter((e: any) => e.name.startsWith("DBT_RUNNER_")), [
            { name: "DBT_RUNNER_FULL_BUILD_EVERY", value: "12" },
            { name: "DBT_RUNNER_MODE", value: "fresher" },
        ]);
    });

    it("without a pinned commit the task follows <projectPrefix>current; without a tag it runs runnerImageTag(image)", async () => {
        const { projectCommit: _c, imageTag: _t, ...unpinned } = args;
        const { regs, runs } = await build(unpinned);
        const [c] = JSON.parse(find(regs, T.taskDef, "prod-runs-task-definition").inputs.containerDefinitions);
        const names = c.environment.map((e: any) => e.name);
        assert.ok(!names.includes("DBT_PROJECT_KEY") && !names.includes("DBT_PROJECT_MANIFEST_KEY"), names.join(", "));
        assert.deepStrictEqual(c.environment.find((e: any) => e.name === "DBT_PROJECT_PREFIX"), { name: "DBT_PROJECT_PREFIX", value: "projects/" });
        assert.strictEqual(runs.projectPointerKey, "projects/current");
        assert.strictEqual(runs.projectKeys, undefined);
        const tag = runnerImageTag(args.image);
        assert.match(tag, /^dbt1\.11\.16-[0-9a-f]{12}$/);
        assert.ok(String(c.image).endsWith(`:${tag}`), c.image);
        // The tag follows what the image holds: another pin is another tag; the same spec the same tag.
        assert.strictEqual(runnerImageTag({ ...args.image }), tag);
        assert.notStrictEqual(runnerImageTag({ ...args.image, adapterVersion: "1.11.1" }), tag);
    });

    it("IAM: exact trust and permission documents of the three roles", async () => {
        const { regs } = await build({ ...args, secretsKmsKeyArn: KMS, artifactsKmsKeyArn: KMS });
        const service = (s: string) => ({ Version: "2012-10-17", Statement: [{ Sid: "Service", Effect: "Allow", Principal: { Service: s }, Action: "sts:AssumeRole" }] });
        assert.deepStrictEqual(trustOf(regs, "prod-runs-execution"), service("ecs-tasks.amazonaws.com"));
        assert.deepStrictEqual(trustOf(regs, "prod-runs-task"), service("ecs-tasks.amazonaws.com"));
        assert.deepStrictEqual(trustOf(regs, "prod-runs-scheduler"), service("scheduler.amazonaws.com"));
        assert.deepStrictEqual(policyOf(regs, "prod-runs-execution"), {
            Version: "2012-10-17",
            Statement: [
                { Sid: "EcrToken", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: "*" },
                { Sid: "PullImage", Effect: "Allow", Action: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], Resource: [arn("ecr", "repository/prod-runs-repository")] },
                { Sid: "ReadCredentials", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [SECRET] },
                { Sid: "DecryptCredentials", Effect: "Allow", Action: ["kms:Decrypt"], Resource: [KMS], Condition: { StringLike: { "kms:ViaService": "secretsmanager.*.amazonaws.com" } } },
                { Sid: "WriteLogs", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: [arn("logs", "log-group:/prod-runs-logs:log-stream:dbt/dbt/*")] },
            ],
        });
        assert.deepStrictEqual(policyOf(regs, "prod-runs-task"), {
            Version: "2012-10-17",
            Statement: [
                { Sid: "ListProjectsAndState", Effect: "Allow", Action: ["s3:ListBucket"], Resource: [BUCKET_ARN], Condition: { StringLike: { "s3:prefix": ["projects/*", "artifacts/scheduled/*"] } } },
                { Sid: "ReadProjects", Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${BUCKET_ARN}/projects/*`] },
                { Sid: "ReadWriteRunState", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: [`${BUCKET_ARN}/artifacts/scheduled/*`] },
                { Sid: "UseBucketKey", Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: [KMS], Condition: { StringLike: { "kms:ViaService": "s3.*.amazonaws.com" } } },
            ],
        });
        assert.deepStrictEqual(policyOf(regs, "prod-runs-scheduler"), {
            Version: "2012-10-17",
            Statement: [
                { Sid: "RunTask", Effect: "Allow", Action: ["ecs:RunTask"], Resource: [arn("ecs", "task-definition/prod-runs:1")], Condition: { ArnEquals: { "ecs:cluster": arn("ecs", "cluster/prod-runs-cluster") } } },
                { Sid: "PassTaskRoles", Effect: "Allow", Action: ["iam:PassRole"], Resource: [roleArn("prod-runs-execution"), roleArn("prod-runs-task")], Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } } },
                { Sid: "DeadLetters", Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [arn("sqs", "prod-runs-dlq")] },
            ],
        });
        // The policy pack's no-wildcard-iam passes all three: the execution policy's two wildcards are the narrow
        // exceptions ECS needs (GetAuthorizationToken has no resource-level permissions; stream names carry the task id).
        assert.deepStrictEqual(wildcardFindings(policyOf(regs, "prod-runs-task").Statement), []);
        assert.deepStrictEqual(wildcardFindings(policyOf(regs, "prod-runs-scheduler").Statement), []);
        assert.deepStrictEqual(wildcardFindings(policyOf(regs, "prod-runs-execution").Statement), []);
        // Without keys, no KMS statement at all.
        const plain = await build();
        assert.deepStrictEqual(policyOf(plain.regs, "prod-runs-execution").Statement.map((s: any) => s.Sid), ["EcrToken", "PullImage", "ReadCredentials", "WriteLogs"]);
        assert.deepStrictEqual(policyOf(plain.regs, "prod-runs-task").Statement.map((s: any) => s.Sid), ["ListProjectsAndState", "ReadProjects", "ReadWriteRunState"]);
    });

    it("schedules: cron and time zone, Fargate RunTask in the given subnets, retry policy, dead-letter queue", async () => {
        const { regs } = await build();
        const network = { subnets: ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], securityGroups: ["sg-0123abcd"], assignPublicIp: false };
        const target = (retry: object) => ({
            arn: arn("ecs", "cluster/prod-runs-cluster"),
            roleArn: roleArn("prod-runs-scheduler"),
            ecsParameters: { taskDefinitionArn: arn("ecs", "task-definition/prod-runs:1"), launchType: "FARGATE", taskCount: 1, networkConfiguration: network },
            retryPolicy: retry,
            deadLetterConfig: { arn: arn("sqs", "prod-runs-dlq") },
        });
        const hourly = find(regs, T.schedule, "prod-runs-hourly");
        assert.deepStrictEqual(hourly.inputs, {
            description: "dbt scheduled run prod-runs/hourly",
            scheduleExpression: "cron(15 * * * ? *)",
            scheduleExpressionTimezone: "Europe/Amsterdam",
            flexibleTimeWindow: { mode: "OFF" },
            target: target({ maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 }),
        });
        const nightly = find(regs, T.schedule, "prod-runs-nightly").inputs;
        assert.strictEqual(nightly.scheduleExpressionTimezone, "UTC");
        assert.deepStrictEqual(nightly.target, target({ maximumRetryAttempts: 5, maximumEventAgeInSeconds: 7200 }));
        // The schedule waits for the scheduler role (its policy is its sibling; the role's policy is read at invocation).
        assert.ok(hourly.dependencies.includes(find(regs, T.role, "prod-runs-scheduler").urn));
        assert.deepStrictEqual(find(regs, T.queue, "prod-runs-dlq").inputs, { messageRetentionSeconds: 1209600, sqsManagedSseEnabled: true });
    });

    it("alerting: dbt 1.11 filters, error/heartbeat/dead-letter alarms, the STOPPED rule and who may publish", async () => {
        const { regs } = await build();
        const topicArn = arn("sns", "prod-runs-alerts");
        assert.deepStrictEqual(find(regs, T.subscription, "prod-runs-alerts-0").inputs, { topic: topicArn, protocol: "email", endpoint: "data-alerts@acme.example" });
        assert.deepStrictEqual(find(regs, T.metricFilter, "prod-runs-errors").inputs, {
            logGroupName: "/prod-runs-logs",
            pattern: '{ $.info.level = "error" }',
            metricTransformation: { name: "DbtErrors", namespace: "dbt-platform/prod-runs", value: "1", unit: "Count" },
        });
        assert.deepStrictEqual(find(regs, T.metricFilter, "prod-runs-heartbeat").inputs, {
            logGroupName: "/prod-runs-logs",
            pattern: '{ $.info.name = "StatsLine" || $.info.name = "NothingToDo" }',
            metricTransformation: { name: "DbtRunsCompleted", namespace: "dbt-platform/prod-runs", value: "1", unit: "Count" },
        });
        const alarm = (n: string) => find(regs, T.alarm, n).inputs;
        assert.deepStrictEqual(alarm("prod-runs-errors-alarm"), {
            alarmDescription: 'dbt scheduled run prod-runs logged an error event ({ $.info.level = "error" })',
            namespace: "dbt-platform/prod-runs", metricName: "DbtErrors", statistic: "Sum", period: 300, evaluationPeriods: 1, threshold: 1,
            comparisonOperator: "GreaterThanOrEqualToThreshold", treatMissingData: "notBreaching", alarmActions: [topicArn],
        });
        assert.deepStrictEqual(alarm("prod-runs-heartbeat-alarm"), {
            alarmDescription: "no dbt scheduled run prod-runs completed within 60 + 30 minutes",
            namespace: "dbt-platform/prod-runs", metricName: "DbtRunsCompleted", statistic: "Sum", period: 5400, evaluationPeriods: 1, datapointsToAlarm: 1, threshold: 1,
            comparisonOperator: "LessThanThreshold", treatMissingData: "breaching", alarmActions: [topicArn], okActions: [topicArn],
        });
        assert.deepStrictEqual(alarm("prod-runs-dead-letters-alarm"), {
            alarmDescription: "EventBridge Scheduler could not start dbt scheduled run prod-runs (dead-letter queue)",
            namespace: "AWS/SQS", metricName: "ApproximateNumberOfMessagesVisible", dimensions: { QueueName: "prod-runs-dlq" }, statistic: "Maximum", period: 300, evaluationPeriods: 1, threshold: 1,
            comparisonOperator: "GreaterThanOrEqualToThreshold", treatMissingData: "notBreaching", alarmActions: [topicArn],
        });
        assert.deepStrictEqual(JSON.parse(find(regs, T.rule, "prod-runs-task-failed").inputs.eventPattern), {
            source: ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            detail: { clusterArn: [arn("ecs", "cluster/prod-runs-cluster")], lastStatus: ["STOPPED"], containers: { name: ["dbt"], exitCode: [{ "anything-but": 0 }] } },
        });
        assert.deepStrictEqual(find(regs, T.target, "prod-runs-task-failed-target").inputs, { rule: "prod-runs-task-failed", arn: topicArn });
        assert.deepStrictEqual(JSON.parse(find(regs, T.topicPolicy, "prod-runs-alerts-policy").inputs.policy), {
            Version: "2012-10-17",
            Statement: [
                { Sid: "TaskFailedRule", Effect: "Allow", Principal: { Service: "events.amazonaws.com" }, Action: "sns:Publish", Resource: topicArn, Condition: { ArnEquals: { "aws:SourceArn": arn("events", "rule/prod-runs-task-failed") } } },
                {
                    Sid: "Alarms", Effect: "Allow", Principal: { Service: "cloudwatch.amazonaws.com" }, Action: "sns:Publish", Resource: topicArn,
                    Condition: { ArnEquals: { "aws:SourceArn": ["errors", "heartbeat", "dead-letters"].map((a) => arn("cloudwatch", `alarm:prod-runs-${a}-alarm`)) } },
                },
            ],
        });
    });

    it("heartbeat windows beyond a day use hourly periods, all of which must be empty", () => {
        assert.deepStrictEqual(heartbeatPeriods(60, 30), { period: 5400, evaluationPeriods: 1 });
        assert.deepStrictEqual(heartbeatPeriods(1440, 0), { period: 86400, evaluationPeriods: 1 });
        assert.deepStrictEqual(heartbeatPeriods(1440, 60), { period: 3600, evaluationPeriods: 25 });
    });

    it("validate() names every bad field before anything registers", async () => {
        const { resources: regs } = await installAwsMocks("prod");
        const bad: ScheduledRunsArgs = {
            ...args,
            projectPrefix: "projects",
            statePrefix: "projects/state/",
            projectCommit: "main",
            image: { ...args.image, dbtVersion: "1.11", adapterPackage: "postgres" },
            credentialEnv: { "db-pass": "password", DBT_TARGET: "user" },
            cpu: 512,
            memory: 8192,
            logRetentionDays: 10,
            schedules: [
                { name: "Hourly", expression: "cron(15 * * * *)", timezone: "Mars/Olympus" },
                { name: "n", expression: "rate(1 fortnight)", maximumRetryAttempts: 200, maximumEventAgeSeconds: 10 },
            ],
            network: { subnetIds: [], securityGroupIds: [] },
            runIntervalMinutes: 10_000,
            heartbeatGraceMinutes: 500,
            subscriptions: [{ protocol: "email", endpoint: "nobody" }],
            freshOnly: { fullBuildEvery: 0 },
        };
        let message = "";
        try {
            ScheduledRuns.validate("prod-runs", bad);
        } catch (e) {
            message = (e as Error).message;
        }
        for (const field of [
            "projectPrefix = \"projects\"", "projectCommit = \"main\"", "image.dbtVersion", "image.adapterPackage", "credentialEnv.db-pass", "credentialEnv.DBT_TARGET: reserved",
            "memory = 8192", "logRetentionDays = 10", "schedules[0].name", "schedules[0].expression", "schedules[0].timezone", "schedules[1].expression",
            "schedules[1].maximumRetryAttempts", "schedules[1].maximumEventAgeSeconds", "network.subnetIds", "network.securityGroupIds",
            "runIntervalMinutes + heartbeatGraceMinutes = 10500", "subscriptions[0].endpoint", "freshOnly.fullBuildEvery",
        ]) {
            assert.ok(message.includes(field), `error does not name ${field}:\n${message}`);
        }
        assert.match(message, /^ScheduledRuns prod-runs: invalid arguments:/);
        assert.throws(() => new ScheduledRuns("prod-runs", bad), /invalid arguments/);
        assert.strictEqual(regs.length, 0, "a rejected component registered something");
    });
});

describe("ScheduledRuns release lines", () => {
    it("publish the project tarball and its manifest by commit, and build/push the image once per tag", () => {
        assert.deepStrictEqual(publishProjectLines({ bucket: "acme-dbt-artifacts", prefix: "projects/", commitExpr: "$BITBUCKET_COMMIT" }), [
            "tar --exclude=./target --exclude=./logs --exclude=./dbt_packages --exclude=./.dbt-partial-parse --exclude=./.git --exclude=./.state --exclude=./.aws-web-identity-token -czf /tmp/dbt-project.tar.gz .",
            'aws s3 cp --only-show-errors /tmp/dbt-project.tar.gz "s3://acme-dbt-artifacts/projects/$BITBUCKET_COMMIT.tar.gz"',
            'aws s3 cp --only-show-errors "target/manifest.json" "s3://acme-dbt-artifacts/projects/$BITBUCKET_COMMIT/manifest.json"',
        ]);
        // With the pointer: written last, so a run never follows it to a half-published commit.
        const withPointer = publishProjectLines({ bucket: "acme-dbt-artifacts", prefix: "projects/", commitExpr: "$commit", pointer: true });
        assert.strictEqual(withPointer.at(-1), `printf '%s\\n' "$commit" | aws s3 cp --only-show-errors - "s3://acme-dbt-artifacts/projects/current"`);
        const lines = buildImageLines({ repositoryUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/prod-runs-repository`, region: REGION, tag: "1.11.16-1", contextDir: ".scheduled-image" });
        assert.strictEqual(lines[1], `  aws ecr get-login-password --region ${REGION} | docker login --username AWS --password-stdin ${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`);
        assert.match(lines[0], /--repository-name prod-runs-repository --image-ids imageTag=1\.11\.16-1/);
        // The lines form one valid shell if-statement.
        assert.strictEqual(spawnSync("bash", ["-n", "-c", lines.join("\n")]).status, 0);
        assert.strictEqual(spawnSync("bash", ["-n", "-c", renderEntrypoint()]).status, 0);
    });
});
