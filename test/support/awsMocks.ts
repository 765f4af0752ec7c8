/**
 * Realistic computed outputs for the AWS types ScheduledRuns uses, layered over scripts/offline.ts's
 * mocks (whose generic ARN has no resource-type path and no generated names): ECR repository URL,
 * log group name and ARN, ECS cluster and task definition ARNs, queue, topic, rule and alarm ARNs.
 */
import * as pulumi from "@pulumi/pulumi";
import { installMocks } from "../../scripts/offline";

export const ACCOUNT = "123456789012";
export const REGION = "eu-west-1";

function computedOutputs(type: string, name: string, inputs: Record<string, any>): Record<string, any> | undefined {
    const a = (service: string, rest: string) => `arn:aws:${service}:${REGION}:${ACCOUNT}:${rest}`;
    switch (type) {
        case "aws:ecr/repository:Repository": {
            const n = inputs.name ?? name;
            return { name: n, arn: a("ecr", `repository/${n}`), repositoryUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${n}` };
        }
        case "aws:cloudwatch/logGroup:LogGroup": {
            const n = inputs.name ?? `/${name}`;
            // The provider reports the ARN without the trailing ":*" the API returns.
            return { name: n, arn: a("logs", `log-group:${n}`) };
        }
        case "aws:ecs/cluster:Cluster":
            return { name: inputs.name ?? name, arn: a("ecs", `cluster/${inputs.name ?? name}`) };
        case "aws:ecs/taskDefinition:TaskDefinition":
            return { arn: a("ecs", `task-definition/${inputs.family}:1`), arnWithoutRevision: a("ecs", `task-definition/${inputs.family}`), revision: 1 };
        case "aws:sqs/queue:Queue": {
            const n = inputs.name ?? name;
            return { name: n, arn: a("sqs", n), url: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${n}` };
        }
        case "aws:sns/topic:Topic":
            return { name: inputs.name ?? name, arn: a("sns", inputs.name ?? name) };
        case "aws:cloudwatch/eventRule:EventRule":
            return { name: inputs.name ?? name, arn: a("events", `rule/${inputs.name ?? name}`) };
        case "aws:cloudwatch/metricAlarm:MetricAlarm":
            return { arn: a("cloudwatch", `alarm:${inputs.name ?? name}`) };
        case "aws:scheduler/schedule:Schedule":
            return { name: inputs.name ?? name, arn: a("scheduler", `schedule/default/${inputs.name ?? name}`) };
        default:
            return undefined;
    }
}

/** installMocks("dev") with the computed outputs above. */
export async function installAwsMocks(stack = "dev") {
    const recorded = await installMocks(stack);
    const monitor = pulumi.runtime.getMonitor() as any;
    const base = monitor.mocks.newResource.bind(monitor.mocks);
    monitor.mocks.newResource = (args: pulumi.runtime.MockResourceArgs) => {
        const r = base(args);
        const extra = computedOutputs(args.type, args.name, args.inputs);
        return extra ? { id: r.id, state: { ...r.state, ...extra } } : r;
    };
    return recorded;
}
