/**
 * `npm run access -- --stack <stack> [--format markdown|json] [--base <matrix.json>]`: evaluates the
 * program offline and prints who may do what in the stack's warehouse, derived from the declared
 * plan: Postgres from the declared resources, Redshift and Snowflake from the warehouse
 * component's declared accessPlan (the contract). With --base (a JSON matrix from the base commit)
 * it prints the diff instead, for the pull-request comment. Needs no CLI, cloud or database.
 */
import * as fs from "fs";
import * as pulumi from "@pulumi/pulumi";
import { accessPlan, AccessPlan } from "../components/access/plan";
import { AccessMatrix, accessMatrix, databasesLabel, diffMatrices, renderMatrixDiff, renderMatrixMarkdown } from "../components/access/matrix";
import { DeclaredWarehouse, matrixFromContract } from "../components/access/contract";
import { runProgram } from "./offline";

/** The declared access plan of one stack, as the program registers it under mocks. */
export async function stackPlan(stack: string): Promise<AccessPlan> {
    const { resources } = await runProgram(stack);
    return accessPlan(resources);
}

/**
 * Runs the program under mocks and also returns the warehouse components it constructs (whatever
 * carries the contract's kind, accessPlan and pullRequestSchemas), caught as each registers its
 * outputs, which a component does last, once its plan is set.
 */
export async function runCapturingWarehouses(stack: string, config?: Record<string, string>) {
    const warehouses = new Set<DeclaredWarehouse>();
    const proto = pulumi.ComponentResource.prototype as unknown as { registerOutputs: (this: any, outputs?: unknown) => void };
    const original = proto.registerOutputs;
    proto.registerOutputs = function (this: any, outputs?: unknown) {
        if (typeof this?.kind === "string" && this.accessPlan && this.pullRequestSchemas) warehouses.add(this as DeclaredWarehouse);
        return original.call(this, outputs);
    };
    try {
        const run = await runProgram(stack, config);
        return { ...run, warehouses: [...warehouses] };
    } finally {
        proto.registerOutputs = original;
    }
}

/** The access matrix of one stack, from its declared plan, for every warehouse kind. */
export async function stackMatrix(stack: string, config?: Record<string, string>): Promise<AccessMatrix> {
    const { resources, warehouses } = await runCapturingWarehouses(stack, config);
    // Postgres: the declared resources are the plan (proven against a real Postgres by test/access.test.ts).
    if (resources.some((r) => r.type.startsWith("postgresql:"))) return accessMatrix(accessPlan(resources));
    const others = warehouses.filter((w) => w.kind !== "postgres");
    if (others.length !== 1) throw new Error(`stack ${stack}: expected one warehouse component, the program declares ${others.length}`);
    return matrixFromContract(others[0]);
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
