import { attackTally } from "./support/attacks";

// A root-level hook: runs after every suite of the run, whichever files it loaded.
after(function () {
    const t = attackTally();
    if (t.tried === 0) return;
    console.log(`attacks: ${t.blocked}/${t.tried} blocked`);
    if (t.open.length > 0) console.log(`attacks not blocked: ${t.open.join(", ")}`);
});
