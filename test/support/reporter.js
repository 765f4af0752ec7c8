// Spec output plus one plain closing line that CI tooling can read.
const Mocha = require("mocha");
class SpecWithSummary extends Mocha.reporters.Spec {
    // Mocha calls done() after the global teardown fixtures (test/support/attacksSummary.ts prints there),
    // also under --parallel, so the summary stays the last line.
    done(failures, fn) {
        const s = this.stats;
        console.log(`mocha: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped`);
        fn(failures);
    }
}
module.exports = SpecWithSummary;
