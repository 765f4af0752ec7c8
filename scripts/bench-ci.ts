/**
 * The side-by-side benchmark of issue 16: our rendered PR job against seed 000's, seed 002's and
 * seed 003's pipelines, and our deploy job against a full deploy, on one generated project
 * (scripts/bench/project.ts) and one embedded Postgres. Medians over --runs.
 *
 *   npm run bench:ci [-- --models 500 --rows 200000 --runs 3 --only ours,seed002]
 */
import { benchLine, ContenderName, DEPLOY_CONTENDERS, detailLine, PR_CONTENDERS, runBench } from "./bench/runner";

function parseArgs(argv: string[]) {
    const arg = (flag: string) => {
        const i = argv.indexOf(flag);
        return i >= 0 ? argv[i + 1] : undefined;
    };
    const int = (flag: string, def: number, min: number) => {
        const raw = arg(flag);
        const n = raw === undefined ? def : Number(raw);
        if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min} (got ${raw})`);
        return n;
    };
    const known: string[] = [...PR_CONTENDERS, ...DEPLOY_CONTENDERS];
    const only = arg("--only")?.split(",").map((s) => s.trim());
    const bad = only?.filter((o) => !known.includes(o)) ?? [];
    if (bad.length) throw new Error(`--only: unknown contender ${bad.join(", ")} (known: ${known.join(", ")})`);
    return { models: int("--models", 500, 20), rows: int("--rows", 200_000, 100), runs: int("--runs", 3, 1), only: only as ContenderName[] | undefined };
}

async function main(): Promise<void> {
    const opts = parseArgs(process.argv.slice(2));
    const result = await runBench({ ...opts, log: (l) => console.error(l) });
    for (const c of result.contenders) console.log(benchLine(c));
    for (const c of result.contenders) console.log(detailLine(c));
    if (result.failures.length) throw new Error(result.failures.join("\n\n"));
}

main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
});
