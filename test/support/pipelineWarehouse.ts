/**
 * The warehouse side of a hand-built PipelineContext: what PostgresWarehouse (the default stacks'
 * warehouse) gives the pipelines for the given targets, planned from its arguments.
 */
import { PipelineWarehouse, PostgresWarehouse } from "../../components/warehouse";

export function postgresPipelineWarehouse(targets: { ci?: string; deploy: string }, pullRequestPrefix = "dbt_pr_"): PipelineWarehouse {
    return PostgresWarehouse.pipelineWarehouse("wh", {
        connection: { host: "db.internal", port: 5432, username: "admin" },
        database: "analytics",
        users: [...(targets.ci ? [{ name: "dev_ci", duty: "ci" as const }] : []), { name: "dbt_deploy", duty: "deploy" as const }],
        productionSchemas: ["analytics"],
        pullRequestPrefix,
        profile: "acme",
        deployTarget: targets.deploy,
    });
}
