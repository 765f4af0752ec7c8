/**
 * Issue 11's attacks, counted across suites: a test that tries an attack calls `attack(name)` first and
 * the returned `blocked()` only after asserting the attack failed. The global fixture in
 * test/support/attacksSummary.ts prints `attacks: <blocked>/<tried> blocked` once every suite has run,
 * so an attack whose test fails counts as tried but not blocked.
 *
 * Under `mocha --parallel` the suites run in several worker processes, so each attack is also a file in
 * the directory that fixture names in ATTACKS_DIR (created exclusively: an attack counted twice, in any
 * worker, is refused); the fixture's teardown in mocha's main process reads the files.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

/** The environment variable naming the run's attack directory (set by the global fixture). */
export const ATTACKS_DIR = "DBT_PLATFORM_TEST_ATTACKS_DIR";

interface Attempt {
    name: string;
    blocked: boolean;
}

/** This process's attempts, for runs without the fixture (one file through --no-config). */
const tried = new Map<string, boolean>();

const fileOf = (dir: string, name: string) => path.join(dir, `${createHash("sha256").update(name).digest("hex")}.json`);

export function attack(name: string): { blocked(): void } {
    const dir = process.env[ATTACKS_DIR];
    if (tried.has(name)) throw new Error(`attack ${JSON.stringify(name)} is counted twice`);
    if (dir) {
        try {
            fs.writeFileSync(fileOf(dir, name), JSON.stringify({ name, blocked: false } satisfies Attempt), { flag: "wx" });
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`attack ${JSON.stringify(name)} is counted twice`);
            throw e;
        }
    }
    tried.set(name, false);
    return {
        blocked: () => {
            tried.set(name, true);
            if (dir) fs.writeFileSync(fileOf(dir, name), JSON.stringify({ name, blocked: true } satisfies Attempt));
        },
    };
}

/** The tally of the attempts recorded in `dir` (every worker's), else of this process's. */
export function attackTally(dir?: string): { blocked: number; tried: number; open: string[] } {
    const attempts: Attempt[] = dir
        ? fs.readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as Attempt)
        : [...tried].map(([name, blocked]) => ({ name, blocked }));
    const open = attempts.filter((a) => !a.blocked).map((a) => a.name).sort();
    return { blocked: attempts.length - open.length, tried: attempts.length, open };
}
