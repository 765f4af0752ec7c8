/**
 * Mocha global fixture (.mocharc.json `require`): runs once in mocha's main process, also under --parallel,
 * whose workers inherit ATTACKS_DIR. The teardown prints the attacks line after every suite has run
 * (before the reporter's closing `mocha:` line, which it prints once teardown is done).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ATTACKS_DIR, attackTally } from "./attacks";

export function mochaGlobalSetup(): void {
    process.env[ATTACKS_DIR] = fs.mkdtempSync(path.join(os.tmpdir(), "dbt-platform-attacks-"));
}

export function mochaGlobalTeardown(): void {
    const dir = process.env[ATTACKS_DIR];
    if (!dir) return;
    const t = attackTally(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    delete process.env[ATTACKS_DIR];
    if (t.tried === 0) return;
    console.log(`attacks: ${t.blocked}/${t.tried} blocked`);
    if (t.open.length > 0) console.log(`attacks not blocked: ${t.open.join(", ")}`);
}
