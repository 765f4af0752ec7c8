/**
 * `npm run access -- --stack <stack> [--format markdown|json] [--base <matrix.json>]`: evaluates the
 * program offline and prints who may do what in the stack's warehouse, derived from the declared
 * plan: Postgres from the declared resources, Redshift and Snowflake from the warehouse
 * component's declared accessPlan (the contract), built by the warehouse factory. With --base (a JSON matrix from the base commit)
 * it prints the diff instead, for the pull-request comment. Needs no CLI, cloud or database.
 */
import * as fs from "fs";
import { accessPlan, AccessPlan } from "../components/access/plan";
import { AccessMatrix, accessMatrix, databasesLabel, diffMatrices, renderMatrixDiff, renderMatrixMarkdown } from "../components/access/matrix";
import { DeclaredWarehouse, matrixFromContract } from "../components/access/contract";
import { parseStackConfig } from "../components/config/stack";
import { createWarehouse, validateWarehouse } from "../components/warehouse/factory";
import { installMocks, runProgram, stackConfig } from "./offline";

/** The declared access plan of one stack, as the program registers it under mocks. */
export async function stackPlan(stack: string): Promise<AccessPlan> {
    const { resources } = await runProgram(stack);
    return accessPlan(resources);
}

/** What a stack declares about access: the Postgres plan, or the warehouse component of another kind. */
export type DeclaredAccess = { kind: "postgres"; plan: AccessPlan } | { kind: "redshift" | "snowflake"; warehouse: DeclaredWarehouse };

/**
 * The stack's declared access, offline: Postgres from the resources the program registers (proven
 * against a real Postgres by test/access.test.ts); Redshift and Snowflake from the warehouse
 * component the factory builds from the validated stack config (as DbtPlatform builds it), under
 * mocks: its declared accessPlan is what it registers.
 */
export async function declaredAccess(stack: string, config: Record<string, string> = stackConfig(stack)): Promise<DeclaredAccess> {
    const parsed = parseStackConfig(stack, config);
    if (parsed.warehouse.kind === "postgres") return { kind: "postgres", plan: accessPlan((await runProgram(stack, config)).resources) };
    const { settle } = await installMocks(stack);
    const name = `dbt-${stack}-warehouse`;
    // The admin's credential is not needed to declare the plan.
    validateWarehouse(name, parsed, {});
    const warehouse = createWarehouse(name, parsed, {}, {});
    await settle();
    return { kind: parsed.warehouse.kind, warehouse };
}

/** The access matrix of one stack, from its declared plan, for every warehouse kind. */
export async function stackMatrix(stack: string, config?: Record<string, string>): Promise<AccessMatrix> {
    const declared = await declaredAccess(stack, config);
    return declared.kind === "postgres" ? accessMatrix(declared.plan) : matrixFromContract(declared.warehouse);
}

export function argValue(argv: string[], flag: string): string | undefined {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value`);
    return v;
}

async function main(argv: string[]): Promise<void> {
    const stack = argValue(argv, "--stack");
    const format = argValue(argv, "--format") ?? "markdown";
    const base = argValue(argv, "--base");
    if (!stack) throw new Error("usage: npm run access -- --stack <dev|sandbox|staging|prod|snowflake|redshift> [--format markdown|json] [--base <matrix.json>]");
    if (format !== "markdown" && format !== "json") throw new Error(`--format ${format}: expected markdown or json`);
    const matrix = await stackMatrix(stack);
    if (base) {
        const before = JSON.parse(fs.readFileSync(base, "utf8")) as AccessMatrix;
        const diff = diffMatrices(before, matrix);
        process.stdout.write(format === "json" ? JSON.stringify(diff, null, 2) + "\n" : renderMatrixDiff(diff));
        return;
    }
    process.stdout.write(format === "json" ? JSON.stringify(matrix, null, 2) + "\n" : renderMatrixMarkdown(matrix, `Access matrix — stack ${stack} (${matrix.kind}, ${databasesLabel(matrix)})`));
}

if (require.main === module) main(process.argv.slice(2)).catch((err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
});
