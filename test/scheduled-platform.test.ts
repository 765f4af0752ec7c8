/**
 * The program under mocks with features.scheduledRuns (the prod stack): DbtPlatform registers the whole
 * ScheduledRuns chain, wired from the resources that own each value (the scheduler target's credential
 * secret and its contract fields, the artifacts bucket), no lone CiIdentity scheduler role, and a deploy
 * role that may publish exactly the projects and push to exactly the runner's repository. The rendered
 * deploy job of every CI system carries the release steps; a stack without the feature has none.
 */
import assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { runnerImageTag } from "../components/aws/scheduled/runner";
import { ECR_PUSH_ACTIONS, leastPrivilegeProblems } from "../components/aws/ciIdentity";
import { parseStackConfig } from "../components/config";
import { renderPipelineFiles } from "../components/pipelines";
import { pipelineContext } from "../components/platform";
import { find, Recorded, resolve, runProgram, stackConfig } from "../scripts/offline";
import { wildcardFindings } from "../policy/policies";

const T = {
    component: "dbt-platform:aws:ScheduledRuns",
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
    secret: "aws:secretsmanager/secret:Secret",
};
const IMAGE = { pythonVersion: "3.11", dbtVersion: "1.11.16", adapterPackage: "dbt-postgres", adapterVersion: "1.11.0", awscliVersion: "1.46.2" };

/** The whole chain ScheduledRuns registers for `n`, given the stack's schedules and alert count. */
export function scheduledChain(n: string, schedules: string[], alerts: number): string[] {
    return [
        `${T.alarm} ${n}-dead-letters-alarm`,
        `${T.alarm} ${n}-errors-alarm`,
        `${T.alarm} ${n}-heartbeat-alarm`,
        `${T.rule} ${n}-task-failed`,
        `${T.target} ${n}-task-failed-target`,
        `${T.lifecycle} ${n}-repository-lifecycle`,
        `${T.metricFilter} ${n}-errors`,
        `${T.metricFilter} ${n}-heartbeat`,
        `${T.logGroup} ${n}-logs`,
        `${T.cluster} ${n}-cluster`,
        `${T.taskDef} ${n}-task-definition`,
        `${T.repo} ${n}-repository`,
        `${T.role} ${n}-execution`,
        `${T.role} ${n}-scheduler`,
        `${T.role} ${n}-task`,
        `${T.rolePolicy} ${n}-execution-policy`,
        `${T.rolePolicy} ${n}-scheduler-policy`,
        `${T.rolePolicy} ${n}-task-policy`,
        ...schedules.map((s) => `${T.schedule} ${n}-${s}`),
        ...Array.from({ length: alerts }, (_, i) => `${T.subscription} ${n}-alerts-${i}`),
        `${T.topic} ${n}-alerts`,
        `${T.topicPolicy} ${n}-alerts-policy`,
        `${T.queue} ${n}-dlq`,
    ].sort();
}

const json = (r: Recorded, key: string) => JSON.parse(r.inputs[key]);
const statements = (r: Recorded) => json(r, "policy").Statement as { Sid: string; Action: string | string[]; Resource?: string | string[]; Condition?: unknown }[];
const sid = (r: Recorded, s: string) => statements(r).find((x) => x.Sid === s);

describe("program: the prod stack registers the scheduled-runs chain (features.scheduledRuns)", () => {
    let resources: Recorded[];
    let exports: Record<string, pulumi.Output<any>>;
    const r = (type: string, name: string) => find(resources, type, name);
    before(async () => {
        ({ resources, exports } = await runProgram("prod"));
    });

    it("every child of ScheduledRuns by type and name, parented to it, under DbtPlatform with the stack's AWS provider", () => {
        const component = r(T.component, "dbt-prod-scheduled");
        assert.strictEqual(component.parent, r("dbt-platform:index:DbtPlatform", "dbt-prod").urn);
        const children = resources.filter((x) => x.parent === component.urn).map((x) => `${x.type} ${x.name}`).sort();
        assert.deepStrictEqual(children, scheduledChain("dbt-prod-scheduled", ["nightly"], 1));
        const provider = r("pulumi:providers:aws", "dbt-prod-aws");
        for (const x of resources.filter((y) => y.parent === component.urn)) assert.strictEqual(x.provider, `${provider.urn}::${provider.id}`, x.name);
        const schedule = r(T.schedule, "dbt-prod-scheduled-nightly").inputs;
        assert.strictEqual(schedule.scheduleExpression, "cron(0 5 * * ? *)");
        assert.strictEqual(schedule.scheduleExpressionTimezone, "Europe/Berlin");
        assert.deepStrictEqual(schedule.target.retryPolicy, { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 });
        assert.deepStrictEqual(schedule.target.ecsParameters.networkConfiguration, { subnets: ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], securityGroups: ["sg-0123abcd"], assignPublicIp: false });
        assert.deepStrictEqual(r(T.subscription, "dbt-prod-scheduled-alerts-0").inputs.protocol, "email");
        assert.strictEqual(r(T.subscription, "dbt-prod-scheduled-alerts-0").inputs.endpoint, "data-alerts@acme.example");
        const heartbeat = r(T.alarm, "dbt-prod-scheduled-heartbeat-alarm").inputs;
        assert.deepStrictEqual([heartbeat.period, heartbeat.evaluationPeriods, heartbeat.treatMissingData], [3600, 25, "breaching"]);
    });

    it("the task definition's secrets are the scheduler target's recorded secret ARN, one per contract field", async () => {
        const secretArn = resources.find((x) => x.type === T.secret && x.inputs.name === "dbt/prod/scheduler")!.state.arn;
        assert.match(secretArn, /^arn:aws:secretsmanager:eu-west-1:123456789012:secret:dbt\/prod\/scheduler-/);
        const [container] = JSON.parse(r(T.taskDef, "dbt-prod-scheduled-task-definition").inputs.containerDefinitions);
        // The warehouse contract's targetEnv of the scheduler target: variable name → JSON key of the secret.
        const fields = ["dbname", "host", "password", "port", "schema", "user"];
        assert.deepStrictEqual(container.secrets, fields.map((f) => ({ name: `DBT_SCHEDULER_${f.toUpperCase()}`, valueFrom: `${secretArn}:${f}::` })));
        // The secret's JSON has exactly those keys (WarehouseCredentials' version of it).
        const version = r("aws:secretsmanager/secretVersion:SecretVersion", "dbt-prod-credentials-scheduler-version");
        assert.deepStrictEqual(Object.keys(JSON.parse(version.inputs.secretString)).sort(), fields);
        const env = Object.fromEntries(container.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
        const bucket = (await resolve(exports.artifactsBucket)).value;
        assert.deepStrictEqual(env, {
            DBT_ARTIFACTS_BUCKET: bucket,
            DBT_PROJECT_PREFIX: "projects/",
            DBT_RUN_STATE_PREFIX: "artifacts/scheduled/",
            DBT_TARGET: "scheduler",
            DBT_PROFILES_DIR: ".ci",
            DBT_RUNNER_MODE: "full",
            DBT_LOG_FORMAT: "json",
            DBT_USE_COLORS: "false",
            DBT_SEND_ANONYMOUS_USAGE_STATS: "false",
        });
        const repoUrl = r(T.repo, "dbt-prod-scheduled-repository").state.repositoryUrl;
        assert.strictEqual(container.image, `${repoUrl}:${runnerImageTag(IMAGE)}`);
        // The execution role reads exactly that secret.
        assert.deepStrictEqual([sid(r(T.rolePolicy, "dbt-prod-scheduled-execution-policy"), "ReadCredentials")!.Resource].flat(), [secretArn]);
        // The task role reads the bucket's projects (the pointer included) and writes the run state.
        const bucketArn = r("aws:s3/bucket:Bucket", "dbt-prod-artifacts-bucket").state.arn;
        const task = r(T.rolePolicy, "dbt-prod-scheduled-task-policy");
        assert.deepStrictEqual([sid(task, "ReadProjects")!.Resource].flat(), [`${bucketArn}/projects/*`]);
        assert.deepStrictEqual([sid(task, "ReadWriteRunState")!.Resource].flat(), [`${bucketArn}/artifacts/scheduled/*`]);
    });

    it("the scheduler role runs this task definition and passes exactly the execution and task roles", () => {
        const policy = r(T.rolePolicy, "dbt-prod-scheduled-scheduler-policy");
        const pass = statements(policy).filter((s) => [s.Action].flat().includes("iam:PassRole"));
        assert.strictEqual(pass.length, 1);
        const roleArn = (n: string) => r(T.role, n).state.arn;
        assert.deepStrictEqual([pass[0].Resource].flat().sort(), [roleArn("dbt-prod-scheduled-execution"), roleArn("dbt-prod-scheduled-task")].sort());
        assert.deepStrictEqual(pass[0].Condition, { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } });
        assert.deepStrictEqual([sid(policy, "RunTask")!.Resource].flat(), [r(T.taskDef, "dbt-prod-scheduled-task-definition").state.arn]);
        assert.strictEqual(json(r(T.role, "dbt-prod-scheduled-scheduler"), "assumeRolePolicy").Statement[0].Principal.Service, "scheduler.amazonaws.com");
    });

    it("no lone CiIdentity scheduler role; the deploy role publishes projects/ and pushes to the runner repository only", async () => {
        assert.ok(!resources.some((x) => x.name === "dbt-prod-ci-scheduler" || x.name === "dbt-prod-ci-scheduler-policy"), "CiIdentity still creates a scheduler role");
        assert.strictEqual(((await resolve((exports.ciRoleArns as any).deploy)) as any).value.startsWith("arn:aws:iam::"), true);
        assert.strictEqual((exports.ciRoleArns as any).scheduler, undefined);
        const deploy = r(T.rolePolicy, "dbt-prod-ci-deploy-policy");
        const bucketArn = r("aws:s3/bucket:Bucket", "dbt-prod-artifacts-bucket").state.arn;
        assert.deepStrictEqual(sid(deploy, "PublishProjects"), { Sid: "PublishProjects", Effect: "Allow", Action: ["s3:PutObject"], Resource: [`${bucketArn}/projects/*`] });
        assert.deepStrictEqual(sid(deploy, "EcrLogin"), { Sid: "EcrLogin", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: ["*"] });
        const repoArn = r(T.repo, "dbt-prod-scheduled-repository").state.arn;
        assert.match(repoArn, /^arn:aws:ecr:eu-west-1:123456789012:repository\//);
        assert.deepStrictEqual(sid(deploy, "PushRunnerImage"), { Sid: "PushRunnerImage", Effect: "Allow", Action: ECR_PUSH_ACTIONS, Resource: [repoArn] });
        // Nothing else on "*", no wildcard action: the component's own check and the policy pack agree.
        const doc = json(deploy, "policy");
        assert.deepStrictEqual(leastPrivilegeProblems(doc), []);
        assert.deepStrictEqual(wildcardFindings(doc.Statement), []);
        // A token statement with any other action on "*" is still refused.
        assert.ok(leastPrivilegeProblems({ Statement: [{ Sid: "X", Action: ["ecr:GetAuthorizationToken", "ecr:PutImage"], Resource: ["*"] }] }).length > 0);
        // The pull-request role gains nothing.
        assert.ok(!JSON.stringify(json(r(T.rolePolicy, "dbt-prod-ci-pull-request-policy"), "policy")).includes("ecr:"));
    });

    it("the rendered release job pushes the task's image tag and publishes by commit; the Bitbucket step has the docker service", async () => {
        const files = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
        const step = parse(files["bitbucket-pipelines.yml"]).pipelines.custom["release-prod"].find((x: any) => x.step).step;
        assert.deepStrictEqual(step.services, ["docker"]);
        const names = (step.script as string[]).map((s) => s.split("\n")[0]);
        const at = (n: string) => names.findIndex((x) => x.startsWith(`# ${n}`));
        // After the build and the manifest publish; the image before the project, whose pointer moves last.
        assert.ok(at("Publish the manifest") > at("Build prod") && at("Build and push the scheduled-run image") > at("Publish the manifest"), names.join("\n"));
        assert.ok(at("Publish the project for scheduled runs") > at("Build and push the scheduled-run image"), names.join("\n"));
        const repoUrl = r(T.repo, "dbt-prod-scheduled-repository").state.repositoryUrl;
        const script = (step.script as string[]).join("\n");
        assert.ok(script.includes(`DOCKER_BUILDKIT=1 docker build --pull -t ${repoUrl}:${runnerImageTag(IMAGE)} /tmp/dbt-runner-image`), script);
        assert.ok(script.includes(`docker push ${repoUrl}:${runnerImageTag(IMAGE)}`));
        assert.ok(script.includes('commit="${BITBUCKET_COMMIT:-}"'));
        const bucket = (await resolve(exports.artifactsBucket)).value;
        assert.ok(script.includes(`printf '%s\\n' "$commit" | aws s3 cp --only-show-errors - "s3://${bucket}/projects/current"`), script);
    });
});

describe("program: release steps per CI system, only with scheduled runs", () => {
    const roles = { pullRequestRoleArn: "arn:aws:iam::123456789012:role/pr", deployRoleArn: "arn:aws:iam::123456789012:role/deploy" };
    const repo = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dbt-prod-scheduled-repository-1a2b3c4";
    const systems = [
        { system: "github", repository: "acme-data/analytics-dbt", file: ".github/workflows/deploy.yml", commit: "GITHUB_SHA" },
        { system: "azure-devops", repository: "acme/analytics/analytics-dbt", file: "azure-pipelines.yml", commit: "BUILD_SOURCEVERSION" },
        { system: "bitbucket", repository: "acme-data/analytics-dbt", file: "bitbucket-pipelines.yml", commit: "BITBUCKET_COMMIT" },
    ];
    const configFor = (system: string, repository: string, scheduled: boolean) => {
        const c: Record<string, string> = { ...stackConfig("prod"), "dbt-platform:ci": JSON.stringify({ system, repository }) };
        const aws = JSON.parse(c["dbt-platform:aws"]);
        if (system !== "bitbucket") delete aws.bitbucket;
        if (system === "azure-devops") aws.azureDevops = { organizationId: "0f8fad5b-d9cb-469f-a165-70867728950e", serviceConnection: "aws-ci", deployServiceConnection: "aws-deploy" };
        c["dbt-platform:aws"] = JSON.stringify(aws);
        if (!scheduled) {
            c["dbt-platform:features"] = JSON.stringify({ ...JSON.parse(c["dbt-platform:features"]), scheduledRuns: false });
            delete c["dbt-platform:scheduledRuns"];
        }
        return parseStackConfig("prod", c);
    };
    for (const s of systems) {
        it(`${s.system}: the deploy job ends with the image and the project; without the feature it has neither`, () => {
            const ctx = pipelineContext(configFor(s.system, s.repository, true), undefined, { bucket: "acme-dbt", distributionId: "E123", ...roles, runnerRepositoryUrl: repo, runnerImageTag: "dbt1.11.16-abc" });
            const text = renderPipelineFiles(ctx, "acme_analytics: {}\n").files[s.file];
            for (const needle of [`docker push ${repo}:dbt1.11.16-abc`, `commit="\${${s.commit}:-}"`, '"s3://acme-dbt/projects/$commit.tar.gz"', '"s3://acme-dbt/projects/$commit/manifest.json"', '"s3://acme-dbt/projects/current"']) {
                assert.ok(text.includes(needle), `${s.file} lacks ${needle}`);
            }
            const off = pipelineContext(configFor(s.system, s.repository, false), undefined, { bucket: "acme-dbt", distributionId: "E123", ...roles });
            const plain = renderPipelineFiles(off, "acme_analytics: {}\n").files[s.file];
            assert.ok(!plain.includes("docker") && !plain.includes("projects/"), `${s.file} has release steps without scheduled runs`);
        });
    }
});

describe("program: the redshift stack registers the scheduled-runs chain too (Azure DevOps + Redshift)", () => {
    let resources: Recorded[];
    let exports: Record<string, pulumi.Output<any>>;
    const r = (type: string, name: string) => find(resources, type, name);
    before(async () => {
        ({ resources, exports } = await runProgram("redshift"));
    });

    it("every child of ScheduledRuns by type and name, under DbtPlatform", () => {
        const component = r(T.component, "dbt-redshift-scheduled");
        assert.strictEqual(component.parent, r("dbt-platform:index:DbtPlatform", "dbt-redshift").urn);
        const children = resources.filter((x) => x.parent === component.urn).map((x) => `${x.type} ${x.name}`).sort();
        assert.deepStrictEqual(children, scheduledChain("dbt-redshift-scheduled", ["nightly"], 1));
        assert.strictEqual(r(T.schedule, "dbt-redshift-scheduled-nightly").inputs.scheduleExpressionTimezone, "Europe/Stockholm");
        assert.ok(!resources.some((x) => x.name === "dbt-redshift-ci-scheduler"), "CiIdentity still creates a scheduler role");
    });

    it("secrets from the recorded scheduler secret, keyed by RedshiftWarehouse's credential fields; the image pins dbt-redshift", async () => {
        const secretArn = resources.find((x) => x.type === T.secret && x.inputs.name === "dbt/redshift/scheduler")!.state.arn;
        const [container] = JSON.parse(r(T.taskDef, "dbt-redshift-scheduled-task-definition").inputs.containerDefinitions);
        const version = r("aws:secretsmanager/secretVersion:SecretVersion", "dbt-redshift-credentials-scheduler-version");
        const fields = Object.keys(JSON.parse(version.inputs.secretString)).sort();
        assert.deepStrictEqual(container.secrets, fields.map((f) => ({ name: `DBT_SCHEDULER_${f.toUpperCase()}`, valueFrom: `${secretArn}:${f}::` })));
        const pass = statements(r(T.rolePolicy, "dbt-redshift-scheduled-scheduler-policy")).find((s) => [s.Action].flat().includes("iam:PassRole"))!;
        assert.deepStrictEqual([pass.Resource].flat().sort(), [r(T.role, "dbt-redshift-scheduled-execution").state.arn, r(T.role, "dbt-redshift-scheduled-task").state.arn].sort());
        const files = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
        const azure = files["azure-pipelines.yml"];
        const tag = String(container.image).split(":").pop()!;
        assert.ok(azure.includes(`docker push ${container.image}`), "the Azure release does not push the task's image");
        assert.ok(azure.includes('commit="${BUILD_SOURCEVERSION:-}"'));
        assert.match(azure, /RUN pip install --no-cache-dir dbt-core==1\.11\.16 dbt-redshift==\d+\.\d+\.\d+ awscli==1\.46\.2/);
        assert.match(tag, /^dbt1\.11\.16-[0-9a-f]{12}$/);
        const deploy = r(T.rolePolicy, "dbt-redshift-ci-deploy-policy");
        assert.deepStrictEqual([sid(deploy, "PushRunnerImage")!.Resource].flat(), [r(T.repo, "dbt-redshift-scheduled-repository").state.arn]);
        assert.deepStrictEqual(wildcardFindings(json(deploy, "policy").Statement), []);
    });
});
