/**
 * The small version of `npm run bench:ci`: a 40-model generated project, one run of every
 * pull-request contender (ours = the rendered PR job's shell lines) on a real Postgres and moto S3.
 */
import * as assert from "assert";
import { benchLine, BenchResult, detailLine, PR_CONTENDERS, runBench } from "../scripts/bench/runner";

const LINE = /^bench: (ours|ours-repush|seed000|seed002|seed003|ours-deploy|full-deploy) built \d+ \(minimal \d+\) invocations \d+ wall \d+\.\d s ratio (\d+\.\d\d|n\/a)$/;

describe("bench:ci, small version: our rendered PR job against the seeds' pipelines @integration", function () {
    this.timeout(600_000);
    let result: BenchResult;

    before(async () => {
        result = await runBench({ models: 40, rows: 2000, runs: 1, only: [...PR_CONTENDERS] });
        for (const c of result.contenders) console.log(benchLine(c));
        for (const c of result.contenders) console.log(detailLine(c));
        assert.deepStrictEqual(result.failures, []);
    });

    const byName = (name: string) => {
        const c = result.contenders.find((x) => x.name === name);
        assert.ok(c, `${name} did not run`);
        return c;
    };

    it("prints one line per contender in the issue's format", () => {
        assert.deepStrictEqual(result.contenders.map((c) => c.name), [...PR_CONTENDERS]);
        for (const c of result.contenders) assert.match(benchLine(c), LINE);
        assert.strictEqual(byName("ours").ratio, 1);
    });

    it("ours builds exactly the minimal set: the changed model and its descendants", () => {
        const ours = byName("ours");
        assert.ok(ours.minimal.length > 0 && ours.minimal.length < result.project.models.length / 2, `minimal set of ${ours.minimal.length}`);
        assert.deepStrictEqual(ours.runs[0].built, ours.minimal);
        assert.ok(ours.runs[0].invocations.some((i) => /(^| )build --target \S+ --select state:modified\+ --defer/.test(i.args)), "ours did not run a deferred slim build");
    });

    it("ours-repush (the same PR again, with the cached dbt_packages and partial parse) reuses the parse and builds the minimal set", () => {
        const repush = byName("ours-repush");
        assert.deepStrictEqual(repush.runs[0].built, repush.minimal);
        assert.match(repush.runs[0].output, /dbt-platform: parsed once in/);
        assert.ok(!/Starting full parse/.test(repush.runs[0].output), "the re-push parsed the project in full");
        assert.match(byName("ours").runs[0].output, /Starting full parse/, "ours' first push should start from a clean checkout");
    });

    it("the seeds build what their selectors say: seed 002 the minimal set, seed 000 also the ancestors, seed 003 everything", () => {
        const minimal = byName("ours").minimal;
        assert.deepStrictEqual(byName("seed002").runs[0].built, minimal);
        const s000 = byName("seed000").runs[0].built;
        assert.ok(s000.length > minimal.length && minimal.some((m) => s000.includes(m)), `seed000 built ${s000.length}`);
        assert.strictEqual(byName("seed003").runs[0].built.length, result.project.models.length);
    });
});
