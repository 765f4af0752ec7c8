// Spec output plus one plain closing line that CI tooling can read.
const Mocha = require("mocha");
class SpecWithSummary extends Mocha.reporters.Spec {
    constructor(runner, options) {
        super(runner, options);
        runner.once("end", () => {
            const s = runner.stats;
            console.log(`mocha: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped`);
        });
    }
}
module.exports = SpecWithSummary;
