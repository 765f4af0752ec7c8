/**
 * @integration moto round trip of ScheduledRuns' configuration: every resource the component declares
 * (under mocks) is created through the venv's AWS CLI against moto_server from its recorded inputs,
 * read back and compared; then the schedule's RunTask call is made as EventBridge Scheduler would
 * (Fargate, the schedule's subnets and security groups). Names are the component's, so the ARNs
 * the mocks computed are the ones moto assigns.
 */
import assert from "assert";
import { execFile } from "child_process";
import * as path from "path";
import { ScheduledRuns, ScheduledRunsArgs } from "../components/aws/scheduledRuns";
import { find, Recorded } from "../scripts/offline";
import { ACCOUNT, installAwsMocks } from "./support/awsMocks";
import { MotoServer, MOTO_REGION, startMoto } from "./support/moto";
import { pythonEnv, VENV_BIN } from "./support/python";

describe("ScheduledRuns configuration round-trips through moto @integration", function () {
    this.timeout(300_000);
    let moto: MotoServer;
    let regs: Recorded[];
    // --endpoint-url as well as AWS_ENDPOINT_URL: the v1 CLI's SQS commands ignore the variable.
    const aws = (args: string[]): Promise<any> =>
        new Promise((resolve, reject) =>
            execFile(path.join(VENV_BIN, "aws"), [...args, "--output", "json", "--endpoint-url", moto.endpoint], { env: pythonEnv(moto.env), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
                if (err) reject(new Error(`aws ${args.slice(0, 2).join(" ")} failed: ${stderr || err.message}`));
                else resolve(stdout.trim() ? JSON.parse(stdout) : undefined);
            }),
        );
    const inputs = (type: string, name: string) => find(regs, type, name).inputs;

    before(async function () {
        moto = await startMoto();
        // moto's default VPC: the schedule's subnet and a security group of that VPC.
        const subnets = (await aws(["ec2", "describe-subnets"])).Subnets as { SubnetId: string; VpcId: string }[];
        const sg = (await aws(["ec2", "create-security-group", "--group-name", "dbt-runs", "--description", "dbt scheduled runs", "--vpc-id", subnets[0].VpcId])).GroupId as string;
        const args: ScheduledRunsArgs = {
            region: MOTO_REGION,
            artifactsBucketName: "acme-dbt-artifacts",
            artifactsBucketArn: "arn:aws:s3:::acme-dbt-artifacts",
            projectCommit: "0123456789abcdef0123456789abcdef01234567",
            image: { pythonVersion: "3.11", dbtVersion: "1.11.16", adapterPackage: "dbt-postgres", adapterVersion: "1.11.0", awscliVersion: "1.46.2" },
            imageTag: "1.11.16",
            credentialSecretArn: `arn:aws:secretsmanager:${MOTO_REGION}:${ACCOUNT}:secret:dbt/prod/scheduler-AbCdEf`,
            credentialEnv: { DBT_SCHEDULER_PASSWORD: "password", DBT_SCHEDULER_USER: "user" },
            dbtTarget: "scheduler",
            schedules: [{ name: "hourly", expression: "cron(15 * * * ? *)", timezone: "Europe/Amsterdam" }],
            network: { subnetIds: [subnets[0].SubnetId], securityGroupIds: [sg] },
            runIntervalMinutes: 60,
            subscriptions: [{ protocol: "email", endpoint: "data-alerts@acme.example" }],
        };
        const mocked = await installAwsMocks("prod");
        new ScheduledRuns("prod-runs", args);
        await mocked.settle();
        regs = mocked.resources;
    });

    after(async () => {
        await moto?.stop();
    });

    it("creates every resource from its recorded inputs and reads the same configuration back", async () => {
        const repo = (await aws(["ecr", "create-repository", "--repository-name", "prod-runs-repository", "--image-tag-mutability", "IMMUTABLE", "--image-scanning-configuration", "scanOnPush=true"])).repository;
        await aws(["ecr", "put-lifecycle-policy", "--repository-name", "prod-runs-repository", "--lifecycle-policy-text", inputs("aws:ecr/lifecyclePolicy:LifecyclePolicy", "prod-runs-repository-lifecycle").policy]);
        assert.strictEqual(repo.repositoryUri, `${ACCOUNT}.dkr.ecr.${MOTO_REGION}.amazonaws.com/prod-runs-repository`);

        for (const role of ["execution", "task", "scheduler"]) {
            const r = inputs("aws:iam/role:Role", `prod-runs-${role}`);
            await aws(["iam", "create-role", "--role-name", `prod-runs-${role}`, "--assume-role-policy-document", r.assumeRolePolicy]);
            const p = inputs("aws:iam/rolePolicy:RolePolicy", `prod-runs-${role}-policy`).policy;
            await aws(["iam", "put-role-policy", "--role-name", `prod-runs-${role}`, "--policy-name", "inline", "--policy-document", p]);
            const back = await aws(["iam", "get-role-policy", "--role-name", `prod-runs-${role}`, "--policy-name", "inline"]);
            assert.deepStrictEqual(back.PolicyDocument, JSON.parse(p), `${role} policy`);
        }

        await aws(["logs", "create-log-group", "--log-group-name", "/prod-runs-logs"]);
        await aws(["logs", "put-retention-policy", "--log-group-name", "/prod-runs-logs", "--retention-in-days", String(inputs("aws:cloudwatch/logGroup:LogGroup", "prod-runs-logs").retentionInDays)]);
        for (const f of ["errors", "heartbeat"]) {
            const mf = inputs("aws:cloudwatch/logMetricFilter:LogMetricFilter", `prod-runs-${f}`);
            const t = mf.metricTransformation;
            await aws(["logs", "put-metric-filter", "--log-group-name", mf.logGroupName, "--filter-name", `prod-runs-${f}`, "--filter-pattern", mf.pattern,
                "--metric-transformations", JSON.stringify([{ metricName: t.name, metricNamespace: t.namespace, metricValue: t.value, unit: t.unit }])]);
        }
        const filters = (await aws(["logs", "describe-metric-filters", "--log-group-name", "/prod-runs-logs"])).metricFilters.map((f: any) => [f.filterName, f.filterPattern]);
        assert.deepStrictEqual(filters.sort(), [["prod-runs-errors", '{ $.info.level = "error" }'], ["prod-runs-heartbeat", '{ $.info.name = "StatsLine" || $.info.name = "NothingToDo" }']]);
        const groups = (await aws(["logs", "describe-log-groups", "--log-group-name-prefix", "/prod-runs-logs"])).logGroups;
        assert.strictEqual(groups[0].retentionInDays, 90);

        await aws(["ecs", "create-cluster", "--cluster-name", "prod-runs-cluster"]);
        const td = inputs("aws:ecs/taskDefinition:TaskDefinition", "prod-runs-task-definition");
        const registered = (await aws(["ecs", "register-task-definition", "--cli-input-json", JSON.stringify({
            family: td.family, requiresCompatibilities: td.requiresCompatibilities, networkMode: td.networkMode, cpu: td.cpu, memory: td.memory,
            runtimePlatform: td.runtimePlatform, executionRoleArn: td.executionRoleArn, taskRoleArn: td.taskRoleArn, containerDefinitions: JSON.parse(td.containerDefinitions),
        })])).taskDefinition;
        assert.strictEqual(registered.taskDefinitionArn, `arn:aws:ecs:${MOTO_REGION}:${ACCOUNT}:task-definition/prod-runs:1`);
        const c = registered.containerDefinitions[0];
        const declared = JSON.parse(td.containerDefinitions)[0];
        assert.deepStrictEqual([c.secrets, c.environment, c.logConfiguration, c.memory, c.image], [declared.secrets, declared.environment, declared.logConfiguration, declared.memory, declared.image]);

        const queue = await aws(["sqs", "create-queue", "--queue-name", "prod-runs-dlq", "--attributes", JSON.stringify({ MessageRetentionPeriod: "1209600", SqsManagedSseEnabled: "true" })]);
        const queueArn = (await aws(["sqs", "get-queue-attributes", "--queue-url", queue.QueueUrl, "--attribute-names", "QueueArn"])).Attributes.QueueArn;
        assert.strictEqual(queueArn, `arn:aws:sqs:${MOTO_REGION}:${ACCOUNT}:prod-runs-dlq`);

        const topicArn = (await aws(["sns", "create-topic", "--name", "prod-runs-alerts"])).TopicArn;
        assert.strictEqual(topicArn, `arn:aws:sns:${MOTO_REGION}:${ACCOUNT}:prod-runs-alerts`);
        const sub = inputs("aws:sns/topicSubscription:TopicSubscription", "prod-runs-alerts-0");
        await aws(["sns", "subscribe", "--topic-arn", sub.topic, "--protocol", sub.protocol, "--notification-endpoint", sub.endpoint]);
        const policy = inputs("aws:sns/topicPolicy:TopicPolicy", "prod-runs-alerts-policy").policy;
        await aws(["sns", "set-topic-attributes", "--topic-arn", topicArn, "--attribute-name", "Policy", "--attribute-value", policy]);
        const attrs = (await aws(["sns", "get-topic-attributes", "--topic-arn", topicArn])).Attributes;
        assert.deepStrictEqual(JSON.parse(attrs.Policy), JSON.parse(policy));

        for (const a of ["errors", "heartbeat", "dead-letters"]) {
            const al = inputs("aws:cloudwatch/metricAlarm:MetricAlarm", `prod-runs-${a}-alarm`);
            await aws(["cloudwatch", "put-metric-alarm", "--alarm-name", `prod-runs-${a}-alarm`, "--alarm-description", al.alarmDescription, "--namespace", al.namespace,
                "--metric-name", al.metricName, "--statistic", al.statistic, "--period", String(al.period), "--evaluation-periods", String(al.evaluationPeriods),
                "--threshold", String(al.threshold), "--comparison-operator", al.comparisonOperator, "--treat-missing-data", al.treatMissingData, "--alarm-actions", ...al.alarmActions,
                ...(al.dimensions ? ["--dimensions", ...Object.entries(al.dimensions).map(([k, v]) => `Name=${k},Value=${v}`)] : [])]);
        }
        const alarms = (await aws(["cloudwatch", "describe-alarms", "--alarm-name-prefix", "prod-runs-"])).MetricAlarms;
        const heartbeat = alarms.find((x: any) => x.AlarmName === "prod-runs-heartbeat-alarm");
        // 60 minutes between runs plus the default 60 minutes of grace.
        assert.deepStrictEqual([heartbeat.TreatMissingData, heartbeat.Period, heartbeat.ComparisonOperator, heartbeat.AlarmActions], ["breaching", 7200, "LessThanThreshold", [topicArn]]);
        assert.strictEqual(alarms.length, 3);

        const rule = inputs("aws:cloudwatch/eventRule:EventRule", "prod-runs-task-failed");
        const ruleArn = (await aws(["events", "put-rule", "--name", "prod-runs-task-failed", "--event-pattern", rule.eventPattern])).RuleArn;
        assert.strictEqual(ruleArn, `arn:aws:events:${MOTO_REGION}:${ACCOUNT}:rule/prod-runs-task-failed`);
        await aws(["events", "put-targets", "--rule", "prod-runs-task-failed", "--targets", JSON.stringify([{ Id: "sns", Arn: inputs("aws:cloudwatch/eventTarget:EventTarget", "prod-runs-task-failed-target").arn }])]);
        assert.deepStrictEqual(JSON.parse((await aws(["events", "describe-rule", "--name", "prod-runs-task-failed"])).EventPattern), JSON.parse(rule.eventPattern));
        const s = inputs("aws:scheduler/schedule:Schedule", "prod-runs-hourly");
        const t = s.target;
        const target = {
            Arn: t.arn, RoleArn: t.roleArn,
            EcsParameters: {
                TaskDefinitionArn: t.ecsParameters.taskDefinitionArn, LaunchType: t.ecsParameters.launchType, TaskCount: t.ecsParameters.taskCount,
                NetworkConfiguration: { awsvpcConfiguration: { Subnets: t.ecsParameters.networkConfiguration.subnets, SecurityGroups: t.ecsParameters.networkConfiguration.securityGroups, AssignPublicIp: t.ecsParameters.networkConfiguration.assignPublicIp ? "ENABLED" : "DISABLED" } },
            },
            RetryPolicy: { MaximumRetryAttempts: t.retryPolicy.maximumRetryAttempts, MaximumEventAgeInSeconds: t.retryPolicy.maximumEventAgeInSeconds },
            DeadLetterConfig: { Arn: t.deadLetterConfig.arn },
        };
        await aws(["scheduler", "create-schedule", "--name", "prod-runs-hourly", "--schedule-expression", s.scheduleExpression, "--schedule-expression-timezone", s.scheduleExpressionTimezone,
            "--flexible-time-window", "Mode=OFF", "--target", JSON.stringify(target)]);
        const back = await aws(["scheduler", "get-schedule", "--name", "prod-runs-hourly"]);
        assert.deepStrictEqual([back.ScheduleExpression, back.ScheduleExpressionTimezone, back.Target.Arn, back.Target.EcsParameters.TaskDefinitionArn, back.Target.DeadLetterConfig],
            ["cron(15 * * * ? *)", "Europe/Amsterdam", `arn:aws:ecs:${MOTO_REGION}:${ACCOUNT}:cluster/prod-runs-cluster`, registered.taskDefinitionArn, { Arn: queueArn }]);

        // What the scheduler's RunTask does (moto needs container-level memory and security groups).
        const run = await aws(["ecs", "run-task", "--cluster", target.Arn, "--task-definition", target.EcsParameters.TaskDefinitionArn, "--launch-type", "FARGATE", "--count", "1",
            // The same values in ECS's own casing (the Scheduler API capitalises them).
            "--network-configuration", JSON.stringify({ awsvpcConfiguration: { subnets: t.ecsParameters.networkConfiguration.subnets, securityGroups: t.ecsParameters.networkConfiguration.securityGroups, assignPublicIp: "DISABLED" } })]);
        assert.deepStrictEqual(run.failures, []);
        assert.strictEqual(run.tasks.length, 1);
        assert.strictEqual(run.tasks[0].taskDefinitionArn, registered.taskDefinitionArn);
        console.log(`      moto: ${regs.filter((r) => r.custom).length} resources round-tripped; run-task started ${run.tasks[0].taskArn.split("/").pop()}`);
    });
});
