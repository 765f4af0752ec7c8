/**
 * The access plan as reviewable Redshift SQL: what the providers issue on a first apply, in plan
 * order, passwords redacted. Kept as golden files in sql/redshift-*.sql (test/redshift-warehouse.test.ts).
 */
import type { RedshiftSession } from "./client";
import type { RedshiftPlanStep } from "./plan";
import { REDSHIFT_KINDS } from "./providers";
import { redactRedshiftSql } from "./sql";

/** The statements each step's create issues, with the database the grants name. */
export async function renderRedshiftPlanSql(steps: RedshiftPlanStep<string>[], database: string): Promise<string> {
    const lines: string[] = [];
    for (const step of steps) {
        const statements: string[] = [];
        const session: RedshiftSession = {
            read: async () => {
                throw new Error(`${step.key}: create reads nothing`);
            },
            write: async (text) => {
                statements.push(redactRedshiftSql(text));
            },
        };
        const props = { ...step.props, connection: { host: "", port: 5439, database, user: "" } };
        await REDSHIFT_KINDS[step.kind].create(session, props);
        const note = step.redshiftOnly ? " (Redshift only: not executed on Postgres)" : "";
        lines.push(`-- ${step.kind} ${step.key}${note}`, ...statements.map((s) => `${s};`));
    }
    return lines.join("\n") + "\n";
}
