/**
 * Mocks for the ScheduledRuns tests: scripts/offline.ts's, which compute realistic outputs for the AWS
 * types ScheduledRuns uses (ECR repository URL, log group name and ARN, ECS cluster and task definition
 * ARNs, queue, topic, rule and alarm ARNs) for these tests and for every program run alike.
 */
import { installMocks } from "../../scripts/offline";

export const ACCOUNT = "123456789012";
export const REGION = "eu-west-1";

/** installMocks; scripts/offline.ts computes the ScheduledRuns types' outputs (scheduledRunsOutputs) for every program run. */
export async function installAwsMocks(stack = "dev") {
    return installMocks(stack);
}
