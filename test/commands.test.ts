/** README's two commands stay true: scripts/up-dev.sh pins a CLI that exists on npm and the plugins the npm packages request. */
import assert from "assert";
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { ROOT } from "../scripts/offline";

const script = fs.readFileSync(path.join(ROOT, "scripts/up-dev.sh"), "utf8");
const cliVersion = /^PULUMI_VERSION=(\S+)$/m.exec(script)?.[1];
const plugins = Object.fromEntries(
    (/^PLUGINS=\(([^)]*)\)$/m.exec(script)?.[1] ?? "")
        .split(/\s+/)
        .filter(Boolean)
        .map((p) => p.split(":") as [string, string]),
);

describe("README commands", () => {
    it("up-dev.sh pins each resource plugin at the version its npm package requests, and every such package", () => {
        const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
        const requested: Record<string, string> = {};
        for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter((d) => d.startsWith("@pulumi/"))) {
            const meta = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", dep, "package.json"), "utf8")).pulumi;
            if (meta?.resource) requested[meta.name] = meta.version;
        }
        assert.deepStrictEqual(plugins, requested);
    });

    it("README names the commands and the passphrase the script uses", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const commands = readme.slice(readme.indexOf("## Commands"), readme.indexOf("## Architecture"));
        assert.ok(commands.includes("bash scripts/up-dev.sh"));
        assert.ok(commands.includes("npm test"));
        const passphrase = /PULUMI_CONFIG_PASSPHRASE:-([^}]+)\}/.exec(script)?.[1];
        assert.ok(passphrase && commands.includes(`\`${passphrase}\``), "the dev passphrase is documented");
        assert.ok(commands.includes(`pulumi@${cliVersion}`), "the pinned CLI version is documented");
    });

    it("the pinned CLI version exists on npm as the `pulumi` package with its binary @integration", async () => {
        const { stdout } = await promisify(execFile)("npm", ["view", `pulumi@${cliVersion}`, "version", "bin", "--json"], { cwd: ROOT });
        const meta = JSON.parse(stdout);
        assert.strictEqual(meta.version, cliVersion);
        assert.ok(meta.bin?.pulumi, "the package has a pulumi binary");
    });
});
