/**
 * Runs a Pulumi program the way the CLI and Pulumi's Node.js language host do, under mocks:
 *  - the CLI turns Pulumi.yaml `main` into a program directory and entry point (pkg/engine getPwdMain,
 *    reproduced below) — "." when `main` is unset, so run.js falls back to package.json exports/main;
 *  - the language host passes the runtime options as PULUMI_NODEJS_TYPESCRIPT / PULUMI_NODEJS_TSCONFIG_PATH
 *    and the config as PULUMI_CONFIG (set by the caller);
 *  - the SDK's own cmd/run/run.js, resolved from the program directory as the host resolves it, then
 *    picks the file, registers ts-node with the project's tsconfig and requires the program.
 * Plain JavaScript on purpose: nothing but run.js may compile the program.
 *
 * usage: node pulumiHost.js <project dir> <stack> <result.json> [<entry point, relative to the project dir>]
 * Writes { pwd, entryPoint, loaded, exportKeys, undefinedExports, resources, stackOutputs } to result.json.
 */
"use strict";
const fs = require("fs");
const path = require("path");
const { parse } = require("yaml");

const [root, stackName, outFile, entryOverride] = process.argv.slice(2);
const project = parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8"));

/** pkg/engine/project.go getPwdMain: `main` is a directory (pwd = it, entry ".") or a file (pwd = its dir). */
function getPwdMain(rootDir, main) {
    let pwd = rootDir;
    if (!main) return { pwd, entryPoint: "." };
    if (path.isAbsolute(main)) throw new Error("project 'main' must be a relative path");
    const cleanPwd = path.normalize(pwd);
    const full = path.normalize(path.join(cleanPwd, main));
    if (!full.startsWith(cleanPwd)) throw new Error("project 'main' must be a subfolder");
    if (fs.statSync(full).isDirectory()) return { pwd: full, entryPoint: "." };
    return { pwd: path.dirname(full), entryPoint: path.basename(full) };
}

// An explicit entry point (a test program) runs from the project root, like an engine-supplied entry point.
const { pwd, entryPoint } = entryOverride ? { pwd: path.resolve(root), entryPoint: entryOverride } : getPwdMain(path.resolve(root), project.main);
const options = (project.runtime && project.runtime.options) || {};
// The Node.js host: TypeScript unless `typescript: false`; `tsconfig` names the compiler options file.
process.env.PULUMI_NODEJS_TYPESCRIPT = String(options.typescript !== false);
if (options.tsconfig) process.env.PULUMI_NODEJS_TSCONFIG_PATH = options.tsconfig;

const runJs = require.resolve("@pulumi/pulumi/cmd/run/run.js", { paths: [pwd] });
// cmd/run/index.js is the launcher: it parses the host's flags and dials the engine as soon as it is loaded.
// run.js needs only its exit-code constant from it, so it stands in for the launcher; run.js itself is real.
const launcher = path.join(path.dirname(runJs), "index.js");
require.cache[launcher] = { id: launcher, filename: launcher, loaded: true, exports: { nodeJSProcessExitedAfterLoggingUserActionableMessage: 32 } };
const { run } = require(runJs);
const reported = new Set();
let mocks;

function fail(err) {
    console.error(`pulumiHost: ${(err && err.stack) || err}`);
    process.exit(1);
}

run(
    { _: [entryPoint], pwd },
    // programStarted: run.js has registered ts-node by now; the recording mocks (TypeScript) compile through it.
    () => {
        mocks = require(path.join(__dirname, "hostMocks.ts")).install(stackName);
    },
    (err) => {
        reported.add(err);
        fail(err);
    },
    (err) => reported.has(err),
)
    .then(async (exported) => {
        const { resources, settle } = await mocks;
        await settle();
        const stack = resources.find((r) => r.type === "pulumi:pulumi:Stack");
        const loaded = Object.keys(require.cache)
            .filter((f) => f.startsWith(pwd + path.sep) && !f.includes(`${path.sep}node_modules${path.sep}`))
            .map((f) => path.relative(pwd, f))
            .filter((f) => !f.startsWith("test" + path.sep) && !f.startsWith("scripts" + path.sep));
        const result = {
            pwd,
            entryPoint,
            loaded,
            exportKeys: Object.keys(exported ?? {}),
            undefinedExports: Object.entries(exported ?? {}).filter(([, v]) => v === undefined).map(([k]) => k),
            resources: resources.map((r) => ({ type: r.type, name: r.name, custom: r.custom, parent: r.parent, inputs: r.inputs })),
            stackOutputs: stack ? stack.outputs : {},
        };
        fs.writeFileSync(outFile, JSON.stringify(result));
        process.exit(0);
    })
    .catch(fail);
