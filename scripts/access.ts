/**
 * `npm run access -- --stack <stack> [--format markdown|json] [--base <matrix.json>]`: evaluates the
 * program offline and prints who may do what in the stack's warehouse, derived from the declared
 * resources. With --base (a JSON matrix from the base commit) it prints the diff instead, for the
 * pull-request comment. Needs no CLI, cloud or database.
 */
import * as fs from "fs";
import { accessPlan, AccessPlan } from "../components/access/plan";
import { AccessMatrix, accessMatrix, diffMatrices, renderMatrixDiff, renderMatrixMarkdown } from "../components/access/matrix";
import { runProgram } from "./offline";

/** The declared access plan of one stack, as the program registers it under mocks. */
export async function stackPlan(stack: string): Promise<AccessPlan> {
    const { resources } = await runProgram(stack);
    return accessPlan(resources);
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
    if (!stack) throw new Error("usage: npm run access -- --stack <dev|sandbox|staging|prod> [--format markdown|json] [--base <matrix.json>]");
    if (format !== "markdown" && format !== "json") throw new Error(`--format ${format}: expected markdown or json`);
    const matrix = accessMatrix(await stackPlan(stack));
    if (base) {
        const before = JSON.parse(fs.readFileSync(base, "utf8")) as AccessMatrix;
        const diff = diffMatrices(before, matrix);
        process.stdout.write(format === "json" ? JSON.stringify(diff, null, 2) + "\n" : renderMatrixDiff(diff));
        return;
    }
    process.stdout.write(format === "json" ? JSON.stringify(matrix, null, 2) + "\n" : renderMatrixMarkdown(matrix, `Access matrix — stack ${stack} (${matrix.kind}, database ${matrix.database})`));
}

if (require.main === module) main(process.argv.slice(2)).catch((err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
});
