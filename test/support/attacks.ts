/**
 * Issue 11's attacks, counted across suites: a test that tries an attack calls `attack(name)` first and
 * the returned `blocked()` only after asserting the attack failed. The root hook in
 * test/attacks-summary.test.ts prints `attacks: <blocked>/<tried> blocked` once every suite has run,
 * so an attack whose test fails counts as tried but not blocked.
 */
const tried = new Map<string, boolean>();

export function attack(name: string): { blocked(): void } {
    if (tried.has(name)) throw new Error(`attack ${JSON.stringify(name)} is counted twice`);
    tried.set(name, false);
    return { blocked: () => void tried.set(name, true) };
}

export function attackTally(): { blocked: number; tried: number; open: string[] } {
    const open = [...tried].filter(([, ok]) => !ok).map(([name]) => name);
    return { blocked: tried.size - open.length, tried: tried.size, open };
}
